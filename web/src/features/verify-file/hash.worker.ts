/**
 * Web Worker that hashes a chosen file with SHA-256 off the page's main thread, reading it as a
 * byte stream into one reused buffer (a BYOB reader on Blob.stream()) and hashing each piece as it
 * arrives, reporting progress every PROGRESS_BYTES. The browser fills the stream's pipe from disk
 * on a thread of its own while this one hashes, so reading costs this thread one copy, and no
 * buffer is allocated per piece: a file of gigabytes is never held in memory. Where the stream has
 * no BYOB reader, the default reader's pieces are hashed as they come. The hasher is shared/crypto's
 * streaming SHA-256 (WebAssembly when the page's CSP allows it, @noble/hashes otherwise).
 */
import { streamSha256 } from '../../../../shared/crypto/stream-hash.ts';
import type { Hasher } from '../../../../shared/crypto/digest.ts';
import type { HashRequest, HashResponse } from './hash-protocol.ts';

/** The buffer each read fills (a read returns what the pipe holds, up to this). */
const BUFFER_BYTES = 1024 * 1024;
/** Bytes hashed between progress reports: about every 40 ms at WebAssembly's speed. */
const PROGRESS_BYTES = 16 * 1024 * 1024;

const post = (m: HashResponse): void => (self as unknown as Worker).postMessage(m);

/** Feeds every byte of `file` to `hasher`, calling `onBytes` with each piece's length. */
async function readInto(file: File, hasher: Hasher, onBytes: (n: number) => void): Promise<void> {
  let byob: ReadableStreamBYOBReader | null = null;
  const stream = file.stream();
  try {
    byob = stream.getReader({ mode: 'byob' });
  } catch {
    // Not a byte stream in this browser: the default reader below.
  }
  if (byob) {
    let buffer = new ArrayBuffer(BUFFER_BYTES);
    for (;;) {
      const { done, value } = await byob.read(new Uint8Array(buffer));
      if (done || !value) return;
      hasher.update(value);
      onBytes(value.byteLength);
      buffer = value.buffer; // the same memory, handed back by the read
    }
  }
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    hasher.update(value);
    onBytes(value.byteLength);
  }
}

async function run({ file }: HashRequest): Promise<void> {
  const total = file.size;
  const hasher = await streamSha256();
  let done = 0;
  let reported = 0;
  post({ type: 'progress', done, total });
  await readInto(file, hasher, (n) => {
    done += n;
    if (done - reported < PROGRESS_BYTES) return;
    reported = done;
    post({ type: 'progress', done, total });
  });
  if (done !== total) throw new Error(`read ${done} of its ${total} bytes (did it change on disk?)`);
  post({ type: 'progress', done, total });
  post({ type: 'done', digest: hasher.digest() });
}

self.onmessage = (ev: MessageEvent<HashRequest>) => {
  run(ev.data).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
};

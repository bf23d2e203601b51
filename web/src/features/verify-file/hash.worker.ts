/**
 * Web Worker that hashes a chosen file with SHA-256 off the page's main thread, reading
 * Blob.stream() into one reused 1 MiB buffer (shared/crypto's hashByteStream) and hashing each
 * piece as it arrives, reporting progress every PROGRESS_BYTES. The browser fills the stream's
 * pipe from disk on a thread of its own while this one hashes, so reading costs this thread one
 * copy and no allocation per piece, and a file of gigabytes is never held in memory. (A reader
 * worker handing 16 MiB slices to a hashing worker cost more — an allocation per slice, a second
 * thread competing for two cores — than the overlap gained.) The hasher is shared/crypto's
 * streaming SHA-256 (WebAssembly when the page's CSP allows it, @noble/hashes otherwise).
 */
import { hashByteStream, streamSha256 } from '../../../../shared/crypto/stream-hash.ts';
import type { HashRequest, HashResponse } from './hash-protocol.ts';

/** Bytes hashed between progress reports: about every 40 ms at WebAssembly's speed. */
const PROGRESS_BYTES = 16 * 1024 * 1024;

const post = (m: HashResponse): void => (self as unknown as Worker).postMessage(m);

async function run({ file }: HashRequest): Promise<void> {
  const total = file.size;
  const hasher = await streamSha256();
  let done = 0;
  let reported = 0;
  post({ type: 'progress', done, total });
  await hashByteStream(file.stream(), hasher, (n) => {
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

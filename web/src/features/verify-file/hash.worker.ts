/**
 * Web Worker that hashes a chosen file with SHA-256 off the page's main thread, reading it a chunk
 * at a time (File.slice), so a file of gigabytes is never held in memory, and reporting progress
 * after each chunk. The hasher is shared/crypto's streaming SHA-256 (WebAssembly when the page's
 * CSP allows it, @noble/hashes otherwise).
 */
import { streamSha256 } from '../../../../shared/crypto/stream-hash.ts';
import type { HashRequest, HashResponse } from './hash-protocol.ts';

const post = (m: HashResponse): void => (self as unknown as Worker).postMessage(m);

async function run({ file, chunk }: HashRequest): Promise<void> {
  const hasher = await streamSha256();
  const total = file.size;
  post({ type: 'progress', done: 0, total });
  const read = (offset: number): Promise<ArrayBuffer> | null =>
    offset < total ? file.slice(offset, Math.min(total, offset + chunk)).arrayBuffer() : null;
  // The next slice is read while this one is hashed: reading and hashing overlap.
  let next = read(0);
  for (let offset = 0; next; offset += chunk) {
    const bytes = new Uint8Array(await next);
    next = read(offset + chunk);
    hasher.update(bytes);
    post({ type: 'progress', done: Math.min(total, offset + chunk), total });
  }
  post({ type: 'done', digest: hasher.digest() });
}

self.onmessage = (ev: MessageEvent<HashRequest>) => {
  run(ev.data).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
};

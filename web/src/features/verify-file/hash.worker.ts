/**
 * Web Worker that hashes a chosen file with SHA-256 off the page's main thread, from the slices
 * the reading worker (read.worker.ts) transfers to it, handing a credit back for each so the
 * reader stays a few slices ahead, and reporting progress after each slice. The hasher is
 * shared/crypto's streaming SHA-256 (WebAssembly when the page's CSP allows it, @noble/hashes
 * otherwise).
 */
import { streamSha256 } from '../../../../shared/crypto/stream-hash.ts';
import type { HashRequest, HashResponse, SliceMessage } from './hash-protocol.ts';

const post = (m: HashResponse): void => (self as unknown as Worker).postMessage(m);

async function run({ total, port }: HashRequest): Promise<void> {
  const hasher = await streamSha256();
  let done = 0;
  post({ type: 'progress', done, total });
  // Slices that arrived while WebAssembly was compiling waited in the port's queue until now.
  port.onmessage = (ev: MessageEvent<SliceMessage>) => {
    if (ev.data === null) return post({ type: 'done', digest: hasher.digest() });
    port.postMessage(true);
    hasher.update(new Uint8Array(ev.data));
    done += ev.data.byteLength;
    post({ type: 'progress', done, total });
  };
}

self.onmessage = (ev: MessageEvent<HashRequest>) => {
  run(ev.data).catch((e: unknown) => post({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
};

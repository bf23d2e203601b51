/**
 * Web Worker that reads a chosen file a slice at a time (File.slice) and transfers each slice's
 * ArrayBuffer to the hashing worker (hash.worker.ts). Reading a Blob is finished on the thread that
 * asked for it, so a worker that read and hashed by turns left the disk idle while it hashed;
 * on a thread of its own the reader keeps `depth` slices ahead and the two overlap, which makes
 * hashing a large file about as fast as SHA-256 alone. Never more than `depth` slices are ahead:
 * a file of gigabytes is never held in memory.
 */
import type { HashResponse, ReadRequest, SliceMessage } from './hash-protocol.ts';

const post = (m: HashResponse): void => (self as unknown as Worker).postMessage(m);

function run({ file, chunk, depth, port }: ReadRequest): void {
  let offset = 0;
  let credit = depth;
  let reading = false;
  const send = (m: SliceMessage, transfer: Transferable[] = []): void => port.postMessage(m, transfer);
  const pump = async (): Promise<void> => {
    if (reading) return;
    reading = true;
    while (credit > 0 && offset < file.size) {
      const end = Math.min(file.size, offset + chunk);
      const slice = await file.slice(offset, end).arrayBuffer();
      offset = end;
      credit--;
      send(slice, [slice]);
      if (offset === file.size) send(null);
    }
    reading = false;
  };
  const go = (): void => void pump().catch((e: unknown) => post({ type: 'error', message: message(e) }));
  port.onmessage = () => {
    credit++;
    go();
  };
  if (file.size === 0) send(null);
  else go();
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

self.onmessage = (ev: MessageEvent<ReadRequest>) => run(ev.data);

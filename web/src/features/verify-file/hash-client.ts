/**
 * The page's side of file hashing: two workers per file — one reads slices (read.worker.ts), one
 * hashes them (hash.worker.ts), joined by a MessageChannel so reading and hashing run on two
 * threads at once — both ended when the hash is done or no longer wanted (another file chosen), so
 * a superseded hash stops reading at once.
 */
import { VerificationError } from '../../../../shared/errors.ts';
import type { HashRequest, HashResponse, ReadRequest } from './hash-protocol.ts';

/**
 * Bytes read at a time, and how many slices the reader keeps ahead of the hasher: 16 MiB × 3
 * keeps WebAssembly busy and reports progress every few dozen milliseconds, with under 100 MiB
 * in both workers together.
 */
const CHUNK_BYTES = 16 * 1024 * 1024;
const DEPTH = 3;

/**
 * `sha256:<hex>` of `file`, hashed in a worker; `onProgress` learns the bytes hashed so far.
 * @throws VerificationError VERIFY_POLICY_INVALID when the browser cannot read the file; the
 *   signal's reason when aborted.
 */
export function hashFileInWorker(
  file: File,
  onProgress: (done: number, total: number) => void,
  signal: AbortSignal,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const reader = new Worker(new URL('./read.worker.ts', import.meta.url), { type: 'module', name: 'read' });
    const hasher = new Worker(new URL('./hash.worker.ts', import.meta.url), { type: 'module', name: 'hash' });
    const stop = (): void => {
      reader.terminate();
      hasher.terminate();
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      stop();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort);
    const onMessage = (ev: MessageEvent<HashResponse>): void => {
      const m = ev.data;
      if (m.type === 'progress') return onProgress(m.done, m.total);
      stop();
      if (m.type === 'done') resolve(m.digest);
      else
        reject(
          new VerificationError('VERIFY_POLICY_INVALID', `The browser could not read "${file.name}": ${m.message}`),
        );
    };
    const onError = (ev: ErrorEvent): void => {
      stop();
      reject(new VerificationError('VERIFY_POLICY_INVALID', `Hashing "${file.name}" failed: ${ev.message}`));
    };
    reader.onmessage = hasher.onmessage = onMessage;
    reader.onerror = hasher.onerror = onError;
    const { port1, port2 } = new MessageChannel();
    hasher.postMessage({ total: file.size, port: port1 } satisfies HashRequest, [port1]);
    reader.postMessage({ file, chunk: CHUNK_BYTES, depth: DEPTH, port: port2 } satisfies ReadRequest, [port2]);
  });
}

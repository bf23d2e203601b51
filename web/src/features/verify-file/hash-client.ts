/**
 * The page's side of the file-hashing worker: one worker per file, ended when the hash is done or
 * no longer wanted (another file chosen), so a superseded hash stops reading at once.
 */
import { VerificationError } from '../../../../shared/errors.ts';
import type { HashRequest, HashResponse } from './hash-protocol.ts';

/** Bytes the worker reads at a time: large enough to keep WebAssembly busy, small enough to report often. */
const CHUNK_BYTES = 32 * 1024 * 1024;

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
    const worker = new Worker(new URL('./hash.worker.ts', import.meta.url), { type: 'module', name: 'hash' });
    const stop = (): void => {
      worker.terminate();
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      stop();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort);
    worker.onmessage = (ev: MessageEvent<HashResponse>) => {
      const m = ev.data;
      if (m.type === 'progress') return onProgress(m.done, m.total);
      stop();
      if (m.type === 'done') resolve(m.digest);
      else
        reject(
          new VerificationError('VERIFY_POLICY_INVALID', `The browser could not read "${file.name}": ${m.message}`),
        );
    };
    worker.onerror = (ev) => {
      stop();
      reject(new VerificationError('VERIFY_POLICY_INVALID', `Hashing "${file.name}" failed: ${ev.message}`));
    };
    const req: HashRequest = { file, chunk: CHUNK_BYTES };
    worker.postMessage(req);
  });
}

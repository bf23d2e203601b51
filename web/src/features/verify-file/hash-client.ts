/**
 * The page's side of file hashing: a worker per file (hash.worker.ts) that reads and hashes it,
 * ended when the hash is done or no longer wanted (another file chosen), so a superseded hash
 * stops reading at once.
 */
import { VerificationError } from '../../../../shared/errors.ts';
import type { HashRequest, HashResponse } from './hash-protocol.ts';

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
    const hasher = new Worker(new URL('./hash.worker.ts', import.meta.url), { type: 'module', name: 'hash' });
    const stop = (): void => {
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
    hasher.onmessage = onMessage;
    hasher.onerror = onError;
    hasher.postMessage({ file } satisfies HashRequest);
  });
}

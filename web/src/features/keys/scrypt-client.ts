/**
 * The page's side of the scrypt worker: one long-lived worker, started early (warmUpScrypt),
 * requests by id, progress reported as a fraction (measured by scrypt-js, or estimated from the
 * worker's timing for WebAssembly).
 */
import { KeyError, type KeyErrorCode } from '../../../../shared/errors.ts';
import type { DeriveKey } from '../../../../shared/crypto/envelope.ts';
import type { ScryptImpl, ScryptParams } from '../../../../shared/crypto/scrypt.ts';
import type { ScryptRequest, ScryptResponse, ScryptWarmUp } from './scrypt-protocol.ts';

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, (m: ScryptResponse) => void>();

function getWorker(): Worker {
  if (!worker) {
    worker = new Worker(new URL('./scrypt.worker.ts', import.meta.url), { type: 'module', name: 'scrypt' });
    worker.onmessage = (ev: MessageEvent<ScryptResponse>) => pending.get(ev.data.id)?.(ev.data);
  }
  return worker;
}

let warmed = false;

/**
 * Starts the worker and has it compile its WebAssembly and time itself now (the Keys page calls
 * this when it opens), so unlocking a key later pays for scrypt alone. Once per page.
 */
export function warmUpScrypt(): void {
  if (warmed) return;
  warmed = true;
  const m: ScryptWarmUp = { warmUp: true };
  getWorker().postMessage(m);
}

interface DeriveResult {
  key: Uint8Array;
  impl: ScryptImpl;
  ms: number;
}

/** Runs scrypt in the worker. `onProgress` gets fractions in [0, 1]. */
export function deriveInWorker(
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  onProgress?: (fraction: number) => void,
  impl: ScryptImpl | 'auto' = 'auto',
): Promise<DeriveResult> {
  const id = nextId++;
  return new Promise<DeriveResult>((resolve, reject) => {
    let timer: ReturnType<typeof setInterval> | undefined;
    const finish = (): void => {
      pending.delete(id);
      if (timer) clearInterval(timer);
    };
    pending.set(id, (m) => {
      switch (m.type) {
        case 'estimate': {
          const t0 = performance.now();
          timer = setInterval(() => onProgress?.(Math.min(0.97, (performance.now() - t0) / m.ms)), 50);
          break;
        }
        case 'progress':
          onProgress?.(m.fraction);
          break;
        case 'done':
          finish();
          onProgress?.(1);
          resolve({ key: m.key, impl: m.impl, ms: m.ms });
          break;
        case 'error':
          finish();
          reject(m.code.startsWith('KEY_') ? new KeyError(m.code as KeyErrorCode, m.message) : new Error(m.message));
          break;
      }
    });
    const req: ScryptRequest = { id, password: password.slice(), salt, params, impl };
    getWorker().postMessage(req, [req.password.buffer]);
  });
}

/**
 * A {@link DeriveKey} for the envelope functions, running in the worker with progress; `onDone`
 * learns which implementation ran and how long it took.
 */
export function workerDerive(
  onProgress?: (fraction: number) => void,
  onDone?: (result: Omit<DeriveResult, 'key'>) => void,
): DeriveKey {
  return async (password, salt, params) => {
    const { key, impl, ms } = await deriveInWorker(password, salt, params, onProgress);
    onDone?.({ impl, ms });
    return key;
  };
}

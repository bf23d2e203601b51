/**
 * Web Worker that runs scrypt off the page's main thread, so unlocking a key never freezes the
 * tab. It uses the WebAssembly implementation when the page's CSP allows WebAssembly, and falls
 * back to scrypt-js otherwise (see README "Why this scrypt").
 *
 * WebAssembly scrypt runs as one uninterrupted call and cannot report progress, so the worker
 * sends an estimate of the whole from its speed: timed on a small run when the Keys page opens
 * (ScryptWarmUp, with the WebAssembly compiled then too), then from each real run. No run is made
 * for the estimate once a key is being unlocked. scrypt-js reports real progress.
 */
import { scrypt, wasmScryptAvailable, type ScryptImpl, type ScryptParams } from '../../../../shared/crypto/scrypt.ts';
import type { ScryptRequest, ScryptResponse, ScryptWarmUp } from './scrypt-protocol.ts';

// scrypt-js yields between slices with setImmediate where it exists and setTimeout otherwise;
// browsers clamp nested setTimeout to 4 ms, which made scrypt-js about 4× slower in a worker
// (measured: 5.4 s instead of 1.2 s at N=65536). A MessageChannel is an unclamped macrotask.
if (typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'undefined') {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  (globalThis as { setImmediate?: (fn: () => void) => void }).setImmediate = (fn) => {
    queue.push(fn);
    channel.port2.postMessage(0);
  };
}

let wasm: Promise<boolean> | undefined;
/** Milliseconds per unit of N·r·p on the fast path: from the warm-up's small run, then from real runs. */
let msPerUnit: number | undefined;
let warming: Promise<void> | undefined;

const post = (m: ScryptResponse, transfer: Transferable[] = []): void =>
  (self as unknown as Worker).postMessage(m, transfer);

const units = (p: ScryptParams): number => p.N * p.r * p.p;

/** Compiles the WebAssembly (when the CSP allows it) and times a small run; once per worker. */
function warmUp(): Promise<void> {
  warming ??= (async () => {
    wasm ??= wasmScryptAvailable();
    if (!(await wasm) || msPerUnit !== undefined) return;
    const params = { N: 4096, r: 8, p: 1 };
    const t0 = performance.now();
    try {
      await scrypt(new Uint8Array(8), new Uint8Array(32), params, { impl: 'wasm' });
      msPerUnit ??= (performance.now() - t0) / units(params);
    } catch {
      // No estimate then; the real run falls back to scrypt-js and says why.
    }
  })();
  return warming;
}

async function run(req: ScryptRequest): Promise<void> {
  const { id, password, salt, params } = req;
  wasm ??= wasmScryptAvailable();
  let impl: ScryptImpl = req.impl === 'auto' ? ((await wasm) ? 'wasm' : 'js') : req.impl;
  if (impl === 'wasm') {
    // Normally done long before (the Keys page asked on opening); if not, it is one small run.
    await warmUp();
    if (msPerUnit !== undefined) post({ id, type: 'estimate', ms: msPerUnit * units(params) });
  }
  const t0 = performance.now();
  let key: Uint8Array;
  try {
    key = await scrypt(password, salt, params, {
      impl,
      onProgress: (fraction) => post({ id, type: 'progress', fraction }),
    });
  } catch (e) {
    if (
      impl !== 'wasm' ||
      req.impl !== 'auto' ||
      !(e instanceof WebAssembly.CompileError || e instanceof WebAssembly.RuntimeError)
    )
      throw e;
    impl = 'js';
    key = await scrypt(password, salt, params, {
      impl,
      onProgress: (fraction) => post({ id, type: 'progress', fraction }),
    });
  }
  password.fill(0);
  const ms = performance.now() - t0;
  if (impl === 'wasm') msPerUnit = ms / units(params);
  post({ id, type: 'done', key, impl, ms }, [key.buffer]);
}

self.onmessage = (ev: MessageEvent<ScryptRequest | ScryptWarmUp>) => {
  if ('warmUp' in ev.data) {
    void warmUp();
    return;
  }
  const req = ev.data;
  run(req).catch((e: unknown) => {
    const err = e as { code?: string; message?: string; name?: string };
    post({ id: req.id, type: 'error', code: err.code ?? 'SCRYPT_FAILED', message: err.message ?? String(e) });
  });
};

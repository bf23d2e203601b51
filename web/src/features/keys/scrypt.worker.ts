/**
 * Web Worker that runs scrypt off the page's main thread, so unlocking a key never freezes the
 * tab. It uses the WebAssembly implementation when the page's CSP allows WebAssembly, and falls
 * back to scrypt-js otherwise (see README "Why this scrypt").
 *
 * WebAssembly scrypt runs as one uninterrupted call and cannot report progress, so the worker
 * first times a small run and sends an estimate of the whole; scrypt-js reports real progress.
 */
import { scrypt, wasmScryptAvailable, type ScryptImpl, type ScryptParams } from '../../../../shared/crypto/scrypt.ts';
import type { ScryptRequest, ScryptResponse } from './scrypt-protocol.ts';

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
/** Milliseconds per unit of N·r·p, measured once per worker on the fast path. */
let msPerUnit: number | undefined;

const post = (m: ScryptResponse, transfer: Transferable[] = []): void =>
  (self as unknown as Worker).postMessage(m, transfer);

async function calibrate(): Promise<number> {
  if (msPerUnit === undefined) {
    const params = { N: 4096, r: 8, p: 1 };
    const t0 = performance.now();
    await scrypt(new Uint8Array(8), new Uint8Array(32), params, { impl: 'wasm' });
    msPerUnit = (performance.now() - t0) / (params.N * params.r * params.p);
  }
  return msPerUnit;
}

async function run(req: ScryptRequest): Promise<void> {
  const { id, password, salt, params } = req;
  wasm ??= wasmScryptAvailable();
  let impl: ScryptImpl = req.impl === 'auto' ? ((await wasm) ? 'wasm' : 'js') : req.impl;
  const units = (p: ScryptParams): number => p.N * p.r * p.p;
  if (impl === 'wasm') {
    post({ id, type: 'estimate', ms: (await calibrate()) * units(params) });
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
  post({ id, type: 'done', key, impl, ms: performance.now() - t0 }, [key.buffer]);
}

self.onmessage = (ev: MessageEvent<ScryptRequest>) => {
  run(ev.data).catch((e: unknown) => {
    const err = e as { code?: string; message?: string; name?: string };
    post({ id: ev.data.id, type: 'error', code: err.code ?? 'SCRYPT_FAILED', message: err.message ?? String(e) });
  });
};

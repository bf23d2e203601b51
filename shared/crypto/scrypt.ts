/**
 * scrypt (RFC 7914), the key derivation function of cosign's encrypted keys.
 *
 * Three implementations, chosen by measurement (see README "Why this scrypt"): hash-wasm's
 * WebAssembly build is the fastest in Chromium and in Node; scrypt-js is the pure-JavaScript
 * fallback where WebAssembly cannot run (a Content-Security-Policy without 'wasm-unsafe-eval');
 * noble is kept for the cross-check tests. Parameters are checked before anything runs, so a
 * hostile key file cannot make a tab allocate gigabytes.
 */
import { scryptAsync as nobleScrypt } from '@noble/hashes/scrypt.js';
import { scrypt as wasmScrypt } from 'hash-wasm';
import { KeyError } from '../errors.ts';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export type ScryptImpl = 'wasm' | 'js' | 'noble';

/** What cosign 2.5 writes. */
export const COSIGN_SCRYPT: ScryptParams = { N: 65536, r: 8, p: 1 };

/** The most memory an scrypt run may take, for V (128·N·r bytes) and for B (128·r·p bytes): 256 MiB, twice cosign's N=2^17. */
export const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024;
/** The most work (N·r·p block mixes) an scrypt run may take: 32× cosign's default. */
export const SCRYPT_MAX_WORK = 65536 * 8 * 32;
/** Each parameter's own bound: N up to 2^20 (cosign uses 2^16), r up to 32 (cosign 8), p up to 16 (cosign 1). */
export const SCRYPT_MAX_N = 2 ** 20;
export const SCRYPT_MAX_R = 32;
export const SCRYPT_MAX_P = 16;

/**
 * Refuses parameters that are not legal scrypt or that would take too much memory or time: each
 * of N, r and p over its own bound, V or B over SCRYPT_MAX_MEMORY, or N·r·p over SCRYPT_MAX_WORK.
 * Only comparisons: nothing is allocated or run before the parameters pass.
 * @throws KeyError KEY_KDF_PARAMS_REFUSED
 */
export function checkScryptParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const legal =
    Number.isSafeInteger(N) &&
    N > 1 &&
    (N & (N - 1)) === 0 &&
    Number.isSafeInteger(r) &&
    r >= 1 &&
    Number.isSafeInteger(p) &&
    p >= 1;
  if (!legal) {
    throw new KeyError(
      'KEY_KDF_PARAMS_REFUSED',
      `The key's scrypt parameters (N=${N}, r=${r}, p=${p}) are not valid: N must be a power of two above 1, r and p at least 1.`,
    );
  }
  const eachBounded = N <= SCRYPT_MAX_N && r <= SCRYPT_MAX_R && p <= SCRYPT_MAX_P;
  const memory = Math.max(128 * N * r, 128 * r * p);
  if (!eachBounded || memory > SCRYPT_MAX_MEMORY || N * r * p > SCRYPT_MAX_WORK) {
    throw new KeyError(
      'KEY_KDF_PARAMS_REFUSED',
      `The key asks scrypt for N=${N}, r=${r}, p=${p}, which would need ${mib(memory)} MiB and ` +
        `${(N * r * p) / (COSIGN_SCRYPT.N * COSIGN_SCRYPT.r * COSIGN_SCRYPT.p)} times cosign's work; this page takes ` +
        `N up to 2^20, r up to ${SCRYPT_MAX_R}, p up to ${SCRYPT_MAX_P}, at most ${SCRYPT_MAX_MEMORY / 2 ** 20} MiB ` +
        `and 32 times cosign's work. cosign itself uses N=65536, r=8, p=1.`,
    );
  }
}

/** Bytes as MiB, whole when they are whole, else to one decimal place. */
function mib(bytes: number): string {
  const m = bytes / 2 ** 20;
  return Number.isInteger(m) ? String(m) : m.toFixed(1);
}

interface ScryptJs {
  scrypt(
    password: ArrayLike<number>,
    salt: ArrayLike<number>,
    N: number,
    r: number,
    p: number,
    dkLen: number,
    progress?: (fraction: number) => boolean | void,
  ): Promise<Uint8Array>;
}
/**
 * scrypt-js, loaded when first used (only where WebAssembly may not run), so what imports this
 * module for its parameter checks does not carry it. A UMD module: under Node's ESM loader its
 * exports sit on `default`.
 */
async function loadScryptJs(): Promise<ScryptJs> {
  const m = (await import('scrypt-js')) as unknown as ScryptJs & { default?: ScryptJs };
  return m.default ?? m;
}

export interface ScryptOptions {
  impl: ScryptImpl;
  /** Output length in bytes; cosign's secretbox key is 32. */
  dkLen?: number;
  /** Called with the fraction done, where the implementation can tell (scrypt-js, noble). */
  onProgress?: (fraction: number) => void;
}

/**
 * Derives a key. Checks the parameters first.
 * @throws KeyError KEY_KDF_PARAMS_REFUSED; a WebAssembly error from the 'wasm' implementation
 *   when the runtime refuses to compile it (callers fall back to 'js').
 */
export async function scrypt(
  password: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  options: ScryptOptions,
): Promise<Uint8Array> {
  checkScryptParams(params);
  const { N, r, p } = params;
  const dkLen = options.dkLen ?? 32;
  const onProgress = options.onProgress;
  switch (options.impl) {
    case 'wasm':
      return wasmScrypt({
        password,
        salt,
        costFactor: N,
        blockSize: r,
        parallelism: p,
        hashLength: dkLen,
        outputType: 'binary',
      });
    case 'js':
      return (await loadScryptJs()).scrypt(
        password,
        salt,
        N,
        r,
        p,
        dkLen,
        onProgress ? (f) => void onProgress(f) : undefined,
      );
    case 'noble':
      return nobleScrypt(password, salt, {
        N,
        r,
        p,
        dkLen,
        maxmem: SCRYPT_MAX_MEMORY + 1024 * 1024,
        ...(onProgress ? { onProgress } : {}),
      });
  }
}

/** True when this runtime lets hash-wasm compile its WebAssembly (a CSP may forbid it). */
export async function wasmScryptAvailable(): Promise<boolean> {
  try {
    await wasmScrypt({
      password: new Uint8Array(1),
      salt: new Uint8Array(8),
      costFactor: 2,
      blockSize: 1,
      parallelism: 1,
      hashLength: 16,
      outputType: 'binary',
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * SHA-256 for large streams (blobs being copied): hash-wasm's WebAssembly SHA-256, about ten times
 * faster than @noble/hashes in Node and in Chromium, so hashing a blob on its way through never
 * sets the pace of a copy. Where a Content-Security-Policy refuses WebAssembly, @noble/hashes
 * (digest.ts) does the same job, slower.
 */
import { createSHA256 } from 'hash-wasm';
import { sha256Hasher, type Hasher } from './digest.ts';

/** An incremental SHA-256 (`sha256:<hex>`), in WebAssembly when the runtime allows it. */
export async function streamSha256(): Promise<Hasher> {
  try {
    const h = await createSHA256();
    h.init();
    return {
      update: (chunk) => void h.update(chunk),
      digest: () => `sha256:${h.digest('hex')}`,
    };
  } catch {
    return sha256Hasher();
  }
}

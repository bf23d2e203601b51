/**
 * Content digests as OCI writes them (`sha256:<hex>`), in one call or incrementally for streams.
 * https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../encoding/base64.ts';

/** `sha256:<hex>` of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${toHex(sha256(bytes))}`;
}

/** Raw SHA-256 of `bytes`. */
export function sha256Bytes(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

/** An incremental SHA-256 for content that arrives in chunks. */
export interface Hasher {
  update(chunk: Uint8Array): void;
  /** `sha256:<hex>` of everything given to update(). */
  digest(): string;
}

export function sha256Hasher(): Hasher {
  const h = sha256.create();
  return {
    update: (chunk) => void h.update(chunk),
    digest: () => `sha256:${toHex(h.digest())}`,
  };
}

/**
 * A Merkle tree as RFC 6962 §2.1 defines it, built recursively with its own hashing (MTH and
 * PATH), to check shared/sigstore/merkle.ts against. Node and Chromium.
 * https://www.rfc-editor.org/rfc/rfc6962#section-2.1
 */
import { sha256 } from '@noble/hashes/sha2.js';
import type { InclusionProof } from '../../../../shared/sigstore/types.ts';

export const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(parts.flatMap((p) => [...p]));
export const H = (...parts: Uint8Array[]): Uint8Array => sha256(cat(...parts));

/** The largest power of two smaller than n (RFC 6962's k). */
const split = (n: number) => 2 ** Math.floor(Math.log2(n - 1));

/** MTH(D[n]): the root of the tree over `leaves` (entries, not yet hashed). */
export function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return H(new Uint8Array([0]), leaves[0]!);
  const k = split(leaves.length);
  return H(new Uint8Array([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** PATH(m, D[n]): the audit path of leaf m. */
function path(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

/** The inclusion proof of leaf `index` (no checkpoint). */
export function proofFor(leaves: Uint8Array[], index: number): InclusionProof {
  return {
    logIndex: index,
    treeSize: leaves.length,
    rootHash: mth(leaves),
    hashes: path(index, leaves),
    checkpoint: '',
  };
}

/**
 * Merkle inclusion proofs of the RFC 6962 tree that Rekor v1 and every tile log (Rekor v2) keep:
 * leaf hash SHA-256(0x00 ‖ entry), node hash SHA-256(0x01 ‖ left ‖ right). The proof is checked
 * as RFC 9162 §2.1.3.2 describes, split as transparency-dev/merkle's proof.VerifyInclusion does:
 * the hashes below the point where the leaf's path and the tree's right border part (the "inner"
 * ones, left or right by the index's bits), then the border's left siblings.
 * https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { der } from '../encoding/der.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import type { InclusionProof } from './types.ts';

const HASH_BYTES = 32;

function fail(why: string): never {
  throw new VerificationError('VERIFY_INCLUSION_PROOF_INVALID', `The inclusion proof does not check: ${why}.`);
}

/** The hash of a leaf: SHA-256(0x00 ‖ entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256Bytes(der.concat([new Uint8Array([0]), entry]));
}

/** The hash of an inner node: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Bytes(der.concat([new Uint8Array([1]), left, right]));
}

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

function onesCount(n: bigint): number {
  return n.toString(2).replace(/0/g, '').length;
}

/**
 * How many hashes a proof for `index` in a tree of `size` holds: the inner ones, then the border's.
 * Both numbers must be safe non-negative integers with index < size.
 */
export function inclusionProofLength(index: number, size: number): { inner: number; border: number } {
  const i = BigInt(index);
  const inner = bitLength(i ^ BigInt(size - 1));
  return { inner, border: onesCount(i >> BigInt(inner)) };
}

/**
 * The root a proof leads to from `leaf` (a leaf hash) at `index` in a tree of `size`.
 * @throws VerificationError VERIFY_INCLUSION_PROOF_INVALID when the index is outside the tree, a
 *   number is not a safe non-negative integer, or the proof has the wrong number or size of hashes.
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  hashes: Uint8Array[],
): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0) fail(`its leaf index ${index} is not a non-negative integer`);
  if (!Number.isSafeInteger(size) || size < 0) fail(`its tree size ${size} is not a non-negative integer`);
  if (index >= size) fail(`the leaf index ${index} is not inside a tree of ${size} leaves`);
  if (leaf.length !== HASH_BYTES) fail('the leaf hash is not 32 bytes');
  const { inner, border } = inclusionProofLength(index, size);
  if (hashes.length !== inner + border)
    fail(`it has ${hashes.length} hashes where leaf ${index} of a tree of ${size} needs ${inner + border}`);
  let r = leaf;
  hashes.forEach((h, level) => {
    if (h.length !== HASH_BYTES) fail(`its hash ${level + 1} is not 32 bytes`);
    // Below the split the index's bit says which side the sibling is on; on the border, always left.
    const rightChild = level >= inner || ((BigInt(index) >> BigInt(level)) & 1n) === 1n;
    r = rightChild ? nodeHash(h, r) : nodeHash(r, h);
  });
  return r;
}

/**
 * Checks that the leaf hash `leaf` is at `proof.logIndex` of the tree of `proof.treeSize` leaves
 * whose root is `proof.rootHash`.
 * @throws VerificationError VERIFY_INCLUSION_PROOF_INVALID when the index is not inside the tree,
 *   the proof has the wrong number of hashes, or it leads to another root.
 */
export function verifyInclusion(proof: InclusionProof, leaf: Uint8Array): void {
  const root = rootFromInclusionProof(proof.logIndex, proof.treeSize, leaf, proof.hashes);
  if (proof.rootHash.length !== HASH_BYTES || !bytesEqual(root, proof.rootHash))
    fail("the root it leads to is not the proof's root hash");
}

/**
 * Merkle inclusion proofs of RFC 9162 §2.1.3.2 (the RFC 6962 tree Rekor and every tile log use):
 * leaf hash SHA-256(0x00 ‖ entry), node hash SHA-256(0x01 ‖ left ‖ right).
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { der } from '../encoding/der.ts';

function fail(why: string): never {
  throw new VerificationError('VERIFY_INCLUSION_PROOF_INVALID', `The inclusion proof does not check: ${why}.`);
}

export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256Bytes(der.concat([new Uint8Array([0]), entry]));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Bytes(der.concat([new Uint8Array([1]), left, right]));
}

/** The root a proof leads to from `leaf` at `index` in a tree of `size`. @throws VERIFY_INCLUSION_PROOF_INVALID */
export function rootFromProof(index: number, size: number, leaf: Uint8Array, hashes: Uint8Array[]): Uint8Array {
  if (!(index >= 0 && index < size)) fail(`the index ${index} is not inside a tree of ${size}`);
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leaf;
  for (const p of hashes) {
    if (p.length !== 32) fail('a proof hash is not 32 bytes');
    if (sn === 0n) fail('it has more hashes than the tree has levels');
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) [fn, sn] = [fn >> 1n, sn >> 1n];
    } else r = nodeHash(r, p);
    [fn, sn] = [fn >> 1n, sn >> 1n];
  }
  if (sn !== 0n) fail('it has fewer hashes than the tree has levels');
  return r;
}

/** Checks that `entry` is at `index` of the tree of `size` whose root is `root`. @throws VERIFY_INCLUSION_PROOF_INVALID */
export function verifyInclusion(
  index: number,
  size: number,
  entry: Uint8Array,
  hashes: Uint8Array[],
  root: Uint8Array,
): void {
  if (!bytesEqual(rootFromProof(index, size, leafHash(entry), hashes), root))
    fail("the root it leads to is not the proof's root hash");
}

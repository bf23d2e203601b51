/**
 * Signature variants that a real tool writes but no real tool verifies, recognised so a
 * verification result can say why such a signature does not count instead of calling it forged.
 *
 * Found with cosign 2.5, cosign 3.1 and skopeo 1.18 (README, "Formats and tool behaviour learned
 * here"; pinned in test/integration/verify-interop.test.ts and external-openssl.test.ts): every
 * verifier here hashes ECDSA with SHA-256 whatever the curve and uses pure Ed25519, in both the
 * legacy and the bundle format. cosign 3.1 instead signs P-384 keys over SHA-384,
 * P-521 keys over SHA-512 (both formats) and Ed25519 keys with Ed25519ph (legacy format; its
 * bundle signing with Ed25519 fails its own check), and then refuses what it wrote.
 * ECDSA: FIPS 186-5 with the hashes of FIPS 180-4; Ed25519ph: RFC 8032 §5.1.
 */
import type { KeyAlgorithm } from './pkcs.ts';
import { CURVE_BYTES } from './pkcs.ts';
import { derToRaw } from './signature.ts';
import { ed25519PublicKey, verifyEd25519ph } from './ed25519.ts';

export type SignatureVariant = 'ecdsa-sha384' | 'ecdsa-sha512' | 'ed25519ph';

/** How each variant is named in results. */
export const VARIANT_NAMES: Record<SignatureVariant, string> = {
  'ecdsa-sha384': 'ECDSA over SHA-384',
  'ecdsa-sha512': 'ECDSA over SHA-512',
  ed25519ph: 'Ed25519ph (pre-hashed Ed25519)',
};

/**
 * Which refused variant `signature` is over `data`, or null when it is none of them. `key` is the
 * verifying CryptoKey of `spki` (as importPublicKey returns it); RSA keys have no such variant.
 */
export async function findSignatureVariant(
  key: CryptoKey,
  algorithm: KeyAlgorithm,
  spki: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<SignatureVariant | null> {
  if (algorithm.kind === 'ed25519') {
    return verifyEd25519ph(ed25519PublicKey(spki), data, signature) ? 'ed25519ph' : null;
  }
  if (algorithm.kind !== 'ecdsa') return null;
  let raw: Uint8Array;
  try {
    raw = derToRaw(signature, CURVE_BYTES[algorithm.curve]);
  } catch {
    return null;
  }
  const subtle = globalThis.crypto.subtle;
  for (const [hash, variant] of [
    ['SHA-384', 'ecdsa-sha384'],
    ['SHA-512', 'ecdsa-sha512'],
  ] as const) {
    // A runtime that refuses to judge a signature (it throws) has not recognised this variant.
    const ok = await subtle
      .verify({ name: 'ECDSA', hash }, key, raw as BufferSource, data as BufferSource)
      .catch(() => false);
    if (ok) return variant;
  }
  return null;
}

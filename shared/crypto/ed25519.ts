/**
 * The two Ed25519 variants of RFC 8032 §5.1 that cosign tools write
 * (https://www.rfc-editor.org/rfc/rfc8032#section-5.1):
 *
 * - pure Ed25519 over the message itself: what cosign 2.5 and skopeo 1.18 sign `.sig` payloads
 *   with, and what cosign 2.5, cosign 3.1 and containers/image verify, in both formats;
 * - Ed25519ph, over SHA-512 of the message with the `SigEd25519 no Ed25519 collisions` dom2
 *   prefix: what cosign 3.1 signs with in the legacy format (`--new-bundle-format=false`), which
 *   neither cosign nor skopeo then accepts.
 *
 * The page verifies pure Ed25519 with WebCrypto (webcrypto.ts); noble is used here to recognise
 * an Ed25519ph signature, so a result can say why such a signature does not count.
 */
import { ed25519ph } from '@noble/curves/ed25519.js';
import { KeyError } from '../errors.ts';
import { decodeBitString, parseDer, sequence, withDer } from '../encoding/der.ts';

/**
 * The 32-byte public key inside an Ed25519 SubjectPublicKeyInfo.
 * @throws KeyError KEY_DER_INVALID when `spki` is not an Ed25519 SPKI.
 */
export function ed25519PublicKey(spki: Uint8Array): Uint8Array {
  const key = withDer('KEY_DER_INVALID', 'The Ed25519 public key is not valid DER', () => {
    const [, bits] = sequence(parseDer(spki), 'SubjectPublicKeyInfo');
    return decodeBitString(bits, 'subjectPublicKey');
  });
  if (key.length !== 32) throw new KeyError('KEY_DER_INVALID', 'An Ed25519 public key is 32 bytes.');
  return key;
}

/** True when `signature` is a valid Ed25519ph (RFC 8032, empty context) signature of `message`. */
export function verifyEd25519ph(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed25519ph.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

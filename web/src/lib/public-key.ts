/**
 * A public key typed or pasted into a form (PEM, or base64 of the SubjectPublicKeyInfo DER), read
 * once for the pages that verify with one (Verify, Tree, Copy).
 */
import { parsePublicKey, publicKeyPem } from '../../../shared/crypto/keys.ts';
import { algorithmName, type PublicKeyInfo } from '../../../shared/crypto/pkcs.ts';
import { fingerprint, type Fingerprint } from '../../../shared/crypto/webcrypto.ts';
import { describeError } from './errors.ts';

export type PublicKeyText =
  | { ok: true; spki: Uint8Array; fingerprint: Fingerprint; algorithm: string; pem: string }
  | { ok: false; message: string };

/** A key already read (by a verification link, say), as a form shows it. */
export function publicKeyText(info: PublicKeyInfo): PublicKeyText & { ok: true } {
  return {
    ok: true,
    spki: info.spki,
    fingerprint: fingerprint(info.spki),
    algorithm: algorithmName(info.algorithm),
    pem: publicKeyPem(info.spki),
  };
}

/** The key in `text`, or why it is not one; null when the text is empty. */
export function readPublicKeyText(text: string): PublicKeyText | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  try {
    return publicKeyText(parsePublicKey(trimmed));
  } catch (e) {
    return { ok: false, message: describeError(e).message };
  }
}

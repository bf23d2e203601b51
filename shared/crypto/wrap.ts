/**
 * Wrapping a private key with a passkey's WebAuthn PRF output: the 32-byte PRF result goes through
 * HKDF-SHA-256 (RFC 5869) to an AES-256-GCM key, which encrypts the PKCS#8 with a fresh 12-byte
 * IV. The credential id is the additional data, so a wrapped key moved to another passkey's
 * record does not open. The PRF salt (chosen at random per wrap) and the IV are stored beside the
 * wrapped key; neither is secret.
 */
import { KeyError, PasskeyError } from '../errors.ts';
import { utf8 } from '../encoding/base64.ts';
import { randomBytes } from './webcrypto.ts';

export const PRF_SALT_BYTES = 32;
export const IV_BYTES = 12;
const HKDF_INFO = utf8('cosign-web passkey key wrap v1');

export interface WrappedKey {
  /** The PRF input (`prf.eval.first`) this key was wrapped under. */
  prfSalt: Uint8Array;
  iv: Uint8Array;
  /** AES-GCM ciphertext and tag of the PKCS#8. */
  wrapped: Uint8Array;
}

async function aesKey(prfOutput: Uint8Array, usage: KeyUsage): Promise<CryptoKey> {
  if (prfOutput.length < 32) {
    throw new PasskeyError('PASSKEY_PRF_UNSUPPORTED', 'The passkey returned too short a PRF secret to protect a key.');
  }
  const subtle = globalThis.crypto.subtle;
  const ikm = await subtle.importKey('raw', prfOutput as BufferSource, 'HKDF', false, ['deriveKey']);
  return subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(32), info: HKDF_INFO as BufferSource },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    [usage],
  );
}

/** A fresh random PRF salt for a new wrap. */
export function newPrfSalt(): Uint8Array {
  return randomBytes(PRF_SALT_BYTES);
}

/** Encrypts `pkcs8` under the PRF output obtained for `prfSalt`. */
export async function wrapPrivateKey(
  prfOutput: Uint8Array,
  prfSalt: Uint8Array,
  credentialId: Uint8Array,
  pkcs8: Uint8Array,
): Promise<WrappedKey> {
  const iv = randomBytes(IV_BYTES);
  const key = await aesKey(prfOutput, 'encrypt');
  const wrapped = new Uint8Array(
    await globalThis.crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: iv as BufferSource, additionalData: credentialId as BufferSource },
      key,
      pkcs8 as BufferSource,
    ),
  );
  return { prfSalt, iv, wrapped };
}

/**
 * Decrypts a wrapped key. The caller must zero the returned bytes once imported.
 * @throws PasskeyError PASSKEY_UNWRAP_FAILED when the PRF output or the record does not match.
 */
export async function unwrapPrivateKey(
  prfOutput: Uint8Array,
  credentialId: Uint8Array,
  w: WrappedKey,
): Promise<Uint8Array> {
  const key = await aesKey(prfOutput, 'decrypt');
  try {
    return new Uint8Array(
      await globalThis.crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: w.iv as BufferSource, additionalData: credentialId as BufferSource },
        key,
        w.wrapped as BufferSource,
      ),
    );
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new PasskeyError(
      'PASSKEY_UNWRAP_FAILED',
      'This passkey did not open the key: it is not the passkey the key was created with.',
      { cause: e },
    );
  }
}

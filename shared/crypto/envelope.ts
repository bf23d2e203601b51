/**
 * cosign's encrypted private key: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (cosign 2.x and later) or
 * `ENCRYPTED COSIGN PRIVATE KEY` (older), whose body is a JSON envelope from
 * go-securesystemslib's `encrypted` package:
 *
 *   {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<b64 32 bytes>"},
 *    "cipher":{"name":"nacl/secretbox","nonce":"<b64 24 bytes>"},
 *    "ciphertext":"<b64: 16-byte Poly1305 tag ‖ XSalsa20 ciphertext of the PKCS#8 DER>"}
 *
 * The secretbox key is scrypt(password, salt, N, r, p, 32), N, r and p read from the envelope
 * (cosign 2.5 writes N=65536, older keys N=32768; r=8, p=1). The keys cosign wrote are in
 * test/vectors/keys (README there). See
 * https://github.com/secure-systems-lab/go-securesystemslib/blob/main/encrypted/encrypted.go
 */
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { KeyError } from '../errors.ts';
import { fromBase64, toBase64, utf8 } from '../encoding/base64.ts';
import { decodePem, encodePem } from '../encoding/pem.ts';
import { MAX_JSON_DEPTH, jsonDepthWithin } from '../encoding/json-depth.ts';
import { parsePkcs8, type PrivateKeyInfo } from './pkcs.ts';
import { COSIGN_SCRYPT, checkScryptParams, type ScryptParams } from './scrypt.ts';
import { randomBytes } from './webcrypto.ts';

export const SIGSTORE_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const LEGACY_COSIGN_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY';
export const ENCRYPTED_LABELS = [SIGSTORE_LABEL, LEGACY_COSIGN_LABEL] as const;

export const SALT_BYTES = 32;
export const NONCE_BYTES = 24;
const TAG_BYTES = 16;

/** A parsed, not yet decrypted, cosign key. */
export interface EncryptedKey {
  label: (typeof ENCRYPTED_LABELS)[number];
  scrypt: ScryptParams;
  salt: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** Derives the secretbox key from the password; the caller decides where scrypt runs. */
export type DeriveKey = (password: Uint8Array, salt: Uint8Array, params: ScryptParams) => Promise<Uint8Array>;

function envelopeError(detail: string): KeyError {
  return new KeyError('KEY_ENVELOPE_INVALID', `The key file's contents are not a cosign key envelope: ${detail}.`);
}

function field(obj: unknown, name: string, path: string): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw envelopeError(`"${path}" is not an object`);
  const v = (obj as Record<string, unknown>)[name];
  if (v === undefined || v === null) throw envelopeError(`"${path}.${name}" is missing`);
  return v;
}
function str(obj: unknown, name: string, path: string): string {
  const v = field(obj, name, path);
  if (typeof v !== 'string') throw envelopeError(`"${path}.${name}" is not a string`);
  return v;
}
function int(obj: unknown, name: string, path: string): number {
  const v = field(obj, name, path);
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw envelopeError(`"${path}.${name}" is not an integer`);
  return v;
}
function b64(obj: unknown, name: string, path: string): Uint8Array {
  const bytes = fromBase64(str(obj, name, path));
  if (!bytes) throw envelopeError(`"${path}.${name}" is not base64`);
  return bytes;
}

/**
 * Reads a cosign encrypted key PEM without decrypting it.
 * @throws KeyError KEY_PEM_INVALID, KEY_PEM_LABEL_UNKNOWN, KEY_ENVELOPE_INVALID,
 *   KEY_KDF_UNSUPPORTED, KEY_KDF_PARAMS_REFUSED, KEY_CIPHER_UNSUPPORTED, KEY_SALT_INVALID,
 *   KEY_NONCE_INVALID
 */
export function parseEncryptedKey(pem: string): EncryptedKey {
  const block = decodePem(pem);
  if (!(ENCRYPTED_LABELS as readonly string[]).includes(block.label)) {
    throw new KeyError(
      'KEY_PEM_LABEL_UNKNOWN',
      `This file holds a "${block.label}" block, not a cosign private key ("${SIGSTORE_LABEL}" or "${LEGACY_COSIGN_LABEL}").`,
    );
  }
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(block.bytes);
    if (!jsonDepthWithin(text)) throw envelopeError(`it is nested more than ${MAX_JSON_DEPTH} levels deep`);
    json = JSON.parse(text);
  } catch (e) {
    throw e instanceof KeyError ? e : envelopeError('it is not JSON');
  }
  const kdf = field(json, 'kdf', 'envelope');
  const kdfName = str(kdf, 'name', 'kdf');
  if (kdfName !== 'scrypt') {
    throw new KeyError(
      'KEY_KDF_UNSUPPORTED',
      `The key is protected with the "${kdfName}" key derivation, but cosign keys use scrypt.`,
    );
  }
  const params = field(kdf, 'params', 'kdf');
  const scrypt = {
    N: int(params, 'N', 'kdf.params'),
    r: int(params, 'r', 'kdf.params'),
    p: int(params, 'p', 'kdf.params'),
  };
  const salt = b64(kdf, 'salt', 'kdf');
  const cipher = field(json, 'cipher', 'envelope');
  const cipherName = str(cipher, 'name', 'cipher');
  if (cipherName !== 'nacl/secretbox') {
    throw new KeyError(
      'KEY_CIPHER_UNSUPPORTED',
      `The key is encrypted with "${cipherName}", but cosign keys use nacl/secretbox.`,
    );
  }
  const nonce = b64(cipher, 'nonce', 'cipher');
  const ciphertext = b64(json, 'ciphertext', 'envelope');
  checkScryptParams(scrypt);
  if (salt.length !== SALT_BYTES) {
    throw new KeyError(
      'KEY_SALT_INVALID',
      `The key's scrypt salt is ${salt.length} bytes; cosign keys have ${SALT_BYTES}.`,
    );
  }
  if (nonce.length !== NONCE_BYTES) {
    throw new KeyError(
      'KEY_NONCE_INVALID',
      `The key's secretbox nonce is ${nonce.length} bytes; it must be ${NONCE_BYTES}.`,
    );
  }
  if (ciphertext.length <= TAG_BYTES) throw envelopeError('the ciphertext is too short to hold a key');
  return { label: block.label as EncryptedKey['label'], scrypt, salt, nonce, ciphertext };
}

/**
 * Opens the secretbox with a derived key and reads the PKCS#8 inside.
 * @throws KeyError KEY_PASSWORD_WRONG when the box does not open; KEY_NOT_PKCS8 and the other
 *   {@link parsePkcs8} codes when what is inside is not a usable key.
 */
export function openEncryptedKey(enc: EncryptedKey, secretboxKey: Uint8Array): PrivateKeyInfo {
  let pkcs8: Uint8Array;
  try {
    pkcs8 = xsalsa20poly1305(secretboxKey, enc.nonce).decrypt(enc.ciphertext);
  } catch {
    throw new KeyError('KEY_PASSWORD_WRONG', 'The password is wrong: the key did not decrypt with it.');
  }
  try {
    return parsePkcs8(pkcs8);
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * Parses, derives and decrypts in one go.
 * @throws KeyError as {@link parseEncryptedKey} and {@link openEncryptedKey}.
 */
export async function decryptCosignKey(pem: string, password: string, derive: DeriveKey): Promise<PrivateKeyInfo> {
  const enc = parseEncryptedKey(pem);
  const key = await derive(utf8(password), enc.salt, enc.scrypt);
  try {
    return openEncryptedKey(enc, key);
  } finally {
    key.fill(0);
  }
}

/**
 * Encrypts a PKCS#8 private key into a cosign key PEM exactly as cosign 2.5 writes one: label
 * `ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt N=65536 r=8 p=1 with a fresh 32-byte salt, secretbox
 * with a fresh 24-byte nonce, the JSON fields in Go's order.
 */
export async function encryptCosignKey(
  pkcs8: Uint8Array,
  password: string,
  derive: DeriveKey,
  params: ScryptParams = COSIGN_SCRYPT,
): Promise<string> {
  checkScryptParams(params);
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = await derive(utf8(password), salt, params);
  const ciphertext = xsalsa20poly1305(key, nonce).encrypt(pkcs8);
  key.fill(0);
  const envelope = {
    kdf: { name: 'scrypt', params: { N: params.N, r: params.r, p: params.p }, salt: toBase64(salt) },
    cipher: { name: 'nacl/secretbox', nonce: toBase64(nonce) },
    ciphertext: toBase64(ciphertext),
  };
  return encodePem(SIGSTORE_LABEL, utf8(JSON.stringify(envelope)));
}

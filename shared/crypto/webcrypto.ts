/**
 * The project's use of WebCrypto (`crypto.subtle`, the same API in browsers, workers and Node):
 * importing private keys as non-extractable CryptoKeys, generating keys, signing and verifying
 * with cosign's conventions (SHA-256 for every algorithm that takes a hash; DER ECDSA
 * signatures). A CryptoKey's algorithm and usages are checked before it is used.
 * (Patterned on panva/jose `lib/crypto_key.ts`.)
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { KeyError } from '../errors.ts';
import { toBase64, toHex } from '../encoding/base64.ts';
import { CURVE_BYTES, parseSpki, type Curve, type KeyAlgorithm, type PrivateKeyInfo } from './pkcs.ts';
import { derToRaw, rawToDer } from './signature.ts';

type ImportParams = EcKeyImportParams | RsaHashedImportParams | Algorithm;

/** WebCrypto's SubtleCrypto. @throws KeyError KEY_WEBCRYPTO_UNSUPPORTED where there is none. */
export function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new KeyError(
      'KEY_WEBCRYPTO_UNSUPPORTED',
      'This browser has no WebCrypto here; open the page over HTTPS or on localhost.',
    );
  }
  return s;
}

/** WebCrypto import parameters for an algorithm; RSA and ECDSA hash with SHA-256 as cosign does. */
export function importParams(a: KeyAlgorithm): ImportParams {
  switch (a.kind) {
    case 'ecdsa':
      return { name: 'ECDSA', namedCurve: a.curve } satisfies EcKeyImportParams;
    case 'rsa':
      return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } satisfies RsaHashedImportParams;
    case 'ed25519':
      return { name: 'Ed25519' };
  }
}

function signParams(a: KeyAlgorithm): AlgorithmIdentifier | EcdsaParams {
  // SHA-256 for every curve: containers/image always hashes with SHA-256 and cosign's default
  // signature digest is SHA-256, also for P-384 and P-521; cosign 3.1's P-384 over SHA-384 is
  // refused by cosign 2.5, skopeo and itself (README, "Formats and tool behaviour learned here").
  return a.kind === 'ecdsa' ? { name: 'ECDSA', hash: 'SHA-256' } : importParams(a);
}

/** What a CryptoKey says its algorithm is, in this project's terms; null when not a signing key. */
export function algorithmOfCryptoKey(key: CryptoKey): KeyAlgorithm | null {
  const alg = key.algorithm as KeyAlgorithm & { name: string; namedCurve?: string; modulusLength?: number };
  if (
    alg.name === 'ECDSA' &&
    (alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384' || alg.namedCurve === 'P-521')
  ) {
    return { kind: 'ecdsa', curve: alg.namedCurve };
  }
  if (alg.name === 'RSASSA-PKCS1-v1_5' && typeof alg.modulusLength === 'number') {
    return { kind: 'rsa', bits: alg.modulusLength };
  }
  if (alg.name === 'Ed25519') return { kind: 'ed25519' };
  return null;
}

function checkKey(key: CryptoKey, a: KeyAlgorithm, usage: KeyUsage): void {
  const actual = algorithmOfCryptoKey(key);
  const same =
    actual !== null &&
    actual.kind === a.kind &&
    (a.kind !== 'ecdsa' || (actual.kind === 'ecdsa' && actual.curve === a.curve));
  if (!same || !key.usages.includes(usage)) {
    throw new KeyError('KEY_MISMATCH', `This key cannot ${usage} with ${a.kind}: it was made for something else.`);
  }
}

/**
 * Imports a private key into WebCrypto. Non-extractable by default: script on the page can sign
 * with it but never read it.
 * @throws KeyError KEY_WEBCRYPTO_UNSUPPORTED when this runtime cannot hold the algorithm.
 */
export async function importPrivateKey(info: PrivateKeyInfo, extractable = false): Promise<CryptoKey> {
  try {
    return await subtle().importKey('pkcs8', info.pkcs8 as BufferSource, importParams(info.algorithm), extractable, [
      'sign',
    ]);
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new KeyError(
      'KEY_WEBCRYPTO_UNSUPPORTED',
      `This browser could not load the ${info.algorithm.kind} key into WebCrypto (${(e as Error).name}).`,
      { cause: e },
    );
  }
}

/** Imports a SubjectPublicKeyInfo for verifying. @throws KeyError */
export async function importPublicKey(spki: Uint8Array): Promise<{ key: CryptoKey; algorithm: KeyAlgorithm }> {
  const { algorithm } = parseSpki(spki);
  try {
    const key = await subtle().importKey('spki', spki as BufferSource, importParams(algorithm), true, ['verify']);
    return { key, algorithm };
  } catch (e) {
    throw new KeyError(
      'KEY_WEBCRYPTO_UNSUPPORTED',
      `This browser could not load the public key (${(e as Error).name}).`,
      {
        cause: e,
      },
    );
  }
}

/**
 * Signs `data` with a private CryptoKey as cosign does: ECDSA over SHA-256 with a DER signature,
 * RSASSA-PKCS1-v1_5 with SHA-256, or pure Ed25519.
 * @throws KeyError KEY_MISMATCH when the key is not a signing key of `algorithm`.
 */
export async function signWithCryptoKey(
  key: CryptoKey,
  algorithm: KeyAlgorithm,
  data: Uint8Array,
): Promise<Uint8Array> {
  checkKey(key, algorithm, 'sign');
  const sig = new Uint8Array(await subtle().sign(signParams(algorithm), key, data as BufferSource));
  return algorithm.kind === 'ecdsa' ? rawToDer(sig, CURVE_BYTES[algorithm.curve]) : sig;
}

/**
 * Verifies a cosign-style signature (DER for ECDSA). High-S ECDSA signatures are accepted, as Go
 * produces them about half the time. Returns false for a signature that does not verify, does not
 * parse, or that the runtime refuses to judge (`crypto.subtle.verify` throwing, as WebCrypto
 * implementations may for lengths or values they cannot use): a signature is data from a registry,
 * and no such data may crash a verification.
 * @throws KeyError KEY_MISMATCH when the key is not a verifying key of `algorithm` (the caller's
 *   error, not the signature's), KEY_WEBCRYPTO_UNSUPPORTED when there is no WebCrypto.
 */
export async function verifyWithCryptoKey(
  key: CryptoKey,
  algorithm: KeyAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  checkKey(key, algorithm, 'verify');
  return verifyDerSignature(key, algorithm, signParams(algorithm), data, signature);
}

/**
 * `crypto.subtle.verify` of a signature in DER for ECDSA (WebCrypto wants r ‖ s): false for a
 * signature that does not parse or that the runtime refuses to judge.
 * @throws KeyError KEY_WEBCRYPTO_UNSUPPORTED when there is no WebCrypto.
 */
export async function verifyDerSignature(
  key: CryptoKey,
  algorithm: KeyAlgorithm,
  params: AlgorithmIdentifier | EcdsaParams | RsaPssParams,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const s = subtle();
  let sig = signature;
  if (algorithm.kind === 'ecdsa') {
    try {
      sig = derToRaw(signature, CURVE_BYTES[algorithm.curve]);
    } catch {
      return false;
    }
  }
  try {
    return await s.verify(params, key, sig as BufferSource, data as BufferSource);
  } catch {
    return false;
  }
}

/** Generates an ECDSA key pair on `curve`. */
export async function generateEcdsaKeyPair(curve: Curve, extractable: boolean): Promise<CryptoKeyPair> {
  return subtle().generateKey({ name: 'ECDSA', namedCurve: curve }, extractable, ['sign', 'verify']);
}

/** Exports the PKCS#8 of an extractable private key. */
export async function exportPkcs8(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle().exportKey('pkcs8', key));
}

/** Exports a public key's SubjectPublicKeyInfo. */
export async function exportSpki(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle().exportKey('spki', key));
}

/** A public key's fingerprint: SHA-256 of the SPKI DER, as hex and as cosign's bundle `hint`. */
export interface Fingerprint {
  hex: string;
  /** Standard base64 of the digest: the `verificationMaterial.publicKey.hint` cosign writes. */
  hint: string;
}

export function fingerprint(spki: Uint8Array): Fingerprint {
  const digest = sha256(spki);
  return { hex: toHex(digest), hint: toBase64(digest) };
}

/** Cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

/**
 * One signature against one public key, as cosign 2.5, cosign 3.1 and containers/image judge it,
 * with the reason in words when it fails.
 *
 * Accepted, in both formats (legacy payload bytes; bundle DSSE PAE): ECDSA on P-256, P-384 or P-521
 * over SHA-256 with a DER signature (high S accepted, as Go makes them), RSASSA-PKCS1-v1_5 over
 * SHA-256, and pure Ed25519. That is what every verifier here accepts and nothing more: cosign 3.1
 * writes ECDSA over SHA-384/SHA-512 for P-384/P-521 and Ed25519ph in the legacy format, and then
 * neither it, cosign 2.5 nor skopeo accepts those, so they are recognised and refused by name
 * (crypto/variants.ts). A failing signature is further told apart: malformed, made by another key
 * (a bundle's key hint names another key, or a key the viewer trusts verifies it), or simply
 * not verifying.
 */
import type { Reason, VerificationErrorCode } from '../errors.ts';
import { fromBase64, toHex } from '../encoding/base64.ts';
import { CURVE_BYTES, algorithmName, parseSpki, type KeyAlgorithm } from '../crypto/pkcs.ts';
import { derToRaw } from '../crypto/signature.ts';
import { VARIANT_NAMES, findSignatureVariant } from '../crypto/variants.ts';
import { fingerprint, importPublicKey, verifyWithCryptoKey, type Fingerprint } from '../crypto/webcrypto.ts';

/** A public key ready to verify with. */
export interface PreparedKey {
  spki: Uint8Array;
  algorithm: KeyAlgorithm;
  cryptoKey: CryptoKey;
  fingerprint: Fingerprint;
  /** The viewer's name for it, for other keys the viewer trusts. */
  name?: string;
}

export type SignatureJudgement =
  | { ok: true; algorithm: string }
  | { ok: false; reason: Reason; otherKey: { fingerprint: string; name: string | null } | null };

/**
 * Imports a SubjectPublicKeyInfo for verifying.
 * @throws KeyError as parseSpki and importPublicKey do.
 */
export async function prepareKey(spki: Uint8Array, name?: string): Promise<PreparedKey> {
  const { algorithm } = parseSpki(spki);
  const { key } = await importPublicKey(spki);
  return { spki, algorithm, cryptoKey: key, fingerprint: fingerprint(spki), ...(name !== undefined ? { name } : {}) };
}

/** Most of the viewer's other keys tried when naming who made a signature. */
const MAX_KNOWN_KEYS = 32;

/**
 * Prepares the viewer's other keys (the first MAX_KNOWN_KEYS), each with what it came from. A key
 * this runtime cannot load is left out: it only loses the "made by" name.
 */
export async function prepareKnownKeys<K extends { spki: Uint8Array; name: string }>(
  keys: readonly K[] = [],
): Promise<{ key: PreparedKey; from: K }[]> {
  const out: { key: PreparedKey; from: K }[] = [];
  for (const from of keys.slice(0, MAX_KNOWN_KEYS)) {
    try {
      out.push({ key: await prepareKey(from.spki, from.name), from });
    } catch {
      // a key this runtime cannot load only loses the "made by" name
    }
  }
  return out;
}

/** "ECDSA P-256 over SHA-256", "RSA 2048, PKCS#1 v1.5 over SHA-256", "Ed25519". */
export function signatureAlgorithmName(a: KeyAlgorithm): string {
  switch (a.kind) {
    case 'ecdsa':
      return `${algorithmName(a)} over SHA-256`;
    case 'rsa':
      return `${algorithmName(a)}, PKCS#1 v1.5 over SHA-256`;
    case 'ed25519':
      return 'Ed25519';
  }
}

function reason(code: VerificationErrorCode, message: string): Reason {
  return { code, message };
}

/** Why a signature's bytes cannot be a signature of this key's kind, or null when they can. */
function malformed(a: KeyAlgorithm, sig: Uint8Array): string | null {
  switch (a.kind) {
    case 'ecdsa':
      try {
        derToRaw(sig, CURVE_BYTES[a.curve]);
        return null;
      } catch (e) {
        return `it is not a DER-encoded ${a.curve} ECDSA signature (${(e as Error).message})`;
      }
    case 'rsa':
      return sig.length === Math.ceil(a.bits / 8)
        ? null
        : `an RSA ${a.bits} signature is ${a.bits / 8} bytes, not ${sig.length}`;
    case 'ed25519':
      return sig.length === 64 ? null : `an Ed25519 signature is 64 bytes, not ${sig.length}`;
  }
}

/** Standard base64 of a signature annotation or bundle field, or null. */
export function decodeSignature(text: string | undefined): Uint8Array | null {
  return text === undefined ? null : fromBase64(text.trim());
}

/** The hex fingerprint a bundle's `hint` (base64 of SHA-256 of the SPKI) stands for, or null. */
export function hintToHex(hint: string): string | null {
  const bytes = fromBase64(hint);
  return bytes && bytes.length === 32 ? toHex(bytes) : null;
}

/**
 * Judges `signature` over `data` with `key`.
 * @param hint a bundle's `verificationMaterial.publicKey.hint`, when there is one.
 * @param others other keys the viewer knows (trusted, or their own), tried only to say who made a failing signature.
 */
export async function judgeSignature(
  key: PreparedKey,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { hint?: string; others?: readonly PreparedKey[]; what: string },
): Promise<SignatureJudgement> {
  const bad = malformed(key.algorithm, signature);
  if (bad !== null) {
    return {
      ok: false,
      reason: reason('VERIFY_SIGNATURE_MALFORMED', `The ${opts.what} is malformed: ${bad}.`),
      otherKey: null,
    };
  }
  if (await verifyWithCryptoKey(key.cryptoKey, key.algorithm, data, signature)) {
    return { ok: true, algorithm: signatureAlgorithmName(key.algorithm) };
  }
  const variant = await findSignatureVariant(key.cryptoKey, key.algorithm, key.spki, data, signature);
  if (variant) {
    return {
      ok: false,
      reason: reason(
        'VERIFY_ALGORITHM_REFUSED',
        `The ${opts.what} is valid for this key only as ${VARIANT_NAMES[variant]}, which cosign 3.1 writes for this kind of key but cosign 2.5, cosign 3.1 and skopeo do not accept (they verify ${signatureAlgorithmName(key.algorithm)}), so it does not count.`,
      ),
      otherKey: null,
    };
  }
  const hintHex = opts.hint !== undefined ? hintToHex(opts.hint) : null;
  if (hintHex !== null && hintHex !== key.fingerprint.hex) {
    const known = opts.others?.find((k) => k.fingerprint.hex === hintHex);
    return {
      ok: false,
      reason: reason(
        'VERIFY_WRONG_KEY',
        `The ${opts.what} was made by another key${known?.name ? `, ${known.name}` : ''} (fingerprint sha256:${hintHex}), not this one.`,
      ),
      otherKey: { fingerprint: hintHex, name: known?.name ?? null },
    };
  }
  for (const other of opts.others ?? []) {
    if (other.fingerprint.hex === key.fingerprint.hex || other.algorithm.kind !== key.algorithm.kind) continue;
    if (malformed(other.algorithm, signature) !== null) continue;
    if (await verifyWithCryptoKey(other.cryptoKey, other.algorithm, data, signature)) {
      return {
        ok: false,
        reason: reason(
          'VERIFY_WRONG_KEY',
          `The ${opts.what} was made by another key of yours, ${other.name ?? 'unnamed'} (fingerprint sha256:${other.fingerprint.hex}), not this one.`,
        ),
        otherKey: { fingerprint: other.fingerprint.hex, name: other.name ?? null },
      };
    }
  }
  const message =
    hintHex === key.fingerprint.hex
      ? `The ${opts.what} does not verify with this key, although the bundle names this key: the signed statement or the signature was changed.`
      : `The ${opts.what} does not verify with this key over these exact bytes: another key made it (nothing in it names which), or it was made over other bytes.`;
  return { ok: false, reason: reason('VERIFY_BAD_SIGNATURE', message), otherKey: null };
}

/**
 * Checking a signature on TUF metadata with a key as securesystemslib writes it in a root's or a
 * delegation's `keys` (https://theupdateframework.github.io/specification/latest/#file-formats-keys,
 * securesystemslib `signer/_key.py` SSlibKey): the signature is over the canonical JSON of `signed`.
 *
 * - `ecdsa` (or `ecdsa-sha2-nistp256` as keytype) with scheme `ecdsa-sha2-nistp256` / `-nistp384`:
 *   PEM SubjectPublicKeyInfo in `keyval.public`, DER signature over SHA-256 / SHA-384 — Sigstore's
 *   root and online keys;
 * - `ed25519` / `ed25519`: the 32-byte public key in hex, a 64-byte signature;
 * - `rsa` with `rsassa-pss-sha256|384|512` (salt as long as the hash) or `rsa-pkcs1v15-sha256|384|512`:
 *   PEM SubjectPublicKeyInfo, at least 2048 bits.
 */
import { fromHex } from '../encoding/base64.ts';
import { decodePem } from '../encoding/pem.ts';
import { parseSpki } from './pkcs.ts';
import { verifySpkiSignature, type HashName, type SignatureScheme } from './verify-spki.ts';

/** A key as a TUF root lists it. */
export interface TufPublicKey {
  keytype: string;
  scheme: string;
  /** `keyval.public`: PEM (ecdsa, rsa) or hex (ed25519). */
  public: string;
}

// An Ed25519 SubjectPublicKeyInfo is this DER prefix and then the 32-byte key (RFC 8410 §4).
const ED25519_SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

const HASH_OF: Record<string, HashName> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

interface Plan {
  spki: Uint8Array;
  scheme: SignatureScheme;
}

/** The SPKI and the way to check, or null for a key type, scheme or key this does not take. */
function planFor(key: TufPublicKey): Plan | null {
  if (key.keytype === 'ed25519' && key.scheme === 'ed25519') {
    const raw = fromHex(key.public);
    if (raw?.length !== 32) return null;
    const spki = new Uint8Array(44);
    spki.set(ED25519_SPKI_PREFIX);
    spki.set(raw, 12);
    return { spki, scheme: { hash: 'SHA-512' } };
  }
  const spki = decodePem(key.public).bytes;
  const { algorithm } = parseSpki(spki);
  const ec = /^ecdsa-sha2-nistp(256|384)$/.exec(key.scheme);
  if (ec && (key.keytype === 'ecdsa' || key.keytype === key.scheme)) {
    const curve = ec[1] === '256' ? 'P-256' : 'P-384';
    if (algorithm.kind !== 'ecdsa' || algorithm.curve !== curve) return null;
    return { spki, scheme: { hash: ec[1] === '256' ? 'SHA-256' : 'SHA-384' } };
  }
  const rsa = /^(rsassa-pss|rsa-pkcs1v15)-(sha256|sha384|sha512)$/.exec(key.scheme);
  if (rsa && key.keytype === 'rsa' && algorithm.kind === 'rsa') {
    const hash = HASH_OF[rsa[2]!]!;
    const saltLength = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 }[hash];
    return { spki, scheme: rsa[1] === 'rsassa-pss' ? { hash, rsaPss: { saltLength } } : { hash } };
  }
  return null;
}

/**
 * True when `signature` is `key`'s signature of `data` (the canonical JSON of a metadata's
 * `signed`). A key of a type or scheme not listed above, a malformed key, a key the runtime cannot
 * load or a malformed signature is false, never an error: TUF counts such a signature as missing.
 */
export async function verifyTufSignature(key: TufPublicKey, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
  let plan: Plan | null;
  try {
    plan = planFor(key);
  } catch {
    return false;
  }
  if (!plan) return false;
  try {
    return await verifySpkiSignature(plan.spki, plan.scheme, data, signature);
  } catch {
    return false;
  }
}

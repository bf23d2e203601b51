/**
 * Verifying a signature given only the digest of what was signed: a Sigstore hashedrekord names
 * the artifact by its digest, and a person may hold just `sha256:<hex>` of a file (the conformance
 * suite's digest mode). WebCrypto always hashes its input, so ECDSA goes through @noble/curves
 * with `prehash: false` (high S accepted, as Go makes them), and RSA PKCS#1 v1.5 is checked by
 * hand: s^e mod n must equal the EMSA-PKCS1-v1_5 encoding of the digest (RFC 8017 §8.2.2, §9.2).
 * Ed25519 signs the message itself and cannot be checked from a digest.
 */
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { children, decodeBitString, decodeUnsigned, parseDer, sequence } from '../encoding/der.ts';
import { toHex } from '../encoding/base64.ts';
import { parseSpki } from './pkcs.ts';
import { HASH_BYTES, type HashName } from './verify-spki.ts';

const NOBLE = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;

/** DER DigestInfo prefixes of RFC 8017 §9.2 note 1. */
const DIGEST_INFO: Record<HashName, string> = {
  'SHA-256': '3031300d060960864801650304020105000420',
  'SHA-384': '3041300d060960864801650304020205000430',
  'SHA-512': '3051300d060960864801650304020305000440',
};

function toBigInt(b: Uint8Array): bigint {
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  return n;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
  }
  return r;
}

function rsaPublic(spki: Uint8Array): { n: bigint; e: bigint; bytes: number } {
  const [, bits] = sequence(parseDer(spki), 'SubjectPublicKeyInfo');
  const [n, e] = children(parseDer(decodeBitString(bits, 'subjectPublicKey')));
  const nBytes = decodeUnsigned(n, 'modulus');
  return { n: toBigInt(nBytes), e: toBigInt(decodeUnsigned(e, 'exponent')), bytes: nBytes.length };
}

function verifyRsaPkcs1(spki: Uint8Array, hash: HashName, digest: Uint8Array, signature: Uint8Array): boolean {
  const { n, e, bytes } = rsaPublic(spki);
  if (signature.length !== bytes) return false;
  const s = toBigInt(signature);
  if (s >= n) return false;
  const em = modPow(s, e, n)
    .toString(16)
    .padStart(bytes * 2, '0');
  const t = DIGEST_INFO[hash] + toHex(digest);
  const padding = bytes * 2 - 6 - t.length;
  if (padding < 16) return false;
  return em === `0001${'f'.repeat(padding)}00${t}`;
}

/**
 * True when `signature` (DER for ECDSA) verifies `digest` under the key `spki`.
 * Never throws for a malformed signature or key: those are false.
 */
export function verifyPrehashed(spki: Uint8Array, hash: HashName, digest: Uint8Array, signature: Uint8Array): boolean {
  if (digest.length !== HASH_BYTES[hash]) return false;
  try {
    const { algorithm } = parseSpki(spki);
    if (algorithm.kind === 'ecdsa') {
      const [, bits] = sequence(parseDer(spki), 'SubjectPublicKeyInfo');
      const point = decodeBitString(bits, 'subjectPublicKey');
      return NOBLE[algorithm.curve].verify(signature, digest, point, { prehash: false, lowS: false, format: 'der' });
    }
    if (algorithm.kind === 'rsa') return verifyRsaPkcs1(spki, hash, digest, signature);
    return false;
  } catch {
    return false; // a key or signature that does not parse verifies nothing
  }
}

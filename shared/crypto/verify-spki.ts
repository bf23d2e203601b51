/**
 * Verifying a signature with any key a certificate, a log or a timestamp authority may hold, with
 * the hash their algorithm names — unlike cosign's own signatures (webcrypto.ts), which always hash
 * with SHA-256. ECDSA on P-256/P-384/P-521 (DER signatures, high S accepted), RSA PKCS#1 v1.5 and
 * PSS, Ed25519. And the X.509 signature algorithms by OID, as certificates and CMS name them.
 * https://www.rfc-editor.org/rfc/rfc5758 (ECDSA), rfc4055 (RSA-PSS), rfc8410 (Ed25519)
 */
import { toHex } from '../encoding/base64.ts';
import { children, decodeOid, parseDer, type DerNode } from '../encoding/der.ts';
import { CURVE_BYTES, parseSpki } from './pkcs.ts';
import { derToRaw } from './signature.ts';
import { subtle } from './webcrypto.ts';

export type HashName = 'SHA-256' | 'SHA-384' | 'SHA-512';

/** How to check a signature: the hash, and for RSA whether it is PSS (with its salt length). */
export interface SignatureScheme {
  hash: HashName;
  rsaPss?: { saltLength: number } | undefined;
}

const HASH_BYTES: Record<HashName, number> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

const BY_OID: Record<string, SignatureScheme> = {
  '1.2.840.10045.4.3.2': { hash: 'SHA-256' }, // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': { hash: 'SHA-384' },
  '1.2.840.10045.4.3.4': { hash: 'SHA-512' },
  '1.2.840.113549.1.1.11': { hash: 'SHA-256' }, // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': { hash: 'SHA-384' },
  '1.2.840.113549.1.1.13': { hash: 'SHA-512' },
  '1.3.101.112': { hash: 'SHA-512' }, // Ed25519 (hash not used)
};

const HASH_OIDS: Record<string, HashName> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};

/** The hash an AlgorithmIdentifier OID names (SHA-2 only), or null. */
export function hashOfOid(oid: string): HashName | null {
  return HASH_OIDS[oid] ?? null;
}

/** RSASSA-PSS-params (RFC 4055): hash and salt length; defaults are SHA-1, which is refused. */
function pssScheme(params: DerNode | undefined): SignatureScheme | null {
  let hash: HashName | null = null;
  let saltLength = 20;
  for (const field of params ? children(params) : []) {
    const inner = children(field)[0];
    if (field.tag === 0xa0 && inner) hash = HASH_OIDS[decodeOid(children(inner)[0])] ?? null;
    if (field.tag === 0xa2 && inner) saltLength = Number.parseInt(toHex(inner.value), 16);
  }
  return hash ? { hash, rsaPss: { saltLength } } : null;
}

/**
 * The scheme an X.509/CMS signature algorithm (OID and DER parameters) names, or null when it
 * is not one Sigstore's keys use.
 */
export function signatureScheme(oid: string, paramsDer?: Uint8Array): SignatureScheme | null {
  if (oid === '1.2.840.113549.1.1.10') {
    try {
      return pssScheme(paramsDer && paramsDer.length ? parseDer(paramsDer) : undefined);
    } catch {
      return null;
    }
  }
  return BY_OID[oid] ?? null;
}

const cache = new Map<string, Promise<CryptoKey>>();

function importFor(spki: Uint8Array, scheme: SignatureScheme): Promise<CryptoKey> {
  const { algorithm } = parseSpki(spki);
  const params: AlgorithmIdentifier | EcKeyImportParams | RsaHashedImportParams =
    algorithm.kind === 'ecdsa'
      ? { name: 'ECDSA', namedCurve: algorithm.curve }
      : algorithm.kind === 'rsa'
        ? { name: scheme.rsaPss ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5', hash: scheme.hash }
        : { name: 'Ed25519' };
  const id = `${toHex(spki)}|${JSON.stringify(params)}`;
  let key = cache.get(id);
  if (!key) {
    if (cache.size > 256) cache.clear();
    key = subtle().importKey('spki', spki as BufferSource, params, false, ['verify']);
    cache.set(id, key);
  }
  return key;
}

/**
 * True when `signature` (DER for ECDSA) verifies `data` under `spki` with `scheme`. A malformed
 * signature or one by another key is false.
 * @throws KeyError for a key this runtime cannot use (parseSpki's codes).
 */
export async function verifySpkiSignature(
  spki: Uint8Array,
  scheme: SignatureScheme | HashName,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  const s: SignatureScheme = typeof scheme === 'string' ? { hash: scheme } : scheme;
  const { algorithm } = parseSpki(spki);
  const key = await importFor(spki, s);
  let sig = signature;
  let params: AlgorithmIdentifier | EcdsaParams | RsaPssParams;
  if (algorithm.kind === 'ecdsa') {
    try {
      sig = derToRaw(signature, CURVE_BYTES[algorithm.curve]);
    } catch {
      return false;
    }
    params = { name: 'ECDSA', hash: s.hash };
  } else if (algorithm.kind === 'rsa') {
    params = s.rsaPss ? { name: 'RSA-PSS', saltLength: s.rsaPss.saltLength } : { name: 'RSASSA-PKCS1-v1_5' };
  } else params = { name: 'Ed25519' };
  try {
    return await subtle().verify(params, key, sig as BufferSource, data as BufferSource);
  } catch {
    return false;
  }
}

/** A SHA-2 digest through WebCrypto. */
export async function digest(hash: HashName, data: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(await subtle().digest(hash, data as BufferSource));
  if (out.length !== HASH_BYTES[hash]) throw new Error('digest length');
  return out;
}

/**
 * Verifying a signature with any key a certificate, a log or a timestamp authority may hold, with
 * the hash their algorithm names — unlike cosign's own signatures (webcrypto.ts), which always hash
 * with SHA-256. ECDSA on P-256/P-384/P-521 (DER signatures, high S accepted as Go does), RSA
 * PKCS#1 v1.5 and PSS, Ed25519. And the X.509 signature algorithms by OID, as certificates and CMS
 * name them, with Go's crypto/x509 rules for RSASSA-PSS parameters.
 * https://www.rfc-editor.org/rfc/rfc5758 (ECDSA), rfc4055 (RSA-PSS), rfc8410 (Ed25519)
 */
import { KeyError } from '../errors.ts';
import { toHex } from '../encoding/base64.ts';
import { DerError, children, decodeOid, decodeSmallInt, parseDer, type DerNode } from '../encoding/der.ts';
import { parseSpki, type KeyAlgorithm } from './pkcs.ts';
import { subtle, verifyDerSignature } from './webcrypto.ts';

export type HashName = 'SHA-256' | 'SHA-384' | 'SHA-512';

/** How to check a signature: the hash, and for RSA whether it is PSS (with its salt length). */
export interface SignatureScheme {
  hash: HashName;
  rsaPss?: { saltLength: number } | undefined;
}

/** A signature algorithm an X.509 certificate or CMS names: the key kind it needs, and how. */
export interface SignatureAlgorithm extends SignatureScheme {
  key: KeyAlgorithm['kind'];
}

/** The length of each hash's digest in bytes. */
export const HASH_BYTES: Record<HashName, number> = { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

const BY_OID: Record<string, SignatureAlgorithm> = {
  '1.2.840.10045.4.3.2': { key: 'ecdsa', hash: 'SHA-256' }, // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': { key: 'ecdsa', hash: 'SHA-384' },
  '1.2.840.10045.4.3.4': { key: 'ecdsa', hash: 'SHA-512' },
  '1.2.840.113549.1.1.11': { key: 'rsa', hash: 'SHA-256' }, // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': { key: 'rsa', hash: 'SHA-384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', hash: 'SHA-512' },
  '1.3.101.112': { key: 'ed25519', hash: 'SHA-512' }, // Ed25519 (the hash is not used)
};

const HASH_OIDS: Record<string, HashName> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};
const RSA_PSS = '1.2.840.113549.1.1.10';
const MGF1 = '1.2.840.113549.1.1.8';

/** The hash an AlgorithmIdentifier OID names (SHA-2 only), or null. */
export function hashOfOid(oid: string): HashName | null {
  return HASH_OIDS[oid] ?? null;
}

/** An AlgorithmIdentifier's hash; the parameters, when present, must be NULL. */
function hashAlgorithm(node: DerNode | undefined): HashName | null {
  const [oid, params, ...rest] = children(node!);
  if (rest.length || (params && params.tag !== 0x05)) return null;
  return HASH_OIDS[decodeOid(oid)] ?? null;
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1) as Go's crypto/x509 accepts them: a SHA-2 hash, MGF1 with the
 * same hash, a salt as long as the hash, trailer field 1. The SHA-1 defaults are refused.
 */
function pssAlgorithm(params: DerNode): SignatureAlgorithm | null {
  let hash: HashName | null = null;
  let mgfHash: HashName | null = null;
  let saltLength = 20;
  for (const field of children(params)) {
    const inner = children(field)[0];
    if (field.tag === 0xa0) hash = hashAlgorithm(inner);
    else if (field.tag === 0xa1) {
      const [mgf, mgfParams] = children(inner!);
      mgfHash = decodeOid(mgf) === MGF1 ? hashAlgorithm(mgfParams) : null;
    } else if (field.tag === 0xa2) saltLength = decodeSmallInt(inner, 'saltLength');
    else if (field.tag !== 0xa3 || decodeSmallInt(inner, 'trailerField') !== 1) return null;
  }
  if (!hash || mgfHash !== hash || saltLength !== HASH_BYTES[hash]) return null;
  return { key: 'rsa', hash, rsaPss: { saltLength } };
}

/**
 * The algorithm an X.509/CMS signature algorithm (OID and DER parameters) names: ecdsa-with-SHA256/
 * 384/512, sha256/384/512WithRSAEncryption, RSASSA-PSS (with its parameters) and Ed25519. Null
 * when it is none of these, or its parameters are malformed or not what Go accepts.
 */
export function signatureAlgorithm(oid: string, paramsDer?: Uint8Array): SignatureAlgorithm | null {
  if (oid !== RSA_PSS) return BY_OID[oid] ?? null;
  try {
    return paramsDer?.length ? pssAlgorithm(parseDer(paramsDer)) : null;
  } catch (e) {
    if (e instanceof DerError) return null;
    throw e;
  }
}

const cache = new Map<string, Promise<CryptoKey>>();

function importParamsFor(
  a: KeyAlgorithm,
  s: SignatureScheme,
): AlgorithmIdentifier | EcKeyImportParams | RsaHashedImportParams {
  if (a.kind === 'ecdsa') return { name: 'ECDSA', namedCurve: a.curve };
  if (a.kind === 'rsa') return { name: s.rsaPss ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5', hash: s.hash };
  return { name: 'Ed25519' };
}

/** Imports (once per key and algorithm) a verifying key. @throws KeyError */
async function importFor(spki: Uint8Array, a: KeyAlgorithm, s: SignatureScheme): Promise<CryptoKey> {
  const params = importParamsFor(a, s);
  const id = `${JSON.stringify(params)}|${toHex(spki)}`;
  let key = cache.get(id);
  if (!key) {
    if (cache.size >= 256) cache.clear();
    key = subtle().importKey('spki', spki as BufferSource, params, false, ['verify']);
    cache.set(id, key);
  }
  try {
    return await key;
  } catch (e) {
    cache.delete(id);
    throw new KeyError(
      'KEY_WEBCRYPTO_UNSUPPORTED',
      `This runtime could not load the ${a.kind} public key for verifying (${(e as Error).name}).`,
      { cause: e },
    );
  }
}

function verifyParams(a: KeyAlgorithm, s: SignatureScheme): AlgorithmIdentifier | EcdsaParams | RsaPssParams {
  if (a.kind === 'ecdsa') return { name: 'ECDSA', hash: s.hash };
  if (a.kind === 'rsa')
    return s.rsaPss ? { name: 'RSA-PSS', saltLength: s.rsaPss.saltLength } : { name: 'RSASSA-PKCS1-v1_5' };
  return { name: 'Ed25519' };
}

/**
 * True when `signature` verifies `data` under the SubjectPublicKeyInfo `spki`: ECDSA (DER
 * signature, high S accepted) or RSA hashing with `hash`, RSA as PKCS#1 v1.5 or, with
 * `opts.rsaPss`, PSS with a salt as long as the hash (Go's PSSSaltLengthEqualsHash); Ed25519
 * ignores `hash`. `hash` may instead be a whole {@link SignatureScheme}. A malformed signature, one
 * by another key, or one the runtime refuses to judge is false.
 * @throws KeyError for a key that cannot be used: parseSpki's codes (malformed, unsupported
 *   algorithm or curve, RSA under 2048 bits), KEY_WEBCRYPTO_UNSUPPORTED when WebCrypto cannot load it.
 */
export async function verifySpkiSignature(
  spki: Uint8Array,
  hash: HashName | SignatureScheme,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { rsaPss?: boolean } = {},
): Promise<boolean> {
  const s: SignatureScheme = typeof hash === 'string' ? { hash } : { ...hash };
  if (opts.rsaPss && !s.rsaPss) s.rsaPss = { saltLength: HASH_BYTES[s.hash] };
  const { algorithm } = parseSpki(spki);
  const key = await importFor(spki, algorithm, s);
  return verifyDerSignature(key, algorithm, verifyParams(algorithm, s), data, signature);
}

/**
 * Verifies a signature made with the X.509/CMS signature algorithm `algorithm` (from
 * {@link signatureAlgorithm}): false when the key is not of the kind the algorithm names, or is a
 * key this runtime cannot use (a certificate's key that cannot be used signed nothing).
 */
export async function verifyWithAlgorithm(
  spki: Uint8Array,
  algorithm: SignatureAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    if (parseSpki(spki).algorithm.kind !== algorithm.key) return false;
    return await verifySpkiSignature(spki, algorithm, data, signature);
  } catch (e) {
    if (e instanceof KeyError) return false;
    throw e;
  }
}

/** A SHA-2 digest through WebCrypto. @throws KeyError KEY_WEBCRYPTO_UNSUPPORTED without WebCrypto. */
export async function digest(hash: HashName, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest(hash, data as BufferSource));
}

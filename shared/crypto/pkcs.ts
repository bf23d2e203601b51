/**
 * Private and public key structures: PKCS#8 (RFC 5958), SEC1 ECPrivateKey (RFC 5915), PKCS#1
 * RSAPrivateKey (RFC 8017 §A.1.2), SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), Ed25519 (RFC 8410).
 *
 * Reads what `cosign import-key-pair` reads (PEM "PRIVATE KEY", "EC PRIVATE KEY",
 * "RSA PRIVATE KEY"), normalises every private key to the PKCS#8 form Go's
 * `x509.MarshalPKCS8PrivateKey` writes (what cosign encrypts), and derives the public key so a key
 * can be shown and fingerprinted without ever exporting it from WebCrypto.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { KeyError } from '../errors.ts';
import {
  DerError,
  TAG,
  children,
  decodeBitString,
  decodeOid,
  decodeSmallInt,
  decodeUnsigned,
  der,
  expect,
  parseDer,
  sequence,
  withDer,
} from '../encoding/der.ts';
import { bytesEqual } from '../encoding/base64.ts';

export type Curve = 'P-256' | 'P-384' | 'P-521';

/** What a key is, as far as signing and verifying care. */
export type KeyAlgorithm = { kind: 'ecdsa'; curve: Curve } | { kind: 'rsa'; bits: number } | { kind: 'ed25519' };

/** A private key in normalised PKCS#8, with its public key. */
export interface PrivateKeyInfo {
  algorithm: KeyAlgorithm;
  /** PKCS#8 PrivateKeyInfo DER, as Go's MarshalPKCS8PrivateKey writes it. */
  pkcs8: Uint8Array;
  /** SubjectPublicKeyInfo DER of the matching public key. */
  spki: Uint8Array;
}

/** A public key. */
export interface PublicKeyInfo {
  algorithm: KeyAlgorithm;
  spki: Uint8Array;
}

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  'P-256': '1.2.840.10045.3.1.7',
  'P-384': '1.3.132.0.34',
  'P-521': '1.3.132.0.35',
} as const;

const CURVE_BY_OID: Record<string, Curve> = {
  [OID['P-256']]: 'P-256',
  [OID['P-384']]: 'P-384',
  [OID['P-521']]: 'P-521',
};

const CURVE_NOBLE = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;
/** Byte length of a scalar / field element per curve. */
export const CURVE_BYTES: Record<Curve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

/** The smallest RSA modulus accepted, as cosign 3.1's import refuses RSA-1024. */
export const MIN_RSA_BITS = 2048;

/** A human name for an algorithm: "ECDSA P-256", "RSA 3072", "Ed25519". */
export function algorithmName(a: KeyAlgorithm): string {
  return a.kind === 'ecdsa' ? `ECDSA ${a.curve}` : a.kind === 'rsa' ? `RSA ${a.bits}` : 'Ed25519';
}

function curveFromOid(oid: string): Curve {
  const curve = CURVE_BY_OID[oid];
  if (!curve) {
    throw new KeyError(
      'KEY_CURVE_UNSUPPORTED',
      `The key uses the elliptic curve ${oid}, which cosign does not support (P-256, P-384 and P-521 are).`,
    );
  }
  return curve;
}

function bitLength(magnitude: Uint8Array): number {
  if (magnitude.length === 0) return 0;
  return (magnitude.length - 1) * 8 + (32 - Math.clz32(magnitude[0]!));
}

function leftPad(bytes: Uint8Array, len: number): Uint8Array {
  if (bytes.length > len) throw new DerError('integer longer than the curve allows');
  const out = new Uint8Array(len);
  out.set(bytes, len - bytes.length);
  return out;
}

// ---- public keys ----

function ecSpki(curve: Curve, point: Uint8Array): Uint8Array {
  return der.seq(der.seq(der.oid(OID.ecPublicKey), der.oid(OID[curve])), der.bits(point));
}
function rsaSpki(n: Uint8Array, e: Uint8Array): Uint8Array {
  return der.seq(der.seq(der.oid(OID.rsaEncryption), der.null()), der.bits(der.seq(der.uint(n), der.uint(e))));
}
function ed25519Spki(pub: Uint8Array): Uint8Array {
  return der.seq(der.seq(der.oid(OID.ed25519)), der.bits(pub));
}

/**
 * Reads a SubjectPublicKeyInfo and checks the key in it.
 * @throws KeyError KEY_DER_INVALID, KEY_ALGORITHM_UNSUPPORTED, KEY_CURVE_UNSUPPORTED, KEY_RSA_TOO_SMALL
 */
export function parseSpki(spki: Uint8Array): PublicKeyInfo {
  const { algOid, param, key } = withDer('KEY_DER_INVALID', 'The public key is not valid DER', () => {
    const [algId, bits, ...rest] = sequence(parseDer(spki), 'SubjectPublicKeyInfo');
    if (rest.length) throw new DerError('extra fields in SubjectPublicKeyInfo');
    const [oid, param, ...more] = sequence(algId, 'AlgorithmIdentifier');
    if (more.length) throw new DerError('extra fields in AlgorithmIdentifier');
    return { algOid: decodeOid(oid), param, key: decodeBitString(bits, 'subjectPublicKey') };
  });
  switch (algOid) {
    case OID.ecPublicKey: {
      const curve = curveFromOid(withDer('KEY_DER_INVALID', 'The EC public key has no curve', () => decodeOid(param)));
      try {
        CURVE_NOBLE[curve].Point.fromBytes(key).assertValidity();
      } catch (e) {
        throw new KeyError('KEY_DER_INVALID', `The ${curve} public key is not a point on the curve.`, { cause: e });
      }
      return { algorithm: { kind: 'ecdsa', curve }, spki };
    }
    case OID.rsaEncryption: {
      const n = withDer('KEY_DER_INVALID', 'The RSA public key is not valid DER', () => {
        if (param && param.tag !== TAG.NULL) throw new DerError('RSA parameters must be NULL');
        const [n, e, ...rest] = sequence(parseDer(key), 'RSAPublicKey');
        if (rest.length) throw new DerError('extra fields in RSAPublicKey');
        decodeUnsigned(e, 'publicExponent');
        return decodeUnsigned(n, 'modulus');
      });
      return { algorithm: { kind: 'rsa', bits: checkRsaBits(bitLength(n)) }, spki };
    }
    case OID.ed25519:
      if (param || key.length !== 32) {
        throw new KeyError(
          'KEY_DER_INVALID',
          'The Ed25519 public key is malformed (it must be 32 bytes, no parameters).',
        );
      }
      return { algorithm: { kind: 'ed25519' }, spki };
    default:
      throw unsupportedAlgorithm(algOid);
  }
}

function checkRsaBits(bits: number): number {
  if (bits < MIN_RSA_BITS) {
    throw new KeyError(
      'KEY_RSA_TOO_SMALL',
      `This RSA key has ${bits} bits; keys under ${MIN_RSA_BITS} bits are too weak and cosign refuses them.`,
    );
  }
  return bits;
}

function unsupportedAlgorithm(oid: string): KeyError {
  return new KeyError(
    'KEY_ALGORITHM_UNSUPPORTED',
    `The key's algorithm (${oid}) is not one cosign signs with: use ECDSA (P-256, P-384, P-521), RSA or Ed25519.`,
  );
}

// ---- private keys ----

/** Builds the PKCS#8 form of an EC key exactly as Go writes it: curve in the AlgorithmIdentifier,
 * ECPrivateKey without parameters but with the public key. */
function ecPkcs8(curve: Curve, d: Uint8Array, point: Uint8Array): Uint8Array {
  const ecPrivateKey = der.seq(der.small(1), der.octets(d), der.ctx(1, der.bits(point)));
  return der.seq(der.small(0), der.seq(der.oid(OID.ecPublicKey), der.oid(OID[curve])), der.octets(ecPrivateKey));
}

/**
 * Reads an ECPrivateKey (SEC1); `curve` comes from the PKCS#8 wrapper when there is one.
 * Checks the scalar and that an embedded public key matches it.
 */
function readEcPrivateKey(body: Uint8Array, outerCurve: Curve | undefined): PrivateKeyInfo {
  const { dRaw, paramOid, embedded } = withDer('KEY_NOT_PKCS8', 'The EC private key is malformed', () => {
    const [version, d, ...opt] = sequence(parseDer(body), 'ECPrivateKey');
    if (decodeSmallInt(version, 'version') !== 1) throw new DerError('ECPrivateKey version must be 1');
    let paramOid: string | undefined;
    let embedded: Uint8Array | undefined;
    for (const f of opt) {
      if (f.tag === 0xa0) paramOid = decodeOid(children(f)[0]);
      else if (f.tag === 0xa1) embedded = decodeBitString(children(f)[0], 'publicKey');
      else throw new DerError('unexpected field in ECPrivateKey');
    }
    return { dRaw: expect(d, TAG.OCTET_STRING, 'privateKey').value, paramOid, embedded };
  });
  const inner = paramOid === undefined ? undefined : curveFromOid(paramOid);
  if (outerCurve && inner && inner !== outerCurve) {
    throw new KeyError('KEY_NOT_PKCS8', 'The EC key names two different curves.');
  }
  const curve = outerCurve ?? inner;
  if (!curve) throw new KeyError('KEY_NOT_PKCS8', 'The EC private key does not say which curve it is on.');
  const d = withDer('KEY_NOT_PKCS8', 'The EC private key is malformed', () => leftPad(dRaw, CURVE_BYTES[curve]));
  let point: Uint8Array;
  try {
    point = CURVE_NOBLE[curve].getPublicKey(d, false);
  } catch (e) {
    throw new KeyError('KEY_NOT_PKCS8', `The ${curve} private key is out of range.`, { cause: e });
  }
  if (embedded && !bytesEqual(embedded, point)) {
    throw new KeyError('KEY_MISMATCH', 'The public key stored inside this EC private key does not belong to it.');
  }
  return { algorithm: { kind: 'ecdsa', curve }, pkcs8: ecPkcs8(curve, d, point), spki: ecSpki(curve, point) };
}

/** Reads a PKCS#1 RSAPrivateKey. */
function readRsaPrivateKey(body: Uint8Array): PrivateKeyInfo {
  const { n, e } = withDer('KEY_NOT_PKCS8', 'The RSA private key is malformed', () => {
    const fields = sequence(parseDer(body), 'RSAPrivateKey');
    if (fields.length !== 9)
      throw new DerError('RSAPrivateKey must have 9 fields (multi-prime keys are not supported)');
    if (decodeSmallInt(fields[0], 'version') !== 0) throw new DerError('RSAPrivateKey version must be 0');
    fields.slice(3).forEach((f, i) => decodeUnsigned(f, `field ${i + 3}`));
    return { n: decodeUnsigned(fields[1], 'modulus'), e: decodeUnsigned(fields[2], 'publicExponent') };
  });
  const bits = checkRsaBits(bitLength(n));
  const pkcs8 = der.seq(der.small(0), der.seq(der.oid(OID.rsaEncryption), der.null()), der.octets(body));
  return { algorithm: { kind: 'rsa', bits }, pkcs8, spki: rsaSpki(n, e) };
}

function readEd25519PrivateKey(body: Uint8Array): PrivateKeyInfo {
  const seed = withDer(
    'KEY_NOT_PKCS8',
    'The Ed25519 private key is malformed',
    () => expect(parseDer(body), TAG.OCTET_STRING, 'CurvePrivateKey').value,
  );
  if (seed.length !== 32) throw new KeyError('KEY_NOT_PKCS8', 'An Ed25519 private key must be 32 bytes.');
  const pub = ed25519.getPublicKey(seed);
  const pkcs8 = der.seq(der.small(0), der.seq(der.oid(OID.ed25519)), der.octets(der.octets(seed)));
  return { algorithm: { kind: 'ed25519' }, pkcs8, spki: ed25519Spki(pub) };
}

/**
 * Reads a PKCS#8 PrivateKeyInfo (v1 or v2), checks it, and returns it normalised with its
 * public key.
 * @throws KeyError KEY_NOT_PKCS8, KEY_ALGORITHM_UNSUPPORTED, KEY_CURVE_UNSUPPORTED,
 *   KEY_RSA_TOO_SMALL, KEY_MISMATCH
 */
export function parsePkcs8(pkcs8: Uint8Array): PrivateKeyInfo {
  const { algOid, param, body } = withDer('KEY_NOT_PKCS8', 'This is not a PKCS#8 private key', () => {
    const [version, algId, key, ...opt] = sequence(parseDer(pkcs8), 'PrivateKeyInfo');
    const v = decodeSmallInt(version, 'version');
    if (v !== 0 && v !== 1) throw new DerError('PrivateKeyInfo version must be 0 or 1');
    for (const f of opt) if (f.tag !== 0xa0 && f.tag !== 0x81 && f.tag !== 0xa1) throw new DerError('unexpected field');
    const [oid, param, ...more] = sequence(algId, 'AlgorithmIdentifier');
    if (more.length) throw new DerError('extra fields in AlgorithmIdentifier');
    return { algOid: decodeOid(oid), param, body: expect(key, TAG.OCTET_STRING, 'privateKey').value };
  });
  switch (algOid) {
    case OID.ecPublicKey:
      return readEcPrivateKey(
        body,
        curveFromOid(withDer('KEY_NOT_PKCS8', 'The EC key has no curve', () => decodeOid(param))),
      );
    case OID.rsaEncryption:
      return readRsaPrivateKey(body);
    case OID.ed25519:
      if (param) throw new KeyError('KEY_NOT_PKCS8', 'An Ed25519 key must not have algorithm parameters.');
      return readEd25519PrivateKey(body);
    default:
      throw unsupportedAlgorithm(algOid);
  }
}

/** PEM labels of unencrypted private keys that `cosign import-key-pair` reads. */
export const PLAIN_PRIVATE_KEY_LABELS = ['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY'] as const;

/**
 * Reads the DER of an unencrypted private key by its PEM label, as `cosign import-key-pair` does.
 * @throws KeyError as {@link parsePkcs8}, and KEY_PEM_LABEL_UNKNOWN for any other label.
 */
export function parsePlainPrivateKey(label: string, bytes: Uint8Array): PrivateKeyInfo {
  switch (label) {
    case 'PRIVATE KEY':
      return parsePkcs8(bytes);
    case 'EC PRIVATE KEY':
      return readEcPrivateKey(bytes, undefined);
    case 'RSA PRIVATE KEY':
      return readRsaPrivateKey(bytes);
    default:
      throw new KeyError(
        'KEY_PEM_LABEL_UNKNOWN',
        `A "${label}" PEM block is not a key this page can import: use a cosign key, or a plain PEM private key (PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY).`,
      );
  }
}

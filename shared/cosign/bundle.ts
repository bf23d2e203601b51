/**
 * Sigstore bundles (protobuf-specs `Bundle`, JSON form), v0.3 as cosign 3.x writes them for a key:
 *   {"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",
 *    "verificationMaterial":{"publicKey":{"hint":"<b64 SHA-256 of the SPKI DER>"}},
 *    "dsseEnvelope":{"payload":"<b64>","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"<b64 DER>"}]}}
 * Keyless bundles carry a certificate instead of a key hint; they are read, and reported as such.
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 */
import { SignatureError } from '../errors.ts';
import { fromBase64, toBase64, utf8 } from '../encoding/base64.ts';
import { isObject, parseStrictJson, goJson, type JsonValue } from './strict-json.ts';

export const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/** True for a Sigstore bundle's media type, any version (what a bundle referrer's layer is). */
export function isBundleMediaType(mediaType: unknown): boolean {
  return typeof mediaType === 'string' && mediaType.startsWith('application/vnd.dev.sigstore.bundle');
}

const BUNDLE_TYPES = [
  BUNDLE_V03,
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
];

export interface ParsedBundle {
  mediaType: string;
  /** How the signer is identified. */
  material: { kind: 'publicKey'; hint: string } | { kind: 'certificate' } | { kind: 'none' };
  dsse?: { payloadType: string; payload: Uint8Array; signatures: Uint8Array[] };
  messageSignature?: { signature: Uint8Array; digest?: { algorithm: string; digest: Uint8Array } };
  /** True when the bundle carries transparency-log entries. */
  hasTlogEntries: boolean;
}

/** What a log and a timestamp authority added: a bundle's tlogEntries and RFC 3161 timestamps. */
export interface BundleWitnesses {
  /** Entries exactly as the log answered them (protobuf JSON TransparencyLogEntry). */
  tlogEntries?: Record<string, unknown>[];
  /** DER TimeStampResp answers. */
  rfc3161Timestamps?: Uint8Array[];
}

/**
 * A bundle for a DSSE envelope signed with a key, exactly as cosign 3.1 writes it (with its log
 * entries and timestamps in verificationMaterial, in cosign's order, when given).
 */
export function buildDsseBundle(
  hint: string | { certificate: Uint8Array },
  payloadType: string,
  payload: Uint8Array,
  signature: Uint8Array,
  witnesses: BundleWitnesses = {},
): Uint8Array {
  const stamps = witnesses.rfc3161Timestamps ?? [];
  return utf8(
    goJson({
      mediaType: BUNDLE_V03,
      verificationMaterial: {
        ...(typeof hint === 'string'
          ? { publicKey: { hint } }
          : { certificate: { rawBytes: toBase64(hint.certificate) } }),
        ...(witnesses.tlogEntries?.length ? { tlogEntries: witnesses.tlogEntries } : {}),
        ...(stamps.length
          ? { timestampVerificationData: { rfc3161Timestamps: stamps.map((t) => ({ signedTimestamp: toBase64(t) })) } }
          : {}),
      },
      dsseEnvelope: { payload: toBase64(payload), payloadType, signatures: [{ sig: toBase64(signature) }] },
    }),
  );
}

function bad(why: string): SignatureError {
  return new SignatureError('SIGNATURE_BUNDLE_INVALID', `The Sigstore bundle is not valid: ${why}.`);
}

function b64(v: JsonValue | undefined, where: string): Uint8Array {
  const bytes = typeof v === 'string' ? fromBase64(v) : null;
  if (!bytes) throw bad(`${where} is not base64`);
  return bytes;
}

/** Reads a bundle. @throws SignatureError SIGNATURE_BUNDLE_INVALID */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  let root: JsonValue;
  try {
    root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad('it is not strict JSON');
  }
  if (!isObject(root)) throw bad('it is not an object');
  const mediaType = root.mediaType;
  if (typeof mediaType !== 'string' || !BUNDLE_TYPES.includes(mediaType))
    throw bad(`unknown media type ${JSON.stringify(mediaType)}`);
  const vm = root.verificationMaterial;
  if (!isObject(vm)) throw bad('no verificationMaterial');
  let material: ParsedBundle['material'] = { kind: 'none' };
  if (isObject(vm.publicKey)) {
    if (typeof vm.publicKey.hint !== 'string') throw bad('publicKey has no hint');
    material = { kind: 'publicKey', hint: vm.publicKey.hint };
  } else if (isObject(vm.certificate) || isObject(vm.x509CertificateChain)) {
    material = { kind: 'certificate' };
  }
  const hasTlogEntries = Array.isArray(vm.tlogEntries) && vm.tlogEntries.length > 0;
  const out: ParsedBundle = { mediaType, material, hasTlogEntries };
  if (isObject(root.dsseEnvelope)) {
    const env = root.dsseEnvelope;
    if (typeof env.payloadType !== 'string') throw bad('the DSSE envelope has no payloadType');
    if (!Array.isArray(env.signatures) || env.signatures.length === 0) throw bad('the DSSE envelope has no signatures');
    out.dsse = {
      payloadType: env.payloadType,
      payload: b64(env.payload, 'the DSSE payload'),
      signatures: env.signatures.map((s, i) =>
        isObject(s) ? b64(s.sig, `signature ${i}`) : b64(undefined, `signature ${i}`),
      ),
    };
  } else if (isObject(root.messageSignature)) {
    const ms = root.messageSignature;
    out.messageSignature = { signature: b64(ms.signature, 'the message signature') };
    if (isObject(ms.messageDigest) && typeof ms.messageDigest.algorithm === 'string') {
      out.messageSignature.digest = {
        algorithm: ms.messageDigest.algorithm,
        digest: b64(ms.messageDigest.digest, 'the message digest'),
      };
    }
  } else {
    throw bad('it holds neither a DSSE envelope nor a message signature');
  }
  return out;
}

/**
 * Sigstore trusted roots (`trusted_root.json`, media type
 * `application/vnd.dev.sigstore.trustedroot+json;version=0.1`): the logs, certificate authorities,
 * CT logs and timestamp authorities a verification trusts, each with the period it is trusted for.
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_trustroot.proto
 *
 * A root is read whole or refused whole: a key without its validity start, a certificate that is
 * not base64, an unknown media type — any of them gives VERIFY_TRUSTED_ROOT_INVALID, so a root
 * that is stored was read completely.
 */
import { VerificationError } from '../errors.ts';
import { base64Field, isJsonObject as isObj, parseJsonObject, validityField } from './json.ts';
import type { TrustedAuthority, TrustedLog, TrustedRoot, ValidityPeriod } from './types.ts';

export const TRUSTED_ROOT_MEDIA_TYPES = [
  'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  'application/vnd.dev.sigstore.trustedroot.v0.2+json',
] as const;

/** Most entries of each kind a root may list (public good lists under ten of each). */
const MAX_ENTRIES = 256;

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_TRUSTED_ROOT_INVALID', `The trusted root is not valid: ${why}.`);
}

function bytes(v: unknown, where: string): Uint8Array {
  return base64Field(v, where, bad);
}

const validity = (v: unknown, where: string): ValidityPeriod => validityField(v, where, bad);

function list(v: unknown, where: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw bad(`${where} is not a list`);
  if (v.length > MAX_ENTRIES) throw bad(`${where} lists more than ${MAX_ENTRIES} entries`);
  return v;
}

function log(v: unknown, where: string): TrustedLog {
  if (!isObj(v) || !isObj(v.publicKey) || !isObj(v.logId)) throw bad(`${where} is not a log`);
  const pk = v.publicKey;
  if (typeof v.baseUrl !== 'string') throw bad(`${where} has no baseUrl`);
  if (typeof pk.keyDetails !== 'string') throw bad(`${where} has no keyDetails`);
  return {
    baseUrl: v.baseUrl,
    logId: bytes(v.logId.keyId, `${where}'s logId`),
    spki: bytes(pk.rawBytes, `${where}'s public key`),
    keyDetails: pk.keyDetails,
    validFor: validity(pk.validFor, where),
  };
}

function authorityName(v: Record<string, unknown>): string {
  const s = isObj(v.subject) ? v.subject : {};
  const parts = [s.organization, s.commonName].filter((p): p is string => typeof p === 'string' && p !== '');
  return parts.length ? parts.join(', ') : typeof v.uri === 'string' ? v.uri : 'unnamed authority';
}

function authority(v: unknown, where: string): TrustedAuthority {
  if (!isObj(v) || !isObj(v.certChain)) throw bad(`${where} has no certificate chain`);
  const certs = list(v.certChain.certificates, `${where}'s certificates`);
  if (certs.length === 0) throw bad(`${where}'s certificate chain is empty`);
  return {
    name: authorityName(v),
    uri: typeof v.uri === 'string' ? v.uri : '',
    certChain: certs.map((c, i) => bytes(isObj(c) ? c.rawBytes : undefined, `${where}'s certificate ${i + 1}`)),
    validFor: validity(v.validFor, where),
  };
}

/**
 * Reads a trusted root.
 * @throws VerificationError VERIFY_TRUSTED_ROOT_INVALID, with what is wrong.
 */
export function parseTrustedRoot(json: Uint8Array | string): TrustedRoot {
  const root = parseJsonObject(json, bad);
  const mediaType = root.mediaType;
  if (typeof mediaType !== 'string' || !(TRUSTED_ROOT_MEDIA_TYPES as readonly string[]).includes(mediaType))
    throw bad(`its media type ${JSON.stringify(mediaType)} is not a trusted root's`);
  const out: TrustedRoot = {
    mediaType,
    tlogs: list(root.tlogs, 'tlogs').map((l, i) => log(l, `transparency log ${i + 1}`)),
    ctlogs: list(root.ctlogs, 'ctlogs').map((l, i) => log(l, `CT log ${i + 1}`)),
    certificateAuthorities: list(root.certificateAuthorities, 'certificateAuthorities').map((a, i) =>
      authority(a, `certificate authority ${i + 1}`),
    ),
    timestampAuthorities: list(root.timestampAuthorities, 'timestampAuthorities').map((a, i) =>
      authority(a, `timestamp authority ${i + 1}`),
    ),
  };
  if (out.tlogs.length + out.certificateAuthorities.length + out.timestampAuthorities.length === 0)
    throw bad('it trusts no log, certificate authority or timestamp authority');
  return out;
}

/** True when `at` lies in the period (both ends included, as protobuf-specs' TimeRange says). */
export function validAt(period: ValidityPeriod, at: Date): boolean {
  return at >= period.start && (period.end === undefined || at <= period.end);
}

/**
 * Parsed roots by the sha256 of their bytes, so verifying again with the same root reuses the same
 * TrustedRoot objects — and with them the certificates, keys and checked self-signatures that
 * chain.ts and timestamp.ts keep per authority — instead of parsing it all anew. A root is never
 * changed once parsed; only roots that read well are kept.
 */
const parsedRoots = new Map<string, TrustedRoot>();
const MAX_PARSED_ROOTS = 8;

/**
 * parseTrustedRoot, once per root: `sha256` (hex) must be the SHA-256 of `json`'s bytes.
 * @throws VerificationError VERIFY_TRUSTED_ROOT_INVALID, with what is wrong.
 */
export function parseTrustedRootOnce(sha256: string, json: Uint8Array | string): TrustedRoot {
  let root = parsedRoots.get(sha256);
  if (!root) {
    root = parseTrustedRoot(json);
    if (parsedRoots.size >= MAX_PARSED_ROOTS) parsedRoots.delete(parsedRoots.keys().next().value!);
    parsedRoots.set(sha256, root);
  }
  return root;
}

/**
 * A certificate's extensions as Sigstore verification needs them (RFC 5280 §4.2): basic
 * constraints, key usage, extended key usage, key identifiers, subject alternative names (with
 * Fulcio's username otherName), Fulcio's own extensions and the embedded SCT list (RFC 6962 §3.3).
 * A malformed extension, a duplicate one, or a Fulcio value that is not what oid-info.md says
 * makes the certificate invalid, as Go's crypto/x509 and sigstore-go's ParseExtensions decide.
 * https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerificationError } from '../errors.ts';

export const SCT_LIST_OID = '1.3.6.1.4.1.11129.2.4.2';
export const CODE_SIGNING_EKU = '1.3.6.1.5.5.7.3.3';
export const TIME_STAMPING_EKU = '1.3.6.1.5.5.7.3.8';
const FULCIO = '1.3.6.1.4.1.57264.1.';
const FULCIO_USERNAME = `${FULCIO}7`;

/**
 * Fulcio's extensions by name, OID suffix after 1.3.6.1.4.1.57264.1. (.1–.6 raw strings, the
 * deprecated v1 ones; .8–.22 DER strings). `.7` is the username otherName SAN, not an extension.
 */
export const FULCIO_EXTENSIONS = {
  issuerV1: 1,
  githubWorkflowTrigger: 2,
  githubWorkflowSha: 3,
  githubWorkflowName: 4,
  githubWorkflowRepository: 5,
  githubWorkflowRef: 6,
  issuerV2: 8,
  buildSignerUri: 9,
  buildSignerDigest: 10,
  runnerEnvironment: 11,
  sourceRepositoryUri: 12,
  sourceRepositoryDigest: 13,
  sourceRepositoryRef: 14,
  sourceRepositoryIdentifier: 15,
  sourceRepositoryOwnerUri: 16,
  sourceRepositoryOwnerIdentifier: 17,
  buildConfigUri: 18,
  buildConfigDigest: 19,
  buildTrigger: 20,
  runInvocationUri: 21,
  sourceRepositoryVisibilityAtSigning: 22,
} as const;

export type FulcioExtensions = Partial<Record<keyof typeof FULCIO_EXTENSIONS, string>>;

const FULCIO_BY_OID = new Map(
  Object.entries(FULCIO_EXTENSIONS).map(([k, n]) => [`${FULCIO}${n}`, k as keyof typeof FULCIO_EXTENSIONS]),
);

/** Extensions Go's crypto/x509 handles (so it does not refuse them as critical) besides ours. */
const GO_HANDLED = new Set(['2.5.29.31', '2.5.29.32', '1.3.6.1.5.5.7.1.1']);

/** What the extensions say (the part of a Certificate this file fills). */
export interface ExtensionFields {
  /** Basic constraints: a CA certificate. */
  isCA: boolean;
  /** Basic constraints' pathLenConstraint, for a CA; undefined when absent (no limit). */
  pathLenConstraint: number | undefined;
  /** Key usage bits, undefined when the extension is absent (no restriction). */
  keyUsage: { digitalSignature: boolean; keyCertSign: boolean } | undefined;
  /** Extended key usage OIDs; empty when the extension is absent. */
  extKeyUsage: string[];
  subjectKeyId: Uint8Array | undefined;
  authorityKeyId: Uint8Array | undefined;
  sanEmails: string[];
  sanUris: string[];
  /** Fulcio's username SANs (otherName 1.3.6.1.4.1.57264.1.7, a UTF8String). */
  sanOtherNames: string[];
  /** DNS name SANs (what containers-policy's pki subjectHostname is checked against). */
  sanDns: string[];
  /** Fulcio's extensions, by their names in Fulcio's oid-info.md. */
  fulcio: FulcioExtensions;
  /** Critical extensions this reader does not handle (a verifier must refuse those, as Go does). */
  unknownCritical: string[];
  /** The SCT list (RFC 6962 §3.3, TLS-encoded) of extension 1.3.6.1.4.1.11129.2.4.2, if present. */
  sctList: Uint8Array | undefined;
}

/** The fields of a certificate without extensions. */
export function noExtensions(): ExtensionFields {
  return {
    isCA: false,
    pathLenConstraint: undefined,
    keyUsage: undefined,
    extKeyUsage: [],
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    sanEmails: [],
    sanUris: [],
    sanOtherNames: [],
    sanDns: [],
    fulcio: {},
    unknownCritical: [],
    sctList: undefined,
  };
}

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_CERTIFICATE_INVALID', `The certificate is not valid: ${why}.`);
}

/** A DER string (UTF8String, or the other string types Go's asn1.Unmarshal reads into a string). */
function derString(raw: Uint8Array, what: string): string {
  const parsed = asn1js.fromBER(raw as BufferSource);
  const r = parsed.result;
  const isString =
    r instanceof asn1js.Utf8String ||
    r instanceof asn1js.PrintableString ||
    r instanceof asn1js.IA5String ||
    r instanceof asn1js.NumericString;
  if (parsed.offset !== raw.length || !isString) throw bad(`${what} is not a DER string`);
  return r.valueBlock.value;
}

function fulcioValue(oid: string, raw: Uint8Array): string {
  const n = Number(oid.slice(FULCIO.length));
  return n <= 6 ? new TextDecoder().decode(raw) : derString(raw, `Fulcio extension ${oid}`);
}

function otherName(node: asn1js.Constructed): string | null {
  // OtherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }; Fulcio's holds a UTF8String.
  const [id, wrapped] = node.valueBlock.value;
  if (!(id instanceof asn1js.ObjectIdentifier) || id.valueBlock.toString() !== FULCIO_USERNAME) return null;
  const inner = (wrapped as asn1js.Constructed | undefined)?.valueBlock.value[0];
  if (!(inner instanceof asn1js.Utf8String)) throw bad('its Fulcio username SAN is not a UTF8String');
  return inner.valueBlock.value;
}

function readAltNames(v: pkijs.AltName, out: ExtensionFields): void {
  for (const n of v.altNames) {
    if (n.type === 1) out.sanEmails.push(String(n.value));
    else if (n.type === 6) out.sanUris.push(String(n.value));
    else if (n.type === 2) out.sanDns.push(String(n.value));
    else if (n.type === 0) {
      const s = otherName(n.value as asn1js.Constructed);
      if (s !== null) out.sanOtherNames.push(s);
    }
  }
}

function pathLen(v: pkijs.BasicConstraints): number | undefined {
  const p = v.pathLenConstraint;
  if (p === undefined) return undefined;
  const n = typeof p === 'number' ? p : p.valueBlock.valueDec;
  if (!Number.isFinite(n) || n < 0) throw bad('its path length constraint is out of range');
  return n;
}

function expectType<T>(v: unknown, type: abstract new (...args: never[]) => T, what: string): T {
  if (!(v instanceof type) || (v as { parsingError?: string }).parsingError)
    throw bad(`its ${what} extension is malformed`);
  return v;
}

/** Reads one extension this reader knows into `out`; false when it does not know it. */
function readKnown(id: string, v: unknown, raw: Uint8Array, out: ExtensionFields): boolean {
  if (id === '2.5.29.19') {
    const bc = expectType(v, pkijs.BasicConstraints, 'basic constraints');
    out.isCA = bc.cA === true;
    out.pathLenConstraint = out.isCA ? pathLen(bc) : undefined;
  } else if (id === '2.5.29.15') {
    const b = expectType(v, asn1js.BitString, 'key usage').valueBlock.valueHexView;
    out.keyUsage = { digitalSignature: ((b[0] ?? 0) & 0x80) !== 0, keyCertSign: ((b[0] ?? 0) & 0x04) !== 0 };
  } else if (id === '2.5.29.37')
    out.extKeyUsage = [...expectType(v, pkijs.ExtKeyUsage, 'extended key usage').keyPurposes];
  else if (id === '2.5.29.14')
    out.subjectKeyId = new Uint8Array(expectType(v, asn1js.OctetString, 'subject key id').valueBlock.valueHexView);
  else if (id === '2.5.29.35') {
    const k = expectType(v, pkijs.AuthorityKeyIdentifier, 'authority key id').keyIdentifier;
    out.authorityKeyId = k ? new Uint8Array(k.valueBlock.valueHexView) : undefined;
  } else if (id === '2.5.29.17') readAltNames(expectType(v, pkijs.AltName, 'subject alternative name'), out);
  else if (id === SCT_LIST_OID) {
    const inner = asn1js.fromBER(raw as BufferSource); // an OCTET STRING holding the TLS-encoded list
    if (inner.offset !== raw.length || !(inner.result instanceof asn1js.OctetString))
      throw bad('its SCT list is malformed');
    out.sctList = new Uint8Array(inner.result.valueBlock.valueHexView);
  } else if (FULCIO_BY_OID.has(id)) out.fulcio[FULCIO_BY_OID.get(id)!] = fulcioValue(id, raw);
  else return GO_HANDLED.has(id);
  return true;
}

/**
 * Reads a certificate's extensions into `out`.
 * @throws VerificationError VERIFY_CERTIFICATE_INVALID for a malformed or repeated extension.
 */
export function readExtensions(extensions: pkijs.Extension[], out: ExtensionFields): void {
  const seen = new Set<string>();
  for (const e of extensions) {
    if (seen.has(e.extnID)) throw bad(`it has the extension ${e.extnID} twice`);
    seen.add(e.extnID);
    const raw = new Uint8Array(e.extnValue.valueBlock.valueHexView);
    if (!readKnown(e.extnID, e.parsedValue as unknown, raw, out) && e.critical) out.unknownCritical.push(e.extnID);
  }
}

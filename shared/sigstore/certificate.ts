/**
 * X.509 certificates as Sigstore verification reads them, parsed by pkijs (PeculiarVentures; the
 * ASN.1 and X.509 structures are where hand-written code goes wrong): validity, keys, CA
 * constraints, key usages, subject alternative names, and Fulcio's extensions.
 * https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md
 *
 * Fulcio's first extensions (.1.1–.1.6) hold the raw string as the extension value; the later
 * ones (.1.8 on) hold a DER UTF8String. Signature maths is not done here (shared/crypto/).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerificationError } from '../errors.ts';
import { GITHUB_CLAIMS, type CertificateFacts, type GithubClaim } from './policy.ts';

const FULCIO = '1.3.6.1.4.1.57264.1.';
export const SCT_LIST_OID = '1.3.6.1.4.1.11129.2.4.2';
export const CODE_SIGNING_EKU = '1.3.6.1.5.5.7.3.3';
export const TIME_STAMPING_EKU = '1.3.6.1.5.5.7.3.8';

/** The GitHub workflow claims cosign compares, by Fulcio's v1 extension. */
const CLAIM_OIDS: Record<GithubClaim, string> = {
  githubWorkflowTrigger: `${FULCIO}2`,
  githubWorkflowSha: `${FULCIO}3`,
  githubWorkflowName: `${FULCIO}4`,
  githubWorkflowRepository: `${FULCIO}5`,
  githubWorkflowRef: `${FULCIO}6`,
};

export interface Certificate {
  der: Uint8Array;
  /** The exact signed bytes (tbsCertificate). */
  tbs: Uint8Array;
  signatureAlgorithm: string;
  /** DER of the algorithm's parameters, empty when absent. */
  signatureParams: Uint8Array;
  signature: Uint8Array;
  serialNumber: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  isCA: boolean;
  pathLenConstraint: number | undefined;
  /** Key usage bits, when the extension is present. */
  keyUsage: { digitalSignature: boolean; keyCertSign: boolean } | undefined;
  extKeyUsage: string[];
  subjectKeyId: Uint8Array | undefined;
  authorityKeyId: Uint8Array | undefined;
  sanEmails: string[];
  sanUris: string[];
  /** Fulcio's username SAN (otherName 1.3.6.1.4.1.57264.1.7). */
  sanOtherNames: string[];
  /** Fulcio extensions by OID, as strings. */
  fulcio: Record<string, string>;
  /** The critical extensions this reader does not know (a verifier must refuse those). */
  unknownCritical: string[];
  /** The embedded SCT list (RFC 6962 §3.3, its TLS encoding), when present. */
  sctList: Uint8Array | undefined;
}

const KNOWN = new Set(['2.5.29.15', '2.5.29.19', '2.5.29.37', '2.5.29.17', '2.5.29.14', '2.5.29.35', '2.5.29.32']);

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_CERTIFICATE_INVALID', `The certificate is not valid: ${why}.`);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function name(n: pkijs.RelativeDistinguishedNames): string {
  return n.typesAndValues.map((t) => `${t.type}=${String(t.value.valueBlock.value)}`).join(', ');
}

function fulcioValue(oid: string, raw: Uint8Array): string {
  const n = Number(oid.slice(FULCIO.length));
  if (n <= 6) return new TextDecoder().decode(raw);
  const parsed = asn1js.fromBER(raw as BufferSource);
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Utf8String))
    throw bad(`Fulcio extension ${oid} is not a UTF8String`);
  return parsed.result.valueBlock.value;
}

function otherName(v: unknown): string | null {
  // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }; Fulcio's holds a UTF8String.
  const seq = v as { valueBlock?: { value?: asn1js.AsnType[] } };
  const inner = seq.valueBlock?.value?.[1] as { valueBlock?: { value?: asn1js.AsnType[] } } | undefined;
  const s = inner?.valueBlock?.value?.[0];
  return s instanceof asn1js.Utf8String ? s.valueBlock.value : null;
}

function readExtensions(c: pkijs.Certificate, out: Certificate): void {
  for (const e of c.extensions ?? []) {
    const raw = e.extnValue.valueBlock.valueHexView;
    const v = e.parsedValue as unknown;
    if (e.extnID.startsWith(FULCIO)) out.fulcio[e.extnID] = fulcioValue(e.extnID, raw);
    else if (e.extnID === SCT_LIST_OID) {
      const inner = asn1js.fromBER(raw as BufferSource);
      if (inner.offset === -1 || !(inner.result instanceof asn1js.OctetString))
        throw bad('its SCT list is not an OCTET STRING');
      out.sctList = new Uint8Array(inner.result.valueBlock.valueHexView);
    } else if (e.extnID === '2.5.29.19' && v instanceof pkijs.BasicConstraints) {
      out.isCA = v.cA === true;
      out.pathLenConstraint = typeof v.pathLenConstraint === 'number' ? v.pathLenConstraint : undefined;
    } else if (e.extnID === '2.5.29.15' && v instanceof asn1js.BitString) {
      const b = v.valueBlock.valueHexView[0] ?? 0;
      out.keyUsage = { digitalSignature: (b & 0x80) !== 0, keyCertSign: (b & 0x04) !== 0 };
    } else if (e.extnID === '2.5.29.37' && v instanceof pkijs.ExtKeyUsage) out.extKeyUsage = [...v.keyPurposes];
    else if (e.extnID === '2.5.29.14' && v instanceof asn1js.OctetString) out.subjectKeyId = v.valueBlock.valueHexView;
    else if (e.extnID === '2.5.29.35' && v instanceof pkijs.AuthorityKeyIdentifier)
      out.authorityKeyId = v.keyIdentifier?.valueBlock.valueHexView;
    else if (e.extnID === '2.5.29.17' && v instanceof pkijs.AltName) {
      for (const n of v.altNames) {
        if (n.type === 1) out.sanEmails.push(String(n.value));
        else if (n.type === 6) out.sanUris.push(String(n.value));
        else if (n.type === 0) {
          const s = otherName(n.value);
          if (s !== null) out.sanOtherNames.push(s);
        }
      }
    } else if (e.critical && !KNOWN.has(e.extnID) && e.extnID !== SCT_LIST_OID) out.unknownCritical.push(e.extnID);
  }
}

/**
 * Reads a DER certificate.
 * @throws VerificationError VERIFY_CERTIFICATE_INVALID, with what is wrong.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  let c: pkijs.Certificate;
  try {
    c = pkijs.Certificate.fromBER(der as BufferSource);
  } catch (e) {
    throw bad(`it is not a DER X.509 certificate (${(e as Error).message})`);
  }
  const out: Certificate = {
    der,
    tbs: new Uint8Array(c.tbsView),
    signatureAlgorithm: c.signatureAlgorithm.algorithmId,
    signatureParams: c.signatureAlgorithm.algorithmParams
      ? new Uint8Array((c.signatureAlgorithm.algorithmParams as asn1js.AsnType).toBER(false))
      : new Uint8Array(0),
    signature: new Uint8Array(c.signatureValue.valueBlock.valueHexView),
    serialNumber: hex(c.serialNumber.valueBlock.valueHexView),
    subject: name(c.subject),
    issuer: name(c.issuer),
    notBefore: c.notBefore.value,
    notAfter: c.notAfter.value,
    spki: new Uint8Array(c.subjectPublicKeyInfo.toSchema().toBER(false)),
    isCA: false,
    pathLenConstraint: undefined,
    keyUsage: undefined,
    extKeyUsage: [],
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    sanEmails: [],
    sanUris: [],
    sanOtherNames: [],
    fulcio: {},
    unknownCritical: [],
    sctList: undefined,
  };
  try {
    readExtensions(c, out);
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw bad(`an extension cannot be read (${(e as Error).message})`);
  }
  if (Number.isNaN(out.notBefore.getTime()) || Number.isNaN(out.notAfter.getTime()))
    throw bad('its validity dates cannot be read');
  return out;
}

/** The OIDC issuer: Fulcio's .1.8 (DER), else the deprecated .1.1 (raw). */
export function certificateIssuer(c: Certificate): string | undefined {
  return c.fulcio[`${FULCIO}8`] ?? c.fulcio[`${FULCIO}1`];
}

/** What the identity policy judges: every SAN, the issuer, the GitHub workflow claims. */
export function certificateFacts(c: Certificate): CertificateFacts {
  const claims: CertificateFacts['claims'] = {};
  for (const k of GITHUB_CLAIMS) {
    const v = c.fulcio[CLAIM_OIDS[k]];
    if (v !== undefined) claims[k] = v;
  }
  const issuer = certificateIssuer(c);
  return {
    identities: [...c.sanEmails, ...c.sanUris, ...c.sanOtherNames],
    ...(issuer !== undefined ? { issuer } : {}),
    claims,
  };
}

/**
 * X.509 certificates as Sigstore verification reads them, parsed by pkijs (PeculiarVentures; the
 * ASN.1 and X.509 structures are where hand-written code goes wrong) after a strict DER check of
 * their framing: validity, keys, CA constraints, key usages, subject alternative names, Fulcio's
 * extensions and the embedded SCT list. Signature maths is not done here (shared/crypto/).
 * https://www.rfc-editor.org/rfc/rfc5280 §4.1–4.2
 * https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md
 *
 * Fulcio's first extensions (.1.1–.1.6) hold the raw string as the extension value; the later
 * ones (.1.8 on) hold a DER string (UTF8String), as sigstore-go's ParseExtensions reads them.
 */
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerificationError } from '../errors.ts';
import { pemCertificates } from './private-pki.ts';
import { toHex } from '../encoding/base64.ts';
import { DerError, children, parseDer, type DerNode } from '../encoding/der.ts';
import { GITHUB_CLAIMS, type CertificateFacts } from './policy.ts';
import { noExtensions, readExtensions, type ExtensionFields } from './certificate-extensions.ts';

export { CODE_SIGNING_EKU, SCT_LIST_OID, TIME_STAMPING_EKU } from './certificate-extensions.ts';

export interface Certificate extends ExtensionFields {
  der: Uint8Array;
  /** The exact signed bytes (tbsCertificate, as in `der`). */
  tbs: Uint8Array;
  /** The signature algorithm's OID (the outer one, which must equal the tbsCertificate's). */
  signatureAlgorithm: string;
  /** DER of the algorithm's parameters, empty when absent. */
  signatureParams: Uint8Array;
  signature: Uint8Array;
  /** Lower-case hex of the serial number's content octets. */
  serialNumber: string;
  /** The subject for people, as Go prints a name: "CN=sigstore-intermediate,O=sigstore.dev". */
  subject: string;
  issuer: string;
  /** The DER Names, for matching an issuer to its subject byte for byte (as Go does). */
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
}

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_CERTIFICATE_INVALID', `The certificate is not valid: ${why}.`);
}

/** Every element, to the leaves, must be DER-framed (definite, minimal lengths; nothing trailing). */
function checkDer(node: DerNode, depth = 0): void {
  if (depth > 32) throw new DerError('nested too deeply');
  if (node.tag & 0x20) for (const child of children(node)) checkDer(child, depth + 1);
}

const ATTRIBUTE_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.17': 'POSTALCODE',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

/** A Name as Go's pkix.Name.String() writes it (RFC 2253 order: last RDN first). */
function nameString(n: pkijs.RelativeDistinguishedNames): string {
  return n.typesAndValues
    .map((t) => {
      const v: unknown = t.value.valueBlock.value;
      const text =
        typeof v === 'string' ? v.replace(/([,+"\\<>;])/g, '\\$1') : `#${toHex(new Uint8Array(t.value.toBER(false)))}`;
      return `${ATTRIBUTE_NAMES[t.type] ?? t.type}=${text}`;
    })
    .reverse()
    .join(',');
}

function bytesOf(o: { toBER(sizeOnly?: boolean): ArrayBuffer }): Uint8Array {
  return new Uint8Array(o.toBER(false));
}

type RawFields = { issuer: Uint8Array; subject: Uint8Array; spki: Uint8Array };

/** The issuer and subject Names and the SPKI exactly as encoded (Go's RawIssuer, RawSubject). */
function rawFields(top: DerNode): RawFields {
  const [tbs, alg, , ...rest] = children(top);
  if (!tbs || !alg || rest.length) throw bad('it is not a SEQUENCE of tbsCertificate, algorithm and signature');
  const fields = children(tbs);
  const [, , issuer, , subject, spki] = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  if (!issuer || !subject || !spki) throw bad('its tbsCertificate is cut short');
  return { issuer: issuer.raw, subject: subject.raw, spki: spki.raw };
}

/** The fields pkijs reads, before the extensions. */
function baseFields(der: Uint8Array, c: pkijs.Certificate, raw: RawFields): Certificate {
  const params = c.signatureAlgorithm.algorithmParams as asn1js.AsnType | undefined;
  return {
    der,
    tbs: new Uint8Array(c.tbsView),
    signatureAlgorithm: c.signatureAlgorithm.algorithmId,
    signatureParams: params ? bytesOf(params) : new Uint8Array(0),
    signature: new Uint8Array(c.signatureValue.valueBlock.valueHexView),
    serialNumber: toHex(new Uint8Array(c.serialNumber.valueBlock.valueHexView)),
    subject: nameString(c.subject),
    issuer: nameString(c.issuer),
    subjectDer: raw.subject,
    issuerDer: raw.issuer,
    notBefore: c.notBefore.value,
    notAfter: c.notAfter.value,
    spki: raw.spki,
    ...noExtensions(),
  };
}

function parse(der: Uint8Array): Certificate {
  const top = parseDer(der);
  checkDer(top);
  const raw = rawFields(top);
  const c = pkijs.Certificate.fromBER(der as BufferSource);
  const out = baseFields(der, c, raw);
  if (!c.signature.isEqual(c.signatureAlgorithm)) throw bad('its two signature algorithm fields differ');
  if (c.signatureValue.valueBlock.unusedBits !== 0) throw bad('its signature is not whole bytes');
  if (Number.isNaN(out.notBefore.getTime()) || Number.isNaN(out.notAfter.getTime()))
    throw bad('its validity dates cannot be read');
  readExtensions(c.extensions ?? [], out);
  return out;
}

/**
 * Certificates read before, by their DER: the same few come back in every verification (a
 * timestamp authority's in each token it signs, Fulcio's intermediates in each chain, the trusted
 * root's), and pkijs takes milliseconds for each. Only what read well is kept; never changed.
 */
const read = new Map<string, Certificate>();
const MAX_READ = 64;

/**
 * Reads a DER certificate (v1–v3). Refuses BER, trailing bytes, two signature algorithms that
 * differ, duplicate extensions, and Fulcio extensions that are not what oid-info.md says.
 * @throws VerificationError VERIFY_CERTIFICATE_INVALID, with what is wrong.
 */
export function parseCertificate(der: Uint8Array): Certificate {
  const key = toHex(der);
  const known = read.get(key);
  if (known) return known;
  try {
    // A copy: the caller's buffer may be reused, the certificate kept.
    const cert = parse(der.slice());
    if (read.size >= MAX_READ) read.delete(read.keys().next().value!);
    read.set(key, cert);
    return cert;
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw bad(`it is not a DER X.509 certificate (${(e as Error)?.message ?? String(e)})`);
  }
}

/**
 * Every CERTIFICATE block of a PEM text (a bundle of roots or intermediates), as DER, in order.
 * @throws VerificationError VERIFY_CERTIFICATE_INVALID when there is none or a block is damaged.
 */
export function parsePemCertificates(text: string): Uint8Array[] {
  return pemCertificates(text, 'text');
}

/** Who a certificate names, as cosign picks it: the first SAN email, else URI, else Fulcio username. */
export function certificateIdentity(c: Certificate): string | undefined {
  return c.sanEmails[0] ?? c.sanUris[0] ?? c.sanOtherNames[0];
}

/** The OIDC issuer: Fulcio's .1.8 (DER), else the deprecated .1.1 (raw). */
export function certificateIssuer(c: Certificate): string | undefined {
  return c.fulcio.issuerV2 ?? c.fulcio.issuerV1;
}

/** What the identity policy judges: every SAN, the issuer, the GitHub workflow claims (v1). */
export function certificateFacts(c: Certificate): CertificateFacts {
  const claims: CertificateFacts['claims'] = {};
  for (const k of GITHUB_CLAIMS) {
    const v = c.fulcio[k];
    if (v !== undefined) claims[k] = v;
  }
  const issuer = certificateIssuer(c);
  return {
    identities: [...c.sanEmails, ...c.sanUris, ...c.sanOtherNames],
    ...(issuer !== undefined ? { issuer } : {}),
    claims,
  };
}

/**
 * RFC 3161 timestamps: a CMS SignedData (RFC 5652) over a TSTInfo (RFC 3161 §2.4.2), parsed by
 * pkijs and checked as sigstore-go (pkg/verify/tsa.go, pkg/root/timestamping_authority.go) and the
 * timestamp authority's own verifier (timestamp-authority pkg/verification/verify.go) check them:
 * - the TSTInfo's message imprint is the hash (SHA-256/384/512) of the bytes timestamped (the
 *   bundle's signature);
 * - the signed attributes' message digest is the hash of the TSTInfo, and the signature over the
 *   attributes (as a SET OF) verifies with the signer's key: the certificate the token carries,
 *   else the leaf certificate of a timestamp authority of the trusted root, named by the signer id;
 * - that certificate is the authority's leaf when the authority lists one, chains to the
 *   authority's root, every certificate on the path valid at the token's time, and the authority
 *   trusted then; the leaf is no CA, and its one extended key usage, marked critical, is
 *   timeStamping (RFC 3161 §2.3).
 * Signature maths is done in shared/crypto/.
 * https://www.rfc-editor.org/rfc/rfc3161 https://www.rfc-editor.org/rfc/rfc5652#section-5
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerificationError } from '../errors.ts';
import { bytesEqual, toHex } from '../encoding/base64.ts';
import { der } from '../encoding/der.ts';
import {
  digest,
  hashOfOid,
  signatureAlgorithm,
  verifyWithAlgorithm,
  type HashName,
  type SignatureAlgorithm,
} from '../crypto/verify-spki.ts';
import { TIME_STAMPING_EKU, parseCertificate, type Certificate } from './certificate.ts';
import { verifyCertificateChain } from './chain.ts';
import { validAt } from './trusted-root.ts';
import type { TrustedAuthority } from './types.ts';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const TST_INFO = '1.2.840.113549.1.9.16.1.4';
const CONTENT_TYPE = '1.2.840.113549.1.9.3';
const MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const EXT_KEY_USAGE = '2.5.29.37';
/** CMS names the key's algorithm (rsaEncryption, id-ecPublicKey) and takes the hash from the digest algorithm. */
const KEY_ONLY: Record<string, SignatureAlgorithm['key']> = {
  '1.2.840.113549.1.1.1': 'rsa',
  '1.2.840.10045.2.1': 'ecdsa',
};
const NAME_ATTRIBUTES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
};

/** What a timestamp says, for showing people (nothing here is verified by parsing). */
export interface TimestampToken {
  /** When the authority says it saw the imprint (TSTInfo genTime). */
  genTime: Date;
  /** The imprint's hash: 'SHA-256', 'SHA-384', 'SHA-512', or the OID of another. */
  hashAlgorithm: string;
  messageImprint: Uint8Array;
  /** The authority's serial number of the token, lower-case hex. */
  serial: string;
  /** The authority's policy OID. */
  policy: string;
  /** The TSTInfo's tsa field: a directory name as "CN=…,O=…", or a URI, DNS name or e-mail. */
  tsaName?: string;
  /** The certificates the token carries (none when the authority left them out). */
  embeddedCertificates: Certificate[];
}

/** Who signed, as the SignerInfo names it: issuer and serial, or subject key identifier. */
type SignerId = { issuer: Uint8Array; serial: string } | { keyId: Uint8Array };

/** The parts of the token's one SignerInfo that verification needs. */
interface SignerParts {
  id: SignerId;
  algorithm: SignatureAlgorithm;
  /** What the signature covers: the signed attributes as a SET OF, or the TSTInfo itself. */
  signed: Uint8Array;
  signature: Uint8Array;
  /** The signed message-digest attribute (null without signed attributes), and its hash. */
  claimedDigest: Uint8Array | null;
  digestHash: HashName;
  tstInfo: Uint8Array;
}

interface ParsedToken {
  info: TimestampToken;
  /** The imprint's hash, null when not SHA-2. */
  imprintHash: HashName | null;
  signer: SignerParts;
}

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_TIMESTAMP_INVALID', `The RFC 3161 timestamp is not valid: ${why}.`);
}

function untrusted(why: string): VerificationError {
  return new VerificationError('VERIFY_TIMESTAMP_UNTRUSTED', `The RFC 3161 timestamp is not trusted: ${why}.`);
}

/** An OCTET STRING's content, also when BER splits it into pieces. */
function octets(o: asn1js.OctetString, depth = 0): Uint8Array {
  if (!o.idBlock.isConstructed) return new Uint8Array(o.valueBlock.valueHexView);
  if (depth > 8) throw bad('an OCTET STRING is nested too deeply');
  return der.concat(
    (o.valueBlock.value as asn1js.AsnType[]).map((p) => {
      if (!(p instanceof asn1js.OctetString)) throw bad('a constructed OCTET STRING holds something else');
      return octets(p, depth + 1);
    }),
  );
}

/** The one value of the signed attribute `type`; undefined when absent. */
function attribute(attrs: pkijs.Attribute[], type: string, label: string): unknown {
  const found = attrs.filter((a) => a.type === type);
  if (found.length > 1) throw bad(`its signed attributes hold ${label} twice`);
  if (found[0] && found[0].values.length !== 1)
    throw bad(`its ${label} attribute holds ${found[0].values.length} values`);
  return found[0]?.values[0];
}

function signerId(sid: unknown): SignerId {
  if (sid instanceof pkijs.IssuerAndSerialNumber) {
    return {
      // The Name exactly as sent, to match a certificate's issuer byte for byte (as Go does).
      issuer: new Uint8Array(sid.issuer.valueBeforeDecode),
      serial: toHex(new Uint8Array(sid.serialNumber.valueBlock.valueHexView)),
    };
  }
  const block = (sid as asn1js.AsnType & { valueBlock?: { valueHexView?: Uint8Array } }).valueBlock;
  if (!(block?.valueHexView instanceof Uint8Array) || block.valueHexView.length === 0)
    throw bad('its signer is named neither by issuer and serial number nor by key identifier');
  return { keyId: new Uint8Array(block.valueHexView) };
}

/** The SignerInfo's signature algorithm, with the digest algorithm's hash where CMS names only the key. */
function signerAlgorithm(si: pkijs.SignerInfo, hash: HashName): SignatureAlgorithm {
  const oid = si.signatureAlgorithm.algorithmId;
  const key = KEY_ONLY[oid];
  if (key) return { key, hash };
  const params = si.signatureAlgorithm.algorithmParams as asn1js.AsnType | undefined;
  const alg = signatureAlgorithm(oid, params ? new Uint8Array(params.toBER(false)) : undefined);
  if (!alg) throw bad(`its signature algorithm ${oid} is not one Sigstore accepts`);
  return alg;
}

function signerParts(si: pkijs.SignerInfo, tstInfo: Uint8Array): SignerParts {
  const digestHash = hashOfOid(si.digestAlgorithm.algorithmId);
  if (!digestHash) throw bad(`its digest algorithm ${si.digestAlgorithm.algorithmId} is not SHA-256/384/512`);
  let signed = tstInfo;
  let claimedDigest: Uint8Array | null = null;
  if (si.signedAttrs) {
    signed = new Uint8Array(si.signedAttrs.encodedValue).slice();
    signed[0] = 0x31; // signed as a SET OF, not as the [0] IMPLICIT it is sent as (RFC 5652 §5.4)
    const attrs = si.signedAttrs.attributes;
    const type = attribute(attrs, CONTENT_TYPE, 'content-type');
    if (type !== undefined && !(type instanceof asn1js.ObjectIdentifier && type.getValue() === TST_INFO))
      throw bad('its signed content type is not a TSTInfo');
    const md = attribute(attrs, MESSAGE_DIGEST, 'message-digest');
    if (!(md instanceof asn1js.OctetString)) throw bad('its signed attributes hold no message digest');
    claimedDigest = octets(md);
  }
  return {
    id: signerId(si.sid),
    algorithm: signerAlgorithm(si, digestHash),
    signed,
    signature: new Uint8Array(si.signature.valueBlock.valueHexView),
    claimedDigest,
    digestHash,
    tstInfo,
  };
}

/**
 * The token's ContentInfo. Bundles hold the whole TimeStampResp (status, then the token) as
 * timestamp authorities answer (protobuf-specs RFC3161SignedTimestamp); a bare token is read too.
 */
function contentInfo(node: asn1js.AsnType): pkijs.ContentInfo {
  const first = (node as asn1js.Sequence).valueBlock?.value?.[0];
  if (!(first instanceof asn1js.Sequence)) return new pkijs.ContentInfo({ schema: node });
  const resp = new pkijs.TimeStampResp({ schema: node });
  const status = resp.status.status;
  if (status !== 0 && status !== 1) throw bad(`the authority refused to timestamp (status ${status})`);
  if (!resp.timeStampToken) throw bad('the response holds no token');
  return resp.timeStampToken;
}

function nameText(n: pkijs.GeneralName | undefined): string | undefined {
  if (!n) return undefined;
  if (n.value instanceof pkijs.RelativeDistinguishedNames) {
    const parts = n.value.typesAndValues.map((t) => {
      const v: unknown = t.value.valueBlock.value;
      return `${NAME_ATTRIBUTES[t.type] ?? t.type}=${typeof v === 'string' ? v : '#'}`;
    });
    return parts.reverse().join(',');
  }
  return typeof n.value === 'string' ? n.value : undefined;
}

/**
 * The certificates the SignedData carries, read from their bytes as sent (re-encoding pkijs's
 * objects cost milliseconds each): its [0] IMPLICIT CertificateSet's plain certificates.
 */
function embedded(sd: pkijs.SignedData, content: asn1js.AsnType): Certificate[] {
  if (!sd.certificates?.length) return [];
  const set = (content as asn1js.Sequence).valueBlock.value.find(
    (n) => n.idBlock.tagClass === 3 && n.idBlock.tagNumber === 0,
  ) as asn1js.Constructed | undefined;
  return (set?.valueBlock.value ?? []).flatMap((n) =>
    n instanceof asn1js.Sequence ? [parseCertificate(new Uint8Array(n.valueBeforeDecodeView))] : [],
  );
}

function readToken(token: Uint8Array): ParsedToken {
  const asn = asn1js.fromBER(token as BufferSource);
  if (asn.offset === -1) throw bad('it is not DER');
  if (asn.offset !== token.length) throw bad('bytes follow it');
  const ci = contentInfo(asn.result);
  if (ci.contentType !== SIGNED_DATA) throw bad('it is not a CMS SignedData');
  const sd = new pkijs.SignedData({ schema: ci.content });
  const eContent = sd.encapContentInfo.eContent;
  if (sd.encapContentInfo.eContentType !== TST_INFO || !eContent) throw bad('it holds no TSTInfo');
  if (sd.signerInfos.length !== 1) throw bad(`it has ${sd.signerInfos.length} signers, not one`);
  const tstInfo = octets(eContent);
  const tst = pkijs.TSTInfo.fromBER(tstInfo as BufferSource);
  if (!(tst.genTime instanceof Date) || Number.isNaN(tst.genTime.getTime())) throw bad('its time cannot be read');
  const imprintOid = tst.messageImprint.hashAlgorithm.algorithmId;
  const tsaName = nameText(tst.tsa);
  const info: TimestampToken = {
    genTime: tst.genTime,
    hashAlgorithm: hashOfOid(imprintOid) ?? imprintOid,
    messageImprint: new Uint8Array(tst.messageImprint.hashedMessage.valueBlock.valueHexView),
    serial: toHex(new Uint8Array(tst.serialNumber.valueBlock.valueHexView)).replace(/^(00)+(?=..)/, ''),
    policy: tst.policy,
    ...(tsaName !== undefined ? { tsaName } : {}),
    embeddedCertificates: embedded(sd, ci.content as asn1js.AsnType),
  };
  return { info, imprintHash: hashOfOid(imprintOid), signer: signerParts(sd.signerInfos[0]!, tstInfo) };
}

/**
 * Tokens read before, by their bytes: pkijs takes tens of milliseconds over one, and verifying an
 * image again (or the same bundle) hands back the same token. Only what read well is kept; what
 * is kept is never changed.
 */
const readTokens = new Map<string, ParsedToken>();
const MAX_TOKENS = 32;

function parse(token: Uint8Array): ParsedToken {
  const key = toHex(token);
  const known = readTokens.get(key);
  if (known) return known;
  try {
    const t = readToken(token.slice()); // a copy: the caller's buffer may be reused, the reading kept
    if (readTokens.size >= MAX_TOKENS) readTokens.delete(readTokens.keys().next().value!);
    readTokens.set(key, t);
    return t;
  } catch (e) {
    if (e instanceof VerificationError && e.code === 'VERIFY_TIMESTAMP_INVALID') throw e;
    throw bad(`it cannot be read (${e instanceof Error ? e.message : String(e)})`);
  }
}

/**
 * Reads a DER RFC 3161 timestamp — a TimeStampToken (CMS ContentInfo), or the TimeStampResp
 * holding one as Sigstore bundles do — for showing; nothing is verified.
 * @throws VerificationError VERIFY_TIMESTAMP_INVALID when it is not one (also for a certificate it
 *   carries that cannot be read, or an authority's refusal).
 */
export function parseTimestampToken(token: Uint8Array): TimestampToken {
  return parse(token).info;
}

function isSigner(c: Certificate, id: SignerId): boolean {
  if ('keyId' in id) return c.subjectKeyId !== undefined && bytesEqual(c.subjectKeyId, id.keyId);
  return c.serialNumber === id.serial && bytesEqual(c.issuerDer, id.issuer);
}

function signatureVerifies(c: Certificate, s: SignerParts): Promise<boolean> {
  return verifyWithAlgorithm(c.spki, s.algorithm, s.signed, s.signature);
}

/** The answer per certificate read (parseCertificate hands back the same object for the same DER). */
const usageProblems = new WeakMap<Certificate, string | null>();

/** RFC 3161 §2.3 as the timestamp authority's verifier holds it: one EKU, timeStamping, critical. */
function leafUsageProblem(c: Certificate): string | null {
  if (c.extKeyUsage.length !== 1 || c.extKeyUsage[0] !== TIME_STAMPING_EKU)
    return `its certificate's extended key usages are not timeStamping alone (${c.extKeyUsage.join(', ') || 'none'})`;
  let problem = usageProblems.get(c);
  if (problem === undefined) {
    const ext = pkijs.Certificate.fromBER(c.der as BufferSource).extensions?.find((e) => e.extnID === EXT_KEY_USAGE);
    problem = ext?.critical ? null : "its certificate's extended key usage is not marked critical";
    usageProblems.set(c, problem);
  }
  return problem;
}

const authorityLeaves = new WeakMap<TrustedAuthority, Certificate | null>();

/** The authority's leaf: its first certificate when that is no CA (as sigstore-go reads a TSA). */
function authorityLeaf(a: TrustedAuthority): Certificate | null {
  let leaf = authorityLeaves.get(a);
  if (leaf === undefined) {
    const first = a.certChain[0] ? parseCertificate(a.certChain[0]) : null;
    leaf = first && !first.isCA ? first : null;
    authorityLeaves.set(a, leaf);
  }
  return leaf;
}

/**
 * Why `a` does not vouch for the token, or null when it does; `carried` is the token's own signer,
 * already verified. @throws VerificationError from the chain check.
 */
async function authorityProblem(
  t: ParsedToken,
  carried: Certificate | null,
  a: TrustedAuthority,
): Promise<string | null> {
  const at = t.info.genTime;
  if (!validAt(a.validFor, at)) return `${a.name} is not trusted at ${at.toISOString()}`;
  const leaf = authorityLeaf(a);
  let signer = carried;
  if (signer) {
    if (leaf && !bytesEqual(leaf.der, signer.der)) return `the certificate it carries is not ${a.name}'s`;
  } else {
    if (!leaf) return `${a.name} lists no signing certificate and the timestamp carries none`;
    if (!isSigner(leaf, t.signer.id)) return `it names another signer than ${a.name}'s certificate`;
    if (!(await signatureVerifies(leaf, t.signer))) return `its signature does not verify with ${a.name}'s key`;
    signer = leaf;
  }
  const usage = leafUsageProblem(signer);
  if (usage) return usage;
  await verifyCertificateChain(signer, [a], at, { leafUsage: TIME_STAMPING_EKU });
  return null;
}

/** The certificate the token carries that signed it, checked; null when it carries none. */
async function carriedSigner(t: ParsedToken): Promise<Certificate | null> {
  const certs = t.info.embeddedCertificates;
  if (certs.length === 0) return null;
  const signer = certs.find((c) => isSigner(c, t.signer.id));
  if (!signer) throw bad('the certificates it carries do not include its signer');
  if (!(await signatureVerifies(signer, t.signer))) throw bad('its signature does not verify with its certificate');
  return signer;
}

/** A settled promise's value, or its reason thrown. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/**
 * Verifies an RFC 3161 timestamp over `signed` (the bytes timestamped: a bundle's signature)
 * with the trusted root's timestamp authorities; see the file's header for what is checked.
 * @param token a DER TimeStampToken (CMS ContentInfo), or the TimeStampResp holding one.
 * @returns the time the authority vouches for, and which authority.
 * @throws VerificationError VERIFY_TIMESTAMP_INVALID (malformed; a timestamp of other bytes; a
 *   message digest or signature that does not check), VERIFY_TIMESTAMP_UNTRUSTED (no timestamp
 *   authority of the root, valid at the token's time, vouches for its signer: each one's reason).
 * @throws KeyError KEY_WEBCRYPTO_UNSUPPORTED where the runtime has no WebCrypto to hash with.
 */
export async function verifyRfc3161Timestamp(
  token: Uint8Array,
  signed: Uint8Array,
  authorities: TrustedAuthority[],
): Promise<{ time: Date; authority: TrustedAuthority }> {
  const t = parse(token);
  const { imprintHash } = t;
  if (!imprintHash) throw bad(`its imprint's hash ${t.info.hashAlgorithm} is not SHA-256/384/512`);
  const s = t.signer;
  // The independent checks at once (each a WebCrypto round trip), judged in their order.
  const [imprint, tstDigest, carried] = await Promise.allSettled([
    digest(imprintHash, signed),
    s.claimedDigest ? digest(s.digestHash, s.tstInfo) : null,
    carriedSigner(t),
  ]);
  if (!bytesEqual(settled(imprint), t.info.messageImprint)) throw bad('the timestamp is of other bytes');
  const tstHash = settled(tstDigest);
  if (s.claimedDigest && !(tstHash && bytesEqual(tstHash, s.claimedDigest)))
    throw bad("its signed message digest is not the TSTInfo's");
  const signer = settled(carried);
  const reasons: string[] = [];
  for (const a of authorities) {
    try {
      const problem = await authorityProblem(t, signer, a);
      if (problem === null) return { time: t.info.genTime, authority: a };
      reasons.push(problem);
    } catch (e) {
      if (!(e instanceof VerificationError)) throw e;
      reasons.push(`${a.name}: ${e.message}`);
    }
  }
  throw untrusted(reasons.join('; ') || 'the trusted root names no timestamp authority');
}

/**
 * RFC 3161 timestamps (a CMS SignedData over a TSTInfo, RFC 5652 and RFC 3161 §2.4.2), parsed by
 * pkijs, checked as sigstore-go (pkg/verify/tsa.go) and the timestamp authority's own verifier
 * check them: the TSTInfo's message imprint is the hash of the bytes timestamped (the signature);
 * the signed attributes' message digest is the hash of the TSTInfo; the signature verifies with
 * the signer's certificate (embedded in the token, or the authority's own); that certificate
 * chains to a timestamp authority of the trusted root valid at the time given, is valid then, and
 * carries the timeStamping usage.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { VerificationError } from '../errors.ts';
import { bytesEqual } from '../encoding/base64.ts';
import { der } from '../encoding/der.ts';
import {
  digest,
  hashOfOid,
  signatureScheme,
  verifySpkiSignature,
  type SignatureScheme,
} from '../crypto/verify-spki.ts';
import { TIME_STAMPING_EKU, parseCertificate, type Certificate } from './certificate.ts';
import { verifyCertificateChain } from './chain.ts';
import type { TrustedAuthority } from './types.ts';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const TST_INFO = '1.2.840.113549.1.9.16.1.4';
const MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

export interface TimestampToken {
  genTime: Date;
  hashAlgorithm: string;
  messageImprint: Uint8Array;
  serial: string;
  policy: string;
  embeddedCertificates: Certificate[];
  /** What the signature covers: the signed attributes as a SET OF, or the TSTInfo itself. */
  signed: Uint8Array;
  signature: Uint8Array;
  scheme: SignatureScheme;
  /** SHA-2 digest of the TSTInfo named by the signed attributes, with its hash. */
  contentDigest: { hash: SignatureScheme['hash']; claimed: Uint8Array | null; tstInfo: Uint8Array };
}

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_TIMESTAMP_INVALID', `The RFC 3161 timestamp is not valid: ${why}.`);
}

function octets(o: asn1js.OctetString): Uint8Array {
  if (!o.idBlock.isConstructed) return new Uint8Array(o.valueBlock.valueHexView);
  return der.concat((o.valueBlock.value as asn1js.OctetString[]).map(octets));
}

function hex(b: ArrayBuffer | Uint8Array): string {
  return Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
}

function signerInfoParts(
  si: pkijs.SignerInfo,
  tstInfo: Uint8Array,
): Pick<TimestampToken, 'signed' | 'signature' | 'scheme' | 'contentDigest'> {
  const hash = hashOfOid(si.digestAlgorithm.algorithmId);
  if (!hash) throw bad(`its digest algorithm ${si.digestAlgorithm.algorithmId} is not SHA-2`);
  const sigAlg = si.signatureAlgorithm.algorithmId;
  const params = si.signatureAlgorithm.algorithmParams as asn1js.AsnType | undefined;
  const scheme = signatureScheme(sigAlg, params ? new Uint8Array(params.toBER(false)) : undefined) ?? { hash };
  let signed = tstInfo;
  let claimed: Uint8Array | null = null;
  if (si.signedAttrs) {
    const enc = new Uint8Array(si.signedAttrs.encodedValue);
    signed = enc.slice();
    signed[0] = 0x31; // [0] IMPLICIT becomes SET OF, as RFC 5652 §5.4 signs it
    const md = si.signedAttrs.attributes.find((a) => a.type === MESSAGE_DIGEST)?.values[0];
    if (!(md instanceof asn1js.OctetString)) throw bad('its signed attributes hold no message digest');
    claimed = octets(md);
  }
  return {
    signed,
    signature: new Uint8Array(si.signature.valueBlock.valueHexView),
    scheme,
    contentDigest: { hash, claimed, tstInfo },
  };
}

/**
 * The token's ContentInfo: bundles hold the whole TimeStampResp (status, then the token), as
 * timestamp authorities answer; cosign's legacy annotation may hold either.
 */
function contentInfo(node: asn1js.AsnType): pkijs.ContentInfo {
  const first = (node as asn1js.Sequence).valueBlock?.value?.[0];
  if (first instanceof asn1js.Sequence) {
    const resp = new pkijs.TimeStampResp({ schema: node });
    if (resp.status.status !== 0 && resp.status.status !== 1)
      throw bad(`the authority refused it (status ${resp.status.status})`);
    if (!resp.timeStampToken) throw bad('the response holds no token');
    return resp.timeStampToken;
  }
  return new pkijs.ContentInfo({ schema: node });
}

/**
 * Reads a DER TimeStampToken, or a TimeStampResp holding one.
 * @throws VerificationError VERIFY_TIMESTAMP_INVALID
 */
export function parseTimestampToken(token: Uint8Array): TimestampToken {
  try {
    const asn = asn1js.fromBER(token as BufferSource);
    if (asn.offset === -1) throw bad('it is not DER');
    const ci = contentInfo(asn.result);
    if (ci.contentType !== SIGNED_DATA) throw bad('it is not a CMS SignedData');
    const sd = new pkijs.SignedData({ schema: ci.content });
    if (sd.encapContentInfo.eContentType !== TST_INFO || !sd.encapContentInfo.eContent)
      throw bad('it holds no TSTInfo');
    if (sd.signerInfos.length !== 1) throw bad(`it has ${sd.signerInfos.length} signers, not one`);
    const tstInfo = octets(sd.encapContentInfo.eContent);
    const tst = pkijs.TSTInfo.fromBER(tstInfo as BufferSource);
    const certs = (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
    return {
      genTime: tst.genTime,
      hashAlgorithm: tst.messageImprint.hashAlgorithm.algorithmId,
      messageImprint: new Uint8Array(tst.messageImprint.hashedMessage.valueBlock.valueHexView),
      serial: hex(tst.serialNumber.valueBlock.valueHexView),
      policy: tst.policy,
      embeddedCertificates: certs.map((c) => parseCertificate(new Uint8Array(c.toSchema().toBER(false)))),
      ...signerInfoParts(sd.signerInfos[0]!, tstInfo),
    };
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw bad(`it cannot be read (${(e as Error).message})`);
  }
}

async function findSigner(t: TimestampToken, authorities: TrustedAuthority[]): Promise<Certificate> {
  const candidates = t.embeddedCertificates.length
    ? t.embeddedCertificates
    : authorities.flatMap((a) => (a.certChain[0] ? [parseCertificate(a.certChain[0])] : []));
  for (const c of candidates) {
    try {
      if (await verifySpkiSignature(c.spki, t.scheme, t.signed, t.signature)) return c;
    } catch {
      // a key this runtime cannot use signed nothing
    }
  }
  throw new VerificationError(
    t.embeddedCertificates.length ? 'VERIFY_TIMESTAMP_INVALID' : 'VERIFY_TIMESTAMP_UNTRUSTED',
    t.embeddedCertificates.length
      ? "The RFC 3161 timestamp's signature does not verify with its certificate."
      : 'The RFC 3161 timestamp is not signed by a timestamp authority of the trusted root.',
  );
}

/**
 * Verifies a timestamp over `signed` (the signature bytes) with the root's timestamp authorities.
 * @throws VerificationError VERIFY_TIMESTAMP_INVALID (malformed, other bytes, a bad signature),
 *   VERIFY_TIMESTAMP_UNTRUSTED (not by a trusted authority valid at its time).
 */
export async function verifyRfc3161Timestamp(
  token: Uint8Array,
  signed: Uint8Array,
  authorities: TrustedAuthority[],
): Promise<{ time: Date; authority: TrustedAuthority }> {
  const t = parseTimestampToken(token);
  const imprintHash = hashOfOid(t.hashAlgorithm);
  if (!imprintHash) throw bad(`its imprint hash ${t.hashAlgorithm} is not SHA-2`);
  if (!bytesEqual(await digest(imprintHash, signed), t.messageImprint)) throw bad('it is a timestamp of other bytes');
  const { hash, claimed, tstInfo } = t.contentDigest;
  if (claimed && !bytesEqual(await digest(hash, tstInfo), claimed))
    throw bad("its signed message digest is not the TSTInfo's");
  const signer = await findSigner(t, authorities);
  try {
    const { authority } = await verifyCertificateChain(signer, authorities, t.genTime, {
      leafUsage: TIME_STAMPING_EKU,
    });
    return { time: t.genTime, authority };
  } catch (e) {
    const why = e instanceof VerificationError ? e.message : String(e);
    throw new VerificationError(
      'VERIFY_TIMESTAMP_UNTRUSTED',
      `The RFC 3161 timestamp's authority is not trusted at ${t.genTime.toISOString()}: ${why}`,
    );
  }
}

/**
 * A Rekor entry's body must describe the very signature being verified: the same signature
 * bytes, the same certificate or key, and the same artifact (its digest, or the DSSE envelope's
 * payload). Kinds as Rekor v1 and v2 write them (sigstore-go pkg/verify/tlog.go, sigstore-js
 * packages/verify/src/tlog/): hashedrekord 0.0.1 and 0.0.2, dsse 0.0.1 and 0.0.2, intoto 0.0.2.
 * Rekor v2 logs a DSSE signature as a hashedrekord 0.0.2 over SHA-256 of the DSSE PAE.
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, fromBase64, toHex } from '../encoding/base64.ts';
import { pae } from '../encoding/pae.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { isJsonObject, parseJsonObject, type JsonObject } from './json.ts';
import { pemCertificates } from './private-pki.ts';
import type { SignedContent, TlogEntry } from './types.ts';

export interface BodyExpectation {
  content: SignedContent;
  /** The leaf certificate's DER, or the public key's SPKI DER. */
  signerDer: Uint8Array;
  signerIsCertificate: boolean;
  /** SHA-256 of the artifact (a message signature's). */
  artifactDigest?: Uint8Array;
}

function malformed(why: string): VerificationError {
  return new VerificationError('VERIFY_TLOG_ENTRY_INVALID', `The log entry's body is not valid: ${why}.`);
}

function mismatch(what: string): never {
  throw new VerificationError(
    'VERIFY_TLOG_BODY_MISMATCH',
    `The log entry is not about this signature: its ${what} differs.`,
  );
}

function path(o: unknown, ...keys: string[]): unknown {
  let v = o;
  for (const k of keys) v = isJsonObject(v) ? v[k] : undefined;
  return v;
}

/** The DER inside a base64 PEM (v0.0.1 bodies) or a PEM key, whichever the body holds. */
function pemDer(b64Pem: unknown): Uint8Array | null {
  const pem = typeof b64Pem === 'string' ? fromBase64(b64Pem) : null;
  if (!pem) return null;
  const text = new TextDecoder().decode(pem);
  if (text.includes('BEGIN CERTIFICATE')) {
    try {
      return pemCertificates(text, 'log entry')[0] ?? null;
    } catch {
      return null;
    }
  }
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(text);
  return m ? fromBase64(m[1]!.replace(/\s+/g, '')) : null;
}

function sameB64(v: unknown, bytes: Uint8Array): boolean {
  const b = typeof v === 'string' ? fromBase64(v) : null;
  return !!b && bytesEqual(b, bytes);
}

function signatureOf(c: SignedContent): Uint8Array {
  return c.kind === 'dsse' ? c.signatures[0]!.sig : c.signature;
}

/** The digest a hashedrekord names for this content: the artifact's, or the DSSE PAE's. */
function hashedDigest(exp: BodyExpectation): Uint8Array | undefined {
  if (exp.content.kind === 'dsse') return sha256Bytes(pae(exp.content.payloadType, exp.content.payload));
  return exp.artifactDigest;
}

function checkVerifier(v: unknown, exp: BodyExpectation): void {
  const raw = exp.signerIsCertificate ? path(v, 'x509Certificate', 'rawBytes') : path(v, 'publicKey', 'rawBytes');
  if (!sameB64(raw, exp.signerDer)) mismatch(exp.signerIsCertificate ? 'certificate' : 'public key');
}

function hashedrekord(spec: JsonObject, version: string, exp: BodyExpectation): void {
  const digest = hashedDigest(exp);
  if (version === '0.0.1') {
    if (!sameB64(path(spec, 'signature', 'content'), signatureOf(exp.content))) mismatch('signature');
    const key = pemDer(path(spec, 'signature', 'publicKey', 'content'));
    if (!key || !bytesEqual(key, exp.signerDer)) mismatch(exp.signerIsCertificate ? 'certificate' : 'public key');
    if (
      path(spec, 'data', 'hash', 'algorithm') !== 'sha256' ||
      !digest ||
      path(spec, 'data', 'hash', 'value') !== toHex(digest)
    )
      mismatch('artifact digest');
    return;
  }
  const v2 = path(spec, 'hashedRekordV002');
  if (!sameB64(path(v2, 'signature', 'content'), signatureOf(exp.content))) mismatch('signature');
  checkVerifier(path(v2, 'signature', 'verifier'), exp);
  if (path(v2, 'data', 'algorithm') !== 'SHA2_256' || !digest || !sameB64(path(v2, 'data', 'digest'), digest))
    mismatch('artifact digest');
}

function dsse(spec: JsonObject, version: string, exp: BodyExpectation): void {
  if (exp.content.kind !== 'dsse') mismatch('kind (a DSSE entry for a message signature)');
  const payloadHash = sha256Bytes(exp.content.payload);
  const sig = signatureOf(exp.content);
  if (version === '0.0.1') {
    if (path(spec, 'payloadHash', 'value') !== toHex(payloadHash)) mismatch('payload hash');
    const sigs = path(spec, 'signatures');
    const ok =
      Array.isArray(sigs) &&
      sigs.some(
        (s) =>
          sameB64(path(s, 'signature'), sig) &&
          bytesEqual(pemDer(path(s, 'verifier')) ?? new Uint8Array(), exp.signerDer),
      );
    if (!ok) mismatch('signature');
    return;
  }
  const v2 = path(spec, 'dsseV002');
  if (!sameB64(path(v2, 'payloadHash', 'digest'), payloadHash)) mismatch('payload hash');
  const sigs = path(v2, 'signatures');
  if (!Array.isArray(sigs) || !sigs.some((s) => sameB64(path(s, 'content'), sig))) mismatch('signature');
  checkVerifier(
    path(
      sigs.find((s) => sameB64(path(s, 'content'), sig)),
      'verifier',
    ),
    exp,
  );
}

function intoto(spec: JsonObject, exp: BodyExpectation): void {
  if (exp.content.kind !== 'dsse') mismatch('kind (an in-toto entry for a message signature)');
  if (path(spec, 'content', 'payloadHash', 'value') !== toHex(sha256Bytes(exp.content.payload)))
    mismatch('payload hash');
  const sigs = path(spec, 'content', 'envelope', 'signatures');
  const sig = signatureOf(exp.content);
  // intoto 0.0.2 stores each signature base64-encoded twice.
  const twice = (v: unknown) => {
    const once = typeof v === 'string' ? fromBase64(v) : null;
    return once ? fromBase64(new TextDecoder().decode(once)) : null;
  };
  const match = Array.isArray(sigs)
    ? sigs.find((s) => {
        const b = twice(path(s, 'sig'));
        return !!b && bytesEqual(b, sig);
      })
    : undefined;
  if (!match) mismatch('signature');
  const key = pemDer(path(match, 'publicKey'));
  if (!key || !bytesEqual(key, exp.signerDer)) mismatch(exp.signerIsCertificate ? 'certificate' : 'public key');
}

/**
 * @throws VerificationError VERIFY_TLOG_BODY_MISMATCH when the body describes another signature,
 *   VERIFY_TLOG_ENTRY_INVALID when it cannot be read or its kind is not one named here.
 */
export function checkBodyMatches(entry: TlogEntry, exp: BodyExpectation): void {
  const body = parseJsonObject(entry.canonicalizedBody, malformed);
  const { kind, apiVersion, spec } = body;
  if (kind !== entry.kindVersion.kind || apiVersion !== entry.kindVersion.version)
    throw malformed(
      `it is a ${String(kind)} ${String(apiVersion)}, the entry says ${entry.kindVersion.kind} ${entry.kindVersion.version}`,
    );
  if (!isJsonObject(spec)) throw malformed('it has no spec');
  const known = `${kind} ${apiVersion}`;
  if (known === 'hashedrekord 0.0.1' || known === 'hashedrekord 0.0.2') hashedrekord(spec, apiVersion as string, exp);
  else if (known === 'dsse 0.0.1' || known === 'dsse 0.0.2') dsse(spec, apiVersion as string, exp);
  else if (known === 'intoto 0.0.2') intoto(spec, exp);
  else throw malformed(`entries of kind ${known} are not read here`);
}

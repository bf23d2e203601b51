/**
 * A Rekor entry's body must describe the very signature being verified: the same signature bytes,
 * the same certificate or key, and the same artifact (its digest, or the DSSE envelope's payload).
 * Each kind is first read into what the log recorded (LoggedFacts), then compared in one place.
 *
 * Kinds as Rekor v1 and v2 write them (rekor pkg/types/*, rekor-tiles; compared as sigstore-go
 * pkg/verify/tlog.go and sigstore-js packages/verify/src/tlog/{hashedrekord,dsse,intoto}.ts do):
 * - hashedrekord 0.0.1: signature, PEM certificate or key, hex digest of the artifact;
 * - hashedrekord 0.0.2 (Rekor v2): signature, DER certificate or SPKI, digest of the artifact, or of
 *   the DSSE PAE when a DSSE envelope was logged (rekor-v2 spec §6.1.4);
 * - dsse 0.0.1 and 0.0.2: payload hash and the envelope's one signature with its verifier;
 * - intoto 0.0.2: payload hash, payload type, the one signature (base64 twice) with its PEM key;
 * - intoto 0.0.1: payload hash and PEM key only (the body keeps no signature); old entries without
 *   a payload hash cannot be tied to an envelope and are refused.
 * The DSSE envelope hash (dsse 0.0.1, intoto) is the hash of the JSON Rekor was sent, which a
 * bundle does not keep; like sigstore-go and sigstore-js, it is not compared.
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, fromBase64, fromHex } from '../encoding/base64.ts';
import { decodePem } from '../encoding/pem.ts';
import { pae } from '../encoding/pae.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { isJsonObject, parseJsonObject, type JsonObject } from './json.ts';
import type { SignedContent, TlogEntry } from './types.ts';

export interface BodyExpectation {
  content: SignedContent;
  /** The leaf certificate's DER, or the public key's SPKI DER. */
  signerDer: Uint8Array;
  signerIsCertificate: boolean;
  /** SHA-256 of the artifact (a message signature's). */
  artifactDigest?: Uint8Array;
}

type DigestName = 'sha256' | 'sha384' | 'sha512';

/** A certificate or key as the body names it. */
interface LoggedSigner {
  der: Uint8Array;
  isCertificate: boolean;
}

/** What one entry body records, whatever its kind. */
export interface LoggedFacts {
  kind: string;
  apiVersion: string;
  /** The signatures the body lists (none for intoto 0.0.1). */
  signatures: Uint8Array[];
  signer: LoggedSigner;
  /** hashedrekord: the digest that was signed. */
  digest?: { algorithm: DigestName; value: Uint8Array };
  /** dsse, intoto: SHA-256 of the envelope's payload. */
  payloadHash?: Uint8Array;
  /** intoto 0.0.2: the envelope's payload type. */
  payloadType?: string;
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

/** The value at a path of nested objects, or a malformed-body error naming the path. */
function at(o: unknown, path: string): unknown {
  let v = o;
  for (const k of path.split('.')) {
    if (!isJsonObject(v) || !Object.hasOwn(v, k)) throw malformed(`it has no ${path}`);
    v = v[k];
  }
  return v;
}

function str(o: unknown, path: string): string {
  const v = at(o, path);
  if (typeof v !== 'string') throw malformed(`its ${path} is not a string`);
  return v;
}

function b64(o: unknown, path: string): Uint8Array {
  const v = fromBase64(str(o, path));
  if (!v || v.length === 0) throw malformed(`its ${path} is not base64`);
  return v;
}

function hex(o: unknown, path: string): Uint8Array {
  const v = fromHex(str(o, path));
  if (!v || v.length === 0) throw malformed(`its ${path} is not hex`);
  return v;
}

function list(o: unknown, path: string): unknown[] {
  const v = at(o, path);
  if (!Array.isArray(v)) throw malformed(`its ${path} is not a list`);
  return v;
}

/** A base64 PEM certificate or public key (v0.0.1 bodies). */
function pemSigner(o: unknown, path: string): LoggedSigner {
  let block;
  try {
    block = decodePem(new TextDecoder().decode(b64(o, path)));
  } catch (e) {
    if (e instanceof VerificationError) throw e;
    throw malformed(`its ${path} is not PEM`);
  }
  if (block.label !== 'CERTIFICATE' && block.label !== 'PUBLIC KEY')
    throw malformed(`its ${path} is a PEM ${block.label}, not a certificate or public key`);
  return { der: block.bytes, isCertificate: block.label === 'CERTIFICATE' };
}

/** A protobuf Verifier: an X.509 certificate or a public key, DER (v0.0.2 bodies). */
function rawSigner(o: unknown, path: string): LoggedSigner {
  const v = at(o, path);
  const isCertificate = isJsonObject(v) && Object.hasOwn(v, 'x509Certificate');
  return { der: b64(v, isCertificate ? 'x509Certificate.rawBytes' : 'publicKey.rawBytes'), isCertificate };
}

const V1_DIGESTS: Record<string, DigestName> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };
const V2_DIGESTS: Record<string, DigestName> = { SHA2_256: 'sha256', SHA2_384: 'sha384', SHA2_512: 'sha512' };

function digestName(o: unknown, path: string, names: Record<string, DigestName>): DigestName {
  const name = str(o, path);
  const out = Object.hasOwn(names, name) ? names[name] : undefined;
  if (!out) throw malformed(`its ${path} ${JSON.stringify(name.slice(0, 40))} is not a digest Rekor writes`);
  return out;
}

/** A sha256 payload hash; another algorithm is a body this reader cannot tie to the payload. */
function sha256Of(o: unknown, algPath: string, names: Record<string, DigestName>, value: () => Uint8Array): Uint8Array {
  if (digestName(o, algPath, names) !== 'sha256') throw malformed(`its ${algPath} is not SHA-256`);
  return value();
}

function oneSignature(sigs: unknown[], path: string): unknown {
  if (sigs.length !== 1) mismatch(`signature count (${sigs.length} in ${path}, one in the bundle)`);
  return sigs[0];
}

type Reader = (spec: JsonObject) => Omit<LoggedFacts, 'kind' | 'apiVersion'>;

const READERS: Record<string, Reader> = {
  'hashedrekord 0.0.1': (spec) => ({
    signatures: [b64(spec, 'signature.content')],
    signer: pemSigner(spec, 'signature.publicKey.content'),
    digest: { algorithm: digestName(spec, 'data.hash.algorithm', V1_DIGESTS), value: hex(spec, 'data.hash.value') },
  }),
  'hashedrekord 0.0.2': (spec) => {
    const v = at(spec, 'hashedRekordV002');
    return {
      signatures: [b64(v, 'signature.content')],
      signer: rawSigner(v, 'signature.verifier'),
      digest: { algorithm: digestName(v, 'data.algorithm', V2_DIGESTS), value: b64(v, 'data.digest') },
    };
  },
  'dsse 0.0.1': (spec) => {
    const sig = oneSignature(list(spec, 'signatures'), 'spec.signatures');
    return {
      signatures: [b64(sig, 'signature')],
      signer: pemSigner(sig, 'verifier'),
      payloadHash: sha256Of(spec, 'payloadHash.algorithm', V1_DIGESTS, () => hex(spec, 'payloadHash.value')),
    };
  },
  'dsse 0.0.2': (spec) => {
    const v = at(spec, 'dsseV002');
    const sig = oneSignature(list(v, 'signatures'), 'spec.dsseV002.signatures');
    return {
      signatures: [b64(sig, 'content')],
      signer: rawSigner(sig, 'verifier'),
      payloadHash: sha256Of(v, 'payloadHash.algorithm', V2_DIGESTS, () => b64(v, 'payloadHash.digest')),
    };
  },
  'intoto 0.0.1': (spec) => ({
    signatures: [],
    signer: pemSigner(spec, 'publicKey'),
    payloadHash: sha256Of(spec, 'content.payloadHash.algorithm', V1_DIGESTS, () =>
      hex(spec, 'content.payloadHash.value'),
    ),
  }),
  'intoto 0.0.2': (spec) => {
    const sig = oneSignature(list(spec, 'content.envelope.signatures'), 'spec.content.envelope.signatures');
    // intoto 0.0.2 keeps each signature base64-encoded twice; one that is not names no
    // signature, so it matches none (as in sigstore-go).
    const signature = fromBase64(new TextDecoder().decode(b64(sig, 'sig'))) ?? new Uint8Array(0);
    return {
      signatures: [signature],
      signer: pemSigner(sig, 'publicKey'),
      payloadHash: sha256Of(spec, 'content.payloadHash.algorithm', V1_DIGESTS, () =>
        hex(spec, 'content.payloadHash.value'),
      ),
      payloadType: str(spec, 'content.envelope.payloadType'),
    };
  },
};

/**
 * Reads what an entry's body records.
 * @throws VerificationError VERIFY_TLOG_ENTRY_INVALID when the body is not JSON, its kind or
 *   apiVersion is not the entry's kindVersion, it is of a kind not read here, or a field is
 *   missing or malformed; VERIFY_TLOG_BODY_MISMATCH when it lists more than one signature.
 */
export function readRekorBody(entry: TlogEntry): LoggedFacts {
  const body = parseJsonObject(entry.canonicalizedBody, malformed);
  const { kind, apiVersion, spec } = body;
  if (typeof kind !== 'string' || typeof apiVersion !== 'string') throw malformed('it names no kind and apiVersion');
  if (kind !== entry.kindVersion.kind || apiVersion !== entry.kindVersion.version)
    throw malformed(
      `it is a ${JSON.stringify(kind.slice(0, 40))} ${JSON.stringify(apiVersion.slice(0, 20))} entry, the bundle says ${entry.kindVersion.kind} ${entry.kindVersion.version}`,
    );
  const key = `${kind} ${apiVersion}`;
  const reader = Object.hasOwn(READERS, key) ? READERS[key] : undefined;
  if (!reader) throw malformed(`entries of kind ${key.slice(0, 60)} are not read here`);
  if (!isJsonObject(spec)) throw malformed('it has no spec');
  return { kind, apiVersion, ...reader(spec) };
}

/** The digests a hashedrekord may record for this content, by algorithm. */
function expectedDigests(exp: BodyExpectation): Partial<Record<DigestName, Uint8Array[]>> {
  const c = exp.content;
  if (c.kind === 'dsse') return { sha256: [sha256Bytes(pae(c.payloadType, c.payload))] };
  const out: Partial<Record<DigestName, Uint8Array[]>> = {};
  if (exp.artifactDigest) out.sha256 = [exp.artifactDigest];
  const named = c.digest ? V2_DIGESTS[c.digest.algorithm] : undefined;
  if (c.digest && named) (out[named] ??= []).push(c.digest.digest);
  return out;
}

function checkDigest(facts: LoggedFacts, exp: BodyExpectation): void {
  const d = facts.digest!;
  if (exp.content.kind === 'dsse' && facts.apiVersion === '0.0.1')
    mismatch('kind (a hashedrekord 0.0.1 entry logs a message signature, and this is a DSSE envelope)');
  const want = expectedDigests(exp)[d.algorithm] ?? [];
  if (want.length === 0) mismatch(`digest algorithm (${d.algorithm}, which nothing here was hashed with)`);
  if (!want.every((w) => bytesEqual(w, d.value)))
    mismatch(exp.content.kind === 'dsse' ? 'digest of the DSSE envelope' : 'digest of the artifact');
}

function checkPayload(facts: LoggedFacts, exp: BodyExpectation): void {
  const c = exp.content;
  if (c.kind !== 'dsse') mismatch(`kind (a ${facts.kind} entry logs a DSSE envelope, and this is a message signature)`);
  if (!bytesEqual(facts.payloadHash!, sha256Bytes(c.payload))) mismatch('payload hash');
  if (facts.payloadType !== undefined && facts.payloadType !== c.payloadType) mismatch('payload type');
}

/**
 * Checks that an entry's body is about this signature: the same signature, the same certificate
 * or public key, and the same artifact digest (hashedrekord) or DSSE payload (dsse, intoto).
 * @throws VerificationError VERIFY_TLOG_BODY_MISMATCH naming the field that differs;
 *   VERIFY_TLOG_ENTRY_INVALID when the body cannot be read (see readRekorBody).
 */
export function checkBodyMatches(entry: TlogEntry, exp: BodyExpectation): void {
  const facts = readRekorBody(entry);
  const c = exp.content;
  if (facts.signatures.length > 0) {
    if (c.kind === 'dsse' && c.signatures.length !== 1)
      mismatch(`signature count (one in the entry, ${c.signatures.length} in the envelope)`);
    const sig = c.kind === 'dsse' ? c.signatures[0]!.sig : c.signature;
    if (!bytesEqual(facts.signatures[0]!, sig)) mismatch('signature');
  }
  const what = exp.signerIsCertificate ? 'certificate' : 'public key';
  if (facts.signer.isCertificate !== exp.signerIsCertificate)
    mismatch(`${what} (it names a ${facts.signer.isCertificate ? 'certificate' : 'public key'})`);
  if (!bytesEqual(facts.signer.der, exp.signerDer)) mismatch(what);
  if (facts.digest) checkDigest(facts, exp);
  else checkPayload(facts, exp);
}

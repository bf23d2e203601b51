/**
 * Sigstore bundles v0.1, v0.2 and v0.3 (both media-type spellings), read whole into
 * SigstoreBundle: the signer (key hint or certificate), the log entries, the RFC 3161 timestamps
 * and what was signed (a message signature or a DSSE envelope).
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 *
 * What each version demands is checked here, as sigstore-go's and sigstore-js's bundle readers
 * check it: v0.1 entries carry a SET, v0.2 and later an inclusion proof with its checkpoint; v0.3
 * names one certificate, not a chain. Anything else is SIGNATURE_BUNDLE_INVALID with a sentence.
 */
import { SignatureError } from '../errors.ts';
import { base64Field, isJsonObject, parseJsonObject, uintField, type JsonObject } from './json.ts';
import type { InclusionProof, SignedContent, SignerMaterial, SigstoreBundle, TlogEntry } from './types.ts';

const MEDIA_TYPES: Record<string, 1 | 2 | 3> = {
  'application/vnd.dev.sigstore.bundle+json;version=0.1': 1,
  'application/vnd.dev.sigstore.bundle+json;version=0.2': 2,
  'application/vnd.dev.sigstore.bundle+json;version=0.3': 3,
  'application/vnd.dev.sigstore.bundle.v0.3+json': 3,
};

/** Most entries, timestamps, certificates or DSSE signatures a bundle may hold. */
const MAX_LIST = 32;

function bad(why: string): SignatureError {
  return new SignatureError('SIGNATURE_BUNDLE_INVALID', `The Sigstore bundle is not valid: ${why}.`);
}

const b64 = (v: unknown, where: string, allowEmpty = false) => base64Field(v, where, bad, allowEmpty);
// protobuf's JSON form leaves out fields that hold their default: an absent number is 0.
const uint = (v: unknown, where: string) => (v === undefined ? 0 : uintField(v, where, bad));

function obj(v: unknown, where: string): JsonObject {
  if (!isJsonObject(v)) throw bad(`${where} is missing`);
  return v;
}

function list(v: unknown, where: string, min = 0): unknown[] {
  const out = v === undefined ? [] : v;
  if (!Array.isArray(out)) throw bad(`${where} is not a list`);
  if (out.length < min) throw bad(`${where} is empty`);
  if (out.length > MAX_LIST) throw bad(`${where} holds more than ${MAX_LIST} items`);
  return out;
}

function str(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw bad(`${where} is missing`);
  return v;
}

function signer(vm: JsonObject, version: number): SignerMaterial {
  if (isJsonObject(vm.publicKey))
    return { kind: 'publicKey', hint: typeof vm.publicKey.hint === 'string' ? vm.publicKey.hint : '' };
  if (isJsonObject(vm.certificate)) {
    return { kind: 'certificate', certificate: b64(vm.certificate.rawBytes, 'the certificate'), chain: [] };
  }
  if (isJsonObject(vm.x509CertificateChain)) {
    if (version >= 3) throw bad('a v0.3 bundle names one certificate, not a certificate chain');
    const certs = list(vm.x509CertificateChain.certificates, 'the certificate chain', 1).map((c, i) =>
      b64(isJsonObject(c) ? c.rawBytes : undefined, `certificate ${i + 1} of the chain`),
    );
    const [certificate, ...chain] = certs as [Uint8Array, ...Uint8Array[]];
    return { kind: 'certificate', certificate, chain };
  }
  throw bad('it names neither a public key nor a certificate');
}

function inclusionProof(v: unknown): InclusionProof {
  const p = obj(v, 'the inclusion proof');
  const checkpoint = isJsonObject(p.checkpoint) ? p.checkpoint.envelope : undefined;
  return {
    logIndex: uint(p.logIndex, "the inclusion proof's log index"),
    rootHash: b64(p.rootHash, "the inclusion proof's root hash"),
    treeSize: uint(p.treeSize, "the inclusion proof's tree size"),
    hashes: list(p.hashes, "the inclusion proof's hashes").map((h, i) => b64(h, `proof hash ${i + 1}`)),
    checkpoint: str(checkpoint, "the inclusion proof's checkpoint"),
  };
}

function tlogEntry(v: unknown, n: number, version: number): TlogEntry {
  const where = `log entry ${n}`;
  const e = obj(v, where);
  const kv = obj(e.kindVersion, `${where}'s kindVersion`);
  const out: TlogEntry = {
    logIndex: uint(e.logIndex, `${where}'s log index`),
    logId: b64(obj(e.logId, `${where}'s logId`).keyId, `${where}'s log id`),
    kindVersion: { kind: str(kv.kind, `${where}'s kind`), version: str(kv.version, `${where}'s version`) },
    integratedTime: uint(e.integratedTime, `${where}'s integrated time`),
    canonicalizedBody: b64(e.canonicalizedBody, `${where}'s body`),
  };
  if (e.inclusionPromise !== undefined) {
    const set = obj(e.inclusionPromise, `${where}'s inclusion promise`).signedEntryTimestamp;
    out.inclusionPromise = { signedEntryTimestamp: b64(set, `${where}'s signed entry timestamp`) };
  }
  // v0.1 proofs may predate checkpoints; the SET is what v0.1 rests on, so such a proof is left out.
  const proof = e.inclusionProof;
  const v01WithoutCheckpoint = version === 1 && isJsonObject(proof) && proof.checkpoint === undefined;
  if (proof !== undefined && !v01WithoutCheckpoint) out.inclusionProof = inclusionProof(proof);
  if (version === 1 && !out.inclusionPromise) throw bad(`${where} has no signed entry timestamp, which v0.1 requires`);
  if (version >= 2 && !out.inclusionProof) throw bad(`${where} has no inclusion proof, which v0.2 and later require`);
  return out;
}

function content(root: JsonObject): SignedContent {
  if (isJsonObject(root.dsseEnvelope)) {
    const env = root.dsseEnvelope;
    return {
      kind: 'dsse',
      payloadType: str(env.payloadType, "the DSSE envelope's payloadType"),
      payload: b64(env.payload, "the DSSE envelope's payload", true),
      signatures: list(env.signatures, "the DSSE envelope's signatures", 1).map((s, i) => {
        const sig = obj(s, `DSSE signature ${i + 1}`);
        return { sig: b64(sig.sig, `DSSE signature ${i + 1}`), keyid: typeof sig.keyid === 'string' ? sig.keyid : '' };
      }),
    };
  }
  if (isJsonObject(root.messageSignature)) {
    const ms = root.messageSignature;
    const out: SignedContent = { kind: 'messageSignature', signature: b64(ms.signature, 'the message signature') };
    if (ms.messageDigest !== undefined) {
      const d = obj(ms.messageDigest, 'the message digest');
      out.digest = {
        algorithm: str(d.algorithm, "the message digest's algorithm"),
        digest: b64(d.digest, 'the message digest'),
      };
    }
    return out;
  }
  throw bad('it holds neither a DSSE envelope nor a message signature');
}

/**
 * Reads a Sigstore bundle (JSON bytes or text).
 * @throws SignatureError SIGNATURE_BUNDLE_INVALID, with what is wrong.
 */
export function parseSigstoreBundle(json: Uint8Array | string): SigstoreBundle {
  const root = parseJsonObject(json, bad);
  const mediaType = root.mediaType;
  const version = typeof mediaType === 'string' ? MEDIA_TYPES[mediaType] : undefined;
  if (version === undefined)
    throw bad(`its media type ${JSON.stringify(mediaType)} is not a bundle version this page reads`);
  const vm = obj(root.verificationMaterial, 'the verification material');
  const tsd = vm.timestampVerificationData === undefined ? {} : obj(vm.timestampVerificationData, 'the timestamp data');
  return {
    mediaType: mediaType as string,
    version,
    signer: signer(vm, version),
    tlogEntries: list(vm.tlogEntries, 'the log entries').map((e, i) => tlogEntry(e, i + 1, version)),
    rfc3161Timestamps: list(tsd.rfc3161Timestamps, 'the timestamps').map((t, i) =>
      b64(isJsonObject(t) ? t.signedTimestamp : undefined, `timestamp ${i + 1}`),
    ),
    content: content(root),
  };
}

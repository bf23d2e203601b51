/**
 * The transparency-log parts of the Sigstore conformance cases (../shared/conformance, never
 * copied in), decoded here from the bundles' JSON without the bundle parser: a case's log entry
 * (int64 strings to numbers, base64 to bytes), what it signed, who signed it, the artifact's
 * SHA-256 and the trusted root it is verified against. Node only.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { conformanceCases } from '../../../conformance.ts';
import { decodePem } from '../../../../shared/encoding/pem.ts';
import { conformanceRoot } from './real-certificates.ts';
import type { InclusionProof, SignedContent, TlogEntry, TrustedRoot } from '../../../../shared/sigstore/types.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- the bundles' JSON, read field by field */

const bytes = (b64: string | undefined): Uint8Array => new Uint8Array(Buffer.from(b64 ?? '', 'base64'));

function caseOf(name: string) {
  const c = conformanceCases().find((x) => x.name === name);
  if (!c) throw new Error(`no conformance case ${name}`);
  return c;
}

/** The bundle's JSON. */
export function bundleJson(name: string): any {
  return JSON.parse(readFileSync(caseOf(name).bundlePath, 'utf8'));
}

function proofOf(p: any): InclusionProof {
  return {
    logIndex: Number(p.logIndex),
    rootHash: bytes(p.rootHash),
    treeSize: Number(p.treeSize),
    hashes: (p.hashes ?? []).map(bytes),
    checkpoint: p.checkpoint?.envelope ?? '',
  };
}

/** A log entry in protobuf-specs' JSON form, decoded. */
export function tlogEntryOf(e: any): TlogEntry {
  const out: TlogEntry = {
    logIndex: Number(e.logIndex),
    logId: bytes(e.logId?.keyId),
    kindVersion: { kind: e.kindVersion?.kind ?? '', version: e.kindVersion?.version ?? '' },
    integratedTime: Number(e.integratedTime ?? 0),
    canonicalizedBody: bytes(e.canonicalizedBody),
  };
  if (e.inclusionPromise)
    out.inclusionPromise = { signedEntryTimestamp: bytes(e.inclusionPromise.signedEntryTimestamp) };
  if (e.inclusionProof) out.inclusionProof = proofOf(e.inclusionProof);
  return out;
}

/** The case's first log entry. */
export function caseEntry(name: string): TlogEntry {
  return tlogEntryOf(bundleJson(name).verificationMaterial.tlogEntries[0]);
}

/** What the case's bundle signed: its message signature or DSSE envelope. */
export function caseContent(name: string): SignedContent {
  const b = bundleJson(name);
  if (b.dsseEnvelope)
    return {
      kind: 'dsse',
      payloadType: b.dsseEnvelope.payloadType,
      payload: bytes(b.dsseEnvelope.payload),
      signatures: b.dsseEnvelope.signatures.map((s: any) => ({ sig: bytes(s.sig), keyid: s.keyid ?? '' })),
    };
  const m = b.messageSignature;
  return {
    kind: 'messageSignature',
    signature: bytes(m.signature),
    ...(m.messageDigest
      ? { digest: { algorithm: m.messageDigest.algorithm, digest: bytes(m.messageDigest.digest) } }
      : {}),
  };
}

/** The signer's DER: the leaf certificate, or the case's key.pub as SPKI. */
export function caseSigner(name: string): { signerDer: Uint8Array; signerIsCertificate: boolean } {
  const c = caseOf(name);
  if (c.keyPath) return { signerDer: decodePem(readFileSync(c.keyPath, 'utf8')).bytes, signerIsCertificate: false };
  const vm = bundleJson(name).verificationMaterial;
  const raw = vm.certificate?.rawBytes ?? vm.x509CertificateChain.certificates[0].rawBytes;
  return { signerDer: bytes(raw), signerIsCertificate: true };
}

/** SHA-256 of the case's artifact (its own, or the suite's a.txt). */
export function caseArtifactDigest(name: string): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(readFileSync(caseOf(name).artifactPath))
      .digest(),
  );
}

/** The case's own trusted root, else public good's. */
export function caseRoot(name: string): TrustedRoot {
  return conformanceRoot(name);
}

/**
 * Verifies a Sigstore bundle for an artifact (a file, or only its SHA-256) against a trusted root
 * and a key or an identity policy, the way sigstore-go's `verify.SignedEntityVerifier` and cosign
 * 3's `verify-blob` do:
 *
 *   1. the signer: a key the viewer gave, or a certificate that chains to a certificate authority
 *      of the root (or a private PKI) at every verified time, with an SCT from a CT log of the root
 *      and an identity the policy accepts;
 *   2. the transparency-log entries: each proven (SET, inclusion proof and signed checkpoint), by a
 *      log of the root that was trusted then, and each entry's body equal to this signature;
 *   3. the RFC 3161 timestamps: each over this signature, by a timestamp authority of the root;
 *   4. the signature over the artifact (hashedrekord) or over the DSSE envelope, whose in-toto
 *      statement names the artifact among its subjects.
 *
 * A short-lived certificate is judged at verified times only (log entries' integrated times and
 * timestamps), never at the clock's — unless the log is ignored and no timestamp is given, as
 * cosign's `--insecure-ignore-tlog` does.
 * https://github.com/sigstore/sigstore-go/blob/main/pkg/verify/signed_entity.go
 */
import { VerificationError } from '../errors.ts';
import { toHex } from '../encoding/base64.ts';
import { pae } from '../encoding/pae.ts';
import { digest, verifySpkiSignature, type HashName } from '../crypto/verify-spki.ts';
import { verifyPrehashed } from '../crypto/prehashed.ts';
import { parseSpki } from '../crypto/pkcs.ts';
import type { SigstoreBundle, TrustedRoot, VerifiedTime } from './types.ts';
import { verifySigner, type SignerResult } from './verify-signer.ts';
import { verifyTlogEntries, type LogResult } from './verify-tlog.ts';
import { verifyRfc3161Timestamp } from './timestamp.ts';

export { TLOG_RULES, type TlogRule, type VerifyBundleOptions } from './verify-options.ts';
import type { TlogRule, VerifyBundleOptions } from './verify-options.ts';

export interface TimestampResult {
  authority: string;
  time: string;
}

export interface BundleVerification {
  content: 'messageSignature' | 'dsse';
  /** SHA-256 of the artifact, hex. */
  artifact: string;
  signer: SignerResult;
  tlog: LogResult[];
  tlogRule: TlogRule;
  timestamps: TimestampResult[];
  verifiedTimes: { time: string; source: VerifiedTime['source']; by?: string }[];
  warnings: string[];
}

const HASHES: Record<string, HashName> = { SHA2_256: 'SHA-256', SHA2_384: 'SHA-384', SHA2_512: 'SHA-512' };

function fail(code: 'VERIFY_BAD_SIGNATURE' | 'VERIFY_DIGEST_MISMATCH', message: string): never {
  throw new VerificationError(code, message);
}

/** The bytes a timestamp and a log entry are about: the signature itself. */
function signatureBytes(bundle: SigstoreBundle): Uint8Array {
  return bundle.content.kind === 'dsse' ? bundle.content.signatures[0]!.sig : bundle.content.signature;
}

async function artifactDigest(
  bundle: SigstoreBundle,
  artifact: VerifyBundleOptions['artifact'],
): Promise<{ hash: HashName; value: Uint8Array }> {
  if (bundle.content.kind !== 'messageSignature') return { hash: 'SHA-256', value: artifact.sha256 };
  const named = bundle.content.digest;
  const hash = named ? HASHES[named.algorithm] : 'SHA-256';
  if (!hash)
    fail('VERIFY_BAD_SIGNATURE', `The bundle's digest algorithm ${named?.algorithm} is not one Sigstore uses.`);
  let value = artifact.sha256;
  if (hash !== 'SHA-256') {
    if (!artifact.bytes)
      fail(
        'VERIFY_BAD_SIGNATURE',
        `This signature is over ${hash} of the file: give the file itself, not its SHA-256.`,
      );
    value = await digest(hash, artifact.bytes);
  }
  if (named && toHex(named.digest) !== toHex(value))
    fail('VERIFY_DIGEST_MISMATCH', "The bundle's message digest is not the digest of this file.");
  return { hash, value };
}

function statementNamesArtifact(payload: Uint8Array, sha256: Uint8Array): boolean {
  let statement: unknown;
  try {
    statement = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return false;
  }
  const subjects = (statement as { subject?: unknown })?.subject;
  if (!Array.isArray(subjects)) return false;
  const want = toHex(sha256);
  return subjects.some((s) => (s as { digest?: { sha256?: unknown } })?.digest?.sha256 === want);
}

async function verifyDsse(
  bundle: SigstoreBundle & { content: { kind: 'dsse' } },
  spki: Uint8Array,
  sha256: Uint8Array,
) {
  const { content } = bundle;
  if (content.signatures.length !== 1)
    fail(
      'VERIFY_BAD_SIGNATURE',
      `The DSSE envelope holds ${content.signatures.length} signatures; Sigstore expects one.`,
    );
  const data = pae(content.payloadType, content.payload);
  if (!(await verifyWithKeyHash(spki, data, content.signatures[0]!.sig)))
    fail('VERIFY_BAD_SIGNATURE', "The DSSE envelope's signature does not verify with the signer's key.");
  if (!statementNamesArtifact(content.payload, sha256))
    fail(
      'VERIFY_DIGEST_MISMATCH',
      "The signed in-toto statement does not name this file's SHA-256 among its subjects.",
    );
}

/** The hash a key signs with by default (Sigstore's key details), then SHA-256 as cosign uses for every key. */
async function verifyWithKeyHash(spki: Uint8Array, data: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const { algorithm } = parseSpki(spki);
  const first: HashName =
    algorithm.kind === 'ecdsa' && algorithm.curve === 'P-384'
      ? 'SHA-384'
      : algorithm.kind === 'ecdsa' && algorithm.curve === 'P-521'
        ? 'SHA-512'
        : 'SHA-256';
  if (await verifySpkiSignature(spki, first, data, sig)) return true;
  return first !== 'SHA-256' && verifySpkiSignature(spki, 'SHA-256', data, sig);
}

async function verifyMessage(bundle: SigstoreBundle, spki: Uint8Array, opts: VerifyBundleOptions): Promise<void> {
  if (bundle.content.kind !== 'messageSignature') return;
  const { hash, value } = await artifactDigest(bundle, opts.artifact);
  const sig = bundle.content.signature;
  const { algorithm } = parseSpki(spki);
  let ok: boolean;
  if (algorithm.kind === 'ed25519') {
    if (!opts.artifact.bytes)
      fail('VERIFY_BAD_SIGNATURE', 'An Ed25519 signature covers the file itself, not its digest: give the file.');
    ok = await verifySpkiSignature(spki, hash, opts.artifact.bytes, sig);
  } else {
    ok = verifyPrehashed(spki, hash, value, sig);
  }
  if (!ok) fail('VERIFY_BAD_SIGNATURE', "The signature does not verify for this file with the signer's key.");
}

async function verifyTimestamps(bundle: SigstoreBundle, root: TrustedRoot): Promise<TimestampResult[]> {
  const out: TimestampResult[] = [];
  for (const token of bundle.rfc3161Timestamps) {
    const { time, authority } = await verifyRfc3161Timestamp(token, signatureBytes(bundle), root.timestampAuthorities);
    out.push({ authority: authority.name, time: time.toISOString() });
  }
  return out;
}

/**
 * Verifies a parsed bundle for an artifact.
 * @returns what was proven, for people and for result files.
 * @throws VerificationError with the first check that fails (see the header for the order).
 */
export async function verifyBundle(bundle: SigstoreBundle, opts: VerifyBundleOptions): Promise<BundleVerification> {
  const now = opts.now ?? new Date();
  const byCertificate = bundle.signer.kind === 'certificate';
  const tlogRule = opts.tlog ?? (byCertificate ? 'require' : 'check');
  const warnings: string[] = [];
  const timestamps = await verifyTimestamps(bundle, opts.root);
  const stampTimes = timestamps.map((t) => new Date(t.time));
  const tlog = await verifyTlogEntries(bundle, opts, tlogRule, now, warnings, stampTimes);
  const times: VerifiedTime[] = [
    ...tlog
      .filter((l) => l.integratedTime)
      .map((l) => ({ time: new Date(l.integratedTime!), source: 'tlog' as const, by: l.log })),
    ...timestamps.map((t) => ({ time: new Date(t.time), source: 'timestamp' as const, by: t.authority })),
  ];
  const signer = await verifySigner(bundle, opts, times, tlogRule, now, warnings);
  if (bundle.content.kind === 'dsse')
    await verifyDsse(bundle as SigstoreBundle & { content: { kind: 'dsse' } }, signer.spki, opts.artifact.sha256);
  else await verifyMessage(bundle, signer.spki, opts);
  const verifiedTimes = (
    times.length ? times : signer.kind === 'certificate' ? [{ time: now, source: 'now' as const }] : []
  ).map((t) => ({ time: t.time.toISOString(), source: t.source, ...(t.by ? { by: t.by } : {}) }));
  return {
    content: bundle.content.kind,
    artifact: toHex(opts.artifact.sha256),
    signer: signer.result,
    tlog,
    tlogRule,
    timestamps,
    verifiedTimes,
    warnings,
  };
}

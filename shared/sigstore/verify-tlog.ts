/**
 * The transparency-log part of a bundle's verification: every entry proven by a log of the root
 * (tlog.ts) and describing this very signature (rekor-body.ts), under cosign's rule for the log:
 * `require` an entry, `check` entries when present, or `ignore` the log.
 */
import { VerificationError } from '../errors.ts';
import type { SigstoreBundle } from './types.ts';
import { verifyTlogEntry } from './tlog.ts';
import { validAt } from './trusted-root.ts';
import { checkBodyMatches } from './rekor-body.ts';
import type { TlogRule, VerifyBundleOptions } from './verify-options.ts';

/** One proven log entry, as people and result files see it. */
export interface LogResult {
  /** The log's base URL, from the trusted root. */
  log: string;
  logIndex: number;
  kind: string;
  /** When the log says it took the entry (Rekor v1, proven by its SET); Rekor v2 gives no time. */
  integratedTime?: string;
  /** How the entry was proven: "signed entry timestamp", "inclusion proof and checkpoint", or both. */
  proof: string;
}

/** The DER the log entry must name: the certificate, or the key the viewer gave. */
export function signerDer(bundle: SigstoreBundle, key: Uint8Array | undefined): Uint8Array {
  if (bundle.signer.kind === 'certificate') {
    if (key)
      throw new VerificationError(
        'VERIFY_WRONG_KEY',
        'This bundle is signed with a certificate, not a key: check it with a certificate identity and issuer instead of a public key.',
      );
    return bundle.signer.certificate;
  }
  if (!key)
    throw new VerificationError(
      'VERIFY_POLICY_INVALID',
      'This bundle is signed with a key: give the public key to check it with.',
    );
  return key;
}

/**
 * @throws VerificationError VERIFY_TLOG_MISSING when the rule requires an entry and there is none;
 *   the codes of tlog.ts and rekor-body.ts when an entry does not check.
 */
export async function verifyTlogEntries(
  bundle: SigstoreBundle,
  opts: VerifyBundleOptions,
  rule: TlogRule,
  now: Date,
  warnings: string[],
  stampTimes: Date[] = [],
): Promise<LogResult[]> {
  const der = signerDer(bundle, opts.key);
  if (rule === 'ignore') return [];
  if (bundle.tlogEntries.length === 0) {
    if (rule === 'require')
      throw new VerificationError(
        'VERIFY_TLOG_MISSING',
        'The signature has no transparency-log entry, and the policy requires one (cosign does by default).',
      );
    warnings.push('The signature has no transparency-log entry.');
    return [];
  }
  const out: LogResult[] = [];
  for (const entry of bundle.tlogEntries) {
    const r = await verifyTlogEntry(entry, opts.root.tlogs, now);
    // A Rekor v2 entry gives no time: its log must have been trusted at a timestamp's time.
    if (!r.integratedTime && stampTimes.length && !stampTimes.some((t) => validAt(r.log.validFor, t)))
      throw new VerificationError(
        'VERIFY_TLOG_UNTRUSTED',
        `The log ${r.log.baseUrl} was not trusted at the signature's timestamp (its key's validity in the trusted root).`,
      );
    checkBodyMatches(entry, {
      content: bundle.content,
      signerDer: der,
      signerIsCertificate: bundle.signer.kind === 'certificate',
      artifactDigest: opts.artifact.sha256,
    });
    const proofs = [
      r.proven.set && 'signed entry timestamp',
      r.proven.inclusionProof && 'inclusion proof',
      r.proven.checkpoint && 'signed checkpoint',
    ];
    out.push({
      log: r.log.baseUrl,
      logIndex: entry.logIndex,
      kind: `${entry.kindVersion.kind} ${entry.kindVersion.version}`,
      ...(r.integratedTime ? { integratedTime: r.integratedTime.toISOString() } : {}),
      proof: proofs.filter(Boolean).join(', '),
    });
  }
  return out;
}

/**
 * Proving a transparency-log entry with the trusted root: the log is one of the root's (by log
 * id); a Rekor v1 entry's signed entry timestamp (SET) verifies with the log's key, its integrated
 * time is not in the future and falls in the key's validity; an inclusion proof, when present
 * (required by v0.2+ bundles and for Rekor v2, which gives no SET and no time), leads from the
 * entry to the root hash of a checkpoint the log signed.
 * (sigstore-go pkg/tlog/entry.go and pkg/verify/tlog.go)
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, toBase64, toHex, utf8 } from '../encoding/base64.ts';
import { verifySpkiSignature } from '../crypto/verify-spki.ts';
import { verifyInclusion } from './merkle.ts';
import { parseCheckpoint, verifyCheckpoint } from './checkpoint.ts';
import { validAt } from './trusted-root.ts';
import type { TlogEntry, TrustedLog } from './types.ts';

export interface TlogResult {
  log: TrustedLog;
  /** Rekor v1's integrated time, proven by the SET; absent for Rekor v2. */
  integratedTime?: Date;
  proven: { set: boolean; inclusionProof: boolean; checkpoint: boolean };
}

/** How far in the future an integrated time may be (clocks differ a little). */
const SKEW_MS = 5 * 60 * 1000;

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_TLOG_ENTRY_INVALID', `The transparency-log entry is not valid: ${why}.`);
}

/** The SET's payload: canonical JSON with sorted keys and no spaces, as Rekor signs it. */
function setPayload(e: TlogEntry): Uint8Array {
  return utf8(
    `{"body":${JSON.stringify(toBase64(e.canonicalizedBody))},"integratedTime":${e.integratedTime},"logID":${JSON.stringify(toHex(e.logId))},"logIndex":${e.logIndex}}`,
  );
}

async function verifySet(e: TlogEntry, log: TrustedLog, now: Date): Promise<Date> {
  const time = new Date(e.integratedTime * 1000);
  if (time.getTime() > now.getTime() + SKEW_MS)
    throw invalid(`its integrated time ${time.toISOString()} is in the future`);
  if (!validAt(log.validFor, time))
    throw new VerificationError(
      'VERIFY_TLOG_UNTRUSTED',
      `The log ${log.baseUrl} was not trusted at the entry's time ${time.toISOString()} (its key's validity in the trusted root).`,
    );
  const ok = await verifySpkiSignature(
    log.spki,
    'SHA-256',
    setPayload(e),
    e.inclusionPromise!.signedEntryTimestamp,
  ).catch(() => false);
  if (!ok)
    throw new VerificationError(
      'VERIFY_SET_INVALID',
      `The signed entry timestamp does not verify with the key of ${log.baseUrl}.`,
    );
  return time;
}

async function verifyProof(e: TlogEntry, log: TrustedLog): Promise<void> {
  const p = e.inclusionProof!;
  const cp = parseCheckpoint(p.checkpoint);
  await verifyCheckpoint(cp, log);
  if (cp.size !== p.treeSize || !bytesEqual(cp.rootHash, p.rootHash))
    throw new VerificationError(
      'VERIFY_CHECKPOINT_INVALID',
      "The log's checkpoint is not valid: its tree size or root hash is not the inclusion proof's.",
    );
  verifyInclusion(p.logIndex, p.treeSize, e.canonicalizedBody, p.hashes, p.rootHash);
}

/**
 * Proves one entry with the root's logs.
 * @throws VerificationError VERIFY_TLOG_UNTRUSTED, VERIFY_TLOG_ENTRY_INVALID, VERIFY_SET_INVALID,
 *   VERIFY_CHECKPOINT_INVALID, VERIFY_INCLUSION_PROOF_INVALID.
 */
export async function verifyTlogEntry(entry: TlogEntry, logs: TrustedLog[], now: Date): Promise<TlogResult> {
  const log = logs.find((l) => bytesEqual(l.logId, entry.logId));
  if (!log)
    throw new VerificationError(
      'VERIFY_TLOG_UNTRUSTED',
      `The entry comes from a log the trusted root does not name (log id ${toHex(entry.logId).slice(0, 16)}…).`,
    );
  const v1 = entry.integratedTime > 0;
  if (!v1 && !entry.inclusionProof)
    throw invalid('it has neither an integrated time with a SET nor an inclusion proof');
  if (v1 && !entry.inclusionPromise && !entry.inclusionProof) throw invalid('it carries no proof');
  const out: TlogResult = { log, proven: { set: false, inclusionProof: false, checkpoint: false } };
  if (entry.inclusionPromise && v1) {
    out.integratedTime = await verifySet(entry, log, now);
    out.proven.set = true;
  }
  if (entry.inclusionProof) {
    await verifyProof(entry, log);
    out.proven.inclusionProof = true;
    out.proven.checkpoint = true;
  }
  return out;
}

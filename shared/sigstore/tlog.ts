/**
 * Proving a transparency-log entry with the trusted root (sigstore-go pkg/tlog/entry.go and
 * pkg/verify/tlog.go, sigstore-js packages/verify/src/tlog/):
 * - the log is one of the root's, by log id;
 * - Rekor v1 (an integrated time): its signed entry timestamp (SET), when present, verifies with
 *   the log's key over the canonical JSON of body, integrated time, log id and index; that time is
 *   not in the future and falls in the log key's validity;
 * - Rekor v2 (no integrated time, no SET): an inclusion proof is required;
 * - an inclusion proof, when present, leads from the entry's leaf hash to the root hash of a
 *   checkpoint the log signed, of the proof's tree size.
 * Whether the body is about this signature is rekor-body.ts's part.
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_rekor.proto
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, toBase64, toHex, utf8 } from '../encoding/base64.ts';
import { leafHash, verifyInclusion } from './merkle.ts';
import { verifyProofCheckpoint } from './checkpoint.ts';
import { verifyLogSignature } from './log-key.ts';
import { validAt } from './trusted-root.ts';
import type { TlogEntry, TrustedLog } from './types.ts';

export interface TlogResult {
  log: TrustedLog;
  /** Rekor v1's integrated time, proven by the SET; absent for Rekor v2 and without a SET. */
  integratedTime?: Date;
  proven: { set: boolean; inclusionProof: boolean; checkpoint: boolean };
}

/** How far in the future an integrated time may be (clocks differ a little). */
export const INTEGRATED_TIME_SKEW_MS = 5 * 60 * 1000;

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_TLOG_ENTRY_INVALID', `The transparency-log entry is not valid: ${why}.`);
}

function checkNumber(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`its ${what} ${String(n)} is not a non-negative integer`);
}

/** The numbers an entry and its proof carry are integers ≥ 0, and the proof's index is inside its tree. */
function checkNumbers(e: TlogEntry): void {
  checkNumber(e.logIndex, 'log index');
  checkNumber(e.integratedTime, 'integrated time');
  const p = e.inclusionProof;
  if (!p) return;
  checkNumber(p.logIndex, "inclusion proof's log index");
  checkNumber(p.treeSize, "inclusion proof's tree size");
  if (e.integratedTime === 0 && p.logIndex !== e.logIndex)
    throw invalid(`its log index ${e.logIndex} is not its inclusion proof's ${p.logIndex}`);
}

/**
 * The SET's payload: the JSON Rekor v1 signs, keys sorted and no spaces (RFC 8785 for these
 * fields: the base64 body, two integers and the hex log id need no escaping).
 */
export function setPayload(e: TlogEntry): Uint8Array {
  return utf8(
    `{"body":"${toBase64(e.canonicalizedBody)}","integratedTime":${e.integratedTime},"logID":"${toHex(e.logId)}","logIndex":${e.logIndex}}`,
  );
}

/** @throws VerificationError VERIFY_TLOG_ENTRY_INVALID, VERIFY_TLOG_UNTRUSTED, VERIFY_SET_INVALID */
async function verifySet(e: TlogEntry, log: TrustedLog, now: Date): Promise<Date> {
  const time = new Date(e.integratedTime * 1000);
  if (time.getTime() > now.getTime() + INTEGRATED_TIME_SKEW_MS)
    throw invalid(`its integrated time ${time.toISOString()} is in the future`);
  if (!validAt(log.validFor, time))
    throw new VerificationError(
      'VERIFY_TLOG_UNTRUSTED',
      `The log ${log.baseUrl} was not trusted at the entry's integrated time ${time.toISOString()} (its key's validity in the trusted root).`,
    );
  // Rekor v1 signs SHA-256 of the payload, whatever its key (sigstore-go VerifySET).
  if (!(await verifyLogSignature(log, setPayload(e), e.inclusionPromise!.signedEntryTimestamp, 'SHA-256')))
    throw new VerificationError(
      'VERIFY_SET_INVALID',
      `The signed entry timestamp does not verify with the key of ${log.baseUrl}.`,
    );
  return time;
}

/**
 * Proves one entry with the root's logs. Rekor v2 gives no time: the caller checks the log's
 * validity at a time it trusts (a timestamp's).
 * @throws VerificationError VERIFY_TLOG_UNTRUSTED (no log of the root has its id, or the log was
 *   not valid at its integrated time), VERIFY_TLOG_ENTRY_INVALID (a negative or unsafe number, an
 *   integrated time in the future, no proof, a Rekor v2 entry without an inclusion proof or with
 *   a SET), VERIFY_SET_INVALID, VERIFY_CHECKPOINT_INVALID, VERIFY_INCLUSION_PROOF_INVALID.
 */
export async function verifyTlogEntry(entry: TlogEntry, logs: TrustedLog[], now: Date): Promise<TlogResult> {
  checkNumbers(entry);
  const log = logs.find((l) => bytesEqual(l.logId, entry.logId));
  if (!log)
    throw new VerificationError(
      'VERIFY_TLOG_UNTRUSTED',
      `The entry comes from a log the trusted root does not name (log id ${toHex(entry.logId).slice(0, 16)}…).`,
    );
  const v1 = entry.integratedTime > 0;
  if (!entry.inclusionPromise && !entry.inclusionProof)
    throw invalid(
      `it carries no proof (neither a signed entry timestamp nor an inclusion proof${v1 ? '' : ', which Rekor v2 entries need'})`,
    );
  if (!v1 && entry.inclusionPromise) throw invalid('it carries a signed entry timestamp but no integrated time');
  const out: TlogResult = { log, proven: { set: false, inclusionProof: false, checkpoint: false } };
  if (entry.inclusionPromise) {
    out.integratedTime = await verifySet(entry, log, now);
    out.proven.set = true;
  }
  if (entry.inclusionProof) {
    // The proof first (as sigstore-go does for Rekor v1): a proof for another entry says so.
    verifyInclusion(entry.inclusionProof, leafHash(entry.canonicalizedBody));
    out.proven.inclusionProof = true;
    await verifyProofCheckpoint(entry.inclusionProof, log);
    out.proven.checkpoint = true;
  }
  return out;
}

/**
 * Checkpoints: a log's signed tree head as a signed note
 * (https://github.com/transparency-dev/formats/blob/main/log/README.md, golang.org/x/mod/sumdb/note).
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n[<extension lines>\n]\n— <name> <base64(key hint ‖ signature)>\n…
 *
 * The log's signature is the one whose 4-byte key hint is the first 4 bytes of the log's id in the
 * trusted root (Rekor v1: SHA-256 of its key; Rekor v2: its note key id) and whose name is the
 * origin (Rekor v1 writes "<host> - <tree id>" as origin and signs as "<host>"). Other signatures
 * (witnesses' cosignatures) may come before or after it and are not needed.
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, fromBase64, utf8 } from '../encoding/base64.ts';
import { verifySpkiSignature } from '../crypto/verify-spki.ts';
import type { TrustedLog } from './types.ts';

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** The signed text: every line before the blank line, each with its newline. */
  text: string;
  signatures: { name: string; hint: Uint8Array; signature: Uint8Array }[];
}

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_CHECKPOINT_INVALID', `The log's checkpoint is not valid: ${why}.`);
}

/** Reads a checkpoint. @throws VerificationError VERIFY_CHECKPOINT_INVALID */
export function parseCheckpoint(note: string): Checkpoint {
  if (note.length > 64 * 1024) throw bad('it is too long');
  const split = note.indexOf('\n\n');
  if (split < 0) throw bad('it has no signature block');
  const text = note.slice(0, split + 1);
  const [origin, sizeLine, rootLine] = text.split('\n');
  if (!origin) throw bad('it names no origin');
  if (!sizeLine || !/^\d{1,16}$/.test(sizeLine)) throw bad('it gives no tree size');
  const rootHash = rootLine ? fromBase64(rootLine) : null;
  if (!rootHash || rootHash.length !== 32) throw bad('it gives no root hash');
  const signatures: Checkpoint['signatures'] = [];
  for (const line of note.slice(split + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    const raw = m ? fromBase64(m[2]!) : null;
    if (!m || !raw || raw.length < 5) throw bad(`a signature line is malformed: ${JSON.stringify(line.slice(0, 80))}`);
    signatures.push({ name: m[1]!, hint: raw.subarray(0, 4), signature: raw.subarray(4) });
  }
  if (signatures.length === 0) throw bad('it carries no signature');
  return { origin, size: Number(sizeLine), rootHash, text, signatures };
}

/**
 * Checks that the log signed the checkpoint.
 * @throws VerificationError VERIFY_CHECKPOINT_INVALID when no signature is the log's, or it does not verify.
 */
export async function verifyCheckpoint(cp: Checkpoint, log: TrustedLog): Promise<void> {
  const host = cp.origin.split(' - ')[0]!;
  const candidates = cp.signatures.filter((s) => s.name === cp.origin || s.name === host);
  if (candidates.length === 0) throw bad(`no signature is named after its origin ${JSON.stringify(cp.origin)}`);
  const mine = candidates.filter((s) => bytesEqual(s.hint, log.logId.subarray(0, 4)));
  if (mine.length === 0) throw bad("no signature carries the log's key hint");
  for (const s of mine) {
    try {
      if (await verifySpkiSignature(log.spki, 'SHA-256', utf8(cp.text), s.signature)) return;
    } catch {
      // a key this runtime cannot use verifies nothing
    }
  }
  throw bad("the log's signature does not verify");
}

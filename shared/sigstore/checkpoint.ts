/**
 * Checkpoints: a log's signed tree head as a signed note.
 * https://github.com/transparency-dev/formats/blob/main/log/README.md (checkpoint body),
 * https://github.com/C2SP/C2SP/blob/main/signed-note.md and golang.org/x/mod/sumdb/note (envelope).
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n…]\n— <name> <base64(key hint ‖ signature)>\n…
 *
 * The log's signature is the one named after the log whose 4-byte key hint is its key's
 * (log-key.ts). Rekor v1 writes "<host> - <tree id>" as origin and signs as "<host>"; Rekor v2
 * signs with its origin, which is its base URL's host name. Signatures by other names or keys
 * (witnesses' cosignatures, a second key of the log) may stand anywhere and are not needed; a
 * signature that claims the log's name and key and does not verify is refused, as sumdb's Open does.
 */
import { VerificationError } from '../errors.ts';
import { bytesEqual, fromBase64, toHex, utf8 } from '../encoding/base64.ts';
import { checkpointKeyHint, verifyLogSignature } from './log-key.ts';
import type { InclusionProof, TrustedLog } from './types.ts';

export interface NoteSignature {
  name: string;
  keyHint: Uint8Array;
  signature: Uint8Array;
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** Lines after the root hash (Rekor v1's "Timestamp: …"), as written. */
  extensions: string[];
  /** The signed text: every line before the blank line, each with its newline. */
  body: string;
  signatures: NoteSignature[];
}

/** Longest note read; a checkpoint with a hundred cosignatures is a few KiB. */
const MAX_NOTE_CHARS = 256 * 1024;
/** sumdb's note.Open refuses more signatures than this. */
const MAX_SIGNATURES = 100;
const REKOR_V1_ORIGIN = /^(.+) - \d+$/;

function bad(why: string): VerificationError {
  return new VerificationError('VERIFY_CHECKPOINT_INVALID', `The log's checkpoint is not valid: ${why}.`);
}

const quote = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
const isSize = (line: string | undefined): boolean => line !== undefined && /^\d{1,16}$/.test(line);
const isRootHash = (line: string | undefined): boolean => line !== undefined && fromBase64(line)?.length === 32;

/** The three lines of a checkpoint body, and what follows them. */
function parseBody(body: string): Omit<Checkpoint, 'body' | 'signatures'> {
  const [origin, sizeLine, hashLine, ...extensions] = body.slice(0, -1).split('\n');
  if (!origin || (isSize(origin) && isRootHash(sizeLine)))
    throw bad("it has no origin line (the log's name comes first, then the tree size and root hash)");
  if (sizeLine === undefined || isRootHash(sizeLine)) throw bad('it has no tree size line');
  const size = isSize(sizeLine) ? Number(sizeLine) : NaN;
  if (!Number.isSafeInteger(size)) throw bad(`its tree size ${quote(sizeLine)} is not a decimal number`);
  if (hashLine === undefined || hashLine === '') throw bad('it has no root hash line');
  const rootHash = fromBase64(hashLine);
  if (!rootHash || rootHash.length !== 32) throw bad(`its root hash ${quote(hashLine)} is not 32 bytes of base64`);
  if (extensions.some((l) => l === '')) throw bad('it has an empty line before its signatures');
  return { origin, size, rootHash, extensions };
}

function parseSignatureLine(line: string): NoteSignature {
  const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/.exec(line);
  const raw = m ? fromBase64(m[2]!) : null;
  if (!m || !raw || raw.length < 5) throw bad(`a signature line is malformed: ${quote(line)}`);
  return { name: m[1]!, keyHint: raw.slice(0, 4), signature: raw.slice(4) };
}

/**
 * Reads a checkpoint (signatures are not checked here).
 * @throws VerificationError VERIFY_CHECKPOINT_INVALID naming what is missing or malformed: the
 *   origin, the tree size, the root hash, the blank line, a signature line, or any signature.
 */
export function parseCheckpoint(note: string): Checkpoint {
  if (note.length > MAX_NOTE_CHARS) throw bad('it is too long');
  // A note is text: no ASCII control character but the newline (sumdb's note.Open).
  for (let i = 0; i < note.length; i++) {
    const c = note.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw bad('it holds a control character');
  }
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('it has no blank line before its signatures');
  const body = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block === '') throw bad('it carries no signature, so none is by the log');
  if (!block.endsWith('\n')) throw bad('its last signature line does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw bad(`it carries more than ${MAX_SIGNATURES} signatures`);
  return { ...parseBody(body), body, signatures: lines.map(parseSignatureLine) };
}

/** The name the log signs with: a Rekor v1 origin's host, else the origin itself. */
function signerName(cp: Checkpoint, log: TrustedLog): { name: string; rekorV1: boolean } {
  const v1 = REKOR_V1_ORIGIN.exec(cp.origin);
  if (v1) return { name: v1[1]!, rekorV1: true };
  let host = '';
  try {
    host = new URL(log.baseUrl).hostname;
  } catch {
    // no host: refused below
  }
  if (!host) throw bad(`the trusted root gives the log no base URL its origin ${quote(cp.origin)} could name`);
  if (cp.origin !== host) throw bad(`its origin ${quote(cp.origin)} is not the log's name ${quote(host)}`);
  return { name: host, rekorV1: false };
}

/**
 * Checks that the log signed the checkpoint: a signature names the log and carries its key hint,
 * and every such signature verifies with the log's key.
 * @throws VerificationError VERIFY_CHECKPOINT_INVALID when the origin is not the log's, no
 *   signature is by the log's name, none carries the log key's hint, or the log's signature does
 *   not verify.
 */
export async function verifyCheckpoint(cp: Checkpoint, log: TrustedLog): Promise<void> {
  const { name, rekorV1 } = signerName(cp, log);
  const byName = cp.signatures.filter((s) => s.name === name);
  if (byName.length === 0) throw bad(`no signature is by the log ${quote(name)}`);
  const hint = checkpointKeyHint(log, name, rekorV1);
  const mine = hint ? byName.filter((s) => bytesEqual(s.keyHint, hint)) : [];
  if (mine.length === 0)
    throw bad(
      `no signature by ${quote(name)} carries the key hint of the log's key (${hint ? toHex(hint) : 'unusable key'}; it has ${byName.map((s) => toHex(s.keyHint)).join(', ')})`,
    );
  const text = utf8(cp.body);
  for (const s of mine)
    if (!(await verifyLogSignature(log, text, s.signature))) throw bad("the log's signature does not verify");
}

/**
 * Reads and checks an inclusion proof's checkpoint: signed by the log (verifyCheckpoint), and of
 * the proof's tree size and root hash.
 * @throws VerificationError VERIFY_CHECKPOINT_INVALID (see parseCheckpoint, verifyCheckpoint),
 *   also when the size or root hash is not the proof's.
 */
export async function verifyProofCheckpoint(proof: InclusionProof, log: TrustedLog): Promise<Checkpoint> {
  if (proof.checkpoint === '') throw bad('the inclusion proof carries none');
  const cp = parseCheckpoint(proof.checkpoint);
  await verifyCheckpoint(cp, log);
  const differ = [
    !bytesEqual(cp.rootHash, proof.rootHash) && 'root hash',
    cp.size !== proof.treeSize && `tree size (${cp.size}, the proof's ${proof.treeSize})`,
  ].filter(Boolean);
  if (differ.length) throw bad(`its ${differ.join(' and ')} differ from the inclusion proof's`);
  return cp;
}

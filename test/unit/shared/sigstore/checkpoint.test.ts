/**
 * Checkpoints (shared/sigstore/checkpoint.ts) written here line by line and signed with a log key
 * made here: each field reads back; a missing origin, size or root hash, a missing blank line or
 * signature, a malformed signature line are refused with a sentence saying so; the log's signature
 * is found among witnesses' cosignatures and other keys' signatures wherever it stands, and a
 * wrong name, key hint or signature, or a size or root hash not the proof's, is refused. Arbitrary
 * text gives only VERIFY_CHECKPOINT_INVALID. Node and Chromium.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { parseCheckpoint, verifyCheckpoint, verifyProofCheckpoint } from '../../../../shared/sigstore/checkpoint.ts';
import type { InclusionProof } from '../../../../shared/sigstore/types.ts';
import { checkpointBody, ecdsaHint, sigLine, signedNote, testLog, type TestLog } from './test-log.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const ROOT = new Uint8Array(32).fill(0xab);
const ROOT_B64 = 'q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=';
const SIG = `\u2014 log.example.dev AAAAAAE=\n`;

async function failure(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return `${(e as VerificationError).code}: ${(e as Error).message}`;
  }
}

describe('parseCheckpoint', () => {
  it('reads origin, size, root hash, extension lines, the signed text and every signature', () => {
    const note = `rekor.example.dev - 42\n23083062\n${ROOT_B64}\nTimestamp: 1689177396617352539\n\n${SIG}\u2014 witness.example/w1 AQIDBAUG\n`;
    const cp = parseCheckpoint(note);
    expect(cp).toEqual({
      origin: 'rekor.example.dev - 42',
      size: 23083062,
      rootHash: ROOT,
      extensions: ['Timestamp: 1689177396617352539'],
      body: `rekor.example.dev - 42\n23083062\n${ROOT_B64}\nTimestamp: 1689177396617352539\n`,
      signatures: [
        { name: 'log.example.dev', keyHint: new Uint8Array([0, 0, 0, 0]), signature: new Uint8Array([1]) },
        { name: 'witness.example/w1', keyHint: new Uint8Array([1, 2, 3, 4]), signature: new Uint8Array([5, 6]) },
      ],
    });
  });

  it.each([
    ['no origin line', `736\n${ROOT_B64}\n\n${SIG}`, /no origin line/],
    ['an empty origin', `\n736\n${ROOT_B64}\n\n${SIG}`, /no origin line/],
    ['no size line', `log.example.dev\n${ROOT_B64}\n\n${SIG}`, /no tree size line/],
    ['a size that is not a number', `log.example.dev\n73x\n${ROOT_B64}\n\n${SIG}`, /tree size "73x" is not a decimal/],
    ['a size beyond 2^53', `log.example.dev\n9007199254740993\n${ROOT_B64}\n\n${SIG}`, /is not a decimal number/],
    ['no root hash line', `log.example.dev\n736\n\n${SIG}`, /no root hash line/],
    ['a short root hash', `log.example.dev\n736\nq6urq6s=\n\n${SIG}`, /root hash "q6urq6s=" is not 32 bytes/],
    ['no blank line', `log.example.dev\n736\n${ROOT_B64}\n${SIG}`, /no blank line before its signatures/],
    ['no signature', `log.example.dev\n736\n${ROOT_B64}\n\n`, /carries no signature, so none is by the log/],
    ['an empty line among the extensions', `o\n1\n${ROOT_B64}\n\next\n\n${SIG}`, /an empty line before its signatures/],
    [
      'a last line without its newline',
      `log.example.dev\n736\n${ROOT_B64}\n\n${SIG.trimEnd()}`,
      /does not end with a newline/,
    ],
    [
      'a hyphen for the em dash',
      `log.example.dev\n736\n${ROOT_B64}\n\n- log.example.dev AAAAAAE=\n`,
      /signature line is malformed/,
    ],
    [
      'a signature of four bytes',
      `log.example.dev\n736\n${ROOT_B64}\n\n\u2014 log.example.dev AAAAAA==\n`,
      /malformed/,
    ],
    ['a name with a space', `log.example.dev\n736\n${ROOT_B64}\n\n\u2014 log example AAAAAAE=\n`, /malformed/],
    ['a name with a plus', `log.example.dev\n736\n${ROOT_B64}\n\n\u2014 log+x AAAAAAE=\n`, /malformed/],
    ['a tab', `log.example.dev\n736\t\n${ROOT_B64}\n\n${SIG}`, /control character/],
    ['a carriage return', `log.example.dev\r\n736\n${ROOT_B64}\n\n${SIG}`, /control character/],
    ['101 signatures', `log.example.dev\n736\n${ROOT_B64}\n\n${SIG.repeat(101)}`, /more than 100 signatures/],
  ])('refuses %s', async (_what, note, why) => {
    const f = await failure(() => parseCheckpoint(note));
    expect(f).toMatch(/^VERIFY_CHECKPOINT_INVALID: The log's checkpoint is not valid: /);
    expect(f).toMatch(why);
  });

  it('gives only VERIFY_CHECKPOINT_INVALID for arbitrary text', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.constantFrom('736', ROOT_B64, '', 'log.example.dev', 'AAAAAAE=', '\u2014 log.example.dev AAAAAAE='),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.array(line).map((l) => l.join('\n')),
        ),
        (note) => {
          try {
            const cp = parseCheckpoint(note);
            expect(cp.body + '\n').toBe(note.slice(0, cp.body.length + 1));
          } catch (e) {
            expect(e).toBeInstanceOf(VerificationError);
            expect((e as VerificationError).code).toBe('VERIFY_CHECKPOINT_INVALID');
          }
        },
      ),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

describe('verifyCheckpoint with a log key made here', () => {
  let t: TestLog;
  let other: TestLog;
  const body = checkpointBody('log.example.dev', 736, ROOT);
  const witness = sigLine('witness.example', new Uint8Array([9, 9, 9, 9]), new Uint8Array(72).fill(1));
  beforeAll(async () => {
    t = await testLog();
    other = await testLog();
  });
  const check = async (note: string, log = t.log) => failure(async () => verifyCheckpoint(parseCheckpoint(note), log));

  it('accepts the log signature alone, after or before cosignatures, and beside a signature by another key', async () => {
    expect(await check(await signedNote(t, body, 'log.example.dev'))).toBe('ok');
    expect(await check(await signedNote(t, body, 'log.example.dev', { before: [witness] }))).toBe('ok');
    expect(await check(await signedNote(t, body, 'log.example.dev', { after: [witness, witness] }))).toBe('ok');
    const otherKey = sigLine('log.example.dev', ecdsaHint(other.log), await other.sign(new TextEncoder().encode(body)));
    expect(await check(await signedNote(t, body, 'log.example.dev', { before: [otherKey] }))).toBe('ok');
  });

  it('reads a Rekor v1 origin ("<host> - <tree id>") as signed by the host', async () => {
    const v1 = checkpointBody('rekor.example.dev - 2605736670972794746', 736, ROOT, 'Timestamp: 1');
    expect(await check(await signedNote(t, v1, 'rekor.example.dev'))).toBe('ok');
    expect(await check(await signedNote(t, v1, 'log.example.dev'))).toMatch(
      /no signature is by the log "rekor.example.dev"/,
    );
  });

  it('refuses an origin that is not the log base URL host', async () => {
    const note = await signedNote(t, checkpointBody('elsewhere.example', 736, ROOT), 'elsewhere.example');
    expect(await check(note)).toMatch(/its origin "elsewhere.example" is not the log's name "log.example.dev"/);
    expect(await check(note, { ...t.log, baseUrl: '' })).toMatch(/gives the log no base URL/);
  });

  it('refuses a checkpoint signed only by witnesses, or only by another key of the log', async () => {
    expect(await check(`${body}\n${witness}`)).toMatch(/no signature is by the log "log.example.dev"/);
    expect(await check(await signedNote(other, body, 'log.example.dev'))).toMatch(
      /no signature by "log.example.dev" carries the key hint of the log's key/,
    );
  });

  it('refuses a signature with the log key hint that does not verify', async () => {
    const note = await signedNote(t, body, 'log.example.dev');
    expect(await check(note.replace('\n736\n', '\n737\n'))).toMatch(/the log's signature does not verify/);
    const forged = sigLine('log.example.dev', ecdsaHint(t.log), new Uint8Array(70).fill(2));
    expect(await check(await signedNote(t, body, 'log.example.dev', { after: [forged] }))).toMatch(/does not verify/);
  });

  it('checks the tree size and root hash against the inclusion proof', async () => {
    const proof: InclusionProof = {
      logIndex: 1,
      treeSize: 736,
      rootHash: ROOT,
      hashes: [],
      checkpoint: await signedNote(t, body, 'log.example.dev'),
    };
    const cp = await verifyProofCheckpoint(proof, t.log);
    expect(cp.size).toBe(736);
    expect(await failure(verifyProofCheckpoint({ ...proof, treeSize: 735 }, t.log))).toMatch(
      /its tree size \(736, the proof's 735\) differ from the inclusion proof's/,
    );
    expect(await failure(verifyProofCheckpoint({ ...proof, rootHash: new Uint8Array(32) }, t.log))).toMatch(
      /its root hash differ from the inclusion proof's/,
    );
    expect(await failure(verifyProofCheckpoint({ ...proof, checkpoint: '' }, t.log))).toMatch(
      /the inclusion proof carries none/,
    );
  });

  it('gives only VerificationError for parsed arbitrary notes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('log.example.dev', '736', ROOT_B64, 'x - 1', '', 'AAAA'), { maxLength: 5 }),
        fc.array(
          fc.tuple(fc.constantFrom('log.example.dev', 'x', 'w'), fc.uint8Array({ minLength: 5, maxLength: 80 })),
        ),
        async (lines, sigs) => {
          const note = `${lines.join('\n')}\n\n${sigs.map(([n, s]) => sigLine(n, s.slice(0, 4), s.slice(4))).join('')}`;
          const f = await failure(async () => verifyCheckpoint(parseCheckpoint(note), t.log));
          expect(f).toMatch(/^VERIFY_CHECKPOINT_INVALID: /);
        },
      ),
      { numRuns: 200 },
    );
  });
});

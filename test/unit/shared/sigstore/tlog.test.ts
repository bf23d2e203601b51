/**
 * Log entries (shared/sigstore/tlog.ts) of a log made in the test: an ECDSA key signs the SET over
 * the JSON written here with sorted keys, and a checkpoint of an RFC 6962 tree built here holding
 * the entry. Rekor v1 entries with a SET, a proof or both, and Rekor v2 entries with a proof, are
 * proven as far as they carry proofs; another log, a forged SET, a time in the future or outside
 * the key's validity, a bad number, a v2 entry without a proof or with a SET, a damaged proof or a
 * checkpoint by another key are refused with their codes. Node and Chromium.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { toBase64, toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { setPayload, verifyTlogEntry } from '../../../../shared/sigstore/tlog.ts';
import type { TlogEntry } from '../../../../shared/sigstore/types.ts';
import { proofFor } from './rfc6962-tree.ts';
import { checkpointBody, signedNote, testLog, type TestLog } from './test-log.ts';

const BODY = utf8('{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}');
const LEAVES = [utf8('a'), utf8('b'), BODY, utf8('d'), utf8('e')];
const TIME = 1_700_000_000; // 2023-11-14T22:13:20Z
const NOW = new Date('2024-01-01T00:00:00Z');

let t: TestLog;
let other: TestLog;

/** What Rekor v1 signs, written here independently: keys in order, no spaces. */
const setJson = (e: TlogEntry) =>
  JSON.stringify({
    body: toBase64(e.canonicalizedBody),
    integratedTime: e.integratedTime,
    logID: toHex(e.logId),
    logIndex: e.logIndex,
  });

async function entry(o: { v2?: boolean; set?: boolean; proof?: boolean; by?: TestLog } = {}): Promise<TlogEntry> {
  const by = o.by ?? t;
  const e: TlogEntry = {
    logIndex: o.v2 ? 2 : 1002,
    logId: t.log.logId,
    kindVersion: { kind: 'hashedrekord', version: o.v2 ? '0.0.2' : '0.0.1' },
    integratedTime: o.v2 ? 0 : TIME,
    canonicalizedBody: BODY,
  };
  if (o.set ?? !o.v2) e.inclusionPromise = { signedEntryTimestamp: await by.sign(utf8(setJson(e))) };
  if (o.proof ?? true) {
    const p = proofFor(LEAVES, 2);
    p.checkpoint = await signedNote(by, checkpointBody('log.example.dev', p.treeSize, p.rootHash), 'log.example.dev');
    e.inclusionProof = p;
  }
  return e;
}

async function outcome(e: TlogEntry, logs = [t.log], now = NOW): Promise<string> {
  try {
    const r = await verifyTlogEntry(e, logs, now);
    return `ok ${JSON.stringify(r.proven)} ${r.integratedTime?.toISOString() ?? '-'}`;
  } catch (err) {
    expect(err).toBeInstanceOf(VerificationError);
    return `${(err as VerificationError).code}: ${(err as Error).message}`;
  }
}

beforeAll(async () => {
  t = await testLog();
  other = await testLog();
});

describe('verifyTlogEntry', () => {
  it('signs the SET over canonical JSON', async () => {
    const e = await entry();
    expect(new TextDecoder().decode(setPayload(e))).toBe(setJson(e));
  });

  it('proves a Rekor v1 entry by its SET, its inclusion proof and checkpoint, or both', async () => {
    const time = new Date(TIME * 1000).toISOString();
    expect(await outcome(await entry())).toBe(`ok {"set":true,"inclusionProof":true,"checkpoint":true} ${time}`);
    expect(await outcome(await entry({ proof: false }))).toBe(
      `ok {"set":true,"inclusionProof":false,"checkpoint":false} ${time}`,
    );
    expect(await outcome(await entry({ set: false }))).toBe(
      'ok {"set":false,"inclusionProof":true,"checkpoint":true} -',
    );
  });

  it('finds the log among several', async () => {
    expect(await outcome(await entry(), [other.log, t.log])).toMatch(/^ok /);
  });

  it('proves a Rekor v2 entry by its inclusion proof alone, and gives it no time', async () => {
    expect(await outcome(await entry({ v2: true }))).toBe('ok {"set":false,"inclusionProof":true,"checkpoint":true} -');
  });

  it('refuses an entry of a log the root does not name', async () => {
    expect(await outcome(await entry(), [other.log])).toMatch(/^VERIFY_TLOG_UNTRUSTED: .*does not name/);
  });

  it('refuses a SET over anything else, or by another key', async () => {
    const e = await entry({ proof: false });
    expect(await outcome({ ...e, logIndex: 1003 })).toMatch(
      /^VERIFY_SET_INVALID: The signed entry timestamp does not verify/,
    );
    expect(await outcome({ ...e, integratedTime: TIME + 1 })).toMatch(/^VERIFY_SET_INVALID/);
    expect(await outcome({ ...e, canonicalizedBody: utf8('{}') })).toMatch(/^VERIFY_SET_INVALID/);
    expect(await outcome(await entry({ proof: false, by: other }))).toMatch(/^VERIFY_SET_INVALID/);
  });

  it('refuses an integrated time in the future, beyond five minutes of skew', async () => {
    const e = await entry();
    expect(await outcome(e, [t.log], new Date((TIME - 299) * 1000))).toMatch(/^ok /);
    expect(await outcome(e, [t.log], new Date((TIME - 301) * 1000))).toMatch(
      /^VERIFY_TLOG_ENTRY_INVALID: .*its integrated time 2023-11-14T22:13:20.000Z is in the future/,
    );
  });

  it("refuses a time outside the log key's validity, both ends included", async () => {
    const e = await entry();
    const at = new Date(TIME * 1000);
    const valid = (start: Date, end?: Date) => outcome(e, [{ ...t.log, validFor: { start, ...(end ? { end } : {}) } }]);
    expect(await valid(at, at)).toMatch(/^ok /);
    expect(await valid(new Date(at.getTime() + 1000))).toMatch(
      /^VERIFY_TLOG_UNTRUSTED: .*was not trusted at the entry's integrated time/,
    );
    expect(await valid(new Date(0), new Date(at.getTime() - 1000))).toMatch(/^VERIFY_TLOG_UNTRUSTED/);
  });

  it('refuses negative, fractional and unsafe numbers', async () => {
    const e = await entry();
    const p = e.inclusionProof!;
    for (const bad of [-1, 1.5, NaN, 2 ** 53]) {
      expect(await outcome({ ...e, logIndex: bad })).toMatch(
        /^VERIFY_TLOG_ENTRY_INVALID: .*its log index .* is not a non-negative integer/,
      );
      expect(await outcome({ ...e, integratedTime: bad })).toMatch(
        /its integrated time .* is not a non-negative integer/,
      );
      expect(await outcome({ ...e, inclusionProof: { ...p, treeSize: bad } })).toMatch(
        /tree size .* is not a non-negative integer/,
      );
      expect(await outcome({ ...e, inclusionProof: { ...p, logIndex: bad } })).toMatch(
        /proof's log index .* is not a non-negative/,
      );
    }
  });

  it('refuses an entry without proof, and a Rekor v2 entry with a SET or another index than its proof', async () => {
    const { inclusionProof: _p, inclusionPromise: _s, ...bare } = await entry();
    expect(await outcome(bare)).toMatch(
      /^VERIFY_TLOG_ENTRY_INVALID: .*carries no proof \(neither a signed entry timestamp nor an inclusion proof\)/,
    );
    expect(await outcome({ ...bare, integratedTime: 0 })).toMatch(/carries no proof .*, which Rekor v2 entries need/);
    const v2 = await entry({ v2: true });
    expect(await outcome({ ...v2, inclusionPromise: { signedEntryTimestamp: new Uint8Array(70) } })).toMatch(
      /^VERIFY_TLOG_ENTRY_INVALID: .*a signed entry timestamp but no integrated time/,
    );
    expect(await outcome({ ...v2, logIndex: 3 })).toMatch(/its log index 3 is not its inclusion proof's 2/);
  });

  it('refuses a damaged inclusion proof, and a checkpoint by another key', async () => {
    const e = await entry();
    const p = e.inclusionProof!;
    const flipped = p.hashes.map((h, i) => (i === 0 ? h.map((b, j) => (j === 0 ? b ^ 1 : b)) : h));
    expect(await outcome({ ...e, inclusionProof: { ...p, hashes: flipped } })).toMatch(
      /^VERIFY_INCLUSION_PROOF_INVALID/,
    );
    expect(await outcome({ ...e, inclusionProof: { ...p, logIndex: 1 } })).toMatch(/^VERIFY_INCLUSION_PROOF_INVALID/);
    expect(await outcome({ ...e, canonicalizedBody: utf8('{}'), inclusionPromise: undefined })).toMatch(
      /^VERIFY_INCLUSION_PROOF_INVALID/,
    );
    const byOther = await entry({ by: other, set: false });
    expect(await outcome(byOther)).toMatch(/^VERIFY_CHECKPOINT_INVALID: .*key hint/);
  });

  it('gives only VerificationError for arbitrary numbers and proofs', async () => {
    const e = await entry();
    const n = fc.oneof(fc.integer(), fc.double(), fc.constant(0));
    await fc.assert(
      fc.asyncProperty(
        n,
        n,
        n,
        n,
        fc.array(fc.uint8Array({ maxLength: 33 }), { maxLength: 4 }),
        async (i, time, size, pi, hashes) => {
          const p = { ...e.inclusionProof!, treeSize: size, logIndex: pi, hashes };
          const f = await outcome({ ...e, logIndex: i, integratedTime: time, inclusionProof: p });
          expect(f).not.toMatch(/^ok/);
        },
      ),
      { numRuns: 150 },
    );
  });
});

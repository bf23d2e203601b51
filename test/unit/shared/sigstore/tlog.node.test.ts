/**
 * The log entries of the Sigstore conformance cases (Rekor v1 on public good, Rekor v2 on staging)
 * through verifyTlogEntry with the case's trusted root: the good ones are proven by SET, inclusion
 * proof and checkpoint as far as they carry them, and each case whose README faults the log's part
 * (checkpoint, inclusion proof, SET, integrated time, negative index, unknown log, no proof) is
 * refused with its code. Node only (the cases are files).
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { setPayload, verifyTlogEntry } from '../../../../shared/sigstore/tlog.ts';
import { bundleJson, caseEntry, caseRoot } from './tlog-cases.ts';

/** After every case's entry was made (the latest is 2026-05-07). */
const NOW = new Date('2026-06-01T00:00:00Z');

async function outcome(name: string, now = NOW): Promise<string> {
  try {
    const r = await verifyTlogEntry(caseEntry(name), caseRoot(name).tlogs, now);
    return `ok ${JSON.stringify(r.proven)} ${r.integratedTime?.toISOString() ?? '-'} ${r.log.baseUrl}`;
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return `${(e as VerificationError).code}: ${(e as Error).message}`;
  }
}

const ALL = '{"set":true,"inclusionProof":true,"checkpoint":true}';
const V2 = '{"set":false,"inclusionProof":true,"checkpoint":true}';

describe('conformance log entries', () => {
  it('sign the SET over the JSON Rekor v1 writes', () => {
    const e = bundleJson('happy-path-v0.3').verificationMaterial.tlogEntries[0];
    const json = JSON.stringify({
      body: e.canonicalizedBody,
      integratedTime: Number(e.integratedTime),
      logID: Buffer.from(e.logId.keyId, 'base64').toString('hex'),
      logIndex: Number(e.logIndex),
    });
    expect(new TextDecoder().decode(setPayload(caseEntry('happy-path-v0.3')))).toBe(json);
  });

  it.each([
    ['happy-path-v0.1', `ok ${ALL} 2023-07-12T15:56:36.000Z https://rekor.sigstore.dev`],
    ['happy-path-v0.2', `ok ${ALL} 2023-07-12T15:56:36.000Z https://rekor.sigstore.dev`],
    ['happy-path-v0.3', `ok ${ALL} 2024-03-19T17:26:26.000Z https://rekor.sigstore.dev`],
    ['happy-path-v0.3-new-mediaType', `ok ${ALL} 2024-03-19T17:26:26.000Z https://rekor.sigstore.dev`],
    ['happy-path-intoto-in-dsse-v3', `ok ${ALL} 2024-12-16T18:42:56.000Z https://rekor.sigstore.dev`],
    ['managed-key-happy-path', `ok ${ALL} 2025-12-18T17:04:39.000Z https://rekor.sigstore.dev`],
    ['rekor2-happy-path', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    ['rekor2-dsse-happy-path', `ok ${V2} - https://log2025-alpha3.rekor.sigstage.dev`],
    ['rekor2-checkpoint-cosigned', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    ['rekor2-checkpoint-multiple-cosigs', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    ['rekor2-checkpoint-origin-not-first', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    ['rekor2-checkpoint-two-sigs-cosigned', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    ['rekor2-checkpoint-two-sigs-from-origin', `ok ${V2} - https://log2025-alpha1.rekor.sigstage.dev`],
    // The v0.2 bundle's missing proof is the bundle's fault; the SET alone proves the entry.
    [
      'intoto-missing-inclusion-proof_fail',
      'ok {"set":true,"inclusionProof":false,"checkpoint":false} 2023-02-01T00:00:00.000Z',
    ],
  ])('%s is proven', async (name, want) => {
    expect(await outcome(name)).toMatch(new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it.each([
    ['checkpoint-bad-keyhint_fail', 'VERIFY_CHECKPOINT_INVALID', /key hint/],
    ['checkpoint-wrong-roothash_fail', 'VERIFY_CHECKPOINT_INVALID', /root hash and tree size .* differ/],
    ['invalid-checkpoint-signature_fail', 'VERIFY_CHECKPOINT_INVALID', /does not verify/],
    ['rekor2-checkpoint-missing-log-signature_fail', 'VERIFY_CHECKPOINT_INVALID', /no signature/],
    ['rekor2-checkpoint-missing-origin_fail', 'VERIFY_CHECKPOINT_INVALID', /no origin line/],
    ['rekor2-checkpoint-missing-root-hash_fail', 'VERIFY_CHECKPOINT_INVALID', /no root hash line/],
    ['rekor2-checkpoint-missing-size_fail', 'VERIFY_CHECKPOINT_INVALID', /no tree size line/],
    ['rekor2-checkpoint-no-matching-signature_fail', 'VERIFY_CHECKPOINT_INVALID', /is not the log's name/],
    ['inclusion-proof-corrupted-hash_fail', 'VERIFY_INCLUSION_PROOF_INVALID', /not the proof's root hash/],
    ['invalid-inclusion-proof_fail', 'VERIFY_INCLUSION_PROOF_INVALID', /not the proof's root hash/],
    [
      'set-invalid-signature_fail',
      'VERIFY_SET_INVALID',
      /does not verify with the key of https:\/\/rekor.sigstore.dev/,
    ],
    ['bundle-negative-log-index_fail', 'VERIFY_TLOG_ENTRY_INVALID', /its log index -1 is not a non-negative integer/],
    ['bundle-from-wrong-instance_fail', 'VERIFY_TLOG_UNTRUSTED', /does not name/],
    ['rekor2-no-inclusion-proof_fail', 'VERIFY_TLOG_ENTRY_INVALID', /carries no proof/],
  ])('%s is refused: %s', async (name, code, why) => {
    const f = await outcome(name);
    expect(f.startsWith(`${code}: `), f).toBe(true);
    expect(f).toMatch(why);
  });

  it('integrated-time-in-future_fail: the entry of 2026-05-07 is refused before that day, proven after', async () => {
    expect(await outcome('integrated-time-in-future_fail', new Date('2026-05-01T00:00:00Z'))).toMatch(
      /^VERIFY_TLOG_ENTRY_INVALID: .*its integrated time 2026-05-07T15:34:11.000Z is in the future/,
    );
    expect(await outcome('integrated-time-in-future_fail')).toMatch(/^ok .* 2026-05-07T15:34:11.000Z/);
  });

  it("refuses a real entry when the root's log key was not valid at its integrated time", async () => {
    const root = caseRoot('happy-path-v0.3');
    const entry = caseEntry('happy-path-v0.3');
    const logs = root.tlogs.map((l) => ({
      ...l,
      validFor: { start: l.validFor.start, end: new Date('2024-01-01T00:00:00Z') },
    }));
    await expect(verifyTlogEntry(entry, logs, NOW)).rejects.toMatchObject({ code: 'VERIFY_TLOG_UNTRUSTED' });
  });
});

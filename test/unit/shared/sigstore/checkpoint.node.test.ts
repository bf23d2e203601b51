/**
 * Real checkpoints of the Sigstore conformance cases (Rekor v1 on public good, ECDSA; Rekor v2 on
 * staging, Ed25519) against the case's trusted root: the key hints the logs write are the ones
 * computed here for each key type (an Ed25519 note key hash is the trusted root's v2 log id), the
 * good ones verify with witnesses' cosignatures anywhere, and each damaged one is refused with the
 * sentence its README calls for. Node only (the cases are files).
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { parseCheckpoint, verifyProofCheckpoint } from '../../../../shared/sigstore/checkpoint.ts';
import { checkpointKeyHint } from '../../../../shared/sigstore/log-key.ts';
import type { TrustedLog } from '../../../../shared/sigstore/types.ts';
import { caseEntry, caseRoot } from './tlog-cases.ts';

function logOf(name: string): TrustedLog {
  const entry = caseEntry(name);
  const log = caseRoot(name).tlogs.find((l) => Buffer.compare(l.logId, entry.logId) === 0);
  if (!log) throw new Error(`${name}: no log`);
  return log;
}

async function outcome(name: string): Promise<string> {
  try {
    await verifyProofCheckpoint(caseEntry(name).inclusionProof!, logOf(name));
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return `${(e as VerificationError).code}: ${(e as Error).message}`;
  }
}

describe('key hints', () => {
  it('of the Ed25519 Rekor v2 logs are the signed-note key hash of their host, which the roots give as log id', () => {
    for (const root of [caseRoot('rekor2-happy-path'), caseRoot('happy-path-v0.3')]) {
      const v2 = root.tlogs.filter((l) => l.keyDetails === 'PKIX_ED25519');
      expect(v2.length).toBeGreaterThan(0);
      for (const log of v2) {
        const host = new URL(log.baseUrl).hostname;
        expect(checkpointKeyHint(log, host, false)).toEqual(log.logId.subarray(0, 4));
        expect(checkpointKeyHint(log, `x${host}`, false)).not.toEqual(log.logId.subarray(0, 4));
      }
    }
  });

  it('of the ECDSA logs are SHA-256 of the key, as Rekor v1 and v2 write them', () => {
    const ecdsa = caseRoot('happy-path-v0.3').tlogs.filter((l) => l.keyDetails.startsWith('PKIX_ECDSA'));
    expect(ecdsa.length).toBeGreaterThan(0);
    for (const log of ecdsa) {
      expect(checkpointKeyHint(log, 'any', true)).toEqual(log.logId.subarray(0, 4));
      expect(checkpointKeyHint(log, 'any', false)).toEqual(log.logId.subarray(0, 4));
    }
  });

  it('are what the real checkpoints carry', () => {
    const v1 = parseCheckpoint(caseEntry('happy-path-v0.3').inclusionProof!.checkpoint);
    expect(v1.signatures[0]!.keyHint).toEqual(checkpointKeyHint(logOf('happy-path-v0.3'), 'rekor.sigstore.dev', true));
    const v2 = parseCheckpoint(caseEntry('rekor2-happy-path').inclusionProof!.checkpoint);
    expect(v2.signatures[0]!.keyHint).toEqual(checkpointKeyHint(logOf('rekor2-happy-path'), v2.origin, false));
  });
});

describe('real checkpoints', () => {
  it('reads a Rekor v1 checkpoint with its timestamp extension', () => {
    const cp = parseCheckpoint(caseEntry('happy-path-v0.2').inclusionProof!.checkpoint);
    expect(cp).toMatchObject({
      origin: 'rekor.sigstore.dev - 2605736670972794746',
      size: 23083062,
      extensions: ['Timestamp: 1689177396617352539'],
    });
    expect(cp.signatures.map((s) => s.name)).toEqual(['rekor.sigstore.dev']);
  });

  it.each([
    'happy-path-v0.2',
    'happy-path-v0.3',
    'happy-path-intoto-in-dsse-v3',
    'rekor2-happy-path',
    'rekor2-dsse-happy-path',
    'rekor2-checkpoint-cosigned',
    'rekor2-checkpoint-multiple-cosigs',
    'rekor2-checkpoint-origin-not-first',
    'rekor2-checkpoint-two-sigs-cosigned',
    'rekor2-checkpoint-two-sigs-from-origin',
  ])('%s verifies', async (name) => {
    expect(await outcome(name)).toBe('ok');
  });

  it.each([
    ['rekor2-checkpoint-missing-origin_fail', /no origin line/],
    ['rekor2-checkpoint-missing-size_fail', /no tree size line/],
    ['rekor2-checkpoint-missing-root-hash_fail', /no root hash line/],
    ['rekor2-checkpoint-missing-log-signature_fail', /carries no signature, so none is by the log/],
    [
      'rekor2-checkpoint-no-matching-signature_fail',
      /origin "log2025-alpha1.rekor.github.dev" is not the log's name "log2025-alpha1.rekor.sigstage.dev"/,
    ],
    [
      'checkpoint-bad-keyhint_fail',
      /no signature by "rekor.sigstore.dev" carries the key hint of the log's key \(c0d23d6a; it has c4d23d6a\)/,
    ],
    ['checkpoint-wrong-roothash_fail', /its root hash and tree size .* differ from the inclusion proof's/],
    ['invalid-checkpoint-signature_fail', /the log's signature does not verify/],
  ])('%s is refused', async (name, why) => {
    const f = await outcome(name);
    expect(f).toMatch(/^VERIFY_CHECKPOINT_INVALID: The log's checkpoint is not valid: /);
    expect(f).toMatch(why);
  });

  it("refuses a good checkpoint for another log's key", async () => {
    const proof = caseEntry('rekor2-happy-path').inclusionProof!;
    const v1Log = caseRoot('rekor2-happy-path').tlogs.find((l) => l.keyDetails.startsWith('PKIX_ECDSA'))!;
    await expect(
      verifyProofCheckpoint(proof, { ...v1Log, baseUrl: logOf('rekor2-happy-path').baseUrl }),
    ).rejects.toMatchObject({
      code: 'VERIFY_CHECKPOINT_INVALID',
      message: expect.stringContaining('carries the key hint'),
    });
  });
});

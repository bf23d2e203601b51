/**
 * Real entry bodies of the Sigstore conformance cases (hashedrekord 0.0.1 and 0.0.2, dsse 0.0.1,
 * intoto 0.0.2, Rekor v2's hashedrekord over a DSSE PAE) against what each bundle signed: the good
 * ones match, the cases whose README says the log entry is for something else are refused naming
 * the field, and a good body checked against another artifact, certificate, key, payload or
 * payload type is refused too. Node only (the cases are files).
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { checkBodyMatches, type BodyExpectation } from '../../../../shared/sigstore/rekor-body.ts';
import type { SignedContent } from '../../../../shared/sigstore/types.ts';
import { caseArtifactDigest, caseContent, caseEntry, caseSigner } from './tlog-cases.ts';

function expectation(name: string, more: Partial<BodyExpectation> = {}): BodyExpectation {
  return { content: caseContent(name), ...caseSigner(name), artifactDigest: caseArtifactDigest(name), ...more };
}

function outcome(name: string, more: Partial<BodyExpectation> = {}): string {
  try {
    checkBodyMatches(caseEntry(name), expectation(name, more));
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return `${(e as VerificationError).code}: ${(e as Error).message}`;
  }
}

const dsseWith = (name: string, change: Partial<Extract<SignedContent, { kind: 'dsse' }>>): SignedContent => {
  const c = caseContent(name);
  if (c.kind !== 'dsse') throw new Error('not a DSSE case');
  return { ...c, ...change };
};

describe('real entry bodies', () => {
  it.each([
    ['happy-path-v0.1', 'hashedrekord 0.0.1'],
    ['happy-path-v0.2', 'hashedrekord 0.0.1'],
    ['happy-path-v0.3', 'hashedrekord 0.0.1'],
    ['happy-path-v0.3-new-mediaType', 'hashedrekord 0.0.1'],
    ['managed-key-happy-path', 'hashedrekord 0.0.1'],
    ['happy-path-intoto-in-dsse-v3', 'dsse 0.0.1'],
    ['intoto-with-custom-trust-root', 'intoto 0.0.2'],
    ['rekor2-happy-path', 'hashedrekord 0.0.2'],
    ['rekor2-dsse-happy-path', 'hashedrekord 0.0.2'],
    ['bundle-with-sct-with-extensions', 'hashedrekord 0.0.2'],
  ])('%s (%s) matches its bundle', (name, kv) => {
    const { kind, version } = caseEntry(name).kindVersion;
    expect(`${kind} ${version}`).toBe(kv);
    expect(outcome(name)).toBe('ok');
  });

  it.each([
    ['wrong-hashedrekord-artifact_fail', /signature|digest of the artifact/],
    ['wrong-hashedrekord-cert-and-sig_fail', /signature|certificate/],
    ['wrong-hashedrekord-entry_fail', /signature|certificate|digest of the artifact/],
    ['signature-mismatch_fail', /signature/],
    ['message-digest-mismatch_fail', /digest of the artifact/],
    ['intoto-log-entry-mismatch_fail', /signature/],
    ['dsse-mismatch-envelope_fail', /signature|payload hash/],
    ['rekor2-dsse-mismatch-envelope_fail', /signature|digest of the DSSE envelope/],
    ['rekor2-dsse-mismatch-sig_fail', /signature/],
  ])('%s is about another signature', (name, field) => {
    const f = outcome(name);
    expect(f).toMatch(/^VERIFY_TLOG_BODY_MISMATCH: The log entry is not about this signature: its /);
    expect(f).toMatch(field);
  });

  it('refuses a good hashedrekord for another artifact, certificate or key', () => {
    const other = new Uint8Array(32).fill(1);
    expect(outcome('happy-path-v0.3', { artifactDigest: other })).toMatch(/its digest of the artifact differs/);
    expect(outcome('rekor2-happy-path', { artifactDigest: other })).toMatch(/its digest of the artifact differs/);
    const key = caseSigner('managed-key-happy-path');
    expect(outcome('happy-path-v0.3', key)).toMatch(/its public key \(it names a certificate\) differs/);
    expect(outcome('rekor2-happy-path', key)).toMatch(/its public key \(it names a certificate\) differs/);
    expect(outcome('happy-path-v0.3', { signerDer: caseSigner('happy-path-v0.1').signerDer })).toMatch(
      /its certificate differs/,
    );
    expect(
      outcome('managed-key-happy-path', {
        signerDer: caseSigner('happy-path-v0.3').signerDer,
        signerIsCertificate: true,
      }),
    ).toMatch(/its certificate \(it names a public key\) differs/);
  });

  it('refuses a good DSSE, in-toto or Rekor v2 DSSE entry for another payload or payload type', () => {
    const payload = new TextEncoder().encode('{}');
    expect(
      outcome('happy-path-intoto-in-dsse-v3', { content: dsseWith('happy-path-intoto-in-dsse-v3', { payload }) }),
    ).toMatch(/its payload hash differs/);
    expect(
      outcome('intoto-with-custom-trust-root', { content: dsseWith('intoto-with-custom-trust-root', { payload }) }),
    ).toMatch(/its payload hash differs/);
    expect(
      outcome('intoto-with-custom-trust-root', {
        content: dsseWith('intoto-with-custom-trust-root', { payloadType: 'text/plain' }),
      }),
    ).toMatch(/its payload type differs/);
    expect(
      outcome('rekor2-dsse-happy-path', { content: dsseWith('rekor2-dsse-happy-path', { payloadType: 'text/plain' }) }),
    ).toMatch(/its digest of the DSSE envelope differs/);
  });

  it('refuses a body whose kind or version is not the entry kindVersion', () => {
    const e = caseEntry('happy-path-v0.3');
    e.kindVersion = { kind: 'hashedrekord', version: '0.0.2' };
    expect(() => checkBodyMatches(e, expectation('happy-path-v0.3'))).toThrow(
      expect.objectContaining({
        code: 'VERIFY_TLOG_ENTRY_INVALID',
        message: expect.stringMatching(/the bundle says hashedrekord 0.0.2/),
      }),
    );
  });
});

/**
 * The trust verify-sigstore.ts builds: the same root bytes give the very same parsed root each
 * time (so the certificates and checks kept per authority are reused, not parsed anew for every
 * verification), whoever names it and however it is given; a Rekor key swaps the logs alone; a
 * malformed root is refused every time, never remembered. Node and Chromium.
 */
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { buildTrust } from '../../../../shared/ops/verify-sigstore.ts';
import { PUBLIC_GOOD_ROOT, STAGING_ROOT } from '../../../../shared/sigstore/shipped-roots.ts';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('buildTrust', () => {
  it('parses a root once per sha256, whoever names it and however it is given', () => {
    const a = buildTrust({ root: { json: bytes(STAGING_ROOT.json), name: 'one' } });
    const b = buildTrust({ root: { json: STAGING_ROOT.json, name: 'two' } });
    const c = buildTrust({ root: 'staging' });
    expect(a.sha256).toBe(STAGING_ROOT.sha256);
    expect(b.root).toBe(a.root);
    expect(c.root).toBe(a.root);
    expect([a.name, b.name]).toEqual(['one', 'two']);
    expect(buildTrust({ root: 'public-good' }).root).not.toBe(a.root);
    expect(buildTrust({ root: 'public-good' }).root).toBe(buildTrust({ root: 'public-good' }).root);
  });

  it('a Rekor key replaces the logs of a copy, leaving the parsed root as it was', () => {
    const plain = buildTrust({ root: 'public-good' });
    const logs = plain.root.tlogs;
    const rekor = plain.root.tlogs[0]!;
    const pem = `-----BEGIN PUBLIC KEY-----\n${btoa(String.fromCharCode(...rekor.spki))}\n-----END PUBLIC KEY-----\n`;
    const keyed = buildTrust({ root: 'public-good', rekorPublicKey: pem });
    expect(keyed.root).not.toBe(plain.root);
    expect(keyed.root.tlogs).toHaveLength(1);
    expect(keyed.root.certificateAuthorities).toBe(plain.root.certificateAuthorities);
    expect(buildTrust({ root: 'public-good' }).root.tlogs).toBe(logs);
    expect(PUBLIC_GOOD_ROOT.sha256).toBe(plain.sha256);
  });

  it('a malformed root is refused each time it is given', () => {
    const bad = { root: { json: '{"mediaType": "nope"}', name: 'bad' } };
    for (let i = 0; i < 2; i++) {
      let err: unknown;
      try {
        buildTrust(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VerificationError);
      expect((err as VerificationError).code).toBe('VERIFY_TRUSTED_ROOT_INVALID');
    }
  });
});

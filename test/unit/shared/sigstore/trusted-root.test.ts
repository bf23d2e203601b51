/**
 * Trusted roots (shared/sigstore/trusted-root.ts) and the roots shipped with the page
 * (shipped-roots.ts): the shipped texts are the bytes their sources publish (SHA-256 as recorded)
 * and read whole; a root missing a validity start, with a bad certificate or an unknown media type
 * is refused with VERIFY_TRUSTED_ROOT_INVALID; arbitrary input gives only that error. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Bytes } from '../../../../shared/crypto/digest.ts';
import { parseTrustedRoot, parseTrustedRootOnce, validAt } from '../../../../shared/sigstore/trusted-root.ts';
import { PUBLIC_GOOD_ROOT, SHIPPED_ROOTS, STAGING_ROOT } from '../../../../shared/sigstore/shipped-roots.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const code = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return (e as VerificationError).code;
  }
};

describe('shipped roots', () => {
  it.each(SHIPPED_ROOTS.map((r) => [r.id, r] as const))('%s is the recorded bytes and reads whole', (_id, r) => {
    expect(toHex(sha256Bytes(utf8(r.json)))).toBe(r.sha256);
    const root = parseTrustedRoot(r.json);
    expect(root.tlogs.length).toBeGreaterThan(0);
    expect(root.certificateAuthorities.length).toBeGreaterThan(0);
    expect(root.ctlogs.length).toBeGreaterThan(0);
    expect(root.timestampAuthorities.length).toBeGreaterThan(0);
  });

  it('public good is the root @sigstore/tuf 5.0.1 ships (the conformance copy)', () => {
    expect(PUBLIC_GOOD_ROOT.sha256).toBe('6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66');
    const root = parseTrustedRoot(PUBLIC_GOOD_ROOT.json);
    const rekor = root.tlogs.find((l) => l.baseUrl === 'https://rekor.sigstore.dev')!;
    expect(rekor.keyDetails).toBe('PKIX_ECDSA_P256_SHA_256');
    expect(rekor.logId).toEqual(sha256Bytes(rekor.spki));
    expect(rekor.validFor.start.toISOString()).toBe('2021-01-12T11:53:27.000Z');
  });

  it('staging differs from public good', () => {
    expect(STAGING_ROOT.sha256).not.toBe(PUBLIC_GOOD_ROOT.sha256);
  });
});

describe('refusals', () => {
  const base = JSON.parse(PUBLIC_GOOD_ROOT.json) as Record<string, unknown> & {
    tlogs: { publicKey: { validFor: Record<string, unknown>; rawBytes: string } }[];
    certificateAuthorities: { certChain: { certificates: { rawBytes: string }[] } }[];
  };
  const mutate = (f: (r: typeof base) => void) => {
    const r = structuredClone(base);
    f(r);
    return JSON.stringify(r);
  };

  it('a log key without a validity start', () => {
    expect(code(() => parseTrustedRoot(mutate((r) => delete r.tlogs[0]!.publicKey.validFor.start)))).toBe(
      'VERIFY_TRUSTED_ROOT_INVALID',
    );
  });
  it('a certificate that is not base64', () => {
    const text = mutate((r) => (r.certificateAuthorities[0]!.certChain.certificates[0]!.rawBytes = '%%%'));
    expect(code(() => parseTrustedRoot(text))).toBe('VERIFY_TRUSTED_ROOT_INVALID');
  });
  it('an unknown media type, a list that is not one, an end before the start', () => {
    expect(code(() => parseTrustedRoot(mutate((r) => (r.mediaType = 'application/json'))))).toBe(
      'VERIFY_TRUSTED_ROOT_INVALID',
    );
    expect(code(() => parseTrustedRoot(mutate((r) => (r.tlogs = {} as never))))).toBe('VERIFY_TRUSTED_ROOT_INVALID');
    const backwards = mutate((r) => (r.tlogs[0]!.publicKey.validFor.end = '2020-01-01T00:00:00Z'));
    expect(code(() => parseTrustedRoot(backwards))).toBe('VERIFY_TRUSTED_ROOT_INVALID');
  });
  it('a null end means still valid; nanoseconds are read', () => {
    const text = mutate((r) => {
      r.tlogs[0]!.publicKey.validFor.end = null;
      r.tlogs[0]!.publicKey.validFor.start = '2021-01-12T11:53:27.123456789Z';
    });
    const log = parseTrustedRoot(text).tlogs[0]!;
    expect(log.validFor.end).toBeUndefined();
    expect(log.validFor.start.getTime()).toBe(Date.parse('2021-01-12T11:53:27.123Z'));
  });
  it('validity is a closed interval', () => {
    const p = { start: new Date(1000), end: new Date(2000) };
    expect([
      validAt(p, new Date(999)),
      validAt(p, new Date(1000)),
      validAt(p, new Date(2000)),
      validAt(p, new Date(2001)),
    ]).toEqual([false, true, true, false]);
  });
  it('arbitrary bytes and JSON give only VERIFY_TRUSTED_ROOT_INVALID', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.json().map((j) => utf8(j)),
        ),
        (bytes) => {
          const c = code(() => parseTrustedRoot(bytes));
          expect(['VERIFY_TRUSTED_ROOT_INVALID']).toContain(c);
        },
      ),
      { numRuns: fuzzRuns(100) },
    );
  });
  it('mutated public-good roots read or are refused with the code, never another error', () => {
    const bytes = utf8(PUBLIC_GOOD_ROOT.json);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const b = bytes.slice();
        b[i] = v;
        expect(['ok', 'VERIFY_TRUSTED_ROOT_INVALID']).toContain(code(() => parseTrustedRoot(b)));
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

describe('parseTrustedRootOnce', () => {
  it('gives the same root for the same sha256, and refuses a malformed one every time', () => {
    const a = parseTrustedRootOnce(STAGING_ROOT.sha256, STAGING_ROOT.json);
    expect(parseTrustedRootOnce(STAGING_ROOT.sha256, utf8(STAGING_ROOT.json))).toBe(a);
    expect(parseTrustedRootOnce(PUBLIC_GOOD_ROOT.sha256, PUBLIC_GOOD_ROOT.json)).not.toBe(a);
    const bad = '{"mediaType": "nope"}';
    const id = toHex(sha256Bytes(utf8(bad)));
    for (let i = 0; i < 2; i++) expect(code(() => parseTrustedRootOnce(id, bad))).toBe('VERIFY_TRUSTED_ROOT_INVALID');
  });
});

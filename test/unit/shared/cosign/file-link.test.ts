/**
 * File verification links (shared/cosign/file-link.ts): what fileVerificationLink builds reads
 * back the same for any digest, bundle bytes, key and Sigstore parameters (fast-check); links
 * written by hand (a PEM key, a form-encoded PEM, no digest) read as meant; broken links are
 * refused with VERIFY_LINK_INVALID; arbitrary queries give only typed errors. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyError, VerificationError } from '../../../../shared/errors.ts';
import { toBase64Url, toHex } from '../../../../shared/encoding/base64.ts';
import { publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { exportSpki, generateEcdsaKeyPair } from '../../../../shared/crypto/webcrypto.ts';
import { IDENTITY_PARAMS, TLOG_VALUES } from '../../../../shared/cosign/sigstore-params.ts';
import {
  VERIFY_FILE_ROUTE,
  fileVerificationLink,
  readFileVerificationQuery,
  sha256DigestBytes,
  type FileSigstoreParams,
} from '../../../../shared/cosign/file-link.ts';
import type { IdentityPolicy } from '../../../../shared/sigstore/policy.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const spki = await exportSpki((await generateEcdsaKeyPair('P-256', true)).publicKey);
const ORIGIN = 'https://cosign-web.example';
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const BUNDLE = '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":"é+/="}';

/** The query of a link (after `#/verify-file?`). */
function queryOf(link: string): string {
  const prefix = `${ORIGIN}/#${VERIFY_FILE_ROUTE}?`;
  expect(link.startsWith(prefix)).toBe(true);
  return link.slice(prefix.length);
}

function linkError(query: string): VerificationError {
  try {
    readFileVerificationQuery(query);
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return e as VerificationError;
  }
  throw new Error(`"${query}" was read`);
}

const text = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim() === s && s !== '');
const policy: fc.Arbitrary<IdentityPolicy> = fc
  .record(Object.fromEntries(IDENTITY_PARAMS.map((k) => [k, fc.option(text, { nil: undefined })])))
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as IdentityPolicy);
const params: fc.Arbitrary<FileSigstoreParams> = fc.record(
  {
    policy,
    trustedRoot: fc.oneof(
      fc.constantFrom('staging'),
      fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
    ),
    caRoots: text,
    caIntermediates: text,
    tlog: fc.constantFrom(...TLOG_VALUES),
  },
  { requiredKeys: ['policy'] },
);

describe('file verification links', () => {
  it('round trip: the digest, the bundle bytes, the key and every Sigstore parameter', () => {
    fc.assert(
      fc.property(
        fc.option(
          fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
          { nil: undefined },
        ),
        fc.string({ minLength: 1, maxLength: 200 }),
        fc.boolean(),
        params,
        (digest, bundle, withKey, sigstore) => {
          fc.pre(withKey || IDENTITY_PARAMS.some((k) => sigstore.policy[k]));
          const link = fileVerificationLink(ORIGIN, {
            digest,
            bundle,
            spki: withKey ? spki : undefined,
            sigstore,
          });
          const back = readFileVerificationQuery(queryOf(link));
          expect(back.digest).toBe(digest ?? null);
          expect(back.bundleJson).toBe(bundle);
          expect(back.spki).toEqual(withKey ? spki : null);
          expect(back.algorithm).toEqual(withKey ? { kind: 'ecdsa', curve: 'P-256' } : null);
          expect(back.sigstore).toEqual(sigstore);
        },
      ),
    );
  });

  it('writes the canonical form: digest, bundle as base64url, key as base64url SPKI, then the parameters', () => {
    const link = fileVerificationLink(ORIGIN, {
      digest: DIGEST.toUpperCase().replace('SHA256', 'sha256'),
      bundle: new TextEncoder().encode(BUNDLE),
      spki,
      sigstore: { policy: { certificateIdentity: 'a@b.c', certificateOidcIssuer: 'https://x' }, tlog: 'check' },
    });
    expect(link).toBe(
      `${ORIGIN}/#/verify-file?digest=sha256%3A${'ab'.repeat(32)}&bundle=${toBase64Url(new TextEncoder().encode(BUNDLE))}` +
        `&key=${toBase64Url(spki)}&certificateIdentity=a%40b.c&certificateOidcIssuer=https%3A%2F%2Fx&tlog=check`,
    );
    // The public-good root is the default: not written.
    expect(
      fileVerificationLink(ORIGIN, { bundle: '{}', spki, sigstore: { policy: {}, trustedRoot: 'public-good' } }),
    ).toBe(`${ORIGIN}/#/verify-file?bundle=e30&key=${toBase64Url(spki)}`);
  });

  it('reads hand-written links: a PEM key, a form-encoded PEM, no digest, a Rekor key ignored', () => {
    const pem = publicKeyPem(spki);
    const bundle = `bundle=${toBase64Url(new TextEncoder().encode(BUNDLE))}`;
    const a = readFileVerificationQuery(`${bundle}&key=${encodeURIComponent(pem)}`);
    expect(a.spki).toEqual(spki);
    expect(a.digest).toBeNull();
    expect(a.bundleJson).toBe(BUNDLE);
    const form = encodeURIComponent(pem).replace(/%20/g, '+');
    expect(readFileVerificationQuery(`${bundle}&key=${form}&digest=${DIGEST}`).spki).toEqual(spki);
    const b = readFileVerificationQuery(
      `${bundle}&certificateIdentity=x&certificateOidcIssuer=y&rekorPublicKey=abc&trustedRoot=public-good`,
    );
    expect(b.sigstore).toEqual({
      policy: { certificateIdentity: 'x', certificateOidcIssuer: 'y' },
      trustedRoot: 'public-good',
    });
  });

  it('refuses broken links with VERIFY_LINK_INVALID and what is wrong', () => {
    const bundle = `bundle=${toBase64Url(new TextEncoder().encode(BUNDLE))}`;
    const key = `key=${toBase64Url(spki)}`;
    expect(linkError(key).message).toMatch(/no bundle/);
    expect(linkError(`bundle=%%%&${key}`).message).toMatch(/percent-encoded/);
    expect(linkError(`bundle=@@@&${key}`).message).toMatch(/not base64url/);
    expect(linkError(`bundle=${toBase64Url(new Uint8Array([0xff, 0xfe]))}&${key}`).message).toMatch(/UTF-8/);
    expect(linkError(bundle).message).toMatch(/no public key/);
    expect(linkError(`${bundle}&${key}&digest=sha256:abc`).message).toMatch(/not a sha256/);
    expect(linkError(`${bundle}&${key}&tlog=sometimes`).message).toMatch(/tlog must be/);
    expect(linkError(`${bundle}&${key}&trustedRoot=mine`).message).toMatch(/trustedRoot must be/);
    for (const q of [key, bundle, `${bundle}&${key}&digest=md5:00`])
      expect(linkError(q).code).toBe('VERIFY_LINK_INVALID');
    expect(() => readFileVerificationQuery(`${bundle}&key=AAAA`)).toThrow(KeyError);
    expect(() => fileVerificationLink(ORIGIN, { bundle: '{}', sigstore: { policy: {} } })).toThrow(
      /needs a public key or a certificate identity/,
    );
    expect(() =>
      fileVerificationLink(ORIGIN, { digest: 'sha256:zz', bundle: '{}', spki, sigstore: { policy: {} } }),
    ).toThrow(VerificationError);
  });

  it('arbitrary queries give only typed errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (q) => {
        try {
          readFileVerificationQuery(q);
        } catch (e) {
          expect(e instanceof VerificationError || e instanceof KeyError).toBe(true);
        }
      }),
      { numRuns: fuzzRuns(100) },
    );
  });
});

describe('sha256DigestBytes', () => {
  it('reads sha256:<hex> (any case, spaces around) into its 32 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(sha256DigestBytes(`  sha256:${toHex(bytes).toUpperCase()} `)).toEqual(bytes);
      }),
    );
  });
  it('refuses anything else with VERIFY_POLICY_INVALID', () => {
    for (const d of ['', 'sha256:', `sha512:${'a'.repeat(64)}`, `sha256:${'g'.repeat(64)}`, `sha256:${'a'.repeat(63)}`])
      expect(() => sha256DigestBytes(d)).toThrow(expect.objectContaining({ code: 'VERIFY_POLICY_INVALID' }));
  });
});

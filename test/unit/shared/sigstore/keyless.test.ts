/**
 * What keyless signing reads from outside, fuzzed: ID tokens (oidc.ts readIdToken), login
 * callbacks (readCallback) and Fulcio's answers (fulcio.ts requestSigningCertificate, fed by a
 * fetch that answers arbitrary bytes). Every failure is a KeylessError with a code and a sentence;
 * nothing else is ever thrown. The real services are in test/integration/keyless-fulcio.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeylessError } from '../../../../shared/errors.ts';
import { toBase64Url, utf8 } from '../../../../shared/encoding/base64.ts';
import { requestSigningCertificate } from '../../../../shared/sigstore/fulcio.ts';
import { pkcePair, readCallback, readIdToken } from '../../../../shared/sigstore/oidc.ts';
import type { TrustedRoot } from '../../../../shared/sigstore/types.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const ISSUER = 'https://issuer.example';
const expectClaims = { issuer: ISSUER, clientId: 'sigstore', now: new Date('2026-01-01T00:00:00Z') };
const jwt = (claims: unknown) => `e30.${toBase64Url(utf8(JSON.stringify(claims)))}.c2ln`;
const root: TrustedRoot = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  ctlogs: [],
  certificateAuthorities: [],
  timestampAuthorities: [],
};

function onlyKeyless(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KeylessError);
    expect((e as KeylessError).message.length).toBeGreaterThan(10);
  }
}

describe('ID tokens', () => {
  it('reads the email as the subject, else sub', () => {
    const exp = 1_800_000_000;
    expect(
      readIdToken(jwt({ iss: ISSUER, aud: 'sigstore', exp, email: 'a@b.c', sub: 'x' }), expectClaims).subject,
    ).toBe('a@b.c');
    expect(readIdToken(jwt({ iss: ISSUER, aud: ['other', 'sigstore'], exp, sub: 'x' }), expectClaims).subject).toBe(
      'x',
    );
  });

  it('throws only KeylessError for any text and any claims', () => {
    fc.assert(
      fc.property(fc.string(), (s) => onlyKeyless(() => readIdToken(s, expectClaims))),
      { numRuns: fuzzRuns(500) },
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            iss: fc.oneof(fc.constant(ISSUER), fc.jsonValue()),
            aud: fc.jsonValue(),
            exp: fc.jsonValue(),
            email: fc.jsonValue(),
            sub: fc.jsonValue(),
            nonce: fc.jsonValue(),
          },
          { requiredKeys: [] },
        ),
        (claims) => onlyKeyless(() => readIdToken(jwt(claims), { ...expectClaims, nonce: 'n' })),
      ),
      { numRuns: fuzzRuns(500) },
    );
  });
});

describe('login callbacks', () => {
  it('throws only KeylessError for any query', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (q, state) => onlyKeyless(() => readCallback(q, { state }))),
      { numRuns: fuzzRuns(500) },
    );
  });

  it('PKCE pairs are fresh, 43 characters, S256 of the verifier', async () => {
    const a = pkcePair();
    const b = pkcePair();
    expect(a.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.verifier).not.toBe(b.verifier);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(a.verifier) as BufferSource));
    expect(a.challenge).toBe(toBase64Url(digest));
  });
});

describe("Fulcio's answers", () => {
  it('throw only KeylessError, whatever the status and body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 200, max: 599 }),
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc
            .array(fc.oneof(fc.string(), fc.constant('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')))
            .map((certificates) => JSON.stringify({ signedCertificateEmbeddedSct: { chain: { certificates } } })),
        ),
        async (status, body) => {
          const fetchLike = async () => new Response(body, { status });
          try {
            await requestSigningCertificate(fetchLike, {
              url: 'https://fulcio.example',
              idToken: 'x',
              spki: new Uint8Array(91),
              curve: 'P-256',
              proof: new Uint8Array(70),
              root,
            });
            expect.unreachable('an answer with no certificate for our key was accepted');
          } catch (e) {
            expect(e).toBeInstanceOf(KeylessError);
          }
        },
      ),
      { numRuns: fuzzRuns(300) },
    );
  });
});

/**
 * Verification links (shared/cosign/link.ts): the canonical link parses back to what built
 * it, for any reference, key, identity rule and annotations (fast-check); links written by hand
 * (a PEM key, percent-encoded by a form, a whole-encoded annotation list) read as meant; broken
 * links are refused with VERIFY_LINK_INVALID. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerificationError, KeyError } from '../../../../shared/errors.ts';
import { toBase64Url } from '../../../../shared/encoding/base64.ts';
import { publicKeyPem } from '../../../../shared/crypto/keys.ts';
import { exportSpki, generateEcdsaKeyPair } from '../../../../shared/crypto/webcrypto.ts';
import type { IdentityRule } from '../../../../shared/cosign/identity.ts';
import {
  decodeAnnotations,
  encodeAnnotations,
  parseVerificationLink,
  verificationLink,
} from '../../../../shared/cosign/link.ts';

const spki = await exportSpki((await generateEcdsaKeyPair('P-256', true)).publicKey);
const DIGEST = `sha256:${'ab'.repeat(32)}`;

const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/).filter((s) => s.length <= 20);
const host = fc.constantFrom('localhost:5000', 'registry.example.com', 'ghcr.io', '127.0.0.1:8443', 'docker.io');
const repository = fc.array(component, { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const tag = fc.stringMatching(/^[\w][\w.-]{0,20}$/);
const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
const pinnedImage = fc
  .tuple(host, repository, fc.option(tag, { nil: undefined }), digest)
  .map(([h, r, t, d]) => `${h}/${h === 'docker.io' && !r.includes('/') ? `library/${r}` : r}${t ? `:${t}` : ''}@${d}`);
const identityRule: fc.Arbitrary<IdentityRule> = fc.oneof(
  fc.constantFrom<IdentityRule>(
    { type: 'ignore' },
    { type: 'matchRepoDigestOrExact' },
    { type: 'matchExact' },
    { type: 'matchRepository' },
  ),
  fc
    .tuple(host, repository, tag)
    .map(([h, r, t]): IdentityRule => ({ type: 'exactReference', dockerReference: `${h}/${r}:${t}` })),
  fc
    .tuple(host, repository)
    .map(([h, r]): IdentityRule => ({ type: 'exactRepository', dockerRepository: `${h}/${r}` })),
  fc.tuple(host, repository, host, repository).map(([h1, r1, h2, r2]): IdentityRule => ({
    type: 'remapIdentity',
    prefix: `${h1}/${r1}`,
    signedPrefix: `${h2}/${r2}`,
  })),
);
const annotations = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k.trim() === k && k !== '__proto__'),
  fc.string({ maxLength: 16 }),
  { maxKeys: 4 },
);

describe('verification links', () => {
  it('round trip: what verificationLink builds, parseVerificationLink reads back', () => {
    fc.assert(
      fc.property(pinnedImage, identityRule, annotations, fc.boolean(), (image, identity, ann, all) => {
        const link = verificationLink('https://verify.example', {
          image,
          spki,
          identity,
          annotations: ann,
          requireEveryPlatform: all,
        });
        expect(link.startsWith('https://verify.example/#/verify?image=')).toBe(true);
        const parsed = parseVerificationLink(link);
        expect(parsed.image).toBe(image);
        expect(parsed.spki).toEqual(spki);
        expect(parsed.identity).toEqual(identity);
        expect(parsed.identityGiven).toBe(identity.type !== 'ignore');
        expect(parsed.annotations).toEqual(ann);
        expect(parsed.requireEveryPlatform).toBe(all);
      }),
      { numRuns: 300 },
    );
  });

  it('annotation lists survive commas, equals signs, percent signs and non-ASCII', () => {
    fc.assert(
      fc.property(annotations, (ann) => {
        expect(decodeAnnotations(encodeAnnotations(ann))).toEqual(ann);
      }),
    );
    const tricky = { 'a,b': 'c=d', 'e%': 'f+g h', ключ: 'значение' };
    expect(decodeAnnotations(encodeAnnotations(tricky))).toEqual(tricky);
  });

  it('is canonical: the key as base64url SPKI, the image normalised, identity left out when ignored', () => {
    const link = verificationLink('http://localhost:8080/some/page?x=1', {
      image: `alpine:3.20@${DIGEST}`,
      spki,
      annotations: { b: '2', a: '1' },
    });
    expect(link).toBe(
      `http://localhost:8080/#/verify?image=${encodeURIComponent(`docker.io/library/alpine:3.20@${DIGEST}`)}&key=${toBase64Url(spki)}&annotations=a=1,b=2`,
    );
  });

  it('refuses to build a link for an image that is not pinned to a digest', () => {
    expect(() => verificationLink('http://localhost', { image: 'localhost:5000/app:v1', spki })).toThrow(
      expect.objectContaining({ code: 'VERIFY_LINK_INVALID' }),
    );
  });

  it('reads a hand-written link with a PEM key, url-encoded or form-encoded', () => {
    const pem = publicKeyPem(spki);
    const image = `localhost:5000/app@${DIGEST}`;
    const a = parseVerificationLink(`#/verify?image=${encodeURIComponent(image)}&key=${encodeURIComponent(pem)}`);
    expect(a.spki).toEqual(spki);
    expect(a.identity).toEqual({ type: 'ignore' });
    expect(a.identityGiven).toBe(false);
    const form = new URLSearchParams({ image, key: pem, identity: 'matchRepository' }).toString();
    const b = parseVerificationLink(`/verify?${form}`);
    expect(b.spki).toEqual(spki);
    expect(b.identity).toEqual({ type: 'matchRepository' });
    const c = parseVerificationLink(
      `/verify?image=${image}&key=${toBase64Url(spki)}&annotations=${encodeURIComponent('team=blue,env=prod')}`,
    );
    expect(c.annotations).toEqual({ team: 'blue', env: 'prod' });
  });

  it('reads the parameters of each identity mode', () => {
    const base = `/verify?image=localhost:5000/app:v1&key=${toBase64Url(spki)}`;
    expect(
      parseVerificationLink(`${base}&identity=exactReference&dockerReference=localhost:5000/app:v1`).identity,
    ).toEqual({ type: 'exactReference', dockerReference: 'localhost:5000/app:v1' });
    expect(
      parseVerificationLink(`${base}&identity=exactRepository&dockerRepository=localhost:5000/other`).identity,
    ).toEqual({ type: 'exactRepository', dockerRepository: 'localhost:5000/other' });
    expect(
      parseVerificationLink(
        `${base}&identity=remapIdentity&prefix=localhost:5000&signedPrefix=registry.example.com/mirror`,
      ).identity,
    ).toEqual({ type: 'remapIdentity', prefix: 'localhost:5000', signedPrefix: 'registry.example.com/mirror' });
  });

  it('refuses broken links with a reason', () => {
    const key = toBase64Url(spki);
    const cases: [string, string][] = [
      [`/keys?image=a&key=${key}`, 'VERIFY_LINK_INVALID'],
      [`/verify?key=${key}`, 'VERIFY_LINK_INVALID'],
      ['/verify?image=localhost:5000/app:v1', 'VERIFY_LINK_INVALID'],
      [`/verify?image=localhost:5000/app:v1&key=${key}&identity=matchEverything`, 'VERIFY_LINK_INVALID'],
      [`/verify?image=localhost:5000/app:v1&key=${key}&identity=exactReference`, 'VERIFY_POLICY_INVALID'],
      [
        `/verify?image=localhost:5000/app:v1&key=${key}&identity=exactReference&dockerReference=a/b`,
        'VERIFY_POLICY_INVALID',
      ],
      [
        `/verify?image=localhost:5000/app:v1&key=${key}&identity=remapIdentity&prefix=&signedPrefix=x`,
        'VERIFY_POLICY_INVALID',
      ],
      [`/verify?image=localhost:5000/app:v1&key=${key}&annotations=novalue`, 'VERIFY_LINK_INVALID'],
      [`/verify?image=localhost:5000/app:v1&key=${key}&platforms=some`, 'VERIFY_LINK_INVALID'],
      [`/verify?image=localhost:5000/app:v1&key=%E0%A4%A`, 'VERIFY_LINK_INVALID'],
      ['/verify?image=localhost:5000/app:v1&key=bm90IGEga2V5', 'KEY_DER_INVALID'],
    ];
    for (const [link, code] of cases) {
      let error: unknown;
      try {
        parseVerificationLink(link);
      } catch (e) {
        error = e;
      }
      expect(error, link).toBeInstanceOf(code.startsWith('KEY') ? KeyError : VerificationError);
      expect((error as VerificationError).code, link).toBe(code);
    }
  });
});

describe('annotations in links', () => {
  it('an annotation named "__proto__" is kept as an annotation, not as the prototype', () => {
    const got = decodeAnnotations('__proto__=x,a=1');
    expect(Object.keys(got)).toEqual(['__proto__', 'a']);
    expect(got).toEqual(JSON.parse('{"__proto__":"x","a":"1"}'));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });
});

describe('containersPolicy in links', () => {
  it('any policy text (unicode included) survives the link, and no key is needed with it', () => {
    fc.assert(
      fc.property(pinnedImage, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }), (image, text) => {
        const link = verificationLink('https://example.test', { image, containersPolicy: text });
        expect(link).toMatch(/&containersPolicy=[A-Za-z0-9_-]+$/);
        const parsed = parseVerificationLink(link);
        expect(parsed.containersPolicy).toBe(text);
        expect(parsed.spki).toBeNull();
      }),
    );
  });

  it.each(['containersPolicy=***', 'containersPolicy=_w', 'containersPolicy=AB=='])(
    'a value that is not base64url of UTF-8 is refused (%s)',
    (param) => {
      expect(() => parseVerificationLink(`#/verify?image=localhost:5000/app:v1&${param}`)).toThrow(
        expect.objectContaining({ code: 'VERIFY_LINK_INVALID' }),
      );
    },
  );
});

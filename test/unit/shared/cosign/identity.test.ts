/**
 * Identity rules (shared/cosign/identity.ts) against containers/image's semantics
 * (signature/policy_reference_match.go): property tests with fast-check over generated
 * references, then the cases skopeo 1.18 was seen to decide (the integration tests run skopeo
 * itself on the same rules). Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkIdentityRule,
  intendedReference,
  isValidRemapPrefix,
  matchIdentity,
  namedString,
  parseNamed,
  remapReference,
  type IdentityRule,
  type NamedReference,
} from '../../../../shared/cosign/identity.ts';
import { parseReference } from '../../../../shared/registry/reference.ts';

const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/).filter((s) => s.length <= 12);
const host = fc.constantFrom('localhost:5000', 'registry.example.com', 'ghcr.io', 'quay.io', '[::1]:5000');
const path = fc.array(component, { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const name = fc.tuple(host, path).map(([h, p]) => `${h}/${p}`);
const tag = fc.stringMatching(/^[\w][\w.-]{0,15}$/);
const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);
/** A reference with a tag, a digest, or neither (never both, as containers/image never holds both). */
const reference = fc
  .tuple(name, fc.option(tag, { nil: undefined }), fc.option(digest, { nil: undefined }))
  .map(([n, t, d]): NamedReference =>
    t !== undefined ? { name: n, tag: t } : d !== undefined ? { name: n, digest: d } : { name: n },
  );
const intended = reference.filter((r) => r.tag !== undefined || r.digest !== undefined);
const nameOnly = (r: NamedReference): boolean => r.tag === undefined && r.digest === undefined;
const match = (rule: IdentityRule, i: NamedReference, s: NamedReference | string): boolean =>
  matchIdentity(rule, i, typeof s === 'string' ? s : namedString(s)).match;

describe('identity rules, properties', () => {
  it('ignore (cosign) accepts everything, even text that is no reference', () => {
    fc.assert(fc.property(intended, fc.string(), (i, s) => match({ type: 'ignore' }, i, s)));
  });

  it('matchRepository: same repository, whatever the tag or digest', () => {
    fc.assert(
      fc.property(intended, reference, (i, s) => {
        expect(match({ type: 'matchRepository' }, i, s)).toBe(s.name === i.name);
        expect(match({ type: 'matchRepository' }, i, { ...s, name: i.name })).toBe(true);
      }),
    );
  });

  it('matchExact: exactly the same reference, never a repository-only identity', () => {
    fc.assert(
      fc.property(intended, reference, (i, s) => {
        expect(match({ type: 'matchExact' }, i, s)).toBe(!nameOnly(s) && namedString(s) === namedString(i));
        expect(match({ type: 'matchExact' }, i, i)).toBe(true);
      }),
    );
  });

  it('matchRepoDigestOrExact: the tag exactly when pulled by tag, the repository when pulled by digest', () => {
    fc.assert(
      fc.property(intended, reference, (i, s) => {
        const want = nameOnly(s) ? false : i.tag !== undefined ? namedString(s) === namedString(i) : s.name === i.name;
        expect(match({ type: 'matchRepoDigestOrExact' }, i, s)).toBe(want);
      }),
    );
  });

  it('references are compared normalised: docker.io/library/x is x', () => {
    fc.assert(
      fc.property(component, tag, (repo, t) => {
        const i = intendedReference(parseReference(`${repo}:${t}`));
        expect(i).toEqual({ name: `docker.io/library/${repo}`, tag: t });
        for (const rule of ['matchExact', 'matchRepoDigestOrExact', 'matchRepository'] as const) {
          expect(match({ type: rule }, i, `${repo}:${t}`)).toBe(true);
          expect(match({ type: rule }, i, `docker.io/library/${repo}:${t}`)).toBe(true);
          expect(match({ type: rule }, i, `index.docker.io/library/${repo}:${t}`)).toBe(true);
        }
      }),
    );
  });

  it('exactReference and exactRepository ignore the image verified', () => {
    fc.assert(
      fc.property(intended, intended, reference, (i, want, s) => {
        const ref = namedString(want);
        expect(match({ type: 'exactReference', dockerReference: ref }, i, s)).toBe(
          !nameOnly(s) && namedString(s) === ref,
        );
        expect(match({ type: 'exactRepository', dockerRepository: want.name }, i, s)).toBe(s.name === want.name);
      }),
    );
  });

  it('remapIdentity with prefix = signedPrefix is matchRepoDigestOrExact', () => {
    fc.assert(
      fc.property(intended, reference, host, (i, s, h) => {
        const rule: IdentityRule = { type: 'remapIdentity', prefix: h, signedPrefix: h };
        expect(match(rule, i, s)).toBe(match({ type: 'matchRepoDigestOrExact' }, i, s));
      }),
    );
  });

  it('remapIdentity: an image under prefix matches a signature under signedPrefix with the same rest', () => {
    fc.assert(
      fc.property(host, path, host, path, path, tag, (h1, p1, h2, p2, rest, t) => {
        const prefix = `${h1}/${p1}`;
        const signedPrefix = `${h2}/${p2}`;
        const rule: IdentityRule = { type: 'remapIdentity', prefix, signedPrefix };
        const i: NamedReference = { name: `${prefix}/${rest}`, tag: t };
        expect(match(rule, i, `${signedPrefix}/${rest}:${t}`)).toBe(true);
        expect(remapReference(i, prefix, signedPrefix)).toEqual({ name: `${signedPrefix}/${rest}`, tag: t });
        if (prefix !== signedPrefix) expect(match(rule, i, `${prefix}/${rest}:${t}`)).toBe(false);
      }),
    );
  });

  it('remapIdentity matches a prefix only at a "/" boundary', () => {
    fc.assert(
      fc.property(host, component, component, tag, (h, a, b, t) => {
        const i: NamedReference = { name: `${h}/${a}${b}`, tag: t };
        // "host/ab" is not under the prefix "host/a": left as it is.
        expect(remapReference(i, `${h}/${a}`, 'other.example/x')).toEqual(i);
      }),
    );
  });

  it('never throws, whatever a payload claims', () => {
    const rules: IdentityRule[] = [
      { type: 'matchExact' },
      { type: 'matchRepoDigestOrExact' },
      { type: 'matchRepository' },
      { type: 'exactReference', dockerReference: 'localhost:5000/a:b' },
      { type: 'exactRepository', dockerRepository: 'localhost:5000/a' },
      { type: 'remapIdentity', prefix: 'localhost:5000', signedPrefix: 'example.com' },
    ];
    fc.assert(
      fc.property(intended, fc.string(), (i, s) => {
        for (const rule of rules) expect(typeof matchIdentity(rule, i, s).match).toBe('boolean');
      }),
    );
  });
});

describe('identity rules, cases', () => {
  const host = 'localhost:5000';
  const byTag = intendedReference(parseReference(`${host}/app:v1`));
  const byDigest = intendedReference(parseReference(`${host}/app@sha256:${'1'.repeat(64)}`));
  const cosignIdentity = `${host}/app`; // cosign writes the repository only
  const skopeoIdentity = `${host}/app:v1`; // skopeo writes repo:tag

  it('the image reference an identity is compared with', () => {
    expect(intendedReference(parseReference(`${host}/app`))).toEqual({ name: `${host}/app`, tag: 'latest' });
    expect(intendedReference(parseReference(`${host}/app:v1@sha256:${'2'.repeat(64)}`))).toEqual({
      name: `${host}/app`,
      tag: 'v1',
    });
  });

  it("cosign's repository-only identity: only matchRepository (and ignore) accept it, by tag or digest", () => {
    for (const i of [byTag, byDigest]) {
      expect(match({ type: 'matchRepository' }, i, cosignIdentity)).toBe(true);
      expect(match({ type: 'matchRepoDigestOrExact' }, i, cosignIdentity)).toBe(false);
      expect(match({ type: 'matchExact' }, i, cosignIdentity)).toBe(false);
    }
    expect(matchIdentity({ type: 'matchRepoDigestOrExact' }, byTag, cosignIdentity).detail).toContain(
      'matchRepository accepts',
    );
  });

  it("skopeo's repo:tag identity", () => {
    expect(match({ type: 'matchExact' }, byTag, skopeoIdentity)).toBe(true);
    expect(match({ type: 'matchRepoDigestOrExact' }, byTag, skopeoIdentity)).toBe(true);
    expect(match({ type: 'matchRepoDigestOrExact' }, byDigest, skopeoIdentity)).toBe(true);
    expect(match({ type: 'matchExact' }, byDigest, skopeoIdentity)).toBe(false);
    const otherTag = intendedReference(parseReference(`${host}/app:v2`));
    expect(match({ type: 'matchExact' }, otherTag, skopeoIdentity)).toBe(false);
    expect(matchIdentity({ type: 'matchExact' }, otherTag, skopeoIdentity).detail).toBe(
      `The signature names ${skopeoIdentity}; matchExact requires exactly ${host}/app:v2.`,
    );
    expect(match({ type: 'matchRepository' }, otherTag, skopeoIdentity)).toBe(true);
  });

  it('another repository never matches a repository rule', () => {
    expect(match({ type: 'matchRepository' }, byTag, `${host}/other:v1`)).toBe(false);
    expect(match({ type: 'exactRepository', dockerRepository: `${host}/other` }, byTag, `${host}/other:v1`)).toBe(true);
  });

  it('remapIdentity rewrites the image reference, and refuses a rewrite that is not canonical', () => {
    const rule: IdentityRule = { type: 'remapIdentity', prefix: 'mirror.local:5000/ns', signedPrefix: 'docker.io' };
    const i = intendedReference(parseReference('mirror.local:5000/ns/library/busybox:1'));
    expect(match(rule, i, 'busybox:1')).toBe(true);
    // docker.io/busybox is not canonical (docker.io/library/busybox is): Go's ParseNamed refuses it.
    expect(
      remapReference({ name: 'mirror.local:5000/ns/busybox', tag: '1' }, 'mirror.local:5000/ns', 'docker.io'),
    ).toBe(null);
  });

  it('checks rule parameters as containers/image does when it loads a policy', () => {
    const bad: IdentityRule[] = [
      { type: 'exactReference', dockerReference: `${host}/app` },
      { type: 'exactReference', dockerReference: 'Not A Reference' },
      { type: 'exactRepository', dockerRepository: '' },
      { type: 'remapIdentity', prefix: '', signedPrefix: host },
      { type: 'remapIdentity', prefix: `${host}/app:v1`, signedPrefix: host },
      { type: 'remapIdentity', prefix: host, signedPrefix: 'https://example.com' },
      { type: 'nothing' } as unknown as IdentityRule,
    ];
    for (const rule of bad)
      expect(() => checkIdentityRule(rule), JSON.stringify(rule)).toThrow(
        expect.objectContaining({ code: 'VERIFY_POLICY_INVALID' }),
      );
    expect(checkIdentityRule({ type: 'matchExact', dockerReference: 'ignored' } as unknown as IdentityRule)).toEqual({
      type: 'matchExact',
    });
    for (const p of ['example.com', 'example.com:5000', '[::1]:5000', 'example.com/ns', 'docker.io/library/busybox'])
      expect(isValidRemapPrefix(p), p).toBe(true);
    for (const p of ['', 'example.com/', 'example.com/ns:tag', 'example.com/NS', 'http://x'])
      expect(isValidRemapPrefix(p), p).toBe(false);
  });

  it('parseNamed normalises as ParseNormalizedNamed', () => {
    expect(parseNamed('alpine')).toEqual({ name: 'docker.io/library/alpine' });
    expect(namedString(parseNamed(`${host}/a/b:c@sha256:${'3'.repeat(64)}`))).toBe(
      `${host}/a/b:c@sha256:${'3'.repeat(64)}`,
    );
  });
});

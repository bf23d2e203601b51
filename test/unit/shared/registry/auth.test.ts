/** WWW-Authenticate parsing and the token cache (Node and Chromium). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../../shared/errors.ts';
import { AuthCache, parseChallenges, readTokenResponse } from '../../../../shared/registry/auth.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

describe('parseChallenges', () => {
  it('reads Docker Hub and distribution challenges', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        },
      },
    ]);
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
    expect(parseChallenges('Basic realm=x, Bearer realm="https://a/t", error="invalid_token"')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'https://a/t', error: 'invalid_token' } },
    ]);
    expect(parseChallenges('Bearer realm="a \\"quoted\\" realm"')[0]!.params.realm).toBe('a "quoted" realm');
  });
  it.each(['', '   ', '=x', 'Bearer realm="unterminated', ','])('refuses %j with REGISTRY_AUTH_FAILED', (h) => {
    expect(() => parseChallenges(h)).toThrow(RegistryError);
  });
  it('round-trips generated challenges and never throws anything but RegistryError', () => {
    const value = fc.string({ maxLength: 30 }).filter((s) => !s.includes('\\'));
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/);
    fc.assert(
      fc.property(
        fc.constantFrom('Bearer', 'Basic'),
        fc.dictionary(name, value, { minKeys: 1, maxKeys: 4 }),
        (scheme, params) => {
          const header =
            `${scheme} ` +
            Object.entries(params)
              .map(([k, v]) => `${k}="${v.replace(/"/g, '\\"')}"`)
              .join(',');
          expect(parseChallenges(header)).toEqual([{ scheme: scheme.toLowerCase(), params }]);
        },
      ),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (h) => {
        try {
          parseChallenges(h);
        } catch (e) {
          expect(e).toBeInstanceOf(RegistryError);
        }
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

describe('tokens', () => {
  it('reads token or access_token, defaulting to 60 s', () => {
    expect(readTokenResponse({ token: 't', expires_in: 300 })).toEqual({ token: 't', expiresIn: 300 });
    expect(readTokenResponse({ access_token: 'a' })).toEqual({ token: 'a', expiresIn: 60 });
    expect(() => readTokenResponse({})).toThrow(RegistryError);
    // Found by npm run fuzz: such a token was sent and failed as "Could not reach" the registry.
    for (const token of ['a\nb', 'a b', '€', 'a\u0000']) {
      expect(() => readTokenResponse({ token })).toThrow(
        expect.objectContaining({
          code: 'REGISTRY_AUTH_FAILED',
          message: expect.stringMatching(/characters an Authorization header cannot carry/),
        }),
      );
    }
  });
  it('caches per registry and scope until shortly before expiry', () => {
    const c = new AuthCache();
    c.set('r', 'repository:a:pull', 'Bearer x', 60, 0);
    expect(c.get('r', 'repository:a:pull', 1000)).toBe('Bearer x');
    expect(c.get('r', 'repository:b:pull', 1000)).toBeUndefined();
    expect(c.get('r', 'repository:a:pull', 51_000)).toBeUndefined();
    c.set('r', '*', 'Basic y', 3600, 0);
    expect(c.get('r', 'repository:b:pull', 1000)).toBe('Basic y');
    c.clear('r');
    expect(c.get('r', 'repository:b:pull', 1000)).toBeUndefined();
  });
});

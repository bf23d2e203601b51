/** Image reference parsing against distribution/reference's rules (Node and Chromium). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../../shared/errors.ts';
import { apiHost, formatReference, parseReference } from '../../../../shared/registry/reference.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['library/alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['index.docker.io/foo/bar', { registry: 'docker.io', repository: 'foo/bar' }],
    ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['user/repo:tag', { registry: 'docker.io', repository: 'user/repo', tag: 'tag' }],
    ['localhost/repo', { registry: 'localhost', repository: 'repo' }],
    ['localhost:5000/a/b:v1', { registry: 'localhost:5000', repository: 'a/b', tag: 'v1' }],
    ['127.0.0.1:5000/a', { registry: '127.0.0.1:5000', repository: 'a' }],
    ['[::1]:5000/a/b', { registry: '[::1]:5000', repository: 'a/b' }],
    ['ghcr.io/o/r@' + D, { registry: 'ghcr.io', repository: 'o/r', digest: D }],
    ['ghcr.io/o/r:v1@' + D, { registry: 'ghcr.io', repository: 'o/r', tag: 'v1', digest: D }],
    ['Registry.Example.com/a__b/c-d.e', { registry: 'Registry.Example.com', repository: 'a__b/c-d.e' }],
    ['example.com:443/x---y', { registry: 'example.com:443', repository: 'x---y' }],
  ])('%s', (text, expected) => {
    expect(parseReference(text)).toEqual(expected);
  });

  it.each([
    ['', 'empty'],
    ['Alpine', 'lower case'],
    ['docker.io/Library/alpine', 'lower case'],
    ['a b', 'spaces'],
    ['alpine:', 'tag'],
    ['alpine:-x', 'tag'],
    ['alpine:' + 'x'.repeat(129), 'tag'],
    ['alpine@sha256:abc', 'digest'],
    ['alpine@sha256:' + 'A'.repeat(64), 'hex'],
    ['a'.repeat(64), 'hex string'],
    ['repo//x', 'repository name'],
    ['repo/-x', 'repository name'],
    ['repo_', 'repository name'],
    ['ex_ample.com:5000/x', 'registry host'],
    ['host:port/x', 'registry host'],
    ['ghcr.io/' + 'a/'.repeat(130) + 'a', 'longer than'],
  ])('refuses %j (%s)', (text, why) => {
    expect(() => parseReference(text)).toThrow(RegistryError);
    expect(() => parseReference(text)).toThrow(why);
  });

  const component = fc
    .stringMatching(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/)
    .filter((s) => s.length > 0 && s.length < 30);
  const registry = fc.oneof(
    fc.constant('docker.io'),
    fc.constant('localhost:5000'),
    fc.constant('ghcr.io'),
    fc
      .tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/), fc.integer({ min: 1, max: 65535 }))
      .map(([h, p]) => `${h}.example:${p}`),
  );
  const tag = fc.stringMatching(/^[\w][\w.-]{0,20}$/);
  const digest = fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`);

  it('format → parse is the identity on normalised references', () => {
    fc.assert(
      fc.property(
        registry,
        fc.array(component, { minLength: 2, maxLength: 4 }),
        fc.option(tag),
        fc.option(digest),
        (reg, parts, t, d) => {
          const ref = {
            registry: reg,
            repository: parts.join('/'),
            ...(t ? { tag: t } : {}),
            ...(d ? { digest: d } : {}),
          };
          expect(parseReference(formatReference(ref))).toEqual(ref);
        },
      ),
    );
  });
  it('never throws anything but RegistryError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          parseReference(s);
        } catch (e) {
          expect(e).toBeInstanceOf(RegistryError);
        }
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

it('Docker Hub API host', () => {
  expect(apiHost('docker.io')).toBe('registry-1.docker.io');
  expect(apiHost('ghcr.io')).toBe('ghcr.io');
});

/**
 * Fuzzing of what the server reads from requests: relay request targets (hosts, ports, IP
 * literals, paths and queries) give a target or RelayError RELAY_BAD_REQUEST; the embedded
 * registry's repository names, digests and manifests (through app.request(), no socket) give a
 * DistributionError with its 4xx status, never a 500; lock requests with any body give a 4xx
 * LockError or a lock, never a 500. Inputs are arbitrary, or real ones edited (test/fuzz/mutate.ts).
 * `npm test` runs these at small counts; `npm run fuzz` at FUZZ_RUNS (10,000) with a time bound
 * per run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerError } from '../../../server/app.ts';
import { createLocks } from '../../../server/locks.ts';
import { DistributionError } from '../../../server/registry/errors.ts';
import { checkDigest, checkName } from '../../../server/registry/http.ts';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../server/registry/registry.ts';
import { parseIPv4, parseIPv6 } from '../../../server/relay/address.ts';
import { normaliseRelayOptions } from '../../../server/relay/config.ts';
import { parseAuthority, parseHost, parsePort } from '../../../server/relay/host.ts';
import { parseRelayTarget } from '../../../server/relay/target.ts';
import { RelayError } from '../../../shared/errors.ts';
import { MT } from '../../../shared/registry/mediatypes.ts';
import { mutatedText, outsideBytes, outsideText } from '../../fuzz/mutate.ts';
import { fuzzRuns } from '../../fuzz/runs.ts';

const RUNS = fuzzRuns(200);
const DIGEST = `sha256:${'0a'.repeat(32)}`;
const schemeFor = normaliseRelayOptions({ plainHttpRegistries: ['localhost:5000'] }).schemeFor;

describe('relay request targets', () => {
  const targets = [
    `/relay/ghcr.io/v2/org/app/manifests/v1`,
    `/relay/localhost:5000/v2/a/b/blobs/uploads/3f2a?_state=abc&digest=${DIGEST}`,
    `/relay/[::ffff:127.0.0.1]:443/v2/_catalog?n=10&last=x%2Fy`,
    `http://127.0.0.1:8080/relay/10.0.0.1/token?scope=repository:a/b:pull&service=r`,
  ];
  it('a target or RELAY_BAD_REQUEST, and hosts, ports and addresses read or null', () => {
    fc.assert(
      fc.property(outsideText(targets), (t) => {
        try {
          const r = parseRelayTarget(t, schemeFor);
          expect(r.path.startsWith('/')).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(RelayError);
          expect((e as RelayError).code).toBe('RELAY_BAD_REQUEST');
        }
        for (const part of [t, t.slice(7, 30)]) {
          parseHost(part);
          parseAuthority(part);
          parsePort(part);
          parseIPv4(part);
          parseIPv6(part);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('the embedded registry', () => {
  let dir: string;
  let reg: EmbeddedRegistry;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cosign-web-fuzz-'));
    reg = createEmbeddedRegistry({ dataDir: dir, maxUploadBytes: 64 * 1024, maxManifestBytes: 8192 });
  });
  afterAll(async () => {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('repository names and digests: accepted or a DistributionError', () => {
    fc.assert(
      fc.property(outsideText(['library/alpine', 'a/b-c/d_e.f', DIGEST, 'sha512:ab']), (t) => {
        for (const check of [checkName, checkDigest]) {
          try {
            check(t);
          } catch (e) {
            expect(e).toBeInstanceOf(DistributionError);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('manifests of any bytes and media type: stored or a 4xx with a distribution code, never a 500', async () => {
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociEmpty, digest: DIGEST, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: DIGEST, size: 2 }],
      subject: { mediaType: MT.ociManifest, digest: DIGEST, size: 10 },
      annotations: { a: 'b' },
    });
    const index = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] });
    const seeds = [manifest, index].map((s) => new TextEncoder().encode(s));
    const types = fc.constantFrom(MT.ociManifest, MT.ociIndex, MT.dockerManifest, '', 'text/plain');
    const tags = fc.oneof(fc.constant('v1'), mutatedText(['v1', DIGEST]));
    // Not vacuous: the registry answers this name, and an unmutated index is stored.
    const stored = await reg.app.request('http://localhost/v2/fuzz/app/manifests/seed', {
      method: 'PUT',
      headers: { 'content-type': MT.ociIndex },
      body: index,
    });
    expect(stored.status, await stored.clone().text()).toBe(201);
    await fc.assert(
      fc.asyncProperty(outsideBytes(seeds), types, tags, async (body, type, tag) => {
        const res = await reg.app.request(`http://localhost/v2/fuzz/app/manifests/${encodeURIComponent(tag)}`, {
          method: 'PUT',
          headers: type ? { 'content-type': type } : {},
          body: body as BodyInit,
        });
        expect(res.status, await res.clone().text()).toBeLessThan(500);
        if (res.status >= 400) expect(((await res.json()) as { errors: unknown[] }).errors.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('lock requests', () => {
  const app = new Hono()
    .route('/', createLocks({ waitMs: 1, maxHoldMs: 1000, relay: { localRegistries: ['localhost:5000'] } }))
    .onError(answerError);
  it('any body: a lock (then released) or a 4xx LockError, never a 500', async () => {
    const seeds = ['{"key":"localhost:5000/a/b:v1"}', '{"key":"k","token":"t"}'];
    // Not vacuous: the first seed names an allowed tag and takes the lock.
    const taken = await app.request('/acquire', { method: 'POST', body: seeds[0] });
    const { token } = (await taken.json()) as { token: string };
    expect(taken.status).toBe(200);
    await app.request('/release', { method: 'POST', body: JSON.stringify({ key: 'localhost:5000/a/b:v1', token }) });
    await fc.assert(
      fc.asyncProperty(outsideText(seeds), fc.constantFrom('/acquire', '/release'), async (body, path) => {
        const res = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const answer = res.status === 204 ? null : ((await res.json()) as { code?: string; token?: string });
        expect(res.status, JSON.stringify(answer)).not.toBe(500);
        if (res.status === 200 && answer?.token) {
          const { key } = JSON.parse(body) as { key: string };
          const done = await app.request('/release', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ key, token: answer.token }),
          });
          expect(done.status).toBe(204);
        } else if (res.status >= 400) {
          expect(answer?.code).toMatch(/^LOCK_/);
        }
      }),
      { numRuns: RUNS },
    );
  });
});

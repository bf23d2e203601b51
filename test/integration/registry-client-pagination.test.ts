/**
 * `Link` pagination of the registry client (shared/registry/client.ts) with the real pieces: the
 * embedded registry (server/registry/registry.ts, which pages tag lists with `n`, `last` and a
 * relative `Link`) holding a repository with 1,005 tags, listed directly and through the real
 * relay (which rewrites the Link to a relay path) with the client's `relayRouting`; and a loopback
 * registry that pages its OCI referrers answer the same way, through the relay. Everything listens
 * on 127.0.0.1.
 */
import type { ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { mkdtemp, rm } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../server/registry/registry.ts';
import { serveApp } from '../../server/serve.ts';
import { sha256Digest } from '../../shared/crypto/digest.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { RegistryClient, relayRouting, type RepoRef } from '../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../shared/registry/mediatypes.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';

const TAGS = 1005;
const REPO = 'paging/many';
const tagNames = Array.from({ length: TAGS }, (_, i) => `t${String(i).padStart(4, '0')}`);

/** 7 referrers served in pages of 3, each page linking to the next with a relative Link. */
const SUBJECT = sha256Digest(utf8('the subject'));
const referrerList: Descriptor[] = Array.from({ length: 7 }, (_, i) => ({
  mediaType: MT.ociManifest,
  digest: sha256Digest(utf8(`referrer ${i}`)),
  size: 200 + i,
  artifactType: MT.sigstoreBundle,
}));

function pagedReferrers(): Hono {
  const app = new Hono();
  app.get('/v2/:ns/:name/referrers/:digest', (c) => {
    if (c.req.param('digest') !== SUBJECT) return c.json({ errors: [{ code: 'MANIFEST_UNKNOWN' }] }, 404);
    const page = Number(c.req.query('page') ?? 0);
    const headers: Record<string, string> = { 'Content-Type': MT.ociIndex };
    if ((page + 1) * 3 < referrerList.length) {
      headers['Link'] =
        `</v2/${c.req.param('ns')}/${c.req.param('name')}/referrers/${SUBJECT}?page=${page + 1}>; rel="next"`;
    }
    const manifests = referrerList.slice(page * 3, page * 3 + 3);
    return c.body(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }), 200, headers);
  });
  return app;
}

interface Served {
  server: ServerType;
  host: string;
}

async function serve(app: Hono): Promise<Served> {
  const { server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  return { server, host: `127.0.0.1:${port}` };
}

function stop(s: Served): Promise<void> {
  (s.server as http.Server).closeAllConnections();
  return new Promise((resolve) => s.server.close(() => resolve()));
}

let dataDir: string;
let embedded: EmbeddedRegistry;
let registry: Served;
let referrersRegistry: Served;
let relay: Served;
const relayLines: string[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cosign-web-paging-it-'));
  embedded = createEmbeddedRegistry({ dataDir });
  // Filled in-process (no socket): one image under 1,005 tags.
  const filler = new RegistryClient({
    fetch: (input, init) => Promise.resolve(embedded.app.request(String(input), init)),
    scheme: () => 'http',
  });
  const repo: RepoRef = { registry: 'embedded.invalid', repository: REPO };
  const config = await filler.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
  const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [] }));
  for (const tag of tagNames) await filler.putManifest(repo, tag, manifest, MT.ociManifest);

  registry = await serve(embedded.app);
  referrersRegistry = await serve(pagedReferrers());
  const hosts = [registry.host, referrersRegistry.host];
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: { allowedRegistries: hosts, plainHttpRegistries: hosts, log: (l) => relayLines.push(l) },
  });
  relay = await serve(app);
}, 120_000);

afterAll(async () => {
  await stop(relay);
  await stop(referrersRegistry);
  await stop(registry);
  await embedded.close();
  await rm(dataDir, { recursive: true, force: true });
});

const direct = (): RegistryClient => new RegistryClient({ fetch: globalThis.fetch, scheme: () => 'http' });
const throughRelay = (): RegistryClient =>
  new RegistryClient({ fetch: globalThis.fetch, ...relayRouting(`http://${relay.host}`) });

function expectEveryTagOnce(tags: string[]): void {
  expect(tags.length).toBe(TAGS);
  expect(new Set(tags).size).toBe(TAGS);
  expect([...tags].sort()).toEqual(tagNames);
}

describe('listTags over 1,005 tags of the embedded registry (pages of 1,000)', () => {
  it('directly', async () => {
    expectEveryTagOnce(await direct().listTags({ registry: registry.host, repository: REPO }));
  });

  it('through the real relay, which rewrites the Link to a relay path', async () => {
    relayLines.length = 0;
    expectEveryTagOnce(await throughRelay().listTags({ registry: registry.host, repository: REPO }));
    const tagRequests = relayLines.filter((l) => l.includes(`/v2/${REPO}/tags/list `));
    expect(tagRequests.length).toBe(2);
    for (const l of tagRequests)
      expect(l).toMatch(new RegExp(`^relay GET ${registry.host} /v2/${REPO}/tags/list 200 `));
  });
});

describe('referrers answered in pages linked by Link', () => {
  const repo = (): RepoRef => ({ registry: referrersRegistry.host, repository: 'paging/referrers' });

  it('directly: the pages merged, in order', async () => {
    const refs = await direct().referrers(repo(), SUBJECT);
    expect(refs.via).toBe('api');
    expect(refs.descriptors).toEqual(referrerList);
  });

  it('through the real relay', async () => {
    relayLines.length = 0;
    const refs = await throughRelay().referrers(repo(), SUBJECT);
    expect(refs.via).toBe('api');
    expect(refs.descriptors).toEqual(referrerList);
    expect(relayLines.filter((l) => l.includes(`/referrers/${SUBJECT} 200 `)).length).toBe(3);
  });
});

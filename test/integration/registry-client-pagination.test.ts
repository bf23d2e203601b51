/**
 * `Link` pagination of the registry client (shared/registry/client.ts) with the real pieces: the
 * embedded registry (server/registry/registry.ts, which pages tag lists with `n`, `last` and a
 * relative `Link`) holding a repository with 1,005 tags, listed directly and through the real
 * relay (which rewrites the Link to a relay path) with the client's `relayRouting`; and a loopback
 * registry that pages its OCI referrers answer the same way, through the relay. Everything listens
 * on 127.0.0.1.
 */
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { sha256Digest } from '../../shared/crypto/digest.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { RegistryClient, relayRouting, type RepoRef } from '../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../shared/registry/mediatypes.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';
import { useRig, type Served } from './rig-context.ts';

const rig = useRig();

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

let registry: Served;
let referrersRegistry: Served;
let relay: Served;
const relayLines: string[] = [];

beforeAll(async () => {
  const embedded = await rig.serveEmbeddedRegistry('cosign-web-paging-it-');
  registry = embedded;
  // Filled in-process (no socket): one image under 1,005 tags.
  const filler = new RegistryClient({
    fetch: (input, init) => Promise.resolve(embedded.registry.app.request(String(input), init)),
    scheme: () => 'http',
  });
  const repo: RepoRef = { registry: 'localhost', repository: REPO };
  const config = await filler.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
  const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [] }));
  for (const tag of tagNames) await filler.putManifest(repo, tag, manifest, MT.ociManifest);

  referrersRegistry = await rig.serve(pagedReferrers());
  const hosts = [registry.host, referrersRegistry.host];
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: {
      allowedRegistries: hosts,
      privateRegistries: hosts,
      plainHttpRegistries: hosts,
      log: (l) => relayLines.push(l),
    },
  });
  relay = await rig.serve(app);
}, 120_000);

const direct = (): RegistryClient => new RegistryClient({ fetch: globalThis.fetch, scheme: () => 'http' });
const throughRelay = (): RegistryClient =>
  new RegistryClient({ fetch: globalThis.fetch, ...relayRouting(relay.origin) });

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

/**
 * The registry client (shared/registry/client.ts) against small registries made here as in-process
 * Hono apps, in Node and in Chromium: `Link` pagination of tag lists and referrers (direct and with
 * relay-style routing), answers that are not JSON, digests that are not sha256, and conditional
 * manifest writes (ETag / If-Match, 412). The real relay in front of the embedded registry is in
 * test/integration/registry-client-pagination.test.ts.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { RegistryError } from '../../../../shared/errors.ts';
import {
  RegistryClient,
  relayRouting,
  type RegistryClientOptions,
  type RepoRef,
} from '../../../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../../../shared/registry/mediatypes.ts';

const HOST = 'registry.test';
const repo: RepoRef = { registry: HOST, repository: 'team/app' };
const SUBJECT = sha256Digest(utf8('subject'));

/** A request as the fake registry saw it. */
interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/** A Hono app standing in for a registry, with every request recorded. */
function fakeRegistry(): { app: Hono; seen: Seen[] } {
  const app = new Hono();
  const seen: Seen[] = [];
  app.use('*', async (c, next) => {
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((v, k) => (headers[k] = v));
    seen.push({ method: c.req.method, url: c.req.url, headers });
    await next();
  });
  return { app, seen };
}

function clientOf(app: Hono, options: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    fetch: (input, init) => Promise.resolve(app.request(input instanceof Request ? input : String(input), init)),
    scheme: () => 'http',
    ...options,
  });
}

async function rejection(p: Promise<unknown>): Promise<RegistryError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(RegistryError);
  return e as RegistryError;
}

const tagNames = (n: number): string[] => Array.from({ length: n }, (_, i) => `t${String(i).padStart(4, '0')}`);

/** Serves `tags` in pages of at most `n` (the request's `n` when smaller), with `Link` as `link` writes it. */
function serveTags(app: Hono, path: string, tags: string[], link: (query: string) => string, pageSize = 3): void {
  app.get(path, (c) => {
    const n = Math.min(Number(c.req.query('n') ?? pageSize), pageSize);
    const last = c.req.query('last');
    const rest = last === undefined ? tags : tags.filter((t) => t > last);
    const page = rest.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rest.length > n)
      headers.link = `<${link(`n=${n}&last=${encodeURIComponent(page[page.length - 1]!)}`)}>; rel="next"`;
    return c.json({ name: repo.repository, tags: page }, 200, headers);
  });
}

describe('listTags follows Link pagination', () => {
  it('direct, with a relative Link (as distribution and the embedded registry write it)', async () => {
    const { app, seen } = fakeRegistry();
    const all = tagNames(10);
    serveTags(app, '/v2/team/app/tags/list', all, (q) => `/v2/team/app/tags/list?${q}`);
    expect(await clientOf(app).listTags(repo)).toEqual(all);
    expect(seen.map((s) => new URL(s.url).pathname)).toEqual(Array(4).fill('/v2/team/app/tags/list'));
  });

  it('direct, with an absolute Link on the same registry', async () => {
    const { app } = fakeRegistry();
    const all = tagNames(7);
    serveTags(app, '/v2/team/app/tags/list', all, (q) => `http://${HOST}/v2/team/app/tags/list?${q}`);
    expect(await clientOf(app).listTags(repo)).toEqual(all);
  });

  it('through relay-style routing: a Link the relay rewrote is resolved against the URL fetched', async () => {
    // What the relay answers: the registry's Link rewritten to a relay path on the page's origin.
    const { app, seen } = fakeRegistry();
    const all = tagNames(8);
    serveTags(app, `/relay/${HOST}/v2/team/app/tags/list`, all, (q) => `/relay/${HOST}/v2/team/app/tags/list?${q}`);
    const client = clientOf(app, relayRouting('http://page.test'));
    expect(await client.listTags(repo)).toEqual(all);
    for (const s of seen) expect(new URL(s.url).pathname).toBe(`/relay/${HOST}/v2/team/app/tags/list`);
    expect(seen.length).toBe(3);
  });

  it('never follows a Link off the registry, and never asks for the same page twice', async () => {
    const off = fakeRegistry();
    serveTags(
      off.app,
      '/v2/team/app/tags/list',
      tagNames(6),
      (q) => `http://elsewhere.test/v2/team/app/tags/list?${q}`,
    );
    expect(await clientOf(off.app).listTags(repo)).toEqual(tagNames(3));
    expect(off.seen.length).toBe(1);

    // A registry whose second page links to itself.
    const loop = fakeRegistry();
    loop.app.get('/v2/team/app/tags/list', (c) =>
      c.json({ tags: [c.req.query('last') === undefined ? 'a' : 'b'] }, 200, {
        link: '</v2/team/app/tags/list?n=1000&last=a>; rel="next"',
      }),
    );
    expect(await clientOf(loop.app).listTags(repo)).toEqual(['a', 'b']);
    expect(loop.seen.length).toBe(2);
  });

  it('reads rel="next" among other Link relations', async () => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/tags/list', (c) =>
      c.req.query('last') === undefined
        ? c.json({ tags: ['a'] }, 200, {
            link: '</v2/team/app/tags/list?first=1>; rel="first", </v2/team/app/tags/list?n=1&last=a>; rel="next"',
          })
        : c.json({ tags: ['b'] }),
    );
    expect(await clientOf(app).listTags(repo)).toEqual(['a', 'b']);
  });
});

describe('referrers follows Link pagination and merges the pages', () => {
  const descriptor = (i: number): Descriptor => ({
    mediaType: MT.ociManifest,
    digest: sha256Digest(utf8(`referrer ${i}`)),
    size: 100 + i,
    artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  });
  const all = Array.from({ length: 7 }, (_, i) => descriptor(i));

  function serveReferrers(app: Hono, prefix: string, filtered: (page: number) => boolean = () => false): void {
    app.get(`${prefix}/v2/team/app/referrers/:digest`, (c) => {
      const page = Number(c.req.query('page') ?? 0);
      const headers: Record<string, string> = { 'content-type': MT.ociIndex };
      if (page < 2) headers.link = `<${prefix}/v2/team/app/referrers/${SUBJECT}?page=${page + 1}>; rel="next"`;
      if (filtered(page)) headers['oci-filters-applied'] = 'artifactType';
      const manifests = all.slice(page * 3, page * 3 + 3);
      return c.body(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }), 200, headers);
    });
  }

  it('direct: every page, in order, and the filter counts only when every page applied it', async () => {
    const { app, seen } = fakeRegistry();
    serveReferrers(app, '', (page) => page !== 1);
    const refs = await clientOf(app).referrers(repo, SUBJECT, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    expect(refs).toEqual({ descriptors: all, via: 'api', filtersApplied: false });
    expect(seen.length).toBe(3);
  });

  it('through relay-style routing', async () => {
    const { app, seen } = fakeRegistry();
    serveReferrers(app, `/relay/${HOST}`, () => true);
    const refs = await clientOf(app, relayRouting('http://page.test')).referrers(repo, SUBJECT, 'x');
    expect(refs).toEqual({ descriptors: all, via: 'api', filtersApplied: true });
    expect(seen.map((s) => new URL(s.url).pathname)).toEqual(
      Array(3).fill(`/relay/${HOST}/v2/team/app/referrers/${SUBJECT}`),
    );
  });

  it('a later page that is not an OCI index is REGISTRY_BAD_RESPONSE', async () => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/referrers/:digest', (c) =>
      c.req.query('page') === undefined
        ? c.body(JSON.stringify({ schemaVersion: 2, manifests: [] }), 200, {
            'content-type': MT.ociIndex,
            link: `</v2/team/app/referrers/${SUBJECT}?page=1>; rel="next"`,
          })
        : c.html('<html>maintenance</html>'),
    );
    const e = await rejection(clientOf(app).referrers(repo, SUBJECT));
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
  });
});

describe('answers that are not JSON are REGISTRY_BAD_RESPONSE with a sentence', () => {
  const garbage: [string, string, string][] = [
    ['an HTML page', 'text/html; charset=utf-8', '<!doctype html><html><body>Sign in</body></html>'],
    ['bytes that are not UTF-8', 'application/json', '\u00ff\u00fe{'],
    ['truncated JSON', 'application/json', '{"tags": ["a", "b"'],
    ['a JSON array', 'application/json', '["a"]'],
    ['plain text', 'text/plain', 'upstream connect error or disconnect/reset before headers'],
  ];

  it.each(garbage)('listTags given %s', async (_name, type, body) => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/tags/list', () => new Response(body, { headers: { 'content-type': type } }));
    const e = await rejection(clientOf(app).listTags(repo));
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(e.message).toContain(HOST);
    expect(e.message).toContain('tags of team/app');
    expect(e.message).not.toMatch(/JSON\.parse|Unexpected token|position \d/);
  });

  it.each(garbage)('referrers given %s as an OCI index', async (_name, _type, body) => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/referrers/:digest', () => new Response(body, { headers: { 'content-type': MT.ociIndex } }));
    const e = await rejection(clientOf(app).referrers(repo, SUBJECT));
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(e.message).toContain(HOST);
    expect(e.message).toContain(`referrers of ${SUBJECT}`);
    expect(e.message).not.toMatch(/JSON\.parse|Unexpected token|position \d/);
  });

  it('an HTML page is named as such', async () => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/tags/list', (c) => c.html('<html><body>Welcome to nginx!</body></html>'));
    const e = await rejection(clientOf(app).listTags(repo));
    expect(e.message).toMatch(/web page/);
  });

  it('a tag list whose tags are not a list, or a referrers index whose manifests are not, is refused', async () => {
    const { app } = fakeRegistry();
    app.get('/v2/team/app/tags/list', (c) => c.json({ tags: 'latest' }));
    app.get('/v2/team/app/referrers/:digest', (c) =>
      c.body(JSON.stringify({ manifests: { digest: 'x' } }), 200, { 'content-type': MT.ociIndex }),
    );
    expect((await rejection(clientOf(app).listTags(repo))).code).toBe('REGISTRY_BAD_RESPONSE');
    expect((await rejection(clientOf(app).referrers(repo, SUBJECT))).code).toBe('REGISTRY_BAD_RESPONSE');
  });
});

describe('a digest that is not sha256:<64 hex> is REGISTRY_UNSUPPORTED everywhere, before any request', () => {
  const bad = [
    'sha512:' + 'a'.repeat(128),
    'sha256:' + 'A'.repeat(64),
    'sha256:' + 'a'.repeat(63),
    'sha256:../../other/blobs/x',
    'latest',
    '',
  ];
  const session = { repo, location: new URL(`http://${HOST}/v2/team/app/blobs/uploads/1`), offset: 0 };
  const calls: [string, (c: RegistryClient, d: string) => Promise<unknown>][] = [
    ['getBlob', (c, d) => c.getBlob(repo, d)],
    ['openBlob', (c, d) => c.openBlob(repo, d)],
    ['fetchBlob', (c, d) => c.fetchBlob(repo, d)],
    ['blobExists', (c, d) => c.blobExists(repo, d)],
    ['mountBlob', (c, d) => c.mountBlob(repo, d, 'team/other')],
    ['finishUpload', (c, d) => c.finishUpload(session, d)],
    ['referrers', (c, d) => c.referrers(repo, d)],
  ];
  it.each(calls)('%s', async (_name, call) => {
    const { app, seen } = fakeRegistry();
    const client = clientOf(app);
    for (const d of bad) {
      const e = await rejection(call(client, d));
      expect(e.code).toBe('REGISTRY_UNSUPPORTED');
      expect(e.message).toMatch(/^Only sha256 digests are supported/);
    }
    expect(seen).toEqual([]);
  });
});

describe('conditional manifest writes', () => {
  const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, layers: [] }));
  const digest = sha256Digest(manifest);

  /** A registry holding one tag whose ETag is `"<digest>"`, honouring If-Match on PUT. */
  function conditional(): { app: Hono; seen: Seen[]; current: { etag: string } } {
    const { app, seen } = fakeRegistry();
    const current = { etag: '"sha256:old"' };
    app.get('/v2/team/app/manifests/:ref', (c) =>
      c.body(manifest as Uint8Array<ArrayBuffer>, 200, {
        'content-type': MT.ociManifest,
        'docker-content-digest': digest,
        etag: current.etag,
      }),
    );
    app.put('/v2/team/app/manifests/:ref', async (c) => {
      const ifMatch = c.req.header('if-match');
      if (ifMatch !== undefined && ifMatch !== current.etag) {
        return c.json({ errors: [{ code: 'PRECONDITION_FAILED', message: 'etag mismatch' }] }, 412);
      }
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      current.etag = `"${sha256Digest(bytes)}"`;
      return c.body(null, 201, { 'docker-content-digest': sha256Digest(bytes) });
    });
    return { app, seen, current };
  }

  it('getManifest returns the ETag header verbatim, or null when there is none', async () => {
    const { app } = conditional();
    expect((await clientOf(app).getManifest(repo, 'v1')).etag).toBe('"sha256:old"');
    const bare = fakeRegistry();
    bare.app.get('/v2/team/app/manifests/:ref', (c) =>
      c.body(manifest as Uint8Array<ArrayBuffer>, 200, { 'content-type': MT.ociManifest }),
    );
    expect((await clientOf(bare.app).getManifest(repo, 'v1')).etag).toBeNull();
  });

  it('putManifest sends If-Match when given and succeeds while the tag is unchanged', async () => {
    const { app, seen } = conditional();
    const client = clientOf(app);
    const { etag } = await client.getManifest(repo, 'v1');
    expect(await client.putManifest(repo, 'v1', manifest, MT.ociManifest, { ifMatch: etag! })).toBe(digest);
    const put = seen.find((s) => s.method === 'PUT')!;
    expect(put.headers['if-match']).toBe('"sha256:old"');
  });

  it('a 412 is REGISTRY_PRECONDITION_FAILED: the tag changed while it was being rewritten', async () => {
    const { app, current } = conditional();
    const client = clientOf(app);
    const { etag } = await client.getManifest(repo, 'v1');
    current.etag = '"sha256:someone-else"';
    const e = await rejection(client.putManifest(repo, 'v1', manifest, MT.ociManifest, { ifMatch: etag! }));
    expect(e.code).toBe('REGISTRY_PRECONDITION_FAILED');
    expect(e.status).toBe(412);
    expect(e.message).toMatch(/changed while it was being rewritten/);
    expect(e.message).toContain('team/app:v1');
  });

  it('without options nothing changes: no If-Match is sent', async () => {
    const { app, seen } = conditional();
    expect(await clientOf(app).putManifest(repo, 'v1', manifest, MT.ociManifest)).toBe(digest);
    expect(seen.find((s) => s.method === 'PUT')!.headers['if-match']).toBeUndefined();
  });
});

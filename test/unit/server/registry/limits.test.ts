/**
 * The embedded registry's protections (issue #12, items 3 and 5) through app.request(), no socket:
 * the token (Basic or Bearer, 401 with a Basic challenge otherwise), blobs seen only through the
 * repositories that hold them, capped and expiring upload sessions, the disk quota, gc (never a
 * blob a manifest names), the one-time linking of an older folder, and the nesting-depth scan.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../../../server/registry/auth.ts';
import { jsonDepthWithin } from '../../../../shared/encoding/json-depth.ts';
import { createEmbeddedRegistry, type EmbeddedRegistryOptions } from '../../../../server/registry/registry.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';

const digestOf = (b: Uint8Array | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const open: { close(): Promise<void> }[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function registry(options: Partial<EmbeddedRegistryOptions> = {}, dataDir?: string) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'cosign-web-limits-')));
  if (dataDir === undefined) dirs.push(dir);
  const reg = createEmbeddedRegistry({ dataDir: dir, ...options });
  open.push(reg);
  const req = async (path: string, init: RequestInit = {}): Promise<Response> =>
    reg.app.request(`http://localhost${path}`, init);
  const code = async (res: Response): Promise<string | undefined> =>
    ((await res.json()) as { errors: { code: string }[] }).errors[0]?.code;
  const pushBlob = async (name: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> =>
    req(`/v2/${name}/blobs/uploads/?digest=${digestOf(bytes)}`, { method: 'POST', body: bytes });
  const putManifest = async (name: string, ref: string, doc: unknown, type: string = MT.ociManifest) =>
    req(`/v2/${name}/manifests/${ref}`, {
      method: 'PUT',
      headers: { 'Content-Type': type },
      body: JSON.stringify(doc),
    });
  /** An image whose layer is `layer`; its config is `{}` shared by every image. */
  const pushImage = async (name: string, tag: string, layer: Uint8Array<ArrayBuffer>, extra = {}) => {
    const config = Buffer.from('{}');
    expect((await pushBlob(name, config)).status).toBe(201);
    expect((await pushBlob(name, layer)).status).toBe(201);
    const doc = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociEmpty, digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/octet-stream', digest: digestOf(layer), size: layer.length }],
      ...extra,
    };
    const res = await putManifest(name, tag, doc);
    expect(res.status).toBe(201);
    return { digest: res.headers.get('docker-content-digest')!, size: JSON.stringify(doc).length };
  };
  return { reg, dir, req, code, pushBlob, putManifest, pushImage };
}

const TOKEN = 'a-registry-token-0123456789';
const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('EMBEDDED_REGISTRY_TOKEN', () => {
  it('answers 401 UNAUTHORIZED with a Basic challenge without it, and takes it as Basic password or Bearer', async () => {
    const { req, code } = await registry({ token: TOKEN });
    for (const headers of [
      {},
      { Authorization: basic('any', 'wrong-token-0123456789') },
      { Authorization: 'Bearer x' },
    ] as Record<string, string>[]) {
      const res = await req('/v2/', { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="cosign-web embedded registry"/);
      expect(await code(res)).toBe('UNAUTHORIZED');
    }
    // Every route, writes included: nothing is stored without the token.
    const blob = Buffer.from('x');
    const push = await req(`/v2/a/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob });
    expect(push.status).toBe(401);
    expect((await req('/v2/samples/hello/manifests/v1', { method: 'DELETE' })).status).toBe(401);
    expect((await req('/v2/', { headers: { Authorization: basic('anyone', TOKEN) } })).status).toBe(200);
    expect((await req('/v2/', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('tells loopback listening addresses from the others', () => {
    for (const h of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.5', 'example.com', '127.0.0.1.example.com']) {
      expect(isLoopbackHost(h)).toBe(false);
    }
  });
});

describe('blobs per repository', () => {
  it('serves, deletes and mounts a blob only through a repository that holds it', async () => {
    const { req, code, pushBlob, putManifest } = await registry();
    const bytes = randomBytes(100);
    const digest = digestOf(bytes);
    expect((await pushBlob('a', bytes)).status).toBe(201);
    expect((await req(`/v2/a/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200);
    const other = await req(`/v2/b/blobs/${digest}`);
    expect(other.status).toBe(404);
    expect(await code(other)).toBe('BLOB_UNKNOWN');
    expect(await code(await req(`/v2/b/blobs/${digest}`, { method: 'DELETE' }))).toBe('BLOB_UNKNOWN');
    expect((await req(`/v2/a/blobs/${digest}`)).status).toBe(200);
    // A manifest in b cannot name a's blob.
    const doc = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociEmpty, digest, size: 100 },
      layers: [],
    };
    expect(await code(await putManifest('b', 'v1', doc))).toBe('MANIFEST_BLOB_UNKNOWN');
    // A mount from a repository that does not hold it opens a session instead; from a, it mounts.
    expect((await req(`/v2/b/blobs/uploads/?mount=${digest}&from=c`, { method: 'POST' })).status).toBe(202);
    expect((await req(`/v2/b/blobs/uploads/?mount=${digest}`, { method: 'POST' })).status).toBe(202);
    expect((await req(`/v2/b/blobs/uploads/?mount=${digest}&from=a`, { method: 'POST' })).status).toBe(201);
    expect((await req(`/v2/b/blobs/${digest}`)).status).toBe(200);
    expect((await putManifest('b', 'v1', doc)).status).toBe(201);
    // Deleting through a removes a's link only.
    expect((await req(`/v2/a/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await req(`/v2/a/blobs/${digest}`)).status).toBe(404);
    expect((await req(`/v2/b/blobs/${digest}`)).status).toBe(200);
  });
});

describe('upload sessions', () => {
  it('caps sessions per repository and in all with 429 TOO_MANY_REQUESTS', async () => {
    const { req, code } = await registry({ limits: { maxSessions: 3, maxSessionsPerRepository: 2 } });
    const start = (name: string) => req(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect((await start('a')).status).toBe(202);
    expect((await start('a')).status).toBe(202);
    const third = await start('a');
    expect(third.status).toBe(429);
    expect(await code(third)).toBe('TOO_MANY_REQUESTS');
    const b = await start('b');
    expect(b.status).toBe(202);
    expect(await code(await start('c'))).toBe('TOO_MANY_REQUESTS');
    // Finishing one frees its place.
    const loc = b.headers.get('location')!;
    expect((await req(`${loc}?digest=${digestOf('')}`, { method: 'PUT' })).status).toBe(201);
    expect((await start('c')).status).toBe(202);
  });

  it('drops a session idle for longer than its limit, bytes and all', async () => {
    const { req, code, dir } = await registry({ limits: { sessionIdleMs: 300 } });
    const loc = (await req('/v2/a/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'PATCH', body: randomBytes(1000) })).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 600));
    // The next session opened sweeps the idle ones.
    const next = (await req('/v2/a/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect(await code(await req(loc))).toBe('BLOB_UPLOAD_UNKNOWN');
    expect(await readdir(join(dir, 'uploads'))).toEqual([next.split('/').pop()]);
  });
});

describe('REGISTRY_MAX_BYTES', () => {
  it('refuses what would pass the quota with 507 DENIED and a sentence, storing nothing', async () => {
    const { req, pushBlob, dir } = await registry({ limits: { maxBytes: 1000 } });
    expect((await pushBlob('a', randomBytes(600))).status).toBe(201);
    const over = await pushBlob('a', randomBytes(600));
    expect(over.status).toBe(507);
    const body = (await over.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toMatch(/disk quota \(REGISTRY_MAX_BYTES, 1000 bytes\) is used up/);
    // In chunks too: the chunk is rolled back, the session keeps what came before.
    const loc = (await req('/v2/a/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'PATCH', body: randomBytes(300) })).status).toBe(202);
    expect((await req(loc, { method: 'PATCH', body: randomBytes(300) })).status).toBe(507);
    expect((await req(loc)).headers.get('range')).toBe('0-299');
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toHaveLength(1);
    // Cancelling the session gives its bytes back.
    expect((await req(loc, { method: 'DELETE' })).status).toBe(204);
    expect((await pushBlob('a', randomBytes(350))).status).toBe(201);
  });
});

describe('gc', () => {
  it('after a manifest delete frees what only it named, never a blob another manifest names', async () => {
    const lines: string[] = [];
    const { req, pushImage, putManifest, reg, dir } = await registry({ gcGraceMs: 0, log: (l) => lines.push(l) });
    const onlyA = randomBytes(5000);
    const shared = randomBytes(3000);
    const a = await pushImage('x/a', 'v1', onlyA);
    const b = await pushImage('x/b', 'v1', shared);
    await pushImage('x/a', 'v2', shared);
    // An index over b's image, and a referrer of it whose own layer nothing else names.
    const index = await putManifest(
      'x/b',
      'idx',
      { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, ...b }] },
      MT.ociIndex,
    );
    expect(index.status).toBe(201);
    const sig = randomBytes(200);
    await pushImage('x/b', 'sig', sig, { subject: { mediaType: MT.ociManifest, ...b } });
    // An orphan: pushed, named by nothing.
    const orphan = randomBytes(7000);
    expect(
      (await req(`/v2/x/c/blobs/uploads/?digest=${digestOf(orphan)}`, { method: 'POST', body: orphan })).status,
    ).toBe(201);
    const before = await readdir(join(dir, 'blobs', 'sha256'));

    expect((await req(`/v2/x/a/manifests/${a.digest}`, { method: 'DELETE' })).status).toBe(202);
    await reg.close(); // waits for the gc the delete started
    const after = await readdir(join(dir, 'blobs', 'sha256'));
    const gone = before
      .filter((h) => !after.includes(h))
      .map((h) => `sha256:${h}`)
      .sort();
    expect(gone).toEqual([a.digest, digestOf(onlyA), digestOf(orphan)].sort());
    expect(lines.join('\n')).toMatch(`freed 3 blobs (${a.size + 5000 + 7000} bytes`);

    // Everything the remaining manifests name is still served, and only a's link is gone.
    const again = await registry({}, dir);
    for (const [name, d] of [
      ['x/a', digestOf(shared)],
      ['x/b', digestOf(shared)],
      ['x/b', digestOf(sig)],
      ['x/b', b.digest],
      ['x/a', digestOf('{}')],
    ] as const) {
      expect((await again.req(`/v2/${name}/blobs/${d}`, { method: 'HEAD' })).status).toBe(200);
    }
    expect((await again.req('/v2/x/b/manifests/idx')).status).toBe(200);
    expect((await again.req(`/v2/x/a/blobs/${digestOf(onlyA)}`, { method: 'HEAD' })).status).toBe(404);
    expect((await again.req(`/v2/x/c/blobs/${digestOf(orphan)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it.each([
    ['keeps an unnamed blob inside the grace period (a push whose manifest has not come yet)', undefined, true],
    ['collects the same blob with no grace period (the control)', 0, false],
  ])('%s', async (_name, gcGraceMs, kept) => {
    const { pushBlob, reg, dir } = await registry();
    const bytes = randomBytes(100);
    expect((await pushBlob('p', bytes)).status).toBe(201);
    await reg.close();
    // Reopened, the registry collects at start; closing waits for that collection to end.
    const again = await registry(gcGraceMs === undefined ? {} : { gcGraceMs }, dir);
    await again.reg.close();
    const hex = digestOf(bytes).slice('sha256:'.length);
    expect(existsSync(join(dir, 'blobs', 'sha256', hex))).toBe(kept);
  });

  it('links the blobs of a folder written before repositories kept links, once', async () => {
    const { pushImage, reg, dir } = await registry();
    const layer = randomBytes(100);
    await pushImage('old', 'v1', layer);
    await reg.close();
    for (const repo of await readdir(join(dir, 'repositories'))) {
      await rm(join(dir, 'repositories', repo, 'blobs'), { recursive: true, force: true });
    }
    await rm(join(dir, 'layout'));
    const again = await registry({ gcGraceMs: 0 }, dir);
    expect((await again.req(`/v2/old/blobs/${digestOf(layer)}`, { method: 'HEAD' })).status).toBe(200);
    expect((await again.req('/v2/old/manifests/v1')).status).toBe(200);
  });
});

describe('manifest nesting depth', () => {
  const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('scans brackets outside strings only', () => {
    expect(jsonDepthWithin(nested(64), 64)).toBe(true);
    expect(jsonDepthWithin(nested(65), 64)).toBe(false);
    expect(jsonDepthWithin(`["${'['.repeat(100)}\\"${'{'.repeat(100)}"]`, 64)).toBe(true);
    expect(jsonDepthWithin(`{"a":"\\\\",${'['.repeat(65)}`, 64)).toBe(false);
  });

  it('refuses a manifest nested deeper than 64 levels with MANIFEST_INVALID', async () => {
    const { req } = await registry();
    const put = (body: string) =>
      req('/v2/d/manifests/v1', { method: 'PUT', headers: { 'Content-Type': MT.ociManifest }, body });
    // The object is one level: 64 arrays inside it make 65.
    const deep = (await (await put(`{"schemaVersion":2,"x":${nested(64)}}`)).json()) as {
      errors: { code: string; message: string }[];
    };
    expect(deep.errors[0]?.code).toBe('MANIFEST_INVALID');
    expect(deep.errors[0]?.message).toMatch(/deeper than 64 levels/);
    const within = (await (await put(`{"schemaVersion":2,"x":${nested(63)}}`)).json()) as {
      errors: { message: string }[];
    };
    // Past the scan, JSON.parse ran and the next check answered.
    expect(within.errors[0]?.message).toBe("The manifest's config is not a descriptor.");
  });
});

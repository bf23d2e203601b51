/**
 * The embedded registry (server/registry/) through app.request(), no socket: every error path of
 * the distribution spec it answers, the referrers API, and what survives a restart.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../../server/registry/registry.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';

function digestOf(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

let dir: string;
let reg: EmbeddedRegistry;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-embedded-'));
  reg = createEmbeddedRegistry({ dataDir: dir, maxUploadBytes: 64 * 1024, maxManifestBytes: 2048 });
});
afterEach(async () => {
  await reg.close();
  await rm(dir, { recursive: true, force: true });
});

function req(path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(reg.app.request(`http://localhost${path}`, init));
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return body.errors[0]?.code;
}

async function pushBlob(name: string, bytes: Uint8Array<ArrayBuffer>): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  const res = await req(`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes });
  expect(res.status).toBe(201);
  return { digest, size: bytes.length };
}

async function pushImage(name: string, tag: string, extra: Record<string, unknown> = {}): Promise<string> {
  const config = await pushBlob(name, Buffer.from('{}'));
  const layer = await pushBlob(name, randomBytes(100));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociEmpty, ...config },
    layers: [{ mediaType: 'application/octet-stream', ...layer }],
    ...extra,
  });
  const res = await req(`/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': MT.ociManifest },
    body: manifest,
  });
  expect(res.status).toBe(201);
  return digestOf(manifest);
}

/** Every file under blobs/ has the bytes its name says. */
async function checkStoredBlobs(): Promise<number> {
  const blobDir = join(dir, 'blobs', 'sha256');
  const files = await readdir(blobDir);
  for (const f of files) expect(digestOf(await readFile(join(blobDir, f)))).toBe(`sha256:${f}`);
  return files.length;
}

describe('embedded registry', () => {
  it('answers the ping with {} and the API version header', async () => {
    const res = await req('/v2/');
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await res.json()).toEqual({});
  });

  it('uploads in chunks, serves the blob with its digest, a range, and deletes it', async () => {
    const bytes = randomBytes(1000);
    const digest = digestOf(bytes);
    const start = await req('/v2/a/b/blobs/uploads/', { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = start.headers.get('location')!;
    expect(loc).toMatch(/^\/v2\/a\/b\/blobs\/uploads\/[0-9a-f-]+$/);
    expect(start.headers.get('docker-upload-uuid')).toBe(loc.split('/').pop());
    const p1 = await req(loc, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-399', 'Content-Type': 'application/octet-stream' },
      body: bytes.subarray(0, 400),
    });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-399');
    const status = await req(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-399');
    const put = await req(`${loc}?digest=${digest}`, { method: 'PUT', body: bytes.subarray(400) });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(digest);
    const head = await req(`/v2/a/b/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('1000');
    const got = await req(`/v2/a/b/blobs/${digest}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    const part = await req(`/v2/a/b/blobs/${digest}`, { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 20))).toBe(true);
    expect((await req(`/v2/a/b/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
    const gone = await req(`/v2/a/b/blobs/${digest}`);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('BLOB_UNKNOWN');
  });

  it('refuses a blob whose bytes do not match the digest, and a short body, storing nothing', async () => {
    const bytes = randomBytes(64);
    const wrong = await req(`/v2/r/blobs/uploads/?digest=${digestOf('other')}`, { method: 'POST', body: bytes });
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    const short = await req(`/v2/r/blobs/uploads/?digest=${digestOf(bytes)}`, {
      method: 'POST',
      body: bytes.subarray(0, 32),
    });
    expect(short.status).toBe(400);
    expect(await errorCode(short)).toBe('DIGEST_INVALID');
    const session = (await req('/v2/r/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    const closeWrong = await req(`${session}?digest=${digestOf(bytes)}`, { method: 'PUT', body: bytes.subarray(1) });
    expect(await errorCode(closeWrong)).toBe('DIGEST_INVALID');
    expect(await checkStoredBlobs()).toBe(0);
    expect((await req(`/v2/r/blobs/${digestOf(bytes)}`, { method: 'HEAD' })).status).toBe(404);
    const bad = await req('/v2/r/blobs/sha256:abc');
    expect(await errorCode(bad)).toBe('DIGEST_INVALID');
  });

  it('refuses a body shorter than its Content-Length, storing nothing and rolling a chunk back', async () => {
    const bytes = randomBytes(50);
    const mono = await req(`/v2/r/blobs/uploads/?digest=${digestOf(bytes)}`, {
      method: 'POST',
      headers: { 'Content-Length': '100' },
      body: bytes,
    });
    expect(mono.status).toBe(400);
    expect(await errorCode(mono)).toBe('SIZE_INVALID');
    const loc = (await req('/v2/r/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'PATCH', body: bytes.subarray(0, 20) })).status).toBe(202);
    const short = await req(loc, { method: 'PATCH', headers: { 'Content-Length': '40' }, body: bytes.subarray(20) });
    expect(await errorCode(short)).toBe('SIZE_INVALID');
    expect((await req(loc)).headers.get('range')).toBe('0-19');
    expect((await req(`${loc}?digest=${digestOf(bytes)}`, { method: 'PUT', body: bytes.subarray(20) })).status).toBe(
      201,
    );
    expect(await checkStoredBlobs()).toBe(1);
  });

  it('answers HEAD errors without a body, other methods and digest algorithms as unsupported', async () => {
    const head = await req(`/v2/r/blobs/${digestOf('none')}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(await head.text()).toBe('');
    const post = await req('/v2/r/tags/list', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(await errorCode(post)).toBe('UNSUPPORTED');
    const sha512 = await req(`/v2/r/blobs/sha512:${'ab'.repeat(64)}`);
    expect(await errorCode(sha512)).toBe('UNSUPPORTED');
    const { digest } = await pushBlob('r', Buffer.from('0123456789'));
    const outside = await req(`/v2/r/blobs/${digest}`, { headers: { Range: 'bytes=20-30' } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe('bytes */10');
  });

  it('gives Locations under the path it is mounted at', async () => {
    const outer = new Hono();
    outer.route('/mirror', reg.app);
    const res = await outer.request('http://localhost/mirror/v2/x/blobs/uploads/', { method: 'POST' });
    expect(res.status).toBe(202);
    const loc = res.headers.get('location')!;
    expect(loc).toMatch(/^\/mirror\/v2\/x\/blobs\/uploads\/[0-9a-f-]+$/);
    expect((await outer.request(`http://localhost${loc}`)).status).toBe(204);
    expect(await (await outer.request('http://localhost/mirror/v2/')).json()).toEqual({});
  });

  it('answers 416 to a chunk that does not follow, keeping what came before', async () => {
    const bytes = randomBytes(300);
    const loc = (await req('/v2/r/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    await req(loc, { method: 'PATCH', headers: { 'Content-Range': '0-99' }, body: bytes.subarray(0, 100) });
    const gap = await req(loc, {
      method: 'PATCH',
      headers: { 'Content-Range': '150-249' },
      body: bytes.subarray(150, 250),
    });
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-99');
    expect(await errorCode(gap)).toBe('BLOB_UPLOAD_INVALID');
    const again = await req(loc, {
      method: 'PATCH',
      headers: { 'Content-Range': '0-99' },
      body: bytes.subarray(0, 100),
    });
    expect(again.status).toBe(416);
    const next = await req(loc, {
      method: 'PATCH',
      headers: { 'Content-Range': '100-299' },
      body: bytes.subarray(100),
    });
    expect(next.status).toBe(202);
    expect((await req(`${loc}?digest=${digestOf(bytes)}`, { method: 'PUT' })).status).toBe(201);
    expect(await checkStoredBlobs()).toBe(1);
  });

  it('answers unknown and cancelled sessions with BLOB_UPLOAD_UNKNOWN', async () => {
    const loc = (await req('/v2/r/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'DELETE' })).status).toBe(204);
    const after = await req(loc, { method: 'PATCH', body: 'x' });
    expect(after.status).toBe(404);
    expect(await errorCode(after)).toBe('BLOB_UPLOAD_UNKNOWN');
    const other = await req(loc.replace('/v2/r/', '/v2/s/'));
    expect(await errorCode(other)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('refuses an upload over the size limit with 413 SIZE_INVALID', async () => {
    const big = randomBytes(64 * 1024 + 1);
    const mono = await req(`/v2/r/blobs/uploads/?digest=${digestOf(big)}`, { method: 'POST', body: big });
    expect(mono.status).toBe(413);
    expect(await errorCode(mono)).toBe('SIZE_INVALID');
    const loc = (await req('/v2/r/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'PATCH', body: big.subarray(0, 60_000) })).status).toBe(202);
    const over = await req(loc, { method: 'PATCH', body: big.subarray(60_000) });
    expect(over.status).toBe(413);
    expect((await req(loc)).headers.get('range')).toBe('0-59999');
    expect(await checkStoredBlobs()).toBe(0);
  });

  it('mounts a blob from another repository, or opens a session when it is unknown', async () => {
    const { digest } = await pushBlob('src/repo', randomBytes(10));
    const mounted = await req(`/v2/dst/blobs/uploads/?mount=${digest}&from=src/repo`, { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/dst/blobs/${digest}`);
    const unknown = await req(`/v2/dst/blobs/uploads/?mount=${digestOf('nope')}&from=src/repo`, { method: 'POST' });
    expect(unknown.status).toBe(202);
    expect(unknown.headers.get('location')).toMatch(/^\/v2\/dst\/blobs\/uploads\//);
  });

  it('stores manifests by tag and digest with their media type, and deletes them', async () => {
    const digest = await pushImage('img', 'v1');
    const byTag = await req('/v2/img/manifests/v1');
    expect(byTag.status).toBe(200);
    expect(byTag.headers.get('content-type')).toBe(MT.ociManifest);
    expect(byTag.headers.get('docker-content-digest')).toBe(digest);
    const bytes = Buffer.from(await byTag.arrayBuffer());
    expect(digestOf(bytes)).toBe(digest);
    const head = await req(`/v2/img/manifests/${digest}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    const mismatch = await req(`/v2/img/manifests/${digestOf('x')}`, {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociManifest },
      body: bytes,
    });
    expect(await errorCode(mismatch)).toBe('DIGEST_INVALID');
    const docker = await req('/v2/img/manifests/d', {
      method: 'PUT',
      headers: { 'Content-Type': MT.dockerManifest },
      body: bytes.toString().replace(MT.ociManifest, MT.dockerManifest),
    });
    expect(docker.status).toBe(201);
    expect((await req('/v2/img/manifests/d')).headers.get('content-type')).toBe(MT.dockerManifest);
    expect((await req('/v2/img/manifests/v1', { method: 'DELETE' })).status).toBe(202);
    expect(await errorCode(await req('/v2/img/manifests/v1'))).toBe('MANIFEST_UNKNOWN');
    expect((await req(`/v2/img/manifests/${digest}`)).status).toBe(200);
    expect((await req(`/v2/img/manifests/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect(await errorCode(await req(`/v2/img/manifests/${digest}`))).toBe('MANIFEST_UNKNOWN');
  });

  it('refuses a manifest naming a missing blob or child, an oversized one, and bad JSON', async () => {
    const config = await pushBlob('m', Buffer.from('{}'));
    const missing = digestOf('missing layer');
    const res = await req('/v2/m/manifests/x', {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociManifest },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: { mediaType: MT.ociEmpty, ...config },
        layers: [{ mediaType: 'application/octet-stream', digest: missing, size: 5 }],
      }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { code: string; detail: { digests: string[] } }[] };
    expect(body.errors[0]?.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(body.errors[0]?.detail.digests).toEqual([missing]);
    const index = await req('/v2/m/manifests/i', {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociIndex },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ mediaType: MT.ociManifest, digest: missing, size: 5 }],
      }),
    });
    expect(await errorCode(index)).toBe('MANIFEST_BLOB_UNKNOWN');
    const big = await req('/v2/m/manifests/big', {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociManifest },
      body: JSON.stringify({ schemaVersion: 2, pad: 'x'.repeat(3000) }),
    });
    expect(big.status).toBe(413);
    expect(await errorCode(big)).toBe('SIZE_INVALID');
    const notJson = await req('/v2/m/manifests/j', {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociManifest },
      body: '{not json',
    });
    expect(await errorCode(notJson)).toBe('MANIFEST_INVALID');
    expect(await errorCode(await req('/v2/m/tags/list'))).toBe('NAME_UNKNOWN');
  });

  it('refuses invalid repository names and tags', async () => {
    for (const path of ['/v2/UPPER/tags/list', '/v2/a//b/manifests/x', '/v2/-a/blobs/uploads/', '/v2/a..b/tags/list']) {
      const res = await req(path, { method: path.endsWith('uploads/') ? 'POST' : 'GET' });
      expect(res.status, path).toBe(400);
      expect(await errorCode(res), path).toBe('NAME_INVALID');
    }
    const badTag = await req('/v2/ok/manifests/.bad', { method: 'PUT', body: '{}' });
    expect(await errorCode(badTag)).toBe('MANIFEST_INVALID');
    expect(await errorCode(await req(`/v2/ok/manifests/${'t'.repeat(129)}`))).toBe('MANIFEST_INVALID');
  });

  it('lists tags with n/last pagination and a Link header', async () => {
    const digest = await pushImage('t', 'a');
    const manifest = Buffer.from(await (await req(`/v2/t/manifests/${digest}`)).arrayBuffer());
    for (const tag of ['c', 'b', 'd']) {
      await req(`/v2/t/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'Content-Type': MT.ociManifest },
        body: manifest,
      });
    }
    expect(await (await req('/v2/t/tags/list')).json()).toEqual({ name: 't', tags: ['a', 'b', 'c', 'd'] });
    const page = await req('/v2/t/tags/list?n=2');
    expect(await page.json()).toEqual({ name: 't', tags: ['a', 'b'] });
    expect(page.headers.get('link')).toBe('</v2/t/tags/list?n=2&last=b>; rel="next"');
    const rest = await req('/v2/t/tags/list?n=2&last=b');
    expect(await rest.json()).toEqual({ name: 't', tags: ['c', 'd'] });
    expect(rest.headers.get('link')).toBeNull();
  });

  it('serves referrers with artifactType and annotations, filtered, and OCI-Subject on PUT', async () => {
    const subject = await pushImage('ref', 'v1');
    const subjectSize = Number(
      (await req(`/v2/ref/manifests/${subject}`, { method: 'HEAD' })).headers.get('content-length'),
    );
    const empty = await req(`/v2/ref/referrers/${subject}`);
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] });
    const config = await pushBlob('ref', Buffer.from('{}'));
    const layer = await pushBlob('ref', Buffer.from('bundle'));
    const referrer = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: MT.sigstoreBundle,
      config: { mediaType: MT.ociEmpty, ...config },
      layers: [{ mediaType: MT.sigstoreBundle, ...layer }],
      subject: { mediaType: MT.ociManifest, digest: subject, size: subjectSize },
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope' },
    });
    const put = await req(`/v2/ref/manifests/${digestOf(referrer)}`, {
      method: 'PUT',
      headers: { 'Content-Type': MT.ociManifest },
      body: referrer,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject);
    const other = await pushImage('ref', 'sig', {
      subject: { mediaType: MT.ociManifest, digest: subject, size: subjectSize },
    });
    const all = (await (await req(`/v2/ref/referrers/${subject}`)).json()) as { manifests: unknown[] };
    expect(all.manifests).toHaveLength(2);
    expect(all.manifests).toContainEqual({
      mediaType: MT.ociManifest,
      digest: digestOf(referrer),
      size: referrer.length,
      artifactType: MT.sigstoreBundle,
      annotations: { 'dev.sigstore.bundle.content': 'dsse-envelope' },
    });
    expect(all.manifests).toContainEqual(expect.objectContaining({ digest: other, artifactType: MT.ociEmpty }));
    const filtered = await req(`/v2/ref/referrers/${subject}?artifactType=${encodeURIComponent(MT.sigstoreBundle)}`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await filtered.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual([
      digestOf(referrer),
    ]);
    const unknown = await req(`/v2/nowhere/referrers/${digestOf('nothing')}`);
    expect(unknown.status).toBe(200);
    expect(((await unknown.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it('keeps one correct copy when the same blob is uploaded many times at once', async () => {
    const bytes = randomBytes(40_000);
    const digest = digestOf(bytes);
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        if (i % 2 === 0) {
          return (await req(`/v2/c${i}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })).status;
        }
        const loc = (await req(`/v2/c${i}/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
        await req(loc, { method: 'PATCH', body: bytes.subarray(0, 20_000) });
        return (await req(`${loc}?digest=${digest}`, { method: 'PUT', body: bytes.subarray(20_000) })).status;
      }),
    );
    expect(results).toEqual(Array(8).fill(201));
    expect(await checkStoredBlobs()).toBe(1);
    const got = await req(`/v2/c0/blobs/${digest}`);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('after a stop in the middle of an upload, a restart keeps everything acknowledged and nothing half-written', async () => {
    const digest = await pushImage('keep', 'v1');
    const bytes = randomBytes(5000);
    const loc = (await req('/v2/keep/blobs/uploads/', { method: 'POST' })).headers.get('location')!;
    expect((await req(loc, { method: 'PATCH', body: bytes.subarray(0, 2500) })).status).toBe(202);
    await reg.close();
    reg = createEmbeddedRegistry({ dataDir: dir });
    expect(await errorCode(await req(loc))).toBe('BLOB_UPLOAD_UNKNOWN');
    expect((await req(`/v2/keep/blobs/${digestOf(bytes)}`, { method: 'HEAD' })).status).toBe(404);
    expect(await checkStoredBlobs()).toBe(3);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
    const res = await req('/v2/keep/manifests/v1');
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    expect(await (await req('/v2/keep/tags/list')).json()).toEqual({ name: 'keep', tags: ['v1'] });
  });
});

describe('ETag and If-Match on manifests', () => {
  const put = (path: string, body: string, headers: Record<string, string> = {}) =>
    req(path, { method: 'PUT', headers: { 'Content-Type': MT.ociManifest, ...headers }, body });

  /** A second manifest over the same blobs as the one tagged `tag`, differing in an annotation. */
  async function variant(name: string, tag: string, note: string): Promise<string> {
    const doc = (await (await req(`/v2/${name}/manifests/${tag}`)).json()) as Record<string, unknown>;
    return JSON.stringify({ ...doc, annotations: { note } });
  }

  it('sends the quoted digest as ETag on GET, HEAD and PUT', async () => {
    const digest = await pushImage('e', 'v1');
    for (const [method, path] of [
      ['GET', '/v2/e/manifests/v1'],
      ['HEAD', '/v2/e/manifests/v1'],
      ['GET', `/v2/e/manifests/${digest}`],
      ['HEAD', `/v2/e/manifests/${digest}`],
    ] as const) {
      expect((await req(path, { method })).headers.get('etag'), `${method} ${path}`).toBe(`"${digest}"`);
    }
    const next = await variant('e', 'v1', 'b');
    const res = await put('/v2/e/manifests/v1', next);
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe(`"${digestOf(next)}"`);
    expect(
      (
        await req(`/v2/e/manifests/${digestOf(next)}`, {
          method: 'PUT',
          headers: { 'Content-Type': MT.ociManifest },
          body: next,
        })
      ).headers.get('etag'),
    ).toBe(`"${digestOf(next)}"`);
    expect((await req('/v2/e/manifests/nothing')).headers.get('etag')).toBeNull();
  });

  it('refuses a PUT whose If-Match is stale with 412 PRECONDITION_FAILED, storing nothing', async () => {
    const first = await pushImage('e', 'v1');
    const etag = (await req('/v2/e/manifests/v1', { method: 'HEAD' })).headers.get('etag')!;
    const b = await variant('e', 'v1', 'b');
    expect((await put('/v2/e/manifests/v1', b)).status).toBe(201);
    const c = await variant('e', 'v1', 'c');
    const stale = await put('/v2/e/manifests/v1', c, { 'If-Match': etag });
    expect(stale.status).toBe(412);
    const body = (await stale.json()) as { errors: { code: string; message: string; detail: unknown }[] };
    expect(body.errors[0]?.code).toBe('PRECONDITION_FAILED');
    expect(body.errors[0]?.detail).toEqual({ etag: `"${digestOf(b)}"` });
    expect(stale.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await req('/v2/e/manifests/v1')).headers.get('docker-content-digest')).toBe(digestOf(b));
    expect((await req(`/v2/e/manifests/${digestOf(c)}`)).status).toBe(404);
    expect(first).not.toBe(digestOf(b));
    // Weak tags never match (strong comparison), nor does a tag that names nothing yet.
    const weak = await put('/v2/e/manifests/v1', c, { 'If-Match': `W/"${digestOf(b)}"` });
    expect(weak.status).toBe(412);
    expect((await put('/v2/e/manifests/new', c, { 'If-Match': `"${digestOf(b)}"` })).status).toBe(412);
    expect((await put('/v2/e/manifests/new', c, { 'If-Match': '*' })).status).toBe(412);
    expect((await req('/v2/e/manifests/new')).status).toBe(404);
  });

  it('takes a PUT whose If-Match is the current ETag (or one of a list, or *), and moves the tag', async () => {
    await pushImage('e', 'v1');
    const etag = (await req('/v2/e/manifests/v1')).headers.get('etag')!;
    const b = await variant('e', 'v1', 'b');
    const ok = await put('/v2/e/manifests/v1', b, { 'If-Match': etag });
    expect(ok.status).toBe(201);
    expect((await req('/v2/e/manifests/v1')).headers.get('etag')).toBe(`"${digestOf(b)}"`);
    const c = await variant('e', 'v1', 'c');
    expect(
      (await put('/v2/e/manifests/v1', c, { 'If-Match': `"sha256:${'0'.repeat(64)}", "${digestOf(b)}"` })).status,
    ).toBe(201);
    const d = await variant('e', 'v1', 'd');
    expect((await put('/v2/e/manifests/v1', d, { 'If-Match': '*' })).status).toBe(201);
    expect((await req('/v2/e/manifests/v1')).headers.get('docker-content-digest')).toBe(digestOf(d));
  });

  it('leaves a PUT without If-Match as it was: it overwrites whatever the tag holds', async () => {
    await pushImage('e', 'v1');
    const b = await variant('e', 'v1', 'b');
    expect((await put('/v2/e/manifests/v1', b)).status).toBe(201);
    const c = await variant('e', 'v1', 'c');
    expect((await put('/v2/e/manifests/v1', c)).status).toBe(201);
    expect((await req('/v2/e/manifests/v1')).headers.get('docker-content-digest')).toBe(digestOf(c));
  });

  it('lets exactly one of several writers holding the same ETag win', async () => {
    await pushImage('e', 'v1');
    const etag = (await req('/v2/e/manifests/v1')).headers.get('etag')!;
    const bodies = await Promise.all(Array.from({ length: 6 }, (_, i) => variant('e', 'v1', `w${i}`)));
    const statuses = await Promise.all(
      bodies.map((b) => put('/v2/e/manifests/v1', b, { 'If-Match': etag }).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(5);
    const winner = bodies[statuses.indexOf(201)]!;
    expect((await req('/v2/e/manifests/v1')).headers.get('docker-content-digest')).toBe(digestOf(winner));
  });
});

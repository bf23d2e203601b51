/**
 * The streaming part of shared/ops/copy.ts between two embedded registries (server/registry/)
 * served in-process: blobs of every size around the chunk boundaries arrive byte for byte
 * (property test over blob and chunk sizes), and a source whose bytes do not match their digest
 * is caught on the way, the upload abandoned, nothing stored under that digest.
 */
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../../server/registry/registry.ts';
import { servedAs } from '../../server/served-as.ts';
import { copyImage } from '../../../../shared/ops/copy.ts';
import { buildSigManifest, sameSignatureLayer, sigLayer, sigTag } from '../../../../shared/cosign/manifests.ts';
import type { Descriptor } from '../../../../shared/registry/mediatypes.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { ManageError } from '../../../../shared/errors.ts';
import { RegistryClient, type RepoRef } from '../../../../shared/registry/client.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';

const SRC = 'src.test:5000';
const DST = 'dst.test:5000';
let dir: string;
let src: EmbeddedRegistry;
let dst: EmbeddedRegistry;
/** Flips one byte of every blob body served for this digest (a source that lies). */
let corrupt: string | null = null;
/** Serves this blob with a Content-Length header that cannot be compared with its size. */
let oddLength: { digest: string; headers: Record<string, string> } | null = null;
/** After the destination's tag is written, the next read of it is followed by another writer putting `restore` back. */
let race: { tag: string; restore: Uint8Array; written: boolean } | null = null;
/** The destination answers the first PUT of this tag with 500. */
let refuseTagOnce: string | null = null;
/** Serves this blob from the source in 16 KiB pieces, a few ms apart (a slow source). */
let slow: string | null = null;
/** The destination answers this PATCH (1-based, counted from when it is set) with 500. */
let failPatch: { nth: number; seen: number } | null = null;

function trickle(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let pending: Uint8Array = new Uint8Array(0);
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      if (pending.length === 0) {
        const { done, value } = await reader.read();
        if (done) return c.close();
        pending = value;
      }
      await new Promise((r) => setTimeout(r, 5));
      c.enqueue(pending.subarray(0, 16 * 1024));
      pending = pending.subarray(16 * 1024);
    },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-copy-stream-'));
  src = createEmbeddedRegistry({ dataDir: join(dir, 'src'), site: servedAs(SRC) });
  dst = createEmbeddedRegistry({ dataDir: join(dir, 'dst'), site: servedAs(DST) });
});
afterAll(async () => {
  await src.close();
  await dst.close();
  await rm(dir, { recursive: true, force: true });
});

/** Routes by host to the in-process registries; corrupts the blob named by `corrupt`. */
const fetchBoth: typeof fetch = async (input, init) => {
  const req = new Request(input, init);
  const host = new URL(req.url).host;
  const app = host === SRC ? src.app : host === DST ? dst.app : null;
  if (!app) throw new TypeError(`no registry at ${host}`);
  if (host === DST && failPatch && req.method === 'PATCH' && ++failPatch.seen === failPatch.nth) {
    return new Response('{"errors":[{"code":"UNKNOWN","message":"disk full"}]}', { status: 500 });
  }
  const path = new URL(req.url).pathname;
  if (host === DST && refuseTagOnce && req.method === 'PUT' && path.endsWith(`/manifests/${refuseTagOnce}`)) {
    refuseTagOnce = null;
    return new Response('{"errors":[{"code":"UNKNOWN","message":"try again"}]}', { status: 500 });
  }
  const res = await app.fetch(req);
  if (host === DST && race && path.endsWith(`/manifests/${race.tag}`)) {
    if (req.method === 'PUT') race.written = true;
    else if (req.method === 'GET' && race.written) {
      // A writer that read before our write now writes what it read: ours is gone.
      const { restore } = race;
      race = null;
      const body = await res.arrayBuffer();
      const put = new Request(req.url, {
        method: 'PUT',
        headers: { 'content-type': MT.ociManifest },
        body: restore as Uint8Array<ArrayBuffer>,
      });
      expect((await dst.app.fetch(put)).status).toBe(201);
      return new Response(body, { status: res.status, headers: res.headers });
    }
  }
  if (host === SRC && oddLength && req.method === 'GET' && req.url.endsWith(`/blobs/${oddLength.digest}`)) {
    const headers = new Headers(res.headers);
    for (const [k, v] of Object.entries(oddLength.headers)) headers.set(k, v);
    return new Response(res.body, { status: res.status, headers });
  }
  if (host === SRC && slow && req.method === 'GET' && req.url.endsWith(`/blobs/${slow}`) && res.body) {
    return new Response(trickle(res.body), { status: res.status, headers: res.headers });
  }
  if (host === SRC && corrupt && req.method === 'GET' && req.url.endsWith(`/blobs/${corrupt}`)) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    bytes[bytes.length >> 1]! ^= 1;
    return new Response(bytes, { status: res.status, headers: res.headers });
  }
  return res;
};

const client = new RegistryClient({ fetch: fetchBoth, scheme: () => 'http' });

async function pushImage(repo: RepoRef, layerBytes: Uint8Array): Promise<{ digest: string; layer: string }> {
  const layer = await client.pushBlob(repo, layerBytes, { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  const config = await client.pushBlob(
    repo,
    utf8(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })),
    { mediaType: MT.ociConfig },
  );
  const manifest = utf8(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config,
      layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
    }),
  );
  return { digest: await client.putManifest(repo, 'v1', manifest, MT.ociManifest), layer: layer.digest };
}

describe('streaming blobs in chunks', () => {
  it('every blob size around the chunk boundaries arrives byte for byte', async () => {
    const chunk = 64 * 1024;
    const sizes = fc.oneof(
      fc.constantFrom(0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3 * chunk + 7),
      fc.integer({ min: 0, max: 5 * chunk }),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(sizes, fc.integer({ min: 1, max: 3 }), async (size, chunks) => {
        const repo = `prop/image-${n++}`;
        const bytes = new Uint8Array(randomBytes(size));
        const image = await pushImage({ registry: SRC, repository: repo }, bytes);
        const result = await copyImage({
          client,
          source: `${SRC}/${repo}:v1`,
          destination: `${DST}/${repo}`,
          chunkBytes: chunks * chunk,
        });
        expect(result.digest).toBe(image.digest);
        const copied = await client.getBlob({ registry: DST, repository: repo }, image.layer, size);
        expect(Buffer.from(copied).equals(Buffer.from(bytes))).toBe(true);
        // The layer and the config, each sent once (or found there: blobs are shared across repositories).
        const configSize = (await client.getManifest({ registry: DST, repository: repo }, image.digest)).json
          .config as { size: number };
        expect(result.summary.bytesCopied + result.summary.bytesSkipped).toBe(size + configSize.size);
      }),
      { numRuns: 25 },
    );
  });

  it('a source whose bytes do not match their digest is caught; nothing is stored under that digest', async () => {
    const repo: RepoRef = { registry: SRC, repository: 'lying/image' };
    const image = await pushImage(repo, new Uint8Array(randomBytes(300_000)));
    corrupt = image.layer;
    try {
      const e = await copyImage({
        client,
        source: `${SRC}/lying/image:v1`,
        destination: `${DST}/lying/image`,
        chunkBytes: 64 * 1024,
        concurrency: 1,
      }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ManageError);
      expect((e as ManageError).code).toBe('MANAGE_COPY_INCOMPLETE');
      expect((e as ManageError).message).toMatch(/does not match its digest/);
      expect(((e as ManageError).cause as { code?: string }).code).toBe('REGISTRY_DIGEST_MISMATCH');
    } finally {
      corrupt = null;
    }
    const there: RepoRef = { registry: DST, repository: 'lying/image' };
    expect(await client.blobExists(there, image.layer)).toBe(false);
    await expect(client.resolve(there, image.digest)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });
    // With the source honest again, the same copy finishes, the config copied before not sent twice.
    const again = await copyImage({ client, source: `${SRC}/lying/image:v1`, destination: `${DST}/lying/image` });
    expect(again.summary.blobs).toMatchObject({ copied: 1, skipped: 1 });
    expect(await client.blobExists(there, image.layer)).toBe(true);
  });

  it('a chunk the destination refuses mid-stream fails the copy, with no unhandled rejection', async () => {
    const repo: RepoRef = { registry: SRC, repository: 'refused/image' };
    const image = await pushImage(repo, new Uint8Array(randomBytes(400_000)));
    let unhandled = 0;
    const onUnhandled = (): void => void unhandled++;
    process.on('unhandledRejection', onUnhandled);
    slow = image.layer;
    failPatch = { nth: 2, seen: 0 };
    try {
      const e = await copyImage({
        client,
        source: `${SRC}/refused/image:v1`,
        destination: `${DST}/refused/image`,
        chunkBytes: 64 * 1024,
        concurrency: 1,
      }).catch((x: unknown) => x);
      // Let a rejection nobody listens to surface before counting.
      await new Promise((r) => setTimeout(r, 50));
      expect(failPatch.seen).toBeGreaterThanOrEqual(2);
      expect(e).toBeInstanceOf(ManageError);
      expect((e as ManageError).code).toBe('MANAGE_COPY_INCOMPLETE');
      expect(((e as ManageError).cause as { code?: string }).code).toBe('REGISTRY_ERROR');
      expect(unhandled).toBe(0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      slow = null;
      failPatch = null;
    }
    const there: RepoRef = { registry: DST, repository: 'refused/image' };
    expect(await client.blobExists(there, image.layer)).toBe(false);
  });

  it('an index listing one manifest twice is copied and counted once', async () => {
    const repo: RepoRef = { registry: SRC, repository: 'twice/image' };
    const image = await pushImage(repo, new Uint8Array(randomBytes(1000)));
    const child = await client.resolve(repo, image.digest);
    const entry = { ...child, platform: { os: 'linux', architecture: 'amd64' } };
    const index = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [entry, entry] }));
    const indexDigest = await client.putManifest(repo, 'v1', index, MT.ociIndex);
    let total = 0;
    const result = await copyImage({
      client,
      source: `${SRC}/twice/image:v1`,
      destination: `${DST}/twice/image`,
      onProgress: (p) => (total = p.bytesTotal),
    });
    expect(result.digest).toBe(indexDigest);
    expect(result.platforms).toEqual(['linux/amd64']);
    expect(result.items.filter((i) => i.kind === 'manifest').map((i) => i.digest)).toEqual([image.digest, indexDigest]);
    const config = (await client.getManifest(repo, image.digest)).json.config as { size: number };
    expect(total).toBe(1000 + config.size + child.size + index.length);
  });

  it('a blob whose Content-Length is empty, or describes an encoded body, is still copied', async () => {
    const cases: Record<string, string>[] = [
      { 'content-length': '' },
      { 'content-encoding': 'gzip', 'content-length': '17' },
    ];
    for (const headers of cases) {
      const name = `length/${headers['content-encoding'] ?? 'empty'}`;
      const repo: RepoRef = { registry: SRC, repository: name };
      const bytes = new Uint8Array(randomBytes(100_000));
      const image = await pushImage(repo, bytes);
      oddLength = { digest: image.layer, headers };
      try {
        const result = await copyImage({ client, source: `${SRC}/${name}:v1`, destination: `${DST}/${name}` });
        expect(result.summary.blobs.copied).toBe(2);
      } finally {
        oddLength = null;
      }
      const copied = await client.getBlob({ registry: DST, repository: name }, image.layer, bytes.length);
      expect(Buffer.from(copied).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it('a .sig merged into the destination survives a writer that overwrites it, and a refused write is retried', async () => {
    /** Pushes a `.sig` of `digest` holding one layer per payload; returns the manifest and layers. */
    const pushSig = async (repo: RepoRef, digest: string, payloads: string[]) => {
      const layers: Descriptor[] = [];
      for (const text of payloads) {
        const payload = utf8(text);
        await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
        layers.push(sigLayer(payload, Buffer.from(text).toString('base64')));
      }
      const built = buildSigManifest(layers);
      await client.pushBlob(repo, built.config, { mediaType: MT.ociConfig });
      await client.putManifest(repo, sigTag(digest), built.manifest, MT.ociManifest);
      return { manifest: built.manifest, layers };
    };
    for (const trouble of ['race', 'refused'] as const) {
      const name = `merge/${trouble}`;
      const from: RepoRef = { registry: SRC, repository: name };
      const to: RepoRef = { registry: DST, repository: name };
      const image = await pushImage(from, new Uint8Array(randomBytes(1000)));
      const source = await pushSig(from, image.digest, [`source signature ${trouble}`]);
      const there = await pushSig(to, image.digest, [`destination signature ${trouble}`]);
      if (trouble === 'race') race = { tag: sigTag(image.digest), restore: there.manifest, written: false };
      else refuseTagOnce = sigTag(image.digest);
      try {
        const result = await copyImage({
          client,
          source: `${SRC}/${name}:v1`,
          destination: `${DST}/${name}`,
          settleDelay: () => 5,
        });
        expect(result.summary.signatures.merged).toBe(1);
        // The trouble happened.
        expect(trouble === 'race' ? race : refuseTagOnce).toBeNull();
      } finally {
        race = null;
        refuseTagOnce = null;
      }
      const layers = (await client.getManifest(to, sigTag(image.digest))).json.layers as Descriptor[];
      expect(layers).toHaveLength(2);
      for (const l of [...there.layers, ...source.layers]) {
        expect(layers.filter((x) => sameSignatureLayer(x, l))).toHaveLength(1);
      }
    }
  });
});

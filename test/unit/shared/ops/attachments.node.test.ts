/**
 * shared/ops/attachments.ts against the embedded registry (server/registry/) served in-process:
 * the legacy tags found, absent or failed, the referrers through the API and through the
 * referrers tag schema's index, each referrer's manifest read once, when asked for, the
 * limits of shared/cosign/limits.ts, bounded concurrency and the abort signal; the guarded read of
 * a signature blob, and the platforms of an index whose attachments are read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../../server/registry/registry.ts';
import { servedAs } from '../../server/served-as.ts';
import {
  attachmentTag,
  indexPlatforms,
  readAttachments,
  readSignatureBlob,
  startAttachmentReads,
  tooManyLayers,
  tooManyReferrers,
  type ReferrersFound,
  type TagFound,
} from '../../../../shared/ops/attachments.ts';
import {
  buildBundleReferrer,
  buildReferrersIndex,
  buildSigManifest,
  referrersTag,
  sigLayer,
} from '../../../../shared/cosign/manifests.ts';
import { MAX_LAYERS, MAX_PLATFORMS, MAX_REFERRERS, MAX_SIGNATURE_BLOB } from '../../../../shared/cosign/limits.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { RegistryError, VerificationError } from '../../../../shared/errors.ts';
import { RegistryClient, type Manifest, type RepoRef } from '../../../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../../../shared/registry/mediatypes.ts';

const HOST = 'attachments.test:5000';
let dir: string;
let registry: EmbeddedRegistry;

/** The registry answers 404 to the referrers API, as distribution 2.8 does. */
let noReferrersApi = false;
/** Paths (ending) the registry answers with 500. */
let failing: string[] = [];
/** Manifests served instead of the registry's, by path ending (what a hostile registry may send). */
let served = new Map<string, Uint8Array>();
/** Answers held back until the test lets them go, by path ending. */
let held = new Map<string, Promise<void>>();
/** Every request path, and the most requests in flight at once. */
let requests: string[] = [];
let inFlight = 0;
let maxInFlight = 0;

const fetchRegistry: typeof fetch = async (input, init) => {
  const req = new Request(input, init);
  const path = new URL(req.url).pathname;
  requests.push(`${req.method} ${path}`);
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    // Let other requests start, so the concurrency bound is what limits them.
    await new Promise((r) => setTimeout(r, 2));
    await [...held].find(([p]) => path.endsWith(p))?.[1];
    if (noReferrersApi && /\/v2\/.+\/referrers\/sha256:/.test(path))
      return new Response('404 page not found', { status: 404 });
    if (failing.some((f) => path.endsWith(f))) {
      return new Response('{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}', { status: 500 });
    }
    const fake = [...served].find(([p]) => path.endsWith(p))?.[1];
    if (fake && req.method === 'GET') {
      return new Response(fake as Uint8Array<ArrayBuffer>, {
        status: 200,
        headers: { 'content-type': MT.ociManifest, 'docker-content-digest': sha256Digest(fake) },
      });
    }
    return await registry.app.fetch(req);
  } finally {
    inFlight--;
  }
};

const client = new RegistryClient({ fetch: fetchRegistry, scheme: () => 'http' });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-attachments-'));
  registry = createEmbeddedRegistry({ dataDir: dir, site: servedAs(HOST) });
});
afterAll(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  noReferrersApi = false;
  failing = [];
  served = new Map();
  held = new Map();
  requests = [];
  maxInFlight = 0;
});

let counter = 0;

/** A small image of its own in `repo`; returns its descriptor. */
async function pushImage(repo: RepoRef): Promise<Descriptor> {
  const layer = await client.pushBlob(repo, utf8(`layer ${++counter}`), {
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
  });
  const config = await client.pushBlob(repo, utf8(JSON.stringify({ architecture: 'amd64', os: 'linux' })), {
    mediaType: MT.ociConfig,
  });
  const bytes = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [layer] }));
  const digest = await client.putManifest(repo, `v${counter}`, bytes, MT.ociManifest);
  return { mediaType: MT.ociManifest, digest, size: bytes.length };
}

/** A `.sig` (or `.att`) manifest of `n` layers at the subject's tag. */
async function pushTag(repo: RepoRef, subject: string, suffix: 'sig' | 'att', n: number): Promise<string> {
  const layers: Descriptor[] = [];
  for (let i = 0; i < n; i++) {
    const payload = utf8(`{"payload":${i},"of":"${subject}"}`);
    await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
    layers.push(sigLayer(payload, 'AA=='));
  }
  const { manifest, config, configDescriptor } = buildSigManifest(layers);
  await client.pushBlob(repo, config, { mediaType: configDescriptor.mediaType });
  return client.putManifest(repo, attachmentTag(subject, suffix), manifest, MT.ociManifest);
}

/** A bundle referrer of `subject`; returns its manifest's descriptor. */
async function pushReferrer(repo: RepoRef, subject: Descriptor): Promise<Descriptor> {
  const bundle = utf8(`{"mediaType":"${MT.sigstoreBundle}","n":${++counter}}`);
  const blob = await client.pushBlob(repo, bundle, { mediaType: MT.sigstoreBundle });
  await client.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
  const bytes = buildBundleReferrer(subject, blob, 'https://sigstore.dev/cosign/sign/v1', '2026-12-02T17:00:00Z');
  const { digest } = await client.pushReferrer(repo, bytes, MT.ociManifest);
  return { mediaType: MT.ociManifest, digest, size: bytes.length, artifactType: MT.sigstoreBundle };
}

describe('readAttachments', () => {
  it('reads the legacy tags (found, absent) and the referrers API, each referrer manifest on demand', async () => {
    const repo = { registry: HOST, repository: 'lazy/image' };
    const image = await pushImage(repo);
    const sigDigest = await pushTag(repo, image.digest, 'sig', 2);
    const referrer = await pushReferrer(repo, image);
    requests = [];
    const lookedFor: string[] = [];
    const read = await readAttachments(client, repo, image.digest, { onLookup: (m) => lookedFor.push(m) });

    expect(read.subject).toBe(image.digest);
    const sig = read.tags.sig as TagFound;
    expect(sig.state).toBe('found');
    expect(sig.tag).toBe(`${image.digest.replace(':', '-')}.sig`);
    expect(sig.manifest.descriptor.digest).toBe(sigDigest);
    expect(sig.layerCount).toBe(2);
    expect(sig.layers).toEqual((sig.manifest.json.layers as unknown[]).slice(0, 2));
    expect(tooManyLayers(sig)).toBeNull();
    expect(read.tags.att).toEqual({ state: 'absent', suffix: 'att', tag: attachmentTag(image.digest, 'att') });
    expect(read.tags.sbom.state).toBe('absent');
    expect(lookedFor.sort()).toEqual(
      [
        `Looked for ${attachmentTag(image.digest, 'att')}`,
        `Looked for ${attachmentTag(image.digest, 'sbom')}`,
        `Looked for ${attachmentTag(image.digest, 'sig')}`,
        `Looked for referrers of ${image.digest.slice(0, 19)}…`,
      ].sort(),
    );

    const refs = read.referrers as ReferrersFound;
    expect(refs.state).toBe('found');
    expect(refs.via).toBe('api');
    expect(refs.fallback).toBeNull();
    expect(refs.descriptors.map((d) => d.digest)).toEqual([referrer.digest]);
    // Nothing read yet by the referrer's digest; then exactly once, however often it is asked for.
    expect(requests.filter((p) => p.endsWith(`/manifests/${referrer.digest}`))).toEqual([]);
    const [m1, m2] = await Promise.all([refs.referrers[0]!.manifest(), refs.referrers[0]!.manifest()]);
    expect(m1).toBe(m2);
    expect(m1.descriptor.digest).toBe(referrer.digest);
    expect((m1.json.subject as Descriptor).digest).toBe(image.digest);
    expect(requests.filter((p) => p.endsWith(`/manifests/${referrer.digest}`))).toHaveLength(1);
  });

  it('falls back to the referrers tag schema, and reads each referrer manifest once when asked', async () => {
    const repo = { registry: HOST, repository: 'fallback/image' };
    const image = await pushImage(repo);
    const a = await pushReferrer(repo, image);
    const b = await pushReferrer(repo, image);
    // cosign 3.1 writes the empty artifact type in the fallback index: it must not matter.
    const index = buildReferrersIndex([
      { ...a, artifactType: MT.ociEmpty },
      { ...b, artifactType: MT.ociEmpty },
    ]);
    const indexDigest = await client.putManifest(repo, referrersTag(image.digest), index, MT.ociIndex);
    noReferrersApi = true;
    requests = [];
    const read = await readAttachments(client, repo, image.digest, { tags: ['sig'] });

    expect(Object.keys(read.tags)).toEqual(['sig']);
    expect(read.tags.sig.state).toBe('absent');
    expect(requests.some((p) => p.endsWith('.att') || p.endsWith('.sbom'))).toBe(false);
    const refs = read.referrers as ReferrersFound;
    expect(refs.via).toBe('tag-schema');
    expect(refs.fallback).toEqual({ tag: referrersTag(image.digest), digest: indexDigest });
    expect(refs.referrers.map((r) => r.descriptor.digest)).toEqual([a.digest, b.digest]);
    // Neither read during readAttachments; each read once when asked, and asking again reads nothing more.
    const byReferrer = (): string[] =>
      requests.filter((p) => p.endsWith(`/manifests/${a.digest}`) || p.endsWith(`/manifests/${b.digest}`));
    expect(byReferrer()).toHaveLength(0);
    const manifests = await Promise.all(refs.referrers.map((r) => r.manifest()));
    expect(manifests.map((m) => m.descriptor.digest)).toEqual([a.digest, b.digest]);
    expect(byReferrer()).toHaveLength(2);
    const before = requests.length;
    await Promise.all(refs.referrers.map((r) => r.manifest()));
    expect(requests.length).toBe(before);
  });

  it('after a registry answered without the API, asks it and the fallback index at once; the API wins when back', async () => {
    const repo = { registry: HOST, repository: 'fallback/remembered' };
    const image = await pushImage(repo);
    const a = await pushReferrer(repo, image);
    await client.putManifest(repo, referrersTag(image.digest), buildReferrersIndex([a]), MT.ociIndex);
    const fresh = new RegistryClient({ fetch: fetchRegistry, scheme: () => 'http' });
    const lookUp = async (): Promise<{ via: string; requests: string[]; maxInFlight: number }> => {
      requests = [];
      maxInFlight = 0;
      const refs = await fresh.referrers(repo, image.digest);
      expect(refs.descriptors.map((d) => d.digest)).toEqual([a.digest]);
      return { via: refs.via, requests: [...requests].sort(), maxInFlight };
    };
    noReferrersApi = true;
    const api = `GET /v2/${repo.repository}/referrers/${image.digest}`;
    const tag = `GET /v2/${repo.repository}/manifests/${referrersTag(image.digest)}`;
    // The first time, one after the other (the API's 404 says the index is needed).
    expect(await lookUp()).toEqual({ via: 'tag-schema', requests: [api, tag].sort(), maxInFlight: 1 });
    // Then both at once.
    expect(await lookUp()).toEqual({ via: 'tag-schema', requests: [api, tag].sort(), maxInFlight: 2 });
    // The API back: its answer is the one used, and the index is no longer asked for after that.
    noReferrersApi = false;
    expect((await lookUp()).via).toBe('api');
    expect(await lookUp()).toEqual({ via: 'api', requests: [api], maxInFlight: 1 });
  });

  it('startAttachmentReads hands out the .sig tag while the referrers are still being listed', async () => {
    const repo = { registry: HOST, repository: 'apart/image' };
    const image = await pushImage(repo);
    await pushTag(repo, image.digest, 'sig', 1);
    await pushReferrer(repo, image);
    let release!: () => void;
    held.set(`/referrers/${image.digest}`, new Promise<void>((r) => (release = r)));
    const reads = startAttachmentReads(client, repo, image.digest, { tags: ['sig'] });
    let listed = false;
    void reads.referrers.then(() => (listed = true));
    expect((await reads.tags.sig).state).toBe('found');
    expect(listed).toBe(false);
    release();
    expect((await reads.referrers).state).toBe('found');
    await reads.settled;
  });

  it('without the API and without a fallback index: no referrers, and no fallback', async () => {
    const repo = { registry: HOST, repository: 'fallback/none' };
    const image = await pushImage(repo);
    noReferrersApi = true;
    const read = await readAttachments(client, repo, image.digest);
    expect(read.referrers).toMatchObject({ state: 'found', via: 'tag-schema', fallback: null, descriptors: [] });
  });

  it('reports a failed lookup on its part, with the error thrown, and reads the others', async () => {
    const repo = { registry: HOST, repository: 'failing/image' };
    const image = await pushImage(repo);
    await pushTag(repo, image.digest, 'att', 1);
    failing = [`/manifests/${attachmentTag(image.digest, 'sig')}`, `/referrers/${image.digest}`];
    const read = await readAttachments(client, repo, image.digest);
    const sig = read.tags.sig;
    expect(sig.state).toBe('failed');
    if (sig.state !== 'failed') return;
    expect(sig.error).toBeInstanceOf(RegistryError);
    expect(sig.reason).toEqual({ code: (sig.error as RegistryError).code, message: (sig.error as Error).message });
    expect(read.tags.att.state).toBe('found');
    expect(read.tags.sbom.state).toBe('absent');
    expect(read.referrers.state).toBe('failed');
    if (read.referrers.state === 'failed') expect(read.referrers.error).toBeInstanceOf(RegistryError);
  });

  it('a referrer listed by a digest that is not sha256 is refused when read; entries without a digest are dropped', async () => {
    const repo = { registry: HOST, repository: 'hostile/listing' };
    const image = await pushImage(repo);
    const good = await pushReferrer(repo, image);
    const index = utf8(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [good, null, 'text', { mediaType: MT.ociManifest }, { ...good, digest: 'sha512:abc' }],
      }),
    );
    served.set(`/manifests/${referrersTag(image.digest)}`, index);
    noReferrersApi = true;
    const read = await readAttachments(client, repo, image.digest);
    const refs = read.referrers as ReferrersFound;
    expect(refs.fallback).toEqual({ tag: referrersTag(image.digest), digest: sha256Digest(index) });
    expect(refs.descriptors.map((d) => d.digest)).toEqual([good.digest, 'sha512:abc']);
    expect((await refs.referrers[0]!.manifest()).descriptor.digest).toBe(good.digest);
    await expect(refs.referrers[1]!.manifest()).rejects.toMatchObject({
      code: 'REGISTRY_UNSUPPORTED',
      message: 'sha512:abc is not a sha256 digest.',
    });
    expect(requests.some((p) => p.includes('sha512'))).toBe(false);
  });

  it('hands out at most MAX_LAYERS layers and MAX_REFERRERS referrers, and says how many there were', async () => {
    const repo = { registry: HOST, repository: 'hostile/many' };
    const image = await pushImage(repo);
    const layer = sigLayer(utf8('{}'), 'AA==');
    const sig = utf8(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: layer,
        layers: Array.from({ length: MAX_LAYERS + 5 }, () => layer),
      }),
    );
    served.set(`/manifests/${attachmentTag(image.digest, 'sig')}`, sig);
    const many = Array.from({ length: MAX_REFERRERS + 3 }, (_, i) => ({
      mediaType: MT.ociManifest,
      size: 10,
      digest: sha256Digest(utf8(`referrer ${i}`)),
    }));
    served.set(`/manifests/${referrersTag(image.digest)}`, buildReferrersIndex(many));
    noReferrersApi = true;
    const read = await readAttachments(client, repo, image.digest);
    const found = read.tags.sig as TagFound;
    expect(found.layers).toHaveLength(MAX_LAYERS);
    expect(found.layerCount).toBe(MAX_LAYERS + 5);
    expect(tooManyLayers(found)).toEqual({
      code: 'VERIFY_TOO_MANY',
      message: `${found.tag} holds ${MAX_LAYERS + 5} layers; this page reads the first ${MAX_LAYERS}.`,
    });
    const refs = read.referrers as ReferrersFound;
    expect(refs.descriptors).toHaveLength(MAX_REFERRERS + 3);
    expect(refs.referrers).toHaveLength(MAX_REFERRERS);
    expect(refs.referrers.map((r) => r.descriptor.digest)).toEqual(many.slice(0, MAX_REFERRERS).map((d) => d.digest));
    expect(tooManyReferrers(refs, 'image')).toEqual({
      code: 'VERIFY_TOO_MANY',
      message: `The image has ${MAX_REFERRERS + 3} referrers; this page reads the first ${MAX_REFERRERS}.`,
    });
  });

  it('keeps at most `concurrency` requests in flight', async () => {
    const repo = { registry: HOST, repository: 'bounded/image' };
    const image = await pushImage(repo);
    for (let i = 0; i < 5; i++) await pushReferrer(repo, image);
    requests = [];
    maxInFlight = 0;
    // A client of its own: one that met a registry without the referrers API asks for the fallback
    // index alongside the API (one lookup, two requests); this registry has the API.
    const fresh = new RegistryClient({ fetch: fetchRegistry, scheme: () => 'http' });
    const read = await readAttachments(fresh, repo, image.digest, { concurrency: 2 });
    expect((read.referrers as ReferrersFound).referrers).toHaveLength(5);
    // The three tags and the referrers; no referrer manifest until one is asked for.
    expect(requests).toHaveLength(4);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    maxInFlight = 0;
    await readAttachments(fresh, repo, image.digest, { concurrency: 6 });
    expect(maxInFlight).toBeGreaterThan(2);
  });

  it('throws the signal reason when aborted, before or during the reads', async () => {
    const repo = { registry: HOST, repository: 'aborted/image' };
    const image = await pushImage(repo);
    for (let i = 0; i < 3; i++) await pushReferrer(repo, image);
    const before = new AbortController();
    const reason = new Error('stopped by the test');
    before.abort(reason);
    requests = [];
    await expect(readAttachments(client, repo, image.digest, { signal: before.signal })).rejects.toBe(reason);
    expect(requests).toEqual([]);

    const during = new AbortController();
    const lookups: string[] = [];
    const read = readAttachments(client, repo, image.digest, {
      signal: during.signal,
      concurrency: 1,
      onLookup: (m) => {
        lookups.push(m);
        during.abort(reason);
      },
    });
    await expect(read).rejects.toBe(reason);
    expect(lookups).toHaveLength(1);
  });
});

describe('readSignatureBlob', () => {
  it('reads a blob by a sha256 descriptor within the limit, and refuses anything else before asking', async () => {
    const repo = { registry: HOST, repository: 'blobs/image' };
    const payload = utf8('{"critical":{}}');
    const layer = await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
    expect(await readSignatureBlob(client, repo, layer, 'payload blob')).toEqual(payload);
    requests = [];
    await expect(readSignatureBlob(client, repo, { ...layer, digest: 'sha512:abc' }, 'payload blob')).rejects.toEqual(
      new VerificationError(
        'VERIFY_LAYER_MISMATCH',
        'The payload blob descriptor has no usable sha256 digest and size.',
      ),
    );
    await expect(readSignatureBlob(client, repo, { ...layer, size: -1 }, 'layer')).rejects.toMatchObject({
      code: 'VERIFY_LAYER_MISMATCH',
    });
    await expect(
      readSignatureBlob(client, repo, { ...layer, size: MAX_SIGNATURE_BLOB + 1 }, 'bundle blob'),
    ).rejects.toEqual(
      new VerificationError(
        'VERIFY_TOO_MANY',
        `The bundle blob claims ${MAX_SIGNATURE_BLOB + 1} bytes; this page reads at most 1 MiB.`,
      ),
    );
    expect(requests).toEqual([]);
    await expect(
      readSignatureBlob(client, repo, { ...layer, size: payload.length - 1 }, 'layer'),
    ).rejects.toMatchObject({ code: 'REGISTRY_TOO_LARGE' });
  });
});

describe('indexPlatforms', () => {
  const digest = (i: number): string => sha256Digest(utf8(`platform ${i}`));
  const index = (manifests: unknown): Manifest => {
    const bytes = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
    return {
      descriptor: { mediaType: MT.ociIndex, digest: sha256Digest(bytes), size: bytes.length },
      bytes,
      json: JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>,
      etag: null,
    };
  };

  it('lists the entries with a sha256 digest, their platform and a media type this client reads', () => {
    const read = indexPlatforms(
      index([
        { mediaType: MT.ociManifest, digest: digest(1), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: 'application/x-unknown', digest: digest(2), size: 1 },
        { mediaType: MT.dockerManifest, digest: 'sha512:abc', size: 1 },
        null,
        'text',
        {
          mediaType: MT.dockerManifest,
          digest: digest(3),
          size: 1,
          platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        },
      ]),
    );
    expect(read).toEqual({
      listed: 3,
      platforms: [
        { digest: digest(1), mediaType: MT.ociManifest, platform: 'linux/amd64' },
        { digest: digest(2), mediaType: MT.ociManifest, platform: 'unknown platform' },
        { digest: digest(3), mediaType: MT.dockerManifest, platform: 'linux/arm64/v8' },
      ],
    });
  });

  it('reads at most MAX_PLATFORMS, and says how many are listed; no list is no platforms', () => {
    const many = Array.from({ length: MAX_PLATFORMS + 2 }, (_, i) => ({
      mediaType: MT.ociManifest,
      digest: digest(i),
      size: 1,
    }));
    const read = indexPlatforms(index(many));
    expect(read.listed).toBe(MAX_PLATFORMS + 2);
    expect(read.platforms.map((p) => p.digest)).toEqual(many.slice(0, MAX_PLATFORMS).map((d) => d.digest));
    expect(indexPlatforms(index('not a list'))).toEqual({ listed: 0, platforms: [] });
  });
});

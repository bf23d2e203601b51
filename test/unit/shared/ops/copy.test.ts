/**
 * What copyImage (shared/ops/copy.ts) refuses to take on while it reads the source, before
 * anything is written: descriptors without a sha256 digest or a media type, indexes and referrer
 * indexes longer than verification reads (MAX_PLATFORMS, MAX_REFERRERS), nested referrer indexes,
 * more blobs or manifest bytes than a copy holds. The source here is a crafted registry answering
 * through `fetch` in-process: these are hostile manifests no real registry would serve (most refuse
 * such a push), which is the point. Runs in Node and in Chromium.
 */
import { describe, expect, it } from 'vitest';
import { MAX_COPY_BLOBS, MAX_COPY_MANIFEST_BYTES, copyImage } from '../../../../shared/ops/copy.ts';
import { MAX_PLATFORMS, MAX_REFERRERS } from '../../../../shared/cosign/limits.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { ManageError, RegistryError } from '../../../../shared/errors.ts';
import { RegistryClient } from '../../../../shared/registry/client.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';

const HOST = 'crafted.test:5000';
const LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** A registry serving exactly the manifests given; it records every path asked for. */
function craftedRegistry(): {
  put(ref: string, json: unknown, mediaType?: string): { mediaType: string; digest: string; size: number };
  referrers: Map<string, unknown[]>;
  asked: string[];
  client: RegistryClient;
} {
  const manifests = new Map<string, { bytes: Uint8Array; mediaType: string; digest: string }>();
  const referrers = new Map<string, unknown[]>();
  const asked: string[] = [];
  const fetchCrafted: typeof fetch = async (input, init) => {
    const req = new Request(input, init);
    const path = new URL(req.url).pathname;
    asked.push(`${req.method} ${path}`);
    const m = /^\/v2\/src\/(manifests|referrers)\/([^/]+)$/.exec(path);
    if (m?.[1] === 'manifests' && manifests.has(m[2]!)) {
      const found = manifests.get(m[2]!)!;
      const headers = { 'content-type': found.mediaType, 'docker-content-digest': found.digest };
      return new Response(req.method === 'HEAD' ? null : (found.bytes as Uint8Array<ArrayBuffer>), { headers });
    }
    if (m?.[1] === 'referrers') {
      const body = JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: referrers.get(m[2]!) ?? [] });
      return new Response(body, { headers: { 'content-type': MT.ociIndex } });
    }
    return new Response('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', { status: 404 });
  };
  return {
    put(ref, json, mediaType = MT.ociManifest) {
      const bytes = new TextEncoder().encode(JSON.stringify(json));
      const digest = sha256Digest(bytes);
      manifests.set(ref, { bytes, mediaType, digest });
      manifests.set(digest, { bytes, mediaType, digest });
      return { mediaType, digest, size: bytes.length };
    },
    referrers,
    asked,
    client: new RegistryClient({ fetch: fetchCrafted, scheme: () => 'http' }),
  };
}

const hex = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`;
const blob = (i: number, mediaType = LAYER): { mediaType: string; digest: string; size: number } => ({
  mediaType,
  digest: hex(i),
  size: 10,
});
const image = (layers: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  schemaVersion: 2,
  mediaType: MT.ociManifest,
  config: blob(0, MT.ociConfig),
  layers,
  ...extra,
});
const index = (manifests: unknown[]): Record<string, unknown> => ({
  schemaVersion: 2,
  mediaType: MT.ociIndex,
  manifests,
});

async function refusal(r: ReturnType<typeof craftedRegistry>, tag = 'v1'): Promise<RegistryError | ManageError> {
  const e = await copyImage({ client: r.client, source: `${HOST}/src:${tag}`, destination: `${HOST}/dst:v1` }).then(
    () => null,
    (x: unknown) => x,
  );
  expect(e instanceof RegistryError || e instanceof ManageError, String(e)).toBe(true);
  // Nothing was written: the destination was never asked anything.
  expect(r.asked.filter((a) => a.includes('/v2/dst/'))).toEqual([]);
  return e as RegistryError | ManageError;
}

describe('descriptors copyImage refuses while reading the source', () => {
  it('a layer without a media type: REGISTRY_BAD_RESPONSE with a sentence, not a TypeError', async () => {
    const r = craftedRegistry();
    r.put('v1', image([{ digest: hex(1), size: 10 }]));
    const e = await refusal(r);
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(e.message).toMatch(/layer listed by the image sha256:0{12}… has no media type/);
  });

  it('an index entry without a media type is refused before it is fetched', async () => {
    const r = craftedRegistry();
    const child = r.put('child', image([blob(1)]));
    r.put('v1', index([{ digest: child.digest, size: child.size }]), MT.ociIndex);
    const e = await refusal(r);
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(e.message).toMatch(/has no media type or size/);
    expect(r.asked.some((a) => a.endsWith(`/manifests/${child.digest}`))).toBe(false);
  });

  it('an index entry whose digest is a tag is refused, never fetched as that tag', async () => {
    const r = craftedRegistry();
    r.put('other', image([blob(1)]));
    r.put('v1', index([{ mediaType: MT.ociManifest, digest: 'other', size: 10 }]), MT.ociIndex);
    const e = await refusal(r);
    expect(e.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(e.message).toMatch(/sha256 followed by 64 hex digits/);
    expect(r.asked.some((a) => a.endsWith('/manifests/other'))).toBe(false);
  });

  it('a config without a sha256 digest is refused', async () => {
    const r = craftedRegistry();
    r.put('v1', image([blob(1)], { config: { mediaType: MT.ociConfig, digest: 'md5:abc', size: 3 } }));
    expect((await refusal(r)).code).toBe('REGISTRY_BAD_RESPONSE');
  });
});

describe('limits on what a copy holds', () => {
  it(`an index of more than MAX_PLATFORMS (${MAX_PLATFORMS}) manifests: MANAGE_TOO_MANY, none fetched`, async () => {
    const r = craftedRegistry();
    const list = Array.from({ length: MAX_PLATFORMS + 1 }, (_, i) => blob(i + 1, MT.ociManifest));
    r.put('v1', index(list), MT.ociIndex);
    const e = await refusal(r);
    expect(e.code).toBe('MANAGE_TOO_MANY');
    expect(e.message).toBe(
      `The index lists ${MAX_PLATFORMS + 1} manifests; this page copies at most ${MAX_PLATFORMS}.`,
    );
    expect(r.asked.filter((a) => a.includes('/manifests/sha256:'))).toEqual([]);
  });

  it(`more than MAX_COPY_BLOBS (${MAX_COPY_BLOBS}) blobs: MANAGE_TOO_MANY`, async () => {
    const r = craftedRegistry();
    r.put('v1', image(Array.from({ length: MAX_COPY_BLOBS }, (_, i) => blob(i + 1))));
    const e = await refusal(r);
    expect(e.code).toBe('MANAGE_TOO_MANY');
    expect(e.message).toMatch(`more than ${MAX_COPY_BLOBS} blobs`);
  });

  it('platform manifests adding up to more than MAX_COPY_MANIFEST_BYTES: MANAGE_TOO_MANY', async () => {
    const r = craftedRegistry();
    const each = 4 * 1024 * 1024 - 4096; // under the client's 4 MiB per manifest
    const count = Math.floor(MAX_COPY_MANIFEST_BYTES / each) + 1;
    expect(count).toBeLessThanOrEqual(MAX_PLATFORMS);
    const list = Array.from({ length: count }, (_, i) =>
      r.put(`p${i}`, image([blob(i + 1)], { annotations: { pad: 'x'.repeat(each - 300) } })),
    );
    r.put('v1', index(list), MT.ociIndex);
    const e = await refusal(r);
    expect(e.code).toBe('MANAGE_TOO_MANY');
    expect(e.message).toMatch(/add up to more than 64 MiB/);
  });

  it('a referrer index: more than MAX_REFERRERS children, a nested index, a bad digest are refused', async () => {
    const cases: { children: unknown[]; code: string; words: RegExp }[] = [
      {
        children: Array.from({ length: MAX_REFERRERS + 1 }, (_, i) => blob(i + 1, MT.ociManifest)),
        code: 'MANAGE_TOO_MANY',
        words: new RegExp(`lists ${MAX_REFERRERS + 1} manifests; this page copies at most ${MAX_REFERRERS}`),
      },
      { children: [blob(1, MT.ociIndex)], code: 'REGISTRY_UNSUPPORTED', words: /not an image manifest/ },
      {
        children: [{ mediaType: MT.ociManifest, digest: 'sha256:short', size: 1 }],
        code: 'REGISTRY_BAD_RESPONSE',
        words: /sha256 followed by 64 hex digits/,
      },
    ];
    for (const c of cases) {
      const r = craftedRegistry();
      const root = r.put('v1', image([blob(1)]));
      const refIndex = r.put('refidx', { ...index(c.children), subject: root }, MT.ociIndex);
      r.referrers.set(root.digest, [refIndex]);
      const e = await refusal(r);
      expect(e.code).toBe(c.code);
      expect(e.message).toMatch(c.words);
      // A nested index is refused by its descriptor, without being fetched.
      expect(r.asked.some((a) => a.endsWith(`/manifests/${hex(1)}`))).toBe(false);
    }
  });
});

/**
 * The registry client in shared/ against the real distribution 2.8 registries of the test rig,
 * directly from Node (through the relay: relay.test.ts and the e2e tests): TLS with a throwaway
 * CA, plain HTTP with basic auth, and token auth with a token server.
 */
import { describe, expect, inject, it } from 'vitest';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { sha256Digest } from '../../shared/crypto/digest.ts';
import { RegistryError } from '../../shared/errors.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { pushSampleImage } from '../rig/images.ts';
import { caFetch } from './ca-fetch.ts';

const regs = inject('cosignWebRegistries');

interface Target {
  name: string;
  registry: string;
  client: RegistryClient;
  anonymous: RegistryClient;
  image: { host: string; caFile?: string; username?: string; password?: string };
}

function targets(): Target[] {
  const tls = regs.tls;
  const basic = regs.basic;
  const token = regs.token!;
  const tlsFetch = caFetch(tls.caFile);
  return [
    {
      name: 'TLS',
      registry: tls.host,
      client: new RegistryClient({ fetch: tlsFetch }),
      anonymous: new RegistryClient({ fetch: tlsFetch }),
      image: { host: tls.host, caFile: tls.caFile },
    },
    {
      name: 'basic auth over HTTP',
      registry: basic.host,
      client: new RegistryClient({
        fetch: caFetch(),
        scheme: () => 'http',
        credentials: () => ({ username: basic.username, password: basic.password }),
      }),
      anonymous: new RegistryClient({ fetch: caFetch(), scheme: () => 'http' }),
      image: { host: basic.host, username: basic.username, password: basic.password },
    },
    {
      name: 'token auth',
      registry: token.host,
      client: new RegistryClient({
        fetch: caFetch(token.caFile),
        credentials: () => ({ username: token.username, password: token.password }),
      }),
      anonymous: new RegistryClient({ fetch: caFetch(token.caFile) }),
      image: { host: token.host, caFile: token.caFile, username: token.username, password: token.password },
    },
  ];
}

describe.each(targets())('$name registry', (t) => {
  const repo: RepoRef = { registry: t.registry, repository: 'client/test' };

  it('pings, pushes a blob and a manifest, resolves, lists tags, pulls back and deletes', async () => {
    await t.client.ping(t.registry);
    const config = utf8('{}');
    const blob = utf8(`layer ${Math.random()}`);
    const configDesc = await t.client.pushBlob(repo, config, { mediaType: MT.ociEmpty });
    const layerDesc = await t.client.pushBlob(repo, blob, { mediaType: 'application/vnd.example.data' });
    expect(layerDesc.digest).toBe(sha256Digest(blob));
    expect(await t.client.blobExists(repo, layerDesc.digest)).toBe(true);
    const manifest = utf8(
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: configDesc, layers: [layerDesc] }),
    );
    const digest = await t.client.putManifest(repo, 'v1', manifest, MT.ociManifest);
    expect(digest).toBe(sha256Digest(manifest));
    expect(await t.client.resolve(repo, 'v1')).toEqual({ mediaType: MT.ociManifest, digest, size: manifest.length });
    expect(await t.client.listTags(repo)).toContain('v1');
    const got = await t.client.getManifest(repo, digest);
    expect(got.bytes).toEqual(manifest);
    expect(await t.client.getBlob(repo, layerDesc.digest, layerDesc.size)).toEqual(blob);
    await t.client.deleteManifest(repo, digest);
    await expect(t.client.resolve(repo, digest)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });
  });

  it("getManifest returns the registry's ETag; a put with If-Match of the current ETag is accepted", async () => {
    const config = await t.client.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
    const manifest = utf8(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config,
        layers: [],
        annotations: { n: String(Math.random()) },
      }),
    );
    const digest = await t.client.putManifest(repo, 'etag', manifest, MT.ociManifest);
    const got = await t.client.getManifest(repo, 'etag');
    expect(got.etag).toBe(`"${digest}"`); // distribution 2.8 sends the digest, quoted
    expect(await t.client.putManifest(repo, 'etag', manifest, MT.ociManifest, { ifMatch: got.etag! })).toBe(digest);
  });

  it('mounts a blob from another repository of the same registry', async () => {
    const blob = utf8(`mount me ${Math.random()}`);
    const from: RepoRef = { registry: t.registry, repository: 'client/source' };
    const to: RepoRef = { registry: t.registry, repository: 'client/dest' };
    const d = await t.client.pushBlob(from, blob);
    expect(await t.client.blobExists(to, d.digest)).toBe(false);
    await t.client.pushBlob(to, blob, { mountFrom: from.repository });
    expect(await t.client.getBlob(to, d.digest, d.size)).toEqual(blob);
  });

  it('resolves an index pushed by skopeo, with its platforms', async () => {
    const pushed = await pushSampleImage(t.image, 'client/multi', 'v1', { index: true });
    const d = await t.client.resolve({ registry: t.registry, repository: 'client/multi' }, 'v1');
    expect(d.digest).toBe(pushed.digest);
    expect(d.mediaType).toBe(MT.ociIndex);
    const index = await t.client.getManifest({ registry: t.registry, repository: 'client/multi' }, pushed.digest);
    expect((index.json.manifests as unknown[]).length).toBe(2);
  });

  it('falls back to the referrers tag schema (distribution 2.8 has no referrers API)', async () => {
    const r = await t.client.referrers(repo, 'sha256:' + '0'.repeat(64));
    expect(r).toEqual({ descriptors: [], via: 'tag-schema', filtersApplied: false });
  });

  it('a missing manifest is REGISTRY_NOT_FOUND with a sentence', async () => {
    const e = await t.client.resolve(repo, 'no-such-tag').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect(e).toMatchObject({ code: 'REGISTRY_NOT_FOUND', status: 404 });
    expect((e as Error).message).toMatch(/said 404 for client\/test:no-such-tag: not found/);
  });

  if (t.name !== 'TLS') {
    it('without credentials: REGISTRY_UNAUTHORIZED', async () => {
      await expect(t.anonymous.listTags(repo)).rejects.toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
    });
    it('with wrong credentials: REGISTRY_UNAUTHORIZED, "refused"', async () => {
      const wrong = new RegistryClient({
        fetch: caFetch(t.image.caFile),
        ...(t.name.includes('HTTP') ? { scheme: () => 'http' as const } : {}),
        credentials: () => ({ username: t.image.username!, password: 'wrong' }),
      });
      const e = await wrong.listTags(repo).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
      expect((e as Error).message).toMatch(/refused/);
    });
  }
});

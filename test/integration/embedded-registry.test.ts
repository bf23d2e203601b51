/**
 * The embedded registry (server/registry/) served for real on 127.0.0.1 and driven by the real
 * clients of the test rig: skopeo 1.18 (copy of a 2-platform index in and out), the shared
 * RegistryClient (including the OCI 1.1 referrers API), cosign 2.5 (legacy `.sig`) and cosign 3.1
 * (Sigstore bundle through the referrers API); and conditional manifest writes (ETag, If-Match)
 * through the server's relay.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { sha256Digest } from '../../shared/crypto/digest.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { pushSampleImage } from '../rig/images.ts';
import { cosign2SignArgs, cosign3SignArgs, cosignVerifyArgs, runOk, skopeoEnv } from '../rig/tools.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';
import { caFetch } from './ca-fetch.ts';
import { useRig } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-embedded-', offlineCosign3: true, password: '', trustTls: false });
let host: string;
let key: string;
let pub: string;

beforeAll(async () => {
  ({ host } = await rig.serveEmbeddedRegistry('cosign-web-embedded-it-'));
  ({ key, pub } = await rig.cosign2KeyPair());
});

function client(): RegistryClient {
  return new RegistryClient({ fetch: caFetch(), scheme: () => 'http' });
}

describe('embedded registry with the real clients', () => {
  it('skopeo copies a 2-platform index in and back out with the same digests', async () => {
    const image = await pushSampleImage({ host }, 'skopeo/index', 'v1', { index: true });
    const out = await mkdtemp(join(tmpdir(), 'cosign-web-embedded-out-'));
    try {
      await runOk(
        'skopeo',
        [
          'copy',
          '--all',
          '--preserve-digests',
          '--src-tls-verify=false',
          `docker://${image.tagRef}`,
          `oci:${join(out, 'layout')}:v1`,
        ],
        { env: skopeoEnv(rig.home) },
      );
      const index = JSON.parse(await readFile(join(out, 'layout', 'index.json'), 'utf8')) as {
        manifests: { digest: string }[];
      };
      expect(index.manifests.map((m) => m.digest)).toEqual([image.digest]);
      for (const p of image.platforms) {
        const bytes = await readFile(join(out, 'layout', 'blobs', 'sha256', p.digest.slice('sha256:'.length)));
        expect(sha256Digest(bytes)).toBe(p.digest);
      }
      const inspected = await runOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${image.tagRef}`], {
        env: skopeoEnv(rig.home),
      });
      expect(sha256Digest(utf8(inspected.stdout))).toBe(image.digest);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('the shared client pushes, resolves, lists, pulls, finds referrers through the API and deletes', async () => {
    const c = client();
    const repo: RepoRef = { registry: host, repository: 'client/test' };
    await c.ping(host);
    const config = await c.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
    const layer = await c.pushBlob(repo, utf8(`layer ${Math.random()}`), { mediaType: 'application/vnd.example' });
    const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [layer] }));
    const digest = await c.putManifest(repo, 'v1', manifest, MT.ociManifest);
    expect(await c.resolve(repo, 'v1')).toEqual({ mediaType: MT.ociManifest, digest, size: manifest.length });
    expect(await c.listTags(repo)).toEqual(['v1']);
    expect((await c.getManifest(repo, digest)).bytes).toEqual(manifest);
    const referrer = utf8(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        artifactType: 'application/vnd.example.sbom',
        config,
        layers: [layer],
        subject: { mediaType: MT.ociManifest, digest, size: manifest.length },
      }),
    );
    const pushed = await c.pushReferrer(repo, referrer, MT.ociManifest);
    expect(pushed.subjectProcessed).toBe(true);
    const found = await c.referrers(repo, digest, 'application/vnd.example.sbom');
    expect(found.via).toBe('api');
    expect(found.filtersApplied).toBe(true);
    expect(found.descriptors).toEqual([
      {
        mediaType: MT.ociManifest,
        digest: pushed.digest,
        size: referrer.length,
        artifactType: 'application/vnd.example.sbom',
      },
    ]);
    expect((await c.referrers(repo, digest, 'application/other')).descriptors).toEqual([]);
    await c.deleteManifest(repo, digest);
    await expect(c.getManifest(repo, digest)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });
  });

  it('cosign 2.5 signs (legacy .sig) and verifies', async () => {
    const image = await pushSampleImage({ host }, 'cosign2/image', 'v1');
    const env = rig.env();
    await runOk('cosign2', cosign2SignArgs(key, image.ref), { env });
    const tags = await client().listTags({ registry: host, repository: 'cosign2/image' });
    expect(tags).toContain(`${image.digest.replace(':', '-')}.sig`);
    await runOk('cosign2', cosignVerifyArgs(pub, image.ref), { env });
  });

  it('cosign 3.1 signs through the referrers API (no fallback tag) and verifies', async () => {
    const repository = 'cosign3/image';
    const image = await pushSampleImage({ host }, repository, 'v1');
    const env = rig.env();
    await runOk('cosign3', cosign3SignArgs(key, rig.offline, image.ref), { env });
    const repo = { registry: host, repository };
    const tags = await client().listTags(repo);
    expect(tags).toEqual(['v1']);
    const found = await client().referrers(repo, image.digest);
    expect(found.via).toBe('api');
    expect(found.descriptors).toHaveLength(1);
    expect(found.descriptors[0]?.artifactType).toBe(MT.sigstoreBundle);
    await runOk('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', rig.offline.trustedRoot]), { env });
  });

  it('through the relay: a manifest PUT with a stale If-Match gets 412, with the ETag just read it is taken', async () => {
    const image = await pushSampleImage({ host }, 'etag/image', 'v1');
    const app = createApp({ staticRoot: testStaticRoot(), relay: { localRegistries: [host], log: () => {} } });
    const url = `/relay/${host}/v2/etag/image/manifests/v1`;
    const read = async () => {
      const res = await app.request(url, { headers: { Accept: MT.ociManifest } });
      expect(res.status).toBe(200);
      const digest = res.headers.get('docker-content-digest')!;
      expect(res.headers.get('etag')).toBe(`"${digest}"`);
      return { etag: res.headers.get('etag')!, doc: (await res.json()) as Record<string, unknown> };
    };
    const write = (doc: Record<string, unknown>, ifMatch?: string) =>
      app.request(url, {
        method: 'PUT',
        headers: { 'Content-Type': MT.ociManifest, ...(ifMatch === undefined ? {} : { 'If-Match': ifMatch }) },
        body: JSON.stringify(doc),
      });
    const first = await read();
    expect(first.etag).toBe(`"${image.digest}"`);
    // Another writer moves the tag (no If-Match: as before, it simply writes).
    const other = await write({ ...first.doc, annotations: { writer: 'other' } });
    expect(other.status).toBe(201);
    const stale = await write({ ...first.doc, annotations: { writer: 'late' } }, first.etag);
    expect(stale.status).toBe(412);
    expect(stale.headers.get('x-relay-error')).toBeNull();
    expect(((await stale.json()) as { errors: { code: string }[] }).errors[0]?.code).toBe('PRECONDITION_FAILED');
    const current = await read();
    expect(current.etag).toBe(other.headers.get('etag'));
    expect(current.doc.annotations).toEqual({ writer: 'other' });
    const retried = await write({ ...current.doc, annotations: { writer: 'late' } }, current.etag);
    expect(retried.status).toBe(201);
    expect((await read()).doc.annotations).toEqual({ writer: 'late' });
  });
});

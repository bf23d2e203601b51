/**
 * The requests one signing makes (shared/ops/sign.ts, tag-writer.ts, signed-before.ts), counted
 * against the embedded registry served in-process, as the Sign page runs them: plan, "signed
 * before?", then both formats through a granted tag lock. Each request through the relay is a
 * round trip the person waits for, so what is already known is not asked again: the root manifest
 * is read once, a payload just uploaded and the empty config are not asked for with a HEAD, an
 * index's platforms share one upload of the empty config. On a registry without the referrers API
 * (the registry here with its referrers route and `OCI-Subject` answer taken away, as
 * distribution 2.8 answers), the fallback index's lock is taken while the referrer is still being
 * pushed, and the index is written only after it. The uploads the Sign page opens ahead on its
 * click (RegistryClient.openUploadsAhead) are the ones the pushes use, and those left are cancelled.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../../server/registry/registry.ts';
import { servedAs } from '../../server/served-as.ts';
import { parsePkcs8 } from '../../../../shared/crypto/pkcs.ts';
import { exportPkcs8, generateEcdsaKeyPair, signWithCryptoKey } from '../../../../shared/crypto/webcrypto.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { EMPTY_CONFIG_DESCRIPTOR, referrersTag, sigTag } from '../../../../shared/cosign/manifests.ts';
import { RegistryClient, type RepoRef } from '../../../../shared/registry/client.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';
import { planSigning, signImage, type Signer, type TagLock } from '../../../../shared/ops/sign.ts';
import { signedBefore } from '../../../../shared/ops/signed-before.ts';
import { relayLock } from '../../../../web/src/app/relay-lock.ts';
import { serveLocks } from '../../server/lock-server.ts';

const HOST = 'requests.test:5000';
let dir: string;
let registry: EmbeddedRegistry;
let signer: Signer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-sign-requests-'));
  registry = createEmbeddedRegistry({ dataDir: dir, site: servedAs(HOST) });
  const pair = await generateEcdsaKeyPair('P-256', true);
  const info = parsePkcs8(await exportPkcs8(pair.privateKey));
  signer = { ...info, sign: (d) => signWithCryptoKey(pair.privateKey, info.algorithm, d) };
});
afterAll(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});

/** A client that logs `<METHOD> <path>[?query]` as each request is sent and `done …` as it is answered. */
function loggingClient(log: string[], referrersApi: boolean): RegistryClient {
  return new RegistryClient({
    scheme: () => 'http',
    fetch: async (input, init) => {
      const u = new URL(String(input));
      const line = `${init?.method ?? 'GET'} ${u.pathname}${u.search}`;
      log.push(line);
      let res: Response;
      if (!referrersApi && u.pathname.includes('/referrers/')) res = new Response(null, { status: 404 });
      else res = await registry.app.fetch(new Request(input, init));
      if (!referrersApi && res.headers.has('oci-subject')) {
        const headers = new Headers(res.headers);
        headers.delete('oci-subject');
        res = new Response(res.body, { status: res.status, headers });
      }
      log.push(`done ${line}`);
      return res;
    },
  });
}

/** A lock that grants every key at once (as the relay's /locks does with no one else waiting), logging it. */
function grantingLock(log: string[]): TagLock {
  return async (key) => {
    log.push(`lock ${key}`);
    return Object.assign(async () => undefined, { held: true });
  };
}

async function pushImage(client: RegistryClient, repo: RepoRef, platforms: string[]): Promise<void> {
  const manifests = [];
  for (const arch of platforms) {
    const config = await client.pushBlob(repo, utf8(`{"architecture":"${arch}"}`), { mediaType: MT.ociConfig });
    const m = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [] }));
    const digest = await client.putManifest(repo, platforms.length > 1 ? arch : 'v1', m, MT.ociManifest);
    manifests.push({
      mediaType: MT.ociManifest,
      digest,
      size: m.length,
      platform: { os: 'linux', architecture: arch },
    });
  }
  if (platforms.length === 1) return;
  const index = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
  await client.putManifest(repo, 'v1', index, MT.ociIndex);
}

/**
 * Plan, "signed before?" and sign, as the Sign page does on its first click (with `ahead`, the
 * uploads it opens on the click first, and those left cancelled after); returns the log from the plan on.
 */
async function signAsThePage(
  repository: string,
  platforms: string[],
  referrersApi: boolean,
  ahead = 0,
  lock?: TagLock,
) {
  const log: string[] = [];
  const client = loggingClient(log, referrersApi);
  const repo = { registry: HOST, repository };
  await pushImage(client, repo, platforms);
  log.length = 0;
  if (ahead) client.openUploadsAhead(repo, ahead);
  const plan = await planSigning(client, repo, 'v1');
  const before = await signedBefore(client, `${HOST}/${repository}@${plan.root.digest}`, signer.spki, {
    top: plan.manifest!,
  });
  expect(before.total).toBe(0);
  const result = await signImage({
    client,
    signer,
    plan,
    dockerReference: `${HOST}/${repository}`,
    formats: { legacy: true, bundle: true },
    lock: lock ?? grantingLock(log),
  });
  if (ahead) await client.dropUploadsAhead(repo);
  const requests = log.filter((l) => !l.startsWith('done ') && !l.startsWith('lock '));
  return { log, client, plan, result, requests };
}

it('one image: the root manifest read once, no HEAD, four blob uploads, through a granted lock', async () => {
  const { requests, plan, result } = await signAsThePage('requests/image', ['amd64'], true);
  const rootPath = `/v2/requests/image/manifests/${plan.root.digest}`;
  const rootReads = requests.filter((l) => l === `GET /v2/requests/image/manifests/v1` || l === `GET ${rootPath}`);
  expect(rootReads).toEqual(['GET /v2/requests/image/manifests/v1']);
  expect(requests.filter((l) => l.startsWith('HEAD '))).toEqual([]);
  // The payload, the .sig config, the bundle and the empty config: each uploaded once.
  expect(requests.filter((l) => l.startsWith('PUT ') && l.includes('/blobs/uploads/'))).toHaveLength(4);
  expect(result.targets[0]!.bundle!.via).toBe('referrers-api');
  expect(result.targets[0]!.legacy!.tag).toBe(sigTag(plan.root.digest));
});

it('an index of 3 manifests: the empty config uploaded once for the three referrers', async () => {
  const { requests, result } = await signAsThePage('requests/index', ['amd64', 'arm64'], true);
  expect(result.targets).toHaveLength(3);
  const empty = requests.filter((l) => l.includes(`digest=${encodeURIComponent(EMPTY_CONFIG_DESCRIPTOR.digest)}`));
  expect(empty).toHaveLength(1);
  expect(requests.filter((l) => l.startsWith('HEAD '))).toEqual([]);
});

it('no referrers API: the fallback index is locked while the referrer is pushed, and written after it', async () => {
  const { log, plan, result } = await signAsThePage('requests/fallback', ['amd64'], false);
  expect(result.targets[0]!.bundle!.via).toBe('tag-schema');
  const referrerPut = `PUT /v2/requests/fallback/manifests/${result.targets[0]!.bundle!.referrer}`;
  const indexPut = `PUT /v2/requests/fallback/manifests/${referrersTag(plan.root.digest)}`;
  const locked = log.indexOf(`lock ${HOST}/requests/fallback:${referrersTag(plan.root.digest)}`);
  expect(locked).toBeGreaterThanOrEqual(0);
  expect(locked).toBeLessThan(log.indexOf(`done ${referrerPut}`));
  expect(log.indexOf(`done ${referrerPut}`)).toBeLessThan(log.indexOf(indexPut));
  // The index lists the referrer.
  const client = loggingClient([], false);
  const index = await client.getManifest(
    { registry: HOST, repository: 'requests/fallback' },
    referrersTag(plan.root.digest),
  );
  expect((index.json.manifests as { digest: string }[]).map((d) => d.digest)).toEqual([
    result.targets[0]!.bundle!.referrer,
  ]);
});

it("an index without the referrers API, through the relay's lock: its six tags taken in one request", async () => {
  const server = await serveLocks({ relay: { allowedRegistries: [HOST] } });
  try {
    const lock = relayLock(server.origin);
    const { result } = await signAsThePage('requests/index-locked', ['amd64', 'arm64'], false, 0, lock);
    expect(result.targets.map((t) => t.bundle?.via)).toEqual(['tag-schema', 'tag-schema', 'tag-schema']);
    // One acquire for the three .sig tags and the three fallback indexes, none one by one.
    const seen = server.seen.map((r) => `${r.path} ${Object.keys(r.body).join(',')}`);
    expect(seen.filter((l) => l.startsWith('/locks/acquire'))).toEqual(['/locks/acquire keys']);
    const releases = seen.filter((l) => l.startsWith('/locks/release'));
    expect(releases.length).toBeGreaterThanOrEqual(1);
    expect(releases.length).toBeLessThan(6);
  } finally {
    await server.close();
  }
});

it('uploads opened ahead while the image is read are the ones the pushes use, and those left are cancelled', async () => {
  const repository = 'requests/ahead';
  // As the Sign page does on its click: two more than one image's four uploads, to see them cancelled.
  const { client, plan, result, requests } = await signAsThePage(repository, ['amd64'], true, 6);
  const opened = requests.filter((l) => l.startsWith('POST ') && l.includes('/blobs/uploads/'));
  // Every upload was opened before the image was read; none by the pushes themselves.
  expect(opened).toHaveLength(6);
  expect(requests.lastIndexOf(opened[5]!)).toBeLessThan(requests.indexOf(`GET /v2/${repository}/manifests/v1`));
  const finished = requests.filter((l) => l.startsWith('PUT ') && l.includes('/blobs/uploads/'));
  expect(finished).toHaveLength(4);
  const cancelled = requests.filter((l) => l.startsWith('DELETE ') && l.includes('/blobs/uploads/'));
  expect(cancelled).toHaveLength(2);
  // The cancelled uploads are gone from the registry; the signatures are there, in both formats.
  const gone = await registry.app.fetch(new Request(`http://${HOST}${cancelled[0]!.slice('DELETE '.length)}`));
  expect(gone.status).toBe(404);
  const after = await signedBefore(client, `${HOST}/${repository}@${plan.root.digest}`, signer.spki);
  expect(after.byKey).toBe(2);
  expect(result.targets[0]!.legacy!.tag).toBe(sigTag(plan.root.digest));
  expect(result.targets[0]!.bundle!.via).toBe('referrers-api');
});

it('an upload the registry refused to open ahead is not used: the push opens its own', async () => {
  const log: string[] = [];
  const logged = loggingClient(log, true);
  let refuse = true;
  // The registry answers the first upload opening 503, then as usual.
  const client = new RegistryClient({
    scheme: () => 'http',
    fetch: async (input, init) => {
      if (refuse && init?.method === 'POST' && String(input).includes('/blobs/uploads/')) {
        refuse = false;
        log.push('refused');
        return new Response(null, { status: 503 });
      }
      return registry.app.fetch(new Request(input, init));
    },
  });
  const repo = { registry: HOST, repository: 'requests/ahead-refused' };
  client.openUploadsAhead(repo, 1);
  const pushed = await client.pushBlob(repo, utf8('a signature'), { ask: false });
  expect(log).toEqual(['refused']);
  // The blob is there: the push opened an upload of its own and finished it.
  const head = await logged.blobExists(repo, pushed.digest);
  expect(head).toBe(true);
  await client.dropUploadsAhead(repo);
});

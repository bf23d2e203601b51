/**
 * shared/ops/signed-before.ts against the embedded registry served in-process: it counts the
 * signatures a key made on an index in both formats, and reads only the index's own `.sig` and
 * referrers to do it — no `.att`, no `.sbom`, nothing of the platforms (the Sign page asks it on
 * every first click); with the digest typed, those lookups overlap the plan reading the image, whose
 * manifest it then takes instead of reading it again.
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
import { RegistryClient } from '../../../../shared/registry/client.ts';
import { MT } from '../../../../shared/registry/mediatypes.ts';
import { planSigning, signImage } from '../../../../shared/ops/sign.ts';
import { signedBefore } from '../../../../shared/ops/signed-before.ts';

const HOST = 'before.test:5000';
let dir: string;
let registry: EmbeddedRegistry;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-signed-before-'));
  registry = createEmbeddedRegistry({ dataDir: dir, site: servedAs(HOST) });
});
afterAll(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});

/** A client of the in-process registry that notes the path of each request it sends. */
function pathLoggingClient(): { paths: string[]; client: RegistryClient } {
  const paths: string[] = [];
  const client = new RegistryClient({
    scheme: () => 'http',
    fetch: async (input, init) => {
      paths.push(new URL(String(input)).pathname);
      return registry.app.fetch(new Request(input, init));
    },
  });
  return { paths, client };
}

it('counts a key’s signatures on an index from its own .sig and referrers alone', async () => {
  const { paths, client } = pathLoggingClient();
  const repo = { registry: HOST, repository: 'before/index' };
  const manifests = [];
  for (const arch of ['amd64', 'arm64']) {
    const config = await client.pushBlob(repo, utf8(`{"architecture":"${arch}"}`), { mediaType: MT.ociConfig });
    const m = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [] }));
    const digest = await client.putManifest(repo, arch, m, MT.ociManifest);
    manifests.push({
      mediaType: MT.ociManifest,
      digest,
      size: m.length,
      platform: { os: 'linux', architecture: arch },
    });
  }
  const index = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
  const digest = await client.putManifest(repo, 'v1', index, MT.ociIndex);
  const pair = await generateEcdsaKeyPair('P-256', true);
  const info = parsePkcs8(await exportPkcs8(pair.privateKey));
  await signImage({
    client,
    signer: { ...info, sign: (d) => signWithCryptoKey(pair.privateKey, info.algorithm, d) },
    plan: await planSigning(client, repo, 'v1'),
    dockerReference: `${HOST}/${repo.repository}`,
    formats: { legacy: true, bundle: true },
  });

  paths.length = 0;
  const before = await signedBefore(client, `${HOST}/${repo.repository}@${digest}`, info.spki);
  expect(before).toMatchObject({ total: 2, byKey: 2, legacy: 1, bundle: 1 });
  expect(paths.filter((p) => p.endsWith('.att') || p.endsWith('.sbom'))).toEqual([]);
  for (const m of manifests) expect(paths.filter((p) => p.includes(m.digest.slice('sha256:'.length)))).toEqual([]);
});

it('with the digest typed, asks for the .sig and referrers while the plan is still reading the image, and does not read it again', async () => {
  const { paths, client } = pathLoggingClient();
  const repo = { registry: HOST, repository: 'before/overlap' };
  const config = await client.pushBlob(repo, utf8('{"architecture":"amd64"}'), { mediaType: MT.ociConfig });
  const m = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [] }));
  await client.putManifest(repo, 'v1', m, MT.ociManifest);
  const plan = await planSigning(client, repo, 'v1');
  const pair = await generateEcdsaKeyPair('P-256', true);
  const info = parsePkcs8(await exportPkcs8(pair.privateKey));

  paths.length = 0;
  let resolveTop!: (m: typeof plan.manifest) => void;
  const top = new Promise<typeof plan.manifest>((r) => (resolveTop = r));
  const asked = signedBefore(client, `${HOST}/${repo.repository}@${plan.root.digest}`, info.spki, { top });
  const sigPath = `/v2/${repo.repository}/manifests/${plan.root.digest.replace(':', '-')}.sig`;
  for (let i = 0; i < 3000 && !paths.includes(sigPath); i++) await new Promise((r) => setTimeout(r, 10));
  // The .sig lookup went out before the image's manifest arrived.
  expect(paths).toContain(sigPath);
  resolveTop(plan.manifest);
  expect(await asked).toMatchObject({ total: 0, byKey: 0 });
  expect(paths).not.toContain(`/v2/${repo.repository}/manifests/${plan.root.digest}`);
});

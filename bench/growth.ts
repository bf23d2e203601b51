/**
 * Growth figures for `npm run bench` (section `growth`): how time and memory grow with the work,
 * each figure at a tenth of the size and at the full size, with the shared code in Node against
 * the embedded registry served in-process (no network, so what grows is this code's own work):
 *   - listing a repository's 1,000 and 10,000 tags (`Link` pages of 1,000);
 *   - verifying a `.sig` holding 100 and 1,000 signatures;
 *   - verifying an index of 8 and 64 platforms, each platform signed;
 *   - the tree of an image with 50 and 500 attachments (half `.sig` layers, half referrers);
 *   - adding a signature to a `.sig` holding 100 and 1,000 (the tag writer's merge).
 * Linear growth is a time ratio near the work ratio (10; 64/6 for the index); the memory figure is the heap grown
 * during one run, after a full collection before it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../server/registry/registry.ts';
import { servedAs } from '../test/unit/server/served-as.ts';
import { generateEcdsaKeyPair, exportPkcs8, signWithCryptoKey } from '../shared/crypto/webcrypto.ts';
import { parsePkcs8 } from '../shared/crypto/pkcs.ts';
import { toBase64, utf8 } from '../shared/encoding/base64.ts';
import {
  buildReferrersIndex,
  buildSigManifest,
  referrersTag,
  sameSignatureLayer,
  sigLayer,
  sigTag,
} from '../shared/cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../shared/cosign/payload.ts';
import { RegistryClient, type RepoRef } from '../shared/registry/client.ts';
import { MT, type Descriptor } from '../shared/registry/mediatypes.ts';
import { verifyImage } from '../shared/ops/verify.ts';
import { buildTree } from '../shared/ops/tree.ts';
import { addEntries, rewriteTag, sigList } from '../shared/ops/tag-writer.ts';

const HOST = 'growth.test:5000';

export interface GrowthRow {
  what: string;
  small: number;
  large: number;
  smallMs: number;
  largeMs: number;
  smallHeapMiB: number;
  largeHeapMiB: number;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Median time of 3 runs after one warm-up, and the heap grown during the last. */
async function measure(fn: () => Promise<unknown>): Promise<{ ms: number; heapMiB: number }> {
  await fn();
  const times: number[] = [];
  let heap = 0;
  for (let i = 0; i < 3; i++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    heap = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  }
  return { ms: times.sort((a, b) => a - b)[1]!, heapMiB: heap };
}

interface Setup {
  client: RegistryClient;
  signer: { spki: Uint8Array; sign(d: Uint8Array): Promise<Uint8Array> };
  image(repo: RepoRef, n: number): Promise<Descriptor>;
  sign(repo: RepoRef, digest: string, identity: string, n: number): Promise<Descriptor[]>;
}

async function setUp(registry: EmbeddedRegistry): Promise<Setup> {
  const fetch: typeof globalThis.fetch = async (input, init) => registry.app.fetch(new Request(input, init));
  const client = new RegistryClient({ fetch, scheme: () => 'http' });
  const pair = await generateEcdsaKeyPair('P-256', true);
  const info = parsePkcs8(await exportPkcs8(pair.privateKey));
  const signer = { spki: info.spki, sign: (d: Uint8Array) => signWithCryptoKey(pair.privateKey, info.algorithm, d) };
  return {
    client,
    signer,
    async image(repo, n) {
      const config = await client.pushBlob(repo, utf8(`{"n":${n}}`), { mediaType: MT.ociConfig });
      const layer = await client.pushBlob(repo, utf8(`layer ${n}`), {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      });
      const m = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [layer] }));
      const digest = await client.putManifest(repo, `i${n}`, m, MT.ociManifest);
      return { mediaType: MT.ociManifest, digest, size: m.length };
    },
    async sign(repo, digest, identity, n) {
      const layers: Descriptor[] = [];
      for (let i = 0; i < n; i++) {
        const payload = buildSimpleSigningPayload(identity, digest, { n: String(i) });
        await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
        layers.push(sigLayer(payload, toBase64(await signer.sign(payload))));
      }
      const { manifest, config } = buildSigManifest(layers);
      await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
      await client.putManifest(repo, sigTag(digest), manifest, MT.ociManifest);
      return layers;
    },
  };
}

type Case = (s: Setup, n: number) => Promise<() => Promise<unknown>>;

const cases: [string, number, Case][] = [
  [
    'list tags',
    10_000,
    async (s, n) => {
      const repo = { registry: HOST, repository: `tags/${n}` };
      const img = await s.image(repo, 0);
      const bytes = (await s.client.getManifest(repo, img.digest)).bytes;
      for (let i = 0; i < n; i++) await s.client.putManifest(repo, `t${i}`, bytes, MT.ociManifest);
      return () => s.client.listTags(repo);
    },
  ],
  [
    'verify a .sig of n signatures',
    1_000,
    async (s, n) => {
      const repo = { registry: HOST, repository: `sig/${n}` };
      const img = await s.image(repo, 0);
      await s.sign(repo, img.digest, `${HOST}/${repo.repository}`, n);
      return () => verifyImage(s.client, { image: `${HOST}/${repo.repository}@${img.digest}`, spki: s.signer.spki });
    },
  ],
  [
    'verify an index of n platforms, each signed',
    64,
    async (s, n) => {
      const repo = { registry: HOST, repository: `index/${n}` };
      const manifests = [];
      for (let i = 0; i < n; i++) {
        const d = await s.image(repo, i);
        await s.sign(repo, d.digest, `${HOST}/${repo.repository}`, 1);
        manifests.push({ ...d, platform: { os: 'linux', architecture: `arch${i}` } });
      }
      const index = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }));
      const digest = await s.client.putManifest(repo, 'v1', index, MT.ociIndex);
      await s.sign(repo, digest, `${HOST}/${repo.repository}`, 1);
      return () => verifyImage(s.client, { image: `${HOST}/${repo.repository}@${digest}`, spki: s.signer.spki });
    },
  ],
  [
    'tree of an image with n attachments',
    500,
    async (s, n) => {
      const repo = { registry: HOST, repository: `tree/${n}` };
      const img = await s.image(repo, 0);
      await s.sign(repo, img.digest, `${HOST}/${repo.repository}`, n / 2);
      const entries: Descriptor[] = [];
      for (let i = 0; i < n / 2; i++) {
        const doc = await s.client.pushBlob(repo, utf8(`{"sbom":${i}}`), { mediaType: 'application/spdx+json' });
        const empty = await s.client.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
        const m = utf8(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MT.ociManifest,
            artifactType: 'application/spdx+json',
            config: empty,
            layers: [doc],
            subject: img,
          }),
        );
        const digest = await s.client.putManifest(repo, `r${i}`, m, MT.ociManifest);
        entries.push({ mediaType: MT.ociManifest, digest, size: m.length, artifactType: 'application/spdx+json' });
      }
      await s.client.putManifest(repo, referrersTag(img.digest), buildReferrersIndex(entries), MT.ociIndex);
      return () => buildTree(s.client, { image: `${HOST}/${repo.repository}@${img.digest}`, key: s.signer.spki });
    },
  ],
  [
    'add a signature to a .sig of n',
    1_000,
    async (s, n) => {
      const repo = { registry: HOST, repository: `add/${n}` };
      const img = await s.image(repo, 0);
      await s.sign(repo, img.digest, `${HOST}/${repo.repository}`, n);
      let k = 0;
      return async () => {
        const payload = buildSimpleSigningPayload(`${HOST}/${repo.repository}`, img.digest, { extra: String(k++) });
        const layer = sigLayer(payload, toBase64(await s.signer.sign(payload)));
        const blob = { bytes: payload, mediaType: MT.cosignSimpleSigning };
        await s.client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
        // Each run adds one; a granted lock, as the page has it, so no settle wait is timed.
        const lock = async (): Promise<(() => Promise<void>) & { held: boolean }> =>
          Object.assign(async () => undefined, { held: true });
        await rewriteTag(sigList(s.client, repo, sigTag(img.digest), [blob]), addEntries([layer], sameSignatureLayer), {
          lock,
        });
      };
    },
  ],
];

/** Runs every growth case at a tenth of its size and at its size. */
export async function benchGrowth(): Promise<GrowthRow[]> {
  const dir = await mkdtemp(join(tmpdir(), 'cosign-web-growth-'));
  const registry = createEmbeddedRegistry({ dataDir: dir, site: servedAs(HOST) });
  try {
    const s = await setUp(registry);
    const rows: GrowthRow[] = [];
    for (const [what, large, make] of cases) {
      const small = Math.round(large / 10);
      const a = await measure(await make(s, small));
      const b = await measure(await make(s, large));
      rows.push({
        what,
        small,
        large,
        smallMs: a.ms,
        largeMs: b.ms,
        smallHeapMiB: a.heapMiB,
        largeHeapMiB: b.heapMiB,
      });
    }
    return rows;
  } finally {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  }
}

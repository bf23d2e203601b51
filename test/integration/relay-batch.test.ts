/**
 * The relay's batch of blob reads (server/relay/batch.ts) against the real registries of the rig:
 * each item goes through the relay's own checks (a registry off the allowlist is refused per item,
 * as a single request is), only blob reads on one registry are taken, the request's Authorization
 * reaches each item (the basic-auth registry), and the shared client's getBlobs keeps exactly the
 * blobs whose size and digest match. Then verifyImage through the relay: 30 `.sig` layers that
 * share 3 payloads read each payload once, in one batch, and every signature verifies.
 */
import type { ServerType } from '@hono/node-server';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { serveApp } from '../../server/serve.ts';
import { parsePlainPrivateKeyPem } from '../../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { toBase64 } from '../../shared/encoding/base64.ts';
import { buildSigManifest, sigLayer, sigTag } from '../../shared/cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../../shared/cosign/payload.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { RegistryClient, relayRouting } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { pushSampleImage } from '../rig/images.ts';
import { caFetch } from './ca-fetch.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';

const regs = inject('cosignWebRegistries');
const allowed = [regs.tls.host, regs.basic.host];
const basic = { username: regs.basic.username, password: regs.basic.password };
const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let base: string;
let server: ServerType;
beforeAll(async () => {
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: {
      allowedRegistries: allowed,
      privateRegistries: allowed,
      plainHttpRegistries: [regs.basic.host],
      ca: readFileSync(regs.tls.caFile, 'utf8'),
    },
  });
  const served = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  server = served.server;
  base = `http://127.0.0.1:${served.port}`;
});
afterAll(async () => {
  (server as http.Server).closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** POSTs a batch and splits its answer into [status, bytes] per path. */
async function batch(paths: string[], authorization?: string): Promise<{ status: number; items: [number, Buffer][] }> {
  const res = await fetch(`${base}/relay/_batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify({ paths }),
  });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return { status: res.status, items: [] };
  const items: [number, Buffer][] = [];
  let at = 0;
  while (at < body.length) {
    const eol = body.indexOf(10, at);
    const [status, length] = body.subarray(at, eol).toString().split(' ').map(Number);
    items.push([status!, body.subarray(eol + 1, eol + 1 + length!)]);
    at = eol + 1 + length!;
  }
  return { status: 200, items };
}

const blobPath = (host: string, repo: string, digest: string): string => `/relay/${host}/v2/${repo}/blobs/${digest}`;

describe('POST /relay/_batch', () => {
  it('reads blobs through the relay, item by item, with its checks and the request’s Authorization', async () => {
    const client = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
    const repo = { registry: regs.tls.host, repository: 'batch/blobs' };
    const blobs = [randomBytes(100), randomBytes(2000)];
    for (const b of blobs) await client.pushBlob(repo, b);
    const absent = sha256(randomBytes(8));
    const got = await batch([
      ...blobs.map((b) => blobPath(regs.tls.host, repo.repository, sha256(b))),
      blobPath(regs.tls.host, repo.repository, absent),
    ]);
    expect(got.items.map(([s]) => s)).toEqual([200, 200, 404]);
    expect(got.items[0]![1].equals(blobs[0]!)).toBe(true);
    expect(got.items[1]![1].equals(blobs[1]!)).toBe(true);

    // A registry the relay may not reach is refused per item, exactly as a single request is.
    const off = await batch([blobPath('example.com', 'x/y', absent)]);
    expect(off.items).toEqual([[403, Buffer.alloc(0)]]);

    // The basic-auth registry: 401 without the header, the blob with it.
    const basicClient = new RegistryClient({
      fetch: (i, init) => globalThis.fetch(i, init),
      scheme: () => 'http',
      credentials: () => basic,
    });
    const basicRepo = { registry: regs.basic.host, repository: 'batch/auth' };
    await basicClient.pushBlob(basicRepo, blobs[0]!);
    const path = blobPath(regs.basic.host, basicRepo.repository, sha256(blobs[0]!));
    expect((await batch([path])).items.map(([s]) => s)).toEqual([401]);
    const auth = `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`;
    const authed = await batch([path], auth);
    expect(authed.items[0]![0]).toBe(200);
    expect(authed.items[0]![1].equals(blobs[0]!)).toBe(true);
  });

  it('takes only blob reads by digest, on one registry, at most 64', async () => {
    const digest = sha256(Buffer.from('x'));
    for (const paths of [
      [`/relay/${regs.tls.host}/v2/batch/blobs/manifests/latest`],
      [`/relay/${regs.tls.host}/v2/_catalog`],
      ['https://example.com/v2/x/blobs/' + digest],
      [blobPath(regs.tls.host, 'a', digest), blobPath(regs.basic.host, 'a', digest)],
      Array.from({ length: 65 }, () => blobPath(regs.tls.host, 'a', digest)),
      [],
    ]) {
      const res = await fetch(`${base}/relay/_batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ paths }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('RELAY_BAD_REQUEST');
    }
  });
});

describe('RegistryClient.getBlobs and verifyImage through the relay', () => {
  it('keeps only matching blobs, and reads each shared payload once', async () => {
    const client = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
    const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, 'batch/verify', 'v1');
    const repo = { registry: regs.tls.host, repository: 'batch/verify' };
    const pem = readFileSync('test/vectors/keys/ec-p256-pkcs8.pem', 'utf8');
    const info = parsePlainPrivateKeyPem(pem);
    const key = await importPrivateKey(info);
    const layers = [];
    for (let i = 0; i < 30; i++) {
      const payload = buildSimpleSigningPayload(image.repository, image.digest, { n: String(i % 3) });
      if (i < 3) await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
      layers.push(sigLayer(payload, toBase64(await signWithCryptoKey(key, info.algorithm, payload))));
    }
    const { manifest, config } = buildSigManifest(layers);
    await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
    await client.putManifest(repo, sigTag(image.digest), manifest, MT.ociManifest);

    const requests: string[] = [];
    const relayed = new RegistryClient({
      fetch: (input, init) => {
        requests.push(`${init?.method ?? 'GET'} ${String(input)}`);
        return globalThis.fetch(input, init);
      },
      ...relayRouting(base),
    });
    // A size that is not the blob's: left out, for getBlob to read (and refuse) on its own.
    const first = layers[0]!;
    const got = await relayed.getBlobs(repo, [first, { digest: layers[1]!.digest, size: 3 }]);
    expect([...got.keys()]).toEqual([first.digest]);

    requests.length = 0;
    const result = await verifyImage(relayed, { image: image.ref, spki: info.spki, concurrency: 12 });
    expect(result.manifests[0]!.signatures.filter((s) => s.verified)).toHaveLength(30);
    expect(requests.filter((r) => r.includes('/relay/_batch'))).toHaveLength(1);
    expect(requests.filter((r) => r.includes('/blobs/'))).toEqual([]);
  });
});

/**
 * Copying an image with its signatures (shared/ops/copy.ts) between the real registries of the
 * test rig, through the real relay as the page does: from the TLS distribution 2.8 registry to the
 * plain-HTTP basic-auth one (no referrers API: the fallback index is kept) and to the embedded
 * registry (referrers API). Images are signed by the real cosign 2.5 (legacy `.sig`), cosign 3.1
 * (bundle referrer) and by the page's signImage; on the destination cosign 2.5 and 3.1 verify,
 * skopeo 1.18 pulls under a sigstoreSigned policy and copies on to a third place with the
 * signatures checked. A copy cut off mid-blob by a loopback proxy that drops the connection is run
 * again and finishes, with nothing duplicated.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { copyImage, type CopyProgress } from '../../shared/ops/copy.ts';
import { referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import { parsePlainPrivateKeyPem, parsePublicKey, publicKeyPem } from '../../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { ManageError, RegistryError } from '../../shared/errors.ts';
import { RegistryClient, relayRouting, type RepoRef } from '../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../shared/registry/mediatypes.ts';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignLogin,
  cosignVerifyArgs,
  run,
  runOk,
  sigstorePolicy,
  skopeoEnv,
  skopeoPolicyPull,
  skopeoRegistryFlags,
  type SkopeoAccess,
} from '../rig/tools.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';
import { useRig, VECTORS } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-copy-', offlineCosign3: true, password: '' });
const { regs, tls, env } = rig;

/** A TCP proxy on loopback that drops every connection once `limit` bytes went upstream. */
interface CuttingProxy {
  host: string;
  limit: number;
  sent: number;
  cuts: number;
  close(): Promise<void>;
}

async function cuttingProxy(target: string): Promise<CuttingProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  const sockets = new Set<net.Socket>();
  const state = { limit: Infinity, sent: 0, cuts: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(targetPort), targetHost);
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => (sockets.delete(client), upstream.destroy()));
    upstream.on('close', () => (sockets.delete(upstream), client.destroy()));
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('data', (b: Buffer) => {
      if (state.sent + b.length > state.limit) {
        state.cuts++;
        for (const s of sockets) s.destroy();
        return;
      }
      state.sent += b.length;
      upstream.write(b);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get limit() {
      return state.limit;
    },
    set limit(n: number) {
      state.limit = n;
      state.sent = 0;
    },
    get sent() {
      return state.sent;
    },
    get cuts() {
      return state.cuts;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

let relayOrigin: string;
const relayLines: string[] = [];
let embeddedHost: string;
let proxy: CuttingProxy;
let client: RegistryClient;
let cosignKey: string;
let cosignPub: string;
let cosignSpki: Uint8Array;

beforeAll(async () => {
  ({ host: embeddedHost } = await rig.serveEmbeddedRegistry('cosign-web-copy-it-'));
  proxy = await cuttingProxy(regs.basic.host);
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: {
      allowedRegistries: [regs.tls.host, regs.basic.host, embeddedHost, proxy.host],
      privateRegistries: [regs.tls.host, regs.basic.host, embeddedHost, proxy.host],
      plainHttpRegistries: [regs.basic.host, embeddedHost, proxy.host],
      ca: await readFile(regs.tls.caFile, 'utf8'),
      log: (line) => relayLines.push(line),
    },
  });
  relayOrigin = (await rig.serve(app)).origin;
  const basic = { username: regs.basic.username, password: regs.basic.password };
  client = new RegistryClient({
    fetch: (input, init) => globalThis.fetch(input, init),
    ...relayRouting(relayOrigin),
    credentials: (r) => (r === regs.basic.host || r === proxy.host ? basic : undefined),
  });
  ({ key: cosignKey, pub: cosignPub } = await rig.cosign2KeyPair());
  cosignSpki = parsePublicKey(await readFile(cosignPub, 'utf8')).spki;
  await cosignLogin('cosign2', rig.home, regs.basic.host, regs.basic.username, regs.basic.password);
});

afterAll(async () => {
  await proxy.close();
});

async function vectorSigner(file: string): Promise<{ signer: Signer; pub: string; spki: Uint8Array }> {
  const info = parsePlainPrivateKeyPem(await readFile(join(VECTORS, file), 'utf8'));
  const key = await importPrivateKey(info);
  const pub = join(rig.home.dir, `${file}.pub`);
  await writeFile(pub, publicKeyPem(info.spki));
  return {
    signer: { algorithm: info.algorithm, spki: info.spki, sign: (d) => signWithCryptoKey(key, info.algorithm, d) },
    pub,
    spki: info.spki,
  };
}

async function signWithPage(signer: Signer, repo: RepoRef, reference: string, identity: string): Promise<void> {
  const plan = await planSigning(client, repo, reference);
  await signImage({
    client,
    signer,
    plan,
    dockerReference: identity,
    formats: { legacy: true, bundle: true },
    settleDelay: () => 10,
  });
}

async function access(host: string, scratch = rig.home.dir): Promise<SkopeoAccess> {
  if (host === regs.tls.host) return skopeoAccess(tls, scratch);
  if (host === regs.basic.host) return { creds: `${regs.basic.username}:${regs.basic.password}` };
  return {};
}

/** skopeo copies `from` (checked under a sigstoreSigned policy) to `to`, attachments included. */
async function skopeoCheckedCopy(
  pub: string,
  from: string,
  fromRepo: string,
  to: string,
  identity: Record<string, unknown>,
  all = false,
) {
  const scratch = await mkdtemp(join(rig.home.dir, 'skopeo-copy-'));
  const policy = join(scratch, 'policy.json');
  await writeFile(policy, sigstorePolicy(pub, [fromRepo], identity));
  return run(
    'skopeo',
    [
      '--policy',
      policy,
      'copy',
      ...(all ? ['--all'] : []),
      '--preserve-digests',
      ...skopeoRegistryFlags(await access(from.split('/')[0]!, scratch), 'src'),
      ...skopeoRegistryFlags(await access(to.split('/')[0]!, scratch), 'dest'),
      `docker://${from}`,
      `docker://${to}`,
    ],
    { env: skopeoEnv(rig.home) },
  );
}

function layersOf(json: Record<string, unknown>): Descriptor[] {
  return (json.layers as Descriptor[] | undefined) ?? [];
}

const destinations = [
  ['the basic-auth registry (no referrers API)', () => regs.basic.host],
  ['the embedded registry (referrers API)', () => embeddedHost],
] as const;

describe.each(destinations)('from the TLS registry to %s, through the relay', (_name, destHost) => {
  it('an image signed by cosign 2.5 and cosign 3.1: both verify the copy, skopeo pulls it and copies it on', async () => {
    const host = destHost();
    const tag = host === embeddedHost ? 'emb' : 'basic';
    const image = await pushSampleImage(tls, `copy/cosign-${tag}`, 'v1');
    await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref), { env: env() });
    await runOk('cosign3', cosign3SignArgs(cosignKey, rig.offline, image.ref), { env: env() });

    const progress: CopyProgress[] = [];
    const dest = `${host}/copied/cosign-${tag}:v2`;
    relayLines.length = 0;
    const result = await copyImage({
      client,
      source: image.tagRef,
      destination: dest,
      verify: { spki: cosignSpki },
      onProgress: (p) => progress.push(p),
    });
    expect(result.digest).toBe(image.digest);
    expect(result.tag).toBe('v2');
    expect(result.referrers.source).toBe('tag-schema');
    expect(result.referrers.destination).toBe(host === embeddedHost ? 'api' : 'tag-schema');
    expect(result.summary.blobs.copied).toBeGreaterThanOrEqual(2 + 1 + 2); // layer, config; .sig payload; bundle, empty config
    expect(result.items.filter((i) => i.kind === 'attachment').map((i) => i.what)).toEqual([sigTag(image.digest)]);
    expect(result.items.filter((i) => i.kind === 'referrer')).toHaveLength(1);
    expect(result.verification?.verified, result.verification?.summary).toBe(true);
    // Every copied blob went from registry to registry inside the relay (POST /relay-transfer),
    // none through this client: no PATCH, no PUT with a body from here.
    const transfers = relayLines.filter((l) =>
      l.startsWith(`relay TRANSFER ${regs.tls.host} /v2/copy/cosign-${tag}/blobs/`),
    );
    expect(transfers, relayLines.join('\n')).toHaveLength(result.summary.blobs.copied);
    for (const l of transfers)
      expect(l).toMatch(new RegExp(` -> ${host} /v2/copied/cosign-${tag}/blobs/uploads/\\S+ 200 up=\\d+B `));
    expect(relayLines.filter((l) => l.startsWith('relay PATCH '))).toEqual([]);
    // Both formats verified on the copy: the .sig layer and the bundle.
    expect(result.verification!.manifests[0]!.destination).toBe(2);
    // Progress goes over bytes, never backwards, and ends complete.
    const last = progress.at(-1)!;
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.bytesTotal).toBeGreaterThan(0);
    for (let i = 1; i < progress.length; i++) {
      if (progress[i]!.step === progress[i - 1]!.step)
        expect(progress[i]!.bytesDone).toBeGreaterThanOrEqual(progress[i - 1]!.bytesDone);
    }

    const copied = `${host}/copied/cosign-${tag}@${image.digest}`;
    const v2 = await run('cosign2', cosignVerifyArgs(cosignPub, copied), { env: env() });
    expect(v2.code, `cosign 2.5: ${v2.stderr}`).toBe(0);
    const v3 = await run('cosign3', cosignVerifyArgs(cosignPub, copied, ['--trusted-root', rig.offline.trustedRoot]), {
      env: env(),
    });
    expect(v3.code, `cosign 3.1: ${v3.stderr}`).toBe(0);
    expect(v3.stdout).toContain(image.digest);

    // cosign writes the repository alone as the identity, and that names the source: the rule
    // that fits on the destination is exactRepository of the source (remapIdentity would go on
    // to matchRepoDigestOrExact, which refuses a repository-only identity).
    const identity = { type: 'exactRepository', dockerRepository: image.repository };
    const pulled = await skopeoPolicyPull(rig.home, await access(host), cosignPub, dest, { identity });
    expect(pulled.code, `skopeo: ${pulled.stderr}`).toBe(0);
    const wrongRepo = await skopeoPolicyPull(rig.home, await access(host), cosignPub, dest, {
      identity: { type: 'matchRepository' },
    });
    expect(wrongRepo.code, 'the copy names the source repository, not the destination').not.toBe(0);

    // skopeo copies the copy on to a third place, checking the signatures on the way.
    const third = `${regs.tls.host}/copy/third-${tag}:v3`;
    const onward = await skopeoCheckedCopy(cosignPub, dest, `${host}/copied/cosign-${tag}`, third, identity);
    expect(onward.code, `skopeo copy: ${onward.stderr}`).toBe(0);
    const v2third = await run(
      'cosign2',
      cosignVerifyArgs(cosignPub, `${regs.tls.host}/copy/third-${tag}@${image.digest}`),
      {
        env: env(),
      },
    );
    expect(v2third.code, `cosign 2.5 on the third copy: ${v2third.stderr}`).toBe(0);
  });

  it("an image signed by the page's signImage (repository:tag identity): skopeo accepts the copy under remapIdentity", async () => {
    const host = destHost();
    const tag = host === embeddedHost ? 'emb' : 'basic';
    const { signer, pub, spki } = await vectorSigner('ec-p256-pkcs8.pem');
    const srcRepo = `copy/page-${tag}`;
    const image = await pushSampleImage(tls, srcRepo, 'v1');
    await signWithPage(signer, { registry: regs.tls.host, repository: srcRepo }, 'v1', image.tagRef);

    // The same tag on the destination, so remapping the repository gives the signed reference.
    const result = await copyImage({
      client,
      source: image.tagRef,
      destination: `${host}/mirror/page-${tag}`,
      verify: { spki },
    });
    expect(result.tag).toBe('v1');
    expect(result.verification?.verified, result.verification?.summary).toBe(true);

    const copied = `${host}/mirror/page-${tag}@${image.digest}`;
    for (const tool of ['cosign2', 'cosign3'] as const) {
      const v = await run(
        tool,
        cosignVerifyArgs(pub, copied, tool === 'cosign3' ? ['--trusted-root', rig.offline.trustedRoot] : []),
        {
          env: env(),
        },
      );
      expect(v.code, `${tool}: ${v.stderr}`).toBe(0);
    }
    const remap = { type: 'remapIdentity', prefix: `${host}/mirror/page-${tag}`, signedPrefix: image.repository };
    const pulled = await skopeoPolicyPull(rig.home, await access(host), pub, `${host}/mirror/page-${tag}:v1`, {
      identity: remap,
    });
    expect(pulled.code, `skopeo remapIdentity: ${pulled.stderr}`).toBe(0);
    // The page's copy verification reads the same claim.
    const legacy = result.verification!.destination.manifests[0]!.signatures.find((s) => s.format === 'legacy');
    expect(legacy?.claims.dockerReference).toBe(image.tagRef);
  });
});

it('a 2-platform index signed with cosign sign --recursive keeps every platform signature', async () => {
  const image = await pushSampleImage(tls, 'copy/index', 'v1', { index: true });
  await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref, ['--recursive']), { env: env() });
  const result = await copyImage({
    client,
    source: image.tagRef,
    destination: `${regs.basic.host}/copied/index:v1`,
    verify: { spki: cosignSpki },
  });
  expect(result.platforms).toEqual(['linux/amd64', 'linux/arm64/v8']);
  expect(result.items.filter((i) => i.kind === 'attachment')).toHaveLength(3);
  expect(result.verification?.verified, result.verification?.summary).toBe(true);
  expect(result.verification!.manifests.map((m) => m.destination)).toEqual([1, 1, 1]);
  for (const p of image.platforms) {
    const v = await run('cosign2', cosignVerifyArgs(cosignPub, `${regs.basic.host}/copied/index@${p.digest}`), {
      env: env(),
    });
    expect(v.code, `${p.platform.architecture}: ${v.stderr}`).toBe(0);
  }
  const all = await skopeoPolicyPull(
    rig.home,
    await access(regs.basic.host),
    cosignPub,
    `${regs.basic.host}/copied/index:v1`,
    {
      identity: { type: 'exactRepository', dockerRepository: image.repository },
      all: true,
    },
  );
  expect(all.code, `skopeo copy --all: ${all.stderr}`).toBe(0);
});

it('attestations (.att, cosign 3.1 referrer) and an SBOM (.sbom) travel too: cosign verifies and downloads them on the copy', async () => {
  const image = await pushSampleImage(tls, 'copy/attested', 'v1');
  await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref), { env: env() });
  const predicate = join(rig.home.dir, 'predicate.json');
  await writeFile(predicate, '{"built":"by the rig"}');
  const attest = ['attest', '--key', cosignKey, '--yes', '--predicate', predicate];
  await runOk('cosign2', [...attest, '--tlog-upload=false', '--type', 'custom', image.ref], { env: env() });
  const v1 = 'https://example.com/predicate/v1';
  await runOk(
    'cosign3',
    [
      ...attest,
      '--signing-config',
      rig.offline.signingConfig,
      '--trusted-root',
      rig.offline.trustedRoot,
      '--type',
      v1,
      image.ref,
    ],
    { env: env() },
  );
  const sbom = join(rig.home.dir, 'sbom.spdx.json');
  const sbomText = '{"spdxVersion":"SPDX-2.3","name":"rig"}';
  await writeFile(sbom, sbomText);
  await runOk('cosign2', ['attach', 'sbom', '--sbom', sbom, '--type', 'spdx', image.ref], { env: env() });

  const result = await copyImage({
    client,
    source: image.tagRef,
    destination: `${embeddedHost}/copied/attested:v1`,
    verify: { spki: cosignSpki },
  });
  const tags = result.items.filter((i) => i.kind === 'attachment').map((i) => i.what.split('.').pop());
  expect(tags.sort()).toEqual(['att', 'sbom', 'sig']);
  expect(result.items.filter((i) => i.kind === 'referrer')).toHaveLength(1);
  // The cosign 3.1 attestation is shown for what it is and not counted as a signature.
  expect(result.verification?.verified, result.verification?.summary).toBe(true);
  expect(result.verification!.manifests[0]!.destination).toBe(1);

  const copied = `${embeddedHost}/copied/attested@${image.digest}`;
  const a2 = await run(
    'cosign2',
    ['verify-attestation', '--key', cosignPub, '--insecure-ignore-tlog=true', '--type', 'custom', copied],
    { env: env() },
  );
  expect(a2.code, `cosign 2.5 verify-attestation: ${a2.stderr}`).toBe(0);
  const a3 = await run(
    'cosign3',
    [
      'verify-attestation',
      '--key',
      cosignPub,
      '--insecure-ignore-tlog=true',
      '--trusted-root',
      rig.offline.trustedRoot,
      '--type',
      v1,
      copied,
    ],
    { env: env() },
  );
  expect(a3.code, `cosign 3.1 verify-attestation: ${a3.stderr}`).toBe(0);
  const downloaded = await run('cosign2', ['download', 'sbom', copied], { env: env() });
  expect(downloaded.code, downloaded.stderr).toBe(0);
  expect(downloaded.stdout.trim()).toBe(sbomText);
});

it('within one registry the blobs are mounted, not copied', async () => {
  const image = await pushSampleImage(tls, 'copy/mount-src', 'v1');
  await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref), { env: env() });
  const result = await copyImage({ client, source: image.tagRef, destination: `${regs.tls.host}/copy/mount-dst:v1` });
  // Layer, config, and the .sig's payload and config.
  expect(result.summary.blobs.mounted).toBe(4);
  expect(result.summary.bytesCopied).toBe(0);
  expect(result.verification).toBeNull();
  const v = await run('cosign2', cosignVerifyArgs(cosignPub, `${regs.tls.host}/copy/mount-dst@${image.digest}`), {
    env: env(),
  });
  expect(v.code, v.stderr).toBe(0);
});

it('a server without the blob transfer (an older one answers 404): the page sends the bytes itself', async () => {
  const image = await pushSampleImage(tls, 'copy/fallback-src', 'v1');
  await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref), { env: env() });
  const older = new RegistryClient({
    fetch: (input, init) => globalThis.fetch(input, init),
    ...relayRouting(relayOrigin),
    transfer: `${relayOrigin}/relay-transfer-of-a-newer-server`,
    credentials: (r) =>
      r === regs.basic.host ? { username: regs.basic.username, password: regs.basic.password } : undefined,
  });
  relayLines.length = 0;
  const result = await copyImage({
    client: older,
    source: image.tagRef,
    destination: `${regs.basic.host}/copied/fallback:v1`,
    verify: { spki: cosignSpki },
  });
  expect(result.verification?.verified, result.verification?.summary).toBe(true);
  expect(result.summary.blobs.copied).toBe(4);
  expect(relayLines.filter((l) => l.startsWith('relay TRANSFER '))).toEqual([]);
  expect(
    relayLines.filter((l) => l.startsWith(`relay PATCH ${regs.basic.host} /v2/copied/fallback/blobs/uploads/`)),
  ).toHaveLength(4);
  const v = await run('cosign2', cosignVerifyArgs(cosignPub, `${regs.basic.host}/copied/fallback@${image.digest}`), {
    env: env(),
  });
  expect(v.code, v.stderr).toBe(0);
});

/** Pushes an image with one layer of `size` random bytes (not a real tarball: registries do not look). */
async function pushBigImage(repo: RepoRef, size: number): Promise<{ digest: string; layer: Descriptor }> {
  const layerBytes = randomBytes(size);
  const layer = await client.pushBlob(repo, layerBytes, { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  const config = utf8(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }),
  );
  const configDesc = await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
  const manifest = utf8(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: configDesc,
      layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
    }),
  );
  const digest = await client.putManifest(repo, 'v1', manifest, MT.ociManifest);
  return { digest, layer };
}

describe('a copy cut off mid-way', () => {
  it('fails with MANAGE_COPY_INCOMPLETE, then finishes when run again, merging .sig and nothing twice', async () => {
    const src: RepoRef = { registry: regs.tls.host, repository: 'copy/big' };
    const size = 12 * 1024 * 1024 + 12345;
    const { digest } = await pushBigImage(src, size);
    const srcRef = `${regs.tls.host}/copy/big@${digest}`;
    await runOk('cosign2', cosign2SignArgs(cosignKey, srcRef), { env: env() });
    const page = await vectorSigner('ec-p256-pkcs8.pem');
    await signWithPage(page.signer, src, digest, `${regs.tls.host}/copy/big`);

    const destination = `${proxy.host}/copied/big:v1`;
    const dst: RepoRef = { registry: proxy.host, repository: 'copied/big' };
    // Cut while the relay pours the big layer into the destination (its transfer fails part-way).
    proxy.limit = 5 * 1024 * 1024;
    relayLines.length = 0;
    const cut = await copyImage({
      client,
      source: `${regs.tls.host}/copy/big:v1`,
      destination,
      chunkBytes: 1024 * 1024,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(proxy.cuts).toBeGreaterThan(0);
    expect(
      relayLines.some(
        (l) => l.startsWith(`relay TRANSFER ${regs.tls.host} /v2/copy/big/blobs/`) && !/ 200 up=/.test(l),
      ),
    ).toBe(true);
    expect(cut).toBeInstanceOf(ManageError);
    expect((cut as ManageError).code).toBe('MANAGE_COPY_INCOMPLETE');
    // Cut while blobs went up: some are whole on the destination, no manifest, signature tag,
    // referrer or tag yet.
    const there =
      /stopped while copying blobs: .* On the destination now: (\d+) of (\d+) blobs, 0 of 1 manifests, 0 of 1 signature tags, 0 of 1 referrers; the tag v1 was not moved\./.exec(
        (cut as ManageError).message,
      );
    expect(there, (cut as ManageError).message).not.toBeNull();
    expect(Number(there![1])).toBeLessThan(Number(there![2]));
    proxy.limit = Infinity;
    // The tag was not moved to a half copy.
    await expect(client.resolve(dst, 'v1')).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });

    // Meanwhile someone signs... the destination can only be signed once the image is there, so
    // sign the source again with another key: the rerun brings both.
    const other = await vectorSigner('ec-p384-pkcs8.pem');
    await signWithPage(other.signer, src, digest, `${regs.tls.host}/copy/big`);

    // The rerun sends the bytes itself (no relay transfer): chunked uploads resume as well.
    relayLines.length = 0;
    const again = await copyImage({
      client,
      source: `${regs.tls.host}/copy/big:v1`,
      destination,
      chunkBytes: 1024 * 1024,
      relayTransfer: false,
      verify: { spki: cosignSpki },
    });
    expect(again.digest).toBe(digest);
    expect(relayLines.filter((l) => l.startsWith('relay TRANSFER '))).toEqual([]);
    // The 12 MiB layer went up in 1 MiB PATCH chunks through the relay, then one PUT ?digest=.
    const patches = relayLines.filter((l) => l.startsWith(`relay PATCH ${proxy.host} /v2/copied/big/blobs/uploads/`));
    expect(patches.length).toBeGreaterThanOrEqual(13);
    expect(again.summary.blobs.skipped, 'blobs copied before the cut are not sent again').toBeGreaterThan(0);
    expect(again.verification?.verified, again.verification?.summary).toBe(true);
    expect((await client.resolve(dst, 'v1')).digest).toBe(digest);

    // A signature made on the destination itself is kept when the source's are merged in.
    const third = await vectorSigner('ed25519-pkcs8.pem');
    await signWithPage(third.signer, dst, digest, `${proxy.host}/copied/big`);
    const fourth = await vectorSigner('rsa-2048-pkcs1.pem');
    await signWithPage(fourth.signer, src, digest, `${regs.tls.host}/copy/big`);
    const merged = await copyImage({ client, source: `${regs.tls.host}/copy/big:v1`, destination });
    expect(merged.items.find((i) => i.kind === 'attachment')?.outcome).toBe('merged');
    // Only the new signature's blobs travel; the big layer is there already.
    expect(merged.items.find((i) => i.kind === 'blob' && i.size === size)?.outcome).toBe('skipped');
    expect(merged.summary.bytesCopied).toBeGreaterThan(0);
    expect(merged.summary.bytesCopied).toBeLessThan(64 * 1024);

    // Exactly one layer per signature: cosign, page key, P-384, RSA on the source; Ed25519 on the destination.
    const sig = await client.getManifest(dst, sigTag(digest));
    const layers = layersOf(sig.json);
    expect(layers).toHaveLength(5);
    expect(
      new Set(layers.map((l) => `${l.digest} ${l.annotations?.['dev.cosignproject.cosign/signature']}`)).size,
    ).toBe(5);
    // Referrers listed once each: four bundles (page, P-384, Ed25519 on the destination, RSA).
    const index = await client.getManifest(dst, referrersTag(digest));
    const entries = (index.json.manifests as Descriptor[]).map((d) => d.digest);
    expect(entries).toHaveLength(4);
    expect(new Set(entries).size).toBe(4);

    // Run once more: nothing to do, nothing changes.
    const idle = await copyImage({ client, source: `${regs.tls.host}/copy/big:v1`, destination });
    expect(idle.summary.blobs.copied + idle.summary.manifests.copied + idle.summary.signatures.copied).toBe(0);
    expect(idle.summary.signatures.merged).toBe(0);
    expect((await client.getManifest(dst, sigTag(digest))).descriptor.digest).toBe(sig.descriptor.digest);
    expect((await client.getManifest(dst, referrersTag(digest))).descriptor.digest).toBe(index.descriptor.digest);

    // The real cosigns agree: every key verifies the copy.
    for (const [pub, tool] of [
      [cosignPub, 'cosign2'],
      [page.pub, 'cosign3'],
      [other.pub, 'cosign2'],
      [third.pub, 'cosign3'],
    ] as const) {
      const v = await run(
        tool,
        cosignVerifyArgs(
          pub,
          `${regs.basic.host}/copied/big@${digest}`,
          tool === 'cosign3' ? ['--trusted-root', rig.offline.trustedRoot] : [],
        ),
        { env: env() },
      );
      expect(v.code, `${tool} with ${pub}: ${v.stderr}`).toBe(0);
    }
  });
});

describe('refusals and readable errors', () => {
  it('the same image is MANAGE_SAME_IMAGE; a digest destination is MANAGE_COPY_DESTINATION_INVALID', async () => {
    await expect(
      copyImage({ client, source: `${regs.tls.host}/copy/x:v1`, destination: `${regs.tls.host}/copy/x` }),
    ).rejects.toMatchObject({ code: 'MANAGE_SAME_IMAGE' });
    await expect(
      copyImage({ client, source: `${regs.tls.host}/copy/x:v1`, destination: `${regs.tls.host}/copy/x:v1` }),
    ).rejects.toMatchObject({ code: 'MANAGE_SAME_IMAGE' });
    await expect(
      copyImage({
        client,
        source: `${regs.tls.host}/copy/x:v1`,
        destination: `${regs.basic.host}/copy/x@sha256:${'a'.repeat(64)}`,
      }),
    ).rejects.toMatchObject({ code: 'MANAGE_COPY_DESTINATION_INVALID' });
  });

  it('a missing source is a readable registry error and writes nothing', async () => {
    const e = await copyImage({
      client,
      source: `${regs.tls.host}/copy/does-not-exist:v1`,
      destination: `${regs.basic.host}/copied/nothing:v1`,
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).code).toBe('REGISTRY_NOT_FOUND');
    expect((e as RegistryError).message).toMatch(/said 404/);
  });

  it('wrong destination credentials: nothing is written and the refusal is said', async () => {
    const image = await pushSampleImage(tls, 'copy/creds', 'v1');
    const bad = new RegistryClient({
      fetch: (input, init) => globalThis.fetch(input, init),
      ...relayRouting(relayOrigin),
      credentials: (r) => (r === regs.basic.host ? { username: regs.basic.username, password: 'wrong' } : undefined),
    });
    const e = await copyImage({
      client: bad,
      source: image.tagRef,
      destination: `${regs.basic.host}/copied/creds:v1`,
    }).catch((x: unknown) => x);
    expect((e as RegistryError).code).toBe('REGISTRY_UNAUTHORIZED');
    expect((e as RegistryError).message).toMatch(/said 401/);
  });

  it('verifying with another key: the copy is made and the verification says MANAGE_COPY_VERIFY_FAILED', async () => {
    const image = await pushSampleImage(tls, 'copy/wrong-key', 'v1');
    await runOk('cosign2', cosign2SignArgs(cosignKey, image.ref), { env: env() });
    const other = await vectorSigner('ec-p384-pkcs8.pem');
    const result = await copyImage({
      client,
      source: image.tagRef,
      destination: `${regs.basic.host}/copied/wrong-key:v1`,
      verify: { spki: other.spki },
    });
    expect(result.digest).toBe(image.digest);
    expect(result.verification?.verified).toBe(false);
    expect(result.verification?.error?.code).toBe('MANAGE_COPY_VERIFY_FAILED');
    expect(result.verification?.error?.message).toMatch(/neither the source nor the copy verifies/);
  });
});

/**
 * Inspect, Tree and removing signatures (shared/ops/inspect.ts, tree.ts, remove.ts) against the
 * real registries and the real tools: what inspect reads is byte for byte what `skopeo inspect
 * --raw` / `--config --raw` print and its digests are `crane digest`'s; the tree lists every object
 * cosign 2.5, cosign 3.1, `oras attach` and this project attached, under the node `cosign tree`
 * lists it, with the right verdict for a key; removing one signature among three (legacy layer or
 * bundle referrer) leaves the other two verifying with the real cosign and the removed one not;
 * removing all makes cosign find none; a registry that refuses DELETE gets a readable error and
 * nothing changes.
 */
import { Hono } from 'hono';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlainPrivateKeyPem, parsePublicKey, publicKeyPem } from '../../shared/crypto/keys.ts';
import { fingerprint, importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { ManageError } from '../../shared/errors.ts';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { inspectImage } from '../../shared/ops/inspect.ts';
import { buildTree, nodeItems, type ImageTree, type TreeItem, type TreeNode } from '../../shared/ops/tree.ts';
import { allSignatureTargets, removeSignatures, targetOf } from '../../shared/ops/remove.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import { buildSigManifest, referrersTag, sameSignatureLayer, sigTag } from '../../shared/cosign/manifests.ts';
import { MT, type Descriptor } from '../../shared/registry/mediatypes.ts';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../server/registry/registry.ts';
import { serveApp } from '../../server/serve.ts';
import { createLocks } from '../../server/locks.ts';
import { relayLock } from '../../web/src/app/relay-lock.ts';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import {
  CACHE_DIR,
  cosign2SignArgs,
  cosign3SignArgs,
  cosignVerifyArgs,
  run,
  runOk,
  skopeoRegistryFlags,
} from '../rig/tools.ts';
import { caFetch } from './ca-fetch.ts';
import { useRig, VECTORS } from './rig-context.ts';

const CRANE = join(CACHE_DIR, 'sid', 'usr', 'bin', 'crane');
const ORAS = join(CACHE_DIR, 'sid', 'usr', 'bin', 'oras');

const rig = useRig({ prefix: 'cosign-web-tree-', offlineCosign3: true, password: '' });
const { regs, client, tls, env } = rig;

async function craneDigest(ref: string): Promise<string> {
  return (await runOk(CRANE, ['digest', ref], { env: { SSL_CERT_FILE: regs.tls.caFile } })).stdout.trim();
}

interface ToolKey {
  key: string;
  pub: string;
  spki: Uint8Array;
  hex: string;
}
const keys: ToolKey[] = [];

beforeAll(async () => {
  for (const name of ['k1', 'k2', 'k3']) {
    const { key, pub } = await rig.cosign2KeyPair(name);
    const spki = parsePublicKey(await readFile(pub, 'utf8')).spki;
    keys.push({ key, pub, spki, hex: fingerprint(spki).hex });
  }
}, 120_000);

async function cosign2Sign(k: ToolKey, ref: string): Promise<void> {
  await runOk('cosign2', cosign2SignArgs(k.key, ref), { env: env() });
}
async function cosign3Sign(k: ToolKey, ref: string): Promise<void> {
  await runOk('cosign3', cosign3SignArgs(k.key, rig.offline, ref), { env: env() });
}
async function verify2(k: ToolKey, ref: string) {
  return run('cosign2', cosignVerifyArgs(k.pub, ref), { env: env() });
}
/** cosign 3.1 verify with a tool key or a public key file. */
async function verify3(k: ToolKey | string, ref: string) {
  const pub = typeof k === 'string' ? k : k.pub;
  return run('cosign3', cosignVerifyArgs(pub, ref, ['--trusted-root', rig.offline.trustedRoot]), { env: env() });
}
/** cosign 3.1 attest (bundle referrer) of `predicate` as `type`, with no network. */
async function cosign3Attest(k: ToolKey, predicate: string, type: string, ref: string): Promise<void> {
  // `attest` takes the flags `sign` takes, plus the predicate and its type.
  const [, ...flags] = cosign3SignArgs(k.key, rig.offline, ref, ['--predicate', predicate, '--type', type]);
  await runOk('cosign3', ['attest', ...flags], { env: env() });
}
/** The page's signing of `image`: one plan, then each signer in turn, through `via`. */
async function pageSign(
  via: RegistryClient,
  repo: RepoRef,
  image: PushedImage,
  signers: readonly Signer[],
  formats: { legacy: boolean; bundle: boolean },
): Promise<void> {
  const plan = await planSigning(via, repo, image.digest);
  for (const signer of signers) {
    await signImage({ client: via, signer, plan, dockerReference: image.repository, formats });
  }
}

/** What `cosign tree` lists: legacy tags with their layer digests, referrer manifests with theirs. */
interface CosignTreeListing {
  tags: Map<string, string[]>;
  referrers: Map<string, { type: string; layers: string[] }>;
}

function parseCosignTree(out: string): CosignTreeListing {
  const tags = new Map<string, string[]>();
  const referrers = new Map<string, { type: string; layers: string[] }>();
  let current: string[] | null = null;
  for (const line of out.split('\n')) {
    const tag = /for an image tag: \S+:(sha256-[0-9a-f]{64}\.(?:sig|att|sbom))$/.exec(line);
    const ref = /🔗 (.+) artifacts via OCI referrer: \S+@(sha256:[0-9a-f]{64})$/.exec(line);
    const layer = /🍒 (sha256:[0-9a-f]{64})$/.exec(line);
    if (tag) tags.set(tag[1]!, (current = []));
    else if (ref) {
      const entry = { type: ref[1]!, layers: [] as string[] };
      referrers.set(ref[2]!, entry);
      current = entry.layers;
    } else if (layer && current) current.push(layer[1]!);
  }
  return { tags, referrers };
}

async function cosignTree(tool: 'cosign2' | 'cosign3', ref: string): Promise<CosignTreeListing> {
  return parseCosignTree((await runOk(tool, ['tree', ref], { env: env() })).stdout);
}

/** The same listing, from the tree built here. */
function ourListing(node: TreeNode): CosignTreeListing {
  const tags = new Map<string, string[]>();
  for (const g of [node.sig, node.att, node.sbom]) {
    if (g.state === 'found')
      tags.set(
        g.tag,
        g.items.map((i) => i.layer!.digest),
      );
  }
  const referrers = new Map<string, { type: string; layers: string[] }>();
  for (const i of node.referrers.items) {
    referrers.set(i.manifest, { type: i.predicateType ?? i.artifactType ?? '', layers: [i.layer!.digest] });
  }
  return { tags, referrers };
}

function sorted(l: CosignTreeListing): unknown {
  return {
    tags: [...l.tags.entries()].map(([k, v]) => [k, [...v].sort()]).sort(),
    referrers: [...l.referrers.entries()].map(([k, v]) => [k, v.type, [...v.layers].sort()]).sort(),
  };
}

function pageSigner(file: string): Promise<Signer & { hex: string }> {
  return readFile(join(VECTORS, file), 'utf8').then(async (pem) => {
    const info = parsePlainPrivateKeyPem(pem);
    const key = await importPrivateKey(info);
    return {
      algorithm: info.algorithm,
      spki: info.spki,
      sign: (d: Uint8Array) => signWithCryptoKey(key, info.algorithm, d),
      hex: fingerprint(info.spki).hex,
    };
  });
}

function bySigner(node: TreeNode, hex: string, source: TreeItem['source']): TreeItem {
  const found = nodeItems(node).filter((i) => i.source === source && i.signer?.fingerprint === hex);
  expect(found, `one ${source} item by ${hex.slice(0, 12)}`).toHaveLength(1);
  return found[0]!;
}

describe('inspect', () => {
  async function skopeoRaw(ref: string, extra: string[] = []): Promise<Buffer> {
    const scratch = await mkdtemp(join(tmpdir(), 'cosign-web-inspect-'));
    try {
      const access = await skopeoAccess(tls, scratch);
      const out = join(scratch, 'out');
      // Through a file so the bytes are exactly skopeo's (stdout is decoded as text by run()).
      const r = await runOk('/bin/sh', [
        '-c',
        `"$0" "$@" > ${JSON.stringify(out)}`,
        join(CACHE_DIR, 'bin', 'skopeo'),
        'inspect',
        ...skopeoRegistryFlags(access, 'plain'),
        ...extra,
        `docker://${ref}`,
      ]);
      expect(r.code).toBe(0);
      return await readFile(out);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  it('a single image: the manifest and config are what skopeo inspect --raw / --config --raw print', async () => {
    const image = await pushSampleImage(tls, 'tree/inspect-one', 'v1');
    const result = await inspectImage(client, { image: image.tagRef });
    const raw = await skopeoRaw(image.tagRef, ['--raw']);
    const config = await skopeoRaw(image.tagRef, ['--config', '--raw']);
    // skopeo prints the bytes, then a newline when they do not end with one.
    expect(Buffer.from(result.top.raw.bytes).toString('latin1')).toBe(raw.toString('latin1').replace(/\n$/, ''));
    expect(Buffer.from(result.config!.raw.bytes).toString('latin1')).toBe(config.toString('latin1').replace(/\n$/, ''));
    expect(result.top.digest.computed).toBe(await craneDigest(image.tagRef));
    expect(result.top.digest.registry).toBe(image.digest);
    expect(result.top.digest.ok).toBe(true);
    expect(result.config!.digest.ok).toBe(true);
    expect(result.top.explanation.title).toBe('OCI image manifest');
    expect(result.mediaTypes.map((m) => m.mediaType)).toEqual(
      expect.arrayContaining([
        'application/vnd.oci.image.config.v1+json',
        'application/vnd.oci.image.layer.v1.tar+gzip',
      ]),
    );
    expect(result.top.raw.headers.some(([k]) => k === 'docker-content-digest')).toBe(true);
  });

  it('a 2-platform index: the index, each platform manifest and its config match skopeo and crane', async () => {
    const image = await pushSampleImage(tls, 'tree/inspect-multi', 'v1', { index: true });
    const amd = await inspectImage(client, { image: image.tagRef });
    expect(amd.top.role).toBe('index');
    expect(amd.platform).toBe('linux/amd64');
    expect(Buffer.from(amd.top.raw.bytes).toString('latin1')).toBe(
      (await skopeoRaw(image.tagRef, ['--raw'])).toString('latin1').replace(/\n$/, ''),
    );
    // skopeo resolves an index to this machine's platform (linux/amd64) for --config.
    expect(Buffer.from(amd.config!.raw.bytes).toString('latin1')).toBe(
      (await skopeoRaw(image.tagRef, ['--config', '--raw'])).toString('latin1').replace(/\n$/, ''),
    );
    expect(amd.top.digest.computed).toBe(await craneDigest(image.tagRef));
    const arm = await inspectImage(client, { image: image.tagRef, platform: 'linux/arm64/v8' });
    const armRef = image.platforms[1]!.ref;
    expect(arm.manifest.digest.computed).toBe(image.platforms[1]!.digest);
    expect(Buffer.from(arm.manifest.raw.bytes).toString('latin1')).toBe(
      (await skopeoRaw(armRef, ['--raw'])).toString('latin1').replace(/\n$/, ''),
    );
    expect(Buffer.from(arm.config!.raw.bytes).toString('latin1')).toBe(
      (await skopeoRaw(image.tagRef, ['--override-arch', 'arm64', '--override-variant', 'v8', '--config', '--raw']))
        .toString('latin1')
        .replace(/\n$/, ''),
    );
    expect(arm.manifest.digest.computed).toBe(await craneDigest(armRef));
    await expect(inspectImage(client, { image: image.tagRef, platform: 'linux/s390x' })).rejects.toMatchObject({
      code: 'REGISTRY_NOT_FOUND',
    });
  });
});

describe('tree', () => {
  let image: PushedImage;
  let page: Signer & { hex: string };
  let sbomDigest: string;

  beforeAll(async () => {
    image = await pushSampleImage(tls, 'tree/everything', 'v1');
    page = await pageSigner('ec-p256-pkcs8.pem');
    await cosign2Sign(keys[0]!, image.ref);
    await cosign3Sign(keys[1]!, image.ref);
    await pageSign(client, { registry: tls.host, repository: 'tree/everything' }, image, [page], {
      legacy: true,
      bundle: true,
    });
    const predicate = join(rig.home.dir, 'predicate.json');
    await writeFile(predicate, '{"built":"by the rig"}');
    await runOk(
      'cosign2',
      [
        'attest',
        '--key',
        keys[0]!.key,
        '--tlog-upload=false',
        '--yes',
        '--predicate',
        predicate,
        '--type',
        'custom',
        image.ref,
      ],
      { env: env() },
    );
    await cosign3Attest(keys[2]!, predicate, 'https://example.com/predicate/v1', image.ref);
    const sbom = join(rig.home.dir, 'sbom.spdx.json');
    await writeFile(sbom, '{"spdxVersion":"SPDX-2.3","name":"rig"}');
    const attached = await runOk(
      ORAS,
      [
        'attach',
        '--ca-file',
        regs.tls.caFile,
        '--artifact-type',
        'application/spdx+json',
        // oras speaks plain HTTP to "localhost" on its own; the certificate also names 127.0.0.1.
        image.ref.replace(/^localhost:/, '127.0.0.1:'),
        'sbom.spdx.json:application/spdx+json',
      ],
      { cwd: rig.home.dir, env: { HOME: rig.home.home, DOCKER_CONFIG: rig.home.dockerConfig } },
    );
    sbomDigest = /Digest: (sha256:[0-9a-f]{64})/.exec(attached.stdout)![1]!;
  }, 180_000);

  it('lists every object under the image, as cosign 2.5 and 3.1 tree do, with the verdicts of one key', async () => {
    const tree = await buildTree(client, {
      image: image.tagRef,
      key: keys[0]!.spki,
      knownKeys: [
        { name: 'k2', spki: keys[1]!.spki, source: 'trusted' },
        { name: 'page key', spki: page.spki, source: 'page' },
      ],
    });
    const node = tree.root;
    expect(tree.digest).toBe(image.digest);
    expect(tree.key?.fingerprint).toBe(keys[0]!.hex);

    // cosign 3.1 lists the legacy tags and every referrer; cosign 2.5 the legacy tags.
    const ours = ourListing(node);
    expect(sorted(ours)).toEqual(sorted(await cosignTree('cosign3', image.ref)));
    const two = await cosignTree('cosign2', image.ref);
    expect(sorted({ tags: ours.tags, referrers: new Map() })).toEqual(sorted(two));

    // .sig: cosign 2.5's signature (k1, verified) and the page's (named, does not verify with k1).
    expect(node.sig.items).toHaveLength(2);
    const c2 = bySigner(node, keys[0]!.hex, 'sig');
    expect(c2.verdict.state).toBe('verified');
    expect(c2.identity).toEqual({ kind: 'docker-reference', value: image.repository });
    expect(c2.removable).toBe(true);
    const p1 = bySigner(node, page.hex, 'sig');
    expect(p1.signer?.name).toBe('page key');
    expect(p1.verdict).toMatchObject({ state: 'fails', code: 'VERIFY_WRONG_KEY' });

    // .att: cosign 2.5's attestation, by k1.
    expect(node.att.items).toHaveLength(1);
    const att = node.att.items[0]!;
    expect(att.kind).toBe('attestation');
    expect(att.predicateType).toBe('https://cosign.sigstore.dev/attestation/v1');
    expect(att.signer?.fingerprint).toBe(keys[0]!.hex);
    expect(att.verdict.state).toBe('verified');
    expect(att.names).toEqual({ digest: image.digest, matches: true });
    expect(att.removable).toBe(false);

    // Referrers through the tag schema (distribution 2.8 has no referrers API).
    expect(node.referrers.via).toBe('tag-schema');
    expect(node.referrers.fallback?.entries).toBe(4);
    // The fallback index's digest is the one crane reads for the sha256-<hex> tag.
    expect(node.referrers.fallback?.digest).toBe(
      await craneDigest(`${tls.host}/tree/everything:${image.digest.replace(':', '-')}`),
    );
    const c3 = bySigner(node, keys[1]!.hex, 'referrer');
    expect(c3.kind).toBe('signature');
    expect(c3.signer?.name).toBe('k2');
    expect(c3.verdict).toMatchObject({ state: 'fails', code: 'VERIFY_WRONG_KEY' });
    expect(c3.identity).toEqual({ kind: 'subject', value: image.digest });
    const p2 = bySigner(node, page.hex, 'referrer');
    expect(p2.kind).toBe('signature');
    const a3 = nodeItems(node).find((i) => i.predicateType === 'https://example.com/predicate/v1')!;
    expect(a3.kind).toBe('attestation');
    // k3 is not known here: the bundle's key hint names it.
    expect(a3.signer).toMatchObject({ fingerprint: keys[2]!.hex, source: 'hint' });
    expect(a3.verdict.state).toBe('fails');
    const sbom = node.referrers.items.find((i) => i.manifest === sbomDigest)!;
    expect(sbom).toMatchObject({ kind: 'sbom', artifactType: 'application/spdx+json', removable: false });
    expect(sbom.verdict.state).toBe('not-checked');
  });

  it('without a key, nothing is judged but every known signer is named', async () => {
    const tree = await buildTree(client, {
      image: image.ref,
      knownKeys: keys.map((k, i) => ({ name: `k${i + 1}`, spki: k.spki, source: 'trusted' as const })),
    });
    const items = nodeItems(tree.root);
    expect(items.every((i) => i.verdict.state === 'not-checked')).toBe(true);
    expect(bySigner(tree.root, keys[1]!.hex, 'referrer').signer?.name).toBe('k2');
    expect(bySigner(tree.root, keys[0]!.hex, 'sig').signer?.name).toBe('k1');
  });

  it('an index: each platform is its own node with its own signatures', async () => {
    const multi = await pushSampleImage(tls, 'tree/multi', 'v1', { index: true });
    await runOk('cosign2', cosign2SignArgs(keys[0]!.key, multi.ref, ['--recursive']), { env: env() });
    await cosign3Sign(keys[1]!, multi.platforms[1]!.ref);
    const tree = await buildTree(client, { image: multi.tagRef, key: keys[1]!.spki });
    expect(tree.isIndex).toBe(true);
    expect(tree.root.children.map((c) => c.platform)).toEqual(['linux/amd64', 'linux/arm64/v8']);
    const [amd, arm] = tree.root.children as [TreeNode, TreeNode];
    for (const [n, ref] of [
      [tree.root, multi.ref],
      [amd, multi.platforms[0]!.ref],
      [arm, multi.platforms[1]!.ref],
    ] as const) {
      expect(sorted(ourListing(n))).toEqual(sorted(await cosignTree('cosign3', ref)));
    }
    expect(amd.referrers.items).toHaveLength(0);
    expect(arm.referrers.items[0]!.verdict.state).toBe('verified');
    expect(amd.sig.items[0]!.verdict).toMatchObject({ state: 'fails' });
  });
});

describe('remove', () => {
  async function threeTimesSigned(repo: string): Promise<PushedImage> {
    const image = await pushSampleImage(tls, repo, 'v1');
    for (const k of keys) {
      await cosign2Sign(k, image.ref);
      await cosign3Sign(k, image.ref);
    }
    return image;
  }
  const known = () => keys.map((k, i) => ({ name: `k${i + 1}`, spki: k.spki, source: 'trusted' as const }));
  const treeOf = (image: PushedImage): Promise<ImageTree> =>
    buildTree(client, { image: image.ref, knownKeys: known() });

  it('one .sig layer among three, then one referrer among three: the other two still verify', async () => {
    const image = await threeTimesSigned('tree/remove-one');
    let tree = await treeOf(image);
    expect(tree.root.sig.items).toHaveLength(3);
    expect(tree.root.referrers.items).toHaveLength(3);
    const sigBefore = await client.getManifest(
      { registry: tls.host, repository: 'tree/remove-one' },
      sigTag(image.digest),
    );

    const legacy = bySigner(tree.root, keys[1]!.hex, 'sig');
    const report = await removeSignatures({
      client,
      repo: tree.repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, legacy)],
      settleDelay: () => 50,
    });
    expect(report).toMatchObject({ sigManifest: 'rewritten', fallbackIndex: 'unchanged', intact: 5 });
    // cosign 2.5 reads only .sig: k1 and k3 verify, k2 no longer does.
    expect((await verify2(keys[0]!, image.ref)).code).toBe(0);
    expect((await verify2(keys[2]!, image.ref)).code).toBe(0);
    const gone = await verify2(keys[1]!, image.ref);
    expect(gone.code).not.toBe(0);
    // The two layers left are the same descriptors as before.
    const sigAfter = await client.getManifest(tree.repo, sigTag(image.digest));
    const layersBefore = (sigBefore.json.layers as Descriptor[]).filter((l) => !sameSignatureLayer(l, legacy.layer!));
    expect(sigAfter.json.layers).toEqual(layersBefore);

    tree = await treeOf(image);
    const bundle = bySigner(tree.root, keys[1]!.hex, 'referrer');
    const r2 = await removeSignatures({
      client,
      repo: tree.repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, bundle)],
      settleDelay: () => 50,
    });
    expect(r2).toMatchObject({ sigManifest: 'unchanged', fallbackIndex: 'rewritten', intact: 4 });
    // cosign 3.1 reads the bundles: k1 and k3 verify, k2 (neither format left) does not.
    expect((await verify3(keys[0]!, image.ref)).code).toBe(0);
    expect((await verify3(keys[2]!, image.ref)).code).toBe(0);
    expect((await verify3(keys[1]!, image.ref)).code).not.toBe(0);
    await expect(client.getManifest(tree.repo, bundle.manifest)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });

    // The same target again is refused: it is gone.
    await expect(
      removeSignatures({ client, repo: tree.repo, subject: tree.digest, targets: [targetOf(tree.root, bundle)] }),
    ).rejects.toMatchObject({ code: 'MANAGE_SIGNATURE_NOT_FOUND' });
  });

  it('while two page signers append to the same .sig, under the relay lock: the removal stays, their signatures too', async () => {
    // The lock takes keys of the registries its relay reaches: the rig's TLS registry.
    const locks = await serveApp(
      new Hono().route('/locks', createLocks({ relay: { allowedRegistries: [tls.host] } })),
      {
        port: 0,
        hostname: '127.0.0.1',
      },
    );
    try {
      const lock = relayLock(`http://127.0.0.1:${locks.port}`);
      const image = await pushSampleImage(tls, 'tree/remove-race', 'v1');
      for (const k of keys) await cosign2Sign(k, image.ref);
      const tree = await treeOf(image);
      const victim = bySigner(tree.root, keys[1]!.hex, 'sig');
      const signers = [await pageSigner('ec-p384-pkcs8.pem'), await pageSigner('rsa-2048-pkcs8.pem')];
      const plan = await planSigning(client, tree.repo, image.digest);
      const outcomes = await Promise.allSettled([
        removeSignatures({
          client,
          repo: tree.repo,
          subject: tree.digest,
          targets: [targetOf(tree.root, victim)],
          lock,
        }),
        ...signers.map((signer) =>
          signImage({
            client,
            signer,
            plan,
            dockerReference: image.repository,
            formats: { legacy: true, bundle: false },
            lock,
          }),
        ),
      ]);
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason)))).toEqual(['ok', 'ok', 'ok']);
      // A signer that read the removed layer merges it back when it sees it missing; the removal's
      // longer read-back sees that and removes it again. Look again once every signer is done.
      await new Promise((r) => setTimeout(r, 1000));
      const after = await buildTree(client, {
        image: image.ref,
        knownKeys: [...keys.map((k) => k.spki), ...signers.map((s) => s.spki)].map((spki, i) => ({
          name: `key ${i}`,
          spki,
          source: 'trusted' as const,
        })),
      });
      expect(after.root.sig.items.map((i) => i.signer?.name).sort()).toEqual(['key 0', 'key 2', 'key 3', 'key 4']);
      expect((await verify2(keys[1]!, image.ref)).code).not.toBe(0);
    } finally {
      await new Promise<void>((resolve) => locks.server.close(() => resolve()));
    }
  });

  it('two removals at once, of two different signatures: neither puts back what the other removed', async () => {
    const image = await pushSampleImage(tls, 'tree/remove-two', 'v1');
    const repo = { registry: tls.host, repository: 'tree/remove-two' };
    const signers = await Promise.all(
      ['ec-p256-pkcs8.pem', 'ec-p384-pkcs8.pem', 'rsa-2048-pkcs8.pem'].map((f) => pageSigner(f)),
    );
    await pageSign(client, repo, image, signers, { legacy: true, bundle: false });
    const knownKeys = signers.map((s, i) => ({ name: `s${i}`, spki: s.spki, source: 'trusted' as const }));
    const tree = await buildTree(client, { image: image.ref, knownKeys });
    const [first, second] = [bySigner(tree.root, signers[0]!.hex, 'sig'), bySigner(tree.root, signers[1]!.hex, 'sig')];
    // The second removal starts while the first waits between its two read-backs.
    let other: Promise<unknown> | null = null;
    const mine = await removeSignatures({
      client,
      repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, first)],
      settleDelay: () => {
        other ??= removeSignatures({
          client,
          repo,
          subject: tree.digest,
          targets: [targetOf(tree.root, second)],
          settleDelay: () => 50,
        });
        return 1500;
      },
    });
    const theirs = await other;
    const after = await buildTree(client, { image: image.ref, knownKeys });
    expect(after.root.sig.items.map((i) => i.signer?.name)).toEqual(['s2']);
    expect(mine.vanished).toEqual([`.sig layer ${second.layer!.digest.slice(0, 19)}…`]);
    expect(mine).toMatchObject({ sigManifest: 'rewritten', intact: 1 });
    expect(theirs).toMatchObject({ sigManifest: 'rewritten', intact: 1, vanished: [] });
  });

  it('all signatures: cosign 2.5 and 3.1 find none; an attestation stays', async () => {
    const image = await threeTimesSigned('tree/remove-all');
    const predicate = join(rig.home.dir, 'predicate-all.json');
    await writeFile(predicate, '{"stays":true}');
    await cosign3Attest(keys[2]!, predicate, 'https://example.com/stays/v1', image.ref);
    const tree = await treeOf(image);
    const targets = allSignatureTargets(tree.root);
    expect(targets).toHaveLength(6);
    const report = await removeSignatures({
      client,
      repo: tree.repo,
      subject: tree.digest,
      targets,
      settleDelay: () => 50,
    });
    expect(report).toMatchObject({ sigManifest: 'deleted', fallbackIndex: 'rewritten', intact: 1 });
    const v2 = await verify2(keys[0]!, image.ref);
    expect(v2.code).not.toBe(0);
    expect(v2.stderr).toMatch(/no signatures found/i);
    for (const k of [keys[0]!, keys[1]!]) expect((await verify3(k, image.ref)).code).not.toBe(0);
    // cosign 3.1 counts an attestation made with the key as a signature when it is the only
    // referrer (see README); the k3 attestation left here is not a signature to this page.
    const after = await treeOf(image);
    expect(after.root.sig.state).toBe('absent');
    expect(after.root.referrers.items.map((i) => i.kind)).toEqual(['attestation']);
  });

  it('the read-back reads no kept layer over the signature size limit, whatever size the registry states', async () => {
    const image = await pushSampleImage(tls, 'tree/remove-big', 'v1');
    const repo = { registry: tls.host, repository: 'tree/remove-big' };
    const signer = await pageSigner('ec-p256-pkcs8.pem');
    await pageSign(client, repo, image, [signer], { legacy: true, bundle: false });
    // A layer whose descriptor claims 64 MiB (distribution checks that the blob exists, not its size).
    const blob = await client.pushBlob(repo, new TextEncoder().encode('big'));
    const big: Descriptor = { mediaType: MT.cosignSimpleSigning, digest: blob.digest, size: 64 * 1024 * 1024 };
    const sig = await client.getManifest(repo, sigTag(image.digest));
    const { manifest, config } = buildSigManifest([...(sig.json.layers as Descriptor[]), big]);
    await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
    await client.putManifest(repo, sigTag(image.digest), manifest, MT.ociManifest);

    const tree = await buildTree(client, { image: image.ref, key: signer.spki });
    expect(tree.root.sig.items.map((i) => i.verdict.state)).toEqual(['verified', 'fails']);
    const report = await removeSignatures({
      client,
      repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, tree.root.sig.items[0]!)],
      settleDelay: () => 50,
    });
    expect(report).toMatchObject({ sigManifest: 'rewritten', intact: 1 });
    const after = await client.getManifest(repo, sigTag(image.digest));
    expect(after.json.layers).toEqual([big]);
  });

  it("a referrer about another image, listed in this image's fallback index, is shown but never removed", async () => {
    const a = await pushSampleImage(tls, 'tree/about-other', 'a');
    const b = await pushSampleImage(tls, 'tree/about-other', 'b');
    const repo = { registry: tls.host, repository: 'tree/about-other' };
    const signer = await pageSigner('ec-p256-pkcs8.pem');
    await pageSign(client, repo, b, [signer], { legacy: false, bundle: true });
    // distribution has no referrers API: B's bundle is listed in B's fallback index. Anyone who can
    // push can write the same list under A's fallback tag.
    const bIndex = await client.fetchManifest(repo, referrersTag(b.digest));
    await client.putManifest(repo, referrersTag(a.digest), bIndex.bytes, MT.ociIndex);
    const bTree = await buildTree(client, { image: b.ref, key: signer.spki });
    const bundle = bTree.root.referrers.items[0]!;
    expect(bundle).toMatchObject({ kind: 'signature', removable: true, verdict: { state: 'verified' } });

    const aTree = await buildTree(client, { image: a.ref, key: signer.spki });
    expect(aTree.root.referrers.via).toBe('tag-schema');
    const listed = aTree.root.referrers.items;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      manifest: bundle.manifest,
      kind: 'artifact',
      removable: false,
      verdict: { state: 'not-checked', code: 'VERIFY_DIGEST_MISMATCH' },
    });
    expect(listed[0]!.title).toContain(`listed here, but about another manifest (${b.digest})`);
    expect(allSignatureTargets(aTree.root)).toEqual([]);

    // A target naming it under A (as an older page or a crafted call would) is refused before anything is deleted.
    const err = await removeSignatures({
      client,
      repo,
      subject: a.digest,
      targets: [{ kind: 'referrer', subject: a.digest, digest: bundle.manifest, label: 'the bundle' }],
      settleDelay: () => 50,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManageError);
    expect(err).toMatchObject({ code: 'MANAGE_SIGNATURE_NOT_FOUND' });
    expect((err as Error).message).toContain(`is about ${b.digest}`);
    await client.getManifest(repo, bundle.manifest);
    const pub = join(rig.home.dir, 'about-other.pub');
    await writeFile(pub, publicKeyPem(signer.spki));
    const stays = await verify3(pub, b.ref);
    expect(stays.code, stays.stderr).toBe(0);
  });
});

describe('a registry that refuses DELETE', () => {
  let dataDir: string;
  let registry: EmbeddedRegistry;
  let host: string;
  let openHost: string;
  const plain = new RegistryClient({ fetch: caFetch(), scheme: () => 'http' });

  beforeAll(async () => {
    dataDir = await rig.tempDir('cosign-web-nodelete-');
    registry = createEmbeddedRegistry({ dataDir });
    // The embedded registry, with DELETE answered as distribution answers it when deletes are off.
    const app = new Hono();
    app.all('*', (c) =>
      c.req.method === 'DELETE'
        ? c.json({ errors: [{ code: 'UNSUPPORTED', message: 'The operation is unsupported.' }] }, 405)
        : registry.app.fetch(c.req.raw),
    );
    ({ host } = await rig.serve(app));
    // The same registry (same storage) with DELETE allowed, to show the referrers API path works.
    ({ host: openHost } = await rig.serve(registry.app));
  });
  afterAll(async () => {
    await registry.close();
  });

  it('a readable error, and every signature is still there', async () => {
    const image = await pushSampleImage({ host }, 'nodelete/app', 'v1');
    const repo = { registry: host, repository: 'nodelete/app' };
    const signer = await pageSigner('ec-p256-pkcs8.pem');
    await pageSign(plain, repo, image, [signer], { legacy: true, bundle: true });
    const tree = await buildTree(plain, { image: image.ref, key: signer.spki });
    expect(tree.root.referrers.via).toBe('api');
    const before = nodeItems(tree.root).map((i) => `${i.id} ${i.verdict.state}`);
    expect(before).toHaveLength(2);

    const referrer = tree.root.referrers.items[0]!;
    const err = await removeSignatures({
      client: plain,
      repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, referrer)],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManageError);
    expect(err).toMatchObject({ code: 'MANAGE_DELETE_REFUSED' });
    expect((err as Error).message).toMatch(
      /refused to delete the referrer sha256:[0-9a-f]{64} \(405 .*Nothing was removed\./,
    );

    const all = await removeSignatures({
      client: plain,
      repo,
      subject: tree.digest,
      targets: allSignatureTargets(tree.root),
    }).catch((e: unknown) => e);
    expect(all).toMatchObject({ code: 'MANAGE_DELETE_REFUSED' });

    const after = await buildTree(plain, { image: image.ref, key: signer.spki });
    expect(nodeItems(after.root).map((i) => `${i.id} ${i.verdict.state}`)).toEqual(before);
    expect(after.root.sig.manifest).toBe(tree.root.sig.manifest);
  });

  it('with DELETE allowed and the referrers API: one bundle among two goes, cosign 3.1 still verifies the other', async () => {
    const image = await pushSampleImage({ host: openHost }, 'nodelete/api', 'v1');
    const repo = { registry: openHost, repository: 'nodelete/api' };
    const signers = [await pageSigner('ec-p256-pkcs8.pem'), await pageSigner('ec-p256-sec1.pem')];
    await pageSign(plain, repo, image, signers, { legacy: false, bundle: true });
    const tree = await buildTree(plain, { image: image.ref, key: signers[0]!.spki });
    expect(tree.root.referrers.via).toBe('api');
    expect(tree.root.referrers.items).toHaveLength(2);
    const mine = tree.root.referrers.items.find((i) => i.verdict.state === 'verified')!;
    const report = await removeSignatures({
      client: plain,
      repo,
      subject: tree.digest,
      targets: [targetOf(tree.root, mine)],
    });
    expect(report).toMatchObject({ fallbackIndex: 'unchanged', sigManifest: 'unchanged', intact: 1 });
    const refs = await plain.referrers(repo, image.digest);
    expect(refs.descriptors.map((d) => d.digest)).not.toContain(mine.manifest);
    expect(refs.descriptors).toHaveLength(1);
    const pubs = await Promise.all(
      signers.map(async (s, i) => {
        const f = join(rig.home.dir, `embedded-${i}.pub`);
        await writeFile(f, publicKeyPem(s.spki));
        return f;
      }),
    );
    const stays = await verify3(pubs[1]!, image.ref);
    expect(stays.code, stays.stderr).toBe(0);
    const gone = await verify3(pubs[0]!, image.ref);
    expect(gone.code).not.toBe(0);
  });
});

describe('a registry that serves malformed signature layers', () => {
  let dataDir: string;
  let registry: EmbeddedRegistry;
  let host: string;
  const plain = new RegistryClient({ fetch: caFetch(), scheme: () => 'http' });
  /** Entries the registry appends to every `.sig` manifest it serves. */
  let inject: unknown[] = [];
  /** Manifests served as they are for `/v2/<repo>/manifests/<tag>`, whatever is stored. */
  const crafted = new Map<string, unknown>();
  /** Every path asked for. */
  const seen: string[] = [];

  beforeAll(async () => {
    dataDir = await rig.tempDir('cosign-web-malformed-');
    registry = createEmbeddedRegistry({ dataDir });
    // The embedded registry, with its .sig manifests served with extra entries no honest registry
    // would store (distribution refuses them on push), as a hostile or broken registry could.
    const app = new Hono();
    app.all('*', async (c) => {
      seen.push(new URL(c.req.url).pathname + new URL(c.req.url).search);
      const craft = crafted.get(c.req.path);
      if (craft !== undefined) {
        const body = new TextEncoder().encode(JSON.stringify(craft));
        const mediaType = (craft as { mediaType: string }).mediaType;
        return new Response(body, {
          headers: {
            'content-type': mediaType,
            'docker-content-digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
          },
        });
      }
      const res = await registry.app.fetch(c.req.raw);
      if (c.req.method !== 'GET' || !/\/manifests\/sha256-[0-9a-f]{64}\.sig$/.test(c.req.path) || res.status !== 200)
        return res;
      const json = (await res.json()) as { layers: unknown[] };
      json.layers.push(...inject);
      const body = new TextEncoder().encode(JSON.stringify(json));
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      return new Response(body, {
        headers: { 'content-type': res.headers.get('content-type')!, 'docker-content-digest': digest },
      });
    });
    ({ host } = await rig.serve(app));
  });
  afterAll(async () => {
    await registry.close();
  });

  it('a .sig layer without a media type, or not an object, is listed as unreadable; the others are still judged', async () => {
    const image = await pushSampleImage({ host }, 'malformed/app', 'v1');
    const repo = { registry: host, repository: 'malformed/app' };
    const signer = await pageSigner('ec-p256-pkcs8.pem');
    await pageSign(plain, repo, image, [signer], { legacy: true, bundle: false });
    const odd = `sha256:${'ab'.repeat(32)}`;
    inject = [{ digest: odd, size: 3 }, 'not a descriptor'];

    const tree = await buildTree(plain, { image: image.ref, key: signer.spki });
    const items = tree.root.sig.items;
    expect(items).toHaveLength(3);
    expect(items[0]!.verdict.state).toBe('verified');
    expect(items[1]).toMatchObject({
      title: 'unreadable layer (.sig layer)',
      mediaType: '',
      removable: true,
      layer: { digest: odd, size: 3 },
      verdict: { state: 'not-checked', code: 'VERIFY_LAYER_MISMATCH' },
    });
    expect(items[1]!.verdict.reason).toMatch(/has no mediaType/);
    expect(items[1]!.explanation.title).toBe('No media type');
    expect(targetOf(tree.root, items[1]!)).toMatchObject({ kind: 'legacy', layer: { digest: odd } });
    expect(items[2]).toMatchObject({ title: 'unreadable layer (.sig layer)', removable: false, layer: null });
    expect(items[2]!.verdict.reason).toMatch(/is not a descriptor/);
  });

  it('an index with more platforms than the tree reads says so on the index', async () => {
    const manifests = Array.from({ length: 70 }, (_, i) => ({
      mediaType: MT.ociManifest,
      digest: `sha256:${createHash('sha256').update(`platform ${i}`).digest('hex')}`,
      size: 100,
      platform: { os: 'linux', architecture: `arch${i}` },
    }));
    crafted.set('/v2/malformed/wide/manifests/v1', { schemaVersion: 2, mediaType: MT.ociIndex, manifests });
    const tree = await buildTree(plain, { image: `${host}/malformed/wide:v1` });
    expect(tree.root.children).toHaveLength(64);
    expect(tree.root.errors).toContainEqual({
      code: 'VERIFY_TOO_MANY',
      message: 'The index lists 70 platform manifests; this page reads the first 64.',
    });
  });

  it('inspect never puts a digest from the registry that is not sha256:<hex> into a request path', async () => {
    const image = await pushSampleImage({ host }, 'malformed/evil', 'v1');
    const repo = { registry: host, repository: 'malformed/evil' };
    const good = await plain.getManifest(repo, image.digest);
    const sneaky = ['../../../v2/_catalog', 'sha256:x?n=1', `sha256:${'0'.repeat(64)}/../../../../v2/_catalog`];
    for (const [i, digest] of sneaky.entries()) {
      crafted.set(`/v2/malformed/evil/manifests/config${i}`, {
        ...good.json,
        config: { ...(good.json.config as object), digest },
      });
      crafted.set(`/v2/malformed/evil/manifests/index${i}`, {
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ mediaType: MT.ociManifest, digest, size: 10, platform: { os: 'linux', architecture: 'amd64' } }],
      });
    }
    seen.length = 0;
    for (const i of sneaky.keys()) {
      const r = await inspectImage(plain, { image: `${host}/malformed/evil:config${i}` });
      expect(r.config).toBeNull();
      expect(r.configError).toMatchObject({ code: 'REGISTRY_BAD_RESPONSE' });
      expect(r.configError!.message).toContain(`"${sneaky[i]}", which is not a sha256 digest`);
      await expect(inspectImage(plain, { image: `${host}/malformed/evil:index${i}` })).rejects.toMatchObject({
        code: 'REGISTRY_BAD_RESPONSE',
        message: expect.stringContaining('not a sha256 digest; it is not fetched') as string,
      });
      await expect(plain.fetchBlob(repo, sneaky[i]!)).rejects.toMatchObject({ code: 'REGISTRY_UNSUPPORTED' });
      await expect(plain.fetchManifest(repo, sneaky[i]!)).rejects.toMatchObject({ code: 'REGISTRY_BAD_RESPONSE' });
    }
    // Only the two crafted tags (and the registry's version check) were ever asked for.
    expect(seen.filter((p) => !/^\/v2\/(malformed\/evil\/manifests\/(config|index)\d)?$/.test(p))).toEqual([]);
  });
});

// Proves the test rig against the REAL tools: images pushed by skopeo to real distribution 2.8
// registries (TLS with a throwaway CA, plain HTTP with basic auth, TLS with token auth), signed and
// verified with a key and no network by cosign 2.5, cosign 3.1 and skopeo 1.18. Every assertion is
// on what the tools did: exit codes, and the signature objects found in the registry.
// Run: bash test/rig/install.sh && npx vitest run --config test/rig/vitest.config.ts
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pushSampleImage, skopeoAccess, type PushedImage, type RegistryTarget } from './images.ts';
import { loopbackGet, registriesInfo, startRegistries, type Registries, type RegistriesInfo } from './registries.ts';
import {
  cosign2SignArgs,
  cosign3LegacySignArgs,
  cosign3SignArgs,
  cosignEnv,
  cosignLogin,
  cosignVerifyArgs,
  makeCertDir,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  skopeoPolicyPull,
  skopeoEnv,
  skopeoRegistryFlags,
  toolVersions,
  type Cosign3Offline,
  type RunResult,
  type ToolHome,
} from './tools.ts';

const KEY_PASSWORD = 'rig pass';
const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const VECTORS = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'vectors');

let regs: RegistriesInfo;
let ownRegistries: Registries | undefined;
let home: ToolHome;
let scratch: string;
let offline: Cosign3Offline;
let key: string;
let pub: string;
let otherPub: string;

interface Manifest {
  mediaType?: string;
  artifactType?: string;
  config: { mediaType: string; digest: string };
  layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
  subject?: { digest: string };
  manifests?: { digest: string; artifactType?: string; platform?: { architecture: string } }[];
}

/** The three registries as push/inspect targets. */
function targets(): { name: string; target: RegistryTarget }[] {
  const list: { name: string; target: RegistryTarget }[] = [
    { name: 'tls', target: regs.tls },
    { name: 'basic', target: regs.basic },
  ];
  if (regs.token !== undefined) list.push({ name: 'token', target: regs.token });
  return list;
}

/** Reads a manifest from the registry with the real skopeo (`inspect --raw`); undefined if absent. */
async function rawManifest(target: RegistryTarget, ref: string): Promise<Manifest | undefined> {
  const access = await skopeoAccess(target, await mkdtemp(join(scratch, 'inspect-')));
  const r = await run('skopeo', ['inspect', '--raw', ...skopeoRegistryFlags(access, 'plain'), `docker://${ref}`], {
    env: skopeoEnv(home),
  });
  if (r.code !== 0) {
    if (/manifest unknown/i.test(r.stderr)) return undefined;
    throw new Error(`skopeo inspect ${ref}: ${r.stderr}`);
  }
  return JSON.parse(r.stdout) as Manifest;
}

function sigTag(img: PushedImage, digest = img.digest): string {
  return `${img.repository}:sha256-${digest.slice('sha256:'.length)}.sig`;
}

/** cosign env for a registry: its CA (TLS) and the shared DOCKER_CONFIG with logins. */
function envFor(target: RegistryTarget, password?: string): Record<string, string> {
  const o: { caFile?: string; password?: string } = {};
  if (target.caFile !== undefined) o.caFile = target.caFile;
  if (password !== undefined) o.password = password;
  return cosignEnv(home, o);
}

/** No tool may try to reach anything but the loopback registries. */
function expectNoNetwork(r: RunResult): void {
  expect(r.stderr).not.toMatch(/tuf-repo-cdn|sigstore\.dev|proxyconnect|127\.0\.0\.1:9\b/);
}

function expectOk(r: RunResult): void {
  expect(r.code, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
}

beforeAll(async () => {
  const provided = inject('cosignWebRegistries') as RegistriesInfo | undefined;
  if (provided !== undefined) regs = provided;
  else {
    // Run without the rig's global setup (e.g. from the project's root config): start our own.
    ownRegistries = await startRegistries();
    regs = registriesInfo(ownRegistries);
  }
  home = await makeToolHome('cosign-web-rig-test-');
  scratch = await mkdtemp(join(tmpdir(), 'cosign-web-rig-scratch-'));
  offline = await makeCosign3Offline(home);
  key = join(home.dir, 'rig.key');
  pub = join(home.dir, 'rig.pub');
  otherPub = join(home.dir, 'other.pub');
  await runOk('cosign2', ['generate-key-pair', '--output-key-prefix', 'rig'], {
    env: cosignEnv(home, { password: KEY_PASSWORD }),
    cwd: home.dir,
  });
  await runOk('cosign2', ['generate-key-pair', '--output-key-prefix', 'other'], {
    env: cosignEnv(home, { password: '' }),
    cwd: home.dir,
  });
  // Logins for the registries that need them, shared by cosign 2.5, cosign 3.1 (DOCKER_CONFIG).
  await cosignLogin('cosign2', home, regs.basic.host, regs.basic.username, regs.basic.password);
  if (regs.token !== undefined)
    await cosignLogin('cosign3', home, regs.token.host, regs.token.username, regs.token.password, regs.token.caFile);
});

afterAll(async () => {
  await home?.cleanup();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  await ownRegistries?.stop();
});

describe('installed tools', () => {
  it('are the expected versions', async () => {
    const v = await toolVersions();
    expect(v.cosign2).toMatch(/^2\.5\./);
    expect(v.cosign3).toMatch(/^3\.1\./);
    expect(v.skopeo).toMatch(/^1\.18\./);
    expect(v.registry).toMatch(/^2\.8\./);
  });

  it('cosign 2.5 and 3.1 generate keys that the other reads', async () => {
    const r = await run('cosign3', ['public-key', '--key', key], { env: cosignEnv(home, { password: KEY_PASSWORD }) });
    expectOk(r);
    expect(r.stdout).toBe(await readFile(pub, 'utf8'));
    const wrong = await run('cosign3', ['public-key', '--key', key], { env: cosignEnv(home, { password: 'wrong' }) });
    expect(wrong.code).not.toBe(0);
  });
});

describe('registries', () => {
  it('answer /v2/ on loopback and enforce their auth', async () => {
    const ca = await readFile(regs.tls.caFile);
    expect((await loopbackGet(`https://${regs.tls.host}/v2/`, { ca })).status).toBe(200);
    expect((await loopbackGet(`http://${regs.basic.host}/v2/`)).status).toBe(401);
    const basic = `Basic ${Buffer.from(`${regs.basic.username}:${regs.basic.password}`).toString('base64')}`;
    expect((await loopbackGet(`http://${regs.basic.host}/v2/`, { headers: { authorization: basic } })).status).toBe(
      200,
    );
    const wrong = `Basic ${Buffer.from(`${regs.basic.username}:nope`).toString('base64')}`;
    expect((await loopbackGet(`http://${regs.basic.host}/v2/`, { headers: { authorization: wrong } })).status).toBe(
      401,
    );
    if (regs.token !== undefined) {
      const t = await loopbackGet(`https://${regs.token.host}/v2/`, { ca });
      expect(t.status).toBe(401);
      expect(String(t.headers['www-authenticate'])).toContain(`Bearer realm="${regs.token.realm}"`);
      // A token for the right user opens the registry; a wrong password gets none.
      const tok = await loopbackGet(`${regs.token.realm}?service=${regs.token.service}&scope=repository:x/y:pull`, {
        ca,
        headers: { authorization: basic },
      });
      expect(tok.status).toBe(200);
      const jwt = (JSON.parse(tok.body.toString()) as { token: string }).token;
      expect(
        (await loopbackGet(`https://${regs.token.host}/v2/`, { ca, headers: { authorization: `Bearer ${jwt}` } }))
          .status,
      ).toBe(200);
      expect(
        (
          await loopbackGet(`${regs.token.realm}?service=${regs.token.service}`, {
            ca,
            headers: { authorization: wrong },
          })
        ).status,
      ).toBe(401);
    }
  });

  it('take images pushed by skopeo, single and multi-platform', async () => {
    for (const { name, target } of targets()) {
      const img = await pushSampleImage(target, `push/${name}`, 'v1');
      const m = await rawManifest(target, img.tagRef);
      expect(m?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(m?.layers).toHaveLength(1);
    }
    const idx = await pushSampleImage(regs.basic, 'push/index', 'v1', { index: true });
    const m = await rawManifest(regs.basic, idx.ref);
    expect(m?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(m?.manifests?.map((d) => d.platform?.architecture)).toEqual(['amd64', 'arm64']);
    for (const p of idx.platforms) expect(await rawManifest(regs.basic, p.ref)).toBeDefined();
  });
});

describe('cosign 2.5: sign --key / verify --key, legacy .sig, no network', () => {
  for (const name of ['tls', 'basic', 'token'] as const) {
    it(`signs and verifies on the ${name} registry`, async () => {
      const target = name === 'tls' ? regs.tls : name === 'basic' ? regs.basic : regs.token;
      expect(target, `the ${name} registry is running`).toBeDefined();
      if (target === undefined) throw new Error('unreachable');
      const img = await pushSampleImage(target, `cosign2/${name}`, 'v1');
      expect(await rawManifest(target, sigTag(img))).toBeUndefined();

      const sign = await run('cosign2', cosign2SignArgs(key, img.ref), { env: envFor(target, KEY_PASSWORD) });
      expectOk(sign);
      expectNoNetwork(sign);

      const sig = await rawManifest(target, sigTag(img));
      expect(sig?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(sig?.layers).toHaveLength(1);
      expect(sig?.layers[0]?.mediaType).toBe(SIMPLESIGNING);
      expect(sig?.layers[0]?.annotations?.['dev.cosignproject.cosign/signature']).toMatch(/^[A-Za-z0-9+/]+=*$/);

      const verify = await run('cosign2', cosignVerifyArgs(pub, img.ref), { env: envFor(target) });
      expectOk(verify);
      expectNoNetwork(verify);
      const payloads = JSON.parse(verify.stdout) as {
        critical: { image: { 'docker-manifest-digest': string }; identity: { 'docker-reference': string } };
      }[];
      expect(payloads[0]?.critical.image['docker-manifest-digest']).toBe(img.digest);
      expect(payloads[0]?.critical.identity['docker-reference']).toBe(img.repository);

      const wrongKey = await run('cosign2', cosignVerifyArgs(otherPub, img.ref), { env: envFor(target) });
      expect(wrongKey.code).not.toBe(0);
      // cosign 3.1 reads the legacy signature too.
      expectOk(await run('cosign3', cosignVerifyArgs(pub, img.ref), { env: envFor(target) }));
    });
  }

  it('needs the CA for the TLS registry (SSL_CERT_FILE is what makes it trusted)', async () => {
    const img = await pushSampleImage(regs.tls, 'cosign2/noca', 'v1');
    const r = await run('cosign2', cosignVerifyArgs(pub, img.ref), { env: cosignEnv(home) });
    expect(r.code).not.toBe(0);
    // go-containerregistry falls back to plain http for localhost after the TLS failure, so the
    // error it reports is the http one, not "certificate signed by unknown authority".
    expect(r.stderr).toMatch(/unknown authority|HTTP request to an HTTPS server/);
  });

  it('needs the login for the basic-auth registry', async () => {
    const img = await pushSampleImage(regs.basic, 'cosign2/nologin', 'v1');
    const anon = await makeToolHome('cosign-web-rig-anon-');
    try {
      const r = await run('cosign2', cosign2SignArgs(key, img.ref), {
        env: cosignEnv(anon, { password: KEY_PASSWORD }),
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/UNAUTHORIZED|authentication required/);
    } finally {
      await anon.cleanup();
    }
  });

  it('signs an index and every platform with --recursive', async () => {
    const idx = await pushSampleImage(regs.basic, 'cosign2/index', 'v1', { index: true });
    expectOk(
      await run('cosign2', cosign2SignArgs(key, idx.ref, ['--recursive']), { env: envFor(regs.basic, KEY_PASSWORD) }),
    );
    for (const d of [idx.digest, ...idx.platforms.map((p) => p.digest)]) {
      const sig = await rawManifest(regs.basic, sigTag(idx, d));
      expect(sig?.layers[0]?.mediaType).toBe(SIMPLESIGNING);
    }
    for (const p of idx.platforms)
      expectOk(await run('cosign2', cosignVerifyArgs(pub, p.ref), { env: envFor(regs.basic) }));
  });
});

describe('cosign 3.1: bundle format with an offline signing config', () => {
  for (const name of ['tls', 'basic', 'token'] as const) {
    it(`signs and verifies on the ${name} registry`, async () => {
      const target = name === 'tls' ? regs.tls : name === 'basic' ? regs.basic : regs.token;
      expect(target, `the ${name} registry is running`).toBeDefined();
      if (target === undefined) throw new Error('unreachable');
      const img = await pushSampleImage(target, `cosign3/${name}`, 'v1');
      const sign = await run('cosign3', cosign3SignArgs(key, offline, img.ref), { env: envFor(target, KEY_PASSWORD) });
      expectOk(sign);
      expectNoNetwork(sign);

      // distribution 2.8 has no referrers API: cosign 3.1 writes the referrers tag schema.
      const fallback = await rawManifest(target, `${img.repository}:sha256-${img.digest.slice('sha256:'.length)}`);
      expect(fallback?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
      expect(fallback?.manifests).toHaveLength(1);
      const referrer = fallback?.manifests?.[0];
      const bundleManifest = await rawManifest(target, `${img.repository}@${referrer?.digest ?? ''}`);
      expect(bundleManifest?.artifactType).toBe(BUNDLE);
      expect(bundleManifest?.layers[0]?.mediaType).toBe(BUNDLE);
      expect(bundleManifest?.subject?.digest).toBe(img.digest);
      // No legacy .sig object was written.
      expect(await rawManifest(target, sigTag(img))).toBeUndefined();

      const verify = await run('cosign3', cosignVerifyArgs(pub, img.ref), { env: envFor(target) });
      expectOk(verify);
      expectNoNetwork(verify);
      expect(verify.stdout).toContain(img.digest.slice('sha256:'.length));
      expect((await run('cosign3', cosignVerifyArgs(otherPub, img.ref), { env: envFor(target) })).code).not.toBe(0);
      // cosign 2.5 cannot see the bundle format.
      const old = await run('cosign2', cosignVerifyArgs(pub, img.ref), { env: envFor(target) });
      expect(old.code).not.toBe(0);
      expect(old.stderr).toMatch(/no signatures found/i);
    });
  }

  it('still writes the legacy .sig format when asked, without a log', async () => {
    const img = await pushSampleImage(regs.tls, 'cosign3/legacy', 'v1');
    const sign = await run('cosign3', cosign3LegacySignArgs(key, img.ref), { env: envFor(regs.tls, KEY_PASSWORD) });
    expectOk(sign);
    expect((await rawManifest(regs.tls, sigTag(img)))?.layers[0]?.mediaType).toBe(SIMPLESIGNING);
    expectOk(await run('cosign2', cosignVerifyArgs(pub, img.ref), { env: envFor(regs.tls) }));
  });

  it('refuses --tlog-upload=false together with a signing config', async () => {
    const img = await pushSampleImage(regs.tls, 'cosign3/refuse', 'v1');
    const r = await run(
      'cosign3',
      [...cosign3SignArgs(key, offline, img.ref).slice(0, -1), '--tlog-upload=false', img.ref],
      {
        env: envFor(regs.tls, KEY_PASSWORD),
      },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--tlog-upload=false is not supported with --signing-config');
  });
});

describe('skopeo 1.18: sigstore signing and policy verification', () => {
  it('a cert folder made again while skopeo may be reading it is never seen empty or half written', async () => {
    // Concurrent tests make the same folder for each skopeo run; a reader between a truncate and
    // the write would see no CA ("certificate signed by unknown authority").
    const dir = join(scratch, 'certs-remade');
    const ca = await readFile(regs.tls.caFile);
    await makeCertDir(regs.tls.caFile, dir);
    let remaking = true;
    const seen = new Set<number>();
    const writer = (async () => {
      for (let i = 0; i < 300; i++) await makeCertDir(regs.tls.caFile, dir);
      remaking = false;
    })();
    const readers = Array.from({ length: 4 }, async () => {
      while (remaking) seen.add((await readFile(join(dir, 'ca.crt'))).length);
    });
    await Promise.all([writer, ...readers]);
    expect([...seen]).toEqual([ca.length]);
  });

  async function signedCopy(
    target: RegistryTarget,
    img: PushedImage,
    destTag: string,
    all: boolean,
  ): Promise<RunResult> {
    const access = await skopeoAccess(target, await mkdtemp(join(scratch, 'sk-')));
    const pw = join(scratch, `pass-${destTag}`);
    await writeFile(pw, `${KEY_PASSWORD}\n`);
    return run(
      'skopeo',
      [
        'copy',
        ...(all ? ['--all'] : []),
        ...skopeoRegistryFlags(access, 'src'),
        ...skopeoRegistryFlags(access, 'dest'),
        '--sign-by-sigstore-private-key',
        key,
        '--sign-passphrase-file',
        pw,
        `docker://${img.tagRef}`,
        `docker://${img.repository}:${destTag}`,
      ],
      { env: skopeoEnv(home) },
    );
  }

  async function policyCopy(
    target: RegistryTarget,
    ref: string,
    repo: string,
    pubKey: string,
    all = false,
    identity?: Record<string, unknown>,
  ): Promise<RunResult> {
    const access = await skopeoAccess(target, await mkdtemp(join(scratch, 'pol-')));
    return skopeoPolicyPull(home, access, pubKey, ref, { all, repository: repo, ...(identity ? { identity } : {}) });
  }

  for (const name of ['tls', 'basic', 'token'] as const) {
    it(`signs on copy and verifies through policy.json on the ${name} registry`, async () => {
      const target = name === 'tls' ? regs.tls : name === 'basic' ? regs.basic : regs.token;
      expect(target, `the ${name} registry is running`).toBeDefined();
      if (target === undefined) throw new Error('unreachable');
      const img = await pushSampleImage(target, `skopeo/${name}`, 'v1');
      const repo = img.repository;
      // Unsigned: the policy rejects it.
      const unsigned = await policyCopy(target, img.tagRef, repo, pub);
      expect(unsigned.code).not.toBe(0);
      expect(unsigned.stderr).toMatch(/signature|rejected/i);

      const sign = await signedCopy(target, img, 'signed', false);
      expectOk(sign);
      expect(sign.stderr + sign.stdout).toMatch(/Signing image using a sigstore signature/);
      const sig = await rawManifest(target, sigTag(img));
      expect(sig?.layers[0]?.mediaType).toBe(SIMPLESIGNING);

      expectOk(await policyCopy(target, `${repo}:signed`, repo, pub));
      const wrongKey = await policyCopy(target, `${repo}:signed`, repo, otherPub);
      expect(wrongKey.code).not.toBe(0);
      // Cross-tool: cosign 2.5 and 3.1 verify what skopeo signed.
      expectOk(await run('cosign2', cosignVerifyArgs(pub, img.ref), { env: envFor(target) }));
      expectOk(await run('cosign3', cosignVerifyArgs(pub, img.ref), { env: envFor(target) }));
    });
  }

  it('verifies cosign 2.5 signatures; matchRepoDigestOrExact refuses their repository-only identity', async () => {
    const img = await pushSampleImage(regs.tls, 'skopeo/cosign-signed', 'v1');
    expectOk(await run('cosign2', cosign2SignArgs(key, img.ref), { env: envFor(regs.tls, KEY_PASSWORD) }));
    const repoDigest = { type: 'matchRepoDigestOrExact' };
    expectOk(await policyCopy(regs.tls, img.tagRef, img.repository, pub));
    // cosign writes "docker-reference": "HOST/REPO" (no tag). containers/image's
    // matchRepoDigestOrExact (the default) refuses a name-only identity whether the image is
    // pulled by tag OR by digest.
    const byTag = await policyCopy(regs.tls, img.tagRef, img.repository, pub, false, repoDigest);
    expect(byTag.code).not.toBe(0);
    expect(byTag.stderr).toContain(`Signature for identity \\"${img.repository}\\" is not accepted`);
    const byDigest = await policyCopy(regs.tls, img.ref, img.repository, pub, false, repoDigest);
    expect(byDigest.code).not.toBe(0);
    expect(byDigest.stderr).toContain(`Signature for identity \\"${img.repository}\\" is not accepted`);
  });

  it('matchRepoDigestOrExact accepts what skopeo signed (identity REPO:TAG) by that tag and by digest', async () => {
    const img = await pushSampleImage(regs.tls, 'skopeo/identity', 'v1');
    expectOk(await signedCopy(regs.tls, img, 'signed', false));
    const repoDigest = { type: 'matchRepoDigestOrExact' };
    expectOk(await policyCopy(regs.tls, `${img.repository}:signed`, img.repository, pub, false, repoDigest));
    expectOk(await policyCopy(regs.tls, img.ref, img.repository, pub, false, repoDigest));
    // Same digest, other tag: the signed identity names :signed, not :v1.
    expect((await policyCopy(regs.tls, img.tagRef, img.repository, pub, false, repoDigest)).code).not.toBe(0);
  });

  it('signs an index and every platform with copy --all, and verifies them all', async () => {
    const idx = await pushSampleImage(regs.basic, 'skopeo/index', 'v1', { index: true });
    expectOk(await signedCopy(regs.basic, idx, 'signed', true));
    for (const d of [idx.digest, ...idx.platforms.map((p) => p.digest)]) {
      expect((await rawManifest(regs.basic, sigTag(idx, d)))?.layers[0]?.mediaType).toBe(SIMPLESIGNING);
    }
    expectOk(await policyCopy(regs.basic, `${idx.repository}:signed`, idx.repository, pub, true));
  });

  it('signs with the independently made legacy key vector (label ENCRYPTED COSIGN PRIVATE KEY)', async () => {
    const legacyKey = join(VECTORS, 'keys', 'legacy-cosign-p256.key');
    const legacyPub = join(VECTORS, 'keys', 'legacy-cosign-p256.public-key.pub');
    const img = await pushSampleImage(regs.tls, 'skopeo/legacy-key', 'v1');
    const access = await skopeoAccess(regs.tls, await mkdtemp(join(scratch, 'lk-')));
    const pw = join(scratch, 'legacy-pass');
    await writeFile(pw, 'correct horse');
    expectOk(
      await run(
        'skopeo',
        [
          'copy',
          ...skopeoRegistryFlags(access, 'src'),
          ...skopeoRegistryFlags(access, 'dest'),
          '--sign-by-sigstore-private-key',
          legacyKey,
          '--sign-passphrase-file',
          pw,
          `docker://${img.tagRef}`,
          `docker://${img.repository}:signed`,
        ],
        { env: skopeoEnv(home) },
      ),
    );
    expectOk(await run('cosign2', cosignVerifyArgs(legacyPub, img.ref), { env: envFor(regs.tls) }));
  });
});

describe('checked-in vectors (test/vectors/index.json)', () => {
  interface Entry {
    file: string;
    kind: string;
    spkiSha256?: string;
    password?: string;
    accepts?: Record<string, { accepted: boolean }>;
  }

  it('list files that exist, with the SPKI fingerprints openssl computes', async () => {
    const index = JSON.parse(await readFile(join(VECTORS, 'index.json'), 'utf8')) as { vectors: Entry[] };
    expect(index.vectors.length).toBeGreaterThan(40);
    for (const e of index.vectors) {
      const file = join(VECTORS, e.file);
      await readFile(file);
      if (e.kind !== 'public-key') continue;
      const der = join(scratch, 'spki.der');
      await runOk('openssl', ['pkey', '-pubin', '-in', file, '-outform', 'DER', '-out', der]);
      const sum = (await runOk('sha256sum', [der])).stdout.split(' ')[0];
      expect(sum, e.file).toBe(e.spkiSha256);
    }
  });

  it('hold keys that cosign 2.5 still reads as the index says', async () => {
    const index = JSON.parse(await readFile(join(VECTORS, 'index.json'), 'utf8')) as { vectors: Entry[] };
    const keys = index.vectors.filter((e) => e.kind === 'cosign-private-key' && e.file.includes('legacy'));
    expect(keys.length).toBe(2);
    for (const e of keys) {
      const r = await run('cosign2', ['public-key', '--key', join(VECTORS, e.file)], {
        env: cosignEnv(home, { password: e.password ?? '' }),
      });
      expect(r.code === 0, `${e.file}: ${r.stderr}`).toBe(e.accepts?.['cosign2']?.accepted);
    }
  });
});

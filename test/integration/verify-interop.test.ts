/**
 * The verifier (shared/ops/verify.ts) against signatures the REAL tools made on images in a
 * real distribution 2.8 registry: cosign 2.5 `sign` (legacy) and `sign --recursive` on an index,
 * cosign 3.1 by default (bundle, referrers tag schema) and with `--new-bundle-format=false`,
 * skopeo 1.18 `copy --sign-by-sigstore-private-key` (repo:tag identity) and `copy --all`, and a
 * `cosign attest --key` attestation that must not count. Then the rejections, each with its
 * reason, where the real verifiers are asked too: tampered `.sig` manifests pushed here with the
 * client, wrong key, another repository's identity, another tag under matchExact, a bundle moved
 * to another image, unsigned platforms. The snippets the page offers are run with the real cosign
 * and skopeo. And the Ed25519 / P-384 / RSA behaviour of each tool, whose verdicts ours must match.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { fromBase64, toBase64, utf8 } from '../../shared/encoding/base64.ts';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../shared/registry/mediatypes.ts';
import { addToReferrersIndex, buildSigManifest, referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { matchIdentity, intendedReference, type IdentityRule } from '../../shared/cosign/identity.ts';
import { verifyImage, type VerificationResult, type VerifyOptions } from '../../shared/ops/verify.ts';
import { policySnippets } from '../../shared/ops/verify-snippets.ts';
import { parseReference } from '../../shared/registry/reference.ts';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import {
  cosign2SignArgs,
  cosign3LegacySignArgs,
  cosign3SignArgs,
  cosignVerifyArgs,
  run,
  runOk,
  skopeoPolicyPull,
  skopeoEnv,
  skopeoRegistryFlags,
} from '../rig/tools.ts';
import { caFetch } from './ca-fetch.ts';
import { useRig, VECTORS } from './rig-context.ts';

const PASSWORD = 'correct horse';
const rig = useRig({ prefix: 'cosign-web-verify-', offlineCosign3: true, password: PASSWORD });
const { regs, client, env } = rig;
const HOST = regs.tls.host;

/** Keys made by the real tools (test/vectors/keys), all with the password "correct horse". */
const KEYS = {
  a: 'cosign2-pw',
  b: 'cosign3-pw',
  c: 'cosign3-import-ec-p256-pkcs8',
  ed25519: 'cosign3-import-ed25519-pkcs8',
  p384: 'cosign3-import-ec-p384-pkcs8',
  p521: 'cosign3-import-ec-p521-pkcs8',
  rsa: 'cosign3-import-rsa-2048-pkcs8',
} as const;
type KeyName = keyof typeof KEYS;
const keyFile = (k: KeyName): string => join(VECTORS, `${KEYS[k]}.key`);
const pubFile = (k: KeyName): string => join(VECTORS, `${KEYS[k]}.pub`);
const spkiOf = (k: KeyName): Uint8Array => parsePublicKey(readFileSync(pubFile(k), 'utf8')).spki;

let passFile: string;
beforeAll(async () => {
  passFile = join(rig.home.dir, 'pass');
  writeFileSync(passFile, `${PASSWORD}\n`);
});

const push = (repo: string, opts: { index?: boolean; tag?: string } = {}): Promise<PushedImage> =>
  pushSampleImage(rig.tls, repo, opts.tag ?? 'v1', { index: opts.index ?? false });

async function skopeo(args: string[]): Promise<{ code: number; stderr: string }> {
  const access = await skopeoAccess(rig.tls, rig.home.dir);
  const flags = [...skopeoRegistryFlags(access, 'src'), ...skopeoRegistryFlags(access, 'dest')];
  const [cmd, ...rest] = args;
  return run('skopeo', [cmd!, ...flags, ...rest], { env: skopeoEnv(rig.home) });
}

const sign = {
  cosign2: (k: KeyName, ref: string, extra: string[] = []) =>
    runOk('cosign2', cosign2SignArgs(keyFile(k), ref, extra), { env: env() }),
  cosign3: (k: KeyName, ref: string, extra: string[] = []) =>
    run('cosign3', cosign3SignArgs(keyFile(k), rig.offline, ref, extra), { env: env() }),
  cosign3Legacy: (k: KeyName, ref: string, extra: string[] = []) =>
    runOk('cosign3', cosign3LegacySignArgs(keyFile(k), ref, extra), { env: env() }),
  skopeo: async (k: KeyName, tagRef: string, all = false) => {
    const r = await skopeo([
      'copy',
      ...(all ? ['--all'] : []),
      '--sign-by-sigstore-private-key',
      keyFile(k),
      '--sign-passphrase-file',
      passFile,
      `docker://${tagRef}`,
      `docker://${tagRef}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
  },
};

/** Does skopeo's sigstoreSigned policy accept `ref`? (pulls it to an oci: layout) */
async function skopeoAccepts(
  k: KeyName,
  ref: string,
  repo: string,
  signedIdentity: Record<string, unknown>,
  all = false,
): Promise<boolean> {
  const access = await skopeoAccess(rig.tls, rig.home.dir);
  const r = await skopeoPolicyPull(rig.home, access, pubFile(k), ref, {
    identity: signedIdentity,
    all,
    repository: `${HOST}/${repo}`,
  });
  return r.code === 0;
}

async function cosignAccepts(tool: 'cosign2' | 'cosign3', k: KeyName, ref: string): Promise<boolean> {
  return (await run(tool, cosignVerifyArgs(pubFile(k), ref), { env: env() })).code === 0;
}

function verify(
  k: KeyName,
  image: string,
  opts: Omit<VerifyOptions, 'spki' | 'image'> = {},
): Promise<VerificationResult> {
  return verifyImage(client, { image, spki: spkiOf(k), ...opts });
}

const repoOf = (img: PushedImage): RepoRef => ({ registry: HOST, repository: img.repository.slice(HOST.length + 1) });
const verifiedCount = (r: VerificationResult, m = 0): number =>
  r.manifests[m]!.signatures.filter((s) => s.verified).length;

describe.concurrent('signatures made by the real tools verify', () => {
  it('cosign 2.5 sign (legacy): verified; its cosign command and containers policy work with the real tools', async () => {
    const img = await push('verify/cosign2');
    await sign.cosign2('a', img.ref);
    const r = await verify('a', img.tagRef);
    expect(r.verified, r.summary).toBe(true);
    expect(r.manifests[0]!.signatures).toMatchObject([{ format: 'legacy', kind: 'signature', verified: true }]);
    expect(r.manifests[0]!.signatures[0]!.claims.dockerReference).toBe(img.repository);

    const snippets = policySnippets(r);
    for (const tool of ['cosign2', 'cosign3'] as const) {
      for (const argv of snippets.cosign.argv) {
        const args = argv.slice(1).map((a) => (a === 'cosign.pub' ? pubFile('a') : a));
        const res = await run(tool, args, { env: env() });
        expect(res.code, `${tool}: ${res.stderr}`).toBe(0);
      }
    }
    const policy = join(rig.home.dir, 'generated-policy.json');
    writeFileSync(policy, snippets.containersPolicy.text);
    const access = await skopeoAccess(rig.tls, rig.home.dir);
    const pulled = await run(
      'skopeo',
      [
        '--policy',
        policy,
        'copy',
        '--remove-signatures',
        ...skopeoRegistryFlags(access, 'src'),
        `docker://${img.tagRef}`,
        `oci:${join(rig.home.dir, 'generated')}:x`,
      ],
      { env: skopeoEnv(rig.home) },
    );
    expect(pulled.code, pulled.stderr).toBe(0);
  });

  it('cosign 3.1 sign (bundle, referrers tag schema on distribution 2.8): verified; its command works', async () => {
    const img = await push('verify/cosign3');
    const s = await sign.cosign3('b', img.ref, ['-a', 'team=blue']);
    expect(s.code, s.stderr).toBe(0);
    const r = await verify('b', img.ref, { annotations: { team: 'blue' } });
    expect(r.verified, r.summary).toBe(true);
    expect(r.manifests[0]!.lookups).toMatchObject({ legacy: 'absent', referrers: 'tag-schema' });
    expect(r.manifests[0]!.signatures).toMatchObject([{ format: 'bundle', kind: 'signature', verified: true }]);
    const snippets = policySnippets(r);
    expect(snippets.cosign.notes.join(' ')).toContain('cosign 3.x');
    const args = snippets.cosign.argv[0]!.slice(1).map((a) => (a === 'cosign.pub' ? pubFile('b') : a));
    const res = await run('cosign3', args, { env: env() });
    expect(res.code, res.stderr).toBe(0);
    expect((await verify('b', img.ref, { annotations: { team: 'red' } })).error?.code).toBe(
      'VERIFY_ANNOTATION_MISMATCH',
    );
  });

  it('cosign 3.1 --new-bundle-format=false (legacy): verified', async () => {
    const img = await push('verify/cosign3-legacy');
    await sign.cosign3Legacy('b', img.ref);
    const r = await verify('b', img.ref);
    expect(r.verified, r.summary).toBe(true);
    expect(r.manifests[0]!.signatures).toMatchObject([{ format: 'legacy', verified: true }]);
  });

  it('skopeo copy --sign-by-sigstore-private-key (legacy, repo:tag): verified under matchExact by tag', async () => {
    const img = await push('verify/skopeo');
    await sign.skopeo('c', img.tagRef);
    const r = await verify('c', img.tagRef, { identity: { type: 'matchExact' } });
    expect(r.verified, r.summary).toBe(true);
    const s = r.manifests[0]!.signatures[0]!;
    expect(s.claims.dockerReference).toBe(img.tagRef);
    expect(s.claims.creator).toMatch(/containers\/image/);
    expect(s.checks.find((c) => c.id === 'identity')!.outcome).toBe('pass');
  });

  it('skopeo copy --all and cosign 2.5 sign --recursive on an index: every platform verified', async () => {
    const a = await push('verify/skopeo-all', { index: true });
    await sign.skopeo('c', a.tagRef, true);
    const ra = await verify('c', a.tagRef, {
      requireEveryPlatform: true,
      identity: { type: 'matchRepoDigestOrExact' },
    });
    expect(ra.verified, ra.summary).toBe(true);
    expect(ra.manifests.map((m) => [m.role, m.verified])).toEqual([
      ['index', true],
      ['platform', true],
      ['platform', true],
    ]);
    expect(await skopeoAccepts('c', a.tagRef, 'verify/skopeo-all', { type: 'matchRepoDigestOrExact' }, true)).toBe(
      true,
    );

    const b = await push('verify/cosign2-recursive', { index: true });
    await sign.cosign2('a', b.ref, ['--recursive']);
    const rb = await verify('a', b.ref, { requireEveryPlatform: true });
    expect(rb.verified, rb.summary).toBe(true);
    expect(rb.manifests.every((m) => m.verified)).toBe(true);
  });

  it('several tools in one .sig manifest: each signature verifies with its own key', async () => {
    const img = await push('verify/mixed');
    await sign.cosign2('a', img.ref);
    await sign.cosign3Legacy('b', img.ref);
    await sign.skopeo('c', img.tagRef);
    const sig = await client.getManifest(repoOf(img), sigTag(img.digest));
    expect((sig.json.layers as unknown[]).length).toBe(3);
    for (const k of ['a', 'b', 'c'] as const) {
      const r = await verify(k, img.ref);
      expect(r.verified, `${k}: ${r.summary}`).toBe(true);
      expect(verifiedCount(r), k).toBe(1);
      expect(r.manifests[0]!.signatures.filter((s) => s.error?.code === 'VERIFY_BAD_SIGNATURE')).toHaveLength(2);
    }
  });
});

describe.concurrent('rejected, with the reason the real tools agree with', () => {
  it('an unsigned image; an image with only a cosign attest --key attestation', async () => {
    const img = await push('verify/unsigned');
    const r = await verify('a', img.ref);
    expect(r.error?.code).toBe('VERIFY_NO_SIGNATURES');
    writeFileSync(join(rig.home.dir, 'predicate.json'), '{"builder":"test"}');
    const att = await run(
      'cosign3',
      [
        'attest',
        '--key',
        keyFile('a'),
        '--type',
        'slsaprovenance1',
        '--predicate',
        join(rig.home.dir, 'predicate.json'),
        '--signing-config',
        rig.offline.signingConfig,
        '--trusted-root',
        rig.offline.trustedRoot,
        '--yes',
        img.ref,
      ],
      { env: env() },
    );
    expect(att.code, att.stderr).toBe(0);
    const ra = await verify('a', img.ref);
    expect(ra.verified).toBe(false);
    expect(ra.error?.code).toBe('VERIFY_NO_SIGNATURES');
    const s = ra.manifests[0]!.signatures;
    expect(s).toMatchObject([{ format: 'bundle', kind: 'attestation', verified: false }]);
    expect(s[0]!.claims.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(s[0]!.checks.find((c) => c.id === 'signature')!.outcome).toBe('pass');
    // Seen here: cosign 3.1 `verify --key` DOES accept this image, printing the attestation as a
    // "signature" of type https://slsa.dev/provenance/v1; cosign 2.5 finds no signatures. The page
    // counts only statements with cosign's sign predicate, as the bundle spec defines a signature.
    expect(await cosignAccepts('cosign3', 'a', img.ref)).toBe(true);
    expect(await cosignAccepts('cosign2', 'a', img.ref)).toBe(false);
  });

  it('tampered .sig manifests pushed with the client: a digit of the digest, one extra space, one flipped bit', async () => {
    const img = await push('verify/tampered');
    await sign.cosign2('a', img.ref);
    const repo = repoOf(img);
    const sig = await client.getManifest(repo, sigTag(img.digest));
    const layer = (sig.json.layers as Descriptor[])[0]!;
    const payload = new TextDecoder().decode(await client.getBlob(repo, layer.digest, layer.size));
    const signature = layer.annotations!['dev.cosignproject.cosign/signature']!;
    const hex = img.digest.slice('sha256:'.length);
    const flipped = fromBase64(signature)!;
    flipped[flipped.length - 3]! ^= 0x10;
    const cases: [string, string, string][] = [
      ['digit', payload.replace(hex, `${hex[0] === 'a' ? 'b' : 'a'}${hex.slice(1)}`), signature],
      ['space', payload.replace('{"critical":', '{"critical": '), signature],
      ['bit', payload, toBase64(flipped)],
    ];
    for (const [name, text, sigB64] of cases) {
      const bytes = utf8(text);
      const blob = await client.pushBlob(repo, bytes, { mediaType: MT.cosignSimpleSigning });
      const tampered: Descriptor = {
        ...layer,
        digest: blob.digest,
        size: blob.size,
        annotations: { ...layer.annotations, 'dev.cosignproject.cosign/signature': sigB64 },
      };
      const built = buildSigManifest([tampered]);
      await client.pushBlob(repo, built.config, { mediaType: MT.ociConfig });
      await client.putManifest(repo, sigTag(img.digest), built.manifest, MT.ociManifest);
      const r = await verify('a', img.ref);
      expect(r.verified, name).toBe(false);
      expect(['VERIFY_BAD_SIGNATURE', 'VERIFY_SIGNATURE_MALFORMED'], `${name}: ${r.summary}`).toContain(r.error?.code);
      if (name !== 'bit') expect(r.error?.code).toBe('VERIFY_BAD_SIGNATURE');
      expect(await cosignAccepts('cosign2', 'a', img.ref), `cosign2 on ${name}`).toBe(false);
      expect(
        await skopeoAccepts('a', img.ref, 'verify/tampered', { type: 'matchRepository' }),
        `skopeo on ${name}`,
      ).toBe(false);
    }
  });

  it('the wrong key: legacy and bundle', async () => {
    const img = await push('verify/wrong-key');
    await sign.cosign2('a', img.ref);
    let r = await verify('b', img.ref);
    expect(r.error?.code).toBe('VERIFY_BAD_SIGNATURE');
    expect(await cosignAccepts('cosign2', 'b', img.ref)).toBe(false);
    r = await verify('b', img.ref, { knownKeys: [{ name: 'Release key A', spki: spkiOf('a') }] });
    expect(r.error?.code).toBe('VERIFY_WRONG_KEY');
    expect(r.error?.message).toContain('Release key A');

    const bundled = await push('verify/wrong-key-bundle');
    expect((await sign.cosign3('a', bundled.ref)).code).toBe(0);
    r = await verify('b', bundled.ref);
    expect(r.error?.code).toBe('VERIFY_WRONG_KEY');
    expect(await cosignAccepts('cosign3', 'b', bundled.ref)).toBe(false);
  });

  it("another repository's identity (signature copied along by skopeo); another tag under matchExact", async () => {
    const img = await push('verify/origin');
    await sign.cosign2('a', img.ref);
    const copy = `${HOST}/verify/copied:v1`;
    const c = await skopeo(['copy', `docker://${img.tagRef}`, `docker://${copy}`]);
    expect(c.code, c.stderr).toBe(0);
    const r = await verify('a', copy, { identity: { type: 'matchRepository' } });
    expect(r.error?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    expect(r.error?.message).toContain(img.repository);
    expect(await skopeoAccepts('a', copy, 'verify/copied', { type: 'matchRepository' })).toBe(false);
    // cosign does not look at the identity: it accepts the copy, and so does the page under cosign's rule.
    expect((await verify('a', copy)).verified).toBe(true);
    expect(await cosignAccepts('cosign2', 'a', copy)).toBe(true);

    const tagged = await push('verify/tags');
    await sign.skopeo('c', tagged.tagRef);
    const v2 = `${HOST}/verify/tags:v2`;
    expect((await skopeo(['copy', `docker://${tagged.tagRef}`, `docker://${v2}`])).code).toBe(0);
    const rt = await verify('c', v2, { identity: { type: 'matchExact' } });
    expect(rt.error?.code).toBe('VERIFY_IDENTITY_MISMATCH');
    expect(await skopeoAccepts('c', v2, 'verify/tags', { type: 'matchExact' })).toBe(false);
    expect((await verify('c', tagged.tagRef, { identity: { type: 'matchExact' } })).verified).toBe(true);
  });

  it("a bundle moved onto another image: its statement names the first image's digest", async () => {
    const signed = await push('verify/moved');
    expect((await sign.cosign3('a', signed.ref)).code).toBe(0);
    const target = await push('verify/moved', { tag: 'v2' });
    const repo = repoOf(signed);
    const refs = await client.referrers(repo, signed.digest);
    const original = await client.getManifest(repo, refs.descriptors[0]!.digest);
    const moved = {
      ...original.json,
      subject: {
        mediaType: target.mediaType,
        digest: target.digest,
        size: (await client.resolve(repo, target.digest)).size,
      },
    };
    const bytes = utf8(JSON.stringify(moved));
    const digest = await client.putManifest(
      repo,
      (await import('../../shared/crypto/digest.ts')).sha256Digest(bytes),
      bytes,
      MT.ociManifest,
    );
    const { index } = addToReferrersIndex([], {
      mediaType: MT.ociManifest,
      digest,
      size: bytes.length,
      artifactType: MT.ociEmpty,
    });
    await client.putManifest(repo, referrersTag(target.digest), index, MT.ociIndex);
    const r = await verify('a', target.ref);
    expect(r.error?.code).toBe('VERIFY_DIGEST_MISMATCH');
    expect(r.error?.message).toContain(signed.digest);
    expect(await cosignAccepts('cosign3', 'a', target.ref)).toBe(false);
  });

  it('an index whose platform manifests are unsigned, under the per-platform rule (as skopeo copy --all)', async () => {
    const img = await push('verify/index-only', { index: true });
    await sign.cosign2('a', img.ref);
    expect((await verify('a', img.tagRef)).verified).toBe(true);
    const r = await verify('a', img.tagRef, { requireEveryPlatform: true });
    expect(r.error?.code).toBe('VERIFY_PLATFORM_UNSIGNED');
    expect(r.manifests.slice(1).map((m) => m.error?.code)).toEqual(['VERIFY_NO_SIGNATURES', 'VERIFY_NO_SIGNATURES']);
    expect(await skopeoAccepts('a', img.tagRef, 'verify/index-only', { type: 'matchRepository' }, true)).toBe(false);
  });
});

describe.concurrent('key algorithms: our verdict is the real verifiers’ verdict', () => {
  // Found with these tools: cosign 2.5 and skopeo sign pure Ed25519 and ECDSA over SHA-256 on
  // every curve; cosign 3.1 signs P-384 over SHA-384, P-521 over SHA-512 (both formats) and
  // Ed25519 with Ed25519ph (legacy), which cosign 2.5, cosign 3.1 and skopeo all refuse; cosign 3.1
  // cannot sign a bundle with an Ed25519 key at all. RSA: PKCS#1 v1.5 over SHA-256 everywhere.
  const cases: [KeyName, 'cosign2' | 'cosign3-legacy' | 'cosign3' | 'skopeo', boolean][] = [
    ['ed25519', 'cosign2', true],
    ['ed25519', 'cosign3-legacy', false],
    ['ed25519', 'skopeo', true],
    ['p384', 'cosign2', true],
    ['p384', 'cosign3-legacy', false],
    ['p384', 'cosign3', false],
    ['p384', 'skopeo', true],
    ['p521', 'cosign3', false],
    ['rsa', 'cosign2', true],
    ['rsa', 'cosign3', true],
    ['rsa', 'skopeo', true],
  ];
  it.each(cases)('%s signed by %s: verified = %s', async (k, tool, expected) => {
    const img = await push(`verify/alg-${k}-${tool}`);
    if (tool === 'cosign2') await sign.cosign2(k, img.ref);
    else if (tool === 'cosign3-legacy') await sign.cosign3Legacy(k, img.ref);
    else if (tool === 'skopeo') await sign.skopeo(k, img.tagRef);
    else expect((await sign.cosign3(k, img.ref)).code).toBe(0);
    const r = await verify(k, img.ref);
    expect(r.verified, r.summary).toBe(expected);
    if (!expected) expect(r.error?.code).toBe('VERIFY_ALGORITHM_REFUSED');
    const real =
      tool === 'cosign3'
        ? [await cosignAccepts('cosign3', k, img.ref)]
        : [
            await cosignAccepts('cosign2', k, img.ref),
            await cosignAccepts('cosign3', k, img.ref),
            await skopeoAccepts(k, img.ref, `verify/alg-${k}-${tool}`, { type: 'matchRepository' }),
          ];
    expect(real, `real verifiers on ${k} by ${tool}`).toEqual(real.map(() => expected));
  });

  it('cosign 3.1 refuses to sign a bundle with an Ed25519 key (its own check fails)', async () => {
    const img = await push('verify/alg-ed25519-bundle');
    const s = await sign.cosign3('ed25519', img.ref);
    expect(s.code).not.toBe(0);
    expect(s.stderr).toContain('failed to verify signature');
  });
});

describe('identity rules: ours decide as skopeo 1.18 does', () => {
  it('cosign and skopeo identities, pulled by tag and by digest, under each rule', async () => {
    const img = await push('verify/rules');
    await sign.cosign2('a', img.ref); // identity HOST/verify/rules
    await sign.skopeo('a', img.tagRef); // identity HOST/verify/rules:v1
    const sigs = (await verify('a', img.ref)).manifests[0]!.signatures;
    const identities = sigs.map((s) => s.claims.dockerReference!);
    expect(identities.sort()).toEqual([img.repository, img.tagRef]);
    const rules: IdentityRule[] = [
      { type: 'matchRepoDigestOrExact' },
      { type: 'matchExact' },
      { type: 'matchRepository' },
      { type: 'exactReference', dockerReference: img.tagRef },
      { type: 'exactRepository', dockerRepository: `${HOST}/verify/other` },
      { type: 'remapIdentity', prefix: `${HOST}/verify`, signedPrefix: `${HOST}/verify` },
    ];
    const checks = rules.flatMap((rule) => [img.ref, img.tagRef].map((ref) => ({ rule, ref })));
    await Promise.all(
      checks.map(async ({ rule, ref }) => {
        const ours = identities.some((id) => matchIdentity(rule, intendedReference(parseReference(ref)), id).match);
        const theirs = await skopeoAccepts('a', ref, 'verify/rules', { ...rule });
        expect(ours, `${rule.type} on ${ref}`).toBe(theirs);
        const r = await verify('a', ref, { identity: rule });
        expect(r.verified, `${rule.type} on ${ref}: ${r.summary}`).toBe(theirs);
      }),
    );
  });
});

describe('a private registry', () => {
  it('verifies through token auth with credentials, and says so when they are missing', async () => {
    const t = regs.token!;
    const img = await pushSampleImage(
      { host: t.host, caFile: t.caFile, username: t.username, password: t.password },
      'verify/private',
      'v1',
    );
    const e = { ...env(), SSL_CERT_FILE: t.caFile };
    await runOk('cosign2', ['login', t.host, '-u', t.username, '--password-stdin'], { env: e, input: t.password });
    await runOk('cosign2', cosign2SignArgs(keyFile('a'), img.ref), { env: e });
    const authed = new RegistryClient({
      fetch: caFetch(t.caFile),
      credentials: () => ({ username: t.username, password: t.password }),
    });
    const r = await verifyImage(authed, { image: img.ref, spki: spkiOf('a') });
    expect(r.verified, r.summary).toBe(true);
    const anonymous = await verifyImage(new RegistryClient({ fetch: caFetch(t.caFile) }), {
      image: img.ref,
      spki: spkiOf('a'),
    });
    expect(anonymous.error?.code).toBe('REGISTRY_UNAUTHORIZED');
  });
});

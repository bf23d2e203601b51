/**
 * Signatures written by shared/ops/sign.ts, checked by the real verifiers: cosign 2.5
 * (legacy `.sig`), cosign 3.1 (bundle referrer, and legacy alone), skopeo 1.18 with a
 * sigstoreSigned policy (legacy, repo:tag identity, `copy --all` on an index). Every key kind the
 * page signs with. The page-level flow is covered by the e2e tests; here the matrix is wide.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlainPrivateKeyPem, publicKeyPem } from '../../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { algorithmName } from '../../shared/crypto/pkcs.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import { sigTag } from '../../shared/cosign/manifests.ts';
import { pushSampleImage } from '../rig/images.ts';
import { cosignVerifyArgs, run, skopeoPolicyPull } from '../rig/tools.ts';
import { skopeoAccess } from '../rig/images.ts';
import { useRig, VECTORS } from './rig-context.ts';

const rig = useRig({ offlineCosign3: true });
const { regs, client, env } = rig;

async function signerFrom(file: string): Promise<{ signer: Signer; pub: string }> {
  const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, file), 'utf8'));
  const key = await importPrivateKey(info);
  const pub = join(rig.home.dir, `${file}.pub`);
  writeFileSync(pub, publicKeyPem(info.spki));
  return {
    signer: { algorithm: info.algorithm, spki: info.spki, sign: (d) => signWithCryptoKey(key, info.algorithm, d) },
    pub,
  };
}

async function skopeoPull(pub: string, repo: string, tag: string, identity: Record<string, unknown>, all = false) {
  const access = await skopeoAccess(rig.tls, rig.home.dir);
  return skopeoPolicyPull(rig.home, access, pub, `${regs.tls.host}/${repo}:${tag}`, { identity, all });
}

describe.each(['ec-p256-pkcs8.pem', 'ec-p384-sec1.pem', 'rsa-2048-pkcs1.pem', 'ed25519-pkcs8.pem'])(
  'key %s',
  (file) => {
    it('both formats on a single image: cosign 2.5, cosign 3.1 and skopeo verify', async () => {
      const { signer, pub } = await signerFrom(file);
      const repo = `sign/${file.replace(/\W/g, '-')}`;
      const image = await pushSampleImage(rig.tls, repo, 'v1');
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      const result = await signImage({
        client,
        signer,
        plan,
        dockerReference: `${regs.tls.host}/${repo}:v1`,
        annotations: { signedBy: 'cosign-web' },
        formats: { legacy: true, bundle: true },
      });
      expect(result.digest).toBe(image.digest);
      expect(result.targets[0]!.bundle!.via).toBe('tag-schema');
      const name = algorithmName(signer.algorithm);

      const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref, ['-a', 'signedBy=cosign-web']), { env: env() });
      expect(v2.code, `cosign 2.5 verify (${name}): ${v2.stderr}`).toBe(0);
      const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', rig.offline.trustedRoot]), {
        env: env(),
      });
      expect(v3.code, `cosign 3.1 verify (${name}): ${v3.stderr}`).toBe(0);
      const pulled = await skopeoPull(pub, repo, 'v1', { type: 'matchRepoDigestOrExact' });
      expect(pulled.code, `skopeo (${name}): ${pulled.stderr}`).toBe(0);
    });

    it('bundle alone: cosign 3.1 verifies it, cosign 2.5 (which cannot see bundles) does not', async () => {
      const { signer, pub } = await signerFrom(file);
      const repo = `sign/bundle-${file.replace(/\W/g, '-')}`;
      const image = await pushSampleImage(rig.tls, repo, 'v1');
      const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
      await signImage({
        client,
        signer,
        plan,
        dockerReference: `${regs.tls.host}/${repo}`,
        formats: { legacy: false, bundle: true },
      });
      const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', rig.offline.trustedRoot]), {
        env: env(),
      });
      expect(v3.code, `cosign 3.1 verify (${algorithmName(signer.algorithm)}): ${v3.stderr}`).toBe(0);
      const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env: env() });
      expect(v2.code).not.toBe(0);
      expect(v2.stderr).toMatch(/no signatures found/i);
    });
  },
);

it('legacy only: cosign 3.1 reads it too; signing twice keeps both signatures', async () => {
  const { signer, pub } = await signerFrom('ec-p256-sec1.pem');
  const repo = 'sign/legacy-only';
  const image = await pushSampleImage(rig.tls, repo, 'v1');
  const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
  const opts = {
    client,
    signer,
    plan,
    dockerReference: `${regs.tls.host}/${repo}`,
    formats: { legacy: true, bundle: false },
  };
  await signImage(opts);
  await signImage(opts);
  const sig = await client.getManifest({ registry: regs.tls.host, repository: repo }, sigTag(image.digest));
  // ECDSA signatures are randomised, so the second signing is a second layer; an identical layer
  // (same payload and signature bytes) is never added twice.
  expect((sig.json.layers as unknown[]).length).toBe(2);
  const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', rig.offline.trustedRoot]), {
    env: env(),
  });
  expect(v3.code, v3.stderr).toBe(0);
  // The repository-only identity is what cosign writes; skopeo's default rule refuses it by tag.
  const byTag = await skopeoPull(pub, repo, 'v1', { type: 'matchRepoDigestOrExact' });
  expect(byTag.code).not.toBe(0);
  expect(byTag.stderr).toMatch(/not accepted/);
  const byRepo = await skopeoPull(pub, repo, 'v1', { type: 'matchRepository' });
  expect(byRepo.code, byRepo.stderr).toBe(0);
});

it('an index: the index and every platform signed; skopeo copy --all accepts it', async () => {
  const { signer, pub } = await signerFrom('ec-p256-pkcs8.pem');
  const repo = 'sign/index';
  const image = await pushSampleImage(rig.tls, repo, 'v1', { index: true });
  const plan = await planSigning(client, { registry: regs.tls.host, repository: repo }, 'v1');
  expect(plan.root.mediaType).toBe(MT.ociIndex);
  expect(plan.targets.map((t) => t.platform?.architecture ?? 'index')).toEqual(['index', 'amd64', 'arm64']);
  const steps: number[] = [];
  await signImage({
    client,
    signer,
    plan,
    dockerReference: `${regs.tls.host}/${repo}:v1`,
    formats: { legacy: true, bundle: true },
    onProgress: (done) => steps.push(done),
  });
  expect(steps).toEqual([0, 1, 2, 3]);
  const all = await skopeoPull(pub, repo, 'v1', { type: 'matchRepoDigestOrExact' }, true);
  expect(all.code, all.stderr).toBe(0);
  for (const p of image.platforms) {
    const v = await run('cosign2', cosignVerifyArgs(pub, p.ref), { env: env() });
    expect(v.code, `${p.platform.architecture}: ${v.stderr}`).toBe(0);
  }
});

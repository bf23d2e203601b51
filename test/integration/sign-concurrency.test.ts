/**
 * Concurrent signers on one image: 20 browsers (20 clients, 20 different keys) sign at once
 * against the real registry, with no lock shared between them (as with separate relays), and
 * again all through the server's tag lock (server/locks.ts, taken by the page's relay-lock.ts),
 * where the writer trusts its read-back under the lock and skips the settle wait. Half of the
 * signers first ask "signed before?" as the Sign page does, and so update the referrers fallback
 * index while their referrer is still being pushed; the others after it. Either way all
 * 20 signatures must be in the `.sig` manifest and all 20 referrers in the referrers tag-schema
 * index; cosign 2.5 and 3.1 verify samples of them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { publicKeyPem } from '../../shared/crypto/keys.ts';
import { importPublicKey, verifyWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { fromBase64 } from '../../shared/encoding/base64.ts';
import { RegistryClient } from '../../shared/registry/client.ts';
import type { Descriptor } from '../../shared/registry/mediatypes.ts';
import { planSigning, signImage, type TagLock } from '../../shared/ops/sign.ts';
import { signedBefore } from '../../shared/ops/signed-before.ts';
import { relayLock } from '../../web/src/app/relay-lock.ts';
import { serveLocks } from '../unit/server/lock-server.ts';
import { SIGNATURE_ANNOTATION, referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { pushSampleImage } from '../rig/images.ts';
import { cosignEnv, cosignVerifyArgs, makeCosign3Offline, makeToolHome, run, type ToolHome } from '../rig/tools.ts';
import { caFetch } from './ca-fetch.ts';
import { makeSigners } from './relay-signers.ts';

const regs = inject('cosignWebRegistries');
const SIGNERS = 20;
let home: ToolHome;
beforeAll(async () => {
  home = await makeToolHome();
});
afterAll(() => home.cleanup());

/**
 * Pushes an image to `repoName`, has every signer sign it at once (through `lock` when given),
 * and checks that all 20 signatures are there in both formats and that cosign 2.5 and 3.1 verify
 * the first and the last.
 */
async function signAtOnce(repoName: string, lock?: TagLock): Promise<void> {
  const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, repoName, 'v1');
  const repo = { registry: regs.tls.host, repository: repoName };
  const signers = await makeSigners(SIGNERS);
  const plan = await planSigning(new RegistryClient({ fetch: caFetch(regs.tls.caFile) }), repo, 'v1');
  const results = await Promise.allSettled(
    signers.map(async (signer, i) => {
      const client = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
      // Half of them first ask "signed before?" as the Sign page does: their client learns that the
      // registry lacks the referrers API, and they lock and read the fallback index while their
      // referrer is pushed; the other half find out from the push.
      if (i % 2 === 0) {
        await signedBefore(client, image.ref, signer.spki, { top: plan.manifest! });
        expect(client.lacksReferrersApi(regs.tls.host)).toBe(true);
      }
      return signImage({
        client,
        signer,
        plan,
        dockerReference: `${regs.tls.host}/${repoName}:v1`,
        formats: { legacy: true, bundle: true },
        ...(lock ? { lock } : {}),
      });
    }),
  );
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

  const client = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
  const sig = await client.getManifest(repo, sigTag(image.digest));
  const layers = sig.json.layers as Descriptor[];
  expect(layers.length).toBe(SIGNERS);
  // Every signer's signature is there: each layer verifies under exactly one of the keys.
  const keys = await Promise.all(signers.map((s) => importPublicKey(s.spki)));
  const matched = new Set<number>();
  for (const layer of layers) {
    const payload = await client.getBlob(repo, layer.digest, layer.size);
    const signature = fromBase64(layer.annotations![SIGNATURE_ANNOTATION]!)!;
    for (const [i, k] of keys.entries())
      if (await verifyWithCryptoKey(k.key, k.algorithm, payload, signature)) matched.add(i);
  }
  expect(matched.size).toBe(SIGNERS);
  const index = await client.getManifest(repo, referrersTag(image.digest));
  const referrers = index.json.manifests as Descriptor[];
  expect(new Set(referrers.map((d) => d.digest)).size).toBe(SIGNERS);
  expect(new Set(results.map((r) => (r.status === 'fulfilled' ? r.value.targets[0]!.bundle!.referrer : ''))).size).toBe(
    SIGNERS,
  );

  // The real tools agree, for the first and the last signer.
  const offline = await makeCosign3Offline(home);
  for (const i of [0, SIGNERS - 1]) {
    const pub = join(home.dir, `k${i}.pub`);
    writeFileSync(pub, publicKeyPem(signers[i]!.spki));
    const env = cosignEnv(home, { caFile: regs.tls.caFile });
    const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env });
    expect(v2.code, v2.stderr).toBe(0);
    const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', offline.trustedRoot]), { env });
    expect(v3.code, v3.stderr).toBe(0);
  }
}

it(`${SIGNERS} concurrent signers with ${SIGNERS} keys and no lock: ${SIGNERS} signatures in both formats`, async () => {
  await signAtOnce('concurrent/image');
});

it(`${SIGNERS} concurrent signers through the server's tag lock (no settle wait): ${SIGNERS} signatures in both formats`, async () => {
  // The page's own lock client against the server's /locks, as a tab of `npm start` takes it.
  const server = await serveLocks({
    relay: { allowedRegistries: [regs.tls.host], privateRegistries: [regs.tls.host] },
    // All 20 come from one address here; the limits meant for one person's tab are lifted.
    maxHoldMs: 600_000,
    perClient: 4 * SIGNERS,
    waitMs: 60_000,
  });
  try {
    await signAtOnce('concurrent/locked', relayLock(server.origin));
  } finally {
    await server.close();
  }
});

/**
 * Signing with a transparency log and a timestamp authority (shared/ops/sign.ts with
 * sign-services.ts), against the REAL Rekor v2 (rekor-tiles v2.3.0) and timestamp authority
 * (v2.1.3) the rig starts on loopback, with the signing config cosign 3.1 made for them:
 *
 * - both formats signed, logged and timestamped; cosign 3.1 `verify --key --trusted-root` with NO
 *   `--insecure-ignore-tlog` accepts the bundle, and the page's verifier (shared/ops/verify.ts)
 *   with tlog=require says verified through the log and the TSA; the entry is what cosign 3.1
 *   logs for an image (hashedrekord 0.0.2 over SHA-256 of the DSSE PAE);
 * - the legacy `.sig` layer carries the verified timestamp; what cosign 3.1 says of it without
 *   `--insecure-ignore-tlog` is pinned (a Rekor v2 entry has no place in a legacy layer);
 * - every failure mode by its code, with nothing pushed: log or TSA unreachable, the log refusing
 *   (a signature that does not verify), a log answer or a timestamp altered on its way back by a
 *   proxy (test/rig/tamper-proxy.ts), a signing config naming no usable log.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlainPrivateKeyPem, publicKeyPem } from '../../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { TIMESTAMP_ANNOTATION } from '../../shared/cosign/legacy-sigstore.ts';
import { CosignWebError } from '../../shared/errors.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import type { SigningServices } from '../../shared/ops/sign-services.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { buildTrust } from '../../shared/ops/verify-sigstore.ts';
import { parseSigningConfig, selectServices } from '../../shared/sigstore/signing-config.ts';
import { parseTrustedRoot } from '../../shared/sigstore/trusted-root.ts';
import { pushSampleImage } from '../rig/images.ts';
import { freePort } from '../rig/registries.ts';
import { startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { startTamperProxy, tamperRekorProof, tamperTimestamp, type TamperProxy } from '../rig/tamper-proxy.ts';
import { run } from '../rig/tools.ts';
import { useRig, VECTORS } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-sign-tlog-', password: '' });

let stack: SigstoreServices;
let signer: Signer;
let pub: string;
const proxies: TamperProxy[] = [];

beforeAll(async () => {
  stack = await startSigstoreServices({ dir: join(await rig.tempDir('cosign-web-sign-tlog-stack-'), 'services') });
  const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, 'ec-p256-pkcs8.pem'), 'utf8'));
  const key = await importPrivateKey(info);
  signer = { algorithm: info.algorithm, spki: info.spki, sign: (d) => signWithCryptoKey(key, info.algorithm, d) };
  pub = join(rig.home.dir, 'ec-p256.pub');
  writeFileSync(pub, publicKeyPem(info.spki));
}, 180_000);

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await stack?.stop();
});

/** The services the rig's signing config (made by cosign 3.1) selects, as the sign page selects them. */
function services(over: Partial<SigningServices> = {}): SigningServices {
  const sc = parseSigningConfig(readFileSync(stack.signingConfigFile));
  const now = new Date();
  return {
    fetch: (url, init) => fetch(url, init),
    root: parseTrustedRoot(readFileSync(stack.trustedRootFile)),
    rekor: selectServices(sc.rekorTlogUrls, sc.rekorTlogConfig, [2], now, 'transparency log')[0]!,
    tsa: selectServices(sc.tsaUrls, sc.tsaConfig, [1], now, 'timestamp authority')[0]!,
    ...over,
  };
}

let serial = 0;
async function sign(formats: { legacy: boolean; bundle: boolean }, s: SigningServices, who = signer) {
  const repository = `tlog/image-${++serial}`;
  const image = await pushSampleImage(rig.tls, repository, 'v1');
  const repo = { registry: rig.tls.host, repository };
  const plan = await planSigning(rig.client, repo, 'v1');
  const signing = signImage({
    client: rig.client,
    signer: who,
    plan,
    dockerReference: `${rig.tls.host}/${repository}`,
    formats,
    services: s,
  });
  return { image, repo, signing };
}

const cosignVerify = (ref: string, extra: string[] = []) =>
  run('cosign3', ['verify', '--key', pub, '--trusted-root', stack.trustedRootFile, ...extra, ref], { env: rig.env() });

const pageVerify = (ref: string, tlog: 'require' | 'check') =>
  verifyImage(rig.client, {
    image: ref,
    spki: signer.spki,
    tlog,
    trust: async () => buildTrust({ root: { json: readFileSync(stack.trustedRootFile), name: 'rig services root' } }),
  });

/** True when the registry holds a tag (a `.sig` manifest, a referrers fallback index). */
async function hasTag(repo: { registry: string; repository: string }, tag: string): Promise<boolean> {
  try {
    await rig.client.resolve(repo, tag);
    return true;
  } catch {
    return false;
  }
}

async function expectRefused(
  formats: { legacy: boolean; bundle: boolean },
  s: SigningServices,
  code: string,
  who = signer,
): Promise<string> {
  const { image, repo, signing } = await sign(formats, s, who);
  const e = await signing.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'the signing should have failed').toBeInstanceOf(CosignWebError);
  expect((e as CosignWebError).code, (e as Error).message).toBe(code);
  // Nothing pushed: neither the `.sig` manifest nor the referrers fallback index exists.
  expect(await hasTag(repo, sigTag(image.digest))).toBe(false);
  expect(await hasTag(repo, referrersTag(image.digest))).toBe(false);
  return (e as Error).message;
}

describe('signing through the real Rekor v2 and TSA', () => {
  it('the bundle: logged as cosign 3.1 logs an image signature, accepted by cosign 3.1 without --insecure-ignore-tlog and by the page with tlog=require', async () => {
    const { image, signing } = await sign({ legacy: false, bundle: true }, services());
    const result = await signing;
    expect(result.targets[0]!.bundle).toBeDefined();
    const theirs = await cosignVerify(image.ref);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(theirs.stderr).not.toMatch(/insecure/i);
    const ours = await pageVerify(image.ref, 'require');
    expect(ours.verified, ours.summary).toBe(true);
    const sig = ours.manifests[0]!.signatures.find((x) => x.verified)!;
    expect(sig.format).toBe('bundle');
    expect(sig.sigstore!.tlog).toEqual([
      expect.objectContaining({
        log: stack.rekor.url,
        kind: 'hashedrekord 0.0.2',
        proof: 'inclusion proof, signed checkpoint',
      }),
    ]);
    expect(sig.sigstore!.timestamps).toEqual([expect.objectContaining({ authority: 'local, Test TSA Root' })]);
    // The logged digest is SHA-256 of the DSSE PAE, as cosign 3.1 logs it.
    const blob = await rig.client.getBlob(
      { registry: rig.tls.host, repository: `tlog/image-${serial}` },
      sig.source.blob!,
    );
    const bundle = JSON.parse(Buffer.from(blob).toString('utf8')) as {
      dsseEnvelope: { payload: string; payloadType: string };
      verificationMaterial: { tlogEntries: { canonicalizedBody: string }[] };
    };
    const payload = Buffer.from(bundle.dsseEnvelope.payload, 'base64');
    const type = bundle.dsseEnvelope.payloadType;
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} ${type} ${payload.length} `), payload]);
    const body = JSON.parse(
      Buffer.from(bundle.verificationMaterial.tlogEntries[0]!.canonicalizedBody, 'base64').toString('utf8'),
    ) as { spec: { hashedRekordV002: { data: { digest: string } } } };
    expect(body.spec.hashedRekordV002.data.digest).toBe(createHash('sha256').update(pae).digest('base64'));
  });

  it('both formats at once: the legacy layer carries the verified timestamp; cosign 3.1 accepts the image', async () => {
    const { image, repo, signing } = await sign({ legacy: true, bundle: true }, services());
    await signing;
    const sigManifest = await rig.client.getManifest(repo, sigTag(image.digest));
    const layers = sigManifest.json.layers as { annotations: Record<string, string> }[];
    expect(layers).toHaveLength(1);
    const stamp = JSON.parse(layers[0]!.annotations[TIMESTAMP_ANNOTATION]!) as { SignedRFC3161Timestamp: string };
    expect(stamp.SignedRFC3161Timestamp).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(layers[0]!.annotations['dev.sigstore.cosign/bundle']).toBeUndefined(); // Rekor v2 gives no SET
    const theirs = await cosignVerify(image.ref);
    expect(theirs.code, theirs.stderr).toBe(0);
  });

  it('legacy alone, timestamped: the page verifies its timestamp (tlog=check); cosign 3.1 needs a log entry the legacy format cannot carry from Rekor v2', async () => {
    const { image, signing } = await sign({ legacy: true, bundle: false }, services());
    await signing;
    const ours = await pageVerify(image.ref, 'check');
    expect(ours.verified, ours.summary).toBe(true);
    const sig = ours.manifests[0]!.signatures.find((x) => x.verified)!;
    expect(sig.format).toBe('legacy');
    expect(sig.sigstore!.timestamps).toEqual([expect.objectContaining({ authority: 'local, Test TSA Root' })]);
    const required = await pageVerify(image.ref, 'require');
    expect(required.verified).toBe(false);
    // Pinned: cosign 3.1 without --insecure-ignore-tlog refuses a legacy signature without a Rekor v1 entry …
    const theirs = await cosignVerify(image.ref);
    expect(theirs.code, theirs.stderr).not.toBe(0);
    // … and accepts it, timestamp checked, when told to use signed timestamps and skip the log.
    const withTsa = await cosignVerify(image.ref, ['--use-signed-timestamps', '--insecure-ignore-tlog=true']);
    expect(withTsa.code, withTsa.stderr).toBe(0);
  });
});

describe('failure modes: each by its code, nothing pushed', () => {
  it('the log cannot be reached', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const s = services();
    await expectRefused(
      { legacy: true, bundle: true },
      { ...s, rekor: { ...s.rekor!, url: dead } },
      'SIGNING_TLOG_UNREACHABLE',
    );
  });

  it('the timestamp authority cannot be reached', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/api/v1/timestamp`;
    const s = services();
    await expectRefused(
      { legacy: true, bundle: true },
      { ...s, tsa: { ...s.tsa!, url: dead } },
      'SIGNING_TSA_UNREACHABLE',
    );
  });

  it('the log refuses a signature that does not verify (the real Rekor v2 checks it)', async () => {
    const broken: Signer = { ...signer, sign: async (d) => signer.sign(new Uint8Array([...d, 0])) };
    const message = await expectRefused({ legacy: false, bundle: true }, services(), 'SIGNING_TLOG_REFUSED', broken);
    expect(message).toMatch(/HTTP 400/);
  });

  it('a log answer whose inclusion proof was altered on its way back is refused before anything is pushed', async () => {
    const proxy = await startTamperProxy(stack.rekor.url, tamperRekorProof);
    proxies.push(proxy);
    const s = services();
    const message = await expectRefused(
      { legacy: true, bundle: true },
      { ...s, rekor: { ...s.rekor!, url: proxy.url } },
      'SIGNING_TLOG_ANSWER_INVALID',
    );
    expect(proxy.tampered()).toBe(1);
    expect(message).toMatch(/VERIFY_INCLUSION_PROOF_INVALID/);
  });

  it('a timestamp altered on its way back is refused before anything is pushed', async () => {
    const proxy = await startTamperProxy(stack.tsa.baseUrl, tamperTimestamp);
    proxies.push(proxy);
    const s = services();
    const url = `${proxy.url}/api/v1/timestamp`;
    await expectRefused(
      { legacy: true, bundle: false },
      { ...s, tsa: { ...s.tsa!, url } },
      'SIGNING_TSA_ANSWER_INVALID',
    );
    await expectRefused(
      { legacy: false, bundle: true },
      { ...s, tsa: { ...s.tsa!, url } },
      'SIGNING_TSA_ANSWER_INVALID',
    );
  });

  it('a real log the trusted root does not name is refused', async () => {
    const root = JSON.parse(readFileSync(stack.trustedRootFile, 'utf8')) as { tlogs: { logId: { keyId: string } }[] };
    root.tlogs[0]!.logId.keyId = Buffer.alloc(32, 7).toString('base64');
    const message = await expectRefused(
      { legacy: false, bundle: true },
      services({ root: parseTrustedRoot(JSON.stringify(root)) }),
      'SIGNING_TLOG_ANSWER_INVALID',
    );
    expect(message).toMatch(/VERIFY_TLOG_UNTRUSTED/);
  });
});

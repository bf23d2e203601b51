/**
 * Signing into a Rekor v1 log (shared/ops/sign.ts with sign-services.ts and
 * shared/sigstore/services.ts logToRekorV1), against the REAL Rekor v1.5.4 on Trillian and MariaDB
 * (test/rig/rekor-v1.ts), the real timestamp authority, Fulcio and the rig's OIDC issuer, with the
 * signing config cosign 3.1 made for a v1 log (as public good's names rekor.sigstore.dev):
 *
 * - with a key: the legacy `.sig` layer carries cosign's `dev.sigstore.cosign/bundle` (the SET)
 *   and cosign 3.1 `verify --key --trusted-root` (no `--insecure-ignore-tlog`), cosign 2.5
 *   `verify --key --offline` with `SIGSTORE_REKOR_PUBLIC_KEY`, skopeo 1.18 with `keyPath` and
 *   `rekorPublicKeyPath`, and the page's verifier with tlog=require accept it; with the SET removed
 *   or altered, or another log key, cosign 2.5 and skopeo refuse; the bundle (a dsse 0.0.1 entry)
 *   is accepted by cosign 3.1 and the page;
 * - keyless, with no timestamp authority (a v1 log's SET gives the verified time): cosign 3.1 by
 *   identity accepts the bundle, cosign 2.5 and skopeo (`fulcio` + `rekorPublicKeyPath`) the
 *   legacy layer; another identity is refused by each;
 * - a Rekor v1 answer altered on its way back: SIGNING_TLOG_ANSWER_INVALID, nothing pushed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlainPrivateKeyPem, publicKeyPem } from '../../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { BUNDLE_ANNOTATION, referrersTag, sigTag } from '../../shared/cosign/manifests.ts';
import { CosignWebError } from '../../shared/errors.ts';
import { keylessSigner, type KeylessSigner } from '../../shared/ops/keyless.ts';
import { planSigning, signImage, type Signer } from '../../shared/ops/sign.ts';
import type { SigningServices } from '../../shared/ops/sign-services.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { buildTrust } from '../../shared/ops/verify-sigstore.ts';
import { parseSigningConfig, selectServices } from '../../shared/sigstore/signing-config.ts';
import { parseTrustedRoot } from '../../shared/sigstore/trusted-root.ts';
import { hashedRekordV001, logToRekorV1 } from '../../shared/sigstore/services.ts';
import { sha256Bytes } from '../../shared/crypto/digest.ts';
import { freePort } from '../rig/registries.ts';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import { cosign3VerifyIdentityArgs, startFulcio, type Fulcio } from '../rig/fulcio.ts';
import { keylessPolicy } from '../rig/keyless-images.ts';
import { startOidcIssuer, type OidcIssuer } from '../rig/oidc-issuer.ts';
import { startRekorV1, type RekorV1 } from '../rig/rekor-v1.ts';
import { startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { startTamperProxy, tamperRekorV1Set, type TamperProxy } from '../rig/tamper-proxy.ts';
import { run, skopeoPolicyPull } from '../rig/tools.ts';
import { useRig, VECTORS } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-sign-rekor1-', password: '' });
const EMAIL = 'carol@rig.test';
let rekor: RekorV1;
let issuer: OidcIssuer;
let fulcio: Fulcio;
let stack: SigstoreServices;
let signer: Signer;
let pub: string;
let otherLogKey: string;
let fulcioRoots: string;
const proxies: TamperProxy[] = [];

beforeAll(async () => {
  issuer = await startOidcIssuer();
  [rekor, fulcio] = await Promise.all([
    startRekorV1({ dir: await rig.tempDir('cosign-web-sign-rekor1-log-') }),
    startFulcio({ dir: await rig.tempDir('cosign-web-sign-rekor1-fulcio-'), issuerUrl: issuer.url }),
  ]);
  stack = await startSigstoreServices({
    dir: join(await rig.tempDir('cosign-web-sign-rekor1-stack-'), 'services'),
    rekorV1: rekor,
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  const info = parsePlainPrivateKeyPem(readFileSync(join(VECTORS, 'ec-p256-pkcs8.pem'), 'utf8'));
  const key = await importPrivateKey(info);
  signer = { algorithm: info.algorithm, spki: info.spki, sign: (d) => signWithCryptoKey(key, info.algorithm, d) };
  pub = join(rig.home.dir, 'ec-p256.pub');
  writeFileSync(pub, publicKeyPem(info.spki));
  otherLogKey = join(rig.home.dir, 'other-log.pub');
  writeFileSync(
    otherLogKey,
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }),
  );
  fulcioRoots = join(rig.home.dir, 'fulcio-chain.pem');
  writeFileSync(fulcioRoots, fulcio.chainPem.join(''));
}, 300_000);

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await stack?.stop();
  await fulcio?.stop();
  await rekor?.stop();
  await issuer?.stop();
});

/** What the sign page chooses from the v1 signing config: its log (v1 is the only one) and, unless told not to, its TSA. */
function v1Services(o: { tsa?: boolean; rekorUrl?: string } = {}): SigningServices {
  const config = parseSigningConfig(readFileSync(stack.signingConfigV1File!));
  const at = new Date();
  const log = selectServices(config.rekorTlogUrls, config.rekorTlogConfig, [1, 2], at, 'transparency log')[0]!;
  const tsa = selectServices(config.tsaUrls, config.tsaConfig, [1], at, 'timestamp authority')[0]!;
  return {
    fetch: (url, init) => fetch(url, init),
    root: parseTrustedRoot(readFileSync(stack.trustedRootFile)),
    rekor: o.rekorUrl ? { ...log, url: o.rekorUrl } : log,
    ...(o.tsa === false ? {} : { tsa }),
  };
}

let serial = 0;
/** Pushes a fresh image and signs it in the formats given; resolves to its reference, or rejects. */
async function signFresh(formats: { legacy: boolean; bundle: boolean }, services: SigningServices, who = signer) {
  const repository = `rekor1/image-${++serial}`;
  const image = await pushSampleImage(rig.tls, repository, 'v1');
  const repo = { registry: rig.tls.host, repository };
  const signing = signImage({
    client: rig.client,
    signer: who,
    plan: await planSigning(rig.client, repo, 'v1'),
    dockerReference: `${rig.tls.host}/${repository}`,
    formats,
    services,
  });
  return { image, repo, signing };
}

const rootTrust = async () =>
  buildTrust({ root: { json: readFileSync(stack.trustedRootFile), name: 'rig services root' } });

const cosign3Key = (ref: string) =>
  run('cosign3', ['verify', '--key', pub, '--trusted-root', stack.trustedRootFile, ref], { env: rig.env() });

const cosign2Key = (ref: string, logKey = rekor.publicKeyFile) =>
  run('cosign2', ['verify', '--key', pub, '--offline', ref], {
    env: { ...rig.env(), SIGSTORE_REKOR_PUBLIC_KEY: logKey },
  });

const skopeoKey = async (ref: string, logKey = rekor.publicKeyFile) =>
  skopeoPolicyPull(rig.home, await skopeoAccess(rig.tls, rig.home.dir), pub, ref, { rekorPublicKeyPath: logKey });

/** The `.sig` manifest's one layer annotations. */
async function legacyAnnotations(repo: { registry: string; repository: string }, digest: string) {
  const m = await rig.client.getManifest(repo, sigTag(digest));
  return (m.json.layers as { annotations: Record<string, string> }[])[0]!.annotations;
}

/** Rewrites the `.sig` manifest with its layer's annotations changed by `edit`. */
async function rewriteLegacy(
  repo: { registry: string; repository: string },
  digest: string,
  edit: (a: Record<string, string>) => void,
) {
  const m = await rig.client.getManifest(repo, sigTag(digest));
  const json = JSON.parse(new TextDecoder().decode(m.bytes)) as { layers: { annotations: Record<string, string> }[] };
  edit(json.layers[0]!.annotations);
  await rig.client.putManifest(
    repo,
    sigTag(digest),
    new TextEncoder().encode(JSON.stringify(json)),
    m.descriptor.mediaType,
  );
}

describe('with a key, through the real Rekor v1 and TSA', () => {
  let legacy: Awaited<ReturnType<typeof signFresh>>;
  beforeAll(async () => {
    legacy = await signFresh({ legacy: true, bundle: false }, v1Services());
    await legacy.signing;
  }, 120_000);

  it("the legacy layer carries cosign's RekorBundle: the SET and the hashedrekord 0.0.1 entry, fields in cosign's order", async () => {
    const a = await legacyAnnotations(legacy.repo, legacy.image.digest);
    const bundle = JSON.parse(a[BUNDLE_ANNOTATION]!) as {
      SignedEntryTimestamp: string;
      Payload: { body: string; integratedTime: number; logIndex: number; logID: string };
    };
    expect(a[BUNDLE_ANNOTATION]).toMatch(
      /^\{"SignedEntryTimestamp":"[A-Za-z0-9+/=]+","Payload":\{"body":"[A-Za-z0-9+/=]+","integratedTime":\d+,"logIndex":\d+,"logID":"[0-9a-f]{64}"\}\}$/,
    );
    const body = JSON.parse(Buffer.from(bundle.Payload.body, 'base64').toString('utf8')) as Record<string, unknown>;
    expect(body).toMatchObject({ kind: 'hashedrekord', apiVersion: '0.0.1' });
    expect(a['dev.sigstore.cosign/rfc3161timestamp']).toBeDefined();
  });

  it('cosign 3.1 (no --insecure-ignore-tlog), cosign 2.5 offline with the log key, skopeo with rekorPublicKeyPath and the page (tlog=require) accept it', async () => {
    const ref = legacy.image.ref;
    const three = await cosign3Key(ref);
    expect(three.code, three.stderr).toBe(0);
    const two = await cosign2Key(ref);
    expect(two.code, two.stderr).toBe(0);
    const skopeo = await skopeoKey(ref);
    expect(skopeo.code, skopeo.stderr).toBe(0);
    const ours = await verifyImage(rig.client, { image: ref, spki: signer.spki, tlog: 'require', trust: rootTrust });
    expect(ours.verified, ours.summary).toBe(true);
    const sig = ours.manifests[0]!.signatures.find((s) => s.verified)!;
    expect(sig.format).toBe('legacy');
    expect(sig.sigstore!.tlog).toEqual([
      expect.objectContaining({ log: rekor.url, kind: 'hashedrekord 0.0.1', proof: 'signed entry timestamp' }),
    ]);
  });

  it('cosign 2.5 and skopeo refuse it with another log key, with the SET altered, and with it removed', async () => {
    const ref = legacy.image.ref;
    expect((await cosign2Key(ref, otherLogKey)).code).not.toBe(0);
    expect((await skopeoKey(ref, otherLogKey)).code).not.toBe(0);
    const original = (await legacyAnnotations(legacy.repo, legacy.image.digest))[BUNDLE_ANNOTATION]!;
    await rewriteLegacy(legacy.repo, legacy.image.digest, (a) => {
      const b = JSON.parse(original) as { SignedEntryTimestamp: string };
      const set = Buffer.from(b.SignedEntryTimestamp, 'base64');
      set[set.length - 1]! ^= 1;
      a[BUNDLE_ANNOTATION] = JSON.stringify({ ...b, SignedEntryTimestamp: set.toString('base64') });
    });
    expect((await cosign2Key(ref)).code).not.toBe(0);
    expect((await skopeoKey(ref)).code).not.toBe(0);
    await rewriteLegacy(legacy.repo, legacy.image.digest, (a) => delete a[BUNDLE_ANNOTATION]);
    expect((await cosign2Key(ref)).code).not.toBe(0);
    expect((await skopeoKey(ref)).code).not.toBe(0);
    // Put back, the same tools accept it again: the refusals were the SET's.
    await rewriteLegacy(legacy.repo, legacy.image.digest, (a) => (a[BUNDLE_ANNOTATION] = original));
    expect((await cosign2Key(ref)).code).toBe(0);
  });

  it('the bundle is logged as a dsse 0.0.1 entry; cosign 3.1 without --insecure-ignore-tlog and the page accept it', async () => {
    const { image, signing } = await signFresh({ legacy: false, bundle: true }, v1Services());
    await signing;
    const three = await cosign3Key(image.ref);
    expect(three.code, three.stderr).toBe(0);
    const ours = await verifyImage(rig.client, {
      image: image.ref,
      spki: signer.spki,
      tlog: 'require',
      trust: rootTrust,
    });
    expect(ours.verified, ours.summary).toBe(true);
    const sig = ours.manifests[0]!.signatures.find((s) => s.verified)!;
    expect(sig.format).toBe('bundle');
    expect(sig.sigstore!.tlog).toEqual([
      expect.objectContaining({
        log: rekor.url,
        kind: 'dsse 0.0.1',
        proof: 'signed entry timestamp, inclusion proof, signed checkpoint',
      }),
    ]);
  });
});

describe('keyless, through Fulcio and the real Rekor v1, with no timestamp authority', () => {
  let keyless: KeylessSigner;
  let ref: string;
  beforeAll(async () => {
    const services = v1Services({ tsa: false });
    keyless = await keylessSigner({
      fetch,
      fulcioUrl: fulcio.url,
      idToken: await issuer.token({ email: EMAIL }),
      claims: { subject: EMAIL },
      root: services.root,
    });
    const { image, signing } = await signFresh({ legacy: true, bundle: true }, services, keyless);
    await signing;
    keyless.forget();
    ref = image.ref;
  }, 120_000);

  const cosign2Identity = (identity: string) =>
    run(
      'cosign2',
      [
        'verify',
        '--certificate-identity',
        identity,
        '--certificate-oidc-issuer',
        issuer.url,
        '--insecure-ignore-sct',
        '--offline',
        ref,
      ],
      { env: { ...rig.env(), SIGSTORE_ROOT_FILE: fulcioRoots, SIGSTORE_REKOR_PUBLIC_KEY: rekor.publicKeyFile } },
    );

  const skopeoIdentity = async (email: string) => {
    const repository = ref.replace(/@.*$/, '');
    const trust = { caRoots: fulcioRoots, caIntermediates: fulcioRoots, rekorPublicKey: rekor.publicKeyFile };
    const policy = keylessPolicy('fulcio', trust, repository, { email, issuer: issuer.url });
    return skopeoPolicyPull(rig.home, await skopeoAccess(rig.tls, rig.home.dir), '', ref, { policy });
  };

  it('cosign 3.1 by identity accepts the bundle (the log required), and refuses another identity', async () => {
    const good = await run('cosign3', cosign3VerifyIdentityArgs(ref, EMAIL, issuer.url, stack.trustedRootFile), {
      env: rig.env(),
    });
    expect(good.code, good.stderr).toBe(0);
    const other = await run(
      'cosign3',
      cosign3VerifyIdentityArgs(ref, 'mallory@rig.test', issuer.url, stack.trustedRootFile),
      { env: rig.env() },
    );
    expect(other.code).not.toBe(0);
  });

  it('cosign 2.5 offline (Fulcio root, log key) accepts the legacy layer, and refuses another identity', async () => {
    const good = await cosign2Identity(EMAIL);
    expect(good.code, good.stderr).toBe(0);
    expect((await cosign2Identity('mallory@rig.test')).code).not.toBe(0);
  });

  it('skopeo with a fulcio + rekorPublicKeyPath policy accepts it, and refuses another email', async () => {
    const good = await skopeoIdentity(EMAIL);
    expect(good.code, good.stderr).toBe(0);
    expect((await skopeoIdentity('mallory@rig.test')).code).not.toBe(0);
  });

  it("the page's verifier says verified by identity with the log required, for both formats", async () => {
    const ours = await verifyImage(rig.client, {
      image: ref,
      certificate: { certificateIdentity: EMAIL, certificateOidcIssuer: issuer.url },
      tlog: 'require',
      trust: rootTrust,
    });
    expect(ours.verified, ours.summary).toBe(true);
    const formats = ours.manifests[0]!.signatures.filter((s) => s.verified).map((s) => s.format);
    expect(formats.sort()).toEqual(['bundle', 'legacy']);
  });
});

describe('a Rekor v1 answer altered on its way back', () => {
  it('is refused (SIGNING_TLOG_ANSWER_INVALID) before anything is pushed, for either format', async () => {
    const proxy = await startTamperProxy(rekor.url, tamperRekorV1Set);
    proxies.push(proxy);
    for (const formats of [
      { legacy: true, bundle: false },
      { legacy: false, bundle: true },
    ]) {
      const { image, repo, signing } = await signFresh(formats, v1Services({ rekorUrl: proxy.url }));
      const e = await signing.then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(CosignWebError);
      expect((e as CosignWebError).code, (e as Error).message).toBe('SIGNING_TLOG_ANSWER_INVALID');
      expect((e as Error).message).toMatch(/VERIFY_SET_INVALID/);
      for (const tag of [sigTag(image.digest), referrersTag(image.digest)])
        await expect(rig.client.resolve(repo, tag)).rejects.toThrow();
    }
    expect(proxy.tampered()).toBe(2);
  });
});

describe('the log refusing, or out of reach', () => {
  const refusal = (entry: Record<string, unknown>, url = rekor.url) =>
    logToRekorV1((u, init) => fetch(u, init), url, entry).then(
      () => null,
      (e: unknown) => e as CosignWebError,
    );

  it('a signature that does not verify (HTTP 400) and an entry logged twice (HTTP 409) are SIGNING_TLOG_REFUSED', async () => {
    const data = new TextEncoder().encode(`refusal ${Date.now()}`);
    const pem = publicKeyPem(signer.spki);
    const entry = hashedRekordV001(sha256Bytes(data), await signer.sign(data), pem);
    expect(await refusal(entry)).toBeNull();
    const twice = await refusal(entry);
    expect(twice?.code).toBe('SIGNING_TLOG_REFUSED');
    expect(twice?.message).toMatch(/HTTP 409/);
    const other = hashedRekordV001(sha256Bytes(data), await signer.sign(new Uint8Array([...data, 0])), pem);
    const bad = await refusal(other);
    expect(bad?.code).toBe('SIGNING_TLOG_REFUSED');
    expect(bad?.message).toMatch(/HTTP 400/);
  });

  it('a log that cannot be reached is SIGNING_TLOG_UNREACHABLE, and nothing is pushed', async () => {
    const { image, repo, signing } = await signFresh(
      { legacy: true, bundle: true },
      v1Services({ rekorUrl: `http://127.0.0.1:${await freePort()}` }),
    );
    const e = await signing.then(
      () => null,
      (err: unknown) => err as CosignWebError,
    );
    expect(e?.code).toBe('SIGNING_TLOG_UNREACHABLE');
    await expect(rig.client.resolve(repo, sigTag(image.digest))).rejects.toThrow();
  });
});

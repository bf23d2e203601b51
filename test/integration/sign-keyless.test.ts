/**
 * Keyless signing end to end against the REAL services on loopback: the project's OIDC issuer, the
 * real Fulcio (ephemeral CA), Rekor v2 and the timestamp authority (test/rig/). The shared code the
 * page runs (shared/ops/keyless.ts, sign.ts, sign-services.ts) makes a fresh non-extractable key,
 * gets Fulcio's certificate for the token's identity, signs an image in both formats, logs the
 * bundle's signature to Rekor v2 with the certificate as its verifier and timestamps both; then:
 *
 * - cosign 3.1 `verify --certificate-identity … --certificate-oidc-issuer … --trusted-root` accepts
 *   the image (no `--insecure-ignore-tlog`; `--insecure-ignore-sct` because the rig's Fulcio has no
 *   CT log), and refuses another identity and another issuer;
 * - the page's verifier (shared/ops/verify.ts) with the identity policy and `tlog=require` says
 *   verified, and refuses another identity;
 * - the legacy `.sig` layer carries the certificate, its chain and a verified timestamp; what cosign
 *   3.1 says of it without a Rekor v1 entry is pinned;
 * - the key is gone after forget(): it signs nothing more.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, sigTag } from '../../shared/cosign/manifests.ts';
import { TIMESTAMP_ANNOTATION } from '../../shared/cosign/legacy-sigstore.ts';
import { CosignWebError } from '../../shared/errors.ts';
import { keylessSigner, type KeylessSigner } from '../../shared/ops/keyless.ts';
import { planSigning, signImage } from '../../shared/ops/sign.ts';
import { verifyImage } from '../../shared/ops/verify.ts';
import { buildTrust } from '../../shared/ops/verify-sigstore.ts';
import { parseSigningConfig, selectServices } from '../../shared/sigstore/signing-config.ts';
import { parseTrustedRoot } from '../../shared/sigstore/trusted-root.ts';
import { pushSampleImage } from '../rig/images.ts';
import { cosign3VerifyIdentityArgs, startFulcio, type Fulcio } from '../rig/fulcio.ts';
import { startOidcIssuer, type OidcIssuer } from '../rig/oidc-issuer.ts';
import { startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { run } from '../rig/tools.ts';
import { useRig } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-sign-keyless-' });
const EMAIL = 'alice@rig.test';
let issuer: OidcIssuer;
let fulcio: Fulcio;
let stack: SigstoreServices;
let signer: KeylessSigner;
let ref: string;
let repo: { registry: string; repository: string };

beforeAll(async () => {
  issuer = await startOidcIssuer();
  fulcio = await startFulcio({ dir: await rig.tempDir('cosign-web-keyless-fulcio-'), issuerUrl: issuer.url });
  stack = await startSigstoreServices({
    dir: join(await rig.tempDir('cosign-web-keyless-stack-'), 'services'),
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  const root = parseTrustedRoot(readFileSync(stack.trustedRootFile));
  signer = await keylessSigner({
    fetch,
    fulcioUrl: fulcio.url,
    idToken: await issuer.token({ email: EMAIL }),
    claims: { subject: EMAIL },
    root,
  });
  const sc = parseSigningConfig(readFileSync(stack.signingConfigFile));
  const now = new Date();
  const image = await pushSampleImage(rig.tls, 'keyless/signed', 'v1');
  ref = `${image.repository}@${image.digest}`;
  repo = { registry: rig.tls.host, repository: 'keyless/signed' };
  await signImage({
    client: rig.client,
    signer,
    plan: await planSigning(rig.client, repo, 'v1'),
    dockerReference: `${rig.tls.host}/keyless/signed`,
    formats: { legacy: true, bundle: true },
    services: {
      fetch: (url, init) => fetch(url, init),
      root,
      rekor: selectServices(sc.rekorTlogUrls, sc.rekorTlogConfig, [2], now, 'transparency log')[0]!,
      tsa: selectServices(sc.tsaUrls, sc.tsaConfig, [1], now, 'timestamp authority')[0]!,
    },
  });
  signer.forget();
}, 240_000);
afterAll(async () => {
  await stack?.stop();
  await fulcio?.stop();
  await issuer?.stop();
});

const cosignVerify = (identity: string, oidcIssuer: string) =>
  run('cosign3', cosign3VerifyIdentityArgs(ref, identity, oidcIssuer, stack.trustedRootFile), { env: rig.env() });

const ours = (identity: string) =>
  verifyImage(rig.client, {
    image: ref,
    certificate: { certificateIdentity: identity, certificateOidcIssuer: issuer.url },
    tlog: 'require',
    trust: async () => buildTrust({ root: { json: readFileSync(stack.trustedRootFile), name: 'rig services root' } }),
  });

describe('an image signed keyless through the real Fulcio, Rekor v2 and TSA', () => {
  it('the certificate names the identity logged in, from the rig issuer', () => {
    expect(signer.certificate.identity).toBe(EMAIL);
    expect(signer.certificate.issuer).toBe(issuer.url);
  });

  it('cosign 3.1 verifies it with the identity and the trusted root, without --insecure-ignore-tlog', async () => {
    const r = await cosignVerify(EMAIL, issuer.url);
    expect(r.code, r.stderr).toBe(0);
  });

  it('cosign 3.1 refuses another identity and another issuer', async () => {
    expect((await cosignVerify('mallory@rig.test', issuer.url)).code).not.toBe(0);
    expect((await cosignVerify(EMAIL, 'https://other-issuer.rig.test')).code).not.toBe(0);
  });

  it("the page's verifier says verified through the log and the timestamp, and refuses another identity", async () => {
    const r = await ours(EMAIL);
    expect(r.verified, r.summary).toBe(true);
    const bundle = r.manifests[0]!.signatures.find((s) => s.verified && s.format === 'bundle');
    expect(bundle?.sigstore?.tlog).toHaveLength(1);
    expect(bundle?.sigstore?.timestamps).toHaveLength(1);
    const other = await ours('mallory@rig.test');
    expect(other.verified).toBe(false);
  });

  it('the legacy layer carries the certificate, the chain Fulcio sent and a timestamp', async () => {
    const sig = await rig.client.getManifest(repo, sigTag(ref.slice(ref.indexOf('@') + 1)));
    const layer = (
      JSON.parse(new TextDecoder().decode(sig.bytes)) as { layers: { annotations: Record<string, string> }[] }
    ).layers[0]!;
    expect(layer.annotations[CERTIFICATE_ANNOTATION]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(layer.annotations[CHAIN_ANNOTATION]).toBe(fulcio.chainPem.join(''));
    expect(JSON.parse(layer.annotations[TIMESTAMP_ANNOTATION]!)).toHaveProperty('SignedRFC3161Timestamp');
  });

  it('the key made for the signing is dropped afterwards', async () => {
    const e = await signer.sign(new Uint8Array([1])).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CosignWebError);
    expect((e as CosignWebError).code).toBe('KEYLESS_UNSUPPORTED');
  });
});

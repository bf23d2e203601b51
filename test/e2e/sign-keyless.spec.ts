/**
 * "Sign with your identity" on #/sign in Chromium, against the REAL Fulcio, Rekor v2 and timestamp
 * authority and the project's own OpenID Connect issuer, all on loopback (test/rig/), with a signing
 * config cosign 3.1 made for them ("Config file") and their trusted root ("Trusted root file"):
 *
 * - the page asks once per issuer what becomes public, opens the issuer's login page in a window, the
 *   test logs in there as a person would ("Email", "Sign in"), and the page signs both formats;
 *   cosign 3.1 `verify --certificate-identity --certificate-oidc-issuer --trusted-root` accepts the
 *   image (no `--insecure-ignore-tlog`), refuses another identity, and the verification link (the
 *   identity and issuer, tlog=require) says "Verified";
 * - the ID token travels in one request only, the one to Fulcio; no request carries a private key
 *   (the key is non-extractable and the page never holds its bytes);
 * - "Cancel" on the login page ends with KEYLESS_LOGIN_CANCELLED and nothing pushed.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAppServer, relayEnvFor, type AppServer } from '../rig/app-server.ts';
import { cosign3VerifyIdentityArgs, startFulcio, type Fulcio } from '../rig/fulcio.ts';
import { pushSampleImage } from '../rig/images.ts';
import { startOidcIssuer, type OidcIssuer } from '../rig/oidc-issuer.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { createSigningConfig, startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { cosignEnv, makeToolHome, run, type ToolHome } from '../rig/tools.ts';
import { openSignWithServices, recordRequests } from './helpers.ts';

const regs = () => registriesFromEnv()!;
const LONG = { timeout: 90_000 };
const EMAIL = 'alice@rig.test';

let issuer: OidcIssuer;
let fulcio: Fulcio;
let stack: SigstoreServices;
let home: ToolHome;
let dir: string;
let signingConfig: string;
let server: AppServer | undefined;
let origin: string;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  home = await makeToolHome('cosign-web-e2e-keyless-');
  dir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-keyless-'));
  issuer = await startOidcIssuer();
  fulcio = await startFulcio({ dir, issuerUrl: issuer.url });
  stack = await startSigstoreServices({
    dir: join(dir, 'services'),
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  signingConfig = join(dir, 'keyless-signing-config.json');
  await createSigningConfig(dir, stack.rekor.url, stack.tsa.url, stack.validFrom, signingConfig, {
    fulcioUrl: fulcio.url,
    oidcUrl: issuer.url,
  });
  server = await startAppServer(
    dir,
    relayEnvFor([stack.rekor.url, stack.tsa.baseUrl, fulcio.url, issuer.url], regs().tls),
  );
  origin = server.origin;
});

test.afterAll(async () => {
  await server?.stop();
  await stack?.stop();
  await fulcio?.stop();
  await issuer?.stop();
  await home?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const status = (page: Page) => page.getByRole('status');

async function fillSign(page: Page, ref: string): Promise<void> {
  await openSignWithServices(page, origin, ref, { signingConfig, trustedRoot: stack.trustedRootFile });
  await page.getByRole('radio', { name: /Sign with your identity/ }).check();
  // Keyless signing always logs and timestamps: the two choices are shown, fixed, not offered.
  for (const [label, url] of [
    ['Transparency log', stack.rekor.url],
    ['Timestamp authority', stack.tsa.url],
  ] as const) {
    await expect(page.getByLabel(label, { exact: true })).toBeDisabled();
    await expect(page.getByLabel(label, { exact: true })).toContainText(url);
  }
  await expect(page.locator('#identity-how')).toContainText(new URL(issuer.url).host);
}

const cosignVerify = (ref: string, identity: string) =>
  run('cosign3', cosign3VerifyIdentityArgs(ref, identity, issuer.url, stack.trustedRootFile), {
    env: cosignEnv(home, { caFile: regs().tls.caFile }),
  });

test('logs in at the issuer, signs with a Fulcio certificate, and cosign 3.1 and the link verify the identity', async ({
  page,
}) => {
  test.setTimeout(300_000);
  const seen = recordRequests(page);
  const image = await pushSampleImage(regs().tls, 'e2e/keyless-signed', 'v1');
  await fillSign(page, image.ref);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  const question = page.getByRole('group', { name: /Sign with your identity publicly\?/ });
  await expect(question).toContainText('the certificate naming the identity you log in with');
  const [login] = await Promise.all([
    page.waitForEvent('popup'),
    page.getByRole('button', { name: 'Log publicly and sign' }).click(),
  ]);
  await expect(login.getByRole('heading', { name: "Sign in to the rig's issuer" })).toBeVisible(LONG);
  await login.getByLabel('Email').fill(EMAIL);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await expect(status(page)).toContainText(`as ${EMAIL}`);
  await expect(status(page)).toContainText(`logged in ${stack.rekor.url}`);

  const theirs = await cosignVerify(image.ref, EMAIL);
  expect(theirs.code, theirs.stderr).toBe(0);
  expect((await cosignVerify(image.ref, 'mallory@rig.test')).code).not.toBe(0);

  const link = await page.getByRole('link', { name: 'Verification link' }).getAttribute('href');
  expect(link).toContain(`certificateIdentity=${encodeURIComponent(EMAIL)}`);
  expect(link).toContain('tlog=require');
  expect(link).not.toMatch(/[?&]key=/);
  const other = await page.context().newPage();
  await other.goto(link!);
  await expect(other.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(
    /^Verified/,
    LONG,
  );
  await other.close();

  // The ID token (a JWT: three base64url parts, the first `eyJ`) is in one request only: to Fulcio.
  const jwt = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/;
  const carrying = seen.filter(
    (r) => jwt.test(r.body) || jwt.test(r.url) || Object.values(r.headers).some((h) => jwt.test(h)),
  );
  expect(carrying.map((r) => `${r.method} ${new URL(r.url).pathname}`)).toEqual([
    `POST /relay/${new URL(fulcio.url).host}/api/v2/signingCert`,
  ]);
  // No request carries a private key.
  expect(seen.filter((r) => /PRIVATE KEY/.test(r.body))).toEqual([]);
});

test('"Cancel" on the login page ends with KEYLESS_LOGIN_CANCELLED and nothing is pushed', async ({ page }) => {
  test.setTimeout(300_000);
  const image = await pushSampleImage(regs().tls, 'e2e/keyless-cancelled', 'v1');
  await fillSign(page, image.ref);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  // Each test has a browser context of its own: the consent is asked again here.
  const [login] = await Promise.all([
    page.waitForEvent('popup'),
    page.getByRole('button', { name: 'Log publicly and sign' }).click(),
  ]);
  await login.getByRole('button', { name: 'Cancel' }).click();
  await expect(status(page)).toContainText('KEYLESS_LOGIN_CANCELLED', LONG);
  const theirs = await cosignVerify(image.ref, EMAIL);
  expect(theirs.code).not.toBe(0);
  expect(theirs.stderr).toMatch(/no signatures found|no matching signatures/i);
});

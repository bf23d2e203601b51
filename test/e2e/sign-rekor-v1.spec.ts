/**
 * #/sign in Chromium logging to a Rekor **v1** log (as public good's rekor.sigstore.dev), against
 * the REAL Rekor v1.5.4 on Trillian and MariaDB (test/rig/rekor-v1.ts), the real timestamp
 * authority, Fulcio and the project's OIDC issuer, reached through the relay of a server of this
 * file's own, with signing configs cosign 3.1 made for a v1 log ("Config file") and the rig's
 * trusted root ("Trusted root file"):
 * - with a browser key, log and TSA chosen: the "Transparency log" option names the log as Rekor v1,
 *   the page signs both formats; cosign 3.1 `verify --key --trusted-root` (no
 *   `--insecure-ignore-tlog`) accepts the image, cosign 2.5 `verify --key --offline` with
 *   `SIGSTORE_REKOR_PUBLIC_KEY` accepts the legacy layer (its SET), and the verification link
 *   (tlog=require) says "Verified";
 * - "Sign with your identity" with a config that has a v1 log and no timestamp authority: offered
 *   (a v1 log's SET gives the verified time), signs both formats; cosign 2.5 offline accepts the
 *   legacy layer by identity, cosign 3.1 the image.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAppServer, relayEnvFor, type AppServer } from '../rig/app-server.ts';
import { cosign3VerifyIdentityArgs, startFulcio, type Fulcio } from '../rig/fulcio.ts';
import { pushSampleImage } from '../rig/images.ts';
import { startOidcIssuer, type OidcIssuer } from '../rig/oidc-issuer.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { startRekorV1, type RekorV1 } from '../rig/rekor-v1.ts';
import { createSigningConfig, startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { cosignEnv, makeToolHome, run, type ToolHome } from '../rig/tools.ts';
import { openSignWithServices } from './helpers.ts';

const regs = () => registriesFromEnv()!;
const LONG = { timeout: 90_000 };
const EMAIL = 'dave@rig.test';

let rekor: RekorV1;
let issuer: OidcIssuer;
let fulcio: Fulcio;
let stack: SigstoreServices;
let home: ToolHome;
let dir: string;
let keylessConfig: string;
let fulcioRoots: string;
let server: AppServer | undefined;
let origin: string;

test.beforeAll(async () => {
  test.setTimeout(300_000);
  home = await makeToolHome('cosign-web-e2e-rekor1-');
  dir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-rekor1-'));
  issuer = await startOidcIssuer();
  [rekor, fulcio] = await Promise.all([
    startRekorV1({ dir: join(dir, 'rekor-v1') }),
    startFulcio({ dir, issuerUrl: issuer.url }),
  ]);
  stack = await startSigstoreServices({
    dir: join(dir, 'services'),
    rekorV1: rekor,
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  keylessConfig = join(dir, 'keyless-v1-no-tsa.json');
  const keyless = { fulcioUrl: fulcio.url, oidcUrl: issuer.url };
  await createSigningConfig(dir, rekor.url, '', stack.validFrom, keylessConfig, keyless, 1);
  fulcioRoots = join(dir, 'fulcio-chain.pem');
  writeFileSync(fulcioRoots, fulcio.chainPem.join(''));
  server = await startAppServer(dir, relayEnvFor([rekor.url, stack.tsa.baseUrl, fulcio.url, issuer.url], regs().tls));
  origin = server.origin;
});

test.afterAll(async () => {
  await server?.stop();
  await stack?.stop();
  await fulcio?.stop();
  await rekor?.stop();
  await issuer?.stop();
  await home?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const status = (page: Page) => page.getByRole('status');
const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });
const env = () => cosignEnv(home, { caFile: regs().tls.caFile });

/** cosign 2.5 verifying the legacy layer offline: its SET with the v1 log's key. */
const cosign2Offline = (ref: string, who: string[], extraEnv: Record<string, string> = {}) =>
  run('cosign2', ['verify', ...who, '--offline', ref], {
    env: { ...env(), SIGSTORE_REKOR_PUBLIC_KEY: rekor.publicKeyFile, ...extraEnv },
  });

test('with a browser key: logged in the Rekor v1 log, both formats accepted by cosign 3.1, the legacy one by cosign 2.5 offline, and the link says Verified', async ({
  page,
}) => {
  test.setTimeout(300_000);
  await page.goto(`${origin}/#/keys`);
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready', LONG);
  const pub = join(dir, 'browser-key.pub');
  writeFileSync(pub, await field(page, 'Public key').inputValue());

  const image = await pushSampleImage(regs().tls, 'e2e/rekor1-signed', 'v1');
  await openSignWithServices(page, origin, image.ref, {
    signingConfig: stack.signingConfigV1File!,
    trustedRoot: stack.trustedRootFile,
  });
  await expect(field(page, 'Transparency log')).toContainText(`${rekor.url} (Rekor v1)`);
  await field(page, 'Transparency log').selectOption('config');
  await field(page, 'Timestamp authority').selectOption('config');
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await page.getByRole('button', { name: 'Log publicly and sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await expect(status(page)).toContainText(`logged in ${rekor.url}`);

  const three = await run('cosign3', ['verify', '--key', pub, '--trusted-root', stack.trustedRootFile, image.ref], {
    env: env(),
  });
  expect(three.code, three.stderr).toBe(0);
  const two = await cosign2Offline(image.ref, ['--key', pub]);
  expect(two.code, two.stderr).toBe(0);

  const link = await page.getByRole('link', { name: 'Verification link' }).getAttribute('href');
  expect(link).toContain('tlog=require');
  const other = await page.context().newPage();
  await other.goto(link!);
  await expect(other.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(
    /^Verified/,
    LONG,
  );
  await other.close();
});

test('"Sign with your identity" with a Rekor v1 log and no timestamp authority: offered, and cosign 2.5 and 3.1 accept the signatures by identity', async ({
  page,
}) => {
  test.setTimeout(300_000);
  const image = await pushSampleImage(regs().tls, 'e2e/rekor1-keyless', 'v1');
  await openSignWithServices(page, origin, image.ref, {
    signingConfig: keylessConfig,
    trustedRoot: stack.trustedRootFile,
  });
  await page.getByRole('radio', { name: /Sign with your identity/ }).check();
  await expect(field(page, 'Transparency log')).toContainText(`${rekor.url} (Rekor v1)`);
  await expect(field(page, 'Timestamp authority')).toContainText('The config offers none');
  await expect(page.locator('#identity-how')).not.toContainText('timestamped');
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  const [login] = await Promise.all([
    page.waitForEvent('popup'),
    page.getByRole('button', { name: 'Log publicly and sign' }).click(),
  ]);
  await login.getByLabel('Email').fill(EMAIL);
  await login.getByRole('button', { name: 'Sign in' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await expect(status(page)).toContainText(`logged in ${rekor.url}`);
  await expect(status(page)).not.toContainText('timestamped');

  const identity = (email: string) => [
    '--certificate-identity',
    email,
    '--certificate-oidc-issuer',
    issuer.url,
    '--insecure-ignore-sct',
  ];
  const two = await cosign2Offline(image.ref, identity(EMAIL), { SIGSTORE_ROOT_FILE: fulcioRoots });
  expect(two.code, two.stderr).toBe(0);
  expect(
    (await cosign2Offline(image.ref, identity('mallory@rig.test'), { SIGSTORE_ROOT_FILE: fulcioRoots })).code,
  ).not.toBe(0);
  const three = await run('cosign3', cosign3VerifyIdentityArgs(image.ref, EMAIL, issuer.url, stack.trustedRootFile), {
    env: env(),
  });
  expect(three.code, three.stderr).toBe(0);
});

test("the shipped public-good config now offers its log, rekor.sigstore.dev (Rekor v1), and 'Sign with your identity'", async ({
  page,
}) => {
  await page.goto(`${origin}/#/sign`);
  await expect(field(page, 'Signing config')).toHaveValue('public-good');
  await expect(field(page, 'Transparency log')).toContainText('https://rekor.sigstore.dev (Rekor v1)');
  await expect(field(page, 'Transparency log').locator('option[value="config"]')).toBeEnabled();
  await page.getByRole('radio', { name: /Sign with your identity/ }).check();
  await expect(page.locator('#identity-how')).toContainText('oauth2.sigstore.dev');
  await expect(page.locator('#identity-unavailable')).toHaveCount(0);
});

/**
 * #/sign in Chromium with "Transparency log" and "Timestamp authority", against the REAL Rekor v2
 * and timestamp authority the rig starts on loopback (test/rig/sigstore-services.ts), reached
 * through the relay of a server of this file's own (RELAY_SIGSTORE_SERVICES names them), with the
 * signing config cosign 3.1 made for them ("Config file") and their trusted root ("Trusted
 * root file"):
 * - the page asks once per key what becomes public forever, signs both formats, and cosign 3.1
 *   `verify --key --trusted-root` with NO `--insecure-ignore-tlog` accepts the image; the
 *   verification link (tlog=require, the same root) says "Verified"; a second image with the same
 *   key is not asked again;
 * - a log answer altered on its way back (test/rig/tamper-proxy.ts) and an unreachable timestamp
 *   authority each give their code, and nothing is pushed (cosign finds no signature).
 * The browser only ever talks to its own origin.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAppServer, relayEnvFor, type AppServer } from '../rig/app-server.ts';
import { pushSampleImage } from '../rig/images.ts';
import { freePort, registriesFromEnv } from '../rig/registries.ts';
import { createSigningConfig, startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { startTamperProxy, tamperRekorProof, type TamperProxy } from '../rig/tamper-proxy.ts';
import { cosignEnv, makeToolHome, run, type ToolHome } from '../rig/tools.ts';
import { openSignWithServices, recordRequests } from './helpers.ts';

const regs = () => registriesFromEnv()!;
const LONG = { timeout: 90_000 };

let stack: SigstoreServices;
let proxy: TamperProxy;
let home: ToolHome;
let dir: string;
let server: AppServer | undefined;
let origin: string;
const configs = { tampered: '', deadTsa: '' };

test.beforeAll(async () => {
  test.setTimeout(300_000);
  home = await makeToolHome('cosign-web-e2e-sign-tlog-');
  dir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-sign-tlog-'));
  stack = await startSigstoreServices({ dir: join(dir, 'services') });
  proxy = await startTamperProxy(stack.rekor.url, tamperRekorProof);
  const dead = `127.0.0.1:${await freePort()}`;
  configs.tampered = join(dir, 'tampered-log.json');
  configs.deadTsa = join(dir, 'dead-tsa.json');
  await createSigningConfig(dir, proxy.url, stack.tsa.url, stack.validFrom, configs.tampered);
  await createSigningConfig(dir, stack.rekor.url, `http://${dead}/api/v1/timestamp`, stack.validFrom, configs.deadTsa);
  const services = [stack.rekor.url, stack.tsa.baseUrl, proxy.url, dead];
  server = await startAppServer(dir, relayEnvFor(services, regs().tls));
  origin = server.origin;
});

test.afterAll(async () => {
  await server?.stop();
  await proxy?.close();
  await stack?.stop();
  await home?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const status = (page: Page) => page.getByRole('status');
const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });

/** A browser key (ECDSA P-256) made on the Keys page; its public key's file for cosign. */
async function makeKey(page: Page): Promise<string> {
  await page.goto(`${origin}/#/keys`);
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready', LONG);
  const pem = await field(page, 'Public key').inputValue();
  const file = join(dir, `key-${Math.random()}.pub`);
  writeFileSync(file, pem);
  return file;
}

/** Opens #/sign for `ref` with a signing config and the stack's trust root, log and TSA chosen. */
async function fillSign(page: Page, ref: string, signingConfig: string): Promise<void> {
  await openSignWithServices(page, origin, ref, { signingConfig, trustedRoot: stack.trustedRootFile });
  await field(page, 'Transparency log').selectOption('config');
  await field(page, 'Timestamp authority').selectOption('config');
}

const cosignVerify = (pub: string, ref: string) =>
  run('cosign3', ['verify', '--key', pub, '--trusted-root', stack.trustedRootFile, ref], {
    env: cosignEnv(home, { caFile: regs().tls.caFile }),
  });

test('signs through the real Rekor v2 and TSA after asking once per key; cosign 3.1 and the page verify with the log required', async ({
  page,
}) => {
  test.setTimeout(300_000);
  const seen = recordRequests(page);
  const pub = await makeKey(page);
  const image = await pushSampleImage(regs().tls, 'e2e/tlog-signed', 'v1');
  await fillSign(page, image.ref, stack.signingConfigFile);
  await expect(field(page, 'Transparency log')).toContainText(`${stack.rekor.url} (Rekor v2)`);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  const question = page.getByRole('group', { name: /Log this signature publicly\?/ });
  await expect(question).toContainText('publicly and forever, the digest of what is signed and this public key');
  await page.getByRole('button', { name: 'Log publicly and sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await expect(status(page)).toContainText(`logged in ${stack.rekor.url}`);
  await expect(status(page)).toContainText('each answer verified against the trust root');

  const theirs = await cosignVerify(pub, image.ref);
  expect(theirs.code, theirs.stderr).toBe(0);

  const link = await page.getByRole('link', { name: 'Verification link' }).getAttribute('href');
  expect(link).toContain('tlog=require');
  // The link names the loaded root by its sha256: open it in this browser, which holds that root.
  const other = await page.context().newPage();
  await other.goto(link!);
  await expect(other.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(
    /^Verified/,
    LONG,
  );
  await other.close();

  // The same key again: no question this time.
  const second = await pushSampleImage(regs().tls, 'e2e/tlog-signed-2', 'v1');
  await fillSign(page, second.ref, stack.signingConfigFile);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await expect(status(page)).toContainText(`Signed ${second.digest}`, LONG);
  await expect(page.getByRole('button', { name: 'Log publicly and sign' })).toHaveCount(0);

  for (const u of seen.map((r) => r.url)) if (u.startsWith('http')) expect(new URL(u).origin, u).toBe(origin);
  expect(
    seen.some((r) => r.url.startsWith(`${origin}/relay/${new URL(stack.rekor.url).host}/api/v2/log/entries`)),
  ).toBe(true);
});

test('a tampered log answer and an unreachable TSA each give their code, and nothing is pushed', async ({ page }) => {
  test.setTimeout(300_000);
  const pub = await makeKey(page);
  for (const [config, code, repo] of [
    [configs.tampered, 'SIGNING_TLOG_ANSWER_INVALID', 'e2e/tlog-tampered'],
    [configs.deadTsa, 'SIGNING_TSA_UNREACHABLE', 'e2e/tlog-dead-tsa'],
  ] as const) {
    const image = await pushSampleImage(regs().tls, repo, 'v1');
    await fillSign(page, image.ref, config);
    await page.getByRole('button', { name: 'Sign', exact: true }).click();
    // A new key: asked once, before its first upload.
    if (repo === 'e2e/tlog-tampered') await page.getByRole('button', { name: 'Log publicly and sign' }).click();
    await expect(status(page)).toContainText(code, LONG);
    const theirs = await cosignVerify(pub, image.ref);
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr).toMatch(/no signatures found/i);
  }
  expect(proxy.tampered()).toBeGreaterThanOrEqual(1);
});

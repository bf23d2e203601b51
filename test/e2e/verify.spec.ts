/**
 * The Verify page in Chromium, through the real relay to the real registries, on images signed by
 * the REAL cosign 2.5, cosign 3.1 and skopeo 1.18: a verification link runs at once and says
 * "Verified"; the key a link supplies is shown as unknown until the viewer trusts it; the form
 * with an identity rule and the per-platform rule; rejections with their reason; a private
 * registry; the result JSON. Screenshots of each state land in test-results/e2e/.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { fingerprint } from '../../shared/crypto/webcrypto.ts';
import { RESULT_FORMAT, type VerificationResult } from '../../shared/ops/verify.ts';
import { verificationLink } from '../../shared/cosign/link.ts';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  skopeoEnv,
  skopeoRegistryFlags,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';

const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');
const PASSWORD = 'correct horse';
const KEY_A = join(VECTORS, 'cosign2-pw.key');
const PUB_A = readFileSync(join(VECTORS, 'cosign2-pw.pub'), 'utf8');
const KEY_B = join(VECTORS, 'cosign3-pw.key');
const PUB_B = readFileSync(join(VECTORS, 'cosign3-pw.pub'), 'utf8');
const SHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'e2e');
const regs = () => registriesFromEnv()!;
let home: ToolHome;
let offline: Cosign3Offline;

test.beforeAll(async () => {
  home = await makeToolHome('cosign-web-e2e-verify-');
  offline = await makeCosign3Offline(home);
});
test.afterAll(() => home.cleanup());

const env = () => cosignEnv(home, { password: PASSWORD, caFile: regs().tls.caFile });
const push = (repo: string, index = false): Promise<PushedImage> =>
  pushSampleImage({ host: regs().tls.host, caFile: regs().tls.caFile }, repo, 'v1', { index });
const spki = (pem: string): Uint8Array => parsePublicKey(pem).spki;
/** The status once finished: its text starts with "Verified" or "Not verified". */
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });
const shot = (page: Page, name: string) => page.screenshot({ path: join(SHOTS, `verify-${name}.png`), fullPage: true });

test('a verification link runs at once: both formats verified; the unknown key becomes a trusted one', async ({
  page,
  baseURL,
}) => {
  const image = await push('e2e-verify/link');
  await runOk('cosign2', cosign2SignArgs(KEY_A, image.ref), { env: env() });
  await runOk('cosign3', cosign3SignArgs(KEY_A, offline, image.ref), { env: env() });
  const link = verificationLink(baseURL!, { image: image.ref, spki: spki(PUB_A) });

  await page.goto(link);
  await expect(verdict(page)).toHaveText(/^Verified: 2 signatures by this key on /, { timeout: 30_000 });
  const supplied = page.getByRole('region', { name: 'Key supplied by this link' });
  await expect(supplied).toContainText('Key supplied by this link');
  await expect(supplied).toContainText('unknown to you');
  await expect(supplied).toContainText(`sha256:${fingerprint(spki(PUB_A)).hex}`);
  await expect(supplied).toContainText("cosign's rule applies");
  await expect(supplied.getByRole('img', { name: /^Key picture/ })).toBeVisible();
  const result = page.getByRole('region', { name: 'Verification result' });
  await expect(result.getByRole('img', { name: 'Verified' }).first()).toBeVisible();
  await expect(result).toContainText('legacy .sig');
  await expect(result).toContainText('Sigstore bundle');
  await expect(page.getByRole('textbox', { name: 'cosign verify command' })).toHaveValue(
    /cosign verify --key cosign\.pub --insecure-ignore-tlog=true /,
  );
  await expect(page.getByLabel('Verification link')).toHaveValue(link);
  await shot(page, 'link-unknown-key');

  await page.getByLabel('Name for this key').fill('Release key A');
  await page.getByRole('button', { name: 'Trust this key' }).click();
  await expect(page.getByRole('listitem', { name: 'Trusted key Release key A' })).toBeVisible();
  await page.reload();
  await expect(verdict(page)).toHaveText(/^Verified/, { timeout: 30_000 });
  await expect(supplied).toContainText('This is the key you trust as Release key A');

  // Another link, another key: unknown, and the image it names is not signed by it.
  await page.goto(verificationLink(baseURL!, { image: image.ref, spki: spki(PUB_B) }));
  await expect(verdict(page)).toHaveText(/^Not verified: This image: none of its 2 signatures verifies/, {
    timeout: 30_000,
  });
  await expect(supplied).toContainText('unknown to you');
  const bundleRow = page.getByRole('listitem').filter({ hasText: 'Sigstore bundle' }).first();
  await expect(bundleRow).toContainText('VERIFY_WRONG_KEY');
  // The legacy signature is named as made by the trusted key A.
  await expect(page.getByRole('listitem').filter({ hasText: 'legacy .sig' }).first()).toContainText('Release key A');
  await shot(page, 'link-wrong-key');

  await page.getByRole('button', { name: 'Remove trusted key Release key A' }).click({ noWaitAfter: true });
});

test('the form: index signed on every platform, identity rule, per-platform rule, result JSON', async ({ page }) => {
  page.on('dialog', (d) => void d.accept());
  const full = await push('e2e-verify/all-platforms', true);
  const top = await push('e2e-verify/index-only', true);
  await runOk('cosign2', cosign2SignArgs(KEY_A, full.ref, ['--recursive']), { env: env() });
  await runOk('cosign2', cosign2SignArgs(KEY_A, top.ref), { env: env() });

  await page.goto('/#/verify');
  await expect(page.getByRole('status')).toBeHidden();
  await page.getByLabel('Image reference').fill(full.tagRef);
  await page.getByLabel('Public key', { exact: true }).fill(PUB_A);
  await page.getByLabel('Identity rule').selectOption('matchRepository');
  await page.getByLabel('Require every platform to be signed').check();
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Verified: 1 signature by this key on .* and on both platforms\./, {
    timeout: 30_000,
  });
  for (const name of ['Index (multi-platform image)', 'Platform linux/amd64', 'Platform linux/arm64/v8'])
    await expect(page.getByRole('region', { name }).getByRole('img', { name: 'signed by this key' })).toBeVisible();
  await shot(page, 'form-index-verified');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download result (JSON)' }).click(),
  ]);
  const json = JSON.parse(readFileSync(await download.path(), 'utf8')) as VerificationResult;
  expect(json.format).toBe(RESULT_FORMAT);
  expect(json.verified).toBe(true);
  expect(json.policy).toEqual({
    identity: { type: 'matchRepository' },
    identityDescription: expect.stringContaining('matchRepository'),
    annotations: {},
    requireEveryPlatform: true,
    certificate: null,
    tlog: null,
    containersPolicy: null,
  });
  expect(json.trustedRoot).toBeNull(); // no signature carried Sigstore material
  expect(json.manifests.map((m) => m.verified)).toEqual([true, true, true]);

  await page.getByLabel('Image reference').fill(top.tagRef);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: 2 of 2 platform manifests are not signed by this key/, {
    timeout: 30_000,
  });
  await expect(
    page.getByRole('region', { name: 'Platform linux/amd64' }).getByRole('img', { name: 'not signed by this key' }),
  ).toBeVisible();
  await shot(page, 'form-platforms-unsigned');

  await page.getByLabel('Identity rule').selectOption('matchExact');
  await page.getByLabel('Require every platform to be signed').uncheck();
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: This index: The signature names only the repository/, {
    timeout: 30_000,
  });
});

test('rejections read plainly: unsigned, attestation only, tampered blob, bad link', async ({ page, baseURL }) => {
  const unsigned = await push('e2e-verify/unsigned');
  await page.goto(verificationLink(baseURL!, { image: unsigned.ref, spki: spki(PUB_A) }));
  await expect(verdict(page)).toHaveText(/^Not verified: This image has no signatures/, { timeout: 30_000 });

  const attested = await push('e2e-verify/attested');
  writeFileSync(join(home.dir, 'predicate.json'), '{"scan":"clean"}');
  await runOk(
    'cosign3',
    [
      'attest',
      '--key',
      KEY_A,
      '--type',
      'vuln',
      '--predicate',
      join(home.dir, 'predicate.json'),
      '--signing-config',
      offline.signingConfig,
      '--trusted-root',
      offline.trustedRoot,
      '--yes',
      attested.ref,
    ],
    { env: env() },
  );
  await page.goto(verificationLink(baseURL!, { image: attested.ref, spki: spki(PUB_A) }));
  await expect(verdict(page)).toHaveText(
    /^Not verified: This image has no signatures, only an attestation, which does not count as a signature\./,
    {
      timeout: 30_000,
    },
  );
  await expect(page.getByRole('region', { name: 'Verification result' })).toContainText('attestation, not a signature');
  await shot(page, 'attestation-only');

  // A skopeo signature (repo:tag), then the same image copied under another repository by skopeo.
  const original = await push('e2e-verify/origin');
  const access = await skopeoAccess({ host: regs().tls.host, caFile: regs().tls.caFile }, home.dir);
  const pass = join(home.dir, 'pass');
  writeFileSync(pass, `${PASSWORD}\n`);
  const flags = [...skopeoRegistryFlags(access, 'src'), ...skopeoRegistryFlags(access, 'dest')];
  const copy = `${regs().tls.host}/e2e-verify/copy:v1`;
  for (const args of [
    [
      '--sign-by-sigstore-private-key',
      KEY_A,
      '--sign-passphrase-file',
      pass,
      `docker://${original.tagRef}`,
      `docker://${original.tagRef}`,
    ],
    [`docker://${original.tagRef}`, `docker://${copy}`],
  ]) {
    const r = await run('skopeo', ['copy', ...flags, ...args], { env: skopeoEnv(home) });
    expect(r.code, r.stderr).toBe(0);
  }
  await page.goto(
    verificationLink(baseURL!, {
      image: `${copy}@${original.digest}`,
      spki: spki(PUB_A),
      identity: { type: 'matchRepository' },
    }),
  );
  await expect(verdict(page)).toHaveText(
    /^Not verified: This image: The signature names .*e2e-verify\/origin:v1, not the repository/,
    {
      timeout: 30_000,
    },
  );
  await expect(page.getByRole('region', { name: 'Verification result' })).toContainText('VERIFY_IDENTITY_MISMATCH');
  await shot(page, 'identity-mismatch');

  await page.goto('/#/verify?image=localhost:1/x:y&key=bm90IGEga2V5');
  await expect(verdict(page)).toHaveText(/^Not verified: The public key is not valid DER/);
  await page.goto('/#/verify?key=abc');
  await expect(verdict(page)).toHaveText(/^Not verified: This verification link is not valid: it names no image/);
});

test('a private registry: the credentials fields, through the relay', async ({ page }) => {
  const b = regs().basic;
  const image = await pushSampleImage(
    { host: b.host, username: b.username, password: b.password },
    'e2e-verify/private',
    'v1',
  );
  const e = env();
  await runOk('cosign2', ['login', b.host, '-u', b.username, '--password-stdin'], { env: e, input: b.password });
  await runOk('cosign2', cosign2SignArgs(KEY_B, image.ref), { env: e });

  await page.goto('/#/verify');
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByLabel('Key file (cosign.pub)').setInputFiles(join(VECTORS, 'cosign3-pw.pub'));
  await expect(page.getByLabel('Public key', { exact: true })).toHaveValue(PUB_B.trim());
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: .*(credentials|username)/, { timeout: 30_000 });
  await page.getByText('Private registry').click();
  await page.getByLabel('Registry username').fill(b.username);
  await page.getByLabel('Registry password').fill(b.password);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(verdict(page)).toHaveText(/^Verified: 1 signature by this key/, { timeout: 30_000 });
});

/**
 * Issue #13, items 2, 7, 8 and 9 (verify results) in Chromium, on images signed by the REAL cosign
 * 2.5 and 3.1 and by the page itself: a verification link opened in a fresh browser leads with one
 * verdict, what was checked and by whom, inside the first viewport at 390 × 844 and 1280 × 800, the
 * form folded behind "Change what is checked" (#/verify and #/verify-file); form errors are marked
 * at their field, with no verdict, and the focus goes to what changed; the page's own keys are
 * known and pickable on #/verify; wrong-key results say another key made the signature, for
 * legacy and bundle alike; an unsigned image says "No signatures found".
 */
import { expect, test, type Browser, type Locator, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { fingerprint } from '../../shared/crypto/webcrypto.ts';
import { verificationLink } from '../../shared/cosign/link.ts';
import { fileVerificationLink } from '../../shared/cosign/file-link.ts';
import { conformanceCases } from '../conformance.ts';
import { pushSampleImage, type PushedImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  makeCosign3Offline,
  makeToolHome,
  runOk,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';

const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');
const KEY_A = join(VECTORS, 'cosign2-pw.key');
const PUB_A = readFileSync(join(VECTORS, 'cosign2-pw.pub'), 'utf8');
const PUB_B = readFileSync(join(VECTORS, 'cosign3-pw.pub'), 'utf8');
const regs = () => registriesFromEnv()!;
let home: ToolHome;
let offline: Cosign3Offline;

test.beforeAll(async () => {
  home = await makeToolHome('cosign-web-e2e-verdict-');
  offline = await makeCosign3Offline(home);
});
test.afterAll(() => home.cleanup());

const env = () => cosignEnv(home, { password: 'correct horse', caFile: regs().tls.caFile });
const push = (repo: string): Promise<PushedImage> =>
  pushSampleImage({ host: regs().tls.host, caFile: regs().tls.caFile }, repo, 'v1');
const spki = (pem: string): Uint8Array => parsePublicKey(pem).spki;
/** The verdict: the status whose text starts with "Verified" or "Not verified". */
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });

/** The element's bottom edge lies within the first screenful of the page (no scrolling needed). */
async function inFirstViewport(el: Locator): Promise<boolean> {
  return el.evaluate((e) => e.getBoundingClientRect().bottom + window.scrollY <= window.innerHeight);
}

/** Opens `link` in a fresh browser context at each size; checks the verdict leads; returns nothing. */
async function freshLinkLeads(browser: Browser, link: string, name: string, check: (p: Page) => Promise<void>) {
  for (const [width, height] of [
    [390, 844],
    [1280, 800],
  ] as const) {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    await page.goto(link);
    await expect(verdict(page)).toHaveText(/^Verified: /, { timeout: 60_000 });
    expect(await inFirstViewport(verdict(page)), `verdict in the first viewport at ${width}×${height}`).toBe(true);
    // One verdict: no second "Verified" card repeating it.
    await expect(page.getByText(/^\s*(Verified|Not verified)\s*$/)).toHaveCount(0);
    // The form is folded away behind "Change what is checked", and opens on demand.
    const change = page.getByText('Change what is checked', { exact: true });
    await expect(change).toBeVisible();
    await page.screenshot({ path: test.info().outputPath(`${name}-${width}.png`) });
    await check(page);
    await change.click();
    await context.close();
  }
}

test('a verification link leads with one verdict, what was checked and by whom, at 390 and 1280 px', async ({
  browser,
  baseURL,
}) => {
  const image = await push('e2e-verdict/link');
  await runOk('cosign2', cosign2SignArgs(KEY_A, image.ref), { env: env() });
  const link = verificationLink(baseURL!, { image: image.ref, spki: spki(PUB_A) });
  const fp = fingerprint(spki(PUB_A)).hex;
  await freshLinkLeads(browser, link, 'verify-link', async (page) => {
    await expect(page.getByLabel('Image reference')).toBeHidden();
    await expect(verdict(page)).toContainText(image.digest);
    const checked = page.getByLabel('What was checked');
    await expect(checked).toContainText(`sha256:${fp}`);
    await expect(checked).toContainText('supplied by this link');
    expect(await inFirstViewport(checked)).toBe(true);
    await page.getByText('Change what is checked', { exact: true }).click();
    await expect(page.getByLabel('Image reference')).toBeVisible();
    await expect(page.getByLabel('Image reference')).toHaveValue(image.ref);
  });
});

test('a file verification link leads with one verdict, the file digest, the signer and the trust root', async ({
  browser,
  baseURL,
}) => {
  const c = conformanceCases().find((x) => x.name === 'happy-path-v0.3')!;
  const link = fileVerificationLink(baseURL!, {
    digest: c.artifactDigest,
    bundle: readFileSync(c.bundlePath),
    sigstore: { policy: { certificateIdentity: c.identity, certificateOidcIssuer: c.issuer } },
  });
  await freshLinkLeads(browser, link, 'verify-file-link', async (page) => {
    await expect(page.getByLabel('File digest', { exact: true })).toBeHidden();
    await expect(verdict(page)).toContainText(c.artifactDigest);
    const checked = page.getByLabel('What was checked');
    await expect(checked).toContainText(c.identity);
    await expect(checked).toContainText('Trust root');
    await expect(checked).toContainText('this link');
  });
});

test('form errors are marked at their field, with no verdict, and the focus goes to what changed', async ({ page }) => {
  const image = await push('e2e-verdict/form');
  await runOk('cosign2', cosign2SignArgs(KEY_A, image.ref), { env: env() });
  await page.goto('/#/verify');
  const imageField = page.getByLabel('Image reference');
  const keyField = page.getByLabel('Public key', { exact: true });
  const go = page.getByRole('button', { name: 'Verify', exact: true });

  await go.click();
  await expect(imageField).toHaveAttribute('aria-invalid', 'true');
  await expect(imageField).toHaveAccessibleDescription('Type the image reference to verify.');
  await expect(imageField).toBeFocused();
  await expect(verdict(page)).toHaveCount(0);
  await page.screenshot({ path: test.info().outputPath('verify-form-error-1280.png') });

  await imageField.fill('not a reference!');
  await go.click();
  await expect(imageField).toHaveAttribute('aria-invalid', 'true');
  await expect(imageField).toBeFocused();

  await imageField.fill(image.ref);
  await expect(imageField).not.toHaveAttribute('aria-invalid', 'true');
  await go.click();
  await expect(keyField).toHaveAttribute('aria-invalid', 'true');
  await expect(keyField).toHaveAccessibleDescription(/^Paste the public key/);
  await expect(keyField).toBeFocused();
  await expect(verdict(page)).toHaveCount(0);

  await keyField.fill('not a key');
  await go.click();
  await expect(keyField).toHaveAttribute('aria-invalid', 'true');
  await expect(keyField).toBeFocused();

  await keyField.fill(PUB_A);
  await go.click();
  await expect(verdict(page)).toHaveText(/^Verified: 1 signature by this key/, { timeout: 60_000 });
  await expect(verdict(page)).toBeFocused();
  await expect(keyField).not.toHaveAttribute('aria-invalid', 'true');

  // The file page: an empty form marks "File digest" and says no verdict.
  await page.goto('/#/verify-file');
  await page.getByRole('button', { name: 'Verify file' }).click();
  const digest = page.getByLabel('File digest', { exact: true });
  await expect(digest).toHaveAttribute('aria-invalid', 'true');
  await expect(digest).toHaveAccessibleDescription(/^Choose the file to verify, or type its digest/);
  await expect(digest).toBeFocused();
  await expect(verdict(page)).toHaveCount(0);
  await digest.fill(`sha256:${'ab'.repeat(32)}`);
  await page.getByRole('button', { name: 'Verify file' }).click();
  const bundle = page.getByLabel('Bundle JSON', { exact: true });
  await expect(bundle).toHaveAttribute('aria-invalid', 'true');
  await expect(bundle).toBeFocused();
  await expect(verdict(page)).toHaveCount(0);
});

test('wrong-key results say another key made the signature, for legacy and bundle; unsigned says so', async ({
  page,
  baseURL,
}) => {
  const image = await push('e2e-verdict/wrong-key');
  await runOk('cosign2', cosign2SignArgs(KEY_A, image.ref), { env: env() });
  await runOk('cosign3', cosign3SignArgs(KEY_A, offline, image.ref), { env: env() });
  await page.goto(verificationLink(baseURL!, { image: image.ref, spki: spki(PUB_B) }));
  await expect(verdict(page)).toHaveText(/^Not verified: /, { timeout: 60_000 });
  for (const format of ['legacy .sig', 'Sigstore bundle']) {
    const line = page.getByRole('listitem').filter({ hasText: format }).first().locator('.line');
    await expect(line).toContainText(/another key/i);
    await expect(line).not.toContainText(/changed/);
  }

  const unsigned = await push('e2e-verdict/unsigned');
  await page.goto(verificationLink(baseURL!, { image: unsigned.ref, spki: spki(PUB_A) }));
  await expect(verdict(page)).toHaveText(/^Not verified: This image has no signatures/, { timeout: 60_000 });
  const result = page.getByRole('region', { name: 'Verification result' });
  await expect(result).toContainText('No signatures found');
  await expect(result).not.toContainText('0 of 0 verified');
});

test("Verify knows the page's own keys: pickable under My keys, named, never called unknown", async ({ page }) => {
  await page.goto('/#/welcome');
  const step1 = page.getByRole('listitem', { name: 'Step 1: make a signing key' });
  await step1.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(step1).toContainText('Done:');
  await page.getByRole('link', { name: 'Sign the sample image' }).click();
  const sample = await page.getByLabel('Image reference').inputValue();
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(page.getByRole('status')).toContainText(/^Signed sha256:/, { timeout: 60_000 });

  // The verification link of the page's own key: the key is named as mine, not "unknown to you".
  await page.getByRole('link', { name: 'Start' }).click();
  await page.getByRole('link', { name: 'Open the verification link' }).click();
  await expect(verdict(page)).toHaveText(/^Verified/, { timeout: 60_000 });
  const supplied = page.getByRole('region', { name: 'Key supplied by this link' });
  await expect(supplied).toContainText('This is your own key');
  await expect(supplied).not.toContainText('unknown to you');

  // The form: "My keys" fills "Public key" with the page's key.
  await page.goto('/#/verify');
  const mine = page.getByLabel('My keys');
  const name = ((await mine.locator('option').nth(1).textContent()) ?? '').split(' — ')[0]!.trim();
  expect(name).not.toBe('');
  await mine.selectOption({ index: 1 });
  await expect(page.getByLabel('Public key', { exact: true })).toHaveValue(/^-----BEGIN PUBLIC KEY-----/);
  await page.getByLabel('Image reference').fill(sample);
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await expect(verdict(page)).toHaveText(/^Verified/, { timeout: 60_000 });
  await expect(page.getByLabel('What was checked')).toContainText(`your own key "${name}"`);

  // Checked with another key, the page's own signature is named as made by the page's key.
  await page.getByLabel('Public key', { exact: true }).fill(PUB_A);
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await expect(verdict(page)).toHaveText(/^(Verified|Not verified)/, { timeout: 60_000 });
  await expect(page.getByRole('region', { name: 'Verification result' })).toContainText(`Made by ${name}`);
});

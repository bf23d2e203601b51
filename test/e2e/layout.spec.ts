/**
 * Every page, in its main states (empty, working, a result, an error), at 360, 390, 768 and 1280 px
 * wide in Chromium: the page never scrolls sideways and no element is wider than the viewport, and
 * axe-core (https://github.com/dequelabs/axe-core) finds nothing at the serious or critical levels
 * (the check is ./layout-check.ts). Each state's screenshot is attached to the test (a kept
 * artifact). The states a visitor reaches without setup get one browser context per width; the
 * working states are held on their first request (`hold`: page.route, no sleep) and, like the
 * passkey, PKCS#11 and Verify file states, reached once and checked at each width by resizing the
 * page. The keyless verdicts and the form of a server without PKCS#11 are checked where their
 * setup already is (verify-keyless.spec.ts, pkcs11.spec.ts). The states use the embedded
 * registry's sample image, `samples/hello:v1`, signed with a browser key made on the walkthrough.
 * At 390 px the verified link's screenshot is also written to
 * test-results/e2e/…/verification-link-390.png, the picture in the README
 * (docs/verification-link-phone.png is a copy of it).
 */
import { expect, test, type Page } from '@playwright/test';
import { conformanceCases } from '../conformance.ts';
import { addVirtualAuthenticator } from './helpers.ts';
import { checkState, checkWidths, heightFor, hold, WIDTHS } from './layout-check.ts';

// The widths are independent: two workers take two at a time.
test.describe.configure({ mode: 'parallel' });

const status = (page: Page) => page.getByRole('status');
const verdict = (page: Page) => status(page).filter({ hasText: /^\s*(Verified|Not verified)/ });

for (const width of WIDTHS) {
  test(`every page at ${width} px: no sideways scrolling, no serious axe findings`, async ({ browser }, info) => {
    test.setTimeout(300_000);
    const context = await browser.newContext({ viewport: { width, height: heightFor(width) } });
    const page = await context.newPage();
    const check = (state: string) => checkState(page, info, width, state);

    // Empty pages, on a browser that has never been here.
    await page.goto('/');
    await expect(page).toHaveURL(/#\/welcome$/);
    await check('welcome');
    for (const p of ['keys', 'verify', 'verify-file', 'inspect', 'tree', 'copy']) {
      await page.goto(`/#/${p}`);
      await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
      await check(`${p}-empty`);
    }
    await page.goto('/#/sign');
    const image = page.getByLabel('Image reference');
    await expect(image).toHaveValue(/\/samples\/hello:v1$/);
    const sample = await image.inputValue();
    const host = sample.split('/')[0]!;
    await check('sign-empty');
    // The whole reference shows in its field: "Look up" goes under it where both do not fit.
    expect.soft(await image.evaluate((el: HTMLInputElement) => el.scrollWidth <= el.clientWidth)).toBe(true);

    // The walkthrough: a key, the sample signed, its verification link.
    await page.goto('/#/welcome');
    const step1 = page.getByRole('listitem', { name: 'Step 1: make a signing key' });
    await step1.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(step1).toContainText('Done:', { timeout: 60_000 });
    await page.getByRole('link', { name: 'Sign the sample image' }).click();
    await expect(image).toHaveValue(sample);
    await page.getByRole('button', { name: 'Sign', exact: true }).click();
    await expect(status(page)).toContainText(/^\s*Signed sha256:/, { timeout: 60_000 });
    await expect(page.getByRole('img', { name: 'QR code of the verification link' })).toBeVisible();
    await check('sign-result');
    const href = await page.getByRole('link', { name: 'Verification link', exact: true }).getAttribute('href');
    const link = new URL(href ?? '', page.url()).hash;
    expect(link).toMatch(/^#\/verify\?/);

    await page.goto('/#/keys');
    // The key's name gets a line's width, not a word a line beside its buttons.
    const keyName = page.getByText(/^browser key ECDSA P-256 [0-9a-f]{8}$/).first();
    await expect(keyName).toBeVisible();
    expect((await keyName.boundingBox())?.width).toBeGreaterThan(150);
    await check('keys-one-key');

    // As whoever the link is sent to sees it: a tab that did not make it (no walkthrough steps).
    await page.reload();
    await page.goto(`/${link}`);
    await expect(verdict(page)).toContainText(/^\s*Verified/, { timeout: 60_000 });
    await expect(page.getByRole('navigation', { name: 'Walkthrough' })).toHaveCount(0);
    await check('verify-link-verified');
    // The QR code's note (a phone cannot open a localhost link) reads as lines, not a column under the code.
    const qrNote = page.getByRole('note').filter({ hasText: 'A phone cannot open this link' });
    expect.soft((await qrNote.boundingBox())?.width).toBeGreaterThan(250);
    if (width === 390) {
      await page.screenshot({ path: info.outputPath('verification-link-390.png') });
    }

    // A link to a tag that is not there: an answer that says why.
    const params = new URLSearchParams(link.slice(link.indexOf('?') + 1));
    params.set('image', `${host}/samples/hello:missing`);
    const missing = `#/verify?${params.toString()}`;
    await page.goto(`/${missing}`);
    // The registry's 404, however the page lays the verdict out.
    await expect(page.getByText(/^\s*Not verified/).first()).toBeVisible({ timeout: 60_000 });
    await check('verify-link-error');

    await page.goto(`/#/inspect?image=${encodeURIComponent(sample)}`);
    await expect(status(page)).toContainText('every digest matches', { timeout: 60_000 });
    // A digest in the digest table is readable: at least 24 characters a line.
    const digestCell = page
      .getByRole('table', { name: 'Digests of the manifest' })
      .getByRole('cell', { name: /^sha256:/ });
    expect((await digestCell.first().boundingBox())?.width).toBeGreaterThan(180);
    await check('inspect-result');
    await page.goto(`/#/inspect?image=${encodeURIComponent(`${host}/samples/hello:missing`)}`);
    await expect(page.locator('.status.error')).toBeVisible({ timeout: 60_000 });
    await check('inspect-error');

    await page.goto(link.replace('#/verify?', '#/tree?'));
    await expect(status(page)).toContainText(/signatures?, \d+ attestations?/, { timeout: 60_000 });
    await expect(page.getByRole('img', { name: 'verified' }).first()).toBeVisible();
    await check('tree-result');

    await page.goto('/#/copy');
    await page.getByLabel('Source image').fill(sample);
    await page.getByLabel('Destination image').fill(`${host}/layout/w${width}:v1`);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await expect(status(page)).toContainText(/^\s*Copied sha256:/, { timeout: 120_000 });
    await check('copy-result');

    await context.close();
  });
}

const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });
/** Requests to the registries, through the relay, that write (the reads go on). */
const writes = (r: { method: () => string }) => r.method() === 'POST' || r.method() === 'PUT';

// The working states: each page's long action held on its first request (released once checked), so
// its progress is on screen while every width is looked at. One page, resized.
test('working states at every width, each held on its request: Sign in the walkthrough, a verification link, Verify, Inspect, Tree, Copy; and their errors', async ({
  page,
}, info) => {
  test.setTimeout(600_000);
  const check = (state: string) => checkWidths(page, info, state);
  await page.goto('/#/welcome');
  const step1 = page.getByRole('listitem', { name: 'Step 1: make a signing key' });
  await step1.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(step1).toContainText('Done:', { timeout: 60_000 });
  await check('welcome-step-2');

  await page.getByRole('link', { name: 'Sign the sample image' }).click();
  const image = page.getByLabel('Image reference');
  await expect(image).toHaveValue(/\/samples\/hello:v1$/);
  const sample = await image.inputValue();
  const host = sample.split('/')[0]!;
  const push = await hold(page, '**/relay/**', writes);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await push.arrived;
  await expect(page.getByRole('progressbar')).toBeVisible();
  await check('sign-working');
  await push.release();
  await expect(status(page)).toContainText(/^\s*Signed sha256:/, { timeout: 60_000 });
  const href = await page.getByRole('link', { name: 'Verification link', exact: true }).getAttribute('href');
  const link = new URL(href ?? '', page.url()).hash;
  await page.goto('/#/welcome');
  await expect(page.getByRole('link', { name: 'Open the verification link' })).toBeVisible();
  await check('welcome-step-3');

  // Reading the registry, held: a verification link, the Verify form, Inspect, Tree.
  const reads = async (state: string, open: () => Promise<unknown>): Promise<void> => {
    const held = await hold(page, '**/relay/**');
    await open();
    await held.arrived;
    await expect(page.locator('.status.working, .verdict.working').first()).toBeVisible();
    await check(state);
    await held.release();
  };
  await reads('verify-link-working', () => page.goto(`/${link}`));
  await expect(verdict(page)).toContainText(/^\s*Verified/, { timeout: 60_000 });
  await page.goto('/#/verify');
  await page.getByLabel('Image reference').fill(sample);
  await page.getByLabel('My keys').selectOption({ index: 1 });
  await reads('verify-working', () => page.getByRole('button', { name: 'Verify', exact: true }).click());
  await expect(verdict(page)).toContainText(/^\s*Verified/, { timeout: 60_000 });
  await check('verify-result');
  await page.getByLabel('Image reference').fill('');
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await expect(page.getByLabel('Image reference')).toHaveAttribute('aria-invalid', 'true');
  await check('verify-form-error');
  await reads('inspect-working', () => page.goto(`/#/inspect?image=${encodeURIComponent(sample)}`));
  await expect(status(page)).toContainText('every digest matches', { timeout: 60_000 });
  await reads('tree-working', () => page.goto(link.replace('#/verify?', '#/tree?')));
  await expect(status(page)).toContainText(/signatures?, \d+ attestations?/, { timeout: 60_000 });
  await page.goto(`/#/tree?image=${encodeURIComponent(`${host}/samples/hello:missing`)}`);
  await expect(page.locator('.status.error')).toBeVisible({ timeout: 60_000 });
  await check('tree-error');

  await page.goto('/#/sign');
  await image.fill(`${host}/samples/hello:missing`);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await expect(page.locator('.status.error')).toBeVisible({ timeout: 60_000 });
  await check('sign-error');

  // Copy: held on its first write to the destination, with its progress over bytes.
  await page.goto('/#/copy');
  await page.getByLabel('Source image').fill(sample);
  await page.getByLabel('Destination image').fill(`${host}/layout/working:v1`);
  const upload = await hold(page, '**/relay/**', writes);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await upload.arrived;
  await expect(page.getByRole('progressbar', { name: 'Bytes copied' })).toBeVisible();
  await check('copy-working');
  await upload.release();
  await expect(status(page)).toContainText(/^\s*Copied sha256:/, { timeout: 120_000 });
  await page.getByLabel('Destination image').fill('registry.invalid/layout/elsewhere:v1');
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(page.locator('.status.error')).toBeVisible({ timeout: 60_000 });
  await check('copy-error');
});

interface HsmInfo {
  apiToken: string;
}

test('Keys at every width: a passkey being created, cancelled, made; a cosign key held in scrypt; the PKCS#11 connect form refused, working, connected', async ({
  page,
}, info) => {
  test.setTimeout(600_000);
  const check = (state: string) => checkWidths(page, info, state);
  // The Keys page starts its scrypt worker as it opens (so an unlock does not wait for it): the
  // worker's script is held from the start, so the cosign key made below waits in "working".
  const scrypt = await hold(page, /scrypt\.worker/);
  await page.goto('/#/keys');
  // WebAuthn in the DevTools' virtual environment with no authenticator: the request waits.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('Creating a passkey…');
  await check('keys-passkey-working');
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(status(page)).toContainText('PASSKEY_CANCELLED');
  await check('keys-passkey-cancelled');
  await addVirtualAuthenticator(page, true);
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('Key ready: passkey key', { timeout: 60_000 });
  await check('keys-passkey-made');

  // A new cosign key: scrypt runs in the worker whose script is held.
  await page.getByLabel('New key password').fill('layout check');
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await scrypt.arrived;
  await expect(page.getByRole('progressbar')).toBeVisible();
  await check('keys-scrypt-working');
  await scrypt.release();
  await expect(status(page)).toContainText('Key ready', { timeout: 60_000 });

  const apiToken = (JSON.parse(process.env['COSIGN_WEB_PKCS11']!) as HsmInfo).apiToken;
  const card = page.getByRole('region', { name: 'Hardware key (PKCS#11)' });
  await page.getByLabel('Relay access token').fill('not the token');
  await card.getByRole('button', { name: 'Connect' }).click();
  await expect(status(page)).toContainText('PKCS11_UNAUTHORIZED');
  await check('pkcs11-refused');
  const listing = await hold(page, '**/pkcs11/keys', (r) => r.headers()['authorization'] !== undefined);
  await page.getByLabel('Relay access token').fill(apiToken);
  await card.getByRole('button', { name: 'Connect' }).click();
  await listing.arrived;
  await check('pkcs11-working');
  await listing.release();
  await expect(status(page)).toContainText('Key ready: 2 hardware keys (PKCS#11) from the relay');
  // The cosign key generated before is not offered beside Connect, as if connecting had made it.
  await expect(page.getByRole('region', { name: 'Key just made or unlocked' })).toHaveCount(0);
  await check('pkcs11-connected');
});

test('Verify file at every width: hashing (held), verified, not verified', async ({ page }, info) => {
  test.setTimeout(300_000);
  const check = (state: string) => checkWidths(page, info, state);
  const c = conformanceCases().find((k) => k.name === 'happy-path-v0.3')!;
  await page.goto('/#/verify-file');
  const hashing = await hold(page, /(hash|read)\.worker/);
  await field(page, 'File to verify').setInputFiles(c.artifactPath);
  await hashing.arrived;
  await expect(status(page)).toContainText('Hashing');
  await check('verify-file-working');
  await hashing.release();
  await expect(field(page, 'File digest')).toHaveValue(c.artifactDigest);
  await field(page, 'Sigstore bundle').setInputFiles(c.bundlePath);
  await field(page, 'Certificate identity').fill(c.identity);
  await field(page, 'Certificate OIDC issuer').fill(c.issuer);
  await page.getByRole('button', { name: 'Verify file' }).click();
  await expect(verdict(page)).toContainText(/^\s*Verified/, { timeout: 60_000 });
  await check('verify-file-result');
  await field(page, 'Certificate identity').fill('someone-else@example.com');
  await page.getByRole('button', { name: 'Verify file' }).click();
  await expect(verdict(page)).toContainText(/^\s*Not verified/, { timeout: 60_000 });
  await check('verify-file-error');
});

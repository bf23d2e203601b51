/**
 * Issue #13, items 9 and 11, in Chromium against the real server and registries: an error shows
 * its sentence and its code once, as a chip, on every page; the tab title and the page heading
 * name the page as the navigation does; the walkthrough's signing step is a short form with
 * "Step 2 of 3", a way back and a way on; Copy shows a small image's sizes in bytes or KiB and
 * no speed; the remove dialog opens on Cancel; a QR code of a localhost link says a phone
 * cannot open it.
 */
import { generateKeyPairSync } from 'node:crypto';
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { pushSampleImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { tempFile } from './helpers.ts';

const LONG = { timeout: 60_000 };
const regs = () => registriesFromEnv()!;
const status = (page: Page) => page.getByRole('status');
const tls = () => ({ host: regs().tls.host, caFile: regs().tls.caFile });

async function browserKey(page: Page): Promise<void> {
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready', LONG);
}

/** The status line's error: the sentence, then the code once, as a chip, never "(CODE)". */
async function expectCodeChip(page: Page, code: string): Promise<void> {
  const line = status(page).filter({ has: page.locator('.err-code') });
  await expect(line.locator('.err-code')).toHaveText(code, LONG);
  await expect(line.locator('.err-code')).toHaveCount(1);
  const text = (await line.textContent()) ?? '';
  expect(text.split(code).length - 1, text).toBe(1);
  expect(text).not.toContain(`(${code})`);
  expect(text.trim().length).toBeGreaterThan(code.length + 10);
}

test('an error shows its code once, as a chip, on Inspect, Tree, Copy, Sign and Keys', async ({ page }) => {
  await page.goto('/#/inspect');
  await page.getByLabel('Image reference').fill('Not A Reference');
  await page.getByRole('button', { name: 'Inspect' }).click();
  await expectCodeChip(page, 'REGISTRY_REFERENCE_INVALID');

  await page.goto('/#/tree');
  await page.getByLabel('Image reference').fill('Not A Reference');
  await page.getByLabel('Image reference').press('Enter');
  await expectCodeChip(page, 'REGISTRY_REFERENCE_INVALID');

  const image = await pushSampleImage(tls(), 'e2e/wording-same', 'v1');
  await page.goto('/#/copy');
  await page.getByLabel('Source image').fill(image.tagRef);
  await page.getByLabel('Destination image').fill(image.tagRef);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expectCodeChip(page, 'MANAGE_SAME_IMAGE');

  await page.goto('/#/keys');
  await page.getByLabel('Cosign private key').setInputFiles(tempFile('cosign.key', 'not a key\n'));
  await page.getByLabel('Key password', { exact: true }).fill('pw');
  await page.getByRole('button', { name: 'Unlock key' }).click();
  const keysCode = (await status(page).locator('.err-code').textContent(LONG)) ?? '';
  expect(keysCode).toMatch(/^KEY_[A-Z_]+$/);
  await expectCodeChip(page, keysCode);

  await browserKey(page);
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(`${regs().tls.host}/e2e/nothing:here`);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText('said 404', LONG);
  const signCode = (await status(page).locator('.err-code').textContent()) ?? '';
  expect(signCode).toMatch(/^[A-Z][A-Z_]+$/);
  await expectCodeChip(page, signCode);
});

test('each page has its own tab title, and its heading says what the navigation calls it', async ({ page }) => {
  await page.goto('/#/keys');
  const nav = page.getByRole('navigation', { name: 'Main' });
  for (const name of ['Start', 'Keys', 'Sign', 'Verify', 'Verify file', 'Inspect', 'Tree', 'Copy']) {
    await nav.getByRole('link', { name, exact: true }).click();
    await expect(page).toHaveTitle(`${name} — cosign-web`);
    // "Tree: signatures and attachments", "Verify a file": the navigation's words, in order.
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(
      new RegExp(`^${name.split(' ').join(' (a )?')}\\b`),
    );
  }
  await page.goto('/#/nowhere');
  await expect(page).toHaveTitle('Page not found — cosign-web');
});

for (const viewport of [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
]) {
  test(`walkthrough at ${viewport.width} px: a short signing step with its Sign button in view, step 2 of 3, back and on`, async ({
    page,
  }) => {
    await page.setViewportSize(viewport);
    await page.goto('/#/welcome');
    await expect(page.getByText('Step 1 of 3')).toBeVisible();
    await page.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(page.getByText('Step 2 of 3')).toBeVisible(LONG);

    // The sample is copied to a repository of this test's own, so signing it twice stacks nothing.
    const image = await pushSampleImage(tls(), `e2e/wording-walk-${viewport.width}`, 'v1');
    await page.goto(`/#/sign?image=${encodeURIComponent(image.tagRef)}&walkthrough=1`);
    const walk = page.getByRole('navigation', { name: 'Walkthrough' });
    await expect(walk).toContainText('Step 2 of 3');
    await expect(page.getByLabel('Image reference')).toHaveValue(image.tagRef);
    await expect(page.getByLabel('Signing key')).toHaveValue(/.+/);
    const sign = page.getByRole('button', { name: 'Sign', exact: true });
    await expect(sign).toBeInViewport({ ratio: 1 });
    // The expert's choices are folded away: present, not in the way.
    await expect(page.getByText('Advanced', { exact: true })).toBeVisible();
    await expect(page.getByText('docker-reference')).toBeHidden();
    await expect(page.getByLabel('Registry username')).toBeHidden();
    await expect(page.getByRole('radio', { name: /External signer/ })).toBeHidden();
    await page.screenshot({ path: test.info().outputPath(`guided-sign-${viewport.width}.png`) });
    const axe = await new AxeBuilder({ page }).analyze();
    expect(axe.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
    await expect(walk.getByRole('link', { name: 'Back to step 1' })).toHaveAttribute('href', '#/welcome');

    await sign.click();
    await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
    // A digest or fingerprint cut short is not followed by a full stop ("…." read as a typo).
    await expect(status(page)).not.toContainText('….');
    await walk.getByRole('link', { name: /^Next: step 3/ }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Start');
    await expect(page.getByText('Step 3 of 3')).toBeVisible();
    await expect(page.getByRole('link', { name: 'Open the verification link' })).toBeVisible();
  });
}

test('the walkthrough links its signing step to the short form', async ({ page }) => {
  await page.goto('/#/welcome');
  await expect(page.getByRole('link', { name: 'Sign the sample image' })).toHaveAttribute(
    'href',
    /^#\/sign\?image=.+&walkthrough=1$/,
  );
});

test('Copy of a small image: sizes in bytes or KiB, no meaningless speed; its button outside the optional verify card', async ({
  page,
}) => {
  const image = await pushSampleImage(tls(), 'e2e/wording-copy', 'v1');
  await page.goto('/#/copy');
  await expect(page.getByRole('region', { name: 'Verify the copy' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Verify the copy' }).getByRole('button', { name: 'Copy' })).toHaveCount(
    0,
  );
  await page.getByLabel('Source image').fill(image.tagRef);
  await page.getByLabel('Destination image').fill(`${regs().tls.host}/e2e/wording-copy-dest:v1`);
  // Every text the status line shows while copying, not only the last.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { seen: string[] }).seen = seen;
    const line = document.querySelector('[role=status]')!;
    new MutationObserver(() => seen.push(line.textContent ?? '')).observe(line, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(status(page)).toContainText(`Copied ${image.digest}`, LONG);
  const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
  expect(seen.length).toBeGreaterThan(0);
  for (const t of seen) {
    expect(t).not.toMatch(/\bMB\b|\b0\.0 [KMG]iB/);
  }
  const copied = page.getByRole('region', { name: 'What was copied' });
  await expect(copied).toContainText(/— \d+(\.\d)? (B|KiB) sent/);
  await expect(copied).not.toContainText('MB');
});

test('the remove dialog opens on Cancel, the safe choice', async ({ page }) => {
  const image = await pushSampleImage(tls(), 'e2e/wording-remove', 'v1');
  await browserKey(page);
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await page.goto(`/#/tree?image=${encodeURIComponent(image.tagRef)}`);
  const removable = page.getByRole('button', { name: 'Remove signature' });
  await expect(removable.first()).toBeVisible(LONG);
  const before = await removable.count();
  await removable.first().click();
  const dialog = page.getByRole('dialog');
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(dialog).toBeHidden();
  await expect(removable).toHaveCount(before);
});

test('a QR code of a localhost link says a phone cannot open it, and what to do', async ({ page, baseURL }) => {
  expect(new URL(baseURL!).hostname).toBe('localhost');
  const image = await pushSampleImage(tls(), 'e2e/wording-qr', 'v1');
  await browserKey(page);
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  const share = page.getByRole('region', { name: 'Share the verification' });
  await expect(share.getByRole('img', { name: 'QR code of the verification link' })).toBeVisible();
  await expect(share.getByRole('note')).toContainText('A phone cannot open this link');
  await expect(share.getByRole('note')).toContainText('PUBLIC_ORIGINS');
});

test('a trusted key is named in one sentence, its full stop beside the name ("My release key.", not "… key .")', async ({
  page,
}) => {
  // A key that is not one of the page's own (those are named as "your own key"), trusted by name.
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'pem',
  }) as string;
  const image = `${regs().tls.host}/e2e/wording-none@sha256:${'a'.repeat(64)}`;
  await page.goto(`/#/verify?image=${encodeURIComponent(image)}&key=${encodeURIComponent(pem)}`);
  await page.getByLabel('Name for this key').fill('My release key');
  await page.getByRole('button', { name: 'Trust this key' }).click();
  const banner = page.getByRole('region', { name: 'Key supplied by this link' });
  await expect(banner).toContainText('This is the key you trust as My release key.');
  // As laid out, not only as text: innerText breaks lines between flex items.
  expect((await banner.innerText()).replace(/\s+/g, ' ')).toContain('trust as My release key.');
});

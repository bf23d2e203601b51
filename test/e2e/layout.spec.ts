/**
 * Every page, in the states a visitor reaches without setup (empty, a result, an error), at 360,
 * 390, 768 and 1280 px wide in Chromium: the page never scrolls sideways and no element is wider
 * than the viewport, and axe-core (https://github.com/dequelabs/axe-core) finds nothing at the
 * serious or critical levels. Each state's screenshot is attached to the test (a kept artifact).
 * One browser context per width; the states use the embedded registry's sample image,
 * `samples/hello:v1`, signed with a browser key made on the walkthrough. At 390 px the verified
 * link's screenshot is also written to test-results/e2e/…/verification-link-390.png, the picture
 * in the README (docs/verification-link-phone.png is a copy of it).
 */
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page, type TestInfo } from '@playwright/test';

const WIDTHS = [360, 390, 768, 1280] as const;

// The widths are independent: two workers take two at a time.
test.describe.configure({ mode: 'parallel' });

/** Elements that stick out past the viewport's right edge and are not inside a scrolling box. */
function overflowing(): { scrollWidth: number; clientWidth: number; wide: string[] } {
  const root = document.documentElement;
  const vw = root.clientWidth;
  const clipped = (el: Element): boolean => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden' || ox === 'clip') return true;
    }
    return false;
  };
  const wide: string[] = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > vw + 1 || r.left < -1) && !clipped(el)) {
      const cls = typeof el.className === 'string' && el.className ? `.${el.className.split(' ').join('.')}` : '';
      wide.push(
        `${el.tagName.toLowerCase()}${cls} [${Math.round(r.left)}–${Math.round(r.right)}] ${(el.textContent ?? '').trim().slice(0, 60)}`,
      );
    }
  }
  return { scrollWidth: root.scrollWidth, clientWidth: vw, wide: wide.slice(0, 10) };
}

/** Checks one state: no sideways scrolling, no serious or critical axe findings; attaches its screenshot. */
async function checkState(page: Page, info: TestInfo, width: number, state: string): Promise<void> {
  const o = await page.evaluate(overflowing);
  expect.soft(o.wide, `${state} at ${width} px: elements past the viewport`).toEqual([]);
  expect.soft(o.scrollWidth, `${state} at ${width} px: the page scrolls sideways`).toBeLessThanOrEqual(o.clientWidth);
  const axe = await new AxeBuilder({ page }).analyze();
  const bad = axe.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect.soft(bad, `${state} at ${width} px: axe-core findings`).toEqual([]);
  const path = info.outputPath(`${state}-${width}.png`);
  await page.screenshot({ path, fullPage: true });
  await info.attach(`${state}-${width}`, { path, contentType: 'image/png' });
}

const status = (page: Page) => page.getByRole('status');
const verdict = (page: Page) => status(page).filter({ hasText: /^\s*(Verified|Not verified)/ });

for (const width of WIDTHS) {
  test(`every page at ${width} px: no sideways scrolling, no serious axe findings`, async ({ browser }, info) => {
    test.setTimeout(300_000);
    const context = await browser.newContext({ viewport: { width, height: width < 700 ? 844 : 800 } });
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

    await page.goto(`/${link}`);
    await expect(verdict(page)).toContainText(/^\s*Verified/, { timeout: 60_000 });
    await check('verify-link-verified');
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

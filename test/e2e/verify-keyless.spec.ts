/**
 * #/verify on keyless images, driven by its labels in Chromium through the real relay and
 * registry: legacy signatures made with the real cosign 2.5 (`attach signature` with a Fulcio-like
 * certificate from a test CA and a Rekor v1 SET) and a cosign 3.1 bundle with a log entry. The
 * viewer loads the test's trusted root with "Trusted root file", names the identity and issuer, and
 * the page says what cosign 3.1 says; a link carries it all and verifies at once once the root is
 * held. Screenshots at phone and desktop widths land in test-results/e2e/; the certificate verdicts
 * pass test/e2e/layout-check.ts at every width.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { verificationLink } from '../../shared/cosign/link.ts';
import { makeKeylessFixtures, type VariantVerdicts } from '../rig/keyless-images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { makeToolHome, type ToolHome } from '../rig/tools.ts';
import { checkWidths } from './layout-check.ts';

const SHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'e2e');
let home: ToolHome;
let fxDir: string;
let fx: Awaited<ReturnType<typeof makeKeylessFixtures>>;
const variant = (n: string): VariantVerdicts => fx.variants.find((v) => v.name === n)!;
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });

test.beforeAll(async () => {
  test.setTimeout(240_000);
  home = await makeToolHome('cosign-web-e2e-keyless-');
  const regs = registriesFromEnv()!;
  fx = await makeKeylessFixtures({
    home,
    registry: { host: regs.tls.host, caFile: regs.tls.caFile },
    dir: (fxDir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-keyless-fx-'))),
    repoPrefix: 'e2e-keyless',
    only: ['good', 'otherIdentity', 'bundleLogGood'],
  });
});
test.afterAll(async () => {
  await home.cleanup();
  rmSync(fxDir, { recursive: true, force: true });
});

async function fillAndVerify(page: Page, v: VariantVerdicts, identity = v.identity): Promise<void> {
  await page.getByLabel('Image reference').fill(v.ref);
  await page.getByLabel('Certificate identity', { exact: true }).fill(identity);
  await page.getByLabel('Certificate OIDC issuer', { exact: true }).fill(v.issuer);
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
}

test('keyless signatures verified against a loaded trusted root, by identity and issuer', async ({ page }) => {
  await page.goto('/#/verify');
  await page.getByLabel('Trusted root file').setInputFiles(fx.trust.trustedRoot);
  const sha = createHash('sha256').update(readFileSync(fx.trust.trustedRoot)).digest('hex');
  await expect(page.getByLabel('Trust root', { exact: true })).toHaveValue(`sha256:${sha}`);

  for (const name of ['good', 'bundleLogGood']) {
    const v = variant(name);
    expect(v.verdicts.cosign3.accepted, name).toBe(true);
    await fillAndVerify(page, v);
    await expect(verdict(page)).toHaveText(/^Verified/, { timeout: 60_000 });
    await expect(page.getByRole('region', { name: 'Verification result' })).toContainText(v.identity);
  }
  // The certificate verdict at every width: no sideways scrolling, no serious axe findings (#13).
  await checkWidths(page, test.info(), 'verify-keyless-verified');
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(SHOTS, 'verify-keyless-desktop.png'), fullPage: true });
  await page.setViewportSize({ width: 360, height: 780 });
  // Nothing may be wider than a phone's window: long identities, digests and links wrap.
  const wide = await page.evaluate(() =>
    Array.from(document.querySelectorAll('body *'))
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
      .map(
        (el) => `${el.tagName.toLowerCase()}.${String(el.className).split(' ')[0]}: ${el.textContent?.slice(0, 40)}`,
      ),
  );
  expect(wide).toEqual([]);
  const texts = await page.evaluate(() => {
    const out: string[] = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const r = document.createRange();
      r.selectNodeContents(n);
      if (Array.from(r.getClientRects()).some((q) => q.right > window.innerWidth + 1))
        out.push(
          `${n.parentElement?.tagName.toLowerCase()}.${String(n.parentElement?.className).split(' ')[0]}: ${n.textContent?.slice(0, 40)}`,
        );
    }
    return out;
  });
  expect(texts).toEqual([]);
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
  await page.screenshot({ path: join(SHOTS, 'verify-keyless-phone.png'), fullPage: true });

  const bad = variant('otherIdentity');
  expect(bad.verdicts.cosign3.accepted).toBe(false);
  await fillAndVerify(page, bad, 'alice@rig.test');
  await expect(verdict(page)).toHaveText(/^Not verified: .*identity/, { timeout: 60_000 });
  await expect(page.getByRole('region', { name: 'Verification result' })).toContainText('VERIFY_IDENTITY_MISMATCH');
  await checkWidths(page, test.info(), 'verify-keyless-mismatch', 360);

  // The same image under a regular expression that does not match, then one RE2 cannot read.
  const good = variant('good');
  await page.getByLabel('Image reference').fill(good.ref);
  await page.getByLabel('Certificate identity', { exact: true }).fill('');
  await page.getByLabel('Certificate identity (regular expression)').fill('^bob@');
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await expect(verdict(page)).toHaveText(/^Not verified/, { timeout: 60_000 });
  await page.getByLabel('Certificate identity (regular expression)').fill('(?=alice)');
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: .*RE2/, { timeout: 60_000 });
});

test('a keyless verification link: asks for the root it names, then verifies at once', async ({ page, baseURL }) => {
  const v = variant('good');
  const sha = createHash('sha256').update(readFileSync(fx.trust.trustedRoot)).digest('hex');
  const link = verificationLink(baseURL!, {
    image: v.ref,
    sigstore: {
      policy: { certificateIdentity: v.identity, certificateOidcIssuer: v.issuer },
      trustedRoot: `sha256:${sha}`,
    },
  });
  expect(link).toContain('certificateIdentity=');
  expect(link).not.toContain('key=');
  await page.goto(link);
  await expect(verdict(page)).toHaveText(/^Not verified: .*does not hold/, { timeout: 60_000 });
  await expect(page.getByRole('region', { name: 'Verification result' })).toContainText('VERIFY_TRUSTED_ROOT_UNKNOWN');
  await page.getByLabel('Trusted root file').setInputFiles(fx.trust.trustedRoot);
  await expect(page.getByLabel('Trust root', { exact: true })).toHaveValue(`sha256:${sha}`); // stored and chosen
  await page.reload();
  await expect(verdict(page)).toHaveText(/^Verified/, { timeout: 60_000 });
});

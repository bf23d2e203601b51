/**
 * The first-run walkthrough on a fresh browser, with nothing but the server: make a key, sign the
 * embedded registry's sample image, open the verification link and see "Verified". Screenshots of
 * the three steps are kept as test artifacts (test-results/e2e/…/step-*.png).
 */
import { expect, test } from '@playwright/test';

test('walkthrough: generate a key, sign the sample image, the link says Verified', async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/#\/welcome$/);
  const step1 = page.getByRole('listitem', { name: 'Step 1: make a signing key' });
  await expect(step1).toContainText('A key signs images');
  await page.screenshot({ path: test.info().outputPath('step-1-key.png'), fullPage: true });

  await step1.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(step1).toContainText('Done:');
  await page.screenshot({ path: test.info().outputPath('step-2-sign.png'), fullPage: true });

  await page.getByRole('link', { name: 'Sign the sample image' }).click();
  const image = page.getByLabel('Image reference');
  await expect(image).toHaveValue(/^127\.0\.0\.1:\d+\/samples\/hello:v1$/);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(page.getByRole('status')).toContainText(/^Signed sha256:/, { timeout: 60_000 });

  await page.getByRole('link', { name: 'Start' }).click();
  await expect(page.getByRole('listitem', { name: 'Step 2: sign the sample image' })).toContainText('Done:');
  await page.screenshot({ path: test.info().outputPath('step-3-link.png'), fullPage: true });
  await page.getByRole('link', { name: 'Open the verification link' }).click();
  await expect(page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(/^Verified/, {
    timeout: 60_000,
  });
  await page.screenshot({ path: test.info().outputPath('step-3-verified.png'), fullPage: true });
});

test('the Sign page starts with the sample image when the embedded registry is on', async ({ page }) => {
  await page.goto('/#/sign');
  await expect(page.getByLabel('Image reference')).toHaveValue(/\/samples\/hello:v1$/);
});

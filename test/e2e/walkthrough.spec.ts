/**
 * The first-run walkthrough on a fresh browser, with nothing but the server: make a key, sign the
 * embedded registry's sample image, open the verification link and see "Verified". Screenshots of
 * the three steps are kept as test artifacts (test-results/e2e/…/step-*.png). The way from step 2
 * to 3 (and back) sits beside the sign result, and the verification page the walkthrough opens
 * leads back to its steps.
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

test('step 2 → 3 and back beside the sign result, also when "sign again?" is declined; the verification page leads back to step 3', async ({
  page,
}) => {
  const status = page.getByRole('status');
  await page.goto('/#/welcome');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(page.getByText('Step 2 of 3')).toBeVisible({ timeout: 60_000 });
  await page.getByRole('link', { name: 'Sign the sample image' }).click();
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await expect(status).toContainText(/^Signed sha256:/, { timeout: 60_000 });
  // Where the person who just signed looks: right under the result, on screen.
  const next = page.getByRole('navigation', { name: 'Step 2 done' });
  const onward = next.getByRole('link', { name: 'Next: step 3, open the verification link' });
  await expect(onward).toBeInViewport();
  await expect(next.getByRole('link', { name: 'Back to step 1' })).toHaveAttribute('href', '#/welcome');
  const said = (await status.boundingBox())!;
  expect((await next.boundingBox())!.y - (said.y + said.height)).toBeLessThan(48);

  // A second visit (this tab forgot the link): the image is already signed by this key; declining
  // to sign again still leads on, to a link that verifies the signature already there.
  await page.reload();
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  await expect(page.getByText(/^Already signed by this key/)).toBeVisible({ timeout: 60_000 });
  await page.getByRole('button', { name: "Don't sign" }).click();
  await expect(status).toContainText('Not signed again');
  await onward.click();
  await expect(page.getByText('Step 3 of 3')).toBeVisible();
  await page.getByRole('link', { name: 'Open the verification link' }).click();

  const walk = page.getByRole('navigation', { name: 'Walkthrough' });
  await expect(walk).toContainText('Step 3 of 3');
  await expect(page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(/^Verified/, {
    timeout: 60_000,
  });
  await walk.getByRole('link', { name: 'Back to step 3' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Start');
  await expect(page.getByText('Step 3 of 3')).toBeVisible();
  // The same link opened anywhere else (here: a reload, which forgets the walkthrough) has no steps.
  await page.getByRole('link', { name: 'Open the verification link' }).click();
  await page.reload();
  await expect(page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(/^Verified/, {
    timeout: 60_000,
  });
  await expect(walk).toHaveCount(0);
});

/**
 * The Sign page's feedback (issue #13, items 3, 4 and 10), through the real relay to the real
 * registries: the embedded registry signs as `localhost:<port>`; a relay refusal shows the relay's
 * own sentence with its code once; the look-up result is brought into the viewport and focused at
 * 390 × 844; signing an image this key signed already asks "sign again?", and the answer decides
 * what the registry holds (counted from the registry, not from the page).
 */
import { expect, test, type Page } from '@playwright/test';
import { RegistryClient } from '../../shared/registry/client.ts';
import { buildTree } from '../../shared/ops/tree.ts';
import { pushSampleImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { caFetch } from '../integration/ca-fetch.ts';

const regs = () => registriesFromEnv()!;
const status = (page: Page) => page.getByRole('status');
/** Signing through the relay on a loaded 2-core machine. */
const LONG = { timeout: 60_000 };

async function browserKey(page: Page): Promise<void> {
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready', LONG);
  await page.goto('/#/sign');
}

async function clickSign(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
}

/** Legacy .sig layers and bundle referrers on the image's manifest, read from the registry itself. */
async function signatureCount(ref: string): Promise<{ legacy: number; bundle: number }> {
  const client = new RegistryClient({ fetch: caFetch(regs().tls.caFile) });
  const tree = await buildTree(client, { image: ref });
  const bundles = tree.root.referrers.items.filter((i) => i.kind === 'signature');
  return { legacy: tree.root.sig.items.length, bundle: bundles.length };
}

test('the embedded registry signs as localhost:<port>, as the README names it', async ({ page }) => {
  await browserKey(page);
  const field = page.getByLabel('Image reference');
  await expect(field).toHaveValue(/^127\.0\.0\.1:\d+\/samples\/hello:v1$/);
  const ref = (await field.inputValue()).replace(/^127\.0\.0\.1:/, 'localhost:');
  await field.fill(ref);
  await clickSign(page);
  await expect(status(page)).toContainText(/^Signed sha256:[0-9a-f]{64}/, LONG);
});

test("a relay refusal on Sign shows the relay's own sentence, the code once", async ({ page, request }) => {
  const answer = await request.get('/relay/evil.example/v2/team/app/manifests/v1');
  const { code, message } = (await answer.json()) as { code: string; message: string };
  expect(code).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
  await browserKey(page);
  await page.getByLabel('Image reference').fill('evil.example/team/app:v1');
  await clickSign(page);
  await expect(status(page)).toHaveText(`${message} ${code}`);
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(status(page)).toHaveText(`${message} ${code}`);
});

test('at 390 × 844 the look-up result is scrolled into view and focused', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/sign-look-up', 'v1');
  await browserKey(page);
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Look up' }).click();
  const result = page.getByRole('region', { name: 'What will be signed' });
  await expect(result).toContainText(image.digest);
  await expect(result).toBeFocused();
  await expect(result).toBeInViewport();
  // A failed look-up: the sentence is brought to the person too.
  await page.getByLabel('Image reference').fill(`${r.tls.host}/e2e/sign-look-up:missing`);
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(status(page)).toContainText('REGISTRY_NOT_FOUND');
  await expect(status(page)).toBeInViewport();
  await page.screenshot({ path: test.info().outputPath('look-up-390.png') });
});

test('signing twice asks "sign again?": no leaves the registry as it was, yes adds one signature', async ({ page }) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/sign-twice', 'v1');
  await browserKey(page);
  await page.getByLabel('Image reference').fill(image.tagRef);
  await clickSign(page);
  await expect(status(page)).toContainText(/^Signed sha256:/, LONG);
  expect(await signatureCount(image.ref)).toEqual({ legacy: 1, bundle: 1 });

  await clickSign(page);
  const question = page.getByRole('group', { name: /^Already signed by this key on \d{4}-\d\d-\d\d / });
  await expect(question).toBeVisible(LONG);
  await expect(question).toContainText(
    '2 signatures by this key (1 legacy .sig, 1 Sigstore bundle) of 2 signatures in all',
  );
  await expect(question).toBeFocused();
  await page.screenshot({ path: test.info().outputPath('sign-again.png') });
  await question.getByRole('button', { name: "Don't sign" }).click();
  await expect(question).toBeHidden();
  await expect(status(page)).toHaveText('Not signed again: the image keeps its 2 signatures.');
  expect(await signatureCount(image.ref)).toEqual({ legacy: 1, bundle: 1 });

  await clickSign(page);
  await expect(question).toBeVisible(LONG);
  await question.getByRole('button', { name: 'Sign again', exact: true }).click();
  await expect(status(page)).toContainText(/^Signed sha256:/, LONG);
  expect(await signatureCount(image.ref)).toEqual({ legacy: 2, bundle: 2 });
});

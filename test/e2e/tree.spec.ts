/**
 * The Tree page (#/tree) in Chromium, through the real relay to a real distribution registry: an
 * image signed by cosign 2.5 (legacy), cosign 3.1 (bundle) and the page itself (both formats),
 * attested by cosign 2.5, with an SBOM attached by oras, shows every object under the image with
 * the verdict of the key in the link; an index shows each platform with its own signatures.
 * Removing one signature (after the dialog, which Cancel leaves untouched) and then all of them
 * is checked with the real cosign. Screenshots of both trees land in test-results/.
 */
import { expect, test, type Locator, type Page } from '@playwright/test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { fingerprint } from '../../shared/crypto/webcrypto.ts';
import { pushSampleImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  CACHE_DIR,
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  cosignVerifyArgs,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';

const ORAS = join(CACHE_DIR, 'sid', 'usr', 'bin', 'oras');
const regs = () => registriesFromEnv()!;
let home: ToolHome;
let offline: Cosign3Offline;
const keys: { key: string; pub: string; pem: string; fp: string }[] = [];

test.beforeAll(async () => {
  home = await makeToolHome('cosign-web-e2e-tree-');
  offline = await makeCosign3Offline(home);
  for (const name of ['k1', 'k2', 'k3']) {
    await runOk('cosign2', ['generate-key-pair', '--output-key-prefix', join(home.dir, name)], {
      env: cosignEnv(home, { password: '' }),
      cwd: home.dir,
    });
    const pub = join(home.dir, `${name}.pub`);
    const pem = readFileSync(pub, 'utf8');
    keys.push({ key: join(home.dir, `${name}.key`), pub, pem, fp: fingerprint(parsePublicKey(pem).spki).hex });
  }
});
test.afterAll(() => home.cleanup());

const env = () => cosignEnv(home, { password: '', caFile: regs().tls.caFile });
const status = (page: Page) => page.getByRole('status');
const treeLink = (image: string, pem?: string) =>
  `/#/tree?image=${encodeURIComponent(image)}${pem ? `&key=${encodeURIComponent(pem)}` : ''}`;

const MARK_LABELS = { verified: 'verified', fails: 'does not verify', 'not-checked': 'not checked' } as const;

/** One item's verdict, exactly: the item's state class and its mark's accessible name (not any text in it). */
async function expectVerdict(item: Locator, state: keyof typeof MARK_LABELS): Promise<void> {
  await expect(item).toHaveClass(new RegExp(`^item ${state}(\\s|$)`));
  const marks = item.getByRole('img', { name: /^(verified|does not verify|not checked)$/ });
  await expect(marks).toHaveCount(1);
  await expect(marks).toHaveAccessibleName(MARK_LABELS[state]);
}

async function makePageKey(page: Page): Promise<string> {
  await page.goto('/#/keys');
  await page.getByLabel('New key password').fill('pw');
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await expect(status(page)).toContainText('Key ready', { timeout: 60_000 });
  return page.getByLabel('Public key', { exact: true }).inputValue();
}

async function treeLoaded(page: Page): Promise<void> {
  await expect(status(page)).toContainText(/signatures?, \d+ attestations?/, { timeout: 60_000 });
}

test('one image, signed by both cosigns and the page, attested, with an SBOM: every object, the right verdicts; remove one, then all', async ({
  page,
}) => {
  const r = regs();
  const tls = { host: r.tls.host, caFile: r.tls.caFile };
  const image = await pushSampleImage(tls, 'e2e/tree-one', 'v1');
  await runOk('cosign2', cosign2SignArgs(keys[0]!.key, image.ref), { env: env() });
  await runOk('cosign3', cosign3SignArgs(keys[1]!.key, offline, image.ref), { env: env() });
  const predicate = join(home.dir, 'predicate.json');
  writeFileSync(predicate, '{"built":"by the rig"}');
  await runOk(
    'cosign2',
    [
      'attest',
      '--key',
      keys[0]!.key,
      '--tlog-upload=false',
      '--yes',
      '--predicate',
      predicate,
      '--type',
      'custom',
      image.ref,
    ],
    { env: env() },
  );
  writeFileSync(join(home.dir, 'sbom.spdx.json'), '{"spdxVersion":"SPDX-2.3","name":"e2e"}');
  await runOk(
    ORAS,
    [
      'attach',
      '--ca-file',
      r.tls.caFile,
      '--artifact-type',
      'application/spdx+json',
      image.ref.replace(/^localhost:/, '127.0.0.1:'),
      'sbom.spdx.json:application/spdx+json',
    ],
    { cwd: home.dir, env: { HOME: home.home, DOCKER_CONFIG: home.dockerConfig } },
  );
  // The page signs too, in both formats, with a key it made.
  await makePageKey(page);
  await page.goto(`/#/sign`);
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });

  await page.goto(treeLink(image.tagRef, keys[0]!.pem));
  await treeLoaded(page);
  await expect(status(page)).toContainText('4 signatures, 1 attestation, 1 other object');
  const tree = page.getByRole('region', { name: /^Tree of / });
  const items = tree.getByRole('article');
  await expect(items).toHaveCount(6);
  const legacy = items.filter({ hasText: 'legacy signature' });
  await expect(legacy).toHaveCount(2);
  await expectVerdict(legacy.filter({ hasText: 'the key given' }), 'verified');
  await expectVerdict(legacy.filter({ hasText: 'cosign key' }), 'fails');
  const bundles = items.filter({ hasText: 'Sigstore bundle signature' });
  await expect(bundles).toHaveCount(2);
  await expectVerdict(bundles.filter({ hasText: `sha256:${keys[1]!.fp.slice(0, 12)}` }), 'fails');
  await expectVerdict(items.filter({ hasText: 'attestation' }), 'verified');
  await expectVerdict(items.filter({ hasText: 'SBOM' }), 'not-checked');
  await expect(tree.getByText('fallback index at tag')).toBeVisible();
  await expect(tree.getByRole('button', { name: 'Remove signature' })).toHaveCount(4);
  await page.screenshot({ path: test.info().outputPath('tree-image.png'), fullPage: true });

  // Remove cosign 3.1's bundle: the dialog names it; Cancel changes nothing.
  const c3 = bundles.filter({ hasText: `sha256:${keys[1]!.fp.slice(0, 12)}` });
  await c3.getByRole('button', { name: 'Remove signature' }).click();
  const dialog = page.getByRole('dialog');
  await expect(dialog).toContainText('Remove this signature?');
  await expect(dialog.getByRole('listitem')).toHaveCount(1);
  await expect(dialog.getByRole('listitem')).toContainText(/Sigstore bundle signature: referrer sha256:[0-9a-f]{64}/);
  await page.screenshot({ path: test.info().outputPath('tree-confirm.png') });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  const v3 = await run('cosign3', cosignVerifyArgs(keys[1]!.pub, image.ref, ['--trusted-root', offline.trustedRoot]), {
    env: env(),
  });
  expect(v3.code, v3.stderr).toBe(0);

  await c3.getByRole('button', { name: 'Remove signature' }).click();
  await dialog.getByRole('button', { name: 'Remove', exact: true }).click();
  await expect(status(page)).toContainText(
    /^Removed 1 signature from the image; \d+ other objects read back intact\./,
    {
      timeout: 60_000,
    },
  );
  await expect(items).toHaveCount(5);
  const gone = await run(
    'cosign3',
    cosignVerifyArgs(keys[1]!.pub, image.ref, ['--trusted-root', offline.trustedRoot]),
    {
      env: env(),
    },
  );
  expect(gone.code).not.toBe(0);
  const k1 = await run('cosign2', cosignVerifyArgs(keys[0]!.pub, image.ref), { env: env() });
  expect(k1.code, k1.stderr).toBe(0);

  // Remove all: both cosigns find no signature; the attestation and the SBOM stay.
  await tree.getByRole('button', { name: 'Remove all signatures' }).click();
  await expect(dialog).toContainText('Remove these 3 signatures?');
  await dialog.getByRole('button', { name: 'Remove', exact: true }).click();
  await expect(status(page)).toContainText(/^Removed 3 signatures from the image/, { timeout: 60_000 });
  await expect(items).toHaveCount(2);
  const none = await run('cosign2', cosignVerifyArgs(keys[0]!.pub, image.ref), { env: env() });
  expect(none.code).not.toBe(0);
  expect(none.stderr).toMatch(/no signatures found/i);
});

test('an index: each platform with its own signatures, verdicts for the key in the link', async ({ page }) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/tree-index', 'v1', {
    index: true,
  });
  await runOk('cosign2', cosign2SignArgs(keys[0]!.key, image.ref, ['--recursive']), { env: env() });
  await runOk('cosign3', cosign3SignArgs(keys[1]!.key, offline, image.platforms[1]!.ref), { env: env() });
  await runOk('cosign3', cosign3SignArgs(keys[2]!.key, offline, image.platforms[0]!.ref), { env: env() });
  await page.goto(treeLink(image.tagRef, keys[1]!.pem));
  await treeLoaded(page);
  const index = page.getByRole('region', { name: 'Index (multi-platform image)' });
  await expect(index).toBeVisible();
  const amd = page.getByRole('region', { name: 'Platform linux/amd64' });
  const arm = page.getByRole('region', { name: 'Platform linux/arm64/v8' });
  await expectVerdict(arm.getByRole('article').filter({ hasText: 'Sigstore bundle signature' }), 'verified');
  await expectVerdict(amd.getByRole('article').filter({ hasText: 'Sigstore bundle signature' }), 'fails');
  await expectVerdict(amd.getByRole('article').filter({ hasText: 'legacy signature' }), 'fails');
  await expect(page.getByRole('button', { name: 'Remove all signatures' })).toHaveCount(3);
  await page.screenshot({ path: test.info().outputPath('tree-index.png'), fullPage: true });

  // Each object opens in Inspect, with its media types explained.
  const bundle = arm.getByRole('article').filter({ hasText: 'Sigstore bundle signature' });
  await bundle.getByText('Details').click();
  await bundle.getByRole('link', { name: 'Inspect the manifest that holds it' }).click();
  await expect(page.getByRole('status')).toContainText('every digest matches', { timeout: 30_000 });
  const explained = page.getByRole('region', { name: 'Media types explained' });
  await expect(explained).toContainText('Sigstore bundle v0.3');
  await expect(explained).toContainText('Empty descriptor');
  await expect(page.getByRole('region', { name: 'Config' })).toContainText('{}');
});

/**
 * The Copy page (#/copy) in Chromium, through the real relay: an image signed by the real cosign
 * 2.5 (legacy `.sig`) and cosign 3.1 (bundle) is copied from the TLS registry to the embedded
 * registry that the server runs, with a progress bar over bytes, then verified on the page with
 * the pasted key and by both real cosigns on the destination. A prefilled link copies to the
 * basic-auth registry with credentials and no key, and reads its values as verification links
 * read theirs ("+" stays a plus sign); the same image as source and destination is refused with
 * its code.
 */
import { expect, test, type Page } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { pushSampleImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  cosignLogin,
  cosignVerifyArgs,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';
import { caFetch } from '../integration/ca-fetch.ts';

const regs = () => registriesFromEnv()!;
let home: ToolHome;
let offline: Cosign3Offline;
let key: string;
let pub: string;

test.beforeAll(async () => {
  home = await makeToolHome('cosign-web-e2e-copy-');
  offline = await makeCosign3Offline(home);
  await runOk('cosign2', ['generate-key-pair'], { cwd: home.dir, env: cosignEnv(home, { password: '' }) });
  key = join(home.dir, 'cosign.key');
  pub = join(home.dir, 'cosign.pub');
  const r = regs();
  await cosignLogin('cosign2', home, r.basic.host, r.basic.username, r.basic.password);
});
test.afterAll(() => home.cleanup());

const status = (page: Page) => page.getByRole('status');
const env = () => cosignEnv(home, { password: '', caFile: regs().tls.caFile });

/** The embedded registry the server runs, from its /config.json. */
async function embeddedHost(page: Page): Promise<string> {
  const res = await page.request.get('/config.json');
  const { sampleImage } = (await res.json()) as { sampleImage: string };
  return sampleImage.split('/')[0]!;
}

/** Pushes an image with one random layer of `size` bytes to the TLS registry; returns its digest. */
async function pushLargeImage(repository: string, size: number): Promise<string> {
  const r = regs();
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  const repo: RepoRef = { registry: r.tls.host, repository };
  const layer = await client.pushBlob(repo, randomBytes(size), { mediaType: 'application/vnd.oci.image.layer.v1.tar' });
  const config = await client.pushBlob(
    repo,
    utf8(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } })),
    { mediaType: MT.ociConfig },
  );
  const manifest = utf8(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config,
      layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.v1.tar' }],
    }),
  );
  return client.putManifest(repo, 'v1', manifest, MT.ociManifest);
}

test('copy a signed image to the embedded registry: progress over bytes, "Copied" with the digest, cosign 2.5 and 3.1 verify the copy', async ({
  page,
}) => {
  const r = regs();
  const repo = `e2e/copy-${randomBytes(3).toString('hex')}`;
  const digest = await pushLargeImage(repo, 160 * 1024 * 1024);
  const source = `${r.tls.host}/${repo}`;
  await runOk('cosign2', cosign2SignArgs(key, `${source}@${digest}`), { env: env() });
  await runOk('cosign3', cosign3SignArgs(key, offline, `${source}@${digest}`), { env: env() });

  const dest = `${await embeddedHost(page)}/mirror/${repo.split('/')[1]}`;
  await page.goto('/#/copy');
  await expect(page.getByRole('link', { name: 'Copy', exact: true })).toHaveAttribute('aria-current', 'page');
  await page.getByLabel('Source image').fill(`${source}:v1`);
  await page.getByLabel('Destination image').fill(`${dest}:v1`);
  await page.getByLabel('Public key').fill(readFileSync(pub, 'utf8'));
  await expect(page.getByText(/ECDSA P-256, fingerprint/)).toBeVisible();
  await page.getByRole('button', { name: 'Copy', exact: true }).click();

  const bar = page.getByRole('progressbar', { name: 'Bytes copied' });
  await expect(bar).toBeVisible();
  await expect
    .poll(async () => Number(await bar.getAttribute('value')), { timeout: 60_000, intervals: [50] })
    .toBeGreaterThan(16 * 1024 * 1024);
  // One unit system for progress and result (#13): binary units, "12.3 MiB of 48.0 MiB · 9.1 MiB/s".
  await expect(status(page)).toContainText(/\d+(\.\d)? MiB of \d+(\.\d)? MiB( · \d+(\.\d)? MiB\/s)?/);
  await expect(status(page)).not.toContainText(/\bMB\b/);
  await page.screenshot({ path: test.info().outputPath('copy-mid.png'), fullPage: true });

  await expect(status(page)).toContainText(new RegExp(`^\\s*Copied ${digest}`), { timeout: 120_000 });
  await expect(status(page)).toContainText('Verified on', { timeout: 60_000 });
  await expect(status(page)).toContainText('2 signatures by this key', { timeout: 60_000 });
  const what = page.getByRole('region', { name: 'What was copied' });
  await expect(what).toContainText(digest);
  await expect(what).toContainText(/Blobs\s*\d+ copied/);
  await expect(page.getByRole('region', { name: 'What was checked' })).toContainText('must name the repository');
  await page.getByText(/^Every item/).click();
  await page.screenshot({ path: test.info().outputPath('copy-done.png'), fullPage: true });

  for (const tool of ['cosign2', 'cosign3'] as const) {
    const v = await run(
      tool,
      cosignVerifyArgs(pub, `${dest}@${digest}`, tool === 'cosign3' ? ['--trusted-root', offline.trustedRoot] : []),
      { env: env() },
    );
    expect(v.code, `${tool}: ${v.stderr}`).toBe(0);
  }

  // The verification link of the copy verifies on the Verify page, with the key and identity the
  // copy was verified with, even once the form has been changed since.
  await page.getByLabel('Public key').fill('');
  await page.getByLabel('Source image').fill('elsewhere.test/other/image:v1');
  await expect(page.getByText(/ECDSA P-256, fingerprint/)).toHaveCount(0);
  await page.getByRole('link', { name: 'Verification link for the copy' }).click();
  await expect(status(page).filter({ hasText: /^(Verified|Not verified)/ })).toContainText(/^Verified/, {
    timeout: 60_000,
  });
});

test('a prefilled link copies to the basic-auth registry with credentials; without a key it says no verification was done', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/copy-link', 'v1', {
    index: true,
  });
  await runOk('cosign2', cosign2SignArgs(key, image.ref, ['--recursive']), { env: env() });
  const dest = `${r.basic.host}/e2e/copy-link:v7`;
  await page.goto(`/#/copy?source=${encodeURIComponent(image.tagRef)}&destination=${encodeURIComponent(dest)}`);
  await expect(page.getByLabel('Source image')).toHaveValue(image.tagRef);
  await expect(page.getByLabel('Destination image')).toHaveValue(dest);
  await page.getByText('Registry credentials').click();
  await page.getByLabel('Destination registry username').fill(r.basic.username);
  await page.getByLabel('Destination registry password').fill(r.basic.password);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(status(page)).toContainText(`Copied ${image.digest}`, { timeout: 60_000 });
  await expect(status(page)).toContainText('No verification was done');
  await expect(page.getByRole('region', { name: 'What was copied' })).toContainText('linux/arm64/v8');
  for (const p of [{ digest: image.digest }, ...image.platforms]) {
    const v = await run('cosign2', cosignVerifyArgs(pub, `${r.basic.host}/e2e/copy-link@${p.digest}`), { env: env() });
    expect(v.code, v.stderr).toBe(0);
  }
});

test('verify with a key from the Keys page: sign on the page with a browser key, copy an index, every platform checked', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/copy-keys', 'v1', {
    index: true,
  });
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready');
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });

  await page.goto('/#/copy');
  await page.getByLabel('Source image').fill(image.tagRef);
  await page.getByLabel('Destination image').fill(`${await embeddedHost(page)}/mirror/copy-keys:v1`);
  const choice = page.getByLabel('Key to verify with');
  const browserKey = await choice.locator('option', { hasText: /^browser key/i }).getAttribute('value');
  await choice.selectOption(browserKey!);
  await expect(page.getByLabel('Public key')).toHaveCount(0);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(status(page)).toContainText(`Copied ${image.digest}`, { timeout: 60_000 });
  // The page signs in both formats: 2 signatures on the index and on each platform.
  await expect(status(page)).toContainText('6 signatures by this key over 3 manifests', { timeout: 60_000 });
  const checked = page.getByRole('region', { name: 'What was checked' });
  await expect(checked.getByRole('row', { name: /linux\/arm64\/v8/ })).toContainText('2 signatures');
});

test('a copy stopped half-way resumes: run again, what is there is skipped, the copy verifies', async ({ page }) => {
  const r = regs();
  const repo = `e2e/copy-stop-${randomBytes(3).toString('hex')}`;
  const digest = await pushLargeImage(repo, 96 * 1024 * 1024);
  const source = `${r.tls.host}/${repo}`;
  await runOk('cosign2', cosign2SignArgs(key, `${source}@${digest}`), { env: env() });
  const dest = `${await embeddedHost(page)}/mirror/${repo.split('/')[1]}:v1`;
  await page.goto(`/#/copy?source=${encodeURIComponent(`${source}:v1`)}&destination=${encodeURIComponent(dest)}`);
  await page.getByLabel('Public key').fill(readFileSync(pub, 'utf8'));
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  const bar = page.getByRole('progressbar', { name: 'Bytes copied' });
  await expect
    .poll(async () => Number(await bar.getAttribute('value')), { timeout: 60_000, intervals: [50] })
    .toBeGreaterThan(8 * 1024 * 1024);
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(status(page)).toContainText('run the copy again to resume');
  await expect(status(page)).toContainText('MANAGE_COPY_INCOMPLETE');
  await page.screenshot({ path: test.info().outputPath('copy-stopped.png'), fullPage: true });

  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(status(page)).toContainText(`Copied ${digest}`, { timeout: 120_000 });
  await expect(status(page)).toContainText('Verified on', { timeout: 60_000 });
  await expect(page.getByRole('region', { name: 'What was copied' })).toContainText(
    /Blobs\s*\d+ copied, \d+ already there/,
  );
  const v = await run('cosign2', cosignVerifyArgs(pub, `${dest.replace(/:v1$/, '')}@${digest}`), { env: env() });
  expect(v.code, v.stderr).toBe(0);
});

test('the same image as source and destination is refused with MANAGE_SAME_IMAGE', async ({ page }) => {
  const r = regs();
  await page.goto('/#/copy');
  await page.getByLabel('Source image').fill(`${r.tls.host}/e2e/same:v1`);
  await page.getByLabel('Destination image').fill(`${r.tls.host}/e2e/same`);
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await expect(status(page)).toContainText('the same image');
  await expect(status(page)).toContainText('MANAGE_SAME_IMAGE');
});

test('a prefill link reads its values as verification links do: "+" stays a plus sign, %2B is one too', async ({
  page,
}) => {
  await page.goto('/#/copy?source=r.example/app:v1+build&destination=r.example/mirror%2Bx:v1');
  await expect(page.getByLabel('Source image')).toHaveValue('r.example/app:v1+build');
  await expect(page.getByLabel('Destination image')).toHaveValue('r.example/mirror+x:v1');
  // Another link while the page is open: the router reads it and the page fills in again.
  await page.evaluate(() => (location.hash = '#/copy?source=r.example/other%3Av2&destination=r.example/b+c:v2'));
  await expect(page.getByLabel('Source image')).toHaveValue('r.example/other:v2');
  await expect(page.getByLabel('Destination image')).toHaveValue('r.example/b+c:v2');
});

/**
 * The Inspect page (#/inspect) in Chromium through the real relay: for a single image and a
 * 2-platform index pushed by skopeo, the bytes the page shows and downloads are byte for byte what
 * `skopeo inspect --raw` and `skopeo inspect --config --raw` print, and the digests it shows are
 * `crane digest`'s and the registry's Docker-Content-Digest. Screenshots land in test-results/.
 */
import { expect, test, type Locator, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import { CACHE_DIR, runOk, skopeoRegistryFlags } from '../rig/tools.ts';

const CRANE = join(CACHE_DIR, 'sid', 'usr', 'bin', 'crane');
const regs = () => registriesFromEnv()!;
const tls = () => ({ host: regs().tls.host, caFile: regs().tls.caFile });

/** What skopeo inspect prints, as bytes (through a file: run() decodes stdout as text). */
async function skopeo(ref: string, extra: string[]): Promise<Buffer> {
  const scratch = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-inspect-'));
  try {
    const access = await skopeoAccess(tls(), scratch);
    const out = join(scratch, 'out');
    await runOk('/bin/sh', [
      '-c',
      `"$0" "$@" > ${JSON.stringify(out)}`,
      join(CACHE_DIR, 'bin', 'skopeo'),
      'inspect',
      ...skopeoRegistryFlags(access, 'plain'),
      ...extra,
      `docker://${ref}`,
    ]);
    // skopeo adds a newline after bytes that do not end with one.
    const bytes = readFileSync(out);
    return bytes.at(-1) === 0x0a ? bytes.subarray(0, -1) : bytes;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function craneDigest(ref: string): Promise<string> {
  return (await runOk(CRANE, ['digest', ref], { env: { SSL_CERT_FILE: regs().tls.caFile } })).stdout.trim();
}

/** The bytes behind a section's "Download raw bytes" link, and the raw text shown. */
async function shown(page: Page, section: Locator): Promise<{ download: Buffer; text: string }> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    section.getByRole('link', { name: 'Download raw bytes' }).click(),
  ]);
  const file = await download.path();
  const text = (await section.getByLabel(/^Raw bytes of the /).textContent()) ?? '';
  return { download: readFileSync(file), text };
}

async function expectDigests(section: Locator, digest: string): Promise<void> {
  const table = section.getByRole('table', { name: /^Digests of the / });
  await expect(table.getByRole('row', { name: /Computed here/ })).toContainText(digest);
  await expect(table.getByRole('row', { name: /Docker-Content-Digest/ })).toContainText(digest);
  await expect(table.getByRole('img', { name: 'differs' })).toHaveCount(0);
}

test('a single image: manifest and config byte for byte as skopeo prints them, digests as crane', async ({ page }) => {
  const image = await pushSampleImage(tls(), 'e2e/inspect-one', 'v1');
  await page.goto(`/#/inspect?image=${encodeURIComponent(image.tagRef)}`);
  await expect(page.getByRole('status')).toContainText('every digest matches', { timeout: 30_000 });
  const manifest = page.getByRole('region', { name: 'Manifest', exact: true });
  const config = page.getByRole('region', { name: 'Config' });
  const m = await shown(page, manifest);
  const raw = await skopeo(image.tagRef, ['--raw']);
  expect(m.download.equals(raw)).toBe(true);
  expect(m.text).toBe(raw.toString('utf8'));
  const c = await shown(page, config);
  const rawConfig = await skopeo(image.tagRef, ['--config', '--raw']);
  expect(c.download.equals(rawConfig)).toBe(true);
  const digest = await craneDigest(image.tagRef);
  expect(digest).toBe(image.digest);
  await expectDigests(manifest, digest);
  await expect(manifest).toContainText('OCI image manifest');
  await expect(page.getByRole('region', { name: 'Media types explained' })).toContainText('OCI layer (tar, gzip)');

  // The pretty view is a toggle; the raw view is what the digest covers.
  await manifest.getByLabel('Pretty view').check();
  await expect(manifest.getByLabel(/^Pretty view of the /)).toContainText('"schemaVersion": 2');
  await page.screenshot({ path: test.info().outputPath('inspect-image.png'), fullPage: true });
});

test('a 2-platform index: the index, each platform manifest and its config as skopeo prints them', async ({ page }) => {
  const image = await pushSampleImage(tls(), 'e2e/inspect-multi', 'v1', { index: true });
  await page.goto(`/#/inspect?image=${encodeURIComponent(image.tagRef)}`);
  await expect(page.getByRole('status')).toContainText('every digest matches', { timeout: 30_000 });
  const index = page.getByRole('region', { name: 'Index', exact: true });
  const i = await shown(page, index);
  expect(i.download.equals(await skopeo(image.tagRef, ['--raw']))).toBe(true);
  await expectDigests(index, await craneDigest(image.tagRef));

  // linux/amd64 first (what skopeo picks on this machine), then linux/arm64/v8.
  const amd = page.getByRole('region', { name: 'Manifest of linux/amd64' });
  const a = await shown(page, amd);
  expect(a.download.equals(await skopeo(image.platforms[0]!.ref, ['--raw']))).toBe(true);
  const c = await shown(page, page.getByRole('region', { name: 'Config' }));
  expect(c.download.equals(await skopeo(image.tagRef, ['--config', '--raw']))).toBe(true);
  await page.screenshot({ path: test.info().outputPath('inspect-index.png'), fullPage: true });

  await page.getByRole('button', { name: 'linux/arm64/v8' }).click();
  const arm = page.getByRole('region', { name: 'Manifest of linux/arm64/v8' });
  await expect(arm).toBeVisible();
  const b = await shown(page, arm);
  expect(b.download.equals(await skopeo(image.platforms[1]!.ref, ['--raw']))).toBe(true);
  await expectDigests(arm, await craneDigest(image.platforms[1]!.ref));
  const armConfig = await shown(page, page.getByRole('region', { name: 'Config' }));
  expect(
    armConfig.download.equals(
      await skopeo(image.tagRef, ['--override-arch', 'arm64', '--override-variant', 'v8', '--config', '--raw']),
    ),
  ).toBe(true);
  expect(page.url()).toContain('platform=linux%2Farm64%2Fv8');
});

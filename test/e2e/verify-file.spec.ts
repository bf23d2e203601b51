/**
 * The Verify file page (#/verify-file) in Chromium, driven by its labels: every case of the
 * Sigstore client conformance suite (../shared/conformance/bundle-verify) through the form, with
 * the file and with only its digest, says "Verified" exactly when the case should verify; a
 * result's link opened in a fresh page verifies at once (and its JSON is format 2); a malformed
 * trusted root file is refused with VERIFY_TRUSTED_ROOT_INVALID and nothing stored changes; a
 * 300 MiB file (sparse on disk) is hashed in a worker with progress, to sha256sum's digest,
 * without the page's heap holding it. Screenshots at 360 px and 1280 px go to /tmp.
 */
import { expect, test, type Page } from '@playwright/test';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync, ftruncateSync } from 'node:fs';
import { parsePublicKey } from '../../shared/crypto/keys.ts';
import { fileVerificationLink } from '../../shared/cosign/file-link.ts';
import { conformanceCases, type ConformanceCase } from '../conformance.ts';
import { runOk } from '../rig/tools.ts';
import { tempFile } from './helpers.ts';

const CASES = conformanceCases();
/** The status once finished: its text starts with "Verified" or "Not verified". */
const verdict = (page: Page) => page.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ });
const field = (page: Page, label: string) => page.getByLabel(label, { exact: true });
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function openPage(page: Page): Promise<void> {
  await page.goto('/#/verify-file');
  await expect(page.getByRole('heading', { name: 'Verify a file' })).toBeVisible();
}

/** Fills the form for a case, as the conformance protocol's arguments would, and verifies. */
async function verifyCase(page: Page, c: ConformanceCase, mode: 'file' | 'digest'): Promise<string> {
  if (mode === 'file') await field(page, 'File to verify').setInputFiles(c.artifactPath);
  else {
    await field(page, 'File to verify').setInputFiles([]);
    await field(page, 'File digest').fill(c.artifactDigest);
  }
  await field(page, 'Sigstore bundle').setInputFiles(c.bundlePath);
  await field(page, 'Public key').fill(c.keyPath ? readFileSync(c.keyPath, 'utf8') : '');
  await field(page, 'Certificate identity').fill(c.keyPath ? '' : c.identity);
  await field(page, 'Certificate OIDC issuer').fill(c.keyPath ? '' : c.issuer);
  const root = field(page, 'Trust root');
  if (c.trustedRootPath) {
    // A root the page refuses is never selected: the case is refused there, with the root's code.
    const id = `sha256:${sha256(readFileSync(c.trustedRootPath))}`;
    const refusal = page.getByRole('alert').filter({ hasText: 'VERIFY_TRUSTED_ROOT_INVALID' });
    await field(page, 'Trusted root file').setInputFiles(c.trustedRootPath);
    await expect
      .poll(async () => (await refusal.isVisible()) || (await root.inputValue()) === id, { timeout: 30_000 })
      .toBe(true);
    if (await refusal.isVisible()) return `Not verified (trusted root refused): ${await refusal.textContent()}`;
  } else await root.selectOption('public-good');
  await page.getByRole('button', { name: 'Verify file' }).click();
  // A field the page cannot use (a damaged key, say) is marked at the field, with no verdict: refused.
  const invalid = page.locator('[aria-invalid="true"]');
  await expect(verdict(page).or(invalid).first()).toBeVisible({ timeout: 60_000 });
  if (await invalid.count())
    return `Not verified (form error): ${await page.locator('.field-error').first().textContent()}`;
  await expect(verdict(page)).toHaveText(/^(Verified|Not verified)/);
  return (await verdict(page).textContent()) ?? '';
}

for (const mode of ['file', 'digest'] as const) {
  test(`the conformance suite's ${CASES.length} cases, given the ${mode === 'file' ? 'file' : "file's digest only"}`, async ({
    page,
  }) => {
    test.setTimeout(240_000);
    await openPage(page);
    const wrong: string[] = [];
    for (const c of CASES) {
      const text = await verifyCase(page, c, mode);
      if (text.startsWith('Verified') !== c.shouldVerify) wrong.push(`${c.name}: ${text}`);
      if (mode === 'file' && c.shouldVerify) await expect(field(page, 'File digest')).toHaveValue(c.artifactDigest);
    }
    expect(wrong).toEqual([]);
  });
}

test("a result's link opens in a fresh page and verifies at once; a refusal says why; at 360 and 1280 px", async ({
  page,
  context,
}) => {
  await openPage(page);
  const happy = CASES.find((c) => c.name === 'happy-path-v0.3')!;
  expect(await verifyCase(page, happy, 'file')).toMatch(
    /^Verified: sha256:[0-9a-f]{64} signed by https:\/\/github\.com\//,
  );
  const result = page.getByRole('region', { name: 'Verification result' });
  await expect(result).toContainText('Certificate authority');
  await expect(result).toContainText('Transparency log');
  await expect(result).toContainText('OIDC issuer');
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: 'Download result (JSON)' }).click();
  const json = JSON.parse(readFileSync(await (await download).path(), 'utf8')) as Record<string, unknown>;
  expect(json['format']).toBe('cosign-web-verification/2');
  expect(json['artifact']).toBe(happy.artifactDigest.slice(7));
  const link = await field(page, 'Verification link').inputValue();
  expect(link).toMatch(/#\/verify-file\?digest=sha256%3A[0-9a-f]{64}&bundle=[\w-]+&certificateIdentity=/);
  await expect(
    page
      .getByRole('img', { name: 'QR code to open this check on a phone' })
      .or(page.getByText('too long for a QR code')),
  ).toBeVisible();

  for (const width of [360, 1280]) {
    const fresh = await context.newPage();
    await fresh.setViewportSize({ width, height: 900 });
    await fresh.goto(link);
    await expect(verdict(fresh)).toHaveText(/^Verified: /);
    await expect(fresh.getByRole('region', { name: 'Supplied by this link' })).toBeVisible();
    await expect(field(fresh, 'File digest')).toHaveValue(happy.artifactDigest);
    // Nothing wider than the window (so no sideways scrolling on a phone): the list names what is.
    const wide = await fresh.evaluate(() =>
      document.documentElement.scrollWidth > window.innerWidth
        ? [...document.querySelectorAll('body :not(input)')]
            .filter((el) => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX === 'visible')
            .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}.${el.className}`)
        : [],
    );
    expect(wide).toEqual([]);
    await fresh.screenshot({ path: `/tmp/verify-file-verified-${width}.png`, fullPage: true });
    // The same link with another identity: refused, with the sentence and the code.
    await fresh.goto(link.replace(/certificateIdentity=[^&]+/, 'certificateIdentity=someone%40example.com'));
    await expect(verdict(fresh)).toHaveText(/^Not verified: .+ VERIFY_[A-Z_]+$/);
    await fresh.screenshot({ path: `/tmp/verify-file-refused-${width}.png`, fullPage: true });
    await fresh.close();
  }
});

test('a link naming a trusted root this browser lacks asks for its file, then verifies once it is loaded', async ({
  page,
  baseURL,
}) => {
  const c = CASES.find((x) => x.name === 'managed-key-and-trusted-root')!;
  const rootId = `sha256:${sha256(readFileSync(c.trustedRootPath!))}`;
  const link = fileVerificationLink(baseURL!, {
    digest: c.artifactDigest,
    bundle: readFileSync(c.bundlePath),
    spki: parsePublicKey(readFileSync(c.keyPath!, 'utf8')).spki,
    sigstore: { policy: {}, trustedRoot: rootId },
  });
  await page.goto(link);
  await expect(verdict(page)).toHaveText(/^Not verified: .*does not hold.* VERIFY_TRUSTED_ROOT_UNKNOWN$/);
  await expect(page.getByText(`a trusted root this browser does not hold (${rootId})`)).toBeVisible();
  await expect(field(page, 'Public key')).toHaveValue(/^-----BEGIN PUBLIC KEY-----/);
  await field(page, 'Trusted root file').setInputFiles(c.trustedRootPath!);
  await expect(verdict(page)).toHaveText(/^Verified: sha256:[0-9a-f]{64} signed by the key sha256:[0-9a-f]{64}\.$/);
  await expect(field(page, 'Trust root')).toHaveValue(rootId);
});

test('a malformed trusted root file is refused with its code, and the roots stored are unchanged', async ({ page }) => {
  await openPage(page);
  const good = CASES.find((c) => c.trustedRootPath)!;
  await field(page, 'Trusted root file').setInputFiles(good.trustedRootPath!);
  const goodId = `sha256:${sha256(readFileSync(good.trustedRootPath!))}`;
  await expect(field(page, 'Trust root')).toHaveValue(goodId);
  await expect(page.getByText(`sha256:${goodId.slice(7)}`).first()).toBeVisible();
  const stored = () =>
    page.evaluate(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const req = indexedDB.open('cosign-web-trust-roots');
          req.onsuccess = () => {
            const all = req.result.transaction('roots').objectStore('roots').getAllKeys();
            all.onsuccess = () => resolve((all.result as string[]).sort());
            all.onerror = () => reject(all.error);
          };
          req.onerror = () => reject(req.error);
        }),
    );
  const before = await stored();
  expect(before).toContain(goodId);
  const options = await field(page, 'Trust root').locator('option').allTextContents();

  const bad = tempFile(
    'broken-root.json',
    '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":5}',
  );
  await field(page, 'Trusted root file').setInputFiles(bad);
  await expect(page.getByRole('alert')).toContainText('VERIFY_TRUSTED_ROOT_INVALID');
  await expect(page.getByRole('alert')).toContainText(/\w+.*\./);
  expect(await stored()).toEqual(before);
  await expect(field(page, 'Trust root')).toHaveValue(goodId);
  expect(await field(page, 'Trust root').locator('option').allTextContents()).toEqual(options);

  // Shipped roots show their sha256 and where they came from.
  await field(page, 'Trust root').selectOption('public-good');
  await expect(page.getByText(/shipped with this page: npm @sigstore\/tuf/)).toBeVisible();
  await expect(page.getByText(/^sha256:6494e21ea73fa7ee/).first()).toBeVisible();
});

test('a 300 MiB file is hashed in a worker with progress, to sha256sum digest, and the page does not hold it', async ({
  page,
}) => {
  test.setTimeout(180_000);
  // Sparse on disk: 300 MiB of zeros between two marks.
  const path = tempFile('large.bin', 'cosign-web large file start');
  const fd = openSync(path, 'r+');
  ftruncateSync(fd, 300 * 1024 * 1024);
  writeSync(fd, 'end', 300 * 1024 * 1024 - 3);
  closeSync(fd);
  const expected = `sha256:${(await runOk('sha256sum', [path])).stdout.split(' ')[0]}`;

  await openPage(page);
  // Every value the progress bar shows, recorded as the page draws it.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { progressSeen: string[] }).progressSeen = seen;
    new MutationObserver(() => {
      const p = document.querySelector('progress[aria-label="Hashing progress"]');
      if (p instanceof HTMLProgressElement) seen.push(`${p.value}/${p.max}`);
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });
  await field(page, 'File to verify').setInputFiles(path);
  await expect(field(page, 'File digest')).toHaveValue(expected, { timeout: 120_000 });
  const seen = await page.evaluate(() => (window as unknown as { progressSeen: string[] }).progressSeen);
  const total = 300 * 1024 * 1024;
  const partial = seen.filter((s) => {
    const [v, m] = s.split('/').map(Number);
    return m === total && v! > 0 && v! < total;
  });
  expect(partial.length).toBeGreaterThan(0);

  // The page still answers, and its heap never held the file.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const { metrics } = await cdp.send('Performance.getMetrics');
  const heap = metrics.find((m) => m.name === 'JSHeapUsedSize')!.value;
  expect(heap).toBeLessThan(64 * 1024 * 1024);
  const happy = CASES.find((c) => c.name === 'happy-path-v0.3')!;
  await field(page, 'Sigstore bundle').setInputFiles(happy.bundlePath);
  await field(page, 'Certificate identity').fill(happy.identity);
  await field(page, 'Certificate OIDC issuer').fill(happy.issuer);
  await page.getByRole('button', { name: 'Verify file' }).click();
  await expect(verdict(page)).toHaveText(/^Not verified: .+ VERIFY_[A-Z_]+$/);
});

/**
 * The public-good trust root kept fresh through TUF (web/src/app/sigstore-root.svelte.ts), in
 * Chromium against a server of its own started with SIGSTORE_TUF_URL, SIGSTORE_TUF_TARGETS_URL and
 * SIGSTORE_TUF_ROOT naming a REAL TUF repository built by python-tuf (test/rig/tuf-repo.py) and
 * served on 127.0.0.1, its target the conformance suite's public-good trusted_root.json: the page
 * refreshes through the relay ("refreshed through TUF") and verification names that root; a
 * tampered target gives the shipped root with TUF_TARGET_MISMATCH shown, an expired timestamp the
 * cached one with TUF_EXPIRED, and verification names the root used each time; every request the
 * page makes goes to its own origin (the relay), never to the TUF repository.
 * https://theupdateframework.github.io/specification/latest/#detailed-client-workflow
 */
import { expect, test, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBundleReferrer, EMPTY_CONFIG } from '../../shared/cosign/manifests.ts';
import { COSIGN_SIGN_PREDICATE } from '../../shared/cosign/dsse.ts';
import { parseReference } from '../../shared/registry/reference.ts';
import { RegistryClient } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { makeTufRepo, serveTufRepo, type ServedTufRepo, type TufRepo } from '../rig/python-tuf.ts';
import { freePort } from '../rig/registries.ts';
import { waitFor } from './global-setup.ts';
import { recordRequests } from './helpers.ts';

const CONFORMANCE = resolve(import.meta.dirname, '..', '..', '..', 'shared', 'conformance');
const TRUSTED_ROOT = join(CONFORMANCE, 'public-good-trusted_root.json');
/** A keyless DSSE bundle the public-good root's CAs issued; attached to the sample image it cannot verify, but it makes the page build its trust. */
const BUNDLE = join(CONFORMANCE, 'bundle-verify', 'happy-path-intoto-in-dsse-v3', 'bundle.sigstore.json');

let repo: TufRepo;
let served: ServedTufRepo;
let server: ChildProcess | undefined;
let origin: string;
let sampleImage: string;
let dataDir: string;

/** Attaches the conformance bundle to the sample image as a bundle referrer, straight to the embedded registry. */
async function attachBundle(): Promise<void> {
  const ref = parseReference(sampleImage);
  const client = new RegistryClient({ fetch: (i, init) => fetch(i, init), scheme: () => 'http' });
  const repoRef = { registry: ref.registry, repository: ref.repository };
  const subject = await client.resolve(repoRef, ref.tag!);
  const bundle = await client.pushBlob(repoRef, readFileSync(BUNDLE), { mediaType: MT.sigstoreBundle });
  await client.pushBlob(repoRef, EMPTY_CONFIG, { mediaType: MT.ociEmpty });
  const referrer = buildBundleReferrer(subject, bundle, COSIGN_SIGN_PREDICATE, '2026-01-01T00:00:00Z');
  const pushed = await client.pushReferrer(repoRef, referrer, MT.ociManifest);
  expect(pushed.subjectProcessed).toBe(true);
}

test.beforeAll(async () => {
  test.setTimeout(300_000);
  repo = await makeTufRepo(TRUSTED_ROOT);
  served = await serveTufRepo(repo);
  dataDir = mkdtempSync(join(tmpdir(), 'cosign-web-e2e-tuf-'));
  const port = await freePort();
  origin = `http://localhost:${port}`;
  const log = openSync(join(dataDir, 'server.log'), 'w');
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    EMBEDDED_REGISTRY_PORT: '0',
    REGISTRY_DATA: join(dataDir, 'registry'),
    SIGSTORE_TUF_URL: served.metadataBaseUrl,
    SIGSTORE_TUF_TARGETS_URL: served.targetsBaseUrl,
    SIGSTORE_TUF_ROOT: join(repo.dir, 'metadata', '1.root.json'),
  };
  for (const k of [
    'PKCS11_MODULE',
    'PKCS11_API_TOKEN',
    'PKCS11_PIN',
    'RELAY_ALLOWED_REGISTRIES',
    'RELAY_PRIVATE_REGISTRIES',
  ])
    delete env[k];
  server = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], { env, stdio: ['ignore', log, log] });
  await waitFor(`http://127.0.0.1:${port}/healthz`, 30_000);
  const config = (await (await fetch(`http://127.0.0.1:${port}/config.json`)).json()) as {
    sampleImage: string;
    sigstoreTuf: { metadataUrl: string; targetsUrl: string; rootJson: string };
  };
  expect(config.sigstoreTuf.metadataUrl).toBe(served.metadataBaseUrl);
  expect(config.sigstoreTuf.rootJson).toBe(readFileSync(join(repo.dir, 'metadata', '1.root.json'), 'utf8'));
  sampleImage = config.sampleImage;
  await attachBundle();
});

test.afterAll(async () => {
  server?.kill('SIGTERM');
  await served?.close();
  if (repo) rmSync(repo.dir, { recursive: true, force: true });
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const freshness = (page: Page) => page.getByRole('note', { name: 'Trust root freshness' });

/** Verifies the sample image under an identity policy; returns the result region's text. */
async function verify(page: Page): Promise<string> {
  await page.getByLabel('Image reference').fill(sampleImage);
  await page.getByLabel('Certificate identity', { exact: true }).fill('someone@example.com');
  await page.getByLabel('Certificate OIDC issuer', { exact: true }).fill('https://issuer.example');
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  const result = page.getByRole('region', { name: 'Verification result' });
  await expect(result).toContainText('Trust root:', { timeout: 60_000 });
  return (await result.textContent()) ?? '';
}

/** Every request the page made went to its own origin; the TUF repository's own port was never asked by the browser. */
function expectOnlyOwnOrigin(urls: string[]): void {
  const tufOrigin = new URL(served.metadataBaseUrl).origin;
  for (const u of urls) {
    if (u.startsWith('data:') || u.startsWith('blob:')) continue;
    expect(new URL(u).origin, u).toBe(origin);
    expect(u.startsWith(tufOrigin), u).toBe(false);
  }
  expect(urls.some((u) => u.startsWith(`${origin}/relay/${new URL(tufOrigin).host}/metadata/timestamp.json`))).toBe(
    true,
  );
}

test('a verification refreshes the root through TUF, via the relay, and names it', async ({ page }) => {
  served.use(undefined);
  const seen = recordRequests(page);
  await page.goto(`${origin}/#/verify`);
  await expect(freshness(page)).toContainText('shipped with the page on');
  await expect(freshness(page)).toContainText('not refreshed through TUF yet');
  served.requests.length = 0;
  const text = await verify(page);
  expect(text).toMatch(/Trust root: Sigstore public good, refreshed through TUF \d{4}-\d\d-\d\d/);
  await expect(freshness(page)).toHaveText(/^Sigstore public good — refreshed through TUF (now|\d+ seconds? ago)$/);
  expect(served.requests).toContain('metadata/timestamp.json');
  expect(served.requests).toContain(`targets/${repo.manifest.target.sha256}.trusted_root.json`);
  expectOnlyOwnOrigin(seen.map((r) => r.url));

  // Within 24 hours the cached root is used without asking the repository again.
  served.requests.length = 0;
  await page.reload();
  expect(await verify(page)).toContain('refreshed through TUF');
  expect(served.requests).toEqual([]);
});

test('a tampered target falls back to the shipped root; an expired timestamp to the cached one', async ({ page }) => {
  const seen = recordRequests(page);
  await page.goto(`${origin}/#/verify`);
  served.use('tampered-target');
  try {
    await page.getByRole('button', { name: 'Refresh trust root' }).click();
    await expect(freshness(page)).toContainText('shipped with the page on 2026-11-05; could not refresh:');
    await expect(freshness(page)).toContainText('(TUF_TARGET_MISMATCH)');
    // The verification still runs, against the shipped root (it tries TUF again first, and fails again).
    expect(await verify(page)).toContain('Trust root: Sigstore public good, shipped with the page on 2026-11-05');
    await expect(freshness(page)).toContainText('(TUF_TARGET_MISMATCH)');

    served.use(undefined);
    await page.getByRole('button', { name: 'Refresh trust root' }).click();
    await expect(freshness(page)).toHaveText(/^Sigstore public good — refreshed through TUF/);

    served.use('expired-timestamp');
    await page.getByRole('button', { name: 'Refresh trust root' }).click();
    await expect(freshness(page)).toContainText('cached in this browser, refreshed through TUF');
    await expect(freshness(page)).toContainText('(TUF_EXPIRED)');
    expect(await verify(page)).toContain('Trust root: Sigstore public good, refreshed through TUF');
  } finally {
    served.use(undefined);
  }
  expectOnlyOwnOrigin(seen.map((r) => r.url));
});

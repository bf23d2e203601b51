/**
 * The Sign page in Chromium, through the real relay to the real registries, checked by the real
 * verifiers: cosign 2.5 (legacy), cosign 3.1 (bundle) and skopeo 1.18 (policy). Every key kind the
 * page holds signs; an index is signed with every platform; the verification link made after
 * signing, opened in a new browser context, says "Verified".
 */
import { expect, test, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosignEnv,
  cosignVerifyArgs,
  makeCosign3Offline,
  makeToolHome,
  run,
  skopeoPolicyPull,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';
import { addVirtualAuthenticator } from './helpers.ts';

const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');
const regs = () => registriesFromEnv()!;
let home: ToolHome;
let offline: Cosign3Offline;

test.beforeAll(async () => {
  home = await makeToolHome();
  offline = await makeCosign3Offline(home);
});
test.afterAll(() => home.cleanup());

const status = (page: Page) => page.getByRole('status');
/** How long a wait for long work (scrypt, signing through the relay) may take on a loaded 2-core machine. */
const LONG = { timeout: 60_000 };

/** Makes a key of the given kind on the Keys page; returns its public key PEM. */
async function makeKey(page: Page, kind: 'cosign' | 'browser' | 'passkey' | 'import', file?: string): Promise<string> {
  await page.goto('/#/keys');
  if (kind === 'cosign') {
    await page.getByLabel('New key password').fill('pw');
    await page.getByRole('button', { name: 'Generate key pair' }).click();
  } else if (kind === 'browser') {
    await page.getByRole('button', { name: 'Generate browser key' }).click();
  } else if (kind === 'passkey') {
    await addVirtualAuthenticator(page, true);
    await page.getByRole('button', { name: 'Create passkey key' }).click();
  } else {
    await page.getByLabel('PEM private key').setInputFiles(join(VECTORS, file!));
    await page.getByLabel('Password for the imported key').fill('pw');
    await page.getByRole('button', { name: 'Import key' }).click();
  }
  await expect(status(page)).toContainText('Key ready', LONG);
  return page.getByLabel('Public key', { exact: true }).inputValue();
}

async function sign(page: Page, ref: string, creds?: { username: string; password: string }): Promise<string> {
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(ref);
  if (creds) {
    await page.getByLabel('Registry username').fill(creds.username);
    await page.getByLabel('Registry password').fill(creds.password);
  }
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(/^Signed sha256:[0-9a-f]{64}/, LONG);
  return (await status(page).textContent())!.match(/sha256:[0-9a-f]{64}/)![0];
}

function pubFile(pem: string): string {
  const f = join(home.dir, `pub-${Math.random()}.pem`);
  writeFileSync(f, pem);
  return f;
}

async function verifyWithTools(
  pub: string,
  image: PushedImage,
  skopeoIdentity?: Record<string, unknown>,
): Promise<void> {
  const r = regs();
  const env = cosignEnv(home, { caFile: r.tls.caFile });
  const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env });
  expect(v2.code, `cosign 2.5: ${v2.stderr}`).toBe(0);
  const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', offline.trustedRoot]), { env });
  expect(v3.code, `cosign 3.1: ${v3.stderr}`).toBe(0);
  if (skopeoIdentity) {
    const access = await skopeoAccess({ host: r.tls.host, caFile: r.tls.caFile }, home.dir);
    const s = await skopeoPolicyPull(home, access, pub, image.tagRef, { identity: skopeoIdentity, all: true });
    expect(s.code, `skopeo: ${s.stderr}`).toBe(0);
  }
}

test('sign with a generated cosign key: what will be signed, both formats, cosign 2.5, 3.1 and skopeo accept; the link verifies elsewhere', async ({
  page,
  browser,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/sign-cosign', 'v1');
  const pub = await makeKey(page, 'cosign');
  await page.goto('/#/sign');
  await expect(page.getByLabel('Signing key')).toHaveValue(/.+/);
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Look up' }).click();
  const what = page.getByRole('region', { name: 'What will be signed' });
  await expect(what).toContainText(image.digest);
  await expect(what).toContainText('points to this digest now');
  await expect(page.getByRole('radio', { name: /Repository and tag/ })).toBeChecked();
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
  await verifyWithTools(pubFile(pub), image, { type: 'matchRepoDigestOrExact' });

  const link = await page.getByRole('link', { name: 'Verification link' }).getAttribute('href');
  expect(link).toContain(`#/verify?image=${encodeURIComponent(`${image.repository}@${image.digest}`)}`);
  await expect(page.getByRole('img', { name: 'QR code of the verification link' })).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('sign-done.png'), fullPage: true });

  // Someone else opens the link, in a fresh browser context.
  const viewer = await browser.newContext();
  const other = await viewer.newPage();
  await other.goto(link!);
  await expect(other.getByRole('status').filter({ hasText: /^(Verified|Not verified)/ })).toContainText(
    /^Verified/,
    LONG,
  );
  await viewer.close();
});

const kinds: [string, 'browser' | 'passkey' | 'import', string?][] = [
  ['a browser key', 'browser'],
  ['a passkey key', 'passkey'],
  ['an imported P-384 key', 'import', 'ec-p384-pkcs8.pem'],
  ['an imported RSA key', 'import', 'rsa-2048-pkcs1.pem'],
  ['an imported Ed25519 key', 'import', 'ed25519-pkcs8.pem'],
];
for (const [name, kind, file] of kinds) {
  test(`sign with ${name}: cosign 2.5 and 3.1 verify`, async ({ page }) => {
    const r = regs();
    const repo = ['e2e/sign', kind, file?.replace(/\W+/g, '-')].filter(Boolean).join('-');
    const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, repo, 'v1');
    const pub = await makeKey(page, kind, file);
    const digest = await sign(page, `${image.repository}@${image.digest}`);
    expect(digest).toBe(image.digest);
    await verifyWithTools(pubFile(pub), image);
  });
}

test('an index: progress over the manifests, every platform signed, skopeo copy --all accepts it', async ({ page }) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/sign-index', 'v1', {
    index: true,
  });
  const pub = await makeKey(page, 'browser');
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByRole('region', { name: 'What will be signed' })).toContainText('linux/amd64');
  await expect(page.getByRole('region', { name: 'What will be signed' })).toContainText('linux/arm64');
  await page.getByRole('button', { name: 'Sign' }).click();
  // The outcome, not the progress ("Signed 2 of 3 …"), with a limit that fits a loaded machine.
  await expect(status(page)).toContainText(`Signed ${image.digest} (the index and its 2 platform manifests`, LONG);
  await verifyWithTools(pubFile(pub), image, { type: 'matchRepoDigestOrExact' });
});

test('a private registry: the registry fields carry the credentials through the relay', async ({ page }) => {
  const r = regs();
  const image = await pushSampleImage(
    { host: r.basic.host, username: r.basic.username, password: r.basic.password },
    'e2e/private',
    'v1',
  );
  await makeKey(page, 'browser');
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(
    /said 401 .*credentials were refused or are missing|needs a username and password/,
  );
  await page.getByLabel('Registry username').fill(r.basic.username);
  await page.getByLabel('Registry password').fill('wrong');
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(/said 401/);
  const digest = await sign(page, image.tagRef, { username: r.basic.username, password: r.basic.password });
  expect(digest).toBe(image.digest);
});

test('errors are sentences: unknown image, bad reference, no key', async ({ page }) => {
  const r = regs();
  await page.goto('/#/sign');
  await expect(page.getByRole('note')).toContainText('No key can sign yet');
  await makeKey(page, 'browser');
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(`${r.tls.host}/e2e/nothing:here`);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText('said 404');
  await page.getByLabel('Image reference').fill('Not A Reference');
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText('is not a valid image reference');
});

for (const kind of ['tls', 'basic', 'token'] as const) {
  test(`through the relay to the ${kind} registry: the page lists tags, resolves the digest, pushes the signatures`, async ({
    page,
  }) => {
    const r = regs();
    const target =
      kind === 'tls'
        ? { host: r.tls.host, caFile: r.tls.caFile }
        : kind === 'basic'
          ? { host: r.basic.host, username: r.basic.username, password: r.basic.password }
          : { host: r.token!.host, caFile: r.token!.caFile, username: r.token!.username, password: r.token!.password };
    await pushSampleImage(target, 'e2e/three', 'v0');
    const image = await pushSampleImage(target, 'e2e/three', 'v1');
    const pub = await makeKey(page, 'browser');
    await page.goto('/#/sign');
    await page.getByLabel('Image reference').fill(image.tagRef);
    if (target.username) {
      await page.getByLabel('Registry username').fill(target.username);
      await page.getByLabel('Registry password').fill(target.password!);
    }
    await page.getByRole('button', { name: 'Look up' }).click();
    const what = page.getByRole('region', { name: 'What will be signed' });
    await expect(what).toContainText(image.digest);
    await expect(what.getByLabel('Tags in this repository')).toContainText('v0');
    await expect(what.getByLabel('Tags in this repository')).toContainText('v1');
    await page.getByRole('button', { name: 'Sign' }).click();
    await expect(status(page)).toContainText(`Signed ${image.digest}`, LONG);
    const creds = target.username
      ? ['--registry-username', target.username, '--registry-password', target.password!]
      : [];
    const env = cosignEnv(home, target.caFile ? { caFile: target.caFile } : {});
    const v2 = await run('cosign2', cosignVerifyArgs(pubFile(pub), image.ref, creds), { env });
    expect(v2.code, v2.stderr).toBe(0);
    const v3 = await run(
      'cosign3',
      cosignVerifyArgs(pubFile(pub), image.ref, ['--trusted-root', offline.trustedRoot, ...creds]),
      { env },
    );
    expect(v3.code, v3.stderr).toBe(0);
  });
}

test('a tag lock another writer keeps stops signing with a sentence saying who holds it and until when', async ({
  page,
  baseURL,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/sign-locked', 'v1');
  await makeKey(page, 'browser');
  // Another writer (this test, from the same address) takes the .sig tag's lock and keeps it.
  const key = `${image.repository}:${image.digest.replace(':', '-')}.sig`;
  const held = await fetch(`${baseURL}/locks/acquire`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  expect(held.status).toBe(200);
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(image.ref);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(status(page)).toContainText(
    new RegExp(
      `Another writer holds the lock on ${key.replace(/[.]/g, '\\.')} \\(this address, held for \\d+ s\\); its hold ends within \\d+ s at the latest`,
    ),
    LONG,
  );
  await expect(status(page)).not.toContainText('Signed');
});

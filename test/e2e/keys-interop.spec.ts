/**
 * Keys made or unlocked by the page, used by the real tools: cosign 2.5 and 3.1 read the
 * downloaded cosign.key, sign an image in the real registry with it, and verify; skopeo 1.18 signs
 * with it and enforces a sigstoreSigned policy; keys made by cosign unlock in the page.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushSampleImage, skopeoAccess } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  cosignVerifyArgs,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  skopeoPolicyPull,
  skopeoSignedCopy,
  type ToolHome,
} from '../rig/tools.ts';
import { tempFile } from './helpers.ts';

const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');
const status = (page: Page) => page.getByRole('status');

async function downloads(page: Page): Promise<{ key: string; pub: string }> {
  const [k] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download cosign.key' }).click(),
  ]);
  const [p] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download cosign.pub' }).click(),
  ]);
  return { key: await k.path(), pub: await p.path() };
}

let home: ToolHome;
test.beforeAll(async () => {
  home = await makeToolHome();
});
test.afterAll(async () => {
  await home.cleanup();
});

test('a key pair generated in the page signs with cosign 2.5, cosign 3.1 and skopeo, and they verify', async ({
  page,
}) => {
  const regs = registriesFromEnv()!;
  const password = 'page made this';
  await page.goto('/#/keys');
  await page.getByLabel('New key password').fill(password);
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await expect(status(page)).toContainText('Key ready', { timeout: 60_000 });
  const { key, pub } = await downloads(page);
  const pubPem = readFileSync(pub, 'utf8');

  // Both cosigns read the key with the password and print exactly the page's public key.
  for (const tool of ['cosign2', 'cosign3'] as const) {
    const r = await runOk(tool, ['public-key', '--key', key], { env: cosignEnv(home, { password }) });
    expect(r.stdout, tool).toBe(pubPem);
    const wrong = await run(tool, ['public-key', '--key', key], { env: cosignEnv(home, { password: 'nope' }) });
    expect(wrong.code, `${tool} with a wrong password`).not.toBe(0);
  }

  // cosign 2.5 (legacy .sig) and cosign 3.1 (bundle) sign an image in the TLS registry.
  const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, 'keys/generated', 'v1');
  const env = cosignEnv(home, { password, caFile: regs.tls.caFile });
  await runOk('cosign2', cosign2SignArgs(key, image.ref), { env });
  const offline = await makeCosign3Offline(home);
  await runOk('cosign3', cosign3SignArgs(key, offline, image.ref), { env });
  const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env });
  expect(v2.code, v2.stderr).toBe(0);
  expect(JSON.parse(v2.stdout)[0].critical.image['docker-manifest-digest']).toBe(image.digest);
  const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', offline.trustedRoot]), { env });
  expect(v3.code, v3.stderr).toBe(0);

  // skopeo signs a copy with the same key; skopeo's policy and cosign both accept it.
  const skopeo = await skopeoAccess({ host: regs.tls.host, caFile: regs.tls.caFile }, home.dir);
  const dest = `${regs.tls.host}/keys/skopeo-signed:v1`;
  await skopeoSignedCopy(home, skopeo, key, password, image.tagRef, dest);
  const pulled = await skopeoPolicyPull(home, skopeo, pub, dest, { identity: { type: 'matchRepoDigestOrExact' } });
  expect(pulled.code, pulled.stderr).toBe(0);
  const skopeoSigned = await run('cosign2', cosignVerifyArgs(pub, dest), { env });
  expect(skopeoSigned.code, skopeoSigned.stderr).toBe(0);

  // And the policy really is enforced: with another key it refuses.
  const refused = await skopeoPolicyPull(home, skopeo, join(VECTORS, 'cosign2-pw.pub'), dest);
  expect(refused.code).not.toBe(0);
});

const imports: [string, string][] = [
  ['ec-p256-sec1.pem', 'ECDSA P-256'],
  ['ec-p384-pkcs8.pem', 'ECDSA P-384'],
  ['ec-p521-sec1.pem', 'ECDSA P-521'],
  ['rsa-2048-pkcs1.pem', 'RSA 2048'],
  ['rsa-3072-pkcs8.pem', 'RSA 3072'],
  ['ed25519-pkcs8.pem', 'Ed25519'],
];
for (const [file, algorithm] of imports) {
  test(`import ${file}: the re-exported cosign.key is read by cosign 2.5 and 3.1 and signs a blob that verifies`, async ({
    page,
  }) => {
    await page.goto('/#/keys');
    await page.getByLabel('PEM private key').setInputFiles(join(VECTORS, file));
    await page.getByLabel('Password for the imported key').fill('imported');
    await page.getByRole('button', { name: 'Import key' }).click();
    await expect(status(page)).toContainText(`Key ready: cosign key, ${algorithm}`, { timeout: 60_000 });
    const { key, pub } = await downloads(page);
    const expectedPub = run('openssl', ['pkey', '-in', join(VECTORS, file), '-pubout']);
    expect(readFileSync(pub, 'utf8')).toBe((await expectedPub).stdout);
    const env = cosignEnv(home, { password: 'imported' });
    for (const tool of ['cosign2', 'cosign3'] as const) {
      expect((await runOk(tool, ['public-key', '--key', key], { env })).stdout).toBe(readFileSync(pub, 'utf8'));
    }
    const blob = tempFile('blob.txt', `signed by ${file}\n`);
    const sig = blob + '.sig';
    await runOk(
      'cosign2',
      ['sign-blob', '--key', key, '--tlog-upload=false', '--yes', '--output-signature', sig, blob],
      { env },
    );
    const verified = await run(
      'cosign3',
      ['verify-blob', '--key', pub, '--insecure-ignore-tlog=true', '--signature', sig, blob],
      { env },
    );
    expect(verified.code, verified.stderr).toBe(0);
  });
}

test('an RSA-1024 key is refused on import, as cosign 3.1 refuses it', async ({ page }) => {
  await page.goto('/#/keys');
  await page.getByLabel('PEM private key').setInputFiles(join(VECTORS, 'rsa-1024-pkcs8.pem'));
  await page.getByLabel('Password for the imported key').fill('x');
  await page.getByRole('button', { name: 'Import key' }).click();
  await expect(status(page)).toContainText('This RSA key has 1024 bits');
});

test('a key on a curve cosign does not support is refused on import', async ({ page }) => {
  const pem = (await runOk('openssl', ['ecparam', '-name', 'secp256k1', '-genkey', '-noout'])).stdout;
  await page.goto('/#/keys');
  await page.getByLabel('PEM private key').setInputFiles(tempFile('k1.pem', pem));
  await page.getByLabel('Password for the imported key').fill('x');
  await page.getByRole('button', { name: 'Import key' }).click();
  await expect(status(page)).toContainText('elliptic curve 1.3.132.0.10, which cosign does not support');
});

test('an envelope that decrypts to a SEC1 key, which cosign refuses, is refused', async ({ page }) => {
  await page.goto('/#/keys');
  await page.getByLabel('Cosign private key').setInputFiles(join(VECTORS, 'legacy-cosign-p256-sec1-plaintext.key'));
  await page.getByLabel('Key password', { exact: true }).fill('correct horse');
  await page.getByRole('button', { name: 'Unlock key' }).click();
  await expect(status(page)).toContainText('This is not a PKCS#8 private key');
  await expect(status(page)).not.toContainText('Key ready');
});

const unlocks: [string, string, string][] = [
  ['cosign2-pw.key', 'correct horse', 'cosign2-pw.pub'],
  ['cosign3-empty.key', '', 'cosign3-empty.pub'],
  ['legacy-cosign-p256.key', 'correct horse', 'legacy-cosign-p256.public-key.pub'],
  ['cosign3-import-rsa-2048-pkcs1.key', 'correct horse', 'cosign3-import-rsa-2048-pkcs1.pub'],
];
for (const [file, password, pubFile] of unlocks) {
  test(`unlock ${file} made by the real tools`, async ({ page }) => {
    await page.goto('/#/keys');
    await page.getByLabel('Cosign private key').setInputFiles(join(VECTORS, file));
    await page.getByLabel('Key password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Unlock key' }).click();
    await expect(status(page)).toContainText('Key ready', { timeout: 60_000 });
    await expect(page.getByLabel('Public key', { exact: true })).toHaveValue(
      readFileSync(join(VECTORS, pubFile), 'utf8'),
    );
  });
}

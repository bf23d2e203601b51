/**
 * The Sign page's external signer, as a person with an offline key uses it: a key made with the
 * real openssl outside the page, only its public key given to the page; the bytes downloaded from
 * the page and signed with the very command lines the page shows (run as they are, with sh -c);
 * the signatures pasted as base64 or uploaded as files; pushed; then the real cosign 2.5 (legacy),
 * cosign 3.1 (bundle) and skopeo 1.18 (sigstoreSigned policy) verify. Wrong signatures (another
 * key, a flipped byte, not base64, the wrong length) are refused by code and nothing is pushed.
 */
import { expect, test, type Locator, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RegistryClient } from '../../shared/registry/client.ts';
import { pushSampleImage, skopeoAccess, type PushedImage } from '../rig/images.ts';
import { registriesFromEnv } from '../rig/registries.ts';
import {
  cosignEnv,
  cosignVerifyArgs,
  makeCosign3Offline,
  makeToolHome,
  run,
  runOk,
  skopeoPolicyPull,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';
import { caFetch } from '../integration/ca-fetch.ts';

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
const item = (page: Page, n: number): Locator => page.getByRole('listitem', { name: new RegExp(`^Item ${n}: `) });

/** A folder standing for the offline machine, with a key made there by openssl. */
async function offlineMachine(
  kind: 'p256' | 'rsa' = 'p256',
): Promise<{ dir: string; pub: string; pubPem: string; other: string }> {
  const dir = mkdtempSync(join(home.dir, 'offline-'));
  const gen = (out: string) =>
    kind === 'p256'
      ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', out]
      : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', out];
  await runOk('openssl', gen(join(dir, 'key.pem')));
  await runOk('openssl', gen(join(dir, 'other.pem')));
  const pub = join(dir, 'cosign.pub');
  await runOk('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout', '-out', pub]);
  return { dir, pub, pubPem: readFileSync(pub, 'utf8'), other: join(dir, 'other.pem') };
}

/** Opens the Sign page in external-signer mode with a public key given as a file, and prepares. */
async function prepare(page: Page, ref: string, pubFile?: string): Promise<void> {
  await page.goto('/#/sign');
  await page.getByRole('radio', { name: /External signer/ }).check();
  if (pubFile) {
    await page
      .getByLabel('External signer public key')
      .selectOption({ label: 'Another public key: paste it or choose cosign.pub' });
    await page.getByLabel('Public key file').setInputFiles(pubFile);
  }
  await page.getByLabel('Image reference').fill(ref);
  await page.getByRole('button', { name: 'Prepare bytes to sign' }).click();
  await expect(page.getByRole('region', { name: 'Bytes to sign' })).toBeVisible({ timeout: 30_000 });
}

/** Downloads one file of an item into `dir`, under the name the page gives it; returns that name. */
async function download(page: Page, n: number, what: 'bytes' | 'SHA-256', dir: string): Promise<string> {
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    item(page, n)
      .getByRole('link', { name: new RegExp(`^Download ${what} \\(`) })
      .click(),
  ]);
  const name = dl.suggestedFilename();
  await dl.saveAs(join(dir, name));
  return name;
}

/** The command lines the page shows for an item (the direct form, or the digest form). */
async function commands(page: Page, n: number, form: 'direct' | 'digest'): Promise<string[]> {
  const it = item(page, n);
  if (form === 'digest') await it.getByText('Signing the digest instead (KMS-style)').click();
  const pre = it.getByLabel(form === 'direct' ? `Commands for item ${n}` : `Digest commands for item ${n}`, {
    exact: true,
  });
  return (await pre.textContent())!.split('\n').filter((l) => l.trim());
}

/** Runs command lines as a person pasting them into a shell in `dir`; returns the last one's output. */
async function shell(lines: string[], dir: string): Promise<string> {
  let out = '';
  for (const line of lines) {
    const r = await run('/bin/sh', ['-c', line], { cwd: dir });
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    out = r.stdout;
  }
  return out;
}

/** Signs item n on the offline machine as the page says; returns the base64 and the signature file. */
async function signItem(
  page: Page,
  n: number,
  dir: string,
  form: 'direct' | 'digest' = 'direct',
): Promise<{ base64: string; file: string }> {
  const bytesName = await download(page, n, 'bytes', dir);
  if (form === 'digest') await download(page, n, 'SHA-256', dir);
  const lines = await commands(page, n, form);
  expect(lines.join('\n')).toContain(bytesName.replace(/\.bin$/, ''));
  // The digest form's first line recomputes the .sha256 the page gave; both must be the same bytes.
  const given = form === 'digest' ? readFileSync(join(dir, bytesName.replace(/\.bin$/, '.sha256'))) : null;
  const base64 = (await shell(lines, dir)).trim();
  if (given) expect(readFileSync(join(dir, bytesName.replace(/\.bin$/, '.sha256')))).toEqual(given);
  return { base64, file: join(dir, bytesName.replace(/\.bin$/, '.sig')) };
}

async function verifyWithTools(pub: string, image: PushedImage, index = false): Promise<void> {
  const r = regs();
  const env = cosignEnv(home, { caFile: r.tls.caFile });
  for (const ref of [image.ref, ...(index ? image.platforms.map((p) => p.ref) : [])]) {
    const v2 = await run('cosign2', cosignVerifyArgs(pub, ref), { env });
    expect(v2.code, `cosign 2.5 ${ref}: ${v2.stderr}`).toBe(0);
    const v3 = await run('cosign3', cosignVerifyArgs(pub, ref, ['--trusted-root', offline.trustedRoot]), { env });
    expect(v3.code, `cosign 3.1 ${ref}: ${v3.stderr}`).toBe(0);
  }
  const access = await skopeoAccess({ host: r.tls.host, caFile: r.tls.caFile }, home.dir);
  const s = await skopeoPolicyPull(home, access, pub, image.tagRef, {
    identity: { type: 'matchRepoDigestOrExact' },
    all: index,
  });
  expect(s.code, `skopeo: ${s.stderr}`).toBe(0);
}

test('an openssl key outside the page: download, sign with the shown commands, paste and upload, push; cosign 2.5, 3.1 and skopeo verify', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/external-one', 'v1');
  const m = await offlineMachine();
  await prepare(page, image.tagRef, m.pub);
  const region = page.getByRole('region', { name: 'Bytes to sign' });
  await expect(region.getByRole('listitem')).toHaveCount(2);
  await expect(item(page, 1)).toContainText(`1. legacy signature payload for ${image.digest}`);
  await expect(item(page, 2)).toContainText(`2. DSSE PAE for the bundle of ${image.digest}`);
  const push = page.getByRole('button', { name: 'Push signatures' });
  await expect(push).toBeDisabled();

  // Item 1: pasted as base64 (the output of the shown base64 line).
  const one = await signItem(page, 1, m.dir);
  await item(page, 1).getByLabel('Signature 1 (base64)').fill(one.base64);
  await expect(item(page, 1).getByLabel('Check of item 1')).toContainText(
    '✓ Verifies with the public key (pasted base64)',
  );
  await expect(push).toBeDisabled();
  // Item 2: the raw signature file openssl wrote.
  const two = await signItem(page, 2, m.dir);
  await item(page, 2).getByLabel('Signature file 2').setInputFiles(two.file);
  await expect(item(page, 2).getByLabel('Check of item 2')).toContainText('✓ Verifies with the public key (file ');
  await expect(page.getByText('2 of 2 signatures check')).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('external-signer-ready.png'), fullPage: true });

  await push.click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
  await expect(page.getByRole('link', { name: 'Verification link' })).toBeVisible();
  await verifyWithTools(m.pub, image);
});

test('wrong signatures are refused by code: another key, a flipped byte, not base64, the wrong length; nothing is pushed', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/external-bad', 'v1');
  const m = await offlineMachine();
  // This time the public key is pasted.
  await page.goto('/#/sign');
  await page.getByRole('radio', { name: /External signer/ }).check();
  await page.getByLabel('Public key PEM').fill(m.pubPem);
  await page.getByLabel('Image reference').fill(image.tagRef);
  await page.getByRole('button', { name: 'Prepare bytes to sign' }).click();
  await expect(item(page, 2)).toBeVisible({ timeout: 30_000 });

  const good = await signItem(page, 1, m.dir);
  const field = item(page, 1).getByLabel('Signature 1 (base64)');
  const check = item(page, 1).getByLabel('Check of item 1');
  const push = page.getByRole('button', { name: 'Push signatures' });

  // Another key signed the right bytes.
  const bytes = readdirBin(m.dir, '01-legacy-');
  const otherB64 = (
    await shell([`openssl dgst -sha256 -sign other.pem -out other.sig ${bytes}`, 'base64 -w0 other.sig'], m.dir)
  ).trim();
  await field.fill(otherB64);
  await expect(check).toContainText('does not verify with this key over these exact bytes');
  await expect(check).toContainText('PKCS11_EXTERNAL_SIGNATURE_INVALID');

  // The right signature with one byte flipped, as a file.
  const flipped = readFileSync(good.file);
  flipped[flipped.length - 1]! ^= 0x01;
  const flippedFile = join(m.dir, 'flipped.sig');
  writeFileSync(flippedFile, flipped);
  await field.fill('');
  await item(page, 1).getByLabel('Signature file 1').setInputFiles(flippedFile);
  await expect(check).toContainText(/does not verify|malformed/);
  await expect(check).toContainText('PKCS11_EXTERNAL_SIGNATURE_INVALID');

  // Not base64.
  await field.fill('this is not a signature!');
  await expect(check).toContainText('This is not base64');
  await expect(check).toContainText('PKCS11_EXTERNAL_SIGNATURE_INVALID');

  // Base64, but far too short for a P-256 DER signature.
  await field.fill(Buffer.from('0123456789').toString('base64'));
  await expect(check).toContainText('is malformed');
  await expect(check).toContainText('PKCS11_EXTERNAL_SIGNATURE_INVALID');

  // The right signature for item 1 pasted into item 2 (over other bytes).
  await item(page, 2).getByLabel('Signature 2 (base64)').fill(good.base64);
  await expect(item(page, 2).getByLabel('Check of item 2')).toContainText('does not verify with this key');
  await page.screenshot({ path: test.info().outputPath('external-signer-refused.png'), fullPage: true });

  // Item 1 right, item 2 still wrong: nothing may be pushed.
  await field.fill(good.base64);
  await expect(check).toContainText('✓ Verifies');
  await expect(push).toBeDisabled();
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  expect(await client.listTags({ registry: r.tls.host, repository: 'e2e/external-bad' })).toEqual(['v1']);
});

/** The name of the one downloaded file in `dir` that starts with `prefix` and ends in .bin. */
function readdirBin(dir: string, prefix: string): string {
  const found = readdirSync(dir).find((n) => n.startsWith(prefix) && n.endsWith('.bin'));
  if (!found) throw new Error(`no ${prefix}*.bin in ${dir}`);
  return found;
}

test('a 2-platform index: every platform’s bytes listed, signed in the digest (KMS) form, pushed; cosign and skopeo copy --all verify', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/external-index', 'v1', {
    index: true,
  });
  const m = await offlineMachine();
  await prepare(page, image.tagRef, m.pub);
  const region = page.getByRole('region', { name: 'Bytes to sign' });
  await expect(region.getByRole('listitem')).toHaveCount(6);
  await expect(item(page, 1)).toContainText(`legacy signature payload for ${image.digest} (the index)`);
  for (const [i, p] of image.platforms.entries()) {
    const name = [p.platform.os, p.platform.architecture, p.platform.variant].filter(Boolean).join('/');
    await expect(item(page, 3 + 2 * i)).toContainText(`legacy signature payload for ${p.digest} (${name})`);
    await expect(item(page, 4 + 2 * i)).toContainText(`DSSE PAE for the bundle of ${p.digest} (${name})`);
  }
  for (let n = 1; n <= 6; n++) {
    const s = await signItem(page, n, m.dir, n % 2 === 0 ? 'digest' : 'direct');
    await item(page, n).getByLabel(`Signature ${n} (base64)`).fill(s.base64);
    await expect(item(page, n).getByLabel(`Check of item ${n}`)).toContainText('✓ Verifies');
  }
  await page.getByRole('button', { name: 'Push signatures' }).click();
  await expect(status(page)).toContainText('the index and its 2 platform manifests', { timeout: 60_000 });
  await verifyWithTools(m.pub, image, true);
});

test('the signing script: downloaded, run with sh next to key.pem, its output pasted whole; an index pushed and verified', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/external-script', 'v1', {
    index: true,
  });
  const m = await offlineMachine();
  await prepare(page, image.tagRef, m.pub);
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download the signing script (sign-all.sh)' }).click(),
  ]);
  expect(dl.suggestedFilename()).toBe('sign-all.sh');
  await dl.saveAs(join(m.dir, 'sign-all.sh'));
  // Exactly the line the page shows.
  await expect(page.getByRole('region', { name: 'Bytes to sign' })).toContainText('sh sign-all.sh key.pem');
  const out = await shell(['sh sign-all.sh key.pem'], m.dir);
  expect(out.trim().split('\n')).toHaveLength(6);
  // A line for an item that is not there is refused, and nothing is taken from it.
  await page.getByLabel('All signatures').fill(`${out}7 AAAA`);
  await expect(page.getByRole('region', { name: 'Bytes to sign' })).toContainText('There is no item 7 here');
  await page.getByLabel('All signatures').fill(out);
  await expect(page.getByText('6 of 6 signatures check')).toBeVisible();
  for (let n = 1; n <= 6; n++) {
    await expect(item(page, n).getByLabel(`Check of item ${n}`)).toContainText('✓ Verifies');
  }
  await page.getByRole('button', { name: 'Push signatures' }).click();
  await expect(status(page)).toContainText('the index and its 2 platform manifests', { timeout: 60_000 });
  await verifyWithTools(m.pub, image, true);
});

test('a key of the Keys page as the external signer’s public key (RSA, imported), signed outside with openssl', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/external-rsa', 'v1');
  await page.goto('/#/keys');
  await page.getByLabel('PEM private key').setInputFiles(join(VECTORS, 'rsa-2048-pkcs1.pem'));
  await page.getByLabel('Password for the imported key').fill('pw');
  await page.getByRole('button', { name: 'Import key' }).click();
  await expect(status(page)).toContainText('Key ready', { timeout: 60_000 });
  const pubPem = await page.getByLabel('Public key', { exact: true }).inputValue();
  // The key is locked on the Sign page as far as signing goes: only its public key is used.
  await page.getByRole('button', { name: 'Lock', exact: true }).click();
  await prepare(page, image.tagRef);
  await expect(page.getByLabel('External signer public key')).toHaveValue(/.+/);
  await expect(page.getByLabel('External signer public key').locator('option:checked')).toContainText('RSA 2048');
  const dir = mkdtempSync(join(home.dir, 'rsa-'));
  writeFileSync(join(dir, 'key.pem'), readFileSync(join(VECTORS, 'rsa-2048-pkcs1.pem')));
  for (const n of [1, 2]) {
    const s = await signItem(page, n, dir, n === 2 ? 'digest' : 'direct');
    await item(page, n).getByLabel(`Signature ${n} (base64)`).fill(s.base64);
    await expect(item(page, n).getByLabel(`Check of item ${n}`)).toContainText('✓ Verifies');
  }
  await page.getByRole('button', { name: 'Push signatures' }).click();
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
  const pub = join(dir, 'cosign.pub');
  writeFileSync(pub, pubPem);
  await verifyWithTools(pub, image);
});

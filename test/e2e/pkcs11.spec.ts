/**
 * Hardware keys in the page: the server started by global-setup.ts has a SoftHSM token with a
 * P-256 and an RSA-2048 key (PIN 1234, no PKCS11_PIN, so the page asks for it) behind its /pkcs11
 * endpoint. The Keys page connects with the relay access token and lists both keys; the Sign page
 * signs with them in both formats, asking for the token PIN; the real cosign 2.5, cosign 3.1 and
 * skopeo verify with the token's public keys. A wrong PIN, a missing PIN and a wrong access token
 * are refused with readable sentences and codes, and nothing is pushed. Every request is recorded:
 * the PIN goes only to /pkcs11/sign, the access token only to /pkcs11/*, and neither is stored.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { RegistryClient } from '../../shared/registry/client.ts';
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
import { buildPinLockModule, createSoftHsmToken } from '../rig/softhsm.ts';
import { caFetch } from '../integration/ca-fetch.ts';
import { findLeaks, recordRequests, type RecordedRequest } from './helpers.ts';
import { checkWidths } from './layout-check.ts';

interface HsmInfo {
  apiToken: string;
  pin: string;
  tokenLabel: string;
  keys: { label: string; algorithm: string; uri: string; publicKeyPem: string }[];
}
const hsm = (): HsmInfo => JSON.parse(process.env['COSIGN_WEB_PKCS11']!) as HsmInfo;
const regs = () => registriesFromEnv()!;
const P256 = 'cosign-web e2e p256';
const RSA = 'cosign-web e2e rsa';
let home: ToolHome;
let offline: Cosign3Offline;

test.beforeAll(async () => {
  home = await makeToolHome();
  offline = await makeCosign3Offline(home);
});
test.afterAll(() => home.cleanup());

const status = (page: Page) => page.getByRole('status');
const keyOf = (label: string) => hsm().keys.find((k) => k.label === label)!;

async function connect(page: Page, token = hsm().apiToken): Promise<void> {
  await page.goto('/#/keys');
  await page.getByLabel('Relay access token').fill(token);
  await page.getByRole('button', { name: 'Connect' }).click();
}

/** On the Sign page: the hardware key, the image, the PIN (when given); then "Sign". */
/** The next answer of /pkcs11/sign: each attempt's own outcome is awaited, not an earlier one's text. */
const answered = (page: Page): Promise<unknown> =>
  page.waitForResponse((res) => new URL(res.url()).pathname === '/pkcs11/sign');

async function signWith(page: Page, label: string, ref: string, pin?: string): Promise<void> {
  await page.goto('/#/sign');
  const chooser = page.getByLabel('Signing key');
  const option = chooser.locator('option', { hasText: `hardware key (PKCS#11) ${label}` });
  await chooser.selectOption((await option.getAttribute('value'))!);
  await page.getByLabel('Image reference').fill(ref);
  if (pin !== undefined) await page.getByLabel('Token PIN').fill(pin);
  await page.getByRole('button', { name: 'Sign' }).click();
}

function pubFile(pem: string): string {
  const f = join(home.dir, `pub-${Math.random()}.pem`);
  writeFileSync(f, pem);
  return f;
}

async function verifyWithTools(pub: string, image: PushedImage, skopeo: boolean): Promise<void> {
  const r = regs();
  const env = cosignEnv(home, { caFile: r.tls.caFile });
  const v2 = await run('cosign2', cosignVerifyArgs(pub, image.ref), { env });
  expect(v2.code, `cosign 2.5: ${v2.stderr}`).toBe(0);
  const v3 = await run('cosign3', cosignVerifyArgs(pub, image.ref, ['--trusted-root', offline.trustedRoot]), { env });
  expect(v3.code, `cosign 3.1: ${v3.stderr}`).toBe(0);
  if (skopeo) {
    const access = await skopeoAccess({ host: r.tls.host, caFile: r.tls.caFile }, home.dir);
    const s = await skopeoPolicyPull(home, access, pub, image.tagRef, { identity: { type: 'matchRepoDigestOrExact' } });
    expect(s.code, `skopeo: ${s.stderr}`).toBe(0);
  }
}

const pathOf = (r: RecordedRequest) => new URL(r.url).pathname;

/**
 * Starts another instance of the server (same command as global-setup) with `env` on a port of its
 * own choosing (port 0: one picked here could be taken meanwhile); returns its URL and a stop.
 */
async function startServer(env: Record<string, string>): Promise<{ url: string; stop: () => void }> {
  const server = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EMBEDDED_REGISTRY: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  server.stdout.on('data', (d: Buffer) => (output += d.toString()));
  server.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /^(http:\/\/localhost:\d+)$/m.exec(output);
    if (m) return { url: m[1]!, stop: () => server.kill('SIGTERM') };
    if (Date.now() > deadline || server.exitCode !== null) {
      server.kill('SIGKILL');
      throw new Error(`the second server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The PIN appears in no request but the /pkcs11/sign ones: no header, no query value, no JSON field. */
function pinElsewhere(requests: RecordedRequest[], pin: string): string[] {
  const found: string[] = [];
  for (const r of requests) {
    if (pathOf(r) === '/pkcs11/sign') continue;
    const url = new URL(r.url);
    if ([...url.searchParams.values()].includes(pin)) found.push(`${r.url}: query`);
    for (const [k, v] of Object.entries(r.headers)) if (v.includes(pin) || /pin/i.test(k)) found.push(`${r.url}: ${k}`);
    if (/"pin"\s*:/.test(r.body)) found.push(`${r.url}: body`);
  }
  return found;
}

async function storedText(page: Page): Promise<string> {
  return page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage } }));
}

test('Keys page: the relay access token and Connect list both token keys with their pkcs11: URIs and labels', async ({
  page,
}) => {
  await connect(page);
  await expect(status(page)).toContainText('Key ready: 2 hardware keys (PKCS#11) from the relay');
  const card = page.getByRole('region', { name: 'Hardware key (PKCS#11)' });
  const list = card.getByRole('list', { name: 'Hardware keys' });
  for (const k of hsm().keys) {
    const li = list.getByRole('listitem', { name: k.label, exact: true });
    await expect(li).toContainText(k.label);
    await expect(li).toContainText(k.uri);
    await expect(li).toContainText(k.algorithm === 'ECDSA P-256' ? 'ECDSA P-256' : 'RSA 2048');
    await expect(li).toContainText(hsm().tokenLabel);
    const shown = await li.getByLabel(`Public key of ${k.label}`, { exact: true }).inputValue();
    expect(shown.replace(/\s+/g, '')).toBe(k.publicKeyPem.replace(/\s+/g, ''));
  }
  await expect(list.getByRole('listitem')).toHaveCount(2);
  // The token field is emptied: the token lives in the tab's memory, not in the page's fields or storage.
  await expect(page.getByLabel('Relay access token')).toHaveValue('');
  expect(await storedText(page)).not.toContain(hsm().apiToken);
  await card.screenshot({ path: test.info().outputPath('pkcs11-keys-card.png') });

  // The Sign page offers them, preselects the first, and asks for the PIN.
  await page.goto('/#/sign');
  await expect(page.getByLabel('Signing key')).toContainText(`hardware key (PKCS#11) ${P256} — ECDSA P-256`);
  await expect(page.getByLabel('Signing key')).toContainText(`hardware key (PKCS#11) ${RSA} — RSA 2048`);
  await expect(page.getByLabel('Token PIN')).toBeVisible();
});

test('the P-256 token key signs both formats with the Token PIN; cosign 2.5, 3.1 and skopeo accept; the PIN goes only to /pkcs11/sign and the token only to /pkcs11/*', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-p256', 'v1');
  const requests = recordRequests(page);
  await connect(page);
  await expect(status(page)).toContainText('Key ready');
  await signWith(page, P256, image.tagRef, hsm().pin);
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
  await expect(status(page)).toContainText('legacy .sig and Sigstore bundle');
  await expect(page.getByLabel('Token PIN')).toHaveValue('');
  await expect(page.getByRole('link', { name: 'Verification link' })).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('pkcs11-signed.png'), fullPage: true });
  await verifyWithTools(pubFile(keyOf(P256).publicKeyPem), image, true);

  const signs = requests.filter((q) => pathOf(q) === '/pkcs11/sign');
  expect(signs.length).toBe(2); // one legacy payload, one DSSE PAE
  for (const q of signs) {
    const body = JSON.parse(q.body) as { uri: string; pin: string; payload: string };
    expect(body.pin).toBe(hsm().pin);
    expect(body.uri).toBe(keyOf(P256).uri);
    expect(new URL(q.url).origin).toBe(new URL(page.url()).origin);
  }
  expect(pinElsewhere(requests, hsm().pin)).toEqual([]);
  const elsewhere = requests.filter((q) => !pathOf(q).startsWith('/pkcs11/'));
  expect(elsewhere.length).toBeGreaterThan(5);
  expect(findLeaks(elsewhere, [hsm().apiToken])).toEqual([]);
  for (const q of requests.filter((q) => pathOf(q).startsWith('/pkcs11/') && q.headers['authorization'])) {
    expect(q.headers['authorization']).toBe(`Bearer ${hsm().apiToken}`);
  }
  const stored = await storedText(page);
  expect(stored).not.toContain(hsm().apiToken);
  expect(stored).not.toMatch(/"pin"/);
});

test('a signature from the relay that does not verify (a broken token, a tampering hop) is not used and nothing is pushed', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-bad-signature', 'v1');
  const repo = { registry: r.tls.host, repository: 'e2e/pkcs11-bad-signature' };
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  // The real relay signs; its answer has one byte of the signature flipped on the way back.
  let tampered = 0;
  await page.route('**/pkcs11/sign', async (route) => {
    const res = await route.fetch();
    const body = (await res.json()) as { signature: string };
    const sig = Buffer.from(body.signature, 'base64');
    sig.writeUInt8(sig.readUInt8(sig.length - 3) ^ 0x01, sig.length - 3);
    tampered++;
    await route.fulfill({ response: res, json: { signature: sig.toString('base64') } });
  });
  await connect(page);
  await expect(status(page)).toContainText('Key ready');
  await signWith(page, P256, image.tagRef, hsm().pin);
  await expect(status(page)).toContainText('does not verify with the public key');
  await expect(status(page)).toContainText('PKCS11_SIGN_FAILED');
  expect(tampered).toBeGreaterThan(0);
  expect(await client.listTags(repo)).toEqual(['v1']);
});

test('the RSA token key signs; cosign 2.5 and 3.1 accept', async ({ page }) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-rsa', 'v1');
  await connect(page);
  await expect(status(page)).toContainText('Key ready');
  await signWith(page, RSA, `${image.repository}@${image.digest}`, hsm().pin);
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
  await verifyWithTools(pubFile(keyOf(RSA).publicKeyPem), image, false);
});

test('a wrong PIN, or none, is refused in words with its code and nothing is pushed; the right PIN then signs', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-wrong-pin', 'v1');
  const repo = { registry: r.tls.host, repository: 'e2e/pkcs11-wrong-pin' };
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  const requests = recordRequests(page);
  await connect(page);
  await expect(status(page)).toContainText('Key ready');

  await signWith(page, P256, image.tagRef, '9999');
  await expect(status(page)).toContainText('The token refused the PIN');
  await expect(status(page)).toContainText('PKCS11_PIN_INCORRECT');
  await expect(page.getByLabel('Token PIN')).toHaveValue('');
  await page.screenshot({ path: test.info().outputPath('pkcs11-wrong-pin.png'), fullPage: true });
  expect(await client.listTags(repo)).toEqual(['v1']);

  // No PIN at all: refused before anything reaches the relay.
  const before = requests.filter((q) => pathOf(q) === '/pkcs11/sign').length;
  await signWith(page, P256, image.tagRef);
  await expect(status(page)).toContainText('needs the token PIN');
  await expect(status(page)).toContainText('PKCS11_PIN_REQUIRED');
  expect(requests.filter((q) => pathOf(q) === '/pkcs11/sign').length).toBe(before);
  expect(await client.listTags(repo)).toEqual(['v1']);

  await signWith(page, P256, image.tagRef, hsm().pin);
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
  expect((await client.listTags(repo)).sort()).toEqual(
    ['v1', `sha256-${image.digest.slice(7)}`, `sha256-${image.digest.slice(7)}.sig`].sort(),
  );
});

test('wrong PINs again and again: the relay backs off and the page says how long; after the wait the right PIN signs', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-backoff', 'v1');
  const repo = { registry: r.tls.host, repository: 'e2e/pkcs11-backoff' };
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  await connect(page);
  await expect(status(page)).toContainText('Key ready');
  // The relay lets three wrong PINs through to the token, then waits before touching it again
  // (PKCS11_BACKOFF_MS, 10 s here). Each attempt's own answer is awaited, not an earlier one's text.
  for (let i = 0; i < 3; i++) {
    const answer = answered(page);
    await signWith(page, P256, image.tagRef, `000${i}`);
    await answer;
    await expect(status(page)).toContainText('PKCS11_PIN_INCORRECT');
  }
  const refused = answered(page);
  await signWith(page, P256, image.tagRef, hsm().pin);
  await refused;
  await expect(status(page)).toContainText('Too many wrong PINs for this token');
  await expect(status(page)).toContainText(/Try again in \d+ s\./);
  await expect(status(page)).toContainText('PKCS11_BACKOFF');
  expect(await client.listTags(repo)).toEqual(['v1']);
  const seconds = Number(/Try again in (\d+) s/.exec((await status(page).textContent())!)![1]);
  await page.waitForTimeout(seconds * 1000 + 300);
  await signWith(page, P256, image.tagRef, hsm().pin);
  await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
});

test('a wrong access token is refused in words with its code; no key is listed', async ({ page }) => {
  await connect(page, 'not-the-token-0123456789');
  await expect(status(page)).toContainText('The relay refused the access token');
  await expect(status(page)).toContainText('PKCS11_UNAUTHORIZED');
  await expect(page.getByRole('list', { name: 'Hardware keys' })).toHaveCount(0);
  await page.goto('/#/sign');
  await expect(page.getByLabel('Signing key')).not.toContainText('hardware key (PKCS#11)');
});

test('a server without PKCS#11: the Keys page says so, and Connect is disabled with that reason', async ({ page }) => {
  // The same server, started without PKCS11_MODULE, serving the same build of the page.
  const { url, stop } = await startServer({ PKCS11_MODULE: '', PKCS11_API_TOKEN: '' });
  try {
    await page.goto(`${url}/#/keys`);
    const card = page.getByRole('region', { name: 'Hardware key (PKCS#11)' });
    await expect(card.getByRole('note')).toContainText('This server has no PKCS#11 module configured');
    await card.screenshot({ path: test.info().outputPath('pkcs11-not-configured.png') });
    // #13 item 5: an action that cannot apply is disabled, and its description is the reason.
    const connect = page.getByRole('button', { name: 'Connect' });
    await expect(connect).toBeDisabled();
    await expect(connect).toHaveAccessibleDescription(/This server has no PKCS#11 module configured/);
    // The form of a server without a module at every width: no sideways scrolling, no serious axe findings (#13).
    await checkWidths(page, test.info(), 'pkcs11-no-module');
  } finally {
    stop();
  }
});

test('a server that holds the PIN (PKCS11_PIN): no "Token PIN" field, no PIN sent; its P-384 token key signs and cosign 2.5 and 3.1 accept', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-server-pin', 'v1');
  const token = await createSoftHsmToken({
    tokenLabel: 'server pin',
    pin: '246810',
    keys: [{ label: 'server pin p384', id: '07', type: 'EC:secp384r1' }],
  });
  const apiToken = randomBytes(20).toString('hex');
  const { url, stop } = await startServer({
    PKCS11_MODULE: token.module,
    PKCS11_API_TOKEN: apiToken,
    PKCS11_PIN: token.pin,
    SOFTHSM2_CONF: token.conf,
    RELAY_ALLOWED_REGISTRIES: r.tls.host,
    RELAY_PRIVATE_REGISTRIES: r.tls.host,
    NODE_EXTRA_CA_CERTS: r.tls.caFile,
  });
  try {
    const requests = recordRequests(page);
    await page.goto(`${url}/#/keys`);
    await page.getByLabel('Relay access token').fill(apiToken);
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect(status(page)).toContainText(
      'Key ready: 1 hardware key (PKCS#11) from the relay (the server holds the PIN)',
    );
    await expect(page.getByRole('listitem', { name: 'server pin p384', exact: true })).toContainText(
      'PIN held by the server',
    );
    await page.goto(`${url}/#/sign`);
    await expect(page.getByLabel('Signing key')).toContainText('hardware key (PKCS#11) server pin p384 — ECDSA P-384');
    await expect(page.getByLabel('Token PIN')).toHaveCount(0);
    await page.getByLabel('Image reference').fill(image.tagRef);
    await page.getByRole('button', { name: 'Sign' }).click();
    await expect(status(page)).toContainText(`Signed ${image.digest}`, { timeout: 60_000 });
    const signs = requests.filter((q) => pathOf(q) === '/pkcs11/sign');
    expect(signs.length).toBe(2);
    for (const q of signs) expect(Object.keys(JSON.parse(q.body) as object).sort()).toEqual(['payload', 'uri']);
    await verifyWithTools(pubFile(token.keys[0]!.publicKeyPem), image, false);
  } finally {
    stop();
    await token.cleanup();
  }
});

test('a token that locks its PIN after wrong tries: the page says when one more would lock it and when it is locked, by code, and nothing is pushed', async ({
  page,
}) => {
  const r = regs();
  const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, 'e2e/pkcs11-locked', 'v1');
  const token = await createSoftHsmToken({
    tokenLabel: 'locking',
    pin: '1357',
    keys: [{ label: 'locking p256', id: '09', type: 'EC:prime256v1' }],
  });
  const apiToken = randomBytes(20).toString('hex');
  /** Serves the token behind a retry counter, as a smart card: `lockAfter` wrong PINs in a row lock it. */
  const serve = async (lockAfter: number, startFailures: number) => {
    const server = await startServer({
      PKCS11_MODULE: await buildPinLockModule(token.dir, lockAfter, startFailures),
      PKCS11_API_TOKEN: apiToken,
      SOFTHSM2_CONF: token.conf,
      RELAY_ALLOWED_REGISTRIES: r.tls.host,
      RELAY_PRIVATE_REGISTRIES: r.tls.host,
      NODE_EXTRA_CA_CERTS: r.tls.caFile,
    });
    await page.goto(`${server.url}/#/keys`);
    await page.getByLabel('Relay access token').fill(apiToken);
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect(status(page)).toContainText('Key ready');
    const sign = async (pin: string) => {
      await page.goto(`${server.url}/#/sign`);
      await page.getByLabel('Image reference').fill(image.tagRef);
      await page.getByLabel('Token PIN').fill(pin);
      await page.getByRole('button', { name: 'Sign' }).click();
    };
    return { sign, stop: server.stop };
  };
  const client = new RegistryClient({ fetch: caFetch(r.tls.caFile) });
  try {
    // Locks after 3: two wrong PINs are refused, then the relay does not make the last try.
    const three = await serve(3, 0);
    try {
      for (const wrong of ['0000', '1111']) {
        const answer = answered(page);
        await three.sign(wrong);
        await answer;
        await expect(status(page)).toContainText('PKCS11_PIN_INCORRECT');
      }
      const refused = answered(page);
      await three.sign(token.pin);
      await refused;
      await expect(status(page)).toContainText('One more wrong PIN would lock this token');
      await expect(status(page)).toContainText('PKCS11_PIN_FINAL_TRY');
    } finally {
      three.stop();
    }
    // A card locked by wrong PINs typed elsewhere: refused as locked, even with the right PIN.
    const locked = await serve(2, 2);
    try {
      await locked.sign(token.pin);
      await expect(status(page)).toContainText("The token's PIN is locked after too many wrong tries");
      await expect(status(page)).toContainText('PKCS11_PIN_LOCKED');
    } finally {
      locked.stop();
    }
    expect(await client.listTags({ registry: r.tls.host, repository: 'e2e/pkcs11-locked' })).toEqual(['v1']);
  } finally {
    await token.cleanup();
  }
});

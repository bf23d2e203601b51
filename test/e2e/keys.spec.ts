/**
 * The Keys page in Chromium: every way of getting a key, the downloads, bad input, and proof
 * that neither the password nor the private key leaves the page. (Interop of the downloaded and
 * unlocked keys with the real cosign and skopeo is in keys-interop.spec.ts.)
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, scrypt as nodeScrypt } from 'node:crypto';
import { encryptCosignKey, type DeriveKey } from '../../shared/crypto/envelope.ts';
import { exportPkcs8, generateEcdsaKeyPair } from '../../shared/crypto/webcrypto.ts';
import { encodePem, decodePem } from '../../shared/encoding/pem.ts';
import { utf8, toBase64 } from '../../shared/encoding/base64.ts';
import { addVirtualAuthenticator, findLeaks, recordRequests, tempFile } from './helpers.ts';

const status = (page: Page) => page.getByRole('status');
/** How long a wait for scrypt may take on a loaded 2-core machine. */
const LONG = { timeout: 60_000 };

async function generate(page: Page, password: string): Promise<{ key: string; pub: string }> {
  await page.getByLabel('New key password').fill(password);
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await expect(status(page)).toContainText('Key ready', LONG);
  const [keyDl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download cosign.key' }).click(),
  ]);
  const [pubDl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download cosign.pub' }).click(),
  ]);
  expect(keyDl.suggestedFilename()).toBe('cosign.key');
  expect(pubDl.suggestedFilename()).toBe('cosign.pub');
  return { key: readFileSync(await keyDl.path(), 'utf8'), pub: readFileSync(await pubDl.path(), 'utf8') };
}

async function unlock(page: Page, file: string, password: string): Promise<void> {
  await page.getByLabel('Cosign private key').setInputFiles(file);
  await page.getByLabel('Key password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Unlock key' }).click();
}

const keyItems = (page: Page) => page.getByRole('region', { name: 'Your keys' }).getByRole('listitem');

test('generate a cosign key pair, download it, unlock it again; nothing secret leaves the page', async ({ page }) => {
  const requests = recordRequests(page);
  await page.goto('/#/keys');
  const password = 'horse battery staple';
  const { key, pub } = await generate(page, password);
  expect(key).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
  expect(pub).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  await expect(page.getByLabel('Public key', { exact: true })).toHaveValue(pub);
  await expect(keyItems(page)).toHaveCount(1);

  // Unlock the downloaded file: the same key, recognised rather than added twice. The status says
  // "Key ready" from generating already; the unlock's outcome is the key shown again, with new links.
  const keyLink = page.getByRole('link', { name: 'Download cosign.key' });
  const generatedHref = (await keyLink.getAttribute('href'))!;
  await unlock(page, tempFile('cosign.key', key), password);
  await expect(keyLink).not.toHaveAttribute('href', generatedHref, LONG);
  await expect(status(page)).toContainText('Key ready');
  await expect(status(page)).toContainText(/scrypt took \d+ ms \(WebAssembly\)/);
  await expect(keyItems(page)).toHaveCount(1);

  // Whatever the page requested, no request carries the password or any form of the key.
  const envelope = JSON.parse(new TextDecoder().decode(decodePem(key).bytes)) as { ciphertext: string };
  const leaks = findLeaks(requests, [password, encodeURIComponent(password), envelope.ciphertext, key.split('\n')[1]!]);
  expect(leaks).toEqual([]);
  const origins = new Set(requests.map((r) => new URL(r.url).origin));
  expect([...origins].filter((o) => !o.startsWith('http://localhost') && o !== 'null')).toEqual([]);
});

test('unlocking shows a progress bar and never freezes the page', async ({ page }) => {
  // A key with cosign's largest scrypt setting (N=2^17, about twice the default's work), so that
  // scrypt on the main thread would stall it far longer than the sampling tolerates.
  const pair = await generateEcdsaKeyPair('P-256', true);
  const nodeDerive: DeriveKey = (pw, salt, p) =>
    new Promise((resolve, reject) =>
      nodeScrypt(pw, salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 512 * 2 ** 20 }, (e, k) =>
        e ? reject(e) : resolve(new Uint8Array(k)),
      ),
    );
  const key = await encryptCosignKey(await exportPkcs8(pair.privateKey), 'pw', nodeDerive, { N: 131072, r: 8, p: 1 });
  await page.goto('/#/keys');
  // Sample the main thread with a chain of short timers while the worker runs scrypt: each tick is
  // a task the page ran, so the longest gap between ticks is the longest the page was frozen.
  await page.evaluate(() => {
    const w = window as unknown as { ticks: number[]; sampling: boolean };
    w.ticks = [performance.now()];
    w.sampling = true;
    const tick = (): void => {
      w.ticks.push(performance.now());
      if (w.sampling) setTimeout(tick, 4);
    };
    setTimeout(tick, 4);
  });
  await page.getByLabel('Cosign private key').setInputFiles(tempFile('cosign.key', key));
  await page.getByLabel('Key password', { exact: true }).fill('pw');
  await page.getByRole('button', { name: 'Unlock key' }).click();
  await expect(page.getByRole('progressbar', { name: 'Progress' })).toBeVisible();
  await expect(status(page)).toContainText('Key ready', LONG);
  const scryptMs = Number(/scrypt took (\d+) ms/.exec((await status(page).textContent()) ?? '')?.[1]);
  const ticks = await page.evaluate(() => {
    const w = window as unknown as { ticks: number[]; sampling: boolean };
    w.sampling = false;
    return w.ticks;
  });
  const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!);
  // Had scrypt run on the main thread, no tick could have run while it did: one gap would span the
  // whole scrypt time. In a worker the page keeps ticking, so every gap stays well under it, on a
  // loaded machine too, where the worker's scrypt slows with everything else. N=131072 takes
  // 150–600 ms here, never near the 50 ms that would make the comparison meaningless.
  expect(scryptMs).toBeGreaterThan(50);
  expect(gaps.filter((g) => g < scryptMs / 4).length).toBeGreaterThan(10);
  expect(Math.max(...gaps)).toBeLessThan(scryptMs);
});

test('the key list survives a reload; a cosign key comes back locked, a browser key ready', async ({ page }) => {
  await page.goto('/#/keys');
  await generate(page, 'pw');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready: browser key, ECDSA P-256');
  await page.reload();
  await expect(keyItems(page)).toHaveCount(2);
  const cosign = keyItems(page).filter({ hasText: 'cosign key' });
  const browser = keyItems(page).filter({ hasText: 'browser key' });
  await expect(cosign).toContainText('locked');
  await expect(browser).toContainText('ready');
  await browser.getByRole('button', { name: /^Check/ }).click();
  await expect(status(page)).toContainText('signed a test message and it verified');
  // The stored browser key cannot be exported, even by script on the page.
  const extractable = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('cosign-web');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const all = await new Promise<{ kind: string; privateKey?: CryptoKey }[]>((res) => {
      const r = db.transaction('keys').objectStore('keys').getAll();
      r.onsuccess = () => res(r.result as { kind: string; privateKey?: CryptoKey }[]);
    });
    const key = all.find((r) => r.kind === 'browser')!.privateKey!;
    const tryExport = await crypto.subtle.exportKey('pkcs8', key).then(
      () => 'exported',
      (e: Error) => e.name,
    );
    return { extractable: key.extractable, tryExport, stored: all.map((r) => Object.keys(r).sort().join(',')) };
  });
  expect(extractable.extractable).toBe(false);
  expect(extractable.tryExport).toBe('InvalidAccessError');
  // The cosign record holds only the encrypted PEM, never a decrypted key.
  expect(extractable.stored).toContain('algorithm,created,encryptedPem,id,kind,name,spki');
});

test("remove a key after confirming in the page's own dialog (Cancel first, focused)", async ({ page }) => {
  // #13 item 5: a styled dialog, not the browser's confirm().
  const native: string[] = [];
  page.on('dialog', (d) => {
    native.push(d.message());
    void d.dismiss();
  });
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(keyItems(page)).toHaveCount(1);
  const name = (await keyItems(page).getAttribute('aria-label'))!;
  await keyItems(page)
    .getByRole('button', { name: /^Remove/ })
    .click();
  const dialog = page.getByRole('dialog', { name: `Remove "${name}" from this browser?` });
  await expect(dialog).toContainText('cannot be exported');
  await expect(dialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(dialog).toBeHidden();
  await expect(keyItems(page)).toHaveCount(1);
  await keyItems(page)
    .getByRole('button', { name: /^Remove/ })
    .click();
  await dialog.getByRole('button', { name: 'Remove' }).click();
  await expect(keyItems(page)).toHaveCount(0);
  expect(native).toEqual([]);
  await page.reload();
  await expect(page.getByText('No keys yet.')).toBeVisible();
});

test('a passkey key: created with PRF, signs after asking the passkey, survives a reload', async ({ page }) => {
  await page.goto('/#/keys');
  await addVirtualAuthenticator(page, true);
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('Key ready: passkey key, ECDSA P-256');
  // The virtual authenticator belongs to the page's target and outlives the reload.
  await page.reload();
  const item = keyItems(page).filter({ hasText: 'passkey key' });
  await expect(item).toContainText('asks for passkey');
  await item.getByRole('button', { name: /^Check/ }).click();
  await expect(status(page)).toContainText('signed a test message and it verified');
});

test('a passkey provider without PRF is refused plainly, says what it left behind, and nothing is stored', async ({
  page,
}) => {
  await page.goto('/#/keys');
  await addVirtualAuthenticator(page, false);
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('does not support the PRF extension');
  // #13 item 6: the browser could not tell beforehand, so the passkey exists on the authenticator.
  await expect(status(page)).toContainText(
    /Left behind: the authenticator now holds a passkey "cosign-web signing key" for localhost that this page cannot use/,
  );
  await expect(keyItems(page)).toHaveCount(0);
});

test('with no authenticator, Cancel ends a passkey attempt and the buttons come back', async ({ page }) => {
  await page.goto('/#/keys');
  // WebAuthn handled by the virtual environment with no authenticator at all: the request waits.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('Creating a passkey…');
  await expect(page.getByRole('button', { name: 'Generate browser key' })).toBeDisabled();
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(status(page)).toContainText('Cancelled: no passkey was created and nothing was stored.');
  await expect(status(page)).toContainText('PASSKEY_CANCELLED');
  await expect(page.getByRole('button', { name: 'Generate browser key' })).toBeEnabled();
  await expect(page.getByRole('button', { name: 'Cancel', exact: true })).toHaveCount(0);
  await expect(keyItems(page)).toHaveCount(0);
});

test('on an IP-address origin the page says passkeys need localhost', async ({ page, baseURL }) => {
  await page.goto(baseURL!.replace('localhost', '127.0.0.1') + '/#/keys');
  await expect(page.getByRole('note')).toContainText('Passkeys only work on localhost or an HTTPS domain');
  await page.getByRole('button', { name: 'Create passkey key' }).click();
  await expect(status(page)).toContainText('do not work on an IP-address origin');
});

test.describe('bad input gets its own sentence and changes nothing', () => {
  let good: string;
  test.beforeAll(async ({ browser }) => {
    const page = await browser.newPage();
    await page.goto('/#/keys');
    good = (await generate(page, 'pw')).key;
    await page.close();
  });

  const envelope = (edit: (e: Record<string, Record<string, unknown>>) => void): string => {
    const e = JSON.parse(new TextDecoder().decode(decodePem(good).bytes)) as Record<string, Record<string, unknown>>;
    edit(e);
    return encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', utf8(JSON.stringify(e)));
  };
  const cases: [string, () => string, string, RegExp][] = [
    ['wrong password', () => good, 'wrong', /password is wrong/],
    ['truncated PEM', () => good.slice(0, 200), 'pw', /no matching END line/],
    ['non-base64 PEM', () => good.replace(/\n[A-Za-z0-9+/]{8}/, '\n%%%%%%%%'), 'pw', /not valid base64/],
    [
      'unknown PEM label',
      () => good.replaceAll('SIGSTORE', 'BANANA'),
      'pw',
      /not an encrypted cosign key|not a key this page reads/,
    ],
    ['envelope missing fields', () => envelope((e) => delete e.cipher), 'pw', /"envelope.cipher" is missing/],
    [
      'envelope field of the wrong type',
      () => envelope((e) => ((e.kdf!.params as Record<string, unknown>).r = 'eight')),
      'pw',
      /not an integer/,
    ],
    ['unknown kdf', () => envelope((e) => (e.kdf!.name = 'pbkdf2')), 'pw', /"pbkdf2" key derivation/],
    ['unknown cipher', () => envelope((e) => (e.cipher!.name = 'aes')), 'pw', /encrypted with "aes"/],
    [
      'scrypt parameters that would take gigabytes',
      () => envelope((e) => ((e.kdf!.params as Record<string, unknown>).N = 2 ** 26)),
      'pw',
      /would need 65536 MiB/,
    ],
    [
      'salt of the wrong length',
      () => envelope((e) => (e.kdf!.salt = toBase64(new Uint8Array(16)))),
      'pw',
      /salt is 16 bytes/,
    ],
    [
      'nonce of the wrong length',
      () => envelope((e) => (e.cipher!.nonce = toBase64(new Uint8Array(12)))),
      'pw',
      /nonce is 12 bytes/,
    ],
    [
      'a public key instead',
      () => '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n',
      'pw',
      /not an encrypted cosign key/,
    ],
  ];
  for (const [name, file, password, message] of cases) {
    test(name, async ({ page }) => {
      await page.goto('/#/keys');
      await page.getByRole('button', { name: 'Generate browser key' }).click();
      await expect(status(page)).toContainText('Key ready: browser key');
      await expect(keyItems(page)).toHaveCount(1);
      await unlock(page, tempFile('cosign.key', file()), password);
      await expect(status(page)).toContainText(message, LONG); // a wrong password is known after scrypt
      await expect(status(page)).not.toContainText('Key ready');
      await expect(keyItems(page)).toHaveCount(1);
      await page.reload();
      await expect(keyItems(page)).toHaveCount(1);
    });
  }
});

test.describe('each key can be managed where it is listed (#13 item 5)', () => {
  test('a stored cosign key unlocks after a reload with its password alone; Lock no longer says ready', async ({
    page,
  }) => {
    await page.goto('/#/keys');
    await generate(page, 'pw');
    await page.reload();
    const item = keyItems(page).filter({ hasText: 'cosign key' });
    await expect(item).toContainText('locked');
    const name = (await item.getAttribute('aria-label'))!;
    await item.getByLabel(`Password of ${name}`).fill('wrong');
    await item.getByRole('button', { name: `Unlock ${name}` }).click();
    await expect(status(page)).toContainText('password is wrong', LONG);
    await item.getByLabel(`Password of ${name}`).fill('pw');
    await item.getByRole('button', { name: `Unlock ${name}` }).click();
    await expect(status(page)).toContainText('Key ready: cosign key, ECDSA P-256', LONG);
    await expect(item).toContainText('ready');
    await item.getByRole('button', { name: `Check ${name}` }).click();
    await expect(status(page)).toContainText('signed a test message and it verified');
    await item.getByRole('button', { name: 'Lock', exact: true }).click();
    await expect(status(page)).toContainText(`Locked "${name}"`);
    await expect(status(page)).not.toContainText('Key ready');
    await expect(item).toContainText('locked');
  });

  test('cosign.key and cosign.pub download from the list at any time, never a plain private key', async ({ page }) => {
    await page.goto('/#/keys');
    const made = await generate(page, 'pw');
    await page.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(keyItems(page)).toHaveCount(2);
    await page.reload();
    const cosign = keyItems(page).filter({ hasText: 'cosign key' });
    const browser = keyItems(page).filter({ hasText: 'browser key' });
    const download = async (item: ReturnType<typeof keyItems>, name: RegExp) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), item.getByRole('link', { name }).click()]);
      return { file: dl.suggestedFilename(), text: readFileSync(await dl.path(), 'utf8') };
    };
    expect(await download(cosign, /encrypted private key .*cosign\.key/)).toEqual({
      file: 'cosign.key',
      text: made.key,
    });
    expect(await download(cosign, /public key .*cosign\.pub/)).toEqual({ file: 'cosign.pub', text: made.pub });
    // A browser key has no private key to give: only its public key.
    await expect(browser.getByRole('link', { name: /cosign\.key/ })).toHaveCount(0);
    const pub = await download(browser, /public key .*cosign\.pub/);
    expect(pub.file).toBe('cosign.pub');
    expect(pub.text).toBe(await browser.locator('textarea').inputValue());
    expect(pub.text).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  });

  test('default names tell keys apart; a key can be renamed and keeps its name after a reload', async ({ page }) => {
    await page.goto('/#/keys');
    await page.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(keyItems(page)).toHaveCount(1);
    await page.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(keyItems(page)).toHaveCount(2);
    const names = await keyItems(page).evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
    for (const n of names) expect(n).toMatch(/^browser key ECDSA P-256 [0-9a-f]{8}$/);
    expect(new Set(names).size).toBe(2);
    const first = keyItems(page).first();
    await first.getByRole('button', { name: `Rename ${names[0]}` }).click();
    await first.getByLabel(`New name for ${names[0]}`).fill('  release key  ');
    await first.getByRole('button', { name: 'Save' }).click();
    await expect(status(page)).toContainText(`Renamed "${names[0]}" to "release key".`);
    await page.reload();
    await expect(keyItems(page).first()).toHaveAttribute('aria-label', 'release key');
  });

  test('importing the same PEM twice is refused by fingerprint, naming the key already there', async ({ page }) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = tempFile('key.pem', privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    await page.goto('/#/keys');
    const importIt = async () => {
      await page.getByLabel('PEM private key').setInputFiles(pem);
      await page.getByLabel('Password for the imported key').fill('pw');
      await page.getByRole('button', { name: 'Import key' }).click();
    };
    await importIt();
    await expect(status(page)).toContainText('Key ready: cosign key', LONG);
    const name = (await keyItems(page).getAttribute('aria-label'))!;
    await importIt();
    await expect(status(page)).toContainText(`already in this browser as "${name}" (same fingerprint)`, LONG);
    await expect(status(page)).toContainText('KEY_DUPLICATE');
    await expect(keyItems(page)).toHaveCount(1);
  });

  test('an empty password for a new key is accepted with a warning', async ({ page }) => {
    await page.goto('/#/keys');
    await page.getByRole('button', { name: 'Generate key pair' }).click();
    await expect(status(page)).toContainText('Key ready: cosign key', LONG);
    await expect(status(page)).toContainText('Warning: it has no password');
    await expect(keyItems(page)).toHaveCount(1);
  });

  test("a locked key stays in Sign's list with a hint instead of vanishing", async ({ page }) => {
    await page.goto('/#/keys');
    await generate(page, 'pw');
    await page.getByRole('button', { name: 'Generate browser key' }).click();
    await expect(keyItems(page)).toHaveCount(2);
    const name = (await keyItems(page).filter({ hasText: 'cosign key' }).getAttribute('aria-label'))!;
    await page.reload();
    await page.goto('/#/sign');
    const options = page.locator('#signing-key option');
    await expect(options.filter({ hasText: `${name} — locked — unlock on Keys` })).toBeDisabled();
    await expect(page.getByLabel('Signing key')).toHaveValue(/./);
  });
});

test('on a phone, the outcome of "Generate browser key" is shown beside it, and focused (#13 item 4)', async ({
  page,
}) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(status(page)).toContainText('Key ready: browser key');
  await expect(status(page)).toBeInViewport();
  await expect(page.getByRole('button', { name: 'Generate browser key' })).toBeInViewport();
  expect(await page.evaluate(() => document.activeElement?.querySelector('[role=status]') !== null)).toBe(true);
});

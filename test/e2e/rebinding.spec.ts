/**
 * Issue #12, items 1 and 4, in real Chromium against the real server. DNS rebinding: a
 * host-resolver rule (`MAP rebind.example 127.0.0.1`) stands in for a name that re-resolves to
 * loopback once the attacker's page (served by `page.route`, as the first DNS answer would serve it
 * from the attacker's own address) has loaded; that page's own-origin requests then reach the app
 * and the embedded registry with `Host: rebind.example:<port>`. Blind cross-site writes: a page on
 * another loopback origin posts with `fetch(…, {mode: 'no-cors'})`. Each attack is refused, and
 * nothing it tried to change changed.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test, type Page } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';
import { E2E_PORT } from './global-setup.ts';

const APP = `http://127.0.0.1:${E2E_PORT}`;

test.use({
  launchOptions: {
    executablePath: CHROMIUM_PATH,
    // Chromium's Local Network Access checks would stop a page served by `page.route` (no address,
    // so "public") from reaching loopback; browsers without them, and a user who grants the
    // permission, are what the server must hold against.
    args: [
      ...CHROMIUM_ARGS,
      '--host-resolver-rules=MAP rebind.example 127.0.0.1',
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests',
    ],
  },
});

/** The embedded registry's `127.0.0.1:<port>`, from the sample image /config.json names. */
async function registryHost(): Promise<string> {
  const config = (await (await fetch(`${APP}/config.json`)).json()) as { sampleImage: string };
  return config.sampleImage.split('/')[0]!;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Pushes a one-config image to `repo:tag` from Node (no Origin, as cosign or crane). @returns its digest */
async function pushVictim(registry: string, repo: string, tag: string): Promise<string> {
  const config = new TextEncoder().encode(JSON.stringify({ victim: randomBytes(8).toString('hex') }));
  const put = await fetch(`http://${registry}/v2/${repo}/blobs/uploads/?digest=${sha256(config)}`, {
    method: 'POST',
    body: config,
  });
  expect(put.status).toBe(201);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [],
    }),
  );
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  expect(res.status).toBe(201);
  return sha256(manifest);
}

/** Opens the attacker's page at `origin` (its document served by the test, as the attacker's host would). */
async function openAttackerPage(page: Page, origin: string): Promise<void> {
  await page.route(`${origin}/attacker.html`, (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>attacker</title><p>hello' }),
  );
  await page.goto(`${origin}/attacker.html`);
}

test('a page whose name re-resolves to loopback reads, deletes and locks nothing through the app', async ({ page }) => {
  const registry = await registryHost();
  const digest = await pushVictim(registry, 'rebind/victim', 'v1');
  await openAttackerPage(page, `http://rebind.example:${E2E_PORT}`);
  const seen = await page.evaluate(
    async ({ registry, digest }) => {
      const answer = async (r: Response) => ({ status: r.status, body: await r.text() });
      return {
        tags: await answer(await fetch(`/relay/${registry}/v2/samples/hello/tags/list`)),
        remove: await answer(
          await fetch(`/relay/${registry}/v2/rebind/victim/manifests/${digest}`, { method: 'DELETE' }),
        ),
        lock: await answer(
          await fetch('/locks/acquire', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ key: `${registry}/rebind/victim:v1` }),
          }),
        ),
        page: await answer(await fetch('/')),
      };
    },
    { registry, digest },
  );
  for (const [what, r] of Object.entries(seen)) {
    expect(r.status, what).toBe(421);
    expect(r.body, what).toContain('rebind.example');
    expect(r.body, what).not.toContain('"tags"');
  }
  // Nothing changed: the manifest is still there, and the lock is free.
  expect((await fetch(`http://${registry}/v2/rebind/victim/manifests/${digest}`, { method: 'HEAD' })).status).toBe(200);
  const lock = await fetch(`${APP}/locks/acquire`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key: `${registry}/rebind/victim:v1` }),
    signal: AbortSignal.timeout(5000),
  });
  expect(lock.status).toBe(200);
  const { token } = (await lock.json()) as { token: string };
  await fetch(`${APP}/locks/release`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key: `${registry}/rebind/victim:v1`, token }),
  });
});

test('a page whose name re-resolves to loopback gets nothing from the embedded registry directly', async ({ page }) => {
  const registry = await registryHost();
  const port = registry.split(':')[1]!;
  const digest = await pushVictim(registry, 'rebind/direct', 'v1');
  await openAttackerPage(page, `http://rebind.example:${port}`);
  const seen = await page.evaluate(async (digest) => {
    const answer = async (r: Response) => ({ status: r.status, body: await r.text() });
    return {
      tags: await answer(await fetch('/v2/samples/hello/tags/list')),
      remove: await answer(await fetch(`/v2/rebind/direct/manifests/${digest}`, { method: 'DELETE' })),
    };
  }, digest);
  for (const [what, r] of Object.entries(seen)) {
    expect(r.status, what).toBe(421);
    expect(r.body, what).toContain('rebind.example');
  }
  expect((await fetch(`http://${registry}/v2/rebind/direct/manifests/${digest}`, { method: 'HEAD' })).status).toBe(200);
});

test('a page on another origin cannot write blind with no-cors requests', async ({ page }) => {
  const registry = await registryHost();
  // The attacker's origin: another loopback port, a real server of its own.
  const attacker = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>attacker</title>');
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  try {
    await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
    const blob = `planted by another origin ${randomBytes(8).toString('hex')}`;
    const digest = sha256(new TextEncoder().encode(blob));
    const key = `${registry}/crosssite/victim:v1`;
    await page.evaluate(
      async ({ registry, digest, blob, app, key }) => {
        const post = (url: string, body: string) =>
          fetch(url, { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body });
        await post(`http://${registry}/v2/crosssite/victim/blobs/uploads/?digest=${digest}`, blob);
        await post(
          `http://${registry.replace('127.0.0.1', 'localhost')}/v2/crosssite/victim/blobs/uploads/?digest=${digest}`,
          blob,
        );
        await post(`${app}/locks/acquire`, JSON.stringify({ key }));
        await post(`${app.replace('127.0.0.1', 'localhost')}/locks/acquire`, JSON.stringify({ key }));
      },
      { registry, digest, blob, app: APP, key },
    );
    // The blob was not stored, and the lock is free.
    expect((await fetch(`http://${registry}/v2/crosssite/victim/blobs/${digest}`, { method: 'HEAD' })).status).toBe(
      404,
    );
    const lock = await fetch(`${APP}/locks/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key }),
      signal: AbortSignal.timeout(5000),
    });
    expect(lock.status).toBe(200);
  } finally {
    attacker.closeAllConnections();
    await new Promise<void>((resolve) => attacker.close(() => resolve()));
  }
});

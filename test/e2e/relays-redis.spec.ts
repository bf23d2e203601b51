/**
 * Many relays, one truth (issue 16), in Chromium: 20 browser contexts, each with its own browser
 * key, sign one image at once through Debian's nginx balancing round-robin over two relay
 * processes (the app's own server) that share their tag locks in Debian's redis-server, with no
 * lock shared between the pages. The registry is the rig's distribution 2.8, without the
 * referrers API. All 20 signatures stay, in both formats, five runs in a row.
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodePem } from '../../shared/encoding/pem.ts';
import { pushSampleImage } from '../rig/images.ts';
import { freePort, registriesFromEnv } from '../rig/registries.ts';
import { startNginx, startRedis, startRelay, type Nginx, type RedisServer, type Relay } from '../rig/relays.ts';
import { signaturesOnRegistry } from '../integration/relay-signers.ts';

const SIGNERS = 20;
const RUNS = Number(process.env.RELAYS_E2E_RUNS ?? 5);
/** Signing with 20 pages at once on a loaded 2-core machine. */
const LONG = { timeout: 240_000 };

const regs = () => registriesFromEnv()!;
let dir: string;
let redis: RedisServer;
let relays: Relay[];
let nginx: Nginx;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-e2e-relays-'));
  redis = await startRedis(dir);
  const port = await freePort();
  const publicOrigins = [`http://localhost:${port}`];
  // All 20 pages come from one address (loopback, through nginx), and the locks' limits are per
  // address: their one 15 s budget per tag would be spent by 20 writers on a loaded machine. An
  // operator behind a load balancer raises them the same way (README, "Operations").
  const env = { RELAY_LOCK_MAX_HOLD_MS: '600000', RELAY_LOCK_WAIT_MS: '120000' };
  relays = await Promise.all([0, 1].map(() => startRelay(regs(), { dir, redisUrl: redis.url, publicOrigins, env })));
  nginx = await startNginx(
    dir,
    relays.map((r) => r.port),
    port,
  );
});

test.afterAll(async () => {
  await Promise.all(relays?.map((r) => r.stop()) ?? []);
  await nginx?.stop();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A browser key made on the Keys page; returns its public key's SPKI. */
async function browserKey(page: Page): Promise<Uint8Array> {
  await page.goto('/#/keys');
  await page.getByRole('button', { name: 'Generate browser key' }).click();
  await expect(page.getByRole('status')).toContainText('Key ready', LONG);
  return decodePem(await page.getByLabel('Public key', { exact: true }).inputValue()).bytes;
}

async function sign(page: Page, ref: string): Promise<void> {
  await page.goto('/#/sign');
  await page.getByLabel('Image reference').fill(ref);
  await page.getByRole('button', { name: 'Sign' }).click();
  await expect(page.getByRole('status')).toContainText(/^Signed sha256:[0-9a-f]{64}/, LONG);
}

/** The number of lock requests one relay answered, from its /metrics. */
async function lockRequests(relay: Relay): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
  return [...text.matchAll(/^cosign_web_http_requests_total\{route="locks",status="\d+"\} (\d+)$/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
}

test(`${SIGNERS} signers in Chromium over two relays behind nginx and one Redis: all kept in both formats, ${RUNS} runs`, async ({
  browser,
}) => {
  test.setTimeout(RUNS * 300_000);
  const pages = await Promise.all(
    Array.from({ length: SIGNERS }, async () => (await browser.newContext({ baseURL: nginx.origin })).newPage()),
  );
  const spkis = await Promise.all(pages.map((p) => browserKey(p).then((spki) => ({ spki }))));
  for (let run = 1; run <= RUNS; run++) {
    const r = regs();
    const repository = `e2e/relays-${run}`;
    const image = await pushSampleImage({ host: r.tls.host, caFile: r.tls.caFile }, repository, 'v1');
    await Promise.all(pages.map((p) => sign(p, image.ref)));
    const on = await signaturesOnRegistry(r.tls.caFile, { registry: r.tls.host, repository }, image.digest, spkis);
    expect(on.legacy.size, `run ${run}: legacy .sig signatures`).toBe(SIGNERS);
    expect(on.referrers, `run ${run}: referrers`).toBe(SIGNERS);
  }
  // nginx spread the pages' lock requests over both relays.
  for (const relay of relays) expect(await lockRequests(relay)).toBeGreaterThan(0);
  await Promise.all(pages.map((p) => p.context().close()));
});

/**
 * Many relays, one truth (issue 16), with the real services: Debian's redis-server holds the tag
 * locks of several relay processes (the app's own server), Debian's nginx balances two of them
 * round-robin, and the registry is the rig's distribution 2.8 (no referrers API).
 *
 * - The locks across relays: FIFO, only the owner's token releases, a relay killed (SIGKILL)
 *   while it holds a lock frees it when its lease ends, and the signers of another relay then
 *   proceed and keep every signature.
 * - /metrics parses with a Prometheus text-format parser and its counters move with requests;
 *   /readyz says whether the lock store answers.
 * - Redis stopped in the middle of 20 concurrent signers through nginx: signing ends, and every
 *   signature is on the registry or its signer was told SIGNATURE_WRITE_LOST.
 * (20 signers from Chromium, five runs: test/e2e/relays-redis.spec.ts.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { pushSampleImage } from '../rig/images.ts';
import { freePort } from '../rig/registries.ts';
import { startNginx, startRedis, startRelay, type Nginx, type RedisServer, type Relay } from '../rig/relays.ts';
import { makeSigners, silentLosses, signaturesOnRegistry, signThroughRelays } from './relay-signers.ts';

const regs = inject('cosignWebRegistries');
let dir: string;
let redis: RedisServer;
let nginx: Nginx;
let a: Relay;
let b: Relay;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-relays-'));
  redis = await startRedis(dir);
  const nginxPort = await freePort();
  const publicOrigins = [`http://localhost:${nginxPort}`];
  [a, b] = await Promise.all([
    startRelay(regs, { dir, redisUrl: redis.url, publicOrigins }),
    startRelay(regs, { dir, redisUrl: redis.url, publicOrigins }),
  ]);
  nginx = await startNginx(dir, [a.port, b.port], nginxPort);
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await nginx?.stop();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

const lockKey = (n: string): string => `${regs.tls.host}/relays/locks:${n}`;

async function acquire(relay: Relay, key: string): Promise<{ status: number; token?: string; code?: string }> {
  const res = await fetch(`${relay.origin}/locks/acquire`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  return { status: res.status, ...((await res.json()) as { token?: string; code?: string }) };
}

async function release(relay: Relay, key: string, token: string): Promise<number> {
  const res = await fetch(`${relay.origin}/locks/release`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, token }),
  });
  return res.status;
}

it('across two relays: waiters are served first come first served, and only the owner releases', async () => {
  const key = lockKey('fifo');
  const first = await acquire(a, key);
  expect(first.status).toBe(200);
  const order: number[] = [];
  const waiters: Promise<void>[] = [];
  for (const [i, relay] of [b, a, b].entries()) {
    waiters.push(
      acquire(relay, key).then(async (r) => {
        expect(r.status).toBe(200);
        order.push(i);
        await new Promise((res) => setTimeout(res, 50));
        expect(await release(relay, key, r.token!)).toBe(204);
      }),
    );
    // Each waiter is in the queue before the next asks.
    await new Promise((res) => setTimeout(res, 300));
  }
  // A token that is not the holder's releases nothing: the waiters still wait.
  expect(await release(b, key, '00000000-0000-4000-8000-000000000000')).toBe(204);
  await new Promise((res) => setTimeout(res, 300));
  expect(order).toEqual([]);
  expect(await release(a, key, first.token!)).toBe(204);
  await Promise.all(waiters);
  expect(order).toEqual([0, 1, 2]);
});

it('a batch on another relay: free keys granted in one answer, a held one refused at once, released together', async () => {
  // This relay would keep a single acquire waiting ten minutes for a held key: the batch's answer
  // coming within the test's time shows it does not wait.
  const patient = await startRelay(regs, { dir, redisUrl: redis.url, env: { RELAY_LOCK_WAIT_MS: '600000' } });
  try {
    const [k1, k2, k3] = ['batch-1', 'batch-2', 'batch-3'].map(lockKey);
    const post = async (path: string, body: unknown): Promise<Response> =>
      fetch(`${patient.origin}/locks/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const held = await acquire(a, k2!);
    expect(held.status).toBe(200);
    const res = await post('acquire', { keys: [k1, k2, k3] });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { token?: string; code?: string; retryAfter?: number }[] };
    expect(results.map((r) => r.token !== undefined)).toEqual([true, false, true]);
    expect(results[1]).toMatchObject({ code: 'LOCK_HELD' });
    expect(results[1]!.retryAfter).toBeGreaterThanOrEqual(1);
    // One release for both: the first relay then takes each at once.
    const releases = [
      { key: k1, token: results[0]!.token },
      { key: k3, token: results[2]!.token },
    ];
    expect((await post('release', { releases })).status).toBe(204);
    for (const k of [k1!, k3!]) {
      const r = await acquire(a, k);
      expect(r.status).toBe(200);
      expect(await release(a, k, r.token!)).toBe(204);
    }
    expect(await release(a, k2!, held.token!)).toBe(204);
  } finally {
    await patient.stop();
  }
}, 60_000);

it('a relay killed (SIGKILL) while it holds a lock: the lease frees it, the other relay signs, nothing lost', async () => {
  const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, 'relays/killed', 'v1');
  const doomed = await startRelay(regs, { dir, redisUrl: redis.url });
  const sigKey = `${regs.tls.host}/relays/killed:${image.digest.replace(':', '-')}.sig`;
  expect((await acquire(doomed, sigKey)).status).toBe(200);
  doomed.child.kill('SIGKILL');
  expect(await doomed.exited).toBe('SIGKILL');
  const started = Date.now();
  const signers = await makeSigners(5);
  const outcomes = await signThroughRelays([b.origin], signers, {
    registry: regs.tls.host,
    repository: 'relays/killed',
    tag: 'v1',
  });
  expect(outcomes).toEqual(signers.map(() => 'kept'));
  // They waited for the dead relay's lease (3 s at most from its last renewal), not its 15 s hold.
  expect(Date.now() - started).toBeGreaterThan(500);
  const on = await signaturesOnRegistry(
    regs.tls.caFile,
    { registry: regs.tls.host, repository: 'relays/killed' },
    image.digest,
    signers,
  );
  expect(on.legacy.size).toBe(signers.length);
  expect(on.referrers).toBe(signers.length);
});

/** The samples of one metric family, from a Prometheus text exposition, parsed by a real parser. */
async function metric(
  relay: Relay | Nginx,
  name: string,
): Promise<{ labels?: Record<string, string>; value: string }[]> {
  const res = await fetch(`http://127.0.0.1:${relay.port}/metrics`, { headers: { host: `localhost:${relay.port}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheus(await res.text());
  return (families.find((f) => f.name === name)?.metrics ?? []) as { labels?: Record<string, string>; value: string }[];
}

const total = (
  samples: { labels?: Record<string, string>; value: string }[],
  where: Record<string, string> = {},
): number =>
  samples
    .filter((s) => Object.entries(where).every(([k, v]) => s.labels?.[k] === v))
    .reduce((n, s) => n + Number(s.value), 0);

it('/metrics parses as Prometheus text and its counters move as requests do; /readyz answers', async () => {
  const before = total(await metric(a, 'cosign_web_http_requests_total'), { route: 'relay' });
  const bytesBefore = total(await metric(a, 'cosign_web_relay_bytes_total'), { direction: 'down' });
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${a.origin}/relay/${regs.tls.host}/v2/`);
    await res.arrayBuffer();
  }
  expect(total(await metric(a, 'cosign_web_http_requests_total'), { route: 'relay' })).toBe(before + 3);
  expect(total(await metric(a, 'cosign_web_relay_bytes_total'), { direction: 'down' })).toBeGreaterThan(bytesBefore);
  const latency = await metric(a, 'cosign_web_relay_upstream_seconds');
  expect(latency.length).toBeGreaterThan(0);
  // No repository, path or credential in any label: the upstream is its host alone.
  const text = await (await fetch(`http://127.0.0.1:${a.port}/metrics`)).text();
  expect(text).not.toContain('relays/');
  expect(text).toContain(`upstream="${regs.tls.host}"`);
  expect(await (await fetch(`${a.origin}/readyz`)).json()).toEqual({ status: 'ready' });
});

it('/metrics is refused to addresses METRICS_ALLOW does not list', async () => {
  const closed = await startRelay(regs, { dir, env: { METRICS_ALLOW: '10.0.0.0/8' } });
  try {
    const res = await fetch(`${closed.origin}/metrics`);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('METRICS_REFUSED');
  } finally {
    await closed.stop();
  }
});

it('Redis stopped mid-run: 20 signers through nginx all end, each signature kept or reported lost', async () => {
  const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, 'relays/redis-down', 'v1');
  const signers = await makeSigners(20);
  const run = signThroughRelays([nginx.origin], signers, {
    registry: regs.tls.host,
    repository: 'relays/redis-down',
    tag: 'v1',
  });
  await new Promise((r) => setTimeout(r, 400));
  await redis.stop();
  const outcomes = await run;
  const on = await signaturesOnRegistry(
    regs.tls.caFile,
    { registry: regs.tls.host, repository: 'relays/redis-down' },
    image.digest,
    signers,
  );
  expect(silentLosses(outcomes, on.legacy)).toEqual([]);
  // The relays said why they could not lock: LOCK_STORE_UNAVAILABLE, counted; /readyz is 503.
  const refused =
    total(await metric(a, 'cosign_web_refusals_total'), { code: 'LOCK_STORE_UNAVAILABLE' }) +
    total(await metric(b, 'cosign_web_refusals_total'), { code: 'LOCK_STORE_UNAVAILABLE' });
  expect(refused).toBeGreaterThan(0);
  const ready = await fetch(`${a.origin}/readyz`);
  expect(ready.status).toBe(503);
  expect(await ready.json()).toEqual({ status: 'not-ready', reason: 'The tag-lock store (Redis) does not answer.' });
}, 180_000);

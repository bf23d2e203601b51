/**
 * The page's lock client (web/src/app/relay-lock.ts) against the server's /locks over a socket:
 * keys taken ahead in one request and found held by the writes, all or none, releases that come
 * together sent together, and no lock server at all.
 */
import { afterEach, expect, it } from 'vitest';
import { relayLock } from '../../../web/src/app/relay-lock.ts';
import { serveLocks, type LockServer } from '../server/lock-server.ts';
import { freePort } from '../../rig/registries.ts';

const K1 = 'ghcr.io/o/r:sha256-0a1b.sig';
const K2 = 'ghcr.io/o/r:sha256-0a1b';
const K3 = 'ghcr.io/o/s:sha256-0a1b.sig';

type Locks = LockServer & {
  /** A request as another writer (another address) would send it. */
  other(path: string, body: unknown): Promise<Response>;
};

const servers: LockServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function lockServer(): Promise<Locks> {
  const server = await serveLocks({ clientOf: (c) => c.req.header('x-client') ?? 'page', waitMs: 60_000 });
  servers.push(server);
  return {
    ...server,
    other: (path, body) =>
      fetch(`${server.origin}/locks/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-client': 'other' },
        body: JSON.stringify(body),
      }),
  };
}

/** Waits until `cond` holds (requests sent without waiting for their answer land a moment later). */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; !(await cond()); i++) {
    if (i > 2000) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** True when another writer may take `key` now (and gives it back at once). */
async function free(s: Locks, key: string): Promise<boolean> {
  const r = await s.other('acquire', { keys: [key] });
  const [result] = ((await r.json()) as { results: { token?: string }[] }).results;
  if (!result?.token) return false;
  await s.other('release', { key, token: result.token });
  return true;
}

it('keys taken ahead in one request are found held by the writes, and released together', async () => {
  const s = await lockServer();
  const lock = relayLock(s.origin);
  const ahead = lock.ahead!([K1, K2]);
  const [r1, r2] = await Promise.all([lock(K1), lock(K2)]);
  expect(r1.held && r2.held).toBe(true);
  expect(s.seen).toEqual([{ path: '/locks/acquire', body: { keys: [K1, K2] } }]);
  expect(await free(s, K1)).toBe(false);
  await Promise.all([r1(), r2()]);
  ahead.done();
  await until(() => s.seen.length === 2);
  expect(s.seen[1]!.path).toBe('/locks/release');
  expect((s.seen[1]!.body.releases as { key: string }[]).map((r) => r.key)).toEqual([K1, K2]);
  expect(await free(s, K1)).toBe(true);
  expect(await free(s, K2)).toBe(true);
});

it('all or none: a key another writer holds gives the others back, and each write takes its key in line', async () => {
  const s = await lockServer();
  const theirs = ((await (await s.other('acquire', { key: K2 })).json()) as { token: string }).token;
  const lock = relayLock(s.origin);
  lock.ahead!([K1, K2]);
  // K1 was granted in the batch, then given back: this page holds nothing while it waits for K2.
  await until(async () => s.seen.some((r) => r.path === '/locks/release') && (await free(s, K1)));
  const waiting = lock(K2);
  await until(() => s.seen.some((r) => r.path === '/locks/acquire' && r.body.key === K2));
  expect(await Promise.race([waiting.then(() => 'held'), new Promise((r) => setTimeout(() => r('waiting'), 50))])).toBe(
    'waiting',
  );
  await s.other('release', { key: K2, token: theirs });
  const mine = await waiting;
  expect(mine.held).toBe(true);
  await mine();
  await until(() => free(s, K2));
});

it('done gives back what no write took; a key asked for later is taken on its own', async () => {
  const s = await lockServer();
  const lock = relayLock(s.origin);
  const ahead = lock.ahead!([K1, K3]);
  const r1 = await lock(K1);
  ahead.done();
  await until(() => free(s, K3));
  expect(await free(s, K1)).toBe(false);
  await r1();
  await until(() => free(s, K1));
  const r2 = await lock(K2);
  expect(s.seen.filter((r) => r.path === '/locks/acquire').map((r) => r.body)).toEqual([
    { keys: [K1, K3] },
    { key: K2 },
  ]);
  await r2();
});

it('no lock server: the writes go on unlocked, with no hold and no error', async () => {
  const lock = relayLock(`http://127.0.0.1:${await freePort()}`);
  const ahead = lock.ahead!([K1, K2]);
  const [r1, r2] = await Promise.all([lock(K1), lock(K2)]);
  expect([r1.held, r2.held]).toEqual([false, false]);
  await Promise.all([r1(), r2()]);
  ahead.done();
  expect((await lock(K3)).held).toBe(false);
});

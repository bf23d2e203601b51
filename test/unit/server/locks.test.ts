/** The relay's tag locks (server/locks.ts), through app.request() without a socket. */
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { answerError } from '../../../server/app.ts';
import { createLocks, type LockOptions } from '../../../server/locks.ts';

/** The lock routes as the app mounts them, each request's client named by its x-client header. */
function locksApp(options: LockOptions): Hono {
  const clientOf = (c: { req: { header(n: string): string | undefined } }): string => c.req.header('x-client') ?? 'a';
  return new Hono().route('/', createLocks({ clientOf, ...options })).onError(answerError);
}

const post = async (app: Hono, path: string, body: unknown, client = 'a'): Promise<Response> =>
  app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-client': client },
    body: JSON.stringify(body),
  });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const tokenOf = async (r: Response): Promise<string> => ((await r.json()) as { token: string }).token;

/** Keys as tagKey writes them, in registries the default relay reaches. */
const K1 = 'ghcr.io/o/r:sha256-0a1b.sig';
const K2 = 'ghcr.io/o/s:sha256-0a1b.sig';
const K3 = 'docker.io/library/alpine:sha256-0a1b';

describe('tag locks', () => {
  it('serialises holders of one key, in order, and leaves other keys free', async () => {
    const app = locksApp({ waitMs: 2000 });
    const a = await tokenOf(await post(app, '/acquire', { key: K1 }));
    const order: string[] = [];
    const b = post(app, '/acquire', { key: K1 }, 'b').then(async (r) => {
      order.push('b');
      return tokenOf(r);
    });
    expect((await post(app, '/acquire', { key: K2 })).status).toBe(200);
    await sleep(50);
    expect(order).toEqual([]);
    order.push('a released');
    expect((await post(app, '/release', { key: K1, token: a })).status).toBe(204);
    const bt = await b;
    expect(order).toEqual(['a released', 'b']);
    expect(bt).not.toBe(a);
    // A stale token releases nothing.
    await post(app, '/release', { key: K1, token: a });
    const c = post(app, '/acquire', { key: K1 }, 'c');
    expect(await Promise.race([c.then(() => 'got'), sleep(100).then(() => 'waiting')])).toBe('waiting');
    await post(app, '/release', { key: K1, token: bt }, 'b');
    expect((await c).status).toBe(200);
  });

  describe('on a clock the test moves (no outcome depends on how busy the machine is)', () => {
    const fake = (): void => void vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    afterEach(() => void vi.useRealTimers());
    /** `p` settled or not, once the microtasks it is waiting on have run. */
    const settled = async (p: Promise<unknown>): Promise<boolean> => {
      let done = false;
      void p.then(() => (done = true));
      await vi.advanceTimersByTimeAsync(0);
      return done;
    };

    it('a hold ends on its own; a waiter whose wait runs out hears who holds it, for how long, until when', async () => {
      fake();
      const app = locksApp({ maxHoldMs: 400, waitMs: 50 });
      await post(app, '/acquire', { key: K1 });
      const waiting = post(app, '/acquire', { key: K1 }, 'b');
      await vi.advanceTimersByTimeAsync(50);
      const busy = await waiting;
      expect(busy.status).toBe(423);
      const body = (await busy.json()) as { code: string; message: string };
      expect(body.code).toBe('LOCK_HELD');
      // Who (an opaque name, never the address), for how long, and when it ends at the latest.
      expect(body.message).toMatch(
        new RegExp(
          `lock on ${K1.replace(/\./g, '\\.')} \\(client [0-9a-f]{8}, held for \\d+ s\\); its hold ends within 1 s`,
        ),
      );
      expect(busy.headers.get('retry-after')).toBe('1');
      await vi.advanceTimersByTimeAsync(350);
      expect((await post(app, '/acquire', { key: K1 }, 'b')).status).toBe(200);
    });

    it('a waiter keeps its place while the line moves: its wait starts again at each handover', async () => {
      fake();
      const app = locksApp({ maxHoldMs: 10_000, waitMs: 100 });
      const first = await tokenOf(await post(app, '/acquire', { key: K1 }, 'a'));
      const second = post(app, '/acquire', { key: K1 }, 'b');
      const third = post(app, '/acquire', { key: K1 }, 'c');
      await vi.advanceTimersByTimeAsync(80);
      await post(app, '/release', { key: K1, token: first }, 'a');
      const b = await second;
      expect(b.status).toBe(200);
      // 160 ms in line, 80 ms of them behind b's hold: still waiting, not refused.
      await vi.advanceTimersByTimeAsync(80);
      expect(await settled(third)).toBe(false);
      await post(app, '/release', { key: K1, token: await tokenOf(b) }, 'b');
      expect((await third).status).toBe(200);
    });

    it('answers a waiter at once when the holder already held the key longer than a wait', async () => {
      fake();
      const app = locksApp({ maxHoldMs: 10_000, waitMs: 1000 });
      expect((await post(app, '/acquire', { key: K1 }, 'squatter')).status).toBe(200);
      await vi.advanceTimersByTimeAsync(1100);
      // At once: answered with the clock standing still (a wait would need the clock to move).
      const answer = post(app, '/acquire', { key: K1 }, 'signer');
      expect(await settled(answer)).toBe(true);
      const res = await answer;
      expect(res.status).toBe(423);
      expect(((await res.json()) as { message: string }).message).toMatch(
        /held for \d+ s\); its hold ends within (8|9) s/,
      );
    });

    it("counts one client's back-to-back holds of a key together: at most maxHoldMs in all", async () => {
      fake();
      const app = locksApp({ maxHoldMs: 1500, waitMs: 5000 });
      const first = await tokenOf(await post(app, '/acquire', { key: K1 }, 'squatter'));
      await vi.advanceTimersByTimeAsync(1000);
      await post(app, '/release', { key: K1, token: first }, 'squatter');
      // Renewed at once: what is left of its 1.5 s (500 ms), not a fresh 1.5 s.
      expect((await post(app, '/acquire', { key: K1 }, 'squatter')).status).toBe(200);
      const waiting = post(app, '/acquire', { key: K1 }, 'signer');
      await vi.advanceTimersByTimeAsync(490);
      expect(await settled(waiting)).toBe(false);
      await vi.advanceTimersByTimeAsync(20);
      const signer = await waiting;
      expect(signer.status).toBe(200);
      await post(app, '/release', { key: K1, token: await tokenOf(signer) }, 'signer');
      // Its budget spent, the squatter may not take the key again until it left it alone for 1.5 s.
      const limit = await post(app, '/acquire', { key: K1 }, 'squatter');
      expect([limit.status, ((await limit.json()) as { code: string }).code]).toEqual([429, 'LOCK_HOLD_LIMIT']);
      expect(Number(limit.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await post(app, '/acquire', { key: K1 }, 'signer')).status).toBe(200);
    });
  });

  it('limits what one client holds and awaits, not what others may take', async () => {
    const app = locksApp({ perClient: 2, waitMs: 200 });
    expect((await post(app, '/acquire', { key: K1 })).status).toBe(200);
    expect((await post(app, '/acquire', { key: K2 })).status).toBe(200);
    const third = await post(app, '/acquire', { key: K3 });
    expect([third.status, ((await third.json()) as { code: string }).code]).toEqual([429, 'LOCK_QUOTA']);
    expect(third.headers.get('retry-after')).not.toBeNull();
    expect((await post(app, '/acquire', { key: K3 }, 'b')).status).toBe(200);
  });

  it('takes only keys naming a tag in a registry the relay reaches', async () => {
    const app = locksApp({ relay: { allowedRegistries: ['localhost:5000'] }, maxKeys: 2, maxWaiters: 1, waitMs: 200 });
    for (const key of [
      '',
      'a b',
      'x'.repeat(513),
      5,
      'k',
      'r/x:t',
      'localhost:5000/x',
      'localhost:5000/x@sha256:' + '0'.repeat(64),
      'localhost:5000/X:t',
    ]) {
      const res = await post(app, '/acquire', { key });
      expect([res.status, ((await res.json()) as { code: string }).code], String(key)).toEqual([
        400,
        'LOCK_BAD_REQUEST',
      ]);
    }
    expect((await app.request('/acquire', { method: 'POST', body: 'not json' })).status).toBe(400);
    for (const key of [K1, 'evil.example/x:t', 'localhost:5001/x:t']) {
      const res = await post(app, '/acquire', { key });
      expect([res.status, ((await res.json()) as { code: string }).code], key).toEqual([403, 'LOCK_KEY_REFUSED']);
    }
    expect((await post(app, '/acquire', { key: 'localhost:5000/x:a' })).status).toBe(200);
    expect((await post(app, '/acquire', { key: 'localhost:5000/x:b' })).status).toBe(200);
    expect((await post(app, '/acquire', { key: 'localhost:5000/x:c' }, 'b')).status).toBe(503);
    void post(app, '/acquire', { key: 'localhost:5000/x:a' }, 'b');
    expect((await post(app, '/acquire', { key: 'localhost:5000/x:a' }, 'c')).status).toBe(503);
  });
});

describe('batched tag locks', () => {
  type Result = { token?: string; code?: string; status?: number; retryAfter?: number; message?: string };
  const results = async (r: Response): Promise<Result[]> => ((await r.json()) as { results: Result[] }).results;

  it('grants every free key in one answer, each token releasing its own key, singly or together', async () => {
    const app = locksApp({ waitMs: 60_000 });
    const r = await post(app, '/acquire', { keys: [K1, K2, K3] });
    expect(r.status).toBe(200);
    const [a, b, c] = await results(r);
    for (const x of [a, b, c]) expect(x?.token).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set([a!.token, b!.token, c!.token]).size).toBe(3);
    // Held: another client waits for K1 until it is released.
    const waiter = post(app, '/acquire', { key: K1 }, 'b');
    expect(await Promise.race([waiter.then(() => 'got'), sleep(100).then(() => 'waiting')])).toBe('waiting');
    expect((await post(app, '/release', { key: K1, token: a!.token })).status).toBe(204);
    expect((await waiter).status).toBe(200);
    expect(
      (
        await post(app, '/release', {
          releases: [
            { key: K2, token: b!.token },
            { key: K3, token: c!.token },
          ],
        })
      ).status,
    ).toBe(204);
    // Both free again: a batch of another client takes them.
    const again = await results(await post(app, '/acquire', { keys: [K2, K3] }, 'c'));
    expect(again.every((x) => typeof x.token === 'string')).toBe(true);
  });

  it('never waits: a key another writer holds is refused at once with who holds it, the free ones granted', async () => {
    // A single acquire would wait up to a minute here; the batch answers while the holder still holds.
    const app = locksApp({ waitMs: 60_000 });
    const held = await tokenOf(await post(app, '/acquire', { key: K2 }, 'holder'));
    const [one, two] = await results(await post(app, '/acquire', { keys: [K1, K2] }));
    expect(one?.token).toBeDefined();
    expect(two).toMatchObject({ code: 'LOCK_HELD', status: 423 });
    expect(two!.message).toContain(`lock on ${K2}`);
    expect(two!.retryAfter).toBeGreaterThanOrEqual(1);
    await post(app, '/release', { key: K2, token: held }, 'holder');
    // Its own limits apply per key, as to single acquires.
    const quota = locksApp({ perClient: 2 });
    const r = await results(await post(quota, '/acquire', { keys: [K1, K2, K3] }));
    expect(r.map((x) => x.token !== undefined)).toEqual([true, true, false]);
    expect(r[2]).toMatchObject({ code: 'LOCK_QUOTA', status: 429 });
  });

  it('refuses a malformed batch whole, with the reason, and takes nothing from it', async () => {
    const app = locksApp({ relay: { allowedRegistries: ['localhost:5000'] } });
    const ok = (t: string): string => `localhost:5000/x:${t}`;
    for (const keys of [
      [],
      'k',
      [ok('a'), ok('a')],
      Array.from({ length: 17 }, (_, i) => ok(`t${i}`)),
      [ok('a'), 5],
      [ok('a'), 'r/x:t'],
    ]) {
      const res = await post(app, '/acquire', { keys });
      const body = (await res.json()) as { code: string; message: string };
      expect([res.status, body.code], JSON.stringify(keys).slice(0, 40)).toEqual([400, 'LOCK_BAD_REQUEST']);
    }
    const foreign = await post(app, '/acquire', { keys: [ok('a'), 'evil.example/x:t'] });
    expect([foreign.status, ((await foreign.json()) as { code: string }).code]).toEqual([403, 'LOCK_KEY_REFUSED']);
    // Nothing of the refused batches was taken: another client gets the key at once.
    expect((await post(app, '/acquire', { keys: [ok('a')] }, 'b')).status).toBe(200);
    for (const releases of [
      [],
      [{ key: ok('a') }],
      [{ token: 't' }],
      'x',
      Array.from({ length: 17 }, () => ({ key: ok('a'), token: 't' })),
    ]) {
      const res = await post(app, '/release', { releases });
      expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([400, 'LOCK_BAD_REQUEST']);
    }
  });
});

describe('tag locks in the app', () => {
  it('refuse other sites, as the relay does, and take keys of the registries the relay reaches', async () => {
    const { createApp } = await import('../../../server/app.ts');
    const { Site } = await import('../../../server/site.ts');
    const app = createApp({
      staticRoot: 'dist',
      site: new Site({ ports: [8080] }),
      relay: { localRegistries: ['127.0.0.1:5001'] },
    });
    const body = JSON.stringify({ key: '127.0.0.1:5001/samples/hello:sha256-0a1b.sig' });
    const headers = { 'content-type': 'application/json' };
    const foreign = await app.request('http://localhost:8080/locks/acquire', {
      method: 'POST',
      body,
      headers: { ...headers, origin: 'https://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('x-relay-error')).toBe('RELAY_ORIGIN_REFUSED');
    const crossSite = await app.request('http://localhost:8080/locks/acquire', {
      method: 'POST',
      body,
      headers: { ...headers, 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    const own = await app.request('http://localhost:8080/locks/acquire', {
      method: 'POST',
      body,
      headers: { ...headers, origin: 'http://localhost:8080' },
    });
    expect(own.status).toBe(200);
    const elsewhere = await app.request('http://localhost:8080/locks/acquire', {
      method: 'POST',
      body: JSON.stringify({ key: '127.0.0.1:5002/samples/hello:v1' }),
      headers: { ...headers, origin: 'http://localhost:8080' },
    });
    expect(elsewhere.status).toBe(403);
  });
});

/** The relay's tag locks (server/locks.ts), through app.request() without a socket. */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { answerError } from '../../../server/app.ts';
import { createLocks, type LockOptions } from '../../../server/locks.ts';

/** The lock routes as the app mounts them: their refusals answered by the app's one onError. */
function locksApp(options: LockOptions): Hono {
  return new Hono().route('/', createLocks(options)).onError(answerError);
}

const post = async (app: Hono, path: string, body: unknown): Promise<Response> =>
  app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('tag locks', () => {
  it('serialises holders of one key, in order, and leaves other keys free', async () => {
    const app = locksApp({ waitMs: 2000 });
    const a = (await (await post(app, '/acquire', { key: 'r/x:t' })).json()) as { token: string };
    const order: string[] = [];
    const b = post(app, '/acquire', { key: 'r/x:t' }).then(async (r) => {
      order.push('b');
      return (await r.json()) as { token: string };
    });
    const other = await post(app, '/acquire', { key: 'r/y:t' });
    expect(other.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    order.push('a released');
    expect((await post(app, '/release', { key: 'r/x:t', token: a.token })).status).toBe(204);
    const bt = await b;
    expect(order).toEqual(['a released', 'b']);
    expect(bt.token).not.toBe(a.token);
    // A stale token releases nothing.
    await post(app, '/release', { key: 'r/x:t', token: a.token });
    const c = post(app, '/acquire', { key: 'r/x:t' });
    const raced = await Promise.race([c.then(() => 'got'), new Promise((r) => setTimeout(() => r('waiting'), 100))]);
    expect(raced).toBe('waiting');
    await post(app, '/release', { key: 'r/x:t', token: bt.token });
    expect((await c).status).toBe(200);
  });
  it('a lease ends on its own; a waiter gives up with 503 LOCK_BUSY', async () => {
    const app = locksApp({ leaseMs: 100, waitMs: 50 });
    await post(app, '/acquire', { key: 'k' });
    const busy = await post(app, '/acquire', { key: 'k' });
    expect(busy.status).toBe(503);
    expect(await busy.json()).toMatchObject({ code: 'LOCK_BUSY' });
    await new Promise((r) => setTimeout(r, 150));
    expect((await post(app, '/acquire', { key: 'k' })).status).toBe(200);
  });
  it('refuses bad keys and limits keys and waiters', async () => {
    const app = locksApp({ maxKeys: 2, maxWaiters: 1, waitMs: 200 });
    for (const key of ['', 'a b', 'x'.repeat(513), 5]) expect((await post(app, '/acquire', { key })).status).toBe(400);
    expect((await app.request('/acquire', { method: 'POST', body: 'not json' })).status).toBe(400);
    await post(app, '/acquire', { key: 'a' });
    await post(app, '/acquire', { key: 'b' });
    expect((await post(app, '/acquire', { key: 'c' })).status).toBe(503);
    void post(app, '/acquire', { key: 'a' });
    expect((await post(app, '/acquire', { key: 'a' })).status).toBe(503);
  });
});

describe('tag locks in the app', () => {
  it('refuse other sites, as the relay does', async () => {
    const { createApp } = await import('../../../server/app.ts');
    const { Site } = await import('../../../server/site.ts');
    const app = createApp({ staticRoot: 'dist', site: new Site({ ports: [8080] }) });
    const body = JSON.stringify({ key: 'r/x:t' });
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
  });
});

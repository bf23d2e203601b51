/**
 * Tag locks: while a page rewrites a `.sig` manifest or a referrers index (read-modify-write,
 * which registries cannot make atomic), other pages served by this relay wait for it. In-memory
 * and per process, with short leases, so the relay stays stateless in every way that matters: a
 * restart or a second relay only widens the window that the client's read-back-and-merge closes.
 *
 *   POST /locks/acquire {"key": "<registry>/<repo>:<tag>"} → 200 {"token"} (waits up to waitMs)
 *                                                          → 503 {"code":"LOCK_BUSY"} after that
 *   POST /locks/release {"key", "token"}                   → 204
 *
 * Refusals are thrown as LockError (400 LOCK_BAD_REQUEST, 503 LOCK_BUSY) and answered by the
 * app's one onError (server/app.ts) as JSON `{code, message}`.
 */
import { Hono } from 'hono';
import { LockError, type LockErrorCode } from '../shared/errors.ts';

export interface LockOptions {
  /** How long a lock is held at most before it is released on its own (default 15 s). */
  leaseMs?: number;
  /** How long an acquire waits for a busy lock (default 10 s). */
  waitMs?: number;
  /** Most distinct keys held or awaited at once (default 10 000). */
  maxKeys?: number;
  /** Most waiters per key (default 100). */
  maxWaiters?: number;
}

interface Entry {
  /** Empty while the lock is being handed to the next waiter. */
  token: string;
  timer: ReturnType<typeof setTimeout> | undefined;
  waiters: (() => void)[];
}

const KEY_RE = /^[\x21-\x7e]{1,512}$/;

function refused(code: LockErrorCode, message: string): LockError {
  return new LockError(code, message, { status: code === 'LOCK_BUSY' ? 503 : 400 });
}

/**
 * The /locks routes, for `app.route('/locks', createLocks())`.
 * @throws LockError (to app.onError) LOCK_BAD_REQUEST for a request without a valid key (or token),
 *   LOCK_BUSY when too many locks or waiters are held or the wait ran out
 */
export function createLocks(options: LockOptions = {}): Hono {
  const leaseMs = options.leaseMs ?? 15_000;
  const waitMs = options.waitMs ?? 10_000;
  const maxKeys = options.maxKeys ?? 10_000;
  const maxWaiters = options.maxWaiters ?? 100;
  const held = new Map<string, Entry>();

  const release = (key: string, token: string): boolean => {
    const e = held.get(key);
    if (!e || e.token !== token) return false;
    clearTimeout(e.timer);
    const next = e.waiters.shift();
    if (next) {
      // Hand over to the next waiter, which takes the entry (and the queue behind it).
      e.token = '';
      e.timer = undefined;
      next();
    } else {
      held.delete(key);
    }
    return true;
  };

  const grant = (key: string, waiters: (() => void)[]): string => {
    const token = globalThis.crypto.randomUUID();
    const timer = setTimeout(() => release(key, token), leaseMs);
    timer.unref?.();
    held.set(key, { token, timer, waiters });
    return token;
  };

  const readKey = async (body: Promise<unknown>): Promise<{ key: string; token?: string } | null> => {
    try {
      const j = (await body) as { key?: unknown; token?: unknown };
      if (typeof j.key !== 'string' || !KEY_RE.test(j.key)) return null;
      return { key: j.key, ...(typeof j.token === 'string' ? { token: j.token } : {}) };
    } catch {
      return null;
    }
  };

  const app = new Hono();
  app.post('/acquire', async (c) => {
    const req = await readKey(c.req.json());
    if (!req) throw refused('LOCK_BAD_REQUEST', 'A lock request needs a "key" of printable characters.');
    const { key } = req;
    const current = held.get(key);
    if (!current) {
      if (held.size >= maxKeys) throw refused('LOCK_BUSY', 'Too many locks are held; try again.');
      return c.json({ token: grant(key, []) });
    }
    if (current.waiters.length >= maxWaiters) throw refused('LOCK_BUSY', 'Too many writers are waiting.');
    const got = await new Promise<boolean>((resolve) => {
      const timeout = setTimeout(() => {
        const i = current.waiters.indexOf(wake);
        if (i >= 0) current.waiters.splice(i, 1);
        resolve(false);
      }, waitMs);
      const wake = (): void => {
        clearTimeout(timeout);
        resolve(true);
      };
      current.waiters.push(wake);
    });
    if (!got) throw refused('LOCK_BUSY', 'Another writer held the lock too long.');
    const entry = held.get(key)!;
    return c.json({ token: grant(key, entry.waiters) });
  });
  app.post('/release', async (c) => {
    const req = await readKey(c.req.json());
    if (!req?.token) throw refused('LOCK_BAD_REQUEST', 'A release needs the "key" and the "token".');
    release(req.key, req.token);
    return c.body(null, 204);
  });
  return app;
}

/**
 * Tag locks in Redis (RELAY_LOCKS_URL=redis://… or rediss://…), so that relays behind a load
 * balancer share them: the same semantics as the in-memory table of server/locks.ts, each step one
 * Lua script (atomic in Redis, https://redis.io/docs/latest/develop/interact/programmability/eval-intro/),
 * time read from Redis's own clock so relays need not agree on theirs.
 *
 * - A hold is a hash `<prefix>lock:<key>` {token, client, grantedAt, endsAt} with a short lease
 *   (PEXPIRE, default 3 s) that the holding relay renews while the hold lasts; a relay that dies
 *   stops renewing and its holds end within one lease. endsAt caps the hold at what is left of the
 *   client's budget (maxHoldMs over its back-to-back holds, kept in `<prefix>usage:<key>`).
 * - Release and renewal compare the token and act in one script: only the owner ends its hold.
 * - Waiters queue FIFO in `<prefix>queue:<key>`, each alive while its `<prefix>waiter:<id>` key
 *   (refreshed at every poll) lives; a dead waiter at the head is skipped. A release publishes the
 *   key on `<prefix>released`, waking the waiters of every relay; each also polls, for holds that
 *   end by their lease.
 * - Clients are named in Redis by a salted SHA-256 of their address (the salt kept in Redis, so
 *   every relay names a client alike), never by the address.
 * - Redis down or slow: every command has a time limit and no offline queue, and fails as
 *   LOCK_STORE_UNAVAILABLE (503) — never a hang.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { LockError } from '../shared/errors.ts';

export interface RedisLockOptions {
  /** redis://… or rediss://… (user, password and database as ioredis reads them from the URL). */
  url: string;
  /** Names in Redis start with this (default "cosign-web:"). */
  prefix?: string;
  /** How long a hold lives without its relay renewing it (default 3 000 ms). */
  leaseMs?: number;
  /** The longest any one Redis command may take before the store counts as unavailable (default 1 000 ms). */
  commandTimeoutMs?: number;
}

/** What one acquire came to. */
export type AcquireOutcome =
  | { kind: 'granted'; token: string; leftMs: number }
  | { kind: 'held'; holder: string; heldMs: number; endsInMs: number }
  | { kind: 'limit'; wholeInMs: number };

const STORE_DOWN =
  'The server keeps its tag locks in Redis, which did not answer in time; nothing was locked. ' +
  'The page writes without the lock and checks its write by reading it back.';

/** The release of a hold (its usage counted, the hash deleted, the waiters woken), as Lua. */
const RELEASE_BODY = `
local h = redis.call('HMGET', KEYS[1], 'client', 'grantedAt')
local c, g, max = h[1], tonumber(h[2]), tonumber(ARGV[2])
local u = redis.call('HMGET', KEYS[2], c .. ' used', c .. ' last')
local used = now - g
if u[1] and g - tonumber(u[2]) < max then used = used + tonumber(u[1]) end
redis.call('HSET', KEYS[2], c .. ' used', used, c .. ' last', now)
redis.call('PEXPIRE', KEYS[2], max)
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`;

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS lock, usage; ARGV token, maxHoldMs, channel, key. 1 when released, 0 for a stale token. */
const RELEASE = `if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
${NOW}
${RELEASE_BODY}`;

/** KEYS lock, usage; ARGV token, maxHoldMs, channel, key, leaseMs. 1 renewed, 0 gone or ended. */
const RENEW = `if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
${NOW}
local left = tonumber(redis.call('HGET', KEYS[1], 'endsAt')) - now
if left > 0 then
  redis.call('PEXPIRE', KEYS[1], math.min(left, tonumber(ARGV[5])))
  return 1
end
${RELEASE_BODY}
`;

/**
 * KEYS lock, queue, usage; ARGV token, client, waiter id, maxHoldMs, waiterTtlMs, leaseMs, waiter
 * key prefix. → {'granted', '', 0, leftMs} | {'held', holder, heldMs, endsInMs} |
 * {'queued', '', 0, 0} | {'limit', '', 0, wholeInMs}
 */
const ACQUIRE = `${NOW}
local me, wp = ARGV[3], ARGV[7]
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head or head == me or redis.call('EXISTS', wp .. head) == 1 then break end
  redis.call('LPOP', KEYS[2])
end
local function queue()
  if not redis.call('LPOS', KEYS[2], me) then redis.call('RPUSH', KEYS[2], me) end
  redis.call('SET', wp .. me, '1', 'PX', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], 60000)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local h = redis.call('HMGET', KEYS[1], 'client', 'grantedAt', 'endsAt')
  queue()
  return {'held', h[1], now - tonumber(h[2]), tonumber(h[3]) - now, h[2]}
end
local head = redis.call('LINDEX', KEYS[2], 0)
if head and head ~= me then
  queue()
  return {'queued', '', 0, 0}
end
local max = tonumber(ARGV[4])
local u = redis.call('HMGET', KEYS[3], ARGV[2] .. ' used', ARGV[2] .. ' last')
local left = max
if u[1] and now - tonumber(u[2]) < max then left = max - tonumber(u[1]) end
if left <= 0 then
  redis.call('LREM', KEYS[2], 0, me)
  redis.call('DEL', wp .. me)
  return {'limit', '', 0, max - (now - tonumber(u[2]))}
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'client', ARGV[2], 'grantedAt', now, 'endsAt', now + left)
redis.call('PEXPIRE', KEYS[1], math.min(left, tonumber(ARGV[6])))
if head == me then redis.call('LPOP', KEYS[2]) end
redis.call('DEL', wp .. me)
return {'granted', '', 0, left}`;

/** KEYS queue; ARGV waiter id, waiter key prefix: leaves the queue. */
const LEAVE = `redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('DEL', ARGV[2] .. ARGV[1])
return 1`;

type ScriptReply = [string, string, number, number, string?];
interface LockCommands {
  lockAcquire(...args: string[]): Promise<ScriptReply>;
  lockRelease(...args: string[]): Promise<number>;
  lockRenew(...args: string[]): Promise<number>;
  lockLeave(...args: string[]): Promise<number>;
}

/** How often a waiter asks again when no release woke it (holds that end by their lease). */
const POLL_MS = 100;
/** A waiter that has not asked for this long has gone: the queue skips it. */
const WAITER_TTL_MS = 2_000;

/** A promise of `p` that fails after `ms`: the Redis client's own timeout does not cover connecting. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('redis timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The tag locks of every relay that shares one Redis. */
export class RedisLocks {
  readonly #redis: Redis & LockCommands;
  readonly #sub: Redis;
  readonly #prefix: string;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  /** Local waiters per key, woken when any relay releases the key. */
  readonly #wake = new Map<string, Set<() => void>>();
  /** The holds this relay took and renews, by token. */
  readonly #held = new Map<string, { key: string; timer: ReturnType<typeof setInterval> }>();
  #salt: Promise<string> | undefined;
  #waiting = 0;

  constructor(o: RedisLockOptions) {
    this.#prefix = o.prefix ?? 'cosign-web:';
    this.#leaseMs = o.leaseMs ?? 3_000;
    this.#timeoutMs = o.commandTimeoutMs ?? 1_000;
    const common = {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.#timeoutMs,
      connectTimeout: 2_000,
      retryStrategy: (times: number) => Math.min(100 * times, 1_000),
    };
    this.#redis = new Redis(o.url, common) as Redis & LockCommands;
    // Errors are answered per request (LOCK_STORE_UNAVAILABLE); the client reconnects on its own.
    this.#redis.on('error', () => undefined);
    this.#redis.defineCommand('lockAcquire', { numberOfKeys: 3, lua: ACQUIRE });
    this.#redis.defineCommand('lockRelease', { numberOfKeys: 2, lua: RELEASE });
    this.#redis.defineCommand('lockRenew', { numberOfKeys: 2, lua: RENEW });
    this.#redis.defineCommand('lockLeave', { numberOfKeys: 1, lua: LEAVE });
    this.#sub = new Redis(o.url, { ...common, enableOfflineQueue: true, commandTimeout: undefined });
    this.#sub.on('error', () => undefined);
    this.#sub.on('message', (_channel: string, key: string) => {
      for (const wake of this.#wake.get(key) ?? []) wake();
    });
    void this.#sub.subscribe(this.#channel).catch(() => undefined);
  }

  get #channel(): string {
    return `${this.#prefix}released`;
  }

  /** Holds this relay keeps now, and requests waiting here (for /metrics). */
  get counts(): { held: number; waiting: number } {
    return { held: this.#held.size, waiting: this.#waiting };
  }

  /** @throws LockError LOCK_STORE_UNAVAILABLE (503) */
  async #call<T>(f: () => Promise<T>): Promise<T> {
    try {
      // Without an offline queue a command fails at once while the client (re)connects: wait for
      // the connection first, within the same time limit.
      const ready =
        this.#redis.status === 'ready'
          ? Promise.resolve()
          : new Promise<void>((resolve) => this.#redis.once('ready', () => resolve()));
      return await within(
        ready.then(() => f()),
        this.#timeoutMs,
      );
    } catch (e) {
      throw new LockError('LOCK_STORE_UNAVAILABLE', STORE_DOWN, { status: 503, cause: e });
    }
  }

  /**
   * A client's name in Redis and in sentences: a SHA-256 of its address salted with a secret every
   * relay of this Redis shares (made by the first).
   * @throws LockError LOCK_STORE_UNAVAILABLE
   */
  async name(address: string): Promise<string> {
    this.#salt ??= this.#call(async () => {
      const key = `${this.#prefix}salt`;
      await this.#redis.set(key, randomBytes(16).toString('hex'), 'NX');
      const salt = await this.#redis.get(key);
      if (salt === null) throw new Error('no salt');
      return salt;
    }).catch((e: unknown) => {
      this.#salt = undefined;
      throw e;
    });
    return createHash('sha256')
      .update(await this.#salt)
      .update(address)
      .digest('hex')
      .slice(0, 16);
  }

  /** Answers when Redis does (for /readyz). @throws LockError LOCK_STORE_UNAVAILABLE */
  async ping(): Promise<void> {
    await this.#call(() => this.#redis.ping());
  }

  #keys(key: string): [string, string, string] {
    const p = this.#prefix;
    return [`${p}lock:${key}`, `${p}queue:${key}`, `${p}usage:${key}`];
  }

  /**
   * Takes `key` for `client` (a name from {@link name}), waiting in line until one hold ahead
   * has lasted `waitMs`; a hold already older than `waitMs` is answered at once (stuck or squatting).
   * @throws LockError LOCK_STORE_UNAVAILABLE
   */
  async acquire(key: string, client: string, maxHoldMs: number, waitMs: number): Promise<AcquireOutcome> {
    const [lock, queue, usage] = this.#keys(key);
    const me = randomUUID();
    const token = randomUUID();
    let deadline = Date.now() + waitMs;
    let ahead: string | undefined;
    const wp = `${this.#prefix}waiter:`;
    const args = [token, client, me, String(maxHoldMs), String(WAITER_TTL_MS), String(this.#leaseMs), wp];
    let wake: (() => void) | undefined;
    const wakers = this.#wake.get(key) ?? new Set();
    this.#wake.set(key, wakers);
    const waker = (): void => wake?.();
    wakers.add(waker);
    this.#waiting++;
    try {
      for (let first = true; ; first = false) {
        const [kind, holder, heldMs, ms, grantedAt] = await this.#call(() =>
          this.#redis.lockAcquire(lock, queue, usage, ...args),
        );
        // The line moved (another hold is ahead now): wait up to waitMs again, as in memory.
        if (kind === 'held' && ahead !== undefined && grantedAt !== ahead) deadline = Date.now() + waitMs;
        if (kind === 'held') ahead = grantedAt;
        if (kind === 'granted') {
          this.#keep(key, token, maxHoldMs);
          return { kind, token, leftMs: ms };
        }
        if (kind === 'limit') return { kind, wholeInMs: ms };
        const left = deadline - Date.now();
        if (left <= 0 || (first && kind === 'held' && heldMs >= waitMs)) {
          await this.#call(() => this.#redis.lockLeave(queue, me, wp)).catch(() => undefined);
          return { kind: 'held', holder, heldMs, endsInMs: ms };
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(POLL_MS, left));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      this.#waiting--;
      wakers.delete(waker);
      if (wakers.size === 0) this.#wake.delete(key);
    }
  }

  /** Renews a hold's lease until it is released, ends, or Redis says it is gone. */
  #keep(key: string, token: string, maxHoldMs: number): void {
    const [lock, , usage] = this.#keys(key);
    const timer = setInterval(
      () => {
        this.#redis
          .lockRenew(lock, usage, token, String(maxHoldMs), this.#channel, key, String(this.#leaseMs))
          .then((kept) => kept === 0 && this.#forget(token))
          .catch(() => undefined);
      },
      Math.max(50, Math.floor(this.#leaseMs / 3)),
    );
    timer.unref?.();
    this.#held.set(token, { key, timer });
  }

  #forget(token: string): void {
    clearInterval(this.#held.get(token)?.timer);
    this.#held.delete(token);
  }

  /**
   * Ends a hold if `token` still owns it (compare-and-delete in one script); a stale token does nothing.
   * @throws LockError LOCK_STORE_UNAVAILABLE
   */
  async release(key: string, token: string, maxHoldMs: number): Promise<void> {
    const [lock, , usage] = this.#keys(key);
    this.#forget(token);
    await this.#call(() => this.#redis.lockRelease(lock, usage, token, String(maxHoldMs), this.#channel, key));
  }

  /** Releases every hold this relay keeps (shutdown); failures are left to the leases. */
  async releaseAll(maxHoldMs: number): Promise<void> {
    await Promise.all(
      [...this.#held].map(([token, { key }]) => this.release(key, token, maxHoldMs).catch(() => undefined)),
    );
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    for (const token of [...this.#held.keys()]) this.#forget(token);
    this.#sub.disconnect();
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

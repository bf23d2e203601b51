/**
 * Tag locks: while a page rewrites a `.sig` manifest or a referrers index (read-modify-write,
 * which registries cannot make atomic), other pages served by this relay wait for it. In-memory
 * and per process, with short holds, so the relay stays stateless in every way that matters: a
 * restart or a second relay only widens the window that the client's read-back-and-merge closes.
 *
 *   POST /locks/acquire {"key": "<registry>/<repo>:<tag>"} → 200 {"token"} (waits up to waitMs)
 *   POST /locks/release {"key", "token"}                   → 204
 *
 * A signer writes two tags per manifest it signs; it may take them in one request:
 *
 *   POST /locks/acquire {"keys": [<key>, …]}   → 200 {"results": [{"token"} | {"code", "message", "status", "retryAfter"?}, …]}
 *   POST /locks/release {"releases": [{"key", "token"}, …]} → 204
 *
 * A batch (at most MAX_BATCH_KEYS keys) never waits: each key free now is granted as a single
 * acquire would grant it, under the same limits, and each other key gets the refusal a single
 * acquire would give (LOCK_HELD, with its holder and Retry-After, at once) as its own result; a
 * malformed batch, or a key in a registry the relay does not reach, refuses the whole request. The
 * page takes a signing's tags this way before it needs them, and when any is refused gives back
 * the others and takes each in line as it writes (holding none while it waits for another).
 *
 * Against squatting (issue #12): a key must name a tag (registry + repository + tag, written as
 * shared/ops/tag-writer.ts tagKey writes it) in a registry the relay may reach; one client (by its
 * address) holds one key at most maxHoldMs in all — its holds of that key count together until it
 * has left the key alone for maxHoldMs — and holds and waits at most a few keys at once; a waiter
 * is answered at once when the holder has already held the key longer than a writer's round takes,
 * else once one hold ahead of it has lasted waitMs (a line that moves keeps its place), with who holds it (an opaque name for its address), for how long,
 * and when the hold ends at the latest (Retry-After).
 *
 * Refusals are thrown as LockError and answered by the app's one onError (server/app.ts) as JSON
 * `{code, message}`: 400 LOCK_BAD_REQUEST, 403 LOCK_KEY_REFUSED, 423 LOCK_HELD, 429
 * LOCK_HOLD_LIMIT and LOCK_QUOTA (with Retry-After), 503 LOCK_BUSY.
 *
 * With RELAY_LOCKS_URL the table lives in Redis instead (server/locks-redis.ts), shared by every
 * relay behind one load balancer; 503 LOCK_STORE_UNAVAILABLE when Redis does not answer.
 */
import { clientAddress } from './client-address.ts';
import { createHash, randomBytes } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { LockError, type LockErrorCode } from '../shared/errors.ts';
import { formatReference, parseReference } from '../shared/registry/reference.ts';
import { relayRegistryAllowed, type RelayOptions } from './relay/config.ts';
import type { RedisLocks } from './locks-redis.ts';
import { LOCK_BATCH_MAX } from '../shared/ops/tag-writer.ts';

export interface LockOptions {
  /** The relay's settings: a key's registry must be one the relay may reach (default: the public registries). */
  relay?: RelayOptions;
  /** How long one client may hold one key in all, its back-to-back holds counted together (default 15 s). */
  maxHoldMs?: number;
  /** How long an acquire waits for a busy lock (default 5 s). */
  waitMs?: number;
  /** Most distinct keys held or awaited at once (default 10 000). */
  maxKeys?: number;
  /** Most waiters per key (default 100). */
  maxWaiters?: number;
  /** Most keys one client holds, and most it waits for, at once (default 32 each). */
  perClient?: number;
  /** Who is asking (default: the connection's remote address). */
  clientOf?: (c: Context) => string;
  /**
   * Keep the locks in Redis (RELAY_LOCKS_URL, server/locks-redis.ts), shared by every relay of
   * that Redis, instead of in this process; the per-address counts (perClient, maxKeys) are then
   * not kept, the hold budget (maxHoldMs) is.
   */
  store?: RedisLocks;
}

export const DEFAULT_MAX_HOLD_MS = 15_000;
export const DEFAULT_WAIT_MS = 5_000;

interface Entry {
  /** Empty while the lock is being handed to the next waiter. */
  token: string;
  client: string;
  grantedAt: number;
  endsAt: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** In line; `moved` tells a waiter the key went to the next writer (its wait starts again). */
  waiters: { client: string; wake: () => void; moved: () => void }[];
}

/** What one client used of one key: time held in all, and when its last hold ended. */
interface Usage {
  usedMs: number;
  lastEnd: number;
}

/** Where a refusal sets its Retry-After: the answer's headers, or one key's result in a batch. */
interface HeaderSink {
  header(name: string, value: string): void;
}

/** Most keys one batched acquire or release names (a signer's tags: two per manifest it signs). */
export const MAX_BATCH_KEYS = LOCK_BATCH_MAX;

const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

function refused(code: LockErrorCode, message: string): LockError {
  const status = { LOCK_BAD_REQUEST: 400, LOCK_KEY_REFUSED: 403, LOCK_HELD: 423, LOCK_BUSY: 503 }[code as string];
  return new LockError(code, message, { status: status ?? 429 });
}

/** LOCK_HELD: who holds `key` (words), for how long, and when its hold ends at the latest (Retry-After). */
function heldError(c: HeaderSink, key: string, who: string, heldMs: number | undefined, endsInMs: number): LockError {
  c.header('Retry-After', String(seconds(endsInMs)));
  const since = heldMs === undefined ? '' : ` for ${seconds(heldMs)} s`;
  return refused(
    'LOCK_HELD',
    `Another writer holds the lock on ${key} (${who}, held${since}); its hold ends within ${seconds(endsInMs)} s ` +
      'at the latest. Nothing was written; try again then.',
  );
}

/** LOCK_HOLD_LIMIT: `key`'s budget of this client is spent until `wholeInMs` from now (Retry-After). */
function holdLimitError(c: HeaderSink, key: string, maxHoldMs: number, wholeInMs: number): LockError {
  c.header('Retry-After', String(seconds(wholeInMs)));
  return refused(
    'LOCK_HOLD_LIMIT',
    `This address has held the lock on ${key} for ${seconds(maxHoldMs)} s in all, the most one client may; ` +
      `it may take it again in ${seconds(wholeInMs)} s, once it has left it alone for ${seconds(maxHoldMs)} s.`,
  );
}

/**
 * Checks a lock key: `registry/repository:tag` exactly as tagKey writes it, in a registry the
 * relay may reach.
 * @throws LockError LOCK_BAD_REQUEST, LOCK_KEY_REFUSED
 */
function checkKey(key: unknown, allowed: (registry: string) => boolean): string {
  const bad = (): LockError =>
    refused('LOCK_BAD_REQUEST', 'A lock key names one tag: "<registry>/<repository>:<tag>", as the page writes it.');
  if (typeof key !== 'string' || key.length > 512) throw bad();
  let ref;
  try {
    ref = parseReference(key);
  } catch {
    throw bad();
  }
  if (ref.tag === undefined || ref.digest !== undefined || formatReference(ref) !== key) throw bad();
  if (!allowed(ref.registry)) {
    throw refused(
      'LOCK_KEY_REFUSED',
      `This server locks only tags in registries its relay may reach, and ${ref.registry} is not one of them.`,
    );
  }
  return key;
}

/** The lock table: holds, waiters, what each client used and holds, and the refusals' sentences. */
class LockTable {
  readonly held = new Map<string, Entry>();
  readonly #usage = new Map<string, Usage>();
  readonly #perClient = new Map<string, { held: number; waiting: number }>();
  /** Per-process salt: holders are named by a digest of their address, never the address itself. */
  readonly #salt = randomBytes(16);
  readonly maxHoldMs: number;
  readonly waitMs: number;
  readonly #maxKeys: number;
  readonly #maxWaiters: number;
  readonly #perClientMax: number;

  constructor(o: LockOptions) {
    this.maxHoldMs = o.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.waitMs = o.waitMs ?? DEFAULT_WAIT_MS;
    this.#maxKeys = o.maxKeys ?? 10_000;
    this.#maxWaiters = o.maxWaiters ?? 100;
    this.#perClientMax = o.perClient ?? 32;
  }

  #counts(client: string): { held: number; waiting: number } {
    let n = this.#perClient.get(client);
    if (!n) this.#perClient.set(client, (n = { held: 0, waiting: 0 }));
    return n;
  }

  #uncount(client: string, what: 'held' | 'waiting'): void {
    const n = this.#counts(client);
    n[what]--;
    if (n.held <= 0 && n.waiting <= 0) this.#perClient.delete(client);
  }

  /** An opaque, stable name for a client: 8 hex digits of a salted SHA-256 of its address. */
  name(client: string): string {
    return createHash('sha256').update(this.#salt).update(client).digest('hex').slice(0, 8);
  }

  /**
   * Time left of `client`'s budget for `key` now (maxHoldMs once it left the key alone that long),
   * and how long until it is whole again.
   */
  budget(client: string, key: string, now: number): { left: number; wholeIn: number } {
    const u = this.#usage.get(`${client} ${key}`);
    if (!u || now - u.lastEnd >= this.maxHoldMs) return { left: this.maxHoldMs, wholeIn: 0 };
    return { left: this.maxHoldMs - u.usedMs, wholeIn: this.maxHoldMs - (now - u.lastEnd) };
  }

  /**
   * Checks that `client` may take (or wait for) one more key.
   * @throws LockError LOCK_QUOTA, LOCK_BUSY
   */
  admit(c: HeaderSink, client: string, what: 'held' | 'waiting', key: string): void {
    if (this.#counts(client)[what] >= this.#perClientMax) {
      c.header('Retry-After', String(seconds(this.maxHoldMs)));
      throw refused(
        'LOCK_QUOTA',
        `This address already ${what === 'held' ? 'holds' : 'waits for'} ${this.#perClientMax} tag locks; ` +
          `it may take more once some are released (at the latest in ${seconds(this.maxHoldMs)} s).`,
      );
    }
    if (what === 'held' && this.held.size >= this.#maxKeys && !this.held.has(key)) {
      throw refused('LOCK_BUSY', 'This server holds too many tag locks right now; try again in a few seconds.');
    }
    if (what === 'waiting' && (this.held.get(key)?.waiters.length ?? 0) >= this.#maxWaiters) {
      throw refused('LOCK_BUSY', 'Too many writers are waiting for this tag; try again in a few seconds.');
    }
  }

  /**
   * Gives `key` to `client` for what is left of its budget, taking over `waiters`.
   * @throws LockError LOCK_HOLD_LIMIT when the client spent its budget on this key
   */
  grant(c: HeaderSink, key: string, client: string, waiters: Entry['waiters']): string {
    const now = Date.now();
    const { left, wholeIn } = this.budget(client, key, now);
    if (left <= 0) throw holdLimitError(c, key, this.maxHoldMs, wholeIn);
    const token = globalThis.crypto.randomUUID();
    const timer = setTimeout(() => this.release(key, token), left);
    timer.unref?.();
    this.held.set(key, { token, client, grantedAt: now, endsAt: now + left, timer, waiters });
    this.#counts(client).held++;
    return token;
  }

  /** Ends a hold (released, or its time ran out), hands the key to the next waiter; false for a stale token. */
  release(key: string, token: string): boolean {
    const e = this.held.get(key);
    if (!e || e.token === '' || e.token !== token) return false;
    clearTimeout(e.timer);
    const now = Date.now();
    const id = `${e.client} ${key}`;
    const before = this.#usage.get(id);
    const counts = before !== undefined && e.grantedAt - before.lastEnd < this.maxHoldMs;
    const usage = { usedMs: (counts ? before.usedMs : 0) + (now - e.grantedAt), lastEnd: now };
    this.#usage.set(id, usage);
    // Forgotten once it no longer counts (left alone for maxHoldMs).
    setTimeout(() => this.#usage.get(id) === usage && this.#usage.delete(id), this.maxHoldMs).unref?.();
    this.#uncount(e.client, 'held');
    this.pass(key, e);
    return true;
  }

  /** Hands `key` to the next waiter (which takes the entry and the queue behind it), or frees it. */
  pass(key: string, e: Entry): void {
    const next = e.waiters.shift();
    if (next) {
      // Hand over to the next waiter, which takes the entry (and the queue behind it).
      e.token = '';
      e.timer = undefined;
      next.wake();
      for (const w of e.waiters) w.moved();
    } else {
      this.held.delete(key);
    }
  }

  /** LOCK_HELD, with who holds `key`, for how long, and when its hold ends at the latest (Retry-After). */
  heldBy(c: HeaderSink, key: string, asker: string): LockError {
    const e = this.held.get(key);
    const now = Date.now();
    const who =
      !e || e.token === '' ? 'the next writer' : e.client === asker ? 'this address' : `client ${this.name(e.client)}`;
    return heldError(c, key, who, e ? now - e.grantedAt : undefined, e ? Math.max(0, e.endsAt - now) : 0);
  }

  /** Keys held, and waiters, now (for /metrics). */
  counts(): { held: number; waiting: number } {
    let waiting = 0;
    for (const e of this.held.values()) waiting += e.waiters.length;
    return { held: this.held.size, waiting };
  }

  /**
   * Waits in line for `key`: true once it was handed over, false when one hold ahead lasted
   * longer than waitMs (a line that moves keeps its waiters, however long it is).
   */
  async wait(key: string, client: string): Promise<boolean> {
    const current = this.held.get(key)!;
    this.#counts(client).waiting++;
    try {
      return await new Promise<boolean>((resolve) => {
        const giveUp = (): void => {
          const i = current.waiters.indexOf(waiter);
          if (i >= 0) current.waiters.splice(i, 1);
          resolve(false);
        };
        let timeout = setTimeout(giveUp, this.waitMs);
        const waiter = {
          client,
          wake: (): void => {
            clearTimeout(timeout);
            resolve(true);
          },
          // The line moved: wait up to waitMs again, for the hold now ahead.
          moved: (): void => {
            clearTimeout(timeout);
            timeout = setTimeout(giveUp, this.waitMs);
          },
        };
        current.waiters.push(waiter);
      });
    } finally {
      this.#uncount(client, 'waiting');
    }
  }
}

interface LockBody {
  key?: unknown;
  token?: unknown;
  keys?: unknown;
  releases?: unknown;
}

const readBody = async (c: Context): Promise<LockBody> => {
  try {
    const j = (await c.req.json()) as unknown;
    return typeof j === 'object' && j !== null ? j : {};
  } catch {
    return {};
  }
};

/** One key's outcome in a batched acquire: its token, or the refusal a single acquire would answer. */
type BatchResult = { token: string } | { code: string; message: string; status: number; retryAfter?: number };

/**
 * The keys of a batched acquire: 1 to MAX_BATCH_KEYS distinct keys, each checked as a single one.
 * @throws LockError LOCK_BAD_REQUEST, LOCK_KEY_REFUSED (for the whole batch)
 */
function batchKeys(keys: unknown, allowed: (registry: string) => boolean): string[] {
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_BATCH_KEYS || new Set(keys).size !== keys.length) {
    throw refused('LOCK_BAD_REQUEST', `A batched acquire names 1 to ${MAX_BATCH_KEYS} different keys in "keys".`);
  }
  return keys.map((k) => checkKey(k, allowed));
}

/** The holds a batched release ends: `[{key, token}]`, each checked as a single release. @throws LockError LOCK_BAD_REQUEST */
function batchReleases(releases: unknown): { key: string; token: string }[] {
  const bad = (): LockError =>
    refused(
      'LOCK_BAD_REQUEST',
      `A batched release names 1 to ${MAX_BATCH_KEYS} holds as [{"key", "token"}] in "releases".`,
    );
  if (!Array.isArray(releases) || releases.length === 0 || releases.length > MAX_BATCH_KEYS) throw bad();
  return releases.map((r: { key?: unknown; token?: unknown } | null) => {
    if (typeof r !== 'object' || r === null || typeof r.token !== 'string') throw bad();
    return { key: checkKey(r.key, () => true), token: r.token };
  });
}

/** Acquires each key with `one`, side by side, each refusal kept as that key's result. */
async function acquireEach(
  keys: string[],
  one: (sink: HeaderSink, key: string) => Promise<string>,
): Promise<BatchResult[]> {
  return Promise.all(
    keys.map(async (key): Promise<BatchResult> => {
      let retryAfter: number | undefined;
      const sink: HeaderSink = {
        header: (name, value) => void (name === 'Retry-After' && (retryAfter = Number(value))),
      };
      try {
        return { token: await one(sink, key) };
      } catch (e) {
        if (!(e instanceof LockError)) throw e;
        return { code: e.code, message: e.message, status: e.status ?? 500, ...(retryAfter ? { retryAfter } : {}) };
      }
    }),
  );
}

/**
 * The /locks routes, for `app.route('/locks', createLocks({ relay }))`.
 * @throws LockError (to app.onError) LOCK_BAD_REQUEST for a request without a valid key (or token),
 *   LOCK_KEY_REFUSED for a tag in a registry the relay does not reach, LOCK_HELD when another
 *   writer holds the key too long, LOCK_HOLD_LIMIT and LOCK_QUOTA past a client's limits, LOCK_BUSY
 *   when the server holds too many locks or waiters
 */
export function createLocks(options: LockOptions = {}): Hono & { counts: () => { held: number; waiting: number } } {
  const table = new LockTable(options);
  const allowed = relayRegistryAllowed(options.relay ?? {});
  const clientOf = options.clientOf ?? clientAddress;
  const store = options.store;
  if (store) return Object.assign(redisLockRoutes(store, table, allowed, clientOf), { counts: () => store.counts });

  const app = Object.assign(new Hono(), { counts: () => table.counts() });
  /** One key for `client`, as a single acquire answers it; `wait` false: held is refused at once. @throws LockError */
  const acquireOne = async (c: HeaderSink, key: string, client: string, wait = true): Promise<string> => {
    const current = table.held.get(key);
    if (!current) {
      table.admit(c, client, 'held', key);
      return table.grant(c, key, client, []);
    }
    if (!wait) throw table.heldBy(c, key, client);
    // A writer's round takes well under a second: a hold already longer than a whole wait is stuck
    // or squatting, and the asker hears so at once rather than after waiting in vain.
    if (current.token !== '' && Date.now() - current.grantedAt >= table.waitMs) throw table.heldBy(c, key, client);
    table.admit(c, client, 'waiting', key);
    if (!(await table.wait(key, client))) throw table.heldBy(c, key, client);
    const entry = table.held.get(key)!;
    try {
      table.admit(c, client, 'held', key);
      return table.grant(c, key, client, entry.waiters);
    } catch (e) {
      // Pass the key on to the next in line rather than leave it with nobody.
      table.pass(key, entry);
      throw e;
    }
  };
  app.post('/acquire', async (c) => {
    const body = await readBody(c);
    const client = clientOf(c);
    if (body.keys !== undefined) {
      const keys = batchKeys(body.keys, allowed);
      return c.json({ results: await acquireEach(keys, (sink, key) => acquireOne(sink, key, client, false)) });
    }
    return c.json({ token: await acquireOne(c, checkKey(body.key, allowed), client) });
  });
  app.post('/release', async (c) => {
    const body = await readBody(c);
    if (body.releases !== undefined) {
      for (const r of batchReleases(body.releases)) table.release(r.key, r.token);
      return c.body(null, 204);
    }
    if (typeof body.token !== 'string') throw refused('LOCK_BAD_REQUEST', 'A release needs the "key" and the "token".');
    table.release(
      checkKey(body.key, () => true),
      body.token,
    );
    return c.body(null, 204);
  });
  return app;
}

/**
 * The /locks routes on a Redis store: the same requests, answers and refusals as in memory.
 * @throws LockError as createLocks's, and LOCK_STORE_UNAVAILABLE (503) when Redis does not answer
 */
function redisLockRoutes(
  store: RedisLocks,
  limits: { maxHoldMs: number; waitMs: number },
  allowed: (registry: string) => boolean,
  clientOf: (c: Context) => string,
): Hono {
  const app = new Hono();
  /** One key for `client` (its stored name), as a single acquire answers it; `wait` false: held is refused at once. @throws LockError */
  const acquireOne = async (c: HeaderSink, key: string, client: string, wait = true): Promise<string> => {
    const r = await store.acquire(key, client, limits.maxHoldMs, wait ? limits.waitMs : 0);
    if (r.kind === 'granted') return r.token;
    if (r.kind === 'limit') throw holdLimitError(c, key, limits.maxHoldMs, r.wholeInMs);
    const who =
      r.holder === '' ? 'the next writer' : r.holder === client ? 'this address' : `client ${r.holder.slice(0, 8)}`;
    throw heldError(c, key, who, r.holder === '' ? undefined : r.heldMs, Math.max(0, r.endsInMs));
  };
  app.post('/acquire', async (c) => {
    const body = await readBody(c);
    if (body.keys !== undefined) {
      const keys = batchKeys(body.keys, allowed);
      const client = await store.name(clientOf(c));
      return c.json({ results: await acquireEach(keys, (sink, key) => acquireOne(sink, key, client, false)) });
    }
    const key = checkKey(body.key, allowed);
    return c.json({ token: await acquireOne(c, key, await store.name(clientOf(c))) });
  });
  app.post('/release', async (c) => {
    const body = await readBody(c);
    if (body.releases !== undefined) {
      const releases = batchReleases(body.releases);
      await Promise.all(releases.map((r) => store.release(r.key, r.token, limits.maxHoldMs)));
      return c.body(null, 204);
    }
    if (typeof body.token !== 'string') throw refused('LOCK_BAD_REQUEST', 'A release needs the "key" and the "token".');
    await store.release(
      checkKey(body.key, () => true),
      body.token,
      limits.maxHoldMs,
    );
    return c.body(null, 204);
  });
  return app;
}

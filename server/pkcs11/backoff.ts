/**
 * Backing off after wrong PINs, per token: a hardware token locks its PIN after a few wrong tries
 * (often 3) and someone who holds the API token could otherwise guess PINs as fast as the token
 * answers. After `threshold` failures within `windowMs` the endpoint refuses to touch the token for
 * `baseMs`, then twice as long after each further failure, up to `maxMs`; a correct PIN resets the
 * count. The state is in memory: a restart forgets it, as it forgets everything else.
 */

export interface BackoffOptions {
  /** Failures allowed within the window before backing off (default 3). */
  threshold?: number;
  /** Failures older than this are forgotten (default 15 minutes). */
  windowMs?: number;
  /** First wait after `threshold` failures (default DEFAULT_BACKOFF_MS, PKCS11_BACKOFF_MS). */
  baseMs?: number;
  /** Longest wait (default 15 minutes). */
  maxMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface Backoff {
  /** Milliseconds to wait before `key` may be tried again; 0 when it may be tried now. */
  waitMs(key: string): number;
  /** Counts a wrong PIN for `key`. */
  failed(key: string): void;
  /** A correct PIN: forget the failures of `key`. */
  succeeded(key: string): void;
}

interface Entry {
  failures: number[];
  blockedUntil: number;
}

/** The first wait after three wrong PINs, unless PKCS11_BACKOFF_MS says otherwise. */
export const DEFAULT_BACKOFF_MS = 2_000;

/** Keys kept at most: a bounded map, so unknown token names cannot grow it without end. */
const MAX_KEYS = 1024;

export function createBackoff(options: BackoffOptions = {}): Backoff {
  const threshold = options.threshold ?? 3;
  const windowMs = options.windowMs ?? 15 * 60_000;
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF_MS;
  const maxMs = options.maxMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const fresh = (key: string, t: number): Entry | undefined => {
    const e = entries.get(key);
    if (e === undefined) return undefined;
    e.failures = e.failures.filter((f) => t - f < windowMs);
    if (e.failures.length === 0 && e.blockedUntil <= t) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };

  return {
    waitMs(key) {
      const t = now();
      const e = fresh(key, t);
      return e === undefined ? 0 : Math.max(0, e.blockedUntil - t);
    },
    failed(key) {
      const t = now();
      let e = fresh(key, t);
      if (e === undefined) {
        if (entries.size >= MAX_KEYS) {
          const oldest = entries.keys().next().value;
          if (oldest !== undefined) entries.delete(oldest);
        }
        e = { failures: [], blockedUntil: 0 };
        entries.set(key, e);
      }
      e.failures.push(t);
      const over = e.failures.length - threshold;
      if (over >= 0) e.blockedUntil = t + Math.min(maxMs, baseMs * 2 ** Math.min(over, 30));
    },
    succeeded(key) {
      entries.delete(key);
    },
  };
}

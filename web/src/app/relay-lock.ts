/**
 * The relay's tag locks, as a TagLock for shared/ops/sign.ts: while one tab of this server
 * rewrites a `.sig` manifest or a referrers index, others wait instead of overwriting it. A server
 * without locks (no /locks, or unreachable, or its lock store unavailable: LOCK_STORE_UNAVAILABLE)
 * is not an error: signing goes on unlocked and relies on its read-back-and-merge, settle wait
 * included. A granted lock says so (`held`), and the tag writer then trusts its read-back under the
 * hold (shared/ops/tag-writer.ts). A lock the server refuses (another writer holds it too long, this
 * address's limits, a key it does not lock) stops the write with the server's sentence, so the
 * signer reads who holds the tag and when to try again instead of writing without the lock.
 *
 * `ahead` takes the keys of the writes about to come in one batched request (`{"keys"}`, which
 * the server answers at once, never waiting): all of them or none. A write then finds its hold
 * taken. When any key is held by another writer, the others are given back and each write takes
 * its key in line as before; a hold taken ahead and not used within AHEAD_TTL_MS is given back too
 * (a signer that waited on a person or a device), so no hold outlives the server's hold budget
 * unused. Releases that come together go in one request.
 */
import { LockError, type LockErrorCode } from '../../../shared/errors.ts';
import { LOCK_BATCH_MAX, type TagLock, type TagLockAhead } from '../../../shared/ops/tag-writer.ts';

/** How long a hold taken ahead is kept for the write it was taken for. */
const AHEAD_TTL_MS = 5_000;

/** A key taken ahead: its token, no lock server ('none'), or not taken ('in-line': take it when writing). */
type Early = { token: string; at: number } | 'none' | 'in-line';

/** The server's refusal as a LockError, or null when the answer is not one of its lock codes. */
async function refusal(res: Response): Promise<LockError | null> {
  try {
    const body = (await res.json()) as { code?: unknown; message?: unknown };
    if (typeof body.code !== 'string' || !body.code.startsWith('LOCK_') || typeof body.message !== 'string')
      return null;
    return new LockError(body.code as LockErrorCode, body.message, { status: res.status });
  } catch {
    return null;
  }
}

export function relayLock(origin: string): TagLock {
  const post = (path: 'acquire' | 'release', body: unknown, keepalive = false): Promise<Response> =>
    fetch(`${origin}/locks/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(keepalive ? { keepalive } : {}),
    });

  // Releases made in one turn go in one request. Sent, not awaited: the writer's work is done, and
  // the server hands the key on when it arrives (keepalive: even when the tab closes right after).
  let releasing: { key: string; token: string }[] = [];
  const release = (key: string, token: string): void => {
    releasing.push({ key, token });
    if (releasing.length > 1) return;
    queueMicrotask(() => {
      const all = releasing;
      releasing = [];
      for (let i = 0; i < all.length; i += LOCK_BATCH_MAX) {
        const part = all.slice(i, i + LOCK_BATCH_MAX);
        void post('release', part.length === 1 ? part[0] : { releases: part }, true).catch(() => undefined);
      }
    });
  };

  /** Keys taken ahead and not yet used by a write. */
  const ahead = new Map<string, Promise<Early>>();
  const giveBack = (key: string): void => {
    const early = ahead.get(key);
    ahead.delete(key);
    void early?.then((e) => typeof e === 'object' && release(key, e.token));
  };

  /** One batched, non-waiting acquire of `keys`: every token, or none kept. */
  const takeAll = async (keys: string[]): Promise<Early[]> => {
    let res: Response;
    try {
      res = await post('acquire', { keys });
    } catch {
      return keys.map(() => 'none');
    }
    if (!res.ok) {
      // A lock refusal is heard again, in words, when each write asks; anything else means no locks here.
      const refused = await refusal(res);
      return keys.map(() => (refused && refused.code !== 'LOCK_STORE_UNAVAILABLE' ? 'in-line' : 'none'));
    }
    const results = ((await res.json().catch(() => null)) as { results?: { token?: unknown }[] } | null)?.results;
    const tokens = keys.map((_, i) => results?.[i]?.token);
    if (tokens.every((t): t is string => typeof t === 'string')) {
      const at = Date.now();
      return tokens.map((token) => ({ token, at }));
    }
    keys.forEach((key, i) => typeof tokens[i] === 'string' && release(key, tokens[i]));
    return keys.map(() => 'in-line');
  };

  const lock: TagLock = async (key) => {
    // Taken from the map before waiting, so a give-back meanwhile cannot release what this write uses.
    const taking = ahead.get(key);
    ahead.delete(key);
    let early = taking ? await taking : undefined;
    if (typeof early === 'object' && Date.now() - early.at > AHEAD_TTL_MS) {
      release(key, early.token);
      early = 'in-line';
    }
    let token = typeof early === 'object' ? early.token : undefined;
    if (early === undefined || early === 'in-line') {
      let res: Response | undefined;
      try {
        res = await post('acquire', { key });
      } catch {
        // no lock: the read-back covers it
      }
      if (res?.ok) token = ((await res.json()) as { token?: string }).token;
      else if (res) {
        const refused = await refusal(res);
        // The server's lock store (Redis) is down: like no locks at all, the read-back covers it.
        if (refused && refused.code !== 'LOCK_STORE_UNAVAILABLE') throw refused;
      }
    }
    const end = async (): Promise<void> => {
      if (token) release(key, token);
    };
    // Granted: the tag writer's read-back under the hold proves its write (no settle wait).
    return Object.assign(end, { held: token !== undefined });
  };

  lock.ahead = (keys: string[]): TagLockAhead => {
    const fresh = [...new Set(keys)].filter((k) => !ahead.has(k));
    if (fresh.length > 0 && fresh.length <= LOCK_BATCH_MAX) {
      const taking = takeAll(fresh);
      fresh.forEach((key, i) =>
        ahead.set(
          key,
          taking.then((all) => all[i]!),
        ),
      );
      // Refused: none of this signer's keys taken ahead is kept either, so it holds none while it waits.
      void taking.then((all) => {
        if (all[0] === 'in-line') for (const k of [...ahead.keys()]) giveBack(k);
      });
    }
    return { done: () => keys.forEach((k) => ahead.has(k) && giveBack(k)) };
  };
  return lock;
}

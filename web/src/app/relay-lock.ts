/**
 * The relay's tag locks, as a TagLock for shared/ops/sign.ts: while one tab of this server
 * rewrites a `.sig` manifest or a referrers index, others wait instead of overwriting it. A server
 * without locks (no /locks, or unreachable, or its lock store unavailable: LOCK_STORE_UNAVAILABLE)
 * is not an error: signing goes on unlocked and relies on its read-back-and-merge, settle wait
 * included. A granted lock says so (`held`), and the tag writer then trusts its read-back under the
 * hold (shared/ops/tag-writer.ts). A lock the server refuses (another writer holds it too long, this
 * address's limits, a key it does not lock) stops the write with the server's sentence, so the
 * signer reads who holds the tag and when to try again instead of writing without the lock.
 */
import { LockError, type LockErrorCode } from '../../../shared/errors.ts';
import type { TagLock } from '../../../shared/ops/sign.ts';

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
  return async (key) => {
    let token: string | undefined;
    let res: Response | undefined;
    try {
      res = await fetch(`${origin}/locks/acquire`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key }),
      });
    } catch {
      // no lock: the read-back covers it
    }
    if (res?.ok) token = ((await res.json()) as { token?: string }).token;
    else if (res) {
      const refused = await refusal(res);
      // The server's lock store (Redis) is down: like no locks at all, the read-back covers it.
      if (refused && refused.code !== 'LOCK_STORE_UNAVAILABLE') throw refused;
    }
    const release = async (): Promise<void> => {
      if (!token) return;
      // Sent, not awaited: the writer's work is done, and the server hands the key on when it
      // arrives (keepalive: even when the tab closes right after).
      void fetch(`${origin}/locks/release`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, token }),
        keepalive: true,
      }).catch(() => undefined);
    };
    // Granted: the tag writer's read-back under the hold proves its write (no settle wait).
    return Object.assign(release, { held: token !== undefined });
  };
}

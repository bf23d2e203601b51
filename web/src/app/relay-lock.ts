/**
 * The relay's tag locks, as a TagLock for shared/ops/sign.ts: while one tab of this server
 * rewrites a `.sig` manifest or a referrers index, others wait instead of overwriting it. A lock
 * the server cannot give (busy too long, server without locks) is not an error: signing goes on
 * unlocked and relies on its read-back-and-merge.
 */
import type { TagLock } from '../../../shared/ops/sign.ts';

export function relayLock(origin: string): TagLock {
  return async (key) => {
    let token: string | undefined;
    try {
      const res = await fetch(`${origin}/locks/acquire`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key }),
      });
      if (res.ok) token = ((await res.json()) as { token?: string }).token;
      else await res.body?.cancel();
    } catch {
      // no lock: the read-back covers it
    }
    return async () => {
      if (!token) return;
      await fetch(`${origin}/locks/release`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, token }),
      }).catch(() => undefined);
    };
  };
}

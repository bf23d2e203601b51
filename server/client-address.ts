/**
 * The address a request came from, as the socket says (never a header a client can set): what the
 * locks count per client and the PKCS#11 audit records. 'unknown' where there is no socket
 * (app.request() in tests).
 */
import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';

/** The request's remote address, or 'unknown'. */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

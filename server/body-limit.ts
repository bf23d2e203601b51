/**
 * The size limit of the server's JSON endpoints (/locks; /pkcs11/sign has its own, audited), enforced
 * while the body is read and before anything parses it (issue #12, item 2): a Content-Length over
 * the limit is refused before a byte is read, and a body without one (chunked) is counted as it
 * arrives and refused as soon as it passes the limit, so no request can make the server buffer
 * more than the limit. Hono's bodyLimit middleware does the counting.
 */
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { CosignWebError } from '../shared/errors.ts';

/** Largest body of a JSON request to /locks (a key is at most 512 characters). */
const DEFAULT_JSON_BODY_BYTES = 16 * 1024;

/**
 * `app.use(path, jsonBodyLimit())`.
 * @throws CosignWebError REQUEST_TOO_LARGE (413), answered by app.onError, for a larger body
 */
export function jsonBodyLimit(maxBytes = DEFAULT_JSON_BODY_BYTES): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new CosignWebError('REQUEST_TOO_LARGE', `A request body here is at most ${maxBytes} bytes.`, {
        status: 413,
      });
    },
  });
}

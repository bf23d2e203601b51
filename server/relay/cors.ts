/**
 * Who may call the relay from a browser: by default only the page's own origin (no CORS headers at
 * all); RELAY_CORS_ORIGINS adds other origins, which get CORS headers and preflight answers. A
 * request that a browser marks as coming from any other site (an Origin that is not allowed, or
 * Sec-Fetch-Site cross-site/same-site without one, as for an <img> or a link) is refused with 403
 * RELAY_ORIGIN_REFUSED before it reaches a registry, so other sites cannot use this server as
 * their relay. Clients that are not browsers send neither header and pass (the allowlist still
 * holds for them). Modelled on Hono's `cors` middleware: a factory, options normalised once.
 */
import type { MiddlewareHandler } from 'hono';
import { RelayError } from '../../shared/errors.ts';
import { RELAY_ERROR_HEADER, RELAY_MESSAGE_HEADER } from '../../shared/registry/relay-error.ts';
import { normaliseCorsOrigins } from './config.ts';
import { RELAY_METHODS } from './relay.ts';
import { Site } from '../site.ts';

/** Request headers a cross-origin page may send (Docker-* and OCI-* ones are echoed as asked). */
const ALLOW_HEADERS = [
  'Accept',
  'Authorization',
  'Content-Type',
  'Content-Range',
  'Range',
  'If-None-Match',
  'If-Match',
];

/** Response headers a cross-origin page may read. */
const EXPOSE_HEADERS = [
  'Content-Length',
  'Content-Range',
  'Range',
  'Location',
  'Link',
  'ETag',
  'WWW-Authenticate',
  'Docker-Content-Digest',
  'Docker-Upload-UUID',
  'Docker-Distribution-API-Version',
  'OCI-Subject',
  'OCI-Filters-Applied',
  'OCI-Chunk-Min-Length',
  RELAY_ERROR_HEADER,
  RELAY_MESSAGE_HEADER,
];

export interface RelayCorsOptions {
  /** Origins (`https://app.example`) besides the page's own that may call the relay. */
  corsOrigins?: readonly string[];
  /** The page's own origins (server/site.ts); default: none known, so every Origin but corsOrigins is refused. */
  site?: Site;
}

function refused(): RelayError {
  return new RelayError(
    'RELAY_ORIGIN_REFUSED',
    'This relay serves only its own page and the origins listed in RELAY_CORS_ORIGINS.',
    403,
  );
}

/**
 * The CORS and origin check for `app.use('/relay/*', relayCors(options))`.
 * @throws RelayError RELAY_ORIGIN_REFUSED (403) for requests from other sites
 * @throws RelayError RELAY_CONFIG_INVALID at creation when an origin is malformed
 */
export function relayCors(options: RelayCorsOptions = {}): MiddlewareHandler {
  const allowed = normaliseCorsOrigins(options.corsOrigins);
  const site = options.site ?? new Site();
  return async (c, next): Promise<Response | void> => {
    const origin = c.req.header('origin');
    let crossAllowed: string | undefined;
    if (origin !== undefined) {
      // The whole origin (scheme, host, port) against the page's, never against Host.
      if (!site.isPageOrigin(origin)) {
        if (!allowed.has(origin)) throw refused();
        crossAllowed = origin;
      }
    } else {
      const site = c.req.header('sec-fetch-site');
      if (site === 'cross-site' || site === 'same-site') throw refused();
    }

    const preflight = c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined;
    if (preflight) {
      if (crossAllowed === undefined) throw refused();
      const asked = (c.req.header('access-control-request-headers') ?? '')
        .split(',')
        .map((h) => h.trim())
        .filter((h) => /^(?:docker|oci)-[A-Za-z0-9-]+$/i.test(h));
      return c.body(null, 204, {
        'Access-Control-Allow-Origin': crossAllowed,
        'Access-Control-Allow-Methods': RELAY_METHODS.join(', '),
        'Access-Control-Allow-Headers': [...ALLOW_HEADERS, ...asked].join(', '),
        'Access-Control-Max-Age': '600',
        Vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      });
    }

    await next();
    if (crossAllowed !== undefined) {
      c.res.headers.set('Access-Control-Allow-Origin', crossAllowed);
      c.res.headers.set('Access-Control-Expose-Headers', EXPOSE_HEADERS.join(', '));
    }
    c.res.headers.append('Vary', 'Origin');
  };
}

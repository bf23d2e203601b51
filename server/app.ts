/**
 * The Hono app: answers only to the host names it serves and refuses writes from other sites
 * (server/site.ts), and serves the built single-page app (no source maps; precompressed copies by
 * Accept-Encoding, hashed assets cacheable for a year, index.html revalidated) with a strict
 * Content-Security-Policy (Trusted Types too) and a Permissions-Policy, a health
 * check (/healthz), readiness (/readyz) and metrics (/metrics, server/observe.ts), the registry relay under /relay/ (server/relay/), tag locks under /locks and the PKCS#11
 * endpoint under /pkcs11. Errors cross HTTP in one place, `answerError` as app.onError: the routes
 * and the sub-apps (mounted without an onError of their own, so their errors reach this one) throw
 * coded errors, answered as status + JSON `{code, message}`, never a stack trace; the relay's own
 * errors also carry `X-Relay-Error: <code>` (and the sentence in `X-Relay-Message`) so a client can tell them from a registry's answer.
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { serveStatic } from '@hono/node-server/serve-static';
import { CosignWebError, RelayError } from '../shared/errors.ts';
import { relayErrorHeaders } from '../shared/registry/relay-error.ts';
import type { RelayOptions } from './relay/config.ts';
import { relayCors } from './relay/cors.ts';
import { relay } from './relay/relay.ts';
import { relayBatch } from './relay/batch.ts';
import { relayTransfer, TRANSFER_ORDER_BYTES } from './relay/transfer.ts';
import { TRANSFER_PATH } from '../shared/registry/transfer.ts';
import { createLocks } from './locks.ts';
import { createPkcs11Routes, pkcs11NotConfigured, type Pkcs11Options } from './pkcs11/routes.ts';
import { Site, siteGuard } from './site.ts';
import { jsonBodyLimit } from './body-limit.ts';
import { clientAddress } from './client-address.ts';
import type { RedisLocks } from './locks-redis.ts';
import { parseMetricsAllow, type Metrics } from './observe.ts';

export interface AppOptions {
  /** Folder of the built SPA (vite's outDir). */
  staticRoot: string;
  /** The relay's settings (see server/relay/config.ts); default: the public registries only. */
  relay?: RelayOptions;
  /** The embedded registry's sample image, offered to the page by /config.json. */
  sampleImage?: string;
  /**
   * The TUF repository the page refreshes Sigstore's trusted root from (SIGSTORE_TUF_URL,
   * SIGSTORE_TUF_TARGETS_URL) and the root.json it trusts first (SIGSTORE_TUF_ROOT's bytes; absent:
   * the Sigstore root.json shipped with the page), offered by /config.json; absent: the page uses
   * Sigstore's public-good repository.
   */
  sigstoreTuf?: { metadataUrl: string; targetsUrl: string; rootJson?: string };
  /** The PKCS#11 endpoint (server/pkcs11/); absent: /pkcs11/* answers 404 PKCS11_NOT_CONFIGURED. */
  pkcs11?: Pkcs11Options;
  /**
   * The host names and page origins this server answers to (server/site.ts); default: the loopback
   * names with no page origin known, so every browser's write and cross-origin call is refused.
   */
  site?: Site;
  /** Operations (server/observe.ts): /metrics, /readyz, tag locks in Redis. */
  operations?: Operations;
}

/** What operators run a server with (README, "Operations"). */
export interface Operations {
  /** Counted into, and served at /metrics to the addresses `metricsAllowed` admits. */
  metrics?: Metrics;
  /** Who may read /metrics (METRICS_ALLOW; default: loopback only). */
  metricsAllowed?: (address: string) => boolean;
  /** Why the server is not ready for traffic (/readyz answers 503 with it), or undefined when it is. */
  notReady?: () => Promise<string | undefined>;
  /** The shared tag-lock store (RELAY_LOCKS_URL); default: in this process. */
  locks?: RedisLocks;
  /** The locks' hold budget and wait (RELAY_LOCK_MAX_HOLD_MS, RELAY_LOCK_WAIT_MS; server/locks.ts defaults). */
  lockLimits?: { maxHoldMs?: number; waitMs?: number };
}

/**
 * The page's CSP: only its own scripts; 'wasm-unsafe-eval' lets the scrypt worker compile its
 * WebAssembly (without it the worker falls back to scrypt-js); no inline script, no framing.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  // Trusted Types: script sinks take only what a policy made — Svelte's for its templates, the
  // page's default one (web/src/lib/trusted-types.ts) for its own workers' URLs.
  "require-trusted-types-for 'script'",
  'trusted-types svelte-trusted-html default',
].join('; ');

/**
 * Powerful features the page never uses are off, for it and anything it could embed; it keeps
 * passkeys (WebAuthn get/create) and writing the clipboard (the "Copy" buttons).
 */
export const PERMISSIONS_POLICY = [
  'accelerometer=()',
  'autoplay=()',
  'camera=()',
  'display-capture=()',
  'encrypted-media=()',
  'fullscreen=()',
  'geolocation=()',
  'gyroscope=()',
  'hid=()',
  'magnetometer=()',
  'microphone=()',
  'midi=()',
  'payment=()',
  'picture-in-picture=()',
  'screen-wake-lock=()',
  'serial=()',
  'usb=()',
  'xr-spatial-tracking=()',
  'clipboard-read=()',
  'clipboard-write=(self)',
  'publickey-credentials-create=(self)',
  'publickey-credentials-get=(self)',
].join(', ');

/**
 * The relay's CSP: whatever a registry serves (a blob can be any bytes, served from this origin)
 * must never run as a document here, even if someone opens a relay URL in a tab.
 */
export const RELAY_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'";

/** A file name Vite made from its content (`/assets/index-D1iZYrGR.js`): it never changes. */
const HASHED_ASSET = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8}\.[a-z0-9]+$/;

/**
 * Caching of a static file: a hashed asset is cached for a year and never revalidated; anything
 * else (index.html, which names the current assets) is revalidated on every load. Both vary by
 * Accept-Encoding, as a compressed copy may be sent.
 */
function staticCaching(c: Context): void {
  c.header('Cache-Control', HASHED_ASSET.test(c.req.path) ? 'public, max-age=31536000, immutable' : 'no-cache');
  c.header('Vary', 'Accept-Encoding');
}

function isRelayPath(path: string): boolean {
  return path === '/relay' || path.startsWith('/relay/') || path === TRANSFER_PATH;
}

function hasOwnOriginCheck(path: string): boolean {
  return isRelayPath(path) || path.startsWith('/locks/') || path.startsWith('/pkcs11/');
}

/**
 * The answer to an error thrown while serving (app.onError). A project error: its `status` (500
 * when it has none) and `toJSON()`, plus `X-Relay-Error: <code>` for a RelayError. Anything else:
 * 500 `SERVER_ERROR`, or `RELAY_INTERNAL` with `X-Relay-Error` on relay paths, and one log line
 * with the error's name only (its message may hold a path, a credential or a PKCS#11 internal).
 * Headers a handler set before it threw (Allow, Retry-After, WWW-Authenticate) stay on the answer.
 */
export function answerError(err: Error, c: Context): Response {
  if (err instanceof CosignWebError) {
    const headers: Record<string, string> = err instanceof RelayError ? relayErrorHeaders(err.code, err.message) : {};
    return c.json(err.toJSON(), (err.status ?? 500) as ContentfulStatusCode, headers);
  }
  console.error(`error serving ${c.req.method} ${c.req.path}: ${err.name}`);
  if (isRelayPath(c.req.path)) {
    const message = 'The relay failed to handle this request.';
    return c.json({ code: 'RELAY_INTERNAL', message }, 500, relayErrorHeaders('RELAY_INTERNAL', message));
  }
  return c.json({ code: 'SERVER_ERROR', message: 'The server failed to handle this request.' }, 500);
}

export function createApp(options: AppOptions): Hono {
  const app = new Hono();
  const site = options.site ?? new Site();
  const relayOptions = options.relay ?? {};

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Permissions-Policy', PERMISSIONS_POLICY);
    if (isRelayPath(c.req.path)) {
      // Registry answers are per user and may hold tokens: no shared cache may keep them.
      c.header('Cache-Control', 'no-store');
      c.header('Content-Security-Policy', RELAY_CONTENT_SECURITY_POLICY);
      c.header('Cross-Origin-Resource-Policy', 'same-origin');
    } else {
      c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
    }
  });
  // Only the names this server serves (DNS rebinding), and no writes from other sites; /relay,
  // /locks and /pkcs11 check the Origin of every request themselves (relayCors, below).
  app.use('*', siteGuard(site, hasOwnOriginCheck));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  operationRoutes(app, options.operations ?? {});
  // What the page should know about this server: the sample image, when there is one, and the
  // Sigstore TUF repository when it is not the public-good one.
  app.get('/config.json', (c) =>
    c.json({ sampleImage: options.sampleImage ?? null, sigstoreTuf: options.sigstoreTuf ?? null }),
  );

  app.use('/relay/*', relayCors({ ...relayOptions, site }));
  const relayHandler = relay(relayOptions);
  // Many signature blobs in one request, each through relayHandler (server/relay/batch.ts).
  app.post('/relay/_batch', jsonBodyLimit(64 * 1024), relayBatch(relayHandler));
  app.all('/relay/*', relayHandler);
  // Blob transfers between two registries the relay may reach (server/relay/transfer.ts), for copies.
  app.use(TRANSFER_PATH, relayCors({ ...relayOptions, site }), jsonBodyLimit(TRANSFER_ORDER_BYTES));
  app.all(TRANSFER_PATH, relayTransfer(relayOptions));

  // Tag locks for read-modify-write of signature manifests (server/locks.ts).
  // Same origin only (no CORS list): other sites must not hold this server's locks.
  app.use('/locks/*', relayCors({ site }), jsonBodyLimit());
  const locks = createLocks({
    relay: relayOptions,
    ...options.operations?.lockLimits,
    ...(options.operations?.locks ? { store: options.operations.locks } : {}),
  });
  options.operations?.metrics?.lockCounts(locks.counts);
  app.route('/locks', locks);

  // Signing with the keys of the server's PKCS#11 tokens (server/pkcs11/routes.ts).
  // Same origin only: no other site may drive this server's tokens from a visitor's browser.
  app.use('/pkcs11/*', relayCors({ site }));
  app.route('/pkcs11', options.pkcs11 ? createPkcs11Routes(options.pkcs11, relayOptions) : pkcs11NotConfigured());

  // Source maps are not published: the build makes none, and one put in the folder is not served.
  app.use('/*', async (c, next) => (c.req.path.endsWith('.map') ? c.notFound() : next()));
  // The build's .br and .gz copies (scripts/precompress.ts) by Accept-Encoding; see staticCaching.
  app.use('/*', async (c, next) => {
    await next();
    if (c.res.status === 200 || c.res.status === 206) staticCaching(c);
  });
  app.use('/*', serveStatic({ root: options.staticRoot, precompressed: true }));

  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: `Nothing is served at ${c.req.path}.` }, 404));
  const metrics = options.operations?.metrics;
  app.onError((err, c) => {
    metrics?.refusal(
      err instanceof CosignWebError ? err.code : isRelayPath(c.req.path) ? 'RELAY_INTERNAL' : 'SERVER_ERROR',
    );
    return answerError(err, c);
  });
  return app;
}

/**
 * /readyz (200 `{status: "ready"}`, or 503 `{status: "not-ready", reason}`), /metrics (the
 * Prometheus text format, to the addresses METRICS_ALLOW admits; 403 METRICS_REFUSED to others,
 * 404 when the server keeps none) and the request counters.
 */
function operationRoutes(app: Hono, o: Operations): void {
  const metrics = o.metrics;
  if (metrics) {
    app.use('*', async (c, next) => {
      await next();
      metrics.request(c.req.path, c.res.status);
    });
  }
  app.get('/readyz', async (c) => {
    const reason = await (o.notReady?.() ?? Promise.resolve(undefined));
    return reason === undefined ? c.json({ status: 'ready' }) : c.json({ status: 'not-ready', reason }, 503);
  });
  const allowed = o.metricsAllowed ?? parseMetricsAllow(undefined);
  app.get('/metrics', async (c) => {
    if (!metrics) return c.notFound();
    if (!allowed(clientAddress(c))) {
      throw new CosignWebError('METRICS_REFUSED', 'This address may not read the metrics (see METRICS_ALLOW).', {
        status: 403,
      });
    }
    return c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });
}

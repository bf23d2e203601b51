/**
 * The Hono app: serves the built single-page app with a strict Content-Security-Policy, a health
 * check, the registry relay under /relay/ (server/relay/), tag locks under /locks and the PKCS#11
 * endpoint under /pkcs11. Errors cross HTTP in one place, `answerError` as app.onError: the routes
 * and the sub-apps (mounted without an onError of their own, so their errors reach this one) throw
 * coded errors, answered as status + JSON `{code, message}`, never a stack trace; the relay's own
 * errors also carry `X-Relay-Error: <code>` so a client can tell them from a registry's answer.
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { serveStatic } from '@hono/node-server/serve-static';
import { CosignWebError, RelayError } from '../shared/errors.ts';
import type { RelayOptions } from './relay/config.ts';
import { relayCors } from './relay/cors.ts';
import { relay } from './relay/relay.ts';
import { createLocks } from './locks.ts';
import { createPkcs11Routes, pkcs11NotConfigured, type Pkcs11Options } from './pkcs11/routes.ts';

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
].join('; ');

/**
 * The relay's CSP: whatever a registry serves (a blob can be any bytes, served from this origin)
 * must never run as a document here, even if someone opens a relay URL in a tab.
 */
export const RELAY_CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'";

function isRelayPath(path: string): boolean {
  return path === '/relay' || path.startsWith('/relay/');
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
    const headers: Record<string, string> = err instanceof RelayError ? { 'X-Relay-Error': err.code } : {};
    return c.json(err.toJSON(), (err.status ?? 500) as ContentfulStatusCode, headers);
  }
  console.error(`error serving ${c.req.method} ${c.req.path}: ${err.name}`);
  if (isRelayPath(c.req.path)) {
    return c.json({ code: 'RELAY_INTERNAL', message: 'The relay failed to handle this request.' }, 500, {
      'X-Relay-Error': 'RELAY_INTERNAL',
    });
  }
  return c.json({ code: 'SERVER_ERROR', message: 'The server failed to handle this request.' }, 500);
}

export function createApp(options: AppOptions): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
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

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  // What the page should know about this server: the sample image, when there is one, and the
  // Sigstore TUF repository when it is not the public-good one.
  app.get('/config.json', (c) =>
    c.json({ sampleImage: options.sampleImage ?? null, sigstoreTuf: options.sigstoreTuf ?? null }),
  );

  const relayOptions = options.relay ?? {};
  app.use('/relay/*', relayCors(relayOptions));
  app.all('/relay/*', relay(relayOptions));

  // Tag locks for read-modify-write of signature manifests (server/locks.ts).
  // Same origin only (no CORS list): other sites must not hold this server's locks.
  app.use('/locks/*', relayCors({}));
  app.route('/locks', createLocks({ relay: relayOptions }));

  // Signing with the keys of the server's PKCS#11 tokens (server/pkcs11/routes.ts).
  app.route('/pkcs11', options.pkcs11 ? createPkcs11Routes(options.pkcs11, relayOptions) : pkcs11NotConfigured());

  app.use('/*', serveStatic({ root: options.staticRoot }));

  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: `Nothing is served at ${c.req.path}.` }, 404));
  app.onError(answerError);
  return app;
}

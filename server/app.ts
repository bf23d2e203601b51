/**
 * The Hono app: serves the built single-page app with a strict Content-Security-Policy, and a
 * health check. The registry relay mounts here too (server/relay/). Errors cross HTTP in one
 * place, as JSON `{code, message}`, never a stack trace.
 */
import { Hono } from 'hono';
import { serveStatic } from '@hono/node-server/serve-static';

export interface AppOptions {
  /** Folder of the built SPA (vite's outDir). */
  staticRoot: string;
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

export function createApp(options: AppOptions): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    if (!c.req.path.startsWith('/relay/')) {
      c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
      c.header('Cross-Origin-Opener-Policy', 'same-origin');
    }
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.use('/*', serveStatic({ root: options.staticRoot }));

  app.notFound((c) => c.json({ code: 'NOT_FOUND', message: `Nothing is served at ${c.req.path}.` }, 404));
  app.onError((err, c) => {
    console.error(`error serving ${c.req.method} ${c.req.path}: ${err.name}`);
    return c.json({ code: 'SERVER_ERROR', message: 'The server failed to handle this request.' }, 500);
  });
  return app;
}

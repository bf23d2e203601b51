/**
 * The server's tag locks (server/locks.ts) on a loopback socket, as a tab of `npm start` reaches
 * them at `<origin>/locks`, for tests of the page's lock client (web/src/app/relay-lock.ts). Each
 * request the page sends (one without the tests' `x-client` header, which names another writer)
 * is noted with its path and body.
 */
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { answerError } from '../../../server/app.ts';
import { createLocks, type LockOptions } from '../../../server/locks.ts';

export interface LockServer {
  origin: string;
  /** Each of the page's requests: its path and body, in order. */
  seen: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function serveLocks(options: LockOptions): Promise<LockServer> {
  const seen: LockServer['seen'] = [];
  const app = new Hono()
    .use('/locks/*', async (c, next) => {
      if (!c.req.header('x-client')) seen.push({ path: c.req.path, body: await c.req.raw.clone().json() });
      await next();
    })
    .route('/locks', createLocks(options))
    .onError(answerError);
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

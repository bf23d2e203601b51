/**
 * Serves the app over node:http with @hono/node-server, as main.ts, the tests and the relay
 * benchmark do. One addition to the adapter: a relay request whose raw target the adapter refuses
 * on its own (a backslash in the path, which it answers with an empty 400) gets the relay's JSON
 * 400 RELAY_BAD_REQUEST with `X-Relay-Error`, like every other malformed relay path. And relayed
 * answer bodies go from the registry's socket to the client's without a WHATWG stream between
 * (relay/raw-answer.ts).
 */
import { serve, type Http2Bindings, type HttpBindings, type ServerType } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Hono } from 'hono';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RelayError } from '../shared/errors.ts';
import { relayErrorHeaders } from '../shared/registry/relay-error.ts';
import { RAW_BODIES_ENV, sendRawBody } from './relay/raw-answer.ts';

export interface ServeOptions {
  port: number;
  hostname: string;
}

/** True for raw targets under /relay that @hono/node-server refuses before the app sees them. */
function refusedByAdapter(url: string): boolean {
  if (!url.startsWith('/relay')) return false;
  const query = url.indexOf('?');
  const backslash = url.indexOf('\\');
  return backslash >= 0 && (query < 0 || backslash < query);
}

function answerBadRelayTarget(res: http.ServerResponse): void {
  const err = new RelayError('RELAY_BAD_REQUEST', 'The relay path holds a backslash.', 400);
  const body = JSON.stringify(err.toJSON());
  res.writeHead(400, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    ...relayErrorHeaders(err.code, err.message),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(body);
}

/**
 * Starts serving `app` and resolves once the server listens.
 * @returns the server and the port it listens on (useful with port 0)
 */
export function serveApp(app: Hono, options: ServeOptions): Promise<{ server: ServerType; port: number }> {
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        // Relayed bodies are written from the registry's stream to the socket (relay/raw-answer.ts).
        // Only an HTTP/1.1 ServerResponse is offered for it: any other answer keeps its WHATWG body.
        fetch: async (request: Request, env: HttpBindings | Http2Bindings) => {
          const outgoing = env.outgoing;
          if (!(outgoing instanceof http.ServerResponse)) return app.fetch(request, env);
          const answer = await app.fetch(request, { ...env, [RAW_BODIES_ENV]: true });
          return sendRawBody(answer, outgoing) ? RESPONSE_ALREADY_SENT : answer;
        },
        port: options.port,
        hostname: options.hostname,
        createServer: ((serverOptions: http.ServerOptions, listener: http.RequestListener) =>
          http.createServer(serverOptions, (req, res) => {
            if (refusedByAdapter(req.url ?? '')) {
              req.resume();
              answerBadRelayTarget(res);
              return;
            }
            listener(req, res);
          })) as typeof http.createServer,
      },
      (info: AddressInfo) => resolve({ server, port: info.port }),
    );
    server.once('error', reject);
  });
}

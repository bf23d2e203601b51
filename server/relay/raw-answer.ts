/**
 * Relayed answer bodies written straight from the registry's Node stream to the client's socket
 * when the app is served by node:http (serve.ts), instead of through a WHATWG ReadableStream that
 * @hono/node-server reads back chunk by chunk: each TLS record (16 KiB) then costs a promise, a
 * queue entry and a read request on the way, which showed as CPU per MiB in `npm run bench`.
 *
 * The relay's handler still answers with a Response (status and headers, so every middleware
 * adds its headers as for any answer) carrying the marker header RAW_BODY_HEADER and no body; the
 * upstream stream waits here, keyed by the client's ServerResponse, until serve.ts takes it.
 * Without a node:http server (app.request in tests, the batch route's inner requests) the relay
 * keeps its WHATWG stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { RelayError } from '../../shared/errors.ts';

/** Marks an answer whose body serve.ts writes from the upstream stream; never sent to the client. */
export const RAW_BODY_HEADER = 'x-cosign-web-raw-body';

/** An upstream body waiting for its client, and who hears when it is over. */
export interface RawBody {
  res: IncomingMessage;
  /** Called once: the bytes passed on, and '' or why the body was cut off. */
  done: (bytes: number, failure: string) => void;
}

const waiting = new WeakMap<ServerResponse, RawBody>();

/** The env key serve.ts sets to say it writes marked answers itself (a server that does not gets WHATWG bodies). */
export const RAW_BODIES_ENV = 'cosignWebRawBodies';

/** The client's ServerResponse when the server writes raw bodies (serve.ts), else undefined. */
export function rawOutgoing(env: unknown): ServerResponse | undefined {
  const e = env as { outgoing?: ServerResponse; [RAW_BODIES_ENV]?: boolean } | undefined;
  return e?.[RAW_BODIES_ENV] === true ? e.outgoing : undefined;
}

/**
 * The answer for `outgoing` with `body` to be written by serve.ts.
 * @returns a Response without a body, marked with RAW_BODY_HEADER
 */
export function rawAnswer(outgoing: ServerResponse, body: RawBody, status: number, headers: Headers): Response {
  waiting.set(outgoing, body);
  headers.set(RAW_BODY_HEADER, '1');
  return new Response(null, { status, headers });
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) if (name !== RAW_BODY_HEADER) out[name] = value;
  return out;
}

/**
 * Writes `answer` with the upstream body waiting for `outgoing`, if there is one: status and
 * headers as the app left them, then the body piped (the registry slowed down by a slow client,
 * each cut off when the other goes away).
 * @returns false when no body waits for `outgoing` or `answer` is not the marked one (then the
 *   waiting body, if any, is dropped and the caller sends `answer` as usual)
 */
export function sendRawBody(answer: Response, outgoing: ServerResponse): boolean {
  const body = waiting.get(outgoing);
  if (body === undefined) return false;
  waiting.delete(outgoing);
  const { res, done } = body;
  if (!answer.headers.has(RAW_BODY_HEADER)) {
    res.destroy();
    done(0, 'replaced');
    return false;
  }
  let bytes = 0;
  let upstreamFailure: unknown;
  res.on('data', (chunk: Buffer) => (bytes += chunk.length));
  res.once('error', (e) => (upstreamFailure ??= e));
  res.once('close', () => {
    if (!res.complete && !outgoing.destroyed) upstreamFailure ??= new Error('upstream closed early');
  });
  outgoing.writeHead(answer.status, headerRecord(answer.headers));
  pipeline(res, outgoing, (err) => {
    if (!err) done(bytes, '');
    else if (upstreamFailure === undefined) done(bytes, 'client-aborted');
    else done(bytes, upstreamFailure instanceof RelayError ? upstreamFailure.code : 'upstream-aborted');
  });
  return true;
}

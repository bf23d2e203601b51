/**
 * The registry relay, `/relay/<host>[:<port>]/<path>?<query>` → `<scheme>://<host>[:<port>]/<path>?<query>`:
 * the page's only way to a registry, since registries send no CORS headers. A Hono handler made by
 * `relay(options)` (options normalised once, as Hono's own middleware factories do).
 *
 * - Only allowlisted `host:port` (exact), over https unless listed as plain http; every address the
 *   name resolves to is checked and the connection pinned to them (upstream.ts).
 * - Bodies stream both ways with node:http/https: from the raw IncomingMessage when served by
 *   @hono/node-server, else from the WHATWG request body; responses as a pull-driven stream, so a
 *   large blob passes with flat memory. Manifest PUTs are the exception: read (at most
 *   RELAY_MAX_MANIFEST_BYTES) before connecting, so an oversized one never reaches the registry.
 * - GET and HEAD follow redirects here (at most RELAY_MAX_REDIRECTS), each target checked like the
 *   first, Authorization dropped once the origin changes. Other methods never follow: a 3xx goes
 *   back to the client as it is (registries do not redirect uploads; a client that wants to follow
 *   one gets its Location rewritten to a relay path when the target is relayable).
 * - Location and Link targets on a relayable upstream become relay paths; WWW-Authenticate and the
 *   registry's status and body pass through untouched.
 * - Only the registry API (`/v2`, `/v2/…`) and token realms (realms.ts: named by a registry's
 *   challenge in an answer passed on here, or configured) are relayed; any other path is 403
 *   RELAY_PATH_NOT_ALLOWED before anything is resolved.
 * - TUF repository hosts (config.ts: DEFAULT_TUF_HOSTS or SIGSTORE_TUF_URL's) are read-only: GET
 *   alone (405 otherwise), and an answer longer than TUF_MAX_RESPONSE_BYTES is cut off (declared:
 *   refused with 502 RELAY_BODY_TOO_LARGE; streamed: the stream fails).
 * - Sigstore service hosts (config.ts: DEFAULT_SIGSTORE_SERVICES or RELAY_SIGSTORE_SERVICES) pass
 *   only SIGSTORE_SERVICE_PATHS (a log entry upload, a timestamp request, …), with answers of at
 *   most TUF_MAX_RESPONSE_BYTES.
 * - One log line per request: method, upstream, path without query, status, bytes, time. Never a
 *   header value, a query string (it can hold upload `_state` tokens) or a body.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import type { LookupAddress } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { RelayError } from '../../shared/errors.ts';
import {
  isSigstoreServiceCall,
  normaliseRelayOptions,
  SIGSTORE_SERVICE_PATHS,
  TUF_MAX_RESPONSE_BYTES,
  type RelayConfig,
  type RelayOptions,
} from './config.ts';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts';
import { hostKey, parseAuthority, type Host } from './host.ts';
import { bearerRealms, isRegistryApiPath, RealmMemory, realmKey, realmKeyOfUrl } from './realms.ts';
import { rawAnswer, rawOutgoing } from './raw-answer.ts';
import { parseRelayTarget, relayAuthority, type RelayTarget } from './target.ts';
import { makeAgents, resolveChecked, sendUpstream, type Agents, type Hop } from './upstream.ts';

/** Methods the registry API uses; anything else is refused (405). */
export const RELAY_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'];

const BODY_METHODS = new Set(['PUT', 'POST', 'PATCH']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MANIFEST_PUT = /^\/v2\/.+\/manifests\/[^/]+$/;

interface LogEntry {
  method: string;
  authority: string;
  path: string;
  redirects: number;
  bytesUp: number;
  /** When the registry's answer headers came, from the start. */
  upstreamMs?: number;
}

function logLine(e: LogEntry, status: number, bytesDown: number, ms: number, note: string): string {
  const redirects = e.redirects > 0 ? ` redirects=${e.redirects}` : '';
  const extra = note ? ` ${note}` : '';
  return `relay ${e.method} ${e.authority} ${e.path} ${status} up=${e.bytesUp}B down=${bytesDown}B ${ms}ms${redirects}${extra}`;
}

/** The request is over: its log line, and the same facts to `observe` (metrics, JSON logs). */
function report(
  config: RelayConfig,
  e: LogEntry,
  done: { status: number; bytesDown: number; started: number; note: string },
): void {
  const ms = Math.round(performance.now() - done.started);
  config.log(logLine(e, done.status, done.bytesDown, ms, done.note));
  config.observe?.({
    method: e.method,
    upstream: e.authority,
    path: e.path,
    status: done.status,
    bytesUp: e.bytesUp,
    bytesDown: done.bytesDown,
    ms,
    upstreamMs: e.upstreamMs,
    redirects: e.redirects,
    note: done.note,
  });
}

function originOf(h: Hop): string {
  return `${h.scheme}://${relayAuthority(h, h.scheme, h.port)}`;
}

/** The URL `hop` stands for, to resolve relative Location targets against. */
function hopUrl(h: Hop): URL {
  return new URL(`${originOf(h)}${h.pathAndQuery}`);
}

/** Maps an upstream URL to a relay path when the relay would reach it directly; else unchanged. */
function makeRewriter(base: Hop, config: RelayConfig): (target: string) => string {
  const baseUrl = hopUrl(base);
  return (target) => {
    let u: URL;
    try {
      u = new URL(target, baseUrl);
    } catch {
      return target;
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') return target;
    const a = parseAuthority(u.host);
    if (a === null) return target;
    const scheme = u.protocol === 'https:' ? 'https' : 'http';
    const port = a.port ?? (scheme === 'https' ? 443 : 80);
    if (!config.isDirect(a, port) || config.schemeFor(a, port).scheme !== scheme) return target;
    return `/relay/${relayAuthority(a, scheme, port)}${u.pathname}${u.search}`;
  };
}

/**
 * Where a redirect from `from` leads, checked: http(s) only, no userinfo, a valid host that the
 * allowlist admits as a redirect target, and plain http only to hosts listed for it.
 * @throws RelayError RELAY_REDIRECT_REFUSED, RELAY_PLAIN_HTTP_REFUSED (403)
 */
function redirectHop(location: string, from: Hop, config: RelayConfig): Hop {
  const refused = (why: string): RelayError =>
    new RelayError('RELAY_REDIRECT_REFUSED', `The registry at ${from.authority} redirected ${why}.`, 403);
  let u: URL;
  try {
    u = new URL(location, hopUrl(from));
  } catch {
    throw refused('to an address that is not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw refused('to something other than http(s)');
  if (u.username !== '' || u.password !== '') throw refused('to a URL with credentials in it');
  const a = parseAuthority(u.host);
  if (a === null) throw refused('to an invalid host');
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const port = a.port ?? (scheme === 'https' ? 443 : 80);
  const host: Host = { host: a.host, kind: a.kind };
  const authority = relayAuthority(host, scheme, port);
  if (!config.isRedirectTarget(host, port)) {
    throw refused(`to ${authority}, which is not on this server's list of allowed registries`);
  }
  if (scheme === 'http' && !config.plainHttp.has(hostKey(host, port))) {
    throw new RelayError(
      'RELAY_PLAIN_HTTP_REFUSED',
      `The registry at ${from.authority} redirected to plain http at ${authority}, which is not listed in RELAY_PLAIN_HTTP_REGISTRIES.`,
      403,
    );
  }
  return { ...host, scheme, port, authority, pathAndQuery: `${u.pathname}${u.search}` };
}

/** Reads a whole body of at most `max` bytes. @throws RelayError RELAY_BODY_TOO_LARGE (413) */
async function readLimited(body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > max) {
      throw new RelayError(
        'RELAY_BODY_TOO_LARGE',
        `The manifest is larger than the ${max} bytes this relay accepts.`,
        413,
      );
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, total);
}

/**
 * A pull-driven WHATWG stream over an upstream response: each read from downstream takes what
 * upstream has buffered (or waits for it), so a slow client slows the registry down instead of
 * filling memory, and a fast one gets large chunks.
 */
function streamBody(
  res: IncomingMessage,
  max: number,
  done: (bytes: number, failure: string) => void,
): ReadableStream<Uint8Array> {
  let bytes = 0;
  let finished = false;
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const finish = (why: string): void => {
    if (finished) return;
    finished = true;
    done(bytes, why);
  };
  res.on('readable', () => wake?.());
  res.on('end', () => {
    ended = true;
    wake?.();
  });
  res.on('error', (e) => {
    failure ??= e;
    wake?.();
  });
  res.on('close', () => {
    if (!ended) failure ??= new Error('upstream closed early');
    wake?.();
  });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const chunk = res.read() as Buffer | null;
          if (chunk !== null) {
            bytes += chunk.length;
            if (bytes > max) {
              res.destroy();
              controller.error(tooLargeAnswer(max));
              finish('RELAY_BODY_TOO_LARGE');
              return;
            }
            controller.enqueue(chunk);
            return;
          }
          if (ended) {
            controller.close();
            finish('');
            return;
          }
          if (failure !== undefined) {
            controller.error(failure);
            finish(failure instanceof RelayError ? failure.code : 'upstream-aborted');
            return;
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      cancel() {
        res.destroy();
        finish('client-aborted');
      },
    },
    { highWaterMark: 0 },
  );
}

/** A read-only (TUF) host's answer is longer than the relay passes on. */
function tooLargeAnswer(max: number): RelayError {
  return new RelayError(
    'RELAY_BODY_TOO_LARGE',
    `The TUF repository's answer is larger than the ${max} bytes this relay passes on.`,
    502,
  );
}

function rawTarget(c: Context): string {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (typeof incoming?.url === 'string') return incoming.url;
  const u = new URL(c.req.url);
  return `${u.pathname}${u.search}`;
}

function requestBody(c: Context): Readable | null {
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (incoming !== undefined) return incoming;
  const body = c.req.raw.body;
  return body === null ? null : Readable.fromWeb(body as NodeReadableStream<Uint8Array>);
}

/** What one relayed request carries through its steps. */
interface Exchange {
  c: Context;
  config: RelayConfig;
  agents: Agents;
  entry: LogEntry;
  started: number;
  /** Largest answer body passed on: TUF_MAX_RESPONSE_BYTES for a read-only host, else unbounded. */
  maxAnswerBytes: number;
  /** Token realms named by the challenges this relay passed on. */
  realms: RealmMemory;
}

/**
 * Refuses a path that is neither the registry API nor a token realm (configured, or named by a
 * registry's challenge that this relay passed on); a TUF host's GET may read any path.
 * @throws RelayError RELAY_PATH_NOT_ALLOWED (403)
 */
function checkPath(x: Exchange, target: RelayTarget): void {
  const { config, c } = x;
  const direct = config.isDirect(target, target.port);
  if (config.isSigstoreService(target, target.port)) {
    if (isSigstoreServiceCall(c.req.method, target.path) && target.query === '') return;
    if (!direct)
      throw new RelayError(
        'RELAY_PATH_NOT_ALLOWED',
        `The relay passes on only the Sigstore service calls (${SIGSTORE_SERVICE_PATHS.join(', ')}, an OIDC issuer's discovery document and token endpoint) to ${target.authority}; ${c.req.method} ${target.path} is none of them.`,
        403,
      );
  }
  if (isRegistryApiPath(target.path)) return;
  if (config.isTufHost(target, target.port) && c.req.method === 'GET') return;
  const key = realmKey(target.scheme, target, target.port, target.path);
  if (config.tokenRealms.has(key) || x.realms.has(key)) return;
  throw new RelayError(
    'RELAY_PATH_NOT_ALLOWED',
    `The relay passes on only the registry API (/v2/…) and the token service a registry's challenge named; ` +
      `${target.authority}${target.path} is neither.`,
    403,
  );
}

/** Remembers the Bearer realms an answer's challenge names, when the relay may reach them. */
function rememberRealms(x: Exchange, challenge: string | undefined): void {
  if (challenge === undefined) return;
  for (const realm of bearerRealms(challenge)) {
    const r = realmKeyOfUrl(realm);
    if (r === null || !x.config.isDirect(r.host, r.port)) continue;
    if (x.config.schemeFor(r.host, r.port).scheme !== r.scheme) continue;
    x.realms.remember(x.entry.authority, r.key);
  }
}

/** RELAY_UPSTREAM_NOT_ALLOWED (403) for a host the allowlist does not name. */
export function notAllowed(authority: string): RelayError {
  return new RelayError(
    'RELAY_UPSTREAM_NOT_ALLOWED',
    `The relay does not reach ${authority}: it is not on this server's list of allowed registries (RELAY_ALLOWED_REGISTRIES).`,
    403,
  );
}

/**
 * Where the request goes: its method checked, its target parsed and allowlisted, a manifest PUT's
 * declared size checked, before anything is resolved or sent.
 * A read-only (TUF) host takes GET alone, and sets the exchange's answer limit.
 * @throws RelayError RELAY_METHOD_NOT_ALLOWED (405, with Allow), RELAY_BAD_REQUEST,
 *   RELAY_UPSTREAM_NOT_ALLOWED, RELAY_PATH_NOT_ALLOWED (403), RELAY_BODY_TOO_LARGE (413)
 */
function checkedTarget(x: Exchange): { target: RelayTarget; isManifestPut: boolean } {
  const { c, config, entry } = x;
  const method = c.req.method;
  if (!RELAY_METHODS.includes(method)) {
    c.header('Allow', RELAY_METHODS.join(', '));
    throw new RelayError('RELAY_METHOD_NOT_ALLOWED', `The relay does not pass on ${method} requests.`, 405);
  }
  const target = parseRelayTarget(rawTarget(c), config.schemeFor);
  entry.authority = target.authority;
  entry.path = target.path;
  if (config.isReadOnly(target, target.port)) {
    if (method !== 'GET') {
      c.header('Allow', 'GET');
      throw new RelayError(
        'RELAY_METHOD_NOT_ALLOWED',
        `The relay only reads (GET) the TUF repository at ${target.authority}; it does not pass on ${method}.`,
        405,
      );
    }
    x.maxAnswerBytes = TUF_MAX_RESPONSE_BYTES;
  } else if (config.isSigstoreService(target, target.port) && !config.isDirect(target, target.port)) {
    x.maxAnswerBytes = TUF_MAX_RESPONSE_BYTES;
  } else if (!config.isDirect(target, target.port)) {
    throw notAllowed(target.authority);
  }
  checkPath(x, target);
  const isManifestPut = method === 'PUT' && MANIFEST_PUT.test(target.path);
  const declared = Number(c.req.header('content-length') ?? NaN);
  if (isManifestPut && declared > config.maxManifestBytes) {
    throw new RelayError(
      'RELAY_BODY_TOO_LARGE',
      `The manifest is larger than the ${config.maxManifestBytes} bytes this relay accepts.`,
      413,
    );
  }
  return { target, isManifestPut };
}

/**
 * The body to send upstream: none for GET, HEAD and DELETE; a manifest read whole (so an oversized
 * one never reaches the registry) with its exact Content-Length set in `headers`; else a stream.
 * @throws RelayError RELAY_BODY_TOO_LARGE (413)
 */
async function upstreamBody(
  x: Exchange,
  isManifestPut: boolean,
  headers: Record<string, string>,
): Promise<Buffer | Readable | null> {
  if (!BODY_METHODS.has(x.c.req.method)) return null;
  const source = requestBody(x.c);
  if (!isManifestPut || source === null) return source;
  const body = await readLimited(source, x.config.maxManifestBytes);
  headers['content-length'] = String(body.length);
  x.entry.bytesUp = body.length;
  return body;
}

/** What sending upstream needs: the relay's settings and agents, the method, the log entry, the abort signal. */
export interface Sender {
  config: RelayConfig;
  agents: Agents;
  entry: Pick<LogEntry, 'redirects' | 'bytesUp'>;
  method: string;
  signal: AbortSignal;
}

/**
 * Sends the request, following redirects for GET and HEAD (each target checked, Authorization
 * dropped off the first origin), and returns the final upstream answer with the hop it came from.
 * @throws RelayError RELAY_TOO_MANY_REDIRECTS (502), the redirect checks' and upstream.ts's codes
 */
export async function exchange(
  x: Sender,
  first: { hop: Hop; addresses: LookupAddress[] },
  headers: Record<string, string>,
  body: Buffer | Readable | null,
): Promise<{ res: IncomingMessage; hop: Hop }> {
  const { config, entry, method } = x;
  const origin = originOf(first.hop);
  let { hop, addresses } = first;
  for (;;) {
    const hopHeaders = { ...headers };
    if (originOf(hop) !== origin) delete hopHeaders['authorization'];
    const res = await sendUpstream({
      hop,
      addresses,
      method,
      headers: hopHeaders,
      body: hop === first.hop ? body : null,
      onBodyBytes: (n) => (entry.bytesUp += n),
      config,
      agents: x.agents,
      signal: x.signal,
    });
    const location = res.headers.location;
    const follow = method === 'GET' || method === 'HEAD';
    if (!follow || !REDIRECTS.has(res.statusCode ?? 0) || location === undefined) return { res, hop };
    res.destroy();
    if (entry.redirects >= config.maxRedirects) {
      throw new RelayError(
        'RELAY_TOO_MANY_REDIRECTS',
        `The registry at ${first.hop.authority} redirected more than ${config.maxRedirects} times.`,
        502,
      );
    }
    entry.redirects++;
    hop = redirectHop(location, hop, config);
    addresses = await resolveChecked(hop, config);
  }
}

/**
 * The client's answer from the upstream one: its status, the allowed headers (Location and Link
 * rewritten onto the relay) and its body streamed; the log line once the body is done.
 * @throws RelayError RELAY_UPSTREAM_UNREACHABLE (502) for a status outside 200–599,
 *   RELAY_BODY_TOO_LARGE (502) for a declared length over the exchange's answer limit
 */
function answer(x: Exchange, res: IncomingMessage, hop: Hop): Response {
  const { config, entry, started } = x;
  entry.upstreamMs = performance.now() - started;
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) {
    res.destroy();
    throw new RelayError(
      'RELAY_UPSTREAM_UNREACHABLE',
      `The registry at ${hop.authority} answered with an invalid status (${status}).`,
      502,
    );
  }
  if (Number(res.headers['content-length'] ?? NaN) > x.maxAnswerBytes) {
    res.destroy();
    throw tooLargeAnswer(x.maxAnswerBytes);
  }
  rememberRealms(x, res.headers['www-authenticate']);
  const responseHeaders = clientResponseHeaders(res.headers, makeRewriter(hop, config));
  const method = x.c.req.method;
  const noBody = method === 'HEAD' || status === 204 || status === 304 || res.headers['content-length'] === '0';
  if (noBody) {
    res.resume();
    report(config, entry, { status, bytesDown: 0, started, note: '' });
    return new Response(null, { status, headers: responseHeaders });
  }
  const done = (bytes: number, failure: string): void =>
    report(config, entry, { status, bytesDown: bytes, started, note: failure });
  // Served by node:http (serve.ts): the body goes from socket to socket, no WHATWG stream between.
  const outgoing = rawOutgoing(x.c.env);
  if (outgoing !== undefined && x.maxAnswerBytes === Infinity) {
    return rawAnswer(outgoing, { res, done }, status, responseHeaders);
  }
  return new Response(streamBody(res, x.maxAnswerBytes, done), { status, headers: responseHeaders });
}

/** One relayed request, step by step: where to, what to send, the exchange, the answer. */
async function relayRequest(x: Exchange): Promise<Response> {
  const { target, isManifestPut } = checkedTarget(x);
  const hop: Hop = { ...target, pathAndQuery: `${target.path}${target.query}` };
  // Resolved and checked before the body is read: a refused address costs no upload.
  const addresses = await resolveChecked(hop, x.config);
  const headers = upstreamRequestHeaders(x.c.req.raw.headers, BODY_METHODS.has(x.c.req.method));
  const body = await upstreamBody(x, isManifestPut, headers);
  const sender: Sender = { ...x, method: x.c.req.method, signal: x.c.req.raw.signal };
  const { res, hop: last } = await exchange(sender, { hop, addresses }, headers, body);
  return answer(x, res, last);
}

/**
 * The relay handler, for `app.all('/relay/*', relay(options))`.
 * @throws RelayError (to app.onError) for every refusal and upstream failure, with its status
 */
export function relay(options: RelayOptions = {}): MiddlewareHandler {
  const config: RelayConfig = { ...normaliseRelayOptions(options), observe: options.observe };
  const agents = makeAgents(config);
  const realms = new RealmMemory(config.realmTtlMs);
  return async (c) => {
    const started = performance.now();
    const entry: LogEntry = { method: c.req.method, authority: '-', path: '-', redirects: 0, bytesUp: 0 };
    try {
      return await relayRequest({ c, config, agents, entry, started, maxAnswerBytes: Infinity, realms });
    } catch (e) {
      const err = e instanceof RelayError ? e : undefined;
      report(config, entry, { status: err?.status ?? 500, bytesDown: 0, started, note: err?.code ?? 'RELAY_INTERNAL' });
      throw e;
    }
  };
}

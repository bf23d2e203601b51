/**
 * The relay's outgoing side: resolves a host once and checks every address before any connection
 * (no DNS rebinding: the connection is pinned to the checked addresses through a `lookup` that
 * answers from them, while TLS SNI, certificate checks and the Host header keep the name), then
 * sends one request with node:http/https, streaming the body, with a time limit to the response
 * headers and on idle time. Network failures become RelayErrors that say whose fault they are.
 */
import dns, { type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { RelayError } from '../../shared/errors.ts';
import { ADDRESS_KIND_WORDS, classifyAddress } from './address.ts';
import type { RelayConfig } from './config.ts';
import type { Host } from './host.ts';

/** Where one upstream request goes. */
export interface Hop extends Host {
  scheme: 'http' | 'https';
  port: number;
  /** `host[:port]` for sentences and logs. */
  authority: string;
  /** Path and query, as sent in the request line. */
  pathAndQuery: string;
}

export interface Agents {
  http: http.Agent;
  https: https.Agent;
  /** The pools for requests with a streamed body (uploads), with larger socket buffers. */
  upload: { http: http.Agent; https: https.Agent };
}

/**
 * Socket buffers of the connections that carry streamed uploads (Node's default is 16 KiB): the
 * client's body is piped into the upstream socket, and with 16 KiB nearly every chunk read from
 * the client filled it, pausing the client until 'drain' (1353 pauses for 64 MiB; 2 with 256 KiB).
 * Memory stays bounded per connection. Downloads keep Node's default.
 */
const UPLOAD_HIGH_WATER_MARK = 256 * 1024;

/** Keep-alive agents for one relay; `ca`, when given, replaces Node's trusted CAs (tests). */
export function makeAgents(config: RelayConfig): Agents {
  const pair = (extra: object): { http: http.Agent; https: https.Agent } => ({
    // Idle pooled connections close after 5 s, as with Node's global agent.
    http: new http.Agent({ keepAlive: true, timeout: 5_000, ...extra }),
    https: new https.Agent({
      keepAlive: true,
      timeout: 5_000,
      ...extra,
      ...(config.ca === undefined ? {} : { ca: config.ca as string | Buffer | Array<string | Buffer> }),
    }),
  });
  return { ...pair({}), upload: pair({ highWaterMark: UPLOAD_HIGH_WATER_MARK }) };
}

function timeoutError(authority: string, what: string): RelayError {
  return new RelayError(
    'RELAY_UPSTREAM_TIMEOUT',
    `The registry at ${authority} did not answer in time (${what}).`,
    504,
  );
}

function defaultLookup(hostname: string): Promise<LookupAddress[]> {
  return dns.promises.lookup(hostname, { all: true });
}

/**
 * Resolves `hop` once and checks every address: all must be public unless `host:port` is listed
 * in RELAY_PRIVATE_REGISTRIES (then the operator vouches for it; https still checks the name's
 * certificate). The embedded registry's names (`localRegistries`) must be loopback, `localhost`
 * being 127.0.0.1 without a look-up. Nothing connects before this returns.
 * @returns the checked addresses, to pin the connection to
 * @throws RelayError RELAY_ADDRESS_REFUSED (403), RELAY_UPSTREAM_UNREACHABLE (502) when the name
 *   does not resolve, RELAY_UPSTREAM_TIMEOUT (504) when resolving takes too long
 */
export async function resolveChecked(
  hop: Host & { port: number; authority: string },
  config: RelayConfig,
): Promise<LookupAddress[]> {
  let addresses: LookupAddress[];
  const loopbackOnly = config.loopbackOnly(hop, hop.port);
  if (loopbackOnly && hop.kind === 'name' && hop.host === 'localhost') {
    // RFC 6761 §6.3: localhost is loopback, never looked up; the embedded registry listens on 127.0.0.1.
    addresses = [{ address: '127.0.0.1', family: 4 }];
  } else if (hop.kind !== 'name') {
    addresses = [{ address: hop.host, family: hop.kind === 'ipv4' ? 4 : 6 }];
  } else {
    const lookup = config.lookup ?? defaultLookup;
    let timer: NodeJS.Timeout | undefined;
    try {
      addresses = await Promise.race([
        lookup(hop.host),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(timeoutError(hop.authority, 'resolving its name')), config.upstreamTimeoutMs);
        }),
      ]);
    } catch (e) {
      if (e instanceof RelayError) throw e;
      throw new RelayError('RELAY_UPSTREAM_UNREACHABLE', `The registry host ${hop.host} could not be resolved.`, 502, {
        cause: e,
      });
    } finally {
      clearTimeout(timer);
    }
    if (addresses.length === 0) {
      throw new RelayError('RELAY_UPSTREAM_UNREACHABLE', `The registry host ${hop.host} has no address.`, 502);
    }
  }
  if (loopbackOnly) {
    const other = addresses.find((a) => classifyAddress(a.address) !== 'loopback');
    if (other) {
      throw new RelayError(
        'RELAY_ADDRESS_REFUSED',
        `The relay reaches the embedded registry ${hop.authority} on loopback only, and ${hop.host} resolves to a ${ADDRESS_KIND_WORDS[classifyAddress(other.address)]} address.`,
        403,
      );
    }
  } else if (!config.mayBePrivate(hop, hop.port)) {
    for (const a of addresses) {
      const kind = classifyAddress(a.address);
      if (kind !== 'public') {
        const what = hop.kind === 'name' ? `${hop.host} resolves to` : `${hop.authority} is`;
        throw new RelayError(
          'RELAY_ADDRESS_REFUSED',
          `The relay does not reach ${hop.authority}: ${what} a ${ADDRESS_KIND_WORDS[kind]} address. ` +
            'Only hosts listed in RELAY_PRIVATE_REGISTRIES may be on a private network.',
          403,
        );
      }
    }
  }
  return addresses;
}

/** A `lookup` for net.connect that answers from addresses already checked, never from DNS. */
export function pinnedLookup(addresses: readonly LookupAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all === true) {
      callback(
        null,
        addresses.map((a) => ({ address: a.address, family: a.family })),
      );
      return;
    }
    const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
    const pick = addresses.find((a) => wanted === undefined || a.family === wanted);
    if (pick === undefined) {
      const err: NodeJS.ErrnoException = new Error('no checked address of the requested family');
      err.code = 'ENOTFOUND';
      callback(err, '', 0);
      return;
    }
    callback(null, pick.address, pick.family);
  };
}

const TLS_CODE = /^(?:ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH|EPROTO$)/;

function errorCode(e: unknown): string {
  const err = e as { code?: unknown; errors?: unknown };
  if (typeof err?.code === 'string') return err.code;
  // net's happy-eyeballs connect reports an AggregateError of the attempts.
  if (Array.isArray(err?.errors) && err.errors.length > 0) return errorCode(err.errors[0]);
  return '';
}

/** Turns a network error on the way to `authority` into the RelayError a person can act on. */
export function upstreamError(e: unknown, authority: string): RelayError {
  if (e instanceof RelayError) return e;
  const code = errorCode(e);
  if (TLS_CODE.test(code)) {
    return new RelayError(
      'RELAY_UPSTREAM_TLS',
      `The TLS connection to ${authority} failed: its certificate could not be verified or the handshake failed (${code}).`,
      502,
      { cause: e },
    );
  }
  const reason =
    code === 'ECONNREFUSED'
      ? 'it refused the connection'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'its name could not be resolved'
        : code === 'ECONNRESET' || code === 'EPIPE'
          ? 'it closed the connection'
          : code === 'ETIMEDOUT' || code === 'ERR_SOCKET_CONNECTION_TIMEOUT'
            ? 'connecting timed out'
            : code.startsWith('HPE_')
              ? 'it answered with something that is not HTTP'
              : `the connection failed${code ? ` (${code})` : ''}`;
  return new RelayError(
    'RELAY_UPSTREAM_UNREACHABLE',
    `The registry at ${authority} could not be reached: ${reason}.`,
    502,
    {
      cause: e,
    },
  );
}

export interface UpstreamRequest {
  hop: Hop;
  addresses: readonly LookupAddress[];
  method: string;
  headers: Record<string, string>;
  /** A buffered body, a stream to pipe, or none. */
  body: Buffer | Readable | null;
  /** Told the size of each chunk of a streamed body as it goes upstream. */
  onBodyBytes?: (bytes: number) => void;
  config: RelayConfig;
  agents: Agents;
  /** Aborts the request when the client goes away. */
  signal?: AbortSignal;
}

/** A kept-alive connection the registry had closed: the request never reached it. */
class StaleConnection extends Error {}

/**
 * Sends one request upstream and resolves with the response once its headers arrive (the body is
 * left to stream). The time limit covers the response headers, counted from the end of the request
 * body, and every idle stretch of the connection, before and after the headers. A request without
 * a streamed body that fails on a reused keep-alive connection (closed by the registry as it was
 * sent) is sent once more on a fresh one.
 * @throws RelayError RELAY_UPSTREAM_TIMEOUT, RELAY_UPSTREAM_TLS, RELAY_UPSTREAM_UNREACHABLE
 */
export async function sendUpstream(r: UpstreamRequest): Promise<http.IncomingMessage> {
  try {
    return await sendOnce(r, true);
  } catch (e) {
    if (!(e instanceof StaleConnection)) throw e;
    return sendOnce(r, false);
  }
}

function sendOnce(r: UpstreamRequest, mayRetry: boolean): Promise<http.IncomingMessage> {
  const { hop, config } = r;
  const replayable = r.body === null || Buffer.isBuffer(r.body);
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = {
      protocol: `${hop.scheme}:`,
      host: hop.host,
      port: hop.port,
      method: r.method,
      path: hop.pathAndQuery,
      headers: r.headers,
      agent: (replayable ? r.agents : r.agents.upload)[hop.scheme],
      lookup: pinnedLookup(r.addresses),
      timeout: config.upstreamTimeoutMs,
    };
    if (hop.scheme === 'https' && hop.kind === 'name') options.servername = hop.host;
    const req = config.requestUpstream
      ? config.requestUpstream(options, hop.scheme)
      : hop.scheme === 'https'
        ? https.request(options)
        : http.request(options);

    let settled = false;
    let headersTimer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      settled = true;
      clearTimeout(headersTimer);
      r.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (e: unknown): void => {
      if (settled) return;
      settle();
      const code = errorCode(e);
      if (mayRetry && replayable && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) {
        reject(new StaleConnection('stale keep-alive connection', { cause: e }));
        return;
      }
      reject(upstreamError(e, hop.authority));
    };
    const onAbort = (): void => {
      req.destroy(new RelayError('RELAY_BAD_REQUEST', 'The client went away before the registry answered.', 400));
    };
    if (r.signal?.aborted) onAbort();
    else r.signal?.addEventListener('abort', onAbort, { once: true });

    // Always listen: after the response, errors reach the response stream, not this promise.
    req.on('error', fail);
    req.on('timeout', () => req.destroy(timeoutError(hop.authority, 'no data for too long')));
    req.on('finish', () => {
      if (settled) return;
      headersTimer = setTimeout(
        () => req.destroy(timeoutError(hop.authority, 'no response headers')),
        config.upstreamTimeoutMs,
      );
    });
    req.on('response', (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      settle();
      resolve(res);
    });

    if (r.body === null) req.end();
    else if (Buffer.isBuffer(r.body)) req.end(r.body);
    else {
      // pipe, not pipeline: when the registry answers early (a 401 to a large PUT) and closes,
      // the client's request must stay open so the answer can still be written back to it.
      const body = r.body;
      const bodyFailed = (): void => {
        if (body.readableEnded) return;
        req.destroy(new RelayError('RELAY_BAD_REQUEST', 'The request body ended before it was complete.', 400));
      };
      body.once('error', bodyFailed);
      body.once('close', bodyFailed);
      body.pipe(req);
      // Attached after pipe, in the same tick: a 'data' listener alone would start the flow.
      const count = r.onBodyBytes;
      if (count) body.on('data', (chunk: Buffer) => count(chunk.length));
    }
  });
}

/**
 * Which headers cross the relay, in each direction. Both directions are allowlists: a request
 * carries only what the registry protocol needs (never cookies, client-IP or forwarding headers),
 * and a response carries only protocol headers, never ones that would act on the page's own
 * origin (Set-Cookie, HSTS, CORS, CSP, Clear-Site-Data…). Hop-by-hop headers and those named in
 * Connection are dropped (RFC 9110 §7.6.1). Location and Link targets on a relayable upstream are
 * rewritten to relay paths so clients keep going through the relay.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Request headers forwarded upstream, besides any Docker-* and OCI-* header. If-Match makes a
 * manifest PUT conditional on the ETag the client read (a registry that knows it answers 412 to a
 * stale one); the ETag itself comes back among the response headers.
 */
const REQUEST_HEADERS = new Set([
  'accept',
  'authorization',
  'content-type',
  'content-length',
  'content-range',
  'range',
  'if-none-match',
  'if-match',
]);

/** Response headers passed back, besides any Docker-* and OCI-* header. */
const RESPONSE_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-range',
  'content-encoding',
  'accept-ranges',
  'range',
  'location',
  'link',
  'www-authenticate',
  'etag',
  'last-modified',
  'retry-after',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
]);

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export const RELAY_USER_AGENT = 'cosign-web-relay';

function isProtocolExtension(name: string): boolean {
  return name.startsWith('docker-') || name.startsWith('oci-');
}

function connectionTokens(value: string | null | undefined): Set<string> {
  return new Set(
    (value ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
}

/**
 * The headers to send upstream, from the client's request headers: the allowlist minus anything
 * hop-by-hop or named in Connection, plus `User-Agent: cosign-web-relay`. With `withBody` false
 * (the relay sends no body) Content-Length and Content-Range are dropped too.
 */
export function upstreamRequestHeaders(incoming: Headers, withBody: boolean): Record<string, string> {
  const named = connectionTokens(incoming.get('connection'));
  const out: Record<string, string> = {};
  incoming.forEach((value, rawName) => {
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) return;
    if (!REQUEST_HEADERS.has(name) && !isProtocolExtension(name)) return;
    if (!withBody && (name === 'content-length' || name === 'content-range')) return;
    out[name] = value;
  });
  out['user-agent'] = RELAY_USER_AGENT;
  return out;
}

/**
 * The headers to answer with, from an upstream response: the allowlist minus anything hop-by-hop
 * or named in Connection; Location and Link targets go through `rewrite`.
 */
export function clientResponseHeaders(upstream: IncomingHttpHeaders, rewrite: (url: string) => string): Headers {
  const connection = upstream['connection'];
  const named = connectionTokens(Array.isArray(connection) ? connection.join(',') : connection);
  const out = new Headers();
  for (const [rawName, value] of Object.entries(upstream)) {
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (!RESPONSE_HEADERS.has(name) && !isProtocolExtension(name)) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (name === 'location') out.append(name, rewrite(v));
      else if (name === 'link') out.append(name, rewriteLink(v, rewrite));
      else out.append(name, v);
    }
  }
  return out;
}

/** Rewrites each `<target>` of a Link header value (RFC 8288), leaving parameters alone. */
export function rewriteLink(value: string, rewrite: (url: string) => string): string {
  return value.replace(/<([^>]*)>/g, (_m, target: string) => `<${rewrite(target)}>`);
}

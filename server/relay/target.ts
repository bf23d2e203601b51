/**
 * Reads the upstream a relay request names: `/relay/<host>[:<port>]/<path>?<query>`, taken from
 * the raw request target (before any URL normalisation, so `..` and encoded tricks are seen and
 * refused rather than silently resolved). Path and query are forwarded byte for byte; what is
 * refused (400 RELAY_BAD_REQUEST): control characters, raw or percent-encoded (CR, LF, NUL…);
 * backslashes; `.` and `..` segments, raw or encoded; encoded `/` and `\` in the path; empty
 * segments; malformed escapes; userinfo (`@`) or an invalid host or port in the authority.
 */
import { RelayError } from '../../shared/errors.ts';
import { parseAuthority, urlHost, type Host } from './host.ts';

export interface RelayTarget extends Host {
  scheme: 'http' | 'https';
  port: number;
  /** `host[:port]` as relay paths write it: the port only when it is not the scheme's default. */
  authority: string;
  /** The upstream path, starting with `/`, exactly as the client wrote it. */
  path: string;
  /** The upstream query, '' or starting with `?`, exactly as the client wrote it. */
  query: string;
}

/** RFC 3986 pchar plus `/` (path) and `?` (query), with `%` for escapes checked separately. */
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;
const QUERY_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;
const ESCAPE = /%(?![0-9A-Fa-f]{2})|%(?:[01][0-9A-Fa-f]|7[Ff])/;

export const RELAY_PREFIX = '/relay/';

function bad(message: string): RelayError {
  return new RelayError('RELAY_BAD_REQUEST', message, 400);
}

/** `host[:port]` for a relay path: the port is left out when it is the scheme's default. */
export function relayAuthority(host: Host, scheme: 'http' | 'https', port: number): string {
  const defaultPort = scheme === 'https' ? 443 : 80;
  return port === defaultPort ? urlHost(host) : `${urlHost(host)}:${port}`;
}

/**
 * Checks a path for the relay's rules (see the header comment).
 * @throws RelayError RELAY_BAD_REQUEST
 */
export function checkUpstreamPath(path: string): void {
  if (!path.startsWith('/')) throw bad('The relay path must name a path on the registry after the host.');
  if (!PATH_CHARS.test(path) || ESCAPE.test(path)) {
    throw bad('The relay path holds characters a registry path never has.');
  }
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '' && i < segments.length - 1) throw bad('The relay path holds an empty segment ("//").');
    if (/%(?:2[Ff]|5[Cc])/.test(seg)) throw bad('The relay path holds an encoded slash or backslash.');
    const decoded = seg.replace(/%2[Ee]/g, '.');
    if (decoded === '.' || decoded === '..') throw bad('The relay path holds a "." or ".." segment.');
  }
}

/**
 * Checks a query (with its leading `?`, or '') for the relay's rules.
 * @throws RelayError RELAY_BAD_REQUEST
 */
export function checkUpstreamQuery(query: string): void {
  if (query === '') return;
  if (!QUERY_CHARS.test(query.slice(1)) || ESCAPE.test(query)) {
    throw bad('The relay query holds characters or escapes that are not allowed.');
  }
}

/**
 * Parses the raw request target of a relay request. The scheme and default port come from the
 * configuration (`schemeFor`), never from the client.
 * @throws RelayError RELAY_BAD_REQUEST
 */
export function parseRelayTarget(
  rawTarget: string,
  schemeFor: (host: Host, port: number | undefined) => { scheme: 'http' | 'https'; port: number },
): RelayTarget {
  let target = rawTarget;
  // Absolute-form request targets (proxy style): keep what follows the authority.
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (absolute) target = target.slice(absolute[0].length);
  if (!target.startsWith(RELAY_PREFIX)) {
    throw bad('A relay path looks like /relay/<registry host>[:<port>]/<path>.');
  }
  const rest = target.slice(RELAY_PREFIX.length);
  const end = rest.search(/[/?#]/);
  const authorityText = end < 0 ? rest : rest.slice(0, end);
  if (authorityText === '') throw bad('The relay path must name a registry host after /relay/.');
  if (authorityText.includes('@')) throw bad('The relay path may not carry credentials in the host ("@").');
  const authority = parseAuthority(authorityText);
  if (authority === null) {
    throw bad('The relay path names an invalid registry host or port.');
  }
  const afterAuthority = end < 0 ? '' : rest.slice(end);
  if (afterAuthority.includes('#')) throw bad('The relay path may not hold a fragment ("#").');
  const q = afterAuthority.indexOf('?');
  const path = q < 0 ? afterAuthority : afterAuthority.slice(0, q);
  const query = q < 0 ? '' : afterAuthority.slice(q);
  checkUpstreamPath(path);
  checkUpstreamQuery(query);
  const { scheme, port } = schemeFor(authority, authority.port);
  const host: Host = { host: authority.host, kind: authority.kind };
  return { ...host, scheme, port, authority: relayAuthority(host, scheme, port), path, query };
}

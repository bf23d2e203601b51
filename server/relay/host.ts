/**
 * Host and port syntax for the relay: the `<host>[:<port>]` of a relay path, of an allowlist
 * entry and of a redirect target, checked strictly and put in one canonical form (lower-case DNS
 * name, dotted-quad IPv4, compressed IPv6 without brackets) so that allowlist matching is exact.
 * Anything that could mean two things is refused: userinfo, percent-escapes, trailing dots,
 * numeric-looking names that a resolver might read as an address ("2130706433", "0x7f.1").
 */
import { parseIPv4, parseIPv6 } from './address.ts';

export type HostKind = 'name' | 'ipv4' | 'ipv6';

export interface Host {
  /** Canonical form: lower-case name, dotted-quad IPv4, or compressed IPv6 (no brackets). */
  host: string;
  kind: HostKind;
}

export interface Authority extends Host {
  /** The port when one was written, else undefined (the scheme's default applies). */
  port: number | undefined;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/;

/** RFC 5952 text of eight 16-bit groups: lower case, longest run of zero groups as `::`. */
export function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses a host: a DNS name (LDH labels), a dotted-quad IPv4 address, or an IPv6 address in
 * brackets (as in URLs and relay paths).
 * @returns the canonical host, or null when the text is not exactly one of these.
 */
export function parseHost(text: string): Host | null {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return null;
    const groups = parseIPv6(text.slice(1, -1));
    return groups === null ? null : { host: formatIPv6(groups), kind: 'ipv6' };
  }
  const lower = text.toLowerCase();
  if (lower.length === 0 || lower.length > 253) return null;
  if (parseIPv4(lower) !== null) return { host: lower, kind: 'ipv4' };
  const labels = lower.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  // A last label that is all digits (or 0x…) makes resolvers and URL parsers read an address.
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) return null;
  return { host: lower, kind: 'name' };
}

/** Parses a decimal port 1–65535 without sign or leading zeros, or returns null. */
export function parsePort(text: string): number | null {
  if (!/^[1-9]\d{0,4}$/.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

/** Parses `<host>[:<port>]` (IPv6 in brackets). @returns null when it is not exactly that. */
export function parseAuthority(text: string): Authority | null {
  let hostText = text;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return null;
    hostText = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0) {
      hostText = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  const host = parseHost(hostText);
  if (host === null) return null;
  if (portText === undefined) return { ...host, port: undefined };
  const port = parsePort(portText);
  return port === null ? null : { ...host, port };
}

/** `host` as it appears in a URL authority: IPv6 in brackets. */
export function urlHost(host: Host): string {
  return host.kind === 'ipv6' ? `[${host.host}]` : host.host;
}

/** The `host:port` key used to match allowlists (IPv6 in brackets). */
export function hostKey(host: Host, port: number): string {
  return `${urlHost(host)}:${port}`;
}

/**
 * Classifies IP addresses for the relay's "never reach the inside" rule: only globally routable
 * unicast addresses are `public`; loopback, private, link-local, unspecified, CGNAT, multicast,
 * broadcast and reserved ranges are not, in every textual form (IPv4-mapped, -translated and
 * -compatible IPv6, NAT64 64:ff9b::/96, 6to4 2002::/16 embed an IPv4 address that is classified
 * in its place). Ranges from the IANA special-purpose registries:
 * https://www.iana.org/assignments/iana-ipv4-special-registry and
 * https://www.iana.org/assignments/iana-ipv6-special-registry.
 */

export type AddressKind =
  'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'cgnat' | 'multicast' | 'broadcast' | 'reserved';

/** A few words for each kind, for error sentences ("resolves to a private address"). */
export const ADDRESS_KIND_WORDS: Record<AddressKind, string> = {
  public: 'public',
  loopback: 'loopback',
  private: 'private',
  'link-local': 'link-local',
  unspecified: 'unspecified',
  cgnat: 'carrier-grade NAT',
  multicast: 'multicast',
  broadcast: 'broadcast',
  reserved: 'reserved (not globally routable)',
};

const DEC_OCTET = /^(?:0|[1-9]\d{0,2})$/;

/** Parses a dotted-quad IPv4 address (decimal, no leading zeros) to a 32-bit number, or null. */
export function parseIPv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!DEC_OCTET.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    n = n * 256 + v;
  }
  return n;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Parses an IPv6 address (any case, `::` compression, a dotted-quad tail; no zone index, no
 * brackets) to its eight 16-bit groups, or null.
 */
export function parseIPv6(s: string): number[] | null {
  if (s.length === 0 || s.length > 45 || s.includes('%')) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseSide = (side: string, allowTail: boolean): number[] | null => {
    if (side === '') return [];
    const parts = side.split(':');
    const out: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (allowTail && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (HEX_GROUP.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  if (halves.length === 1) {
    const all = parseSide(halves[0]!, true);
    return all !== null && all.length === 8 ? all : null;
  }
  const head = parseSide(halves[0]!, false);
  const tail = parseSide(halves[1]!, true);
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

function inV4(n: number, base: string, prefix: number): boolean {
  const b = parseIPv4(base)!;
  if (prefix === 0) return true;
  const shift = 32 - prefix;
  return Math.floor(n / 2 ** shift) === Math.floor(b / 2 ** shift);
}

/** Ranges checked in order; the first that holds the address names its kind. */
const V4_RANGES: ReadonlyArray<readonly [string, number, AddressKind]> = [
  ['0.0.0.0', 8, 'unspecified'], // "this network"
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // TEST-NET-1
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'], // TEST-NET-2
  ['203.0.113.0', 24, 'reserved'], // TEST-NET-3
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** Kind of an IPv4 address given as a 32-bit number. */
export function classifyIPv4Number(n: number): AddressKind {
  for (const [base, prefix, kind] of V4_RANGES) if (inV4(n, base, prefix)) return kind;
  return 'public';
}

/** Kind of an IPv6 address given as eight 16-bit groups. */
export function classifyIPv6Groups(g: readonly number[]): AddressKind {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const embedded = g6 * 0x10000 + g7;
  const zeroTo = (k: number): boolean => g.slice(0, k).every((x) => x === 0);
  if (zeroTo(8)) return 'unspecified';
  if (zeroTo(7) && g7 === 1) return 'loopback';
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (translated) reach the IPv4 address itself.
  if (zeroTo(5) && g5 === 0xffff) return classifyIPv4Number(embedded);
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return classifyIPv4Number(embedded);
  // ::a.b.c.d (IPv4-compatible, deprecated): never a real destination.
  if (zeroTo(6)) {
    const k = classifyIPv4Number(embedded);
    return k === 'public' ? 'reserved' : k;
  }
  // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address; 64:ff9b:1::/48 is local.
  if (g0 === 0x64 && g1 === 0xff9b) {
    if (g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return classifyIPv4Number(embedded);
    if (g2 === 1) return 'private';
  }
  if (g0 === 0x2002) return classifyIPv4Number(g1 * 0x10000 + g2); // 6to4 embeds an IPv4 address
  if (g0 === 0x2001 && g1 === 0x0db8) return 'reserved'; // documentation
  if (g0 === 0x2001 && g1 < 0x0200) return 'reserved'; // IETF protocol assignments, Teredo, ORCHID
  if (g0 === 0x0100 && g1 === 0 && g2 === 0 && g3 === 0) return 'reserved'; // discard-only
  if ((g0 & 0xfe00) === 0xfc00) return 'private'; // unique local fc00::/7
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((g0 & 0xffc0) === 0xfec0) return 'private'; // site-local (deprecated)
  if ((g0 & 0xff00) === 0xff00) return 'multicast';
  if ((g0 & 0xe000) !== 0x2000) return 'reserved'; // outside global unicast 2000::/3
  return 'public';
}

/**
 * Kind of an IP address in text form (IPv4 dotted quad or IPv6, optionally in brackets).
 * Anything that does not parse is `reserved`, so it is refused rather than reached.
 */
export function classifyAddress(ip: string): AddressKind {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const v4 = parseIPv4(bare);
  if (v4 !== null) return classifyIPv4Number(v4);
  const v6 = parseIPv6(bare);
  if (v6 !== null) return classifyIPv6Groups(v6);
  return 'reserved';
}

/** True when `ip` is a globally routable unicast address. */
export function isPublicAddress(ip: string): boolean {
  return classifyAddress(ip) === 'public';
}

/**
 * Address classification for the relay (server/relay/address.ts): every refused IPv4 range in
 * every textual form (dotted, IPv4-mapped, IPv4-translated and NAT64 IPv6, hex groups, upper case,
 * uncompressed), the IPv6 ranges, and that public addresses stay public. Property tests with
 * fast-check; pure functions, no network.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  classifyAddress,
  isPublicAddress,
  parseIPv4,
  parseIPv6,
  type AddressKind,
} from '../../../../server/relay/address.ts';
import { formatIPv6 } from '../../../../server/relay/host.ts';

const V4_REFUSED: ReadonlyArray<readonly [string, number, AddressKind]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.168.0.0', 16, 'private'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 5, 'reserved'], // 240/4 minus the broadcast address, tested alone
  ['192.0.2.0', 24, 'reserved'],
  ['198.18.0.0', 15, 'reserved'],
];

function v4ToText(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** A random address inside base/prefix. */
function inRange(base: string, prefix: number): fc.Arbitrary<number> {
  const b = parseIPv4(base)!;
  const size = 2 ** (32 - prefix);
  return fc.integer({ min: 0, max: size - 1 }).map((off) => b + off);
}

/** Every IPv6 spelling that reaches the IPv4 address n. */
function v6Forms(n: number): string[] {
  const hi = (n >>> 16).toString(16);
  const lo = (n & 0xffff).toString(16);
  const dotted = v4ToText(n);
  return [
    `::ffff:${dotted}`,
    `::FFFF:${dotted}`,
    `0:0:0:0:0:ffff:${dotted}`,
    `::ffff:${hi}:${lo}`,
    `0000:0000:0000:0000:0000:FFFF:${hi.padStart(4, '0')}:${lo.padStart(4, '0')}`,
    `::ffff:0:${dotted}`, // IPv4-translated
    `64:ff9b::${dotted}`, // NAT64 well-known prefix
    `64:ff9b::${hi}:${lo}`,
    `[::ffff:${dotted}]`,
  ];
}

/** Public IPv4: outside every special range (an independent check, by first octets). */
const publicV4 = fc.integer({ min: 0, max: 2 ** 32 - 1 }).filter((n) => {
  const a = n >>> 24;
  const b = (n >>> 16) & 255;
  const c = (n >>> 8) & 255;
  if ([0, 10, 127].includes(a) || a >= 224) return false;
  if (a === 100 && b >= 64 && b < 128) return false;
  if (a === 169 && b === 254) return false;
  if (a === 172 && b >= 16 && b < 32) return false;
  if (a === 192 && (b === 168 || (b === 0 && (c === 0 || c === 2)) || (b === 88 && c === 99))) return false;
  if (a === 198 && (b === 18 || b === 19 || (b === 51 && c === 100))) return false;
  if (a === 203 && b === 0 && c === 113) return false;
  return true;
});

describe('IPv4 classification', () => {
  for (const [base, prefix, kind] of V4_REFUSED) {
    it(`${base}/${prefix} is ${kind} in every form`, () => {
      fc.assert(
        fc.property(inRange(base, prefix), (n) => {
          expect(classifyAddress(v4ToText(n))).toBe(kind);
          for (const form of v6Forms(n)) expect(classifyAddress(form), form).toBe(kind);
        }),
      );
    });
  }

  it('names the broadcast address and the edges of the ranges', () => {
    expect(classifyAddress('255.255.255.255')).toBe('broadcast');
    expect(classifyAddress('::ffff:255.255.255.255')).toBe('broadcast');
    expect(classifyAddress('0.0.0.0')).toBe('unspecified');
    expect(classifyAddress('172.15.255.255')).toBe('public');
    expect(classifyAddress('172.32.0.0')).toBe('public');
    expect(classifyAddress('100.63.255.255')).toBe('public');
    expect(classifyAddress('100.128.0.0')).toBe('public');
    expect(classifyAddress('169.253.255.255')).toBe('public');
    expect(classifyAddress('11.0.0.0')).toBe('public');
    expect(classifyAddress('9.255.255.255')).toBe('public');
    expect(classifyAddress('223.255.255.255')).toBe('public');
  });

  it('keeps public addresses public, in every form', () => {
    fc.assert(
      fc.property(publicV4, (n) => {
        expect(isPublicAddress(v4ToText(n))).toBe(true);
        for (const form of v6Forms(n)) expect(isPublicAddress(form), form).toBe(true);
        // IPv4-compatible ::a.b.c.d is deprecated and never a destination.
        expect(isPublicAddress(`::${v4ToText(n)}`)).toBe(false);
      }),
    );
  });

  it('reads 6to4 addresses by the IPv4 address they embed', () => {
    expect(classifyAddress('2002:7f00:1::1')).toBe('loopback');
    expect(classifyAddress('2002:0a00:0001::')).toBe('private');
    expect(classifyAddress('2002:c0a8:0101::1')).toBe('private');
    expect(classifyAddress('2002:0808:0808::1')).toBe('public');
  });
});

describe('IPv6 classification', () => {
  const group = fc.integer({ min: 0, max: 0xffff });
  const groups = fc.array(group, { minLength: 8, maxLength: 8 });
  const withPrefix = (mask: number, value: number): fc.Arbitrary<number[]> =>
    groups.map((g) => [(g[0]! & ~mask & 0xffff) | value, ...g.slice(1)]);

  const cases: ReadonlyArray<readonly [string, fc.Arbitrary<number[]>, AddressKind]> = [
    ['fc00::/7 unique local', withPrefix(0xfe00, 0xfc00), 'private'],
    ['fe80::/10 link-local', withPrefix(0xffc0, 0xfe80), 'link-local'],
    ['fec0::/10 site-local', withPrefix(0xffc0, 0xfec0), 'private'],
    ['ff00::/8 multicast', withPrefix(0xff00, 0xff00), 'multicast'],
    ['2001:db8::/32 documentation', groups.map((g) => [0x2001, 0x0db8, ...g.slice(2)]), 'reserved'],
    ['2001::/32 Teredo', groups.map((g) => [0x2001, 0, ...g.slice(2)]), 'reserved'],
    ['64:ff9b:1::/48 local NAT64', groups.map((g) => [0x64, 0xff9b, 1, ...g.slice(3)]), 'private'],
  ];
  for (const [name, arb, kind] of cases) {
    it(`${name} is ${kind}, written compressed, in full or in upper case`, () => {
      fc.assert(
        fc.property(arb, (g) => {
          const full = g.map((x) => x.toString(16).padStart(4, '0')).join(':');
          expect(classifyAddress(formatIPv6(g))).toBe(kind);
          expect(classifyAddress(full)).toBe(kind);
          expect(classifyAddress(full.toUpperCase())).toBe(kind);
        }),
      );
    });
  }

  it('knows loopback, unspecified and global unicast', () => {
    expect(classifyAddress('::1')).toBe('loopback');
    expect(classifyAddress('0:0:0:0:0:0:0:1')).toBe('loopback');
    expect(classifyAddress('[::1]')).toBe('loopback');
    expect(classifyAddress('::')).toBe('unspecified');
    expect(classifyAddress('2606:4700::6810:84e5')).toBe('public');
    expect(classifyAddress('2a00:1450:4001:82a::200e')).toBe('public');
    expect(classifyAddress('4000::1')).toBe('reserved');
    expect(classifyAddress('100::1')).toBe('reserved');
  });

  it('only 2000::/3 outside the special blocks is public', () => {
    fc.assert(
      fc.property(groups, (g) => {
        if (isPublicAddress(formatIPv6(g))) expect(g[0]! & 0xe000).toBe(0x2000);
      }),
    );
  });

  it('parses what it formats, and formats per RFC 5952', () => {
    fc.assert(
      fc.property(groups, (g) => {
        expect(parseIPv6(formatIPv6(g))).toEqual(g);
      }),
    );
    expect(formatIPv6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])).toBe('2001:db8::1:0:0:1');
    expect(formatIPv6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1])).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIPv6([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::');
  });
});

describe('parsing', () => {
  it('refuses what is not exactly an address, and refuses to call it public', () => {
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1.2.3.256',
      '0x7f.0.0.1',
      '2130706433',
      '::1%eth0',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
      ':1',
      '12345::',
      'localhost',
    ]) {
      expect(parseIPv4(bad) === null && parseIPv6(bad) === null, bad).toBe(true);
      expect(isPublicAddress(bad), bad).toBe(false);
    }
  });
});

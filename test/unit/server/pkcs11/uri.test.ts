/** RFC 7512 PKCS#11 URIs: property tests of format/parse, the RFC's own examples, and every refusal. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pkcs11Error } from '../../../../shared/errors.ts';
import { formatPkcs11Uri, parsePkcs11Uri, pctEncode, type Pkcs11Uri } from '../../../../server/pkcs11/uri.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

/** Any Unicode text (no lone surrogates: they are not UTF-8). */
const text = fc.string({ unit: 'binary', maxLength: 40 });

const uriArb: fc.Arbitrary<Pkcs11Uri> = fc.record(
  {
    token: text,
    manufacturer: text,
    serial: text,
    model: text,
    object: text,
    id: fc.uint8Array({ maxLength: 20 }),
    type: fc.constantFrom('public', 'private', 'cert', 'secret-key', 'data'),
    'slot-id': fc.nat().map(String),
  },
  { requiredKeys: [] },
);

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(Pkcs11Error);
    return (e as Pkcs11Error).code;
  }
}

describe('PKCS#11 URIs', () => {
  it('parse(format(u)) is u, and the formatted URI holds only unreserved characters, escapes and separators', () => {
    fc.assert(
      fc.property(uriArb, (u) => {
        const s = formatPkcs11Uri(u);
        expect(s).toMatch(/^pkcs11:(?:[a-z-]+=(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*(?:;|$))*$/);
        const back = parsePkcs11Uri(s);
        expect(back).toEqual(u);
      }),
    );
  });

  it('percent-encodes every byte of the id and every reserved character of a string', () => {
    expect(formatPkcs11Uri({ object: 'a b;c/d?e%f', id: new Uint8Array([0x41, 0x00, 0xff]), type: 'private' })).toBe(
      'pkcs11:object=a%20b%3Bc%2Fd%3Fe%25f;id=%41%00%FF;type=private',
    );
    expect(pctEncode('é')).toBe('%C3%A9');
  });

  it('reads the examples of RFC 7512 section 3', () => {
    const u = parsePkcs11Uri(
      'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=',
    );
    expect(u).toEqual({
      token: 'The Software PKCS#11 Softtoken',
      manufacturer: 'Snake Oil, Inc.',
      model: '1.0',
      object: 'my-certificate',
      type: 'cert',
      id: new Uint8Array([0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91]),
      serial: '',
    });
    expect(parsePkcs11Uri('pkcs11:')).toEqual({});
    expect(parsePkcs11Uri('pkcs11:object=my-pubkey;type=public')).toEqual({ object: 'my-pubkey', type: 'public' });
    expect(
      parsePkcs11Uri('pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-sk;type=secret-key'),
    ).toEqual({ token: 'Name with a small A with acute: á', object: 'my-sk', type: 'secret-key' });
    // Lower-case escapes and the scheme in capitals are the same URI; vendor attributes are kept.
    expect(parsePkcs11Uri('PKCS11:id=%0a;x-vendor=v')).toEqual({
      id: new Uint8Array([10]),
      vendor: { 'x-vendor': 'v' },
    });
  });

  it('refuses what is not a key URI it will use, with PKCS11_URI_INVALID', () => {
    for (const bad of [
      '',
      'pkcs12:token=a',
      'token=a',
      'pkcs11:token=a;token=b',
      'pkcs11:token=a b',
      'pkcs11:token=a/b',
      'pkcs11:token=%2',
      'pkcs11:token=%zz',
      'pkcs11:token=%FF',
      'pkcs11:id',
      'pkcs11:=a',
      'pkcs11:TOKEN=a',
      'pkcs11:type=key',
      'pkcs11:colour=blue',
      'pkcs11:token=a?pin-value=1234',
      'pkcs11:token=a?pin-source=file:/etc/pin',
      'pkcs11:token=a?module-path=/tmp/evil.so',
      'pkcs11:token=a;;object=b',
      `pkcs11:token=${'a'.repeat(5000)}`,
    ]) {
      expect([bad.slice(0, 60), code(() => parsePkcs11Uri(bad))]).toEqual([bad.slice(0, 60), 'PKCS11_URI_INVALID']);
    }
  });

  it('never throws anything but PKCS11_URI_INVALID on arbitrary input', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.string().map((s) => `pkcs11:${s}`),
        ),
        (s) => {
          const c = code(() => parsePkcs11Uri(s));
          expect(c === undefined || c === 'PKCS11_URI_INVALID').toBe(true);
        },
      ),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

/**
 * What the PKCS#11 endpoint agrees to sign (shared/cosign/payload-check.ts): exactly the two byte
 * strings the page's signing code produces, for an allowed registry; everything else is refused
 * with its code. Property tests over digests, references and annotations; fuzzing with arbitrary
 * bytes and with every truncation and one-byte change of valid inputs. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pkcs11Error } from '../../../../shared/errors.ts';
import { checkSigningPayload } from '../../../../shared/cosign/payload-check.ts';
import { buildSimpleSigningPayload } from '../../../../shared/cosign/payload.ts';
import { buildSignStatement, IN_TOTO_PAYLOAD_TYPE, pae } from '../../../../shared/cosign/dsse.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const enc = new TextEncoder();
const allowed = (registry: string) => registry === 'registry.example:5000' || registry === 'docker.io';
const DIGEST = `sha256:${'a1'.repeat(32)}`;
const hexDigest = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => `sha256:${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`);
const repo = fc.array(fc.stringMatching(/^[a-z0-9]{1,8}$/), { minLength: 1, maxLength: 3 }).map((p) => p.join('/'));
const annotations = fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ maxLength: 10 }), {
  maxKeys: 3,
});
const CODES = ['PKCS11_PAYLOAD_REFUSED', 'PKCS11_DIGEST_INVALID', 'PKCS11_REGISTRY_NOT_ALLOWED'];

function code(bytes: Uint8Array): string | undefined {
  try {
    checkSigningPayload(bytes, allowed);
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(Pkcs11Error);
    return (e as Pkcs11Error).code;
  }
}

const statement = (obj: unknown) => pae(IN_TOTO_PAYLOAD_TYPE, enc.encode(JSON.stringify(obj)));
const subject = (digest: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ digest, ...extra }],
  predicateType: 'https://sigstore.dev/cosign/sign/v1',
  predicate: {},
});

describe('checkSigningPayload', () => {
  it('accepts every simple-signing payload and DSSE statement the page builds, and reads back digest and identity', () => {
    fc.assert(
      fc.property(
        hexDigest,
        repo,
        fc.option(fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/)),
        annotations,
        (d, r, tag, a) => {
          const identity = `registry.example:5000/${r}${tag === null ? '' : `:${tag}`}`;
          expect(checkSigningPayload(buildSimpleSigningPayload(identity, d, a), allowed)).toEqual({
            kind: 'simple-signing',
            digest: d,
            identity,
          });
          expect(checkSigningPayload(pae(IN_TOTO_PAYLOAD_TYPE, buildSignStatement(d, a)), allowed)).toEqual({
            kind: 'dsse-in-toto',
            digest: d,
            identity: null,
          });
        },
      ),
    );
  });

  it("accepts the page's own payloads with and without annotations, Docker Hub short names included", () => {
    const a = { team: 'web', 'z-last': 'v "quoted" <b>', 'a-first': 'ünïcode', ['__proto__']: 'kept' };
    expect(Object.keys(a)).toContain('__proto__');
    for (const identity of ['registry.example:5000/a/b:v1', 'alpine']) {
      for (const ann of [{}, a]) {
        expect(checkSigningPayload(buildSimpleSigningPayload(identity, DIGEST, ann), allowed)).toEqual({
          kind: 'simple-signing',
          digest: DIGEST,
          identity,
        });
      }
    }
    for (const ann of [{}, a]) {
      expect(checkSigningPayload(pae(IN_TOTO_PAYLOAD_TYPE, buildSignStatement(DIGEST, ann)), allowed).digest).toBe(
        DIGEST,
      );
    }
  });

  it('refuses anything the page would not have written byte for byte', () => {
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const simple = text(buildSimpleSigningPayload('registry.example:5000/a/b:v1', DIGEST, { k: 'v' }));
    const stmt = text(buildSignStatement(DIGEST, { k: 'v' }));
    const dsse = (s: string) => pae(IN_TOTO_PAYLOAD_TYPE, enc.encode(s));
    const hex = DIGEST.slice('sha256:'.length);
    const cases: [string, Uint8Array][] = [
      // what skopeo writes is a valid payload, but not one the page signs
      [
        'creator and timestamp',
        enc.encode(
          `{"critical":{"identity":{"docker-reference":"registry.example:5000/a/b:v1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":{"creator":"containers/image","timestamp":1700000000}}`,
        ),
      ],
      ['extra whitespace in a payload', enc.encode(simple.replace('{"critical":', '{ "critical": '))],
      ['a trailing newline', enc.encode(`${simple}\n`)],
      [
        'reordered payload keys',
        enc.encode(
          `{"optional":{"k":"v"},"critical":{"identity":{"docker-reference":"registry.example:5000/a/b:v1"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"}}`,
        ),
      ],
      ['empty optional', enc.encode(simple.replace('"optional":{"k":"v"}', '"optional":{}'))],
      ['a non-string annotation', enc.encode(simple.replace('"optional":{"k":"v"}', '"optional":{"k":1}'))],
      ['a name that is not a string', dsse(stmt.replace('"subject":[{', '"subject":[{"name":7,'))],
      [
        'a name in an allowed registry',
        dsse(stmt.replace('"subject":[{', '"subject":[{"name":"registry.example:5000/x",')),
      ],
      ['an extra subject field', dsse(stmt.replace('"subject":[{', '"subject":[{"uri":"x",'))],
      ['a non-empty predicate', dsse(stmt.replace('"predicate":{}', '"predicate":{"x":1}'))],
      ['a null predicate', dsse(stmt.replace('"predicate":{}', '"predicate":null'))],
      ['no annotations field', dsse(stmt.replace(',"annotations":{"k":"v"}', ''))],
      [
        'reordered statement keys',
        dsse(
          `{"subject":[{"annotations":{"k":"v"},"digest":{"sha256":"${hex}"}}],"_type":"https://in-toto.io/Statement/v1","predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`,
        ),
      ],
      ['extra whitespace in a statement', dsse(stmt.replace('"predicate":{}', '"predicate": {}'))],
      ['the JSON.stringify form', statement(subject({ sha256: hex }))],
    ];
    // Each mutation really changed the bytes the builders write.
    expect(stmt).toContain('"subject":[{');
    expect(stmt).toContain(',"annotations":{"k":"v"}');
    expect(simple).toContain('"optional":{"k":"v"}');
    for (const [what, bytes] of cases) expect([what, code(bytes)]).toEqual([what, 'PKCS11_PAYLOAD_REFUSED']);
  });

  it('refuses everything else, each with its code', () => {
    const cases: [string, Uint8Array, string][] = [
      ['empty', new Uint8Array(), 'PKCS11_PAYLOAD_REFUSED'],
      ['text', enc.encode('hello'), 'PKCS11_PAYLOAD_REFUSED'],
      ['a bare hash', new Uint8Array(32).fill(7), 'PKCS11_PAYLOAD_REFUSED'],
      ['other JSON', enc.encode('{"a":1}'), 'PKCS11_PAYLOAD_REFUSED'],
      ['a JSON array', enc.encode('[1]'), 'PKCS11_PAYLOAD_REFUSED'],
      [
        'another signature type',
        enc.encode(
          new TextDecoder()
            .decode(buildSimpleSigningPayload('docker.io/a/b', DIGEST))
            .replace('cosign container image signature', 'atomic container signature'),
        ),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'a duplicate key',
        enc.encode(
          `{"critical":{"identity":{"docker-reference":"docker.io/a/b"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature","type":"x"},"optional":null}`,
        ),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'an identity with a digest',
        buildSimpleSigningPayload(`docker.io/a/b@${DIGEST}`, DIGEST),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'an identity that is no reference',
        buildSimpleSigningPayload('Not A Reference', DIGEST),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      ['sha512', buildSimpleSigningPayload('docker.io/a/b', `sha512:${'ab'.repeat(64)}`), 'PKCS11_DIGEST_INVALID'],
      [
        'upper-case hex',
        buildSimpleSigningPayload('docker.io/a/b', `sha256:${'AB'.repeat(32)}`),
        'PKCS11_DIGEST_INVALID',
      ],
      [
        '63 hex digits',
        buildSimpleSigningPayload('docker.io/a/b', `sha256:${'a'.repeat(63)}`),
        'PKCS11_DIGEST_INVALID',
      ],
      ['no algorithm', buildSimpleSigningPayload('docker.io/a/b', 'a'.repeat(64)), 'PKCS11_DIGEST_INVALID'],
      ['a disallowed registry', buildSimpleSigningPayload('ghcr.io/a/b', DIGEST), 'PKCS11_REGISTRY_NOT_ALLOWED'],
      ['DSSE of another type', pae('application/json', buildSignStatement(DIGEST)), 'PKCS11_PAYLOAD_REFUSED'],
      ['DSSE with a padded length', enc.encode(`DSSEv1 028 ${IN_TOTO_PAYLOAD_TYPE} 2 {}`), 'PKCS11_PAYLOAD_REFUSED'],
      ['DSSE with a wrong body length', enc.encode(`DSSEv1 28 ${IN_TOTO_PAYLOAD_TYPE} 3 {}`), 'PKCS11_PAYLOAD_REFUSED'],
      ['DSSE of no statement', pae(IN_TOTO_PAYLOAD_TYPE, enc.encode('{}')), 'PKCS11_PAYLOAD_REFUSED'],
      [
        'an attestation',
        statement({ ...subject({ sha256: 'a1'.repeat(32) }), predicateType: 'https://slsa.dev/provenance/v1' }),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'Statement v0.1',
        statement({ ...subject({ sha256: 'a1'.repeat(32) }), _type: 'https://in-toto.io/Statement/v0.1' }),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'an extra top-level field',
        statement({ ...subject({ sha256: 'a1'.repeat(32) }), extra: 1 }),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      [
        'two subjects',
        statement({
          ...subject({ sha256: 'a1'.repeat(32) }),
          subject: [{ digest: { sha256: 'a1'.repeat(32) } }, { digest: { sha256: 'b2'.repeat(32) } }],
        }),
        'PKCS11_PAYLOAD_REFUSED',
      ],
      ['a sha512 subject', statement(subject({ sha512: 'ab'.repeat(64) })), 'PKCS11_DIGEST_INVALID'],
      [
        'two subject digests',
        statement(subject({ sha256: 'a1'.repeat(32), sha512: 'ab'.repeat(64) })),
        'PKCS11_DIGEST_INVALID',
      ],
      ['a short subject digest', statement(subject({ sha256: 'a1' })), 'PKCS11_DIGEST_INVALID'],
    ];
    for (const [what, bytes, c] of cases) expect([what, code(bytes)]).toEqual([what, c]);
  });

  it('refuses every truncation of a valid input, and never throws anything but its three codes', () => {
    for (const valid of [
      buildSimpleSigningPayload('docker.io/a/b', DIGEST),
      pae(IN_TOTO_PAYLOAD_TYPE, buildSignStatement(DIGEST)),
    ]) {
      for (let n = 0; n < valid.length; n++) expect(CODES).toContain(code(valid.subarray(0, n)));
      fc.assert(
        fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, byte) => {
          const b = valid.slice();
          b[at] = byte;
          const c = code(b);
          expect(c === undefined || CODES.includes(c)).toBe(true);
        }),
        { numRuns: fuzzRuns(500) },
      );
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        expect(CODES).toContain(code(b));
      }),
      { numRuns: fuzzRuns(100) },
    );
  });
});

/**
 * Our cosign formats against the objects the real cosign 2.5, cosign 3.1 and skopeo wrote to a
 * registry (test/vectors/registry): byte for byte where we build the same thing, strict parsing
 * where we read. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { SignatureError } from '../../../../shared/errors.ts';
import {
  buildSimpleSigningPayload,
  parseSimpleSigningPayload,
  payloadAnnotations,
} from '../../../../shared/cosign/payload.ts';
import { buildSignStatement, pae, parseStatement } from '../../../../shared/cosign/dsse.ts';
import { buildDsseBundle, parseBundle } from '../../../../shared/cosign/bundle.ts';
import {
  addToReferrersIndex,
  buildBundleReferrer,
  buildSigManifest,
  sigTag,
} from '../../../../shared/cosign/manifests.ts';
import { parseStrictJson } from '../../../../shared/cosign/strict-json.ts';
import type { Descriptor } from '../../../../shared/registry/mediatypes.ts';

const files = import.meta.glob<string>('../../../vectors/registry/*.json', {
  query: '?raw',
  import: 'default',
  eager: true,
});
const vec = (name: string): string => files[`../../../vectors/registry/${name}`]!;

describe('legacy .sig objects', () => {
  it('payload: byte for byte what cosign 2.5 wrote', () => {
    const real = vec('cosign2-sig-payload.json');
    const p = parseSimpleSigningPayload(utf8(real));
    expect(new TextDecoder().decode(buildSimpleSigningPayload(p.dockerReference, p.manifestDigest))).toBe(real);
  });
  it('payload: skopeo’s, with creator and integer timestamp, parses', () => {
    const p = parseSimpleSigningPayload(utf8(vec('skopeo-sig-payload.json')));
    expect(p.dockerReference).toMatch(/:signed$/);
    expect(payloadAnnotations(p).creator).toMatch(/^containers\/image/);
  });
  it('config and manifest: byte for byte what cosign 2.5 wrote', () => {
    const manifest = JSON.parse(vec('cosign2-sig-manifest.json')) as { layers: Descriptor[] };
    const built = buildSigManifest(manifest.layers);
    expect(new TextDecoder().decode(built.config)).toBe(vec('cosign2-sig-config.json'));
    expect(new TextDecoder().decode(built.manifest)).toBe(vec('cosign2-sig-manifest.json'));
  });
  it('annotations are written sorted, with Go’s HTML escaping', () => {
    const text = new TextDecoder().decode(
      buildSimpleSigningPayload('r', 'sha256:' + 'a'.repeat(64), { z: '1', a: '<&>' }),
    );
    expect(text).toContain('"optional":{"a":"\\u003c\\u0026\\u003e","z":"1"}');
    expect(payloadAnnotations(parseSimpleSigningPayload(utf8(text)))).toEqual({ a: '<&>', z: '1' });
  });
  it('sig tag', () => expect(sigTag('sha256:ab')).toBe('sha256-ab.sig'));

  const good = vec('cosign2-sig-payload.json');
  it.each([
    ['extra field in critical', good.replace('"type":', '"extra":1,"type":'), 'unexpected field "extra"'],
    ['missing optional', good.replace(',"optional":null', ''), 'lacks "optional"'],
    ['duplicate key', good.replace('"optional":null', '"optional":null,"optional":null'), 'duplicate key'],
    ['other type', good.replace('cosign container image signature', 'x'), 'signature type is "x"'],
    ['non-integer timestamp', good.replace('"optional":null', '"optional":{"timestamp":1.5}'), 'not an integer'],
    ['creator not a string', good.replace('"optional":null', '"optional":{"creator":5}'), 'optional.creator'],
    ['identity extra field', good.replace('"docker-reference"', '"x":"y","docker-reference"'), 'unexpected field "x"'],
    ['not JSON', '{', 'not strict JSON'],
  ])('refuses a payload with %s', (_n, text, why) => {
    expect(() => parseSimpleSigningPayload(utf8(text))).toThrow(SignatureError);
    expect(() => parseSimpleSigningPayload(utf8(text))).toThrow(why);
  });
  it('build → parse round-trips any reference, digest and annotations', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }),
        (ref, hex, ann) => {
          const p = parseSimpleSigningPayload(buildSimpleSigningPayload(ref, `sha256:${hex}`, ann));
          expect(p.dockerReference).toBe(ref);
          expect(p.manifestDigest).toBe(`sha256:${hex}`);
          expect(payloadAnnotations(p)).toEqual(ann);
        },
      ),
    );
  });
});

describe('bundle objects', () => {
  const bundleText = vec('cosign3-bundle.json');
  const bundle = parseBundle(utf8(bundleText));
  it('the bundle cosign 3.1 wrote parses, and we build it byte for byte', () => {
    expect(bundle.material.kind).toBe('publicKey');
    const { dsse } = bundle;
    expect(dsse!.payloadType).toBe('application/vnd.in-toto+json');
    const rebuilt = buildDsseBundle(
      (bundle.material as { hint: string }).hint,
      dsse!.payloadType,
      dsse!.payload,
      dsse!.signatures[0]!,
    );
    expect(new TextDecoder().decode(rebuilt)).toBe(bundleText);
  });
  it('the statement is what we build for the same digest', () => {
    const st = parseStatement(bundle.dsse!.payload);
    const hex = st.subjects[0]!.digests.sha256!;
    expect(st.predicateType).toBe('https://sigstore.dev/cosign/sign/v1');
    expect(buildSignStatement(`sha256:${hex}`)).toEqual(bundle.dsse!.payload);
    const annotated = parseStatement(buildSignStatement(`sha256:${hex}`, { b: '2', a: '1' }));
    expect(annotated.subjects[0]!.annotations).toEqual({ a: '1', b: '2' });
  });
  it('the referrer manifest is byte for byte what cosign 3.1 pushed', () => {
    const real = vec('cosign3-bundle-manifest.json');
    const m = JSON.parse(real) as { subject: Descriptor; layers: Descriptor[]; annotations: Record<string, string> };
    expect(m.layers[0]!.digest).toBe(sha256Digest(utf8(bundleText)));
    const built = buildBundleReferrer(
      m.subject,
      m.layers[0]!,
      m.annotations['dev.sigstore.bundle.predicateType']!,
      m.annotations['org.opencontainers.image.created']!,
    );
    expect(new TextDecoder().decode(built)).toBe(real);
  });
  it('the fallback index keeps existing entries and adds once', () => {
    const real = JSON.parse(vec('cosign3-referrers-index.json')) as { manifests: Descriptor[] };
    const entry: Descriptor = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      size: 1,
      digest: 'sha256:' + 'b'.repeat(64),
    };
    const once = addToReferrersIndex(real.manifests, entry);
    expect(once.added).toBe(true);
    const parsed = JSON.parse(new TextDecoder().decode(once.index)) as { manifests: Descriptor[] };
    expect(parsed.manifests.map((d) => d.digest)).toEqual([real.manifests[0]!.digest, entry.digest]);
    expect(addToReferrersIndex(parsed.manifests, entry).added).toBe(false);
  });
  it('PAE as the DSSE spec gives it', () => {
    expect(new TextDecoder().decode(pae('http://example.com/HelloWorld', utf8('hello world')))).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    );
  });
  it.each([
    ['not JSON', '{'],
    ['unknown media type', bundleText.replace('v0.3+json', 'v9+json')],
    ['no signatures', bundleText.replace(/"signatures":\[[^\]]*\]/, '"signatures":[]')],
    ['bad base64', bundleText.replace(/"sig":"[^"]*"/, '"sig":"***"')],
  ])('refuses a bundle with %s', (_n, text) => {
    expect(() => parseBundle(utf8(text))).toThrow(SignatureError);
  });
});

describe('strict JSON', () => {
  it('agrees with JSON.parse where there are no duplicates', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        const text = JSON.stringify(v);
        const parsed = parseStrictJson(text);
        expect(
          JSON.parse(
            JSON.stringify(parsed, (_k, x) => (x && typeof x === 'object' && 'text' in x ? Number(x.text) : x)),
          ),
        ).toEqual(JSON.parse(text));
      }),
    );
  });
  it('signature base64 helpers', () => expect(fromBase64(toBase64(utf8('x')))).toEqual(utf8('x')));
});

describe('an annotation named "__proto__" is an annotation', () => {
  // A plain `out[k] = v` with k "__proto__" replaces the record's prototype and loses the entry;
  // the round-trip property test found it in payloadAnnotations.
  const proto = (value: string): Record<string, string> => JSON.parse(`{"__proto__":${JSON.stringify(value)}}`);

  it('in the simple-signing payload', () => {
    const p = parseSimpleSigningPayload(buildSimpleSigningPayload('r/app', `sha256:${'a'.repeat(64)}`, proto('x')));
    const got = payloadAnnotations(p);
    expect(Object.keys(got)).toEqual(['__proto__']);
    expect(got).toEqual(proto('x'));
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });

  it('in the sign statement', () => {
    const st = parseStatement(buildSignStatement(`sha256:${'b'.repeat(64)}`, proto('y')));
    expect(Object.keys(st.subjects[0]!.annotations)).toEqual(['__proto__']);
    expect(st.subjects[0]!.annotations).toEqual(proto('y'));
  });
});

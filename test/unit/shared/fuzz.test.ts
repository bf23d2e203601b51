/**
 * Fuzzing of the parsers that take bytes from outside and had no property of their own saying so:
 * key files (public keys, cosign's encrypted envelopes, plain private keys, PEM), simple-signing
 * payloads, cosign bundles, in-toto statements, strict JSON, verification links and routes,
 * annotations (typed and in links), signature annotations, cosign 2's Sigstore annotations, the
 * external signer's answer lines, and manifests and indexes as verifyImage reads them from a
 * registry. Each input is arbitrary, arbitrary JSON, or a real document (test/vectors) edited;
 * each parser gives a value or its own typed error, never a TypeError, RangeError or the like.
 * `npm test` runs these at their small everyday counts; `npm run fuzz` at FUZZ_RUNS (10,000)
 * with a time bound per run (test/fuzz/). Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSignStatement, parseStatement } from '../../../shared/cosign/dsse.ts';
import { parseBundle } from '../../../shared/cosign/bundle.ts';
import { legacySigstoreBundle } from '../../../shared/cosign/legacy-sigstore.ts';
import { decodeAnnotations, parseVerificationLink, verificationLink } from '../../../shared/cosign/link.ts';
import {
  BUNDLE_ANNOTATION,
  CERTIFICATE_ANNOTATION,
  buildSigManifest,
  sigLayer,
} from '../../../shared/cosign/manifests.ts';
import { buildSimpleSigningPayload, parseSimpleSigningPayload } from '../../../shared/cosign/payload.ts';
import { parseRoute } from '../../../shared/cosign/route.ts';
import { StrictJsonError, parseStrictJson } from '../../../shared/cosign/strict-json.ts';
import { decodeSignature } from '../../../shared/cosign/verify-signature.ts';
import { parseEncryptedKey } from '../../../shared/crypto/envelope.ts';
import { sha256Digest } from '../../../shared/crypto/digest.ts';
import { parsePlainPrivateKeyPem, parsePublicKey } from '../../../shared/crypto/keys.ts';
import { toBase64, utf8 } from '../../../shared/encoding/base64.ts';
import { decodePem } from '../../../shared/encoding/pem.ts';
import { CosignWebError, KeyError, SignatureError, VerificationError } from '../../../shared/errors.ts';
import { parseSignatureLines } from '../../../shared/ops/external.ts';
import { parseAnnotations } from '../../../shared/ops/sign.ts';
import { verifyImage } from '../../../shared/ops/verify.ts';
import { RegistryClient } from '../../../shared/registry/client.ts';
import { MT } from '../../../shared/registry/mediatypes.ts';
import { fuzzRuns } from '../../fuzz/runs.ts';
import { mutated, outsideBytes, outsideText } from '../../fuzz/mutate.ts';

const vectors = import.meta.glob<string>(['../../vectors/registry/*.json', '../../vectors/keys/*'], {
  query: '?raw',
  import: 'default',
  eager: true,
});
const named = (re: RegExp): string[] =>
  Object.entries(vectors)
    .filter(([path]) => re.test(path))
    .map(([, text]) => text);
const PUBLIC_KEYS = named(/\.pub$/);
const ENVELOPES = named(/cosign[23]-(pw|empty)\.key$/);
const PRIVATE_KEYS = named(/keys\/(ec|rsa|ed25519|legacy-p256)[^/]*\.pem$/);
const JSON_DOCS = named(/registry\/.*\.json$/);
const PAYLOAD = vectors['../../vectors/registry/cosign2-sig-payload.json']!;
const BUNDLE = vectors['../../vectors/registry/cosign3-bundle.json']!;
const SIG_MANIFEST = vectors['../../vectors/registry/cosign2-sig-manifest.json']!;
const REFERRERS = vectors['../../vectors/registry/cosign3-referrers-index.json']!;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const SPKI = parsePublicKey(PUBLIC_KEYS[0]!).spki;
const RUNS = fuzzRuns(200);

type ErrorClass = abstract new (...args: never[]) => Error;

/** Runs `parse`; anything it throws must be one of `allowed`. */
function typedOnly(parse: () => unknown, ...allowed: ErrorClass[]): void {
  try {
    parse();
  } catch (e) {
    if (!allowed.some((c) => e instanceof c)) throw e;
  }
}

describe('key files', () => {
  it('public keys: a key or a KeyError', () => {
    fc.assert(
      fc.property(outsideText(PUBLIC_KEYS), (t) => typedOnly(() => parsePublicKey(t), KeyError)),
      { numRuns: RUNS },
    );
  });
  it("cosign's encrypted envelopes: read or a KeyError (before any scrypt runs)", () => {
    fc.assert(
      fc.property(outsideText(ENVELOPES), (t) => typedOnly(() => parseEncryptedKey(t), KeyError)),
      { numRuns: RUNS },
    );
  });
  it('plain private keys and PEM blocks: read or a KeyError', () => {
    fc.assert(
      fc.property(outsideText(PRIVATE_KEYS), (t) => {
        typedOnly(() => parsePlainPrivateKeyPem(t), KeyError);
        typedOnly(() => decodePem(t), KeyError);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('signed documents', () => {
  const statement = buildSignStatement(DIGEST, { a: 'b' });
  it('simple-signing payloads, cosign bundles and in-toto statements: read or a SignatureError', () => {
    fc.assert(
      fc.property(outsideBytes([utf8(PAYLOAD), utf8(BUNDLE), statement]), (b) => {
        typedOnly(() => parseSimpleSigningPayload(b), SignatureError);
        typedOnly(() => parseBundle(b), SignatureError);
        typedOnly(() => parseStatement(b), SignatureError);
      }),
      { numRuns: RUNS },
    );
  });
  it('strict JSON: a value or a StrictJsonError', () => {
    fc.assert(
      fc.property(outsideText(JSON_DOCS), (t) => typedOnly(() => parseStrictJson(t), StrictJsonError)),
      { numRuns: RUNS },
    );
  });
  it("signature annotations and cosign 2's Sigstore annotations: bytes, null or a SignatureError", () => {
    const rekor = JSON.stringify({
      SignedEntryTimestamp: 'AAAA',
      Payload: { body: toBase64(utf8('{"kind":"hashedrekord"}')), integratedTime: 1, logIndex: 2, logID: 'abcd' },
    });
    fc.assert(
      fc.property(outsideText([rekor]), outsideText(PUBLIC_KEYS), (r, pem) => {
        const sig = decodeSignature(r);
        expect(sig === null || sig instanceof Uint8Array).toBe(true);
        const annotations = { [BUNDLE_ANNOTATION]: r, [CERTIFICATE_ANNOTATION]: pem };
        typedOnly(() => legacySigstoreBundle(annotations, utf8(PAYLOAD), new Uint8Array(64)), SignatureError);
      }),
      { numRuns: RUNS },
    );
  });
  it("the external signer's answer lines: read or a SignatureError", () => {
    const lines = `1 ${toBase64(new Uint8Array(70))}\n# note\n2 ${toBase64(new Uint8Array(64))}\n`;
    fc.assert(
      fc.property(outsideText([lines]), (t) => typedOnly(() => parseSignatureLines(t), SignatureError)),
      { numRuns: RUNS },
    );
  });
});

describe('links and annotations', () => {
  const link = verificationLink('https://verify.example', {
    image: `registry.example/app@${DIGEST}`,
    spki: SPKI,
    identity: { type: 'exactRepository', dockerRepository: 'registry.example/app' },
    annotations: { 'a,b': 'c=d', e: '%' },
    sigstore: { policy: { certificateIdentity: 'me@example.com' }, tlog: 'require' },
  });
  it('verification links: read, or a VerificationError or KeyError; routes never throw', () => {
    fc.assert(
      fc.property(outsideText([link, link.slice(link.indexOf('#'))]), (t) => {
        typedOnly(() => parseVerificationLink(t), VerificationError, KeyError);
        const route = parseRoute(t);
        expect(typeof route.path).toBe('string');
      }),
      { numRuns: RUNS },
    );
  });
  it("annotations, in a link and as the sign page's text: read or the typed error", () => {
    fc.assert(
      fc.property(outsideText(['a=b,c%2Cd=e%3Df', 'k=v\nx = y, z=']), (t) => {
        typedOnly(() => decodeAnnotations(t), VerificationError);
        typedOnly(() => parseAnnotations(t), SignatureError);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('registry authentication', () => {
  const challenges = [
    'Bearer realm="http://token.test/token",service="registry.test",scope="repository:app:pull"',
    'Basic realm="registry", Bearer realm="http://token.test/token"',
  ];
  const tokens = ['{"token":"abc","expires_in":300}', '{"access_token":"x"}'];
  /** Header values a server can send: Latin-1 without CR, LF or NUL. */
  const headerValue = (t: string): string => t.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
  it('any WWW-Authenticate challenge and token answer: a manifest or a typed error', async () => {
    await fc.assert(
      fc.asyncProperty(outsideText(challenges), outsideText(tokens), async (challenge, token) => {
        const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
          const url = new URL(input instanceof Request ? input.url : String(input));
          if (url.host === 'token.test')
            return new Response(token, { headers: { 'content-type': 'application/json' } });
          if (!new Headers(init?.headers).has('authorization')) {
            return new Response('{}', { status: 401, headers: { 'www-authenticate': headerValue(challenge) } });
          }
          return new Response('{}', { headers: { 'content-type': MT.ociManifest } });
        };
        const client = new RegistryClient({
          fetch,
          scheme: () => 'http',
          credentials: () => ({ username: 'u', password: 'p' }),
        });
        try {
          await client.getManifest({ registry: 'registry.test', repository: 'app' }, 'v1');
        } catch (e) {
          if (!(e instanceof CosignWebError)) throw e;
        }
      }),
      { numRuns: RUNS },
    );
  });
});

/**
 * A registry on a fetch function that serves `docs` for every manifest request (the image's tag, its
 * .sig tag, the referrers tag or API, a digest) by kind, and blobs by digest: what a hostile registry
 * may answer, in process.
 */
function hostileRegistry(docs: { image: Uint8Array; sig: Uint8Array; referrers: Uint8Array | null }): RegistryClient {
  const blobs = new Map<string, Uint8Array>();
  for (const b of [utf8(PAYLOAD), docs.image, docs.sig]) blobs.set(sha256Digest(b), b);
  const serve = (bytes: Uint8Array, mediaType: string): Response =>
    new Response(bytes as BodyInit, {
      headers: { 'content-type': mediaType, 'docker-content-digest': sha256Digest(bytes) },
    });
  const fetch = async (input: RequestInfo | URL): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const manifest = /\/manifests\/([^/]+)$/.exec(url.pathname)?.[1];
    if (url.pathname.includes('/referrers/') || (manifest && /^sha256-[0-9a-f]{64}$/.test(manifest))) {
      return docs.referrers ? serve(docs.referrers, MT.ociIndex) : new Response('{}', { status: 404 });
    }
    if (manifest?.endsWith('.sig')) return serve(docs.sig, MT.ociManifest);
    if (manifest === 'v1' || manifest === sha256Digest(docs.image)) return serve(docs.image, MT.ociIndex);
    const blob = /\/blobs\/([^/]+)$/.exec(url.pathname)?.[1];
    const bytes = blob === undefined ? undefined : blobs.get(blob);
    return bytes ? serve(bytes, 'application/octet-stream') : new Response('{}', { status: 404 });
  };
  return new RegistryClient({ fetch, scheme: () => 'http' });
}

describe('manifests and indexes', () => {
  const image = utf8(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        { mediaType: MT.ociManifest, digest: DIGEST, size: 2, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    }),
  );
  const ownSig = buildSigManifest([
    sigLayer(buildSimpleSigningPayload('registry.test/app', DIGEST), 'MEUCIQ=='),
  ]).manifest;
  it('verifyImage over a registry answering edited manifests, indexes and signature manifests: a result, never UNEXPECTED', async () => {
    const seeds = [image, utf8(SIG_MANIFEST), ownSig, utf8(REFERRERS)];
    const doc = outsideBytes(seeds);
    await fc.assert(
      fc.asyncProperty(fc.oneof(doc, fc.constant(image)), mutated(seeds), fc.option(doc), async (img, sig, refs) => {
        const client = hostileRegistry({ image: img, sig, referrers: refs });
        const result = await verifyImage(client, { image: 'registry.test/app:v1', spki: SPKI, concurrency: 2 });
        expect(result.verified).toBe(false);
        expect(JSON.stringify(result)).not.toContain('"UNEXPECTED"');
      }),
      { numRuns: RUNS },
    );
  });
});

it('typedOnly lets a typed error through and rethrows anything else', () => {
  expect(() => typedOnly(() => parsePublicKey('x'), KeyError)).not.toThrow();
  expect(() => typedOnly(() => (null as unknown as { x: number }).x, CosignWebError)).toThrow(TypeError);
});

/**
 * shared/tuf/ without a repository: the shipped Sigstore TUF root (its recorded bytes, its real
 * ECDSA signatures over our canonical JSON), canonical JSON as securesystemslib writes it, and the
 * metadata reader and the client fed arbitrary bytes and JSON, which give only TufError. Node and
 * Chromium. (The client against real python-tuf repositories: test/integration/tuf.test.ts.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TufError } from '../../../../shared/errors.ts';
import { toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { sha256Bytes } from '../../../../shared/crypto/digest.ts';
import { canonicalJson } from '../../../../shared/tuf/canonical.ts';
import { refreshTarget, type TufStore } from '../../../../shared/tuf/client.ts';
import { parseMetadata, verifyThreshold } from '../../../../shared/tuf/metadata.ts';
import {
  SIGSTORE_TRUSTED_ROOT_TARGET,
  SIGSTORE_TUF_METADATA_URL,
  SIGSTORE_TUF_ROOT_JSON,
  SIGSTORE_TUF_ROOT_SHA256,
  SIGSTORE_TUF_TARGETS_URL,
} from '../../../../shared/tuf/sigstore-root.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function memoryStore(): TufStore & { writes: number } {
  const map = new Map<string, Uint8Array>();
  const store = {
    writes: 0,
    get: (n: string) => Promise.resolve(map.get(n)),
    set: (n: string, b: Uint8Array) => {
      store.writes++;
      map.set(n, b);
      return Promise.resolve();
    },
  };
  return store;
}

/** A client on the shipped Sigstore root whose "repository" answers `answer(url)`. */
function sigstoreRefresh(answer: (url: string) => Response | Promise<Response>, now: Date, store = memoryStore()) {
  return refreshTarget({
    fetch: (url) => Promise.resolve(answer(url)),
    metadataBaseUrl: SIGSTORE_TUF_METADATA_URL,
    targetsBaseUrl: SIGSTORE_TUF_TARGETS_URL,
    trustedRootJson: SIGSTORE_TUF_ROOT_JSON,
    store,
    targetName: SIGSTORE_TRUSTED_ROOT_TARGET,
    now,
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof TufError)) throw e;
    return e.code;
  }
}

describe('the shipped Sigstore TUF root', () => {
  it('is the recorded bytes of @sigstore/tuf 5.0.1 seeds.json', () => {
    expect(toHex(sha256Bytes(utf8(SIGSTORE_TUF_ROOT_JSON)))).toBe(SIGSTORE_TUF_ROOT_SHA256);
    expect(SIGSTORE_TUF_ROOT_SHA256).toBe('27aea7e372aa7864065174f0661784fcf8b0e28b1dbfebeada31a0f1fb19167f');
  });

  it('reads as root v16 and is signed by 3 of its own 5 root keys (real ECDSA over canonical JSON)', async () => {
    const md = parseMetadata(utf8(SIGSTORE_TUF_ROOT_JSON), 'root', 'root.json');
    expect(md.signed.version).toBe(16);
    expect(md.signed.consistentSnapshot).toBe(true);
    expect(md.signed.roles.root).toMatchObject({ threshold: 3 });
    await verifyThreshold(md, md.signed.keys, md.signed.roles.root, 'root.json');
    // One changed byte of `signed` and no signature holds.
    const forged = parseMetadata(
      utf8(SIGSTORE_TUF_ROOT_JSON.replace('"version": 16', '"version": 17')),
      'root',
      'root.json',
    );
    await expect(verifyThreshold(forged, forged.signed.keys, forged.signed.roles.root, 'x')).rejects.toMatchObject({
      code: 'TUF_THRESHOLD_NOT_MET',
    });
  });

  it('offline: no 17.root.json and no timestamp is TUF_UNREACHABLE; after 2027-04-22 it is TUF_EXPIRED; nothing stored', async () => {
    const store = memoryStore();
    const notFound = () => new Response('', { status: 404 });
    expect(await codeOf(sigstoreRefresh(notFound, new Date('2026-06-01T00:00:00Z'), store))).toBe('TUF_UNREACHABLE');
    expect(await codeOf(sigstoreRefresh(notFound, new Date('2027-05-01T00:00:00Z'), store))).toBe('TUF_EXPIRED');
    const down = () => Promise.reject(new TypeError('network down'));
    expect(await codeOf(sigstoreRefresh(down, new Date('2026-06-01T00:00:00Z'), store))).toBe('TUF_UNREACHABLE');
    expect(store.writes).toBe(0);
  });

  it('a 17.root.json larger than 512 KiB is refused as TUF_METADATA_INVALID', async () => {
    const big = (url: string) =>
      url.endsWith('/17.root.json') ? new Response(new Uint8Array(600 * 1024)) : new Response('', { status: 404 });
    expect(await codeOf(sigstoreRefresh(big, new Date('2026-06-01T00:00:00Z')))).toBe('TUF_METADATA_INVALID');
  });
});

describe('canonical JSON (securesystemslib encode_canonical)', () => {
  it('sorts keys, drops whitespace, escapes only quote and backslash', () => {
    const v = JSON.parse('{"b": 1, "a": "q\\"b\\\\é\\n", "c": [true, null, false, -3], "A": {}}') as unknown;
    expect(text(canonicalJson(v))).toBe('{"A":{},"a":"q\\"b\\\\é\n","b":1,"c":[true,null,false,-3]}');
  });

  it('sorts keys by code point, not by UTF-16 unit', () => {
    expect(text(canonicalJson({ '\u{1F600}': 1, '\uFFFF': 2 }))).toBe('{"\uFFFF":2,"\u{1F600}":1}');
  });

  it('refuses floats, unsafe integers and lone surrogates', () => {
    for (const v of [1.5, 2 ** 53, { a: '\uD800' }]) expect(() => canonicalJson(v)).toThrow(TufError);
  });

  it('is JSON that reads back as the same value, for any JSON without floats', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        let out: Uint8Array;
        try {
          out = canonicalJson(v);
        } catch (e) {
          expect(e).toBeInstanceOf(TufError);
          return;
        }
        const back = JSON.parse(text(out)) as unknown;
        expect(text(canonicalJson(back))).toBe(text(out));
      }),
    );
  });
});

const TYPES = ['root', 'timestamp', 'snapshot', 'targets'] as const;

/** Arbitrary JSON, sometimes shaped like metadata so the reader gets past its first checks. */
const metadataLike = fc.oneof(
  fc.jsonValue(),
  fc.record({
    signed: fc.oneof(
      fc.jsonValue(),
      fc.record({
        _type: fc.constantFrom(...TYPES),
        spec_version: fc.constantFrom('1.0', '1.0.31', '2.0', 1),
        version: fc.oneof(fc.integer(), fc.jsonValue()),
        expires: fc.constantFrom('2030-01-01T00:00:00Z', '2026-02-30T00:00:00Z', 'x'),
        meta: fc.jsonValue(),
        keys: fc.jsonValue(),
        roles: fc.jsonValue(),
        targets: fc.jsonValue(),
        delegations: fc.jsonValue(),
      }),
    ),
    signatures: fc.oneof(fc.jsonValue(), fc.array(fc.record({ keyid: fc.string(), sig: fc.string() }))),
  }),
);

describe('metadata reader fuzz', () => {
  it('arbitrary bytes give only TufError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(...TYPES), (bytes, type) => {
        expect(() => parseMetadata(bytes, type, 'fuzz.json')).toThrow(TufError);
      }),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('arbitrary JSON gives a reading or a TufError', () => {
    fc.assert(
      fc.property(metadataLike, fc.constantFrom(...TYPES), (v, type) => {
        try {
          parseMetadata(utf8(JSON.stringify(v)), type, 'fuzz.json');
        } catch (e) {
          expect(e).toBeInstanceOf(TufError);
        }
      }),
      { numRuns: fuzzRuns(100) },
    );
  });

  it('the client fed arbitrary answers gives only TufError and stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          metadataLike.map((v) => utf8(JSON.stringify(v))),
        ),
        async (body) => {
          const store = memoryStore();
          const answer = (url: string) =>
            url.endsWith('/18.root.json') ? new Response('', { status: 404 }) : new Response(body as BufferSource);
          const code = await codeOf(sigstoreRefresh(answer, new Date('2026-06-01T00:00:00Z'), store));
          expect(code).not.toBe('ok');
          expect(store.writes).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

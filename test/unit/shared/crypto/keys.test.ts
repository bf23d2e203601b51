/**
 * Key structures, the cosign envelope and WebCrypto signing, in Node and in Chromium. Keys made
 * by the real cosign and openssl are checked in vectors.test.ts; here the cross-checks are
 * WebCrypto against noble, and each scrypt implementation against the others.
 */
import fc from 'fast-check';
import { p256 } from '@noble/curves/nist.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { KeyError, type KeyErrorCode } from '../../../../shared/errors.ts';
import { fromBase64, toBase64, utf8 } from '../../../../shared/encoding/base64.ts';
import { decodePem, encodePem } from '../../../../shared/encoding/pem.ts';
import { der } from '../../../../shared/encoding/der.ts';
import { parsePkcs8, parsePlainPrivateKey, parseSpki, OID } from '../../../../shared/crypto/pkcs.ts';
import {
  decryptCosignKey,
  encryptCosignKey,
  parseEncryptedKey,
  type DeriveKey,
} from '../../../../shared/crypto/envelope.ts';
import { scrypt, type ScryptImpl } from '../../../../shared/crypto/scrypt.ts';
import {
  exportPkcs8,
  exportSpki,
  fingerprint,
  generateEcdsaKeyPair,
  importPrivateKey,
  importPublicKey,
  signWithCryptoKey,
  verifyWithCryptoKey,
} from '../../../../shared/crypto/webcrypto.ts';
import { derToRaw } from '../../../../shared/crypto/signature.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

/** Cheap scrypt parameters for tests that exercise the envelope, not the KDF's cost. */
const FAST = { N: 1024, r: 8, p: 1 };
const derive =
  (impl: ScryptImpl): DeriveKey =>
  (pw, salt, params) =>
    scrypt(pw, salt, params, { impl });

async function codeOf(fn: () => unknown): Promise<KeyErrorCode | 'no error'> {
  try {
    await fn();
    return 'no error';
  } catch (e) {
    if (e instanceof KeyError) return e.code;
    throw e;
  }
}

describe('scrypt implementations agree', () => {
  it('RFC 7914 test vector', async () => {
    // RFC 7914 §12, third vector: P="pleaseletmein", S="SodiumChloride", N=16384, r=8, p=1, dkLen=64.
    const expected =
      '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887';
    for (const impl of ['wasm', 'js', 'noble'] as const) {
      const out = await scrypt(
        utf8('pleaseletmein'),
        utf8('SodiumChloride'),
        { N: 16384, r: 8, p: 1 },
        { impl, dkLen: 64 },
      );
      expect([...out].map((b) => b.toString(16).padStart(2, '0')).join(''), impl).toBe(expected);
    }
  });
  it('on random passwords and salts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async (pw, salt) => {
          const params = { N: 16, r: 8, p: 1 };
          const [a, b, c] = await Promise.all(
            (['wasm', 'js', 'noble'] as const).map((impl) => scrypt(pw, salt, params, { impl })),
          );
          expect(b).toEqual(a);
          expect(c).toEqual(a);
        },
      ),
      { numRuns: 30 },
    );
  });
  it('refuses absurd parameters before running', async () => {
    for (const params of [
      { N: 2 ** 30, r: 8, p: 1 },
      { N: 65536, r: 64, p: 1 },
      { N: 65536, r: 8, p: 1000 },
      { N: 1000, r: 8, p: 1 },
      { N: 0, r: 8, p: 1 },
      { N: 65536, r: 0, p: 1 },
      // Each bound on its own: r over 32, p over 16, N over 2^20, even when the totals would pass.
      { N: 2, r: 33, p: 1 },
      { N: 2, r: 1, p: 17 },
      { N: 2 ** 21, r: 1, p: 1 },
      // 128·r·p bytes: N=2, r=1, p=8,388,608 needs 1 GiB and minutes though N·r·p is not over the cap.
      { N: 2, r: 1, p: 8_388_608 },
    ]) {
      expect(await codeOf(() => scrypt(new Uint8Array(1), new Uint8Array(32), params, { impl: 'wasm' }))).toBe(
        'KEY_KDF_PARAMS_REFUSED',
      );
    }
  });
  it('reports progress from scrypt-js', async () => {
    const seen: number[] = [];
    await scrypt(
      utf8('x'),
      new Uint8Array(32),
      { N: 4096, r: 8, p: 1 },
      { impl: 'js', onProgress: (f) => seen.push(f) },
    );
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toBe(1);
  });
});

describe('PKCS#8 and SPKI from WebCrypto keys', () => {
  for (const curve of ['P-256', 'P-384', 'P-521'] as const) {
    it(`ECDSA ${curve}: our derived public key equals WebCrypto's, and signatures verify`, async () => {
      const pair = await generateEcdsaKeyPair(curve, true);
      const info = parsePkcs8(await exportPkcs8(pair.privateKey));
      expect(info.algorithm).toEqual({ kind: 'ecdsa', curve });
      expect(info.spki).toEqual(await exportSpki(pair.publicKey));
      expect(parsePkcs8(info.pkcs8)).toEqual(info); // normalised form is a fixed point
      const key = await importPrivateKey(info);
      expect(key.extractable).toBe(false);
      const msg = utf8('{"critical":{}}');
      const sig = await signWithCryptoKey(key, info.algorithm, msg);
      expect(sig[0]).toBe(0x30);
      const pub = await importPublicKey(info.spki);
      expect(await verifyWithCryptoKey(pub.key, pub.algorithm, msg, sig)).toBe(true);
      expect(await verifyWithCryptoKey(pub.key, pub.algorithm, utf8('{"critical":{} }'), sig)).toBe(false);
    });
  }
  it('P-256 signatures verify with noble over SHA-256, high-S ones included', async () => {
    const pair = await generateEcdsaKeyPair('P-256', true);
    const info = parsePkcs8(await exportPkcs8(pair.privateKey));
    const msg = utf8('payload');
    const der = await signWithCryptoKey(pair.privateKey, info.algorithm, msg);
    const pub = new Uint8Array(info.spki.subarray(info.spki.length - 65));
    expect(p256.verify(derToRaw(der, 32), sha256(msg), pub, { prehash: false, lowS: false })).toBe(true);
    // A noble signature, made high-S on purpose, verifies through WebCrypto as Go's would.
    const d = scalarOf(info.pkcs8, 32);
    expect(p256.getPublicKey(d, false)).toEqual(pub);
    const sigObj = p256.Signature.fromBytes(p256.sign(sha256(msg), d, { prehash: false }));
    const highS = new p256.Signature(sigObj.r, p256.Point.CURVE().n - sigObj.s).toBytes('der');
    const imported = await importPublicKey(info.spki);
    expect(await verifyWithCryptoKey(imported.key, imported.algorithm, msg, highS)).toBe(true);
  });
  it('reads SEC1 and PKCS#1 forms and normalises them', async () => {
    const pair = await generateEcdsaKeyPair('P-384', true);
    const info = parsePkcs8(await exportPkcs8(pair.privateKey));
    // Rebuild the SEC1 form openssl writes: version, d, [0] curve, [1] public key.
    const d = scalarOf(info.pkcs8, 48);
    const point = info.spki.subarray(info.spki.length - 97);
    const sec1 = der.seq(der.small(1), der.octets(d), der.ctx(0, der.oid(OID['P-384'])), der.ctx(1, der.bits(point)));
    expect(parsePlainPrivateKey('EC PRIVATE KEY', sec1)).toEqual(info);
    const rsa = await globalThis.crypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign', 'verify'],
    );
    const rsaInfo = parsePkcs8(new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', rsa.privateKey)));
    expect(rsaInfo.algorithm).toEqual({ kind: 'rsa', bits: 2048 });
    expect(rsaInfo.spki).toEqual(new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', rsa.publicKey)));
  });
  it('Ed25519 keys', async () => {
    const pair = (await globalThis.crypto.subtle.generateKey({ name: 'Ed25519' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const info = parsePkcs8(new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', pair.privateKey)));
    expect(info.algorithm).toEqual({ kind: 'ed25519' });
    expect(info.spki).toEqual(new Uint8Array(await globalThis.crypto.subtle.exportKey('spki', pair.publicKey)));
    const key = await importPrivateKey(info);
    const sig = await signWithCryptoKey(key, info.algorithm, utf8('m'));
    expect(sig.length).toBe(64);
  });
  it('refuses unsupported curves, small RSA and damaged keys with their own codes', async () => {
    const secp256k1 = der.seq(
      der.small(0),
      der.seq(der.oid(OID.ecPublicKey), der.oid('1.3.132.0.10')),
      der.octets(der.seq(der.small(1), der.octets(new Uint8Array(32).fill(7)))),
    );
    expect(await codeOf(() => parsePkcs8(secp256k1))).toBe('KEY_CURVE_UNSUPPORTED');
    const rsa1024 = await globalThis.crypto.subtle.generateKey(
      { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
      true,
      ['sign'],
    );
    const small = new Uint8Array(await globalThis.crypto.subtle.exportKey('pkcs8', rsa1024.privateKey));
    expect(await codeOf(() => parsePkcs8(small))).toBe('KEY_RSA_TOO_SMALL');
    expect(await codeOf(() => parsePkcs8(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])))).toBe('KEY_NOT_PKCS8');
    expect(await codeOf(() => parsePkcs8(utf8('not der at all')))).toBe('KEY_NOT_PKCS8');
    const dsa = der.seq(der.small(0), der.seq(der.oid('1.2.840.10040.4.1')), der.octets(der.small(5)));
    expect(await codeOf(() => parsePkcs8(dsa))).toBe('KEY_ALGORITHM_UNSUPPORTED');
    expect(await codeOf(() => parseSpki(new Uint8Array(5)))).toBe('KEY_DER_INVALID');
  });
  it('never throws anything but a KeyError on mutated keys', async () => {
    const pair = await generateEcdsaKeyPair('P-256', true);
    const good = await exportPkcs8(pair.privateKey);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: good.length }),
        (i, v, cut) => {
          const bad = good.slice(0, Math.max(cut, i + 1));
          bad[i] = v;
          try {
            parsePkcs8(bad);
          } catch (e) {
            expect(e).toBeInstanceOf(KeyError);
          }
        },
      ),
      { numRuns: fuzzRuns(500) },
    );
  });
  it('fingerprint is SHA-256 of the SPKI as hex and as the bundle hint', () => {
    const f = fingerprint(utf8('abc'));
    expect(f.hex).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(f.hint).toBe('ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=');
  });
});

/** The scalar of a normalised EC PKCS#8: it follows `02 01 01 04 <size>` (version 1, OCTET STRING). */
function scalarOf(pkcs8: Uint8Array, size: number): Uint8Array {
  for (let i = 0; i + 5 + size <= pkcs8.length; i++) {
    if (pkcs8[i] === 2 && pkcs8[i + 1] === 1 && pkcs8[i + 2] === 1 && pkcs8[i + 3] === 4 && pkcs8[i + 4] === size) {
      return pkcs8.slice(i + 5, i + 5 + size);
    }
  }
  throw new Error('scalar not found');
}

describe('cosign key envelope', () => {
  it('round-trips with every scrypt implementation and any password', async () => {
    const pair = await generateEcdsaKeyPair('P-256', true);
    const pkcs8 = await exportPkcs8(pair.privateKey);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 30 }),
        fc.constantFrom<ScryptImpl>('wasm', 'js', 'noble'),
        async (pw, impl) => {
          const pem = await encryptCosignKey(pkcs8, pw, derive(impl), FAST);
          const info = await decryptCosignKey(pem, pw, derive('wasm'));
          expect(info.spki).toEqual(await exportSpki(pair.publicKey));
        },
      ),
      { numRuns: 15 },
    );
  });
  it('writes exactly the shape cosign 2.5 writes', async () => {
    const pair = await generateEcdsaKeyPair('P-256', true);
    const pem = await encryptCosignKey(await exportPkcs8(pair.privateKey), '', derive('wasm'));
    const block = decodePem(pem);
    expect(block.label).toBe('ENCRYPTED SIGSTORE PRIVATE KEY');
    const json = new TextDecoder().decode(block.bytes);
    expect(json).toMatch(
      /^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/=]+"\}$/,
    );
    const enc = parseEncryptedKey(pem);
    expect(enc.salt.length).toBe(32);
    expect(enc.nonce.length).toBe(24);
  });
  it('two encryptions of one key use fresh salts and nonces', async () => {
    const pkcs8 = await exportPkcs8((await generateEcdsaKeyPair('P-256', true)).privateKey);
    const a = parseEncryptedKey(await encryptCosignKey(pkcs8, 'pw', derive('wasm'), FAST));
    const b = parseEncryptedKey(await encryptCosignKey(pkcs8, 'pw', derive('wasm'), FAST));
    expect(a.salt).not.toEqual(b.salt);
    expect(a.nonce).not.toEqual(b.nonce);
  });

  describe('bad input: each its own code', async () => {
    const pkcs8 = await exportPkcs8((await generateEcdsaKeyPair('P-256', true)).privateKey);
    const good = await encryptCosignKey(pkcs8, 'pw', derive('wasm'), FAST);
    const envelope = JSON.parse(new TextDecoder().decode(decodePem(good).bytes)) as Record<
      string,
      Record<string, unknown>
    >;
    const withEnvelope = (edit: (e: typeof envelope) => unknown): string => {
      const copy = JSON.parse(JSON.stringify(envelope)) as typeof envelope;
      edit(copy);
      return encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', utf8(JSON.stringify(copy)));
    };
    const cases: [string, string, KeyErrorCode, string?][] = [
      ['wrong password', good, 'KEY_PASSWORD_WRONG', 'wrong'],
      ['truncated PEM', good.slice(0, good.length / 2), 'KEY_PEM_INVALID'],
      ['non-base64 body', good.replace(/\n[A-Za-z0-9+/]{10}/, '\n##########'), 'KEY_PEM_INVALID'],
      [
        'unknown label',
        good.replaceAll('ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED FOO KEY'),
        'KEY_PEM_LABEL_UNKNOWN',
      ],
      ['not JSON', encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', utf8('{"kdf":')), 'KEY_ENVELOPE_INVALID'],
      ['missing kdf', withEnvelope((e) => delete e.kdf), 'KEY_ENVELOPE_INVALID'],
      [
        'N is a string',
        withEnvelope((e) => ((e.kdf!.params as Record<string, unknown>).N = '65536')),
        'KEY_ENVELOPE_INVALID',
      ],
      [
        'ciphertext is a number',
        withEnvelope((e) => ((e as Record<string, unknown>).ciphertext = 5)),
        'KEY_ENVELOPE_INVALID',
      ],
      ['envelope is an array', encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', utf8('[1]')), 'KEY_ENVELOPE_INVALID'],
      ['unknown kdf', withEnvelope((e) => (e.kdf!.name = 'argon2id')), 'KEY_KDF_UNSUPPORTED'],
      ['unknown cipher', withEnvelope((e) => (e.cipher!.name = 'aes-gcm')), 'KEY_CIPHER_UNSUPPORTED'],
      [
        'gigabytes of scrypt',
        withEnvelope((e) => ((e.kdf!.params as Record<string, unknown>).N = 2 ** 24)),
        'KEY_KDF_PARAMS_REFUSED',
      ],
      ['short salt', withEnvelope((e) => (e.kdf!.salt = toBase64(new Uint8Array(8)))), 'KEY_SALT_INVALID'],
      ['long nonce', withEnvelope((e) => (e.cipher!.nonce = toBase64(new Uint8Array(32)))), 'KEY_NONCE_INVALID'],
      ['salt not base64', withEnvelope((e) => (e.kdf!.salt = '***')), 'KEY_ENVELOPE_INVALID'],
    ];
    it("the issue's envelope (N=2, r=1, p=8,388,608) is refused at once, before scrypt runs", async () => {
      const pem = withEnvelope((e) => (e.kdf!.params = { N: 2, r: 1, p: 8_388_608 }));
      let derived = 0;
      const counting: DeriveKey = async (pw, salt, params) => {
        derived++;
        return scrypt(pw, salt, params, { impl: 'wasm' });
      };
      expect(await codeOf(() => decryptCosignKey(pem, 'pw', counting))).toBe('KEY_KDF_PARAMS_REFUSED');
      // Running it takes minutes and 1 GiB; refused before the KDF is ever called.
      expect(derived).toBe(0);
    });
    for (const [name, pem, code, password] of cases) {
      it(name, async () => {
        expect(await codeOf(() => decryptCosignKey(pem, password ?? 'pw', derive('wasm')))).toBe(code);
      });
    }
    it('ciphertext that decrypts to something that is not PKCS#8', async () => {
      const notAKey = await encryptCosignKey(utf8('hello, this is not a key'), 'pw', derive('wasm'), FAST);
      expect(await codeOf(() => decryptCosignKey(notAKey, 'pw', derive('wasm')))).toBe('KEY_NOT_PKCS8');
    });
    it('a random bit flipped anywhere in the envelope gives a KeyError, never a crash', async () => {
      const raw = decodePem(good).bytes;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: raw.length * 8 - 1 }), async (bit) => {
          const bad = raw.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          const code = await codeOf(() =>
            decryptCosignKey(encodePem('ENCRYPTED SIGSTORE PRIVATE KEY', bad), 'pw', derive('wasm')),
          );
          expect(code).not.toBe('no error');
        }),
        { numRuns: 60 },
      );
    });
  });
});

it('base64 helper sanity for the envelope', () =>
  expect(fromBase64(toBase64(new Uint8Array([1, 2])))).toEqual(new Uint8Array([1, 2])));

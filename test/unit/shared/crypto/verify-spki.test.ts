/**
 * verifySpkiSignature and the X.509 signature algorithms (shared/crypto/verify-spki.ts): keys made
 * by WebCrypto sign, our verifier checks — ECDSA P-256/P-384/P-521 over SHA-256/384/512 with DER
 * signatures (high S too, as Go makes them), RSA PKCS#1 v1.5 and PSS (salt as long as the hash),
 * Ed25519; other data, another key, or any malformed signature is false and never throws; an
 * unusable key is a KeyError; RSASSA-PSS parameters are accepted only as Go accepts them.
 * Node and Chromium.
 */
import fc from 'fast-check';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { KeyError } from '../../../../shared/errors.ts';
import { der } from '../../../../shared/encoding/der.ts';
import { toHex, utf8 } from '../../../../shared/encoding/base64.ts';
import { rawToDer } from '../../../../shared/crypto/signature.ts';
import {
  digest,
  signatureAlgorithm,
  verifySpkiSignature,
  verifyWithAlgorithm,
  type HashName,
} from '../../../../shared/crypto/verify-spki.ts';

const data = utf8('the signed bytes');
const other = utf8('other bytes');

async function spkiOf(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey('spki', key));
}

const CURVES = [
  ['P-256', 32, p256.Point.Fn.ORDER],
  ['P-384', 48, p384.Point.Fn.ORDER],
  ['P-521', 66, p521.Point.Fn.ORDER],
] as const;

function bigToBytes(n: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i--, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}

async function ecdsa(curve: string, hash: HashName) {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify']);
  const raw = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash }, pair.privateKey, data as BufferSource));
  return { spki: await spkiOf(pair.publicKey), raw };
}

async function rsa(name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS', hash: HashName, bits = 2048) {
  const pair = await crypto.subtle.generateKey(
    { name, modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash },
    true,
    ['sign', 'verify'],
  );
  const params =
    name === 'RSA-PSS' ? { name, saltLength: { 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 }[hash] } : { name };
  const sig = new Uint8Array(await crypto.subtle.sign(params, pair.privateKey, data as BufferSource));
  return { spki: await spkiOf(pair.publicKey), sig };
}

describe('verifySpkiSignature', () => {
  for (const [curve, size, order] of CURVES)
    for (const hash of ['SHA-256', 'SHA-384', 'SHA-512'] as const)
      it(`ECDSA ${curve} over ${hash}: DER, low and high S`, async () => {
        const { spki, raw } = await ecdsa(curve, hash);
        expect(await verifySpkiSignature(spki, hash, data, rawToDer(raw, size))).toBe(true);
        const s = BigInt(`0x${toHex(raw.subarray(size))}`);
        const flipped = new Uint8Array(raw);
        flipped.set(bigToBytes(order - s, size), size);
        expect(await verifySpkiSignature(spki, hash, data, rawToDer(flipped, size))).toBe(true);
        expect(await verifySpkiSignature(spki, hash, other, rawToDer(raw, size))).toBe(false);
        expect(await verifySpkiSignature(spki, hash, data, raw)).toBe(false); // r‖s is not DER
      });

  it('ECDSA with the wrong hash named is false', async () => {
    const { spki, raw } = await ecdsa('P-384', 'SHA-384');
    expect(await verifySpkiSignature(spki, 'SHA-256', data, rawToDer(raw, 48))).toBe(false);
  });

  it('RSA PKCS#1 v1.5 over SHA-256 and SHA-512, not as PSS', async () => {
    for (const hash of ['SHA-256', 'SHA-512'] as const) {
      const { spki, sig } = await rsa('RSASSA-PKCS1-v1_5', hash);
      expect(await verifySpkiSignature(spki, hash, data, sig)).toBe(true);
      expect(await verifySpkiSignature(spki, hash, other, sig)).toBe(false);
      expect(await verifySpkiSignature(spki, hash, data, sig, { rsaPss: true })).toBe(false);
    }
  });

  it('RSA-PSS with the salt as long as the hash, by option or by scheme', async () => {
    const { spki, sig } = await rsa('RSA-PSS', 'SHA-384');
    expect(await verifySpkiSignature(spki, 'SHA-384', data, sig, { rsaPss: true })).toBe(true);
    expect(await verifySpkiSignature(spki, { hash: 'SHA-384', rsaPss: { saltLength: 48 } }, data, sig)).toBe(true);
    expect(await verifySpkiSignature(spki, 'SHA-384', data, sig)).toBe(false); // not PKCS#1 v1.5
    expect(await verifySpkiSignature(spki, 'SHA-384', other, sig, { rsaPss: true })).toBe(false);
  });

  it('Ed25519, whatever the hash named', async () => {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, data as BufferSource));
    const spki = await spkiOf(pair.publicKey);
    expect(await verifySpkiSignature(spki, 'SHA-256', data, sig)).toBe(true);
    expect(await verifySpkiSignature(spki, 'SHA-512', other, sig)).toBe(false);
    expect(await verifySpkiSignature(spki, 'SHA-512', data, sig.subarray(1))).toBe(false);
  });

  it('another key is false', async () => {
    const a = await ecdsa('P-256', 'SHA-256');
    const b = await ecdsa('P-256', 'SHA-256');
    expect(await verifySpkiSignature(b.spki, 'SHA-256', data, rawToDer(a.raw, 32))).toBe(false);
  });

  it('an unusable key is a KeyError, not false', async () => {
    await expect(verifySpkiSignature(utf8('not a key'), 'SHA-256', data, data)).rejects.toBeInstanceOf(KeyError);
    const small = await rsa('RSASSA-PKCS1-v1_5', 'SHA-256', 1024);
    await expect(verifySpkiSignature(small.spki, 'SHA-256', data, small.sig)).rejects.toMatchObject({
      code: 'KEY_RSA_TOO_SMALL',
    });
  });

  it('arbitrary signature bytes give false for every key kind, never an error', async () => {
    const keys = [
      (await ecdsa('P-256', 'SHA-256')).spki,
      (await ecdsa('P-521', 'SHA-512')).spki,
      (await rsa('RSASSA-PKCS1-v1_5', 'SHA-256')).spki,
      await spkiOf(
        ((await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair).publicKey,
      ),
    ];
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), fc.boolean(), async (sig, pss) => {
        for (const spki of keys)
          expect(await verifySpkiSignature(spki, 'SHA-256', data, sig, { rsaPss: pss })).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});

describe('signatureAlgorithm', () => {
  const alg = (oid: string) => der.seq(der.oid(oid), der.null());
  const mgf1 = (hashOid: string) => der.seq(der.oid('1.2.840.113549.1.1.8'), alg(hashOid));
  const SHA256 = '2.16.840.1.101.3.4.2.1';
  const SHA384 = '2.16.840.1.101.3.4.2.2';
  const pss = (hashOid: string, mgfHashOid: string, salt: number) =>
    der.seq(der.ctx(0, alg(hashOid)), der.ctx(1, mgf1(mgfHashOid)), der.ctx(2, der.small(salt)));

  it('names the hash and key of ECDSA, RSA and Ed25519 certificate signatures', () => {
    expect(signatureAlgorithm('1.2.840.10045.4.3.2')).toEqual({ key: 'ecdsa', hash: 'SHA-256' });
    expect(signatureAlgorithm('1.2.840.10045.4.3.3')).toEqual({ key: 'ecdsa', hash: 'SHA-384' });
    expect(signatureAlgorithm('1.2.840.10045.4.3.4')).toEqual({ key: 'ecdsa', hash: 'SHA-512' });
    expect(signatureAlgorithm('1.2.840.113549.1.1.11')).toEqual({ key: 'rsa', hash: 'SHA-256' });
    expect(signatureAlgorithm('1.2.840.113549.1.1.12')).toEqual({ key: 'rsa', hash: 'SHA-384' });
    expect(signatureAlgorithm('1.2.840.113549.1.1.13')).toEqual({ key: 'rsa', hash: 'SHA-512' });
    expect(signatureAlgorithm('1.3.101.112')?.key).toBe('ed25519');
    expect(signatureAlgorithm('1.2.840.113549.1.1.5')).toBeNull(); // sha1WithRSAEncryption
    expect(signatureAlgorithm('1.2.840.10045.4.1')).toBeNull(); // ecdsa-with-SHA1
  });

  it('reads RSASSA-PSS parameters as Go does: SHA-2, the same MGF1 hash, salt = hash length', () => {
    const P = '1.2.840.113549.1.1.10';
    expect(signatureAlgorithm(P, pss(SHA256, SHA256, 32))).toEqual({
      key: 'rsa',
      hash: 'SHA-256',
      rsaPss: { saltLength: 32 },
    });
    expect(signatureAlgorithm(P, pss(SHA384, SHA384, 48))?.hash).toBe('SHA-384');
    expect(signatureAlgorithm(P, pss(SHA256, SHA256, 20))).toBeNull();
    expect(signatureAlgorithm(P, pss(SHA256, SHA384, 32))).toBeNull();
    expect(signatureAlgorithm(P, der.seq())).toBeNull(); // the SHA-1 defaults
    expect(signatureAlgorithm(P)).toBeNull();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (params) => {
        const r = signatureAlgorithm(P, params);
        expect(r === null || r.rsaPss !== undefined).toBe(true);
      }),
    );
  });

  it('verifyWithAlgorithm refuses a key of another kind than the algorithm names', async () => {
    const { spki, raw } = await ecdsa('P-256', 'SHA-256');
    const sig = rawToDer(raw, 32);
    expect(await verifyWithAlgorithm(spki, signatureAlgorithm('1.2.840.10045.4.3.2')!, data, sig)).toBe(true);
    expect(await verifyWithAlgorithm(spki, { key: 'rsa', hash: 'SHA-256' }, data, sig)).toBe(false);
  });
});

describe('digest', () => {
  it('is SHA-2 through WebCrypto', async () => {
    expect(toHex(await digest('SHA-256', utf8('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect((await digest('SHA-384', utf8('abc'))).length).toBe(48);
    expect((await digest('SHA-512', utf8('abc'))).length).toBe(64);
  });
});

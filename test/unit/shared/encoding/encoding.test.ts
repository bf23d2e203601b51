/** Property and example tests for base64, PEM, DER and ECDSA signature encodings (Node and Chromium). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fromBase64,
  fromBase64Url,
  fromHex,
  toBase64,
  toBase64Url,
  toHex,
} from '../../../../shared/encoding/base64.ts';
import { decodePem, encodePem } from '../../../../shared/encoding/pem.ts';
import { DerError, decodeOid, der, parseDer, sequence } from '../../../../shared/encoding/der.ts';
import { derToRaw, rawToDer } from '../../../../shared/crypto/signature.ts';
import { KeyError, SignatureError } from '../../../../shared/errors.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const bytes = fc.uint8Array({ maxLength: 300 });

describe('base64', () => {
  it('round-trips standard and url forms', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        expect(fromBase64(toBase64(b))).toEqual(b);
        expect(fromBase64Url(toBase64Url(b))).toEqual(b);
      }),
    );
  });
  it('matches the platform encoder', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        expect(toBase64(b)).toBe(btoa(String.fromCharCode(...b)));
      }),
    );
  });
  it('refuses what is not exactly base64', () => {
    for (const bad of ['abc', 'ab=c', 'a===', '@@@@', 'YQ==YQ==', 'YR==', 'YWJj\n']) expect(fromBase64(bad)).toBeNull();
    expect(fromBase64Url('YQ==')).toBeNull();
    expect(fromBase64('')).toEqual(new Uint8Array(0));
  });
  it('hex', () => expect(toHex(new Uint8Array([0, 15, 255]))).toBe('000fff'));
  it('hex back: both cases, and null for odd lengths or other characters', () => {
    expect(fromHex('000fFF')).toEqual(new Uint8Array([0, 15, 255]));
    expect([fromHex('abc'), fromHex('zz'), fromHex('0x00')]).toEqual([null, null, null]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        expect(fromHex(toHex(b))).toEqual(b);
      }),
    );
  });
});

describe('PEM', () => {
  it('round-trips with 64-character lines', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 400 }),
        fc.constantFrom('PUBLIC KEY', 'ENCRYPTED SIGSTORE PRIVATE KEY'),
        (b, label) => {
          const pem = encodePem(label, b);
          for (const line of pem.split('\n').slice(1, -2)) expect(line.length).toBeLessThanOrEqual(64);
          expect(decodePem(pem)).toEqual({ label, bytes: b });
          expect(decodePem(`junk before\n${pem.replace(/\n/g, '\r\n')}junk after`)).toEqual({ label, bytes: b });
        },
      ),
    );
  });
  it.each([
    ['no block', 'hello'],
    ['truncated', '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE'],
    ['bad base64', '-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n'],
    ['empty body', '-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n'],
    ['mismatched END', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'],
  ])('refuses %s with KEY_PEM_INVALID', (_name, text) => {
    expect(() => decodePem(text)).toThrow(KeyError);
    try {
      decodePem(text);
    } catch (e) {
      expect((e as KeyError).code).toBe('KEY_PEM_INVALID');
    }
  });
});

describe('DER', () => {
  const oid = fc
    .tuple(
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 39 }),
      fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { maxLength: 6 }),
    )
    .map(([a, b, rest]) => [a, b, ...rest].join('.'));
  it('round-trips object identifiers', () => {
    fc.assert(
      fc.property(oid, (o) => {
        expect(decodeOid(parseDer(der.oid(o)))).toBe(o);
      }),
    );
    expect(toHex(der.oid('1.2.840.10045.3.1.7'))).toBe('06082a8648ce3d030107');
  });
  it('round-trips nested sequences of octet strings of any length', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 70_000 }), { maxLength: 3 }), (parts) => {
        const enc = der.seq(...parts.map((p) => der.octets(p)));
        expect(sequence(parseDer(enc), 'seq').map((n) => n.value)).toEqual(parts);
      }),
      { numRuns: 20 },
    );
  });
  it('refuses non-DER encodings', () => {
    for (const hex of ['3080', '30810100', '300100', '3003020100ff', '02', '3082000100']) {
      const b = new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)));
      expect(() => sequence(parseDer(b), 'x'), hex).toThrow(DerError);
    }
  });
  it('never throws anything but DerError on random input', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        try {
          const n = parseDer(b);
          if (n.tag & 0x20) sequence({ ...n, tag: 0x30 }, 'x');
        } catch (e) {
          expect(e).toBeInstanceOf(DerError);
        }
      }),
      { numRuns: fuzzRuns(2000) },
    );
  });
});

describe('ECDSA signature encodings', () => {
  it('raw → DER → raw is the identity for every curve size', () => {
    fc.assert(
      fc.property(fc.constantFrom(32, 48, 66), fc.uint8Array({ minLength: 132, maxLength: 132 }), (size, b) => {
        const raw = b.subarray(0, size * 2);
        expect(derToRaw(rawToDer(raw, size), size)).toEqual(raw);
      }),
    );
  });
  it('writes minimal integers (leading zeros dropped, sign byte added)', () => {
    const raw = new Uint8Array(64);
    raw[31] = 1;
    raw[32] = 0x80;
    expect(toHex(rawToDer(raw, 32))).toBe('3026020101022100' + '80' + '00'.repeat(31));
  });
  it('refuses malformed DER and wrong lengths', () => {
    expect(() => derToRaw(new Uint8Array([0x30, 0]), 32)).toThrow(SignatureError);
    expect(() => rawToDer(new Uint8Array(63), 32)).toThrow(SignatureError);
    const tooLong = der.seq(der.uint(new Uint8Array(33).fill(1)), der.uint(new Uint8Array([1])));
    expect(() => derToRaw(tooLong, 32)).toThrow(SignatureError);
  });
});

/**
 * parseSctList (shared/sigstore/sct.ts), the TLS encoding of RFC 6962 §3.3: an SCT list written
 * here field by field reads back (version, log id, 64-bit millisecond timestamp, extensions, hash);
 * a wrong version, an unknown hash or trailing bytes are refused; arbitrary bytes give only
 * VERIFY_SCT_INVALID. Node and Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { parseSctList } from '../../../../shared/sigstore/sct.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const u16 = (n: number) => [n >> 8, n & 255];

function sct(o: { version?: number; ext?: number[]; hash?: number; sig?: number[] } = {}): number[] {
  const body = [
    o.version ?? 0,
    ...new Array<number>(32).fill(7), // log id
    0,
    0,
    1,
    0x8b,
    0x2c,
    0x3d,
    0x4e,
    0x5f, // timestamp
    ...u16(o.ext?.length ?? 0),
    ...(o.ext ?? []),
    o.hash ?? 4, // sha256
    3, // ecdsa
    ...u16(o.sig?.length ?? 3),
    ...(o.sig ?? [1, 2, 3]),
  ];
  return [...u16(body.length), ...body];
}
const list = (...scts: number[][]) => {
  const all = scts.flat();
  return new Uint8Array([...u16(all.length), ...all]);
};

function outcome(bytes: Uint8Array): string {
  try {
    parseSctList(bytes);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError);
    return (e as VerificationError).code;
  }
}

describe('parseSctList', () => {
  it('reads each SCT of the list', () => {
    const [a, b] = parseSctList(list(sct(), sct({ ext: [9, 9], hash: 5, sig: [4] })));
    expect(a).toEqual({
      logId: new Uint8Array(32).fill(7),
      timestamp: 0x18b2c3d4e5fn,
      extensions: new Uint8Array(0),
      hash: 'SHA-256',
      signature: new Uint8Array([1, 2, 3]),
    });
    expect(b).toMatchObject({ extensions: new Uint8Array([9, 9]), hash: 'SHA-384', signature: new Uint8Array([4]) });
    expect(parseSctList(list())).toEqual([]);
  });

  it('refuses another version, an unknown hash, trailing bytes, a short list', () => {
    expect(outcome(list(sct({ version: 1 })))).toBe('VERIFY_SCT_INVALID');
    expect(outcome(list(sct({ hash: 2 })))).toBe('VERIFY_SCT_INVALID');
    expect(outcome(new Uint8Array([...list(sct()), 0]))).toBe('VERIFY_SCT_INVALID');
    expect(outcome(list(sct()).subarray(0, 20))).toBe('VERIFY_SCT_INVALID');
  });

  it('arbitrary bytes give only VERIFY_SCT_INVALID', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => void outcome(b)),
      { numRuns: fuzzRuns(1000) },
    );
    const good = list(sct({ ext: [1] }), sct());
    fc.assert(
      fc.property(fc.nat({ max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), (i, v) => {
        const b = new Uint8Array(good);
        b[i] = v;
        void outcome(b);
      }),
      { numRuns: fuzzRuns(100) },
    );
  });
});

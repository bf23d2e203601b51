/**
 * The transfer's byte check (server/relay/transfer.ts `Checked`), with fast-check: whatever pieces
 * a source's answer comes in, the destination gets the same bytes, in pieces of at least PASS_BYTES
 * but for the last two; progress counts exactly what was passed on; a body that is not the blob
 * (other bytes, too few, too many) fails with its code and never passes its last piece on.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Checked, PASS_BYTES } from '../../../../server/relay/transfer.ts';
import { fuzzRuns } from '../../../fuzz/runs.ts';

const digestOf = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** `bytes` cut at `cuts` (offsets, any order), as the pieces a socket might give. */
function piecesOf(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...at, bytes.length]) {
    if (c > from) out.push(bytes.subarray(from, c));
    from = Math.max(from, c);
  }
  return out;
}

/** Runs `pieces` through a Checked expecting `want`: what came out, the progress counted, the error. */
async function run(pieces: Buffer[], want: { digest: string; size: number }) {
  let passed = 0;
  const checked = new Checked(want, (n) => (passed += n));
  const out: Buffer[] = [];
  const error = await pipeline(Readable.from(pieces, { objectMode: false }), checked, async (src) => {
    for await (const c of src) out.push(c as Buffer);
  }).then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  return { out, passed, error };
}

/** Up to three PASS_BYTES of bytes from a seed (fast-check's arrays stay a few bytes long). */
const blob = fc
  .record({ length: fc.integer({ min: 0, max: 3 * PASS_BYTES }), seed: fc.integer() })
  .map(({ length, seed }) => {
    const b = Buffer.alloc(length);
    let x = seed | 1;
    for (let i = 0; i < length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 255;
    }
    return b;
  });
const cuts = fc.array(fc.nat(), { maxLength: 40 });

describe('Checked', () => {
  it('passes the blob on whole, in pieces of at least PASS_BYTES but the last two', async () => {
    await fc.assert(
      fc.asyncProperty(blob, cuts, async (bytes, at) => {
        const { out, passed, error } = await run(piecesOf(bytes, at), { digest: digestOf(bytes), size: bytes.length });
        expect(error).toBeNull();
        expect(Buffer.concat(out).equals(bytes)).toBe(true);
        expect(passed).toBe(bytes.length);
        for (const piece of out.slice(0, -2)) expect(piece.length).toBeGreaterThanOrEqual(PASS_BYTES);
        if (bytes.length > 2 * PASS_BYTES && at.length > 30) expect(out.length).toBeLessThan(at.length);
      }),
      { numRuns: fuzzRuns(60) },
    );
  });

  it('never passes the last piece of a body that is not the blob', async () => {
    await fc.assert(
      fc.asyncProperty(
        blob.filter((b) => b.length > 0),
        cuts,
        fc.constantFrom('flip', 'short', 'long'),
        async (bytes, at, how) => {
          const served = Buffer.from(bytes);
          let want = { digest: digestOf(bytes), size: bytes.length };
          if (how === 'flip') served[served.length - 1]! ^= 1;
          if (how === 'short')
            want = { digest: digestOf(Buffer.concat([bytes, Buffer.from([7])])), size: bytes.length + 1 };
          const body = how === 'long' ? Buffer.concat([served, Buffer.from([7])]) : served;
          const { out, passed, error } = await run(piecesOf(body, at), want);
          expect(error?.code).toBe(how === 'flip' ? 'REGISTRY_DIGEST_MISMATCH' : 'REGISTRY_SIZE_MISMATCH');
          const sent = Buffer.concat(out);
          expect(sent.length).toBeLessThan(want.size);
          expect(body.subarray(0, sent.length).equals(sent)).toBe(true);
          expect(passed).toBe(sent.length);
        },
      ),
      { numRuns: fuzzRuns(60) },
    );
  });
});

/**
 * The fuzzing both timestamp suites share: a token from a list with one to three bytes changed,
 * cut after or inserted; parseTimestampToken on it throws only VerificationError, then `check`
 * sees the mutated bytes. Node and Chromium.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { VerificationError } from '../../../../shared/errors.ts';
import { parseTimestampToken } from '../../../../shared/sigstore/timestamp.ts';

export async function fuzzTokenEdits(
  tokens: readonly Uint8Array[],
  check: (bytes: Uint8Array, which: number) => Promise<unknown>,
  numRuns: number,
): Promise<void> {
  const mutation = fc.record({
    which: fc.nat({ max: tokens.length - 1 }),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert')), {
      minLength: 1,
      maxLength: 3,
    }),
  });
  await fc.assert(
    fc.asyncProperty(mutation, async ({ which, edits }) => {
      let b = Array.from(tokens[which]!);
      for (const [pos, v, op] of edits) {
        const i = pos % b.length;
        if (op === 'set') b[i] = v;
        else if (op === 'cut') b = b.slice(0, i);
        else b.splice(i, 0, v);
        if (b.length === 0) b = [0];
      }
      const bytes = new Uint8Array(b);
      try {
        parseTimestampToken(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(VerificationError);
      }
      await check(bytes, which);
    }),
    { numRuns },
  );
}

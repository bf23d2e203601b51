/**
 * Inputs for the parser fuzzing (test/unit/shared/fuzz.test.ts, test/unit/server/fuzz.test.ts):
 * real documents with one to four bytes changed, cut after or inserted, so the fuzzing reaches past
 * a parser's first check; and `outsideBytes`, which mixes those with arbitrary bytes and JSON.
 */
import fc from 'fast-check';

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** One of `seeds` with one to four edits: a byte set, the rest cut off, or a byte inserted. */
export function mutated(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert'));
  return fc
    .record({ which: fc.nat({ max: seeds.length - 1 }), edits: fc.array(edit, { minLength: 1, maxLength: 4 }) })
    .map(({ which, edits }) => {
      let b = Array.from(seeds[which]!);
      for (const [pos, v, op] of edits) {
        const i = b.length === 0 ? 0 : pos % b.length;
        if (op === 'set' && b.length > 0) b[i] = v;
        else if (op === 'cut') b = b.slice(0, i);
        else b.splice(i, 0, v);
      }
      return new Uint8Array(b);
    });
}

/** As {@link mutated}, for text (edited as UTF-8 bytes, read back leniently). */
export function mutatedText(seeds: readonly string[]): fc.Arbitrary<string> {
  return mutated(seeds.map(utf8)).map((b) => new TextDecoder().decode(b));
}

/** Bytes as they may come from outside: arbitrary, arbitrary JSON, or a real document edited. */
export function outsideBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 400 }),
    fc.json({ maxDepth: 4 }).map(utf8),
    mutated(seeds),
    mutated(seeds),
  );
}

/** Text as it may come from outside: any code units, any JSON, or a real text edited. */
export function outsideText(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.json({ maxDepth: 3 }),
    mutatedText(seeds),
    mutatedText(seeds),
  );
}

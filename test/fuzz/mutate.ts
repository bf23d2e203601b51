/**
 * Inputs for the parser fuzzing (test/unit/shared/fuzz.test.ts, test/unit/server/fuzz.test.ts):
 * real documents with one to four bytes changed, cut after or inserted, so the fuzzing reaches past
 * a parser's first check; real JSON documents with one value nested thousands of levels deep
 * (what found the RangeErrors shared/encoding/json-depth.ts now prevents); and `outsideBytes`,
 * which mixes those with arbitrary bytes and JSON.
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

/** Places `deep` at a random value of the JSON document `text` (or around the whole when it is no JSON object). */
function placeAt(text: string, at: number, deep: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return deep.replace('0', text);
  }
  const slots: [Record<string, unknown> | unknown[], string | number][] = [];
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    for (const [k, x] of Object.entries(v)) {
      slots.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k]);
      walk(x);
    }
  };
  walk(doc);
  if (slots.length === 0) return deep;
  const [parent, key] = slots[at % slots.length]!;
  (parent as Record<string | number, unknown>)[key] = '\u0001deep';
  return JSON.stringify(doc).replace('"\\u0001deep"', deep);
}

/** One of `seeds` (JSON documents) with one value replaced by arrays or objects nested 65 to 20,000 deep. */
export function deeplyNested(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc
    .record({
      which: fc.nat({ max: seeds.length - 1 }),
      at: fc.nat(),
      depth: fc.integer({ min: 65, max: 20_000 }),
      object: fc.boolean(),
    })
    .map(({ which, at, depth, object }) => {
      const [open, close] = object ? ['{"a":', '}'] : ['[', ']'];
      return placeAt(seeds[which]!, at, `${open.repeat(depth)}0${close.repeat(depth)}`);
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
    deeplyNested(seeds.map((b) => new TextDecoder().decode(b))).map(utf8),
  );
}

/** Text as it may come from outside: any code units, any JSON, or a real text edited. */
export function outsideText(seeds: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.json({ maxDepth: 3 }),
    mutatedText(seeds),
    mutatedText(seeds),
    deeplyNested(seeds),
  );
}

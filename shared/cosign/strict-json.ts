/**
 * A strict JSON reader for signed payloads: RFC 8259 JSON, but a duplicate key anywhere is an
 * error (JSON.parse silently keeps the last one, which lets two readers of one signed payload see
 * different claims). containers/image's "paranoid" unmarshalling refuses duplicates the same way.
 * Numbers keep their source text so "timestamp must be an integer" can be judged exactly.
 */

export class StrictJsonError extends Error {}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [k: string]: JsonValue };

/** A number with its source text. */
export class JsonNumber {
  constructor(readonly text: string) {}
  get value(): number {
    return Number(this.text);
  }
  /** True when the number is an integer (as Go's float64 → int64 round trip would keep it). */
  isInteger(): boolean {
    return Number.isInteger(this.value) && Number.isSafeInteger(this.value);
  }
}

const MAX_DEPTH = 64;

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const LITERALS = [
  ['true', true],
  ['false', false],
  ['null', null],
] as const;

/** One pass over `text`; `i` is the offset reached, named in every error. */
class Reader {
  i = 0;
  constructor(readonly text: string) {}

  fail(why: string): never {
    throw new StrictJsonError(`${why} at offset ${this.i}`);
  }

  ws(): void {
    const t = this.text;
    while (this.i < t.length && (t[this.i] === ' ' || t[this.i] === '\t' || t[this.i] === '\n' || t[this.i] === '\r'))
      this.i++;
  }

  /** The character after a backslash (at `i`), the escape consumed. */
  escape(): string {
    const e = this.text[this.i + 1];
    this.i += 2;
    if (e !== undefined && e in ESCAPES) return ESCAPES[e]!;
    if (e !== 'u') this.fail('bad escape');
    const hex = this.text.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
    this.i += 4;
    return String.fromCharCode(parseInt(hex, 16));
  }

  str(): string {
    if (this.text[this.i] !== '"') this.fail('expected a string');
    this.i++;
    let out = '';
    for (;;) {
      if (this.i >= this.text.length) this.fail('unterminated string');
      const c = this.text[this.i]!;
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c < ' ') this.fail('control character in string');
      if (c === '\\') out += this.escape();
      else {
        out += c;
        this.i++;
      }
    }
  }

  /** Consumes `close` when it comes next (after white space). */
  closes(close: string): boolean {
    if (this.text[this.i] !== close) return false;
    this.i++;
    return true;
  }

  /** After an element: true at the end (`close` consumed), false after a comma. */
  next(close: string): boolean {
    this.ws();
    if (this.text[this.i] === ',') {
      this.i++;
      return false;
    }
    if (this.closes(close)) return true;
    return this.fail(`expected "," or "${close}"`);
  }

  object(depth: number): { [k: string]: JsonValue } {
    this.i++;
    // No prototype: a key named __proto__ is a key like any other.
    const obj = Object.create(null) as { [k: string]: JsonValue };
    const seen = new Set<string>();
    this.ws();
    if (this.closes('}')) return obj;
    do {
      this.ws();
      const k = this.str();
      if (seen.has(k)) this.fail(`duplicate key "${k}"`);
      seen.add(k);
      this.ws();
      if (this.text[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      obj[k] = this.value(depth + 1);
    } while (!this.next('}'));
    return obj;
  }

  array(depth: number): JsonValue[] {
    this.i++;
    const arr: JsonValue[] = [];
    this.ws();
    if (this.closes(']')) return arr;
    do arr.push(this.value(depth + 1));
    while (!this.next(']'));
    return arr;
  }

  /** A literal or a number (its source text kept). */
  scalar(): JsonValue {
    for (const [lit, v] of LITERALS) {
      if (this.text.startsWith(lit, this.i)) {
        this.i += lit.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.i, this.i + 400));
    if (!m) this.fail('unexpected character');
    this.i += m[0].length;
    return new JsonNumber(m[0]);
  }

  value(depth: number): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nested too deeply');
    this.ws();
    const c = this.text[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.str();
    return this.scalar();
  }
}

/** Parses `text` strictly. @throws StrictJsonError */
export function parseStrictJson(text: string): JsonValue {
  const reader = new Reader(text);
  const v = reader.value(0);
  reader.ws();
  if (reader.i !== text.length) reader.fail('trailing characters');
  return v;
}

/**
 * The string-valued fields of an object read from outside, as a new record. Built with
 * Object.fromEntries, which defines own properties, so a key such as "__proto__" stays a key
 * instead of replacing the record's prototype.
 */
export function stringFields(o: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** True for a JSON object (not null, not an array, not a number). */
export function isObject(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/**
 * Go's encoding/json string output for ASCII-safe comparison: JSON.stringify plus the HTML
 * escapes Go applies by default (<, >, & and U+2028/U+2029), so payloads we build are byte for
 * byte what cosign builds from the same values.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

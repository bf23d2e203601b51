/**
 * Canonical JSON as TUF signs it: securesystemslib's `encode_canonical` (the OLPC canonical JSON
 * form, http://wiki.laptop.org/go/Canonical_JSON): objects with their keys sorted by code point, no
 * whitespace, strings with only `"` and `\` escaped (every other character as its UTF-8 bytes),
 * integers only, `true`, `false`, `null`.
 * https://theupdateframework.github.io/specification/latest/#metaformat
 */
import { TufError } from '../errors.ts';
import { utf8 } from '../encoding/base64.ts';

function invalid(why: string): TufError {
  return new TufError('TUF_METADATA_INVALID', `The TUF metadata cannot be put in canonical form: ${why}.`);
}

// Code point order (Python's str order), which differs from UTF-16 order only past U+FFFF.
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function quote(s: string): string {
  if (LONE_SURROGATE.test(s)) throw invalid('a string holds a lone surrogate');
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function encode(value: unknown, depth: number): string {
  if (depth > 64) throw invalid('it is nested more than 64 levels deep');
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw invalid(`${value} is not an integer canonical JSON can hold`);
    return Object.is(value, -0) ? '0' : String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => encode(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort(byCodePoint);
    const obj = value as Record<string, unknown>;
    return `{${keys.map((k) => `${quote(k)}:${encode(obj[k], depth + 1)}`).join(',')}}`;
  }
  throw invalid(`a ${typeof value} is not JSON`);
}

/**
 * The canonical JSON bytes of a value read by JSON.parse.
 * @throws TufError TUF_METADATA_INVALID for a number that is not a safe integer, a lone surrogate
 *   or nesting deeper than 64.
 */
export function canonicalJson(value: unknown): Uint8Array {
  return utf8(encode(value, 0));
}

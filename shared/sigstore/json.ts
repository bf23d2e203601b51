/**
 * The one JSON reader of shared/sigstore/: bytes or text to an object, with a size bound, and a
 * caller's error for anything else (trusted roots and bundles each say "not valid" their own way).
 * Sigstore's JSON is protobuf's JSON form: 64-bit numbers arrive as strings, bytes as base64.
 */
import { fromBase64 } from '../encoding/base64.ts';
import type { ValidityPeriod } from './types.ts';
import { MAX_JSON_DEPTH, jsonDepthWithin } from '../encoding/json-depth.ts';

export type JsonObject = { [k: string]: unknown };

/** Largest JSON document read here: bundles and roots are a few KiB; a DSSE payload may be larger. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses a JSON object.
 * @throws whatever `bad(why)` returns, when the input is not UTF-8 JSON holding an object, or nests
 *   more than MAX_JSON_DEPTH levels.
 */
export function parseJsonObject(json: Uint8Array | string, bad: (why: string) => Error): JsonObject {
  let text: string;
  if (typeof json === 'string') text = json;
  else {
    if (json.length > MAX_JSON_BYTES) throw bad(`it is larger than ${MAX_JSON_BYTES / 1024 / 1024} MiB`);
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(json);
    } catch {
      throw bad('it is not UTF-8 text');
    }
  }
  if (text.length > MAX_JSON_BYTES) throw bad(`it is larger than ${MAX_JSON_BYTES / 1024 / 1024} MiB`);
  if (!jsonDepthWithin(text)) throw bad(`it is nested more than ${MAX_JSON_DEPTH} levels deep`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad('it is not JSON');
  }
  if (!isJsonObject(v)) throw bad('it is not a JSON object');
  return v;
}

/** Base64 bytes of a field; `allowEmpty` for fields protobuf may leave empty. */
export function base64Field(v: unknown, where: string, bad: (why: string) => Error, allowEmpty = false): Uint8Array {
  // Go's base64 decoder (protojson) skips line breaks; openssl and `base64` write them.
  const out = typeof v === 'string' ? fromBase64(v.replace(/[\r\n]/g, '')) : null;
  if (!out || (out.length === 0 && !allowEmpty)) throw bad(`${where} is not base64`);
  return out;
}

/** A protobuf int64/uint64 in JSON (a decimal string, or a number), as a safe non-negative integer. */
export function uintField(v: unknown, where: string, bad: (why: string) => Error): number {
  const n = typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isSafeInteger(n) || n < 0) throw bad(`${where} is not a non-negative integer`);
  return n;
}

/** An RFC 3339 time as protobuf's JSON form writes Timestamps. */
export function timestampField(v: unknown, where: string, bad: (why: string) => Error): Date {
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(v))
    throw bad(`${where} is not a time`);
  // Date reads at most milliseconds: protobuf writes up to nanoseconds.
  const d = new Date(v.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(d.getTime())) throw bad(`${where} is not a time`);
  return d;
}

/** A protobuf TimeRange (`validFor`): a start is required, an end optional and not before it. */
export function validityField(v: unknown, where: string, bad: (why: string) => Error): ValidityPeriod {
  if (!isJsonObject(v)) throw bad(`${where} has no validFor`);
  if (v.start === undefined || v.start === null) throw bad(`${where} has no start to its validity`);
  const out: ValidityPeriod = { start: timestampField(v.start, `${where}'s validity start`, bad) };
  if (v.end !== undefined && v.end !== null) out.end = timestampField(v.end, `${where}'s validity end`, bad);
  if (out.end && out.end < out.start) throw bad(`${where}'s validity ends before it starts`);
  return out;
}

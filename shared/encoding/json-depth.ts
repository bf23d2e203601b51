/**
 * The nesting depth of JSON text, checked before JSON.parse. V8's JSON.parse takes any depth, but
 * what then walks the value (JSON.stringify in a sentence, String() of an array, a pretty print,
 * canonical JSON) recurses, and a document nested some thousands of levels deep makes it throw
 * RangeError instead of the reader's own error. Every reader of JSON from outside refuses more
 * than MAX_JSON_DEPTH levels, as the strict reader (cosign/strict-json.ts) does. Found by
 * `npm run fuzz`.
 */

/** The deepest nesting of arrays and objects read from outside (cosign's documents use < 10). */
export const MAX_JSON_DEPTH = 64;

/** Whether `text` nests arrays and objects at most `max` levels deep (strings skipped). Linear; never throws. */
export function jsonDepthWithin(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return false;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return true;
}

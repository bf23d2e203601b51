/**
 * parseAnnotations (shared/ops/sign.ts): the Sign page's "Annotations" field, `key=value` one per
 * line or separated by commas, as `cosign sign -a`. Node and Chromium.
 */
import { describe, expect, it } from 'vitest';
import { SignatureError } from '../../../../shared/errors.ts';
import { parseAnnotations } from '../../../../shared/ops/sign.ts';

describe('parseAnnotations', () => {
  it('reads lines and commas, trims, and keeps the last of a repeated key', () => {
    expect(parseAnnotations(' a = 1 \nb=2, c=x=y\n\n,a=3')).toEqual({ a: '3', b: '2', c: 'x=y' });
    expect(parseAnnotations('')).toEqual({});
  });

  it('refuses an item without a key', () => {
    for (const bad of ['novalue', '=x', 'a=1,b']) {
      expect(() => parseAnnotations(bad)).toThrow(SignatureError);
      expect(() => parseAnnotations(bad)).toThrow(/is not an annotation/);
      expect(() => parseAnnotations(bad)).toThrow(expect.objectContaining({ code: 'SIGNATURE_ANNOTATION_INVALID' }));
    }
  });

  it('keeps an annotation named "__proto__" as an annotation, not as the prototype', () => {
    const got = parseAnnotations('__proto__=x\nb=2');
    expect(Object.keys(got)).toEqual(['__proto__', 'b']);
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });
});

/**
 * The pages' one byte formatter (web/src/lib/bytes.ts): binary units at every size, a rate only
 * once it means something, never "0.0 MB".
 */
import { describe, expect, test } from 'vitest';
import { formatBytes, formatRate } from '../../../web/src/lib/bytes.ts';

describe('formatBytes', () => {
  test.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [3.4 * 1024, '3.4 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
    [1.2 * 1024 * 1024, '1.2 MiB'],
    [300 * 1024 * 1024, '300 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [-1, '0 B'],
    [Number.NaN, '0 B'],
  ])('%d bytes → %s', (n, words) => {
    expect(formatBytes(n)).toBe(words);
  });

  test('no size reads as decimal megabytes or as zero of a unit', () => {
    for (let n = 1; n < 2 ** 34; n = Math.ceil(n * 1.37)) {
      const words = formatBytes(n);
      expect(words).toMatch(/^(\d+ B|\d+(\.\d)? (KiB|MiB|GiB))$/);
      expect(words).not.toMatch(/^0(\.0)? /);
    }
  });
});

describe('formatRate', () => {
  test('12 MiB in a second is 12 MiB/s; under a second or a mebibyte there is no rate', () => {
    expect(formatRate(12 * 1024 * 1024, 1)).toBe('12.0 MiB/s');
    expect(formatRate(300 * 1024 * 1024, 2)).toBe('150 MiB/s');
    expect(formatRate(12 * 1024 * 1024, 0.5)).toBe('');
    expect(formatRate(1000, 10)).toBe('');
  });
});

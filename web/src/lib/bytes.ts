/**
 * Byte counts in words, the one formatter of the pages (Copy's progress and result, Verify file's
 * hashing): binary units throughout, so that a progress line reads "1.2 MiB of 3.4 MiB · 12 MiB/s"
 * and never mixes KiB with decimal megabytes, nor says "0.0 MB" of a small image.
 */

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/**
 * `512 B`, `3.4 KiB`, `12.3 MiB`, `300 MiB` (no decimal from 100 up), `1.5 GiB`.
 * Fractions of a byte (a rate) are rounded; a negative or non-finite count reads `0 B`.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '0 B';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": say "1.0 MiB" instead.
  if (value.toFixed(1) === '1024.0' && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 100 ? 0 : 1)} ${UNITS[unit]}`;
}

/**
 * A throughput, `12 MiB/s`, or '' while it means nothing: under a second or under a mebibyte
 * done, a rate is mostly start-up time.
 */
export function formatRate(bytesDone: number, seconds: number): string {
  if (seconds < 1 || bytesDone < 1024 * 1024) return '';
  return `${formatBytes(bytesDone / seconds)}/s`;
}

/**
 * Run counts for the property tests of parsers that take bytes from outside: the count a property
 * runs with in `npm test`, or FUZZ_RUNS when that is larger (`npm run fuzz` sets 10,000; see
 * test/fuzz/vitest.config.ts). In Chromium, where there is no process.env, always the everyday count.
 */
export function fuzzRuns(everyday: number): number {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const n = Number(env?.['FUZZ_RUNS']);
  return Number.isSafeInteger(n) && n > everyday ? n : everyday;
}

/**
 * Global set-up of `npm run fuzz`: a watchdog in Vitest's main process. A parser stuck in a
 * synchronous loop blocks its test worker, where no per-test timeout can fire; this timer lives in
 * the main process, so it still fires, names the bound, and ends the run with exit code 2.
 * FUZZ_WALL_MS sets the bound (default 30 minutes).
 */
const WALL_MS = Number(process.env['FUZZ_WALL_MS'] ?? 30 * 60_000);

export function setup(): () => void {
  const timer = setTimeout(() => {
    console.error(`npm run fuzz: still running after ${WALL_MS / 60_000} min (FUZZ_WALL_MS): a parser may hang.`);
    process.exit(2);
  }, WALL_MS);
  timer.unref();
  return () => clearTimeout(timer);
}

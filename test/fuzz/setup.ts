/**
 * Set-up file of `npm run fuzz` (test/fuzz/vitest.config.ts): every fast-check property gets a
 * time bound per run. A run that takes more than FUZZ_RUN_MS (default 2,000 ms) of this process's
 * CPU time fails the property with its input, as a crash would: an input that makes a parser slow
 * is a finding. CPU time, not wall time, so other work on the machine cannot fail a run.
 * Asynchronous runs are also cut off at five times that bound of wall time (fc.timeout), so an
 * awaited promise that never settles fails instead of hanging; a synchronous loop that never ends
 * is caught by watchdog.ts.
 */
import fc from 'fast-check';

const BOUND_MS = Number(process.env['FUZZ_RUN_MS'] ?? 2_000);

type RunOutput = fc.PreconditionFailure | fc.PropertyFailure | null;

function slow(ms: number): fc.PropertyFailure {
  return {
    error: new Error(`one run took ${Math.round(ms)} ms of CPU time, over the ${BOUND_MS} ms bound (FUZZ_RUN_MS)`),
  };
}

/** Milliseconds of CPU time (user and system) this process has used. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

fc.installGlobalPlugin(fc.timeout(5 * BOUND_MS));
fc.installGlobalPlugin(() => ({
  decorateRun:
    (nested: (value: unknown) => RunOutput | Promise<RunOutput>) =>
    (value: unknown): RunOutput | Promise<RunOutput> => {
      const t0 = cpuMs();
      const judge = (out: RunOutput): RunOutput => {
        const ms = cpuMs() - t0;
        return out === null && ms > BOUND_MS ? slow(ms) : out;
      };
      const out = nested(value);
      return out instanceof Promise ? out.then(judge) : judge(out);
    },
}));

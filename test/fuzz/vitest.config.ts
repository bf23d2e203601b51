/**
 * `npm run fuzz`: the property tests of every parser that takes bytes from outside, in Node, at
 * FUZZ_RUNS runs each (the script sets 10,000; fuzzRuns() in runs.ts), with a time bound per run
 * (setup.ts, FUZZ_RUN_MS) and a watchdog over the whole run (watchdog.ts, FUZZ_WALL_MS). Not part
 * of `npm test`, which runs the same properties at their everyday counts.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: [
      'test/unit/shared/fuzz.test.ts',
      'test/unit/server/fuzz.test.ts',
      'test/unit/shared/crypto/keys.test.ts',
      'test/unit/shared/encoding/encoding.test.ts',
      'test/unit/shared/cosign/file-link.test.ts',
      'test/unit/shared/cosign/payload-check.test.ts',
      'test/unit/shared/registry/auth.test.ts',
      'test/unit/shared/registry/reference.test.ts',
      'test/unit/shared/ops/tree.test.ts',
      'test/unit/shared/ops/containers-policy.test.ts',
      'test/unit/shared/sigstore/bundle.test.ts',
      'test/unit/shared/sigstore/certificate.test.ts',
      'test/unit/shared/sigstore/checkpoint.test.ts',
      'test/unit/shared/sigstore/keyless.test.ts',
      'test/unit/shared/sigstore/rekor-body.test.ts',
      'test/unit/shared/sigstore/sct.test.ts',
      'test/unit/shared/sigstore/services.test.ts',
      'test/unit/shared/sigstore/signing-config.test.ts',
      'test/unit/shared/sigstore/timestamp.test.ts',
      'test/unit/shared/sigstore/trusted-root.test.ts',
      'test/unit/shared/tuf/tuf.test.ts',
      'test/unit/server/pkcs11/uri.test.ts',
      'test/unit/server/relay/transfer-checked.test.ts',
    ],
    environment: 'node',
    pool: 'forks',
    setupFiles: ['test/fuzz/setup.ts'],
    globalSetup: ['test/fuzz/watchdog.ts'],
    // The whole file's properties at 10,000 runs each; the watchdog bounds the run as a whole.
    testTimeout: 20 * 60_000,
    hookTimeout: 120_000,
  },
});

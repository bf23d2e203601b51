// Vitest config for the test rig's own proof (test/rig/rig.test.ts), kept inside test/rig so the
// project's root config stays someone else's: `npx vitest run --config test/rig/vitest.config.ts`.
// The registries start once per run through registries.ts's global setup.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: {
    include: ['rig.test.ts'],
    globalSetup: ['./registries.ts'],
    environment: 'node',
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});

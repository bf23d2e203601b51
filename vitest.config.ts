/**
 * Vitest projects: `node` runs unit and integration tests in Node; `chromium` runs the same
 * shared/ unit tests inside Debian's Chromium, so the code that runs in the page is tested where
 * it runs.
 */
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/chromium.ts';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
          environment: 'node',
          // The real registries (test/rig/registries.ts), started once, handed over by inject().
          globalSetup: ['./test/rig/registries.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'chromium',
          include: ['test/unit/shared/**/*.test.ts'],
          exclude: ['**/*.node.test.ts'],
          testTimeout: 60_000,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});

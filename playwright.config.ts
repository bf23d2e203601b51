/**
 * End-to-end tests in Debian's Chromium against the built app served by the real server on
 * loopback (started by test/e2e/global-setup.ts after the real registries, so its relay can be
 * configured for them). Screenshots land in test-results/ as artifacts.
 */
import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/chromium.ts';

import { E2E_PORT } from './test/e2e/global-setup.ts';

export default defineConfig({
  testDir: 'test/e2e',
  globalSetup: './test/e2e/global-setup.ts',
  outputDir: 'test-results/e2e',
  timeout: 120_000,
  // Every expect waits this long unless it says otherwise: long enough for a loaded 2-core machine
  // (a test run beside other work), so that no assertion depends on the machine being idle. Waits
  // for long work (signing an index, scrypt, copying) give their own, longer limit.
  expect: { timeout: 30_000 },
  workers: 2,
  reporter: [['list']],
  use: {
    baseURL: `http://localhost:${E2E_PORT}`,
    browserName: 'chromium',
    launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
    acceptDownloads: true,
    trace: 'retain-on-failure',
  },
});

/**
 * How this project starts Debian's Chromium (/usr/bin/chromium) for Vitest's browser mode and for
 * Playwright: Playwright's own browser download cannot run here. The flags keep Chromium from
 * reaching for the network at start-up and let it run as root in CI.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

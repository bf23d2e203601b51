/**
 * Playwright global setup: starts the real distribution registries once for the run and hands
 * them to the tests through COSIGN_WEB_REGISTRIES (see test/rig/registries.ts).
 */
import { registriesInfo, startRegistries } from '../rig/registries.ts';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const regs = await startRegistries();
  process.env['COSIGN_WEB_REGISTRIES'] = JSON.stringify(registriesInfo(regs));
  return () => regs.stop();
}

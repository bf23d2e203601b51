/**
 * Playwright global setup: starts the real distribution registries, then the app's server (the
 * same command `npm start` runs, on E2E_PORT) with its relay allowed to reach exactly those
 * registries and trusting the rig's CA through NODE_EXTRA_CA_CERTS, as an operator would
 * configure it. Both are stopped at the end.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { registriesInfo, startRegistries } from '../rig/registries.ts';

export const E2E_PORT = Number(process.env.E2E_PORT ?? 8091);

async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const regs = await startRegistries();
  const info = registriesInfo(regs);
  process.env['COSIGN_WEB_REGISTRIES'] = JSON.stringify(info);
  const hosts = [
    info.tls.host,
    info.basic.host,
    ...(info.token ? [info.token.host, new URL(info.token.realm).host] : []),
  ];
  mkdirSync('test-results', { recursive: true });
  const log = openSync(`test-results/server-${E2E_PORT}.log`, 'w');
  const server = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: {
      ...process.env,
      PORT: String(E2E_PORT),
      HOST: '127.0.0.1',
      RELAY_ALLOWED_REGISTRIES: [...new Set(hosts)].join(','),
      RELAY_PLAIN_HTTP_REGISTRIES: info.basic.host,
      NODE_EXTRA_CA_CERTS: info.tls.caFile,
      // The embedded registry on any free port, its data in the rig's temp dir.
      EMBEDDED_REGISTRY_PORT: '0',
      REGISTRY_DATA: join(info.dir, 'embedded-registry'),
    },
    // One line per relayed request: kept in a file, where a failing test can be looked into.
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  try {
    await waitFor(`http://127.0.0.1:${E2E_PORT}/healthz`, 30_000);
  } catch (e) {
    server.kill('SIGKILL');
    await regs.stop();
    throw e;
  }
  return async () => {
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    await regs.stop();
  };
}

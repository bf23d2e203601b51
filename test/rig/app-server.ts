// The app's own server (`server/main.ts`, what `npm start` runs) started for one test file or
// bench section on a free loopback port, with the environment given (relay settings for the rig's
// services), an embedded registry of its own and no PKCS#11; its log kept in the folder given.
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './registries.ts';

export interface AppServer {
  /** `http://localhost:<port>`. */
  origin: string;
  stop(): Promise<void>;
}

/** Starts the server and waits until /healthz answers (60 s: a loaded 2-core machine). */
export async function startAppServer(dir: string, env: Record<string, string>): Promise<AppServer> {
  const port = await freePort();
  const log = openSync(join(dir, 'server.log'), 'w');
  const full: Record<string, string | undefined> = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    EMBEDDED_REGISTRY_PORT: '0',
    REGISTRY_DATA: join(dir, 'registry'),
    ...env,
  };
  for (const k of ['PKCS11_MODULE', 'PKCS11_API_TOKEN', 'PKCS11_PIN']) delete full[k];
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: full,
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the server exited (${child.exitCode}); see ${join(dir, 'server.log')}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the server did not answer within 60 s; see ${join(dir, 'server.log')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { origin: `http://localhost:${port}`, stop };
}

/**
 * The relay settings that let the page reach `services` (`http://127.0.0.1:<port>` URLs of Sigstore
 * services on loopback) and the rig's TLS registry.
 */
export function relayEnvFor(services: string[], tls: { host: string; caFile: string }): Record<string, string> {
  const hosts = services.map((u) => (u.includes('://') ? new URL(u).host : u)).join(',');
  return {
    RELAY_ALLOWED_REGISTRIES: tls.host,
    RELAY_PRIVATE_REGISTRIES: tls.host,
    RELAY_SIGSTORE_SERVICES: hosts,
    RELAY_PLAIN_HTTP_REGISTRIES: hosts,
    NODE_EXTRA_CA_CERTS: tls.caFile,
  };
}

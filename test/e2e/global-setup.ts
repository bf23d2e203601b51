/**
 * Playwright global setup: starts the real distribution registries, then the app's server (the
 * same command `npm start` runs, on E2E_PORT) with its relay allowed to reach exactly those
 * registries and trusting the rig's CA through NODE_EXTRA_CA_CERTS, as an operator would
 * configure it. The server also gets a SoftHSM token for its PKCS#11 endpoint (PKCS11_MODULE,
 * PKCS11_API_TOKEN, no PKCS11_PIN); the specs read the token's details from COSIGN_WEB_PKCS11
 * (`{apiToken, pin, tokenLabel, keys: [{label, algorithm, uri, publicKeyPem}]}`). All are stopped
 * at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { formatPkcs11Uri } from '../../server/pkcs11/uri.ts';
import { registriesInfo, startRegistries } from '../rig/registries.ts';
import { waitForOk } from '../rig/relays.ts';
import { createSoftHsmToken } from '../rig/softhsm.ts';

export const E2E_PORT = Number(process.env.E2E_PORT ?? 8091);

/** Waits until `url` answers 2xx (test/rig/relays.ts waitForOk); throws after `ms`. */
export const waitFor = waitForOk;

export default async function globalSetup(): Promise<() => Promise<void>> {
  const regs = await startRegistries();
  const info = registriesInfo(regs);
  process.env['COSIGN_WEB_REGISTRIES'] = JSON.stringify(info);
  const hosts = [
    info.tls.host,
    info.basic.host,
    ...(info.token ? [info.token.host, new URL(info.token.realm).host] : []),
  ];
  // A SoftHSM token for the PKCS#11 endpoint; no PKCS11_PIN, so the page asks for the token PIN.
  const hsm = await createSoftHsmToken({
    tokenLabel: 'cosign-web e2e',
    pin: '1234',
    keys: [
      { label: 'cosign-web e2e p256', id: '01', type: 'EC:prime256v1' },
      { label: 'cosign-web e2e rsa', id: '02', type: 'rsa:2048' },
    ],
  }).catch(async (e: unknown) => {
    await regs.stop();
    throw e;
  });
  const pkcs11ApiToken = randomBytes(24).toString('hex');
  process.env['COSIGN_WEB_PKCS11'] = JSON.stringify({
    apiToken: pkcs11ApiToken,
    pin: hsm.pin,
    tokenLabel: hsm.tokenLabel,
    keys: hsm.keys.map((k) => ({
      label: k.label,
      algorithm: k.algorithm,
      uri: formatPkcs11Uri({
        token: hsm.tokenLabel,
        manufacturer: hsm.manufacturer,
        serial: hsm.serial,
        model: hsm.model,
        object: k.label,
        id: Buffer.from(k.id, 'hex'),
        type: 'private',
      }),
      publicKeyPem: k.publicKeyPem,
    })),
  });
  mkdirSync('test-results', { recursive: true });
  const log = openSync(`test-results/server-${E2E_PORT}.log`, 'w');
  const server = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env: {
      ...process.env,
      PORT: String(E2E_PORT),
      HOST: '127.0.0.1',
      RELAY_ALLOWED_REGISTRIES: [...new Set(hosts)].join(','),
      // The rig's registries listen on loopback: they must be opted in to non-public addresses.
      RELAY_PRIVATE_REGISTRIES: [...new Set(hosts)].join(','),
      RELAY_PLAIN_HTTP_REGISTRIES: info.basic.host,
      NODE_EXTRA_CA_CERTS: info.tls.caFile,
      // The embedded registry on any free port, its data in the rig's temp dir.
      EMBEDDED_REGISTRY_PORT: '0',
      REGISTRY_DATA: join(info.dir, 'embedded-registry'),
      PKCS11_MODULE: hsm.module,
      PKCS11_API_TOKEN: pkcs11ApiToken,
      SOFTHSM2_CONF: hsm.conf,
      PKCS11_PIN: undefined,
      // A back-off long enough that the right PIN sent after three wrong ones still meets it on a
      // loaded machine (with the default 2 s, a slow round of the page outlasted it).
      PKCS11_BACKOFF_MS: '10000',
    },
    // One line per relayed request: kept in a file, where a failing test can be looked into.
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  // For the bench, which reads the server's CPU time from /proc.
  process.env.E2E_SERVER_PID = String(server.pid);
  try {
    await waitFor(`http://127.0.0.1:${E2E_PORT}/healthz`, 30_000);
  } catch (e) {
    server.kill('SIGKILL');
    await regs.stop();
    await hsm.cleanup();
    throw e;
  }
  return async () => {
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    await regs.stop();
    await hsm.cleanup();
  };
}

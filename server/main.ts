/**
 * Starts the server: `PORT` (default 8080) on `HOST` (default 127.0.0.1, loopback only), serving
 * dist/ and the registry relay, whose RELAY_* settings come from the environment (see
 * server/relay/config.ts). Prints the URL with `localhost`, because WebAuthn (passkeys) refuses
 * IP-address origins.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RelayError } from '../shared/errors.ts';
import { createApp } from './app.ts';
import { describeRelayConfig, relayOptionsFromEnv, type RelayOptions } from './relay/config.ts';
import { serveApp } from './serve.ts';

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
const staticRoot = fileURLToPath(new URL('../dist', import.meta.url));

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}".`);
  process.exit(2);
}
if (!existsSync(`${staticRoot}/index.html`)) {
  console.error('dist/index.html is missing: run "npm run build" first (npm start does it for you).');
  process.exit(2);
}

let relay: RelayOptions;
try {
  relay = relayOptionsFromEnv(process.env);
} catch (e) {
  if (!(e instanceof RelayError)) throw e;
  console.error(e.message);
  process.exit(2);
}

const app = createApp({ staticRoot, relay });
const { server, port: listening } = await serveApp(app, { port, hostname: host }).catch((e: Error) => {
  console.error(`could not listen on ${host}:${port}: ${e.message}`);
  process.exit(2);
});
const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
const shown = loopback || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
console.log(`cosign-web listening on ${host}:${listening}`);
console.log(describeRelayConfig(relay));
console.log(`http://${shown}:${listening}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

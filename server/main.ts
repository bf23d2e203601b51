/**
 * Starts the server: `PORT` (default 8080) on `HOST` (default 127.0.0.1, loopback only), serving
 * dist/ and the registry relay, whose RELAY_* settings come from the environment (see
 * server/relay/config.ts), and the embedded registry (EMBEDDED_REGISTRY=off to leave it out;
 * EMBEDDED_REGISTRY_PORT, default 5001, 0 for any free port; REGISTRY_DATA, default .data/registry;
 * REGISTRY_MAX_UPLOAD_BYTES, default 2 GiB; REGISTRY_MAX_BYTES, the disk quota, default none;
 * EMBEDDED_REGISTRY_TOKEN or EMBEDDED_REGISTRY_TOKEN_FILE, required when HOST is beyond loopback), the Sigstore TUF repository the page keeps its trusted
 * root fresh from (SIGSTORE_TUF_URL, SIGSTORE_TUF_TARGETS_URL, SIGSTORE_TUF_ROOT; see
 * server/relay/config.ts)
 * seeded with the sample images, and, when PKCS11_MODULE names a PKCS#11 module (absolute path), the
 * /pkcs11 endpoint (PKCS11_API_TOKEN or PKCS11_API_TOKEN_FILE required, PKCS11_PIN or PKCS11_PIN_FILE
 * optional; see server/pkcs11/routes.ts and secrets.ts).
 * Operations: RELAY_LOCKS_URL (tag locks in Redis), METRICS_ALLOW (who reads /metrics),
 * LOG_FORMAT (text or json), SHUTDOWN_DRAIN_MS (how long SIGTERM waits for requests in flight).
 * Both servers answer only to the loopback names, HOST and the hosts of PUBLIC_ORIGINS (the
 * origins the page is served as; server/site.ts). Prints the URL with `localhost`, because WebAuthn (passkeys) refuses
 * IP-address origins.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { isAbsolute } from 'node:path';
import { CosignWebError, Pkcs11Error, RelayError } from '../shared/errors.ts';
import { createApp } from './app.ts';
import { DEFAULT_MAX_HOLD_MS, DEFAULT_WAIT_MS } from './locks.ts';
import type { Pkcs11Options } from './pkcs11/routes.ts';
import { DEFAULT_BACKOFF_MS } from './pkcs11/backoff.ts';
import { readPkcs11Secrets, readSecret, scrubEnvironment, SecretsError, SECRET_VARIABLES } from './secrets.ts';
import {
  describeRelayConfig,
  describeTufHosts,
  relayOptionsFromEnv,
  tufRepositoryFromEnv,
  type RelayOptions,
} from './relay/config.ts';
import { serveApp } from './serve.ts';
import { isLoopbackHost, MIN_TOKEN_LENGTH, tokenProblem } from './registry/auth.ts';
import { parsePublicOrigins, Site } from './site.ts';
import { createEmbeddedRegistry } from './registry/registry.ts';
import { SAMPLE_REPOSITORY, SAMPLE_TAG, seedSampleImages } from './registry/sample.ts';
import { Metrics, parseMetricsAllow, relayRecordJson, useJsonLogs } from './observe.ts';
import { drainMsFromEnv, gracefulShutdown, msFromEnv } from './shutdown.ts';
import type { RedisLocks } from './locks-redis.ts';

// LOG_FORMAT=json: every line from here on is one JSON object (server/observe.ts).
const logFormat = process.env.LOG_FORMAT ?? '';
if (logFormat === 'json') useJsonLogs();
else if (logFormat !== '' && logFormat !== 'text') {
  console.error(`LOG_FORMAT must be "text" or "json", not "${logFormat}".`);
  process.exit(2);
}

// The secrets (PKCS#11's, the embedded registry's token) are read once (from their _FILE forms or
// the variables) and taken out of the environment before anything else runs, so no child process
// (a PKCS#11 module's helper, a tool run later) inherits them, and wiped from /proc/<pid>/environ
// (server/secrets.ts).
let pkcs11Secrets: ReturnType<typeof readPkcs11Secrets>;
let registryToken: string;
try {
  pkcs11Secrets = readPkcs11Secrets(process.env);
  registryToken = readSecret(process.env, 'EMBEDDED_REGISTRY_TOKEN') ?? '';
} catch (e) {
  if (!(e instanceof SecretsError)) throw e;
  console.error(e.message);
  process.exit(2);
}
const secretsInEnvironment = SECRET_VARIABLES.filter((n) => (process.env[n] ?? '') !== '');
if (!scrubEnvironment() && secretsInEnvironment.length > 0) {
  console.error(
    `${secretsInEnvironment.join(' and ')} could not be wiped from /proc/${process.pid}/environ; ` +
      `use ${secretsInEnvironment.map((n) => `${n}_FILE`).join(' and ')} instead.`,
  );
}

const port = Number(process.env.PORT ?? 8080);
const host = process.env.HOST ?? '127.0.0.1';
// STATIC_ROOT: another build of the page (e.g. `vite build --outDir …`), default dist/.
const staticRoot = process.env.STATIC_ROOT ?? fileURLToPath(new URL('../dist', import.meta.url));

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, not "${process.env.PORT}".`);
  process.exit(2);
}
if (!existsSync(`${staticRoot}/index.html`)) {
  console.error(`${staticRoot}/index.html is missing: run "npm run build" first (npm start does it for you).`);
  process.exit(2);
}

// The host names and page origins the app and the embedded registry answer to (server/site.ts):
// loopback names and HOST on the listening port, plus PUBLIC_ORIGINS (behind a proxy, say).
let site: Site;
try {
  site = new Site({ publicOrigins: parsePublicOrigins(process.env.PUBLIC_ORIGINS), listenHost: host });
} catch (e) {
  if (!(e instanceof CosignWebError)) throw e;
  console.error(e.message);
  process.exit(2);
}

let relay: RelayOptions;
let tufRepository: ReturnType<typeof tufRepositoryFromEnv>;
try {
  relay = relayOptionsFromEnv(process.env);
  tufRepository = tufRepositoryFromEnv(process.env);
} catch (e) {
  if (!(e instanceof RelayError)) throw e;
  console.error(e.message);
  process.exit(2);
}
// SIGSTORE_TUF_ROOT: the root.json the page trusts first for SIGSTORE_TUF_URL's repository (a
// repository that is not a mirror of Sigstore's has its own); default: the Sigstore one it ships.
let sigstoreTuf: { metadataUrl: string; targetsUrl: string; rootJson?: string } | undefined;
if (tufRepository) {
  sigstoreTuf = { ...tufRepository };
  const rootPath = process.env.SIGSTORE_TUF_ROOT ?? '';
  if (rootPath !== '') {
    try {
      sigstoreTuf.rootJson = readFileSync(rootPath, 'utf8');
    } catch (e) {
      console.error(`SIGSTORE_TUF_ROOT names ${rootPath}, which could not be read: ${(e as Error).message}`);
      process.exit(2);
    }
  }
} else if ((process.env.SIGSTORE_TUF_ROOT ?? '') !== '') {
  console.error('SIGSTORE_TUF_ROOT is set, so SIGSTORE_TUF_URL must name the repository it anchors.');
  process.exit(2);
}

/** A byte count from the environment, or `fallback`; exits with a sentence when it is not one. */
function bytesFromEnv(name: string, fallback: number): number {
  const text = process.env[name] ?? '';
  const n = text === '' ? fallback : Number(text);
  if (n !== Infinity && (!Number.isSafeInteger(n) || n < 1)) {
    console.error(`${name} must be a number of bytes, not "${text}".`);
    process.exit(2);
  }
  return n;
}

// The embedded registry (on unless EMBEDDED_REGISTRY=off): always on loopback, whatever HOST is;
// the relay may reach it, over plain http. With HOST beyond loopback the relay would open it to
// anyone who reaches the page, so it then needs EMBEDDED_REGISTRY_TOKEN, which every request
// (the relay's too: the page's user gives it as the registry password) must carry.
let sampleImage: string | undefined;
let registryServer: { close(cb: () => void): unknown } | undefined;
if ((process.env.EMBEDDED_REGISTRY ?? 'on') !== 'off') {
  const problem = registryToken === '' ? undefined : tokenProblem('EMBEDDED_REGISTRY_TOKEN', registryToken);
  if (problem !== undefined) {
    console.error(problem);
    process.exit(2);
  }
  if (registryToken === '' && !isLoopbackHost(host)) {
    console.error(
      `HOST is ${host}, beyond loopback, so through the relay anyone who reaches the page could read, push and delete in the embedded registry: set EMBEDDED_REGISTRY_TOKEN (a secret of at least 16 printable characters, asked of every client as its registry password), or EMBEDDED_REGISTRY=off.`,
    );
    process.exit(2);
  }
  const registryPort = Number(process.env.EMBEDDED_REGISTRY_PORT ?? 5001);
  const dataDir = process.env.REGISTRY_DATA ?? fileURLToPath(new URL('../.data/registry', import.meta.url));
  const maxUpload = bytesFromEnv('REGISTRY_MAX_UPLOAD_BYTES', 2 * 1024 ** 3);
  const maxBytes = bytesFromEnv('REGISTRY_MAX_BYTES', Infinity);
  const embedded = createEmbeddedRegistry({
    dataDir,
    maxUploadBytes: maxUpload,
    limits: { maxBytes },
    log: (line) => console.log(`embedded registry ${line}`),
    site,
    ...(registryToken !== '' ? { token: registryToken } : {}),
  });
  await seedSampleImages(embedded.app, registryToken);
  const served = await serveApp(embedded.app, { port: registryPort, hostname: '127.0.0.1' }).catch((e: Error) => {
    console.error(
      `could not start the embedded registry on 127.0.0.1:${registryPort}: ${e.message} (set EMBEDDED_REGISTRY_PORT, or EMBEDDED_REGISTRY=off)`,
    );
    process.exit(2);
  });
  registryServer = served.server;
  const registryHost = `127.0.0.1:${served.port}`;
  // Also as localhost (the README's name for it): the relay maps it to 127.0.0.1, loopback only.
  relay = { ...relay, localRegistries: [registryHost, `localhost:${served.port}`] };
  sampleImage = `${registryHost}/${SAMPLE_REPOSITORY}:${SAMPLE_TAG}`;
  console.log(
    `embedded registry on ${registryHost} (data in ${dataDir}${maxBytes === Infinity ? '' : `, quota ${maxBytes} bytes`}${registryToken !== '' ? ', EMBEDDED_REGISTRY_TOKEN required' : ''}), sample image ${sampleImage}`,
  );
}

// The PKCS#11 endpoint, only when PKCS11_MODULE names a module (server/pkcs11/). A module that
// fails to load does not stop the server: the reason is logged and /pkcs11/* answers 502.
let pkcs11: Pkcs11Options | undefined;
const pkcs11Module = process.env.PKCS11_MODULE ?? '';
if (pkcs11Module !== '') {
  const { apiToken } = pkcs11Secrets;
  if (!isAbsolute(pkcs11Module)) {
    console.error(`PKCS11_MODULE must be an absolute path to a PKCS#11 module, not "${pkcs11Module}".`);
    process.exit(2);
  }
  if (tokenProblem('PKCS11_API_TOKEN', apiToken) !== undefined) {
    console.error(
      `PKCS11_MODULE is set, so PKCS11_API_TOKEN must be too (or PKCS11_API_TOKEN_FILE): a secret of at least ${MIN_TOKEN_LENGTH} printable characters without spaces that every /pkcs11 request carries as "Authorization: Bearer <token>".`,
    );
    process.exit(2);
  }
  const { loadPkcs11Module } = await import('./pkcs11/module.ts');
  const provider = await loadPkcs11Module(pkcs11Module).catch((e: unknown) => {
    if (!(e instanceof Pkcs11Error)) throw e;
    // The reason (path, loader text) is logged here once; clients only ever see e.message.
    const why = e.cause instanceof Error ? e.cause.message : e.message;
    console.error(`pkcs11: ${why} /pkcs11/* will answer 502 PKCS11_MODULE_FAILED.`);
    return e;
  });
  const { pin } = pkcs11Secrets;
  let backoffMs: number;
  try {
    backoffMs = msFromEnv('PKCS11_BACKOFF_MS', process.env.PKCS11_BACKOFF_MS, DEFAULT_BACKOFF_MS);
    if (backoffMs < 1000) throw new Error(`PKCS11_BACKOFF_MS must be at least 1000 (a second), not "${backoffMs}".`);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  pkcs11 = {
    provider,
    apiToken,
    backoff: { baseMs: backoffMs },
    ...(pin !== undefined && pin !== '' ? { pin } : {}),
  };
  if (!(provider instanceof Pkcs11Error)) {
    console.log(
      `pkcs11: module ${pkcs11Module} loaded; token PIN ${pkcs11.pin ? 'kept by the server' : 'asked by the page'}`,
    );
  }
}

// Operations (README, "Operations"): /metrics and who may read it, tag locks in Redis, drain time.
const metrics = new Metrics();
let metricsAllowed: (address: string) => boolean;
let drainMs: number;
let lockLimits: { maxHoldMs: number; waitMs: number };
try {
  metricsAllowed = parseMetricsAllow(process.env.METRICS_ALLOW);
  drainMs = drainMsFromEnv(process.env.SHUTDOWN_DRAIN_MS);
  lockLimits = {
    maxHoldMs: msFromEnv('RELAY_LOCK_MAX_HOLD_MS', process.env.RELAY_LOCK_MAX_HOLD_MS, DEFAULT_MAX_HOLD_MS),
    waitMs: msFromEnv('RELAY_LOCK_WAIT_MS', process.env.RELAY_LOCK_WAIT_MS, DEFAULT_WAIT_MS),
  };
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const json = logFormat === 'json';
relay = {
  ...relay,
  ...(json ? { log: () => undefined } : {}),
  observe: (r) => {
    metrics.relayed(r);
    if (json) process.stdout.write(`${relayRecordJson(r)}\n`);
  },
};
if (pkcs11) {
  pkcs11.log = (line) => {
    metrics.pkcs11Audit(line);
    console.log(line);
  };
}
let locks: RedisLocks | undefined;
const locksUrl = process.env.RELAY_LOCKS_URL ?? '';
if (locksUrl !== '') {
  if (!/^rediss?:\/\//.test(locksUrl)) {
    console.error('RELAY_LOCKS_URL must be a redis:// or rediss:// URL.');
    process.exit(2);
  }
  const { RedisLocks } = await import('./locks-redis.ts');
  locks = new RedisLocks({ url: locksUrl });
  await locks.ping().then(
    () => console.log(`tag locks in Redis at ${new URL(locksUrl).host}`),
    () => console.error(`tag locks in Redis at ${new URL(locksUrl).host}, which does not answer yet (/readyz says so)`),
  );
}
let draining = (): boolean => false;
const pkcs11Provider = pkcs11 && !(pkcs11.provider instanceof Pkcs11Error) ? pkcs11.provider : undefined;

/** Why this server should get no traffic now, or undefined: draining, Redis or the PKCS#11 module silent. */
async function notReady(): Promise<string | undefined> {
  if (draining()) return 'The server is shutting down.';
  if (locks) {
    const down = await locks.ping().then(
      () => undefined,
      () => 'The tag-lock store (Redis) does not answer.',
    );
    if (down) return down;
  }
  if (pkcs11 && !pkcs11Provider) return 'The PKCS#11 module could not be loaded.';
  if (pkcs11Provider) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answered = await Promise.race([
      pkcs11Provider.listKeys().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000))),
    ]);
    clearTimeout(timer);
    if (!answered) return 'The PKCS#11 module does not answer.';
  }
  return undefined;
}

const app = createApp({
  staticRoot,
  relay,
  ...(sampleImage ? { sampleImage } : {}),
  ...(pkcs11 ? { pkcs11 } : {}),
  ...(sigstoreTuf ? { sigstoreTuf } : {}),
  site,
  operations: { metrics, metricsAllowed, notReady, lockLimits, ...(locks ? { locks } : {}) },
});
const { server, port: listening } = await serveApp(app, { port, hostname: host }).catch((e: Error) => {
  console.error(`could not listen on ${host}:${port}: ${e.message}`);
  process.exit(2);
});
site.listening(listening);
const loopback = isLoopbackHost(host);
const shown = loopback || host === '0.0.0.0' || host === '::' ? 'localhost' : host;
console.log(`cosign-web listening on ${host}:${listening}`);
console.log(describeRelayConfig(relay));
console.log(describeTufHosts(relay));
console.log(`answers to the page origins ${site.origins.join(', ')}; other host names get 421`);
console.log(`http://${shown}:${listening}`);

// SIGTERM/SIGINT: stop accepting, let the requests in flight finish (SHUTDOWN_DRAIN_MS), release
// the tag locks, exit; a second signal exits at once (server/shutdown.ts).
({ draining } = gracefulShutdown({
  server: server as HttpServer,
  drainMs,
  log: (line) => console.log(line),
  cleanup: async () => {
    registryServer?.close(() => undefined);
    await locks?.releaseAll(lockLimits.maxHoldMs);
    await locks?.close();
    pkcs11Provider?.close();
  },
}));

// Starts and stops real CNCF distribution 2.8 registries (/usr/bin/docker-registry, installed by
// test/rig/install.sh) on loopback for the tests: one behind TLS with a throwaway CA, one on plain
// HTTP with htpasswd (bcrypt) basic auth, and one behind TLS with token auth served by a small
// token server written here. Ports are picked free at run time; data lives in a temp dir that
// stop() removes. Every registry is killed on stop(), on process exit, and (through a stdin
// watchdog) when this process dies without running its handlers.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as signData,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runOk } from './tools.ts';

export interface TlsRegistry {
  /** "localhost:PORT"; the server certificate names localhost and 127.0.0.1. */
  host: string;
  /** PEM of the throwaway CA that signed the server certificate. */
  caFile: string;
}

export interface BasicRegistry {
  /** "127.0.0.1:PORT", plain HTTP. */
  host: string;
  username: string;
  password: string;
}

export interface TokenRegistry {
  /** "localhost:PORT", TLS (same CA as the TLS registry). */
  host: string;
  caFile: string;
  username: string;
  password: string;
  /** The token endpoint (Bearer realm), served over TLS with the same CA. */
  realm: string;
  service: string;
  issuer: string;
}

/** What tests may receive (e.g. through Vitest's provide/inject): plain JSON, no functions. */
export interface RegistriesInfo {
  tls: TlsRegistry;
  basic: BasicRegistry;
  token?: TokenRegistry;
  /** The temp dir holding the CA, configs, logs and registry data. */
  dir: string;
}

export interface Registries extends RegistriesInfo {
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Also start the token-auth registry and its token server (default true). */
  token?: boolean;
  /** Basic-auth credentials (default: a fixed user and a random password). */
  username?: string;
  password?: string;
  /** How long to wait for each registry to answer /v2/ (default 20 s). */
  readyTimeoutMs?: number;
}

const LOOPBACK = '127.0.0.1';
const TOKEN_SERVICE = 'cosign-web-test-registry';
const TOKEN_ISSUER = 'cosign-web-test-token-issuer';

// ---------------------------------------------------------------------------------------------
// Process bookkeeping: every registry runs in its own process group under a small sh watchdog
// that kills the registry when its stdin (a pipe from this process) closes, i.e. on stop() or
// when this process dies in any way.
// ---------------------------------------------------------------------------------------------
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) killGroup(c, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      for (const c of live) killGroup(c, 'SIGKILL');
      live.clear();
      process.off(sig, onSignal);
      // Keep the default behaviour (die by the signal) unless someone else handles it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

// sh gives background jobs /dev/null as stdin unless redirected explicitly: hence fd 3.
// $1 is the log file, the rest the command to run.
const WATCHDOG = [
  'exec 3<&0',
  'log=$1',
  'shift',
  '"$@" </dev/null >>"$log" 2>&1 &',
  'pid=$!',
  '(while read -r _; do :; done; kill "$pid" 2>/dev/null) <&3 &',
  'exec 3<&-',
  'wait "$pid"',
].join('\n');

async function spawnRegistry(config: string, logFile: string): Promise<ChildProcess> {
  return spawnWatched(['/usr/bin/docker-registry', 'serve', config], logFile);
}

/**
 * Runs `argv` (appending its output to `logFile`) in its own process group under the stdin
 * watchdog: stopChild() ends it, and so does this process dying in any way.
 */
export function spawnWatched(argv: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  installExitHook();
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'rig-watchdog', logFile, ...argv], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
    ...(env ? { env } : {}),
  });
  child.stdin?.on('error', () => {
    /* watchdog already gone */
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  // Do not let the registry keep this process alive by itself.
  child.unref();
  return child;
}

/** Stops a child of spawnWatched: closes its watchdog's stdin, then SIGTERM and SIGKILL to its group. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    killGroup(child, 'SIGKILL');
    live.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Closing stdin makes the watchdog stop the registry and the sh reap it (no zombie left);
  // SIGTERM and then SIGKILL to the whole group if that does not happen in time.
  child.stdin?.end();
  const term = setTimeout(() => killGroup(child, 'SIGTERM'), 3_000);
  const kill = setTimeout(() => killGroup(child, 'SIGKILL'), 6_000);
  await exited;
  clearTimeout(term);
  clearTimeout(kill);
  killGroup(child, 'SIGKILL');
  live.delete(child);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port'));
        return;
      }
      const { port } = addr;
      srv.close(() => resolve(port));
    });
  });
}

/** GET a URL on loopback (http or https with a CA), returning status and body. */
export function loopbackGet(
  url: string,
  opts: { ca?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const u = new URL(url);
  if (u.hostname !== 'localhost' && u.hostname !== LOOPBACK) {
    return Promise.reject(new Error(`refusing non-loopback URL ${url}`));
  }
  return new Promise((resolve, reject) => {
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      { method: 'GET', headers: opts.headers, ca: opts.ca, timeout: opts.timeoutMs ?? 5_000, family: 4 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

async function waitForV2(
  url: string,
  child: ChildProcess,
  logFile: string,
  okStatuses: readonly number[],
  ca: string | undefined,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const r = await loopbackGet(url, ca === undefined ? { timeoutMs: 2_000 } : { ca, timeoutMs: 2_000 });
      if (okStatuses.includes(r.status)) return;
      last = `status ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let log = '';
  try {
    log = (await readFile(logFile, 'utf8')).split('\n').slice(-30).join('\n');
  } catch {
    /* no log */
  }
  throw new Error(`registry at ${url} did not become ready (${last}); log:\n${log}`);
}

function registryConfig(o: {
  port: number;
  dataDir: string;
  tls?: { cert: string; key: string };
  auth?: string;
}): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(o.dataDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${LOOPBACK}:${o.port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (o.tls !== undefined) {
    lines.push('  tls:', `    certificate: ${JSON.stringify(o.tls.cert)}`, `    key: ${JSON.stringify(o.tls.key)}`);
  }
  if (o.auth !== undefined) lines.push(o.auth);
  return `${lines.join('\n')}\n`;
}

/** Starts one registry on a fresh port, retrying if the port was taken in between. */
async function startOne(
  dir: string,
  name: string,
  make: (port: number) => string,
  scheme: 'http' | 'https',
  ca: string | undefined,
  timeoutMs: number,
): Promise<{ port: number; child: ChildProcess }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const config = join(dir, `${name}.yml`);
    const logFile = join(dir, `${name}.log`);
    await writeFile(config, make(port));
    const child = await spawnRegistry(config, logFile);
    try {
      // 200 without auth, 401 with auth: either means the registry serves the API.
      await waitForV2(`${scheme}://${LOOPBACK}:${port}/v2/`, child, logFile, [200, 401], ca, timeoutMs);
      return { port, child };
    } catch (e) {
      lastErr = e;
      await stopChild(child);
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

// ---------------------------------------------------------------------------------------------
// Certificates (openssl) and htpasswd
// ---------------------------------------------------------------------------------------------
interface Pki {
  caFile: string;
  serverCert: string;
  serverKey: string;
  tokenCert: string;
  tokenKey: string;
}

async function makePki(dir: string): Promise<Pki> {
  const p = (f: string): string => join(dir, f);
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.crt'),
    '-days',
    '3',
    '-subj',
    '/CN=cosign-web throwaway test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await runOk('openssl', [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    p('server.key'),
    '-out',
    p('server.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  await writeFile(
    p('server.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '',
    ].join('\n'),
  );
  await runOk('openssl', [
    'x509',
    '-req',
    '-in',
    p('server.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('server.crt'),
    '-days',
    '3',
    '-extfile',
    p('server.ext'),
  ]);
  // The token signer: a self-signed P-256 certificate, the registry's rootcertbundle.
  await runOk('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    p('token.key'),
    '-out',
    p('token.crt'),
    '-days',
    '3',
    '-subj',
    '/CN=cosign-web test token signer',
  ]);
  return {
    caFile: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    tokenCert: p('token.crt'),
    tokenKey: p('token.key'),
  };
}

async function makeHtpasswd(file: string, username: string, password: string): Promise<void> {
  // -B bcrypt (distribution only accepts bcrypt), -b password from argv, -n print.
  const r = await runOk('htpasswd', ['-Bbn', username, password]);
  await writeFile(file, `${r.stdout.trim()}\n`);
}

// ---------------------------------------------------------------------------------------------
// Token server (Docker registry token auth, as distribution 2.8's auth/token expects)
// ---------------------------------------------------------------------------------------------

/**
 * libtrust's key ID, which distribution 2.8 uses to match a JWT's `kid` with a key from its
 * rootcertbundle: SHA-256 of the SPKI DER, first 240 bits, base32 without padding, in 12 groups
 * of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const sum = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of sum) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  const groups: string[] = [];
  for (let i = 0; i < out.length; i += 4) groups.push(out.slice(i, i + 4));
  return groups.join(':');
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/** Parses `scope` query values like "repository:foo/bar:pull,push". */
function parseScopes(scopes: readonly string[]): Access[] {
  const out: Access[] = [];
  for (const s of scopes) {
    for (const one of s.split(' ')) {
      const first = one.indexOf(':');
      const last = one.lastIndexOf(':');
      if (first < 0 || last <= first) continue;
      out.push({
        type: one.slice(0, first),
        name: one.slice(first + 1, last),
        actions: one
          .slice(last + 1)
          .split(',')
          .filter((a) => a !== ''),
      });
    }
  }
  return out;
}

function makeJwt(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = signData('sha256', Buffer.from(`${header}.${body}`), { key, dsaEncoding: 'ieee-p1363' });
  return `${header}.${body}.${b64url(sig)}`;
}

async function startTokenServer(o: {
  pki: Pki;
  username: string;
  password: string;
}): Promise<{ server: https.Server; realm: string }> {
  const key = createPrivateKey(readFileSync(o.pki.tokenKey));
  const kid = libtrustKeyId(createPublicKey(readFileSync(o.pki.tokenCert)));
  const expected = `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}`;
  const server = https.createServer(
    { cert: readFileSync(o.pki.serverCert), key: readFileSync(o.pki.serverKey) },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'https://localhost');
      if (req.method !== 'GET' || url.pathname !== '/token') {
        res.writeHead(404).end();
        return;
      }
      const authed = req.headers.authorization === expected;
      if (req.headers.authorization !== undefined && !authed) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      // Authenticated users get what they ask for; anonymous users get a token with no access.
      const access = authed ? parseScopes(url.searchParams.getAll('scope')) : [];
      const now = Math.floor(Date.now() / 1000);
      const token = makeJwt(key, kid, {
        iss: TOKEN_ISSUER,
        sub: authed ? o.username : '',
        aud: url.searchParams.get('service') ?? TOKEN_SERVICE,
        exp: now + 600,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(12).toString('hex'),
        access,
      });
      const body = JSON.stringify({
        token,
        access_token: token,
        expires_in: 600,
        issued_at: new Date(now * 1000).toISOString(),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve());
  });
  server.unref();
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('token server has no port');
  return { server, realm: `https://localhost:${addr.port}/token` };
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------
export async function startRegistries(opts: StartOptions = {}): Promise<Registries> {
  const dir = await mkdtemp(join(tmpdir(), 'cosign-web-registries-'));
  const children: ChildProcess[] = [];
  let tokenServer: https.Server | undefined;
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const username = opts.username ?? 'rig-user';
  const password = opts.password ?? `pw-${randomBytes(9).toString('base64url')}`;

  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => stopChild(c)));
    if (tokenServer !== undefined) {
      const s = tokenServer;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const pki = await makePki(dir);
    const ca = await readFile(pki.caFile, 'utf8');
    const htpasswd = join(dir, 'htpasswd');
    await makeHtpasswd(htpasswd, username, password);

    const tls = await startOne(
      dir,
      'tls',
      (port) =>
        registryConfig({ port, dataDir: join(dir, 'data-tls'), tls: { cert: pki.serverCert, key: pki.serverKey } }),
      'https',
      ca,
      timeoutMs,
    );
    children.push(tls.child);

    const basic = await startOne(
      dir,
      'basic',
      (port) =>
        registryConfig({
          port,
          dataDir: join(dir, 'data-basic'),
          auth: ['auth:', '  htpasswd:', '    realm: cosign-web-basic', `    path: ${JSON.stringify(htpasswd)}`].join(
            '\n',
          ),
        }),
      'http',
      undefined,
      timeoutMs,
    );
    children.push(basic.child);

    const info: RegistriesInfo = {
      dir,
      tls: { host: `localhost:${tls.port}`, caFile: pki.caFile },
      basic: { host: `${LOOPBACK}:${basic.port}`, username, password },
    };

    if (opts.token ?? true) {
      const ts = await startTokenServer({ pki, username, password });
      tokenServer = ts.server;
      const token = await startOne(
        dir,
        'token',
        (port) =>
          registryConfig({
            port,
            dataDir: join(dir, 'data-token'),
            tls: { cert: pki.serverCert, key: pki.serverKey },
            auth: [
              'auth:',
              '  token:',
              `    realm: ${JSON.stringify(ts.realm)}`,
              `    service: ${TOKEN_SERVICE}`,
              `    issuer: ${TOKEN_ISSUER}`,
              `    rootcertbundle: ${JSON.stringify(pki.tokenCert)}`,
            ].join('\n'),
          }),
        'https',
        ca,
        timeoutMs,
      );
      children.push(token.child);
      info.token = {
        host: `localhost:${token.port}`,
        caFile: pki.caFile,
        username,
        password,
        realm: ts.realm,
        service: TOKEN_SERVICE,
        issuer: TOKEN_ISSUER,
      };
    }
    return { ...info, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Strips the functions, for handing the registries to tests as JSON. */
export function registriesInfo(r: Registries): RegistriesInfo {
  const info: RegistriesInfo = { dir: r.dir, tls: r.tls, basic: r.basic };
  if (r.token !== undefined) info.token = r.token;
  return info;
}

/** Loads the registries handed over through COSIGN_WEB_REGISTRIES (set by the global setup). */
export function registriesFromEnv(): RegistriesInfo | undefined {
  const raw = process.env['COSIGN_WEB_REGISTRIES'];
  return raw === undefined || raw === '' ? undefined : (JSON.parse(raw) as RegistriesInfo);
}

declare module 'vitest' {
  export interface ProvidedContext {
    cosignWebRegistries: RegistriesInfo;
  }
}

/**
 * Vitest globalSetup: starts the registries once for a run, hands them to the tests through
 * `inject('cosignWebRegistries')` and the COSIGN_WEB_REGISTRIES env variable, and stops them after.
 * Use it as `globalSetup: ['test/rig/registries.ts']` or call it from another global setup.
 */
export async function setup(project?: {
  provide(key: 'cosignWebRegistries', value: RegistriesInfo): void;
}): Promise<() => Promise<void>> {
  const regs = await startRegistries();
  const info = registriesInfo(regs);
  process.env['COSIGN_WEB_REGISTRIES'] = JSON.stringify(info);
  project?.provide('cosignWebRegistries', info);
  return async () => {
    delete process.env['COSIGN_WEB_REGISTRIES'];
    await regs.stop();
  };
}

// Many relays, one truth (issue 16): starts Debian's redis-server and nginx (installed by
// test/rig/install.sh) and the app's own server (the command `npm start` runs) as relay processes,
// all on loopback on free ports. nginx balances round-robin over the relays; each relay keeps its
// tag locks in the one Redis (RELAY_LOCKS_URL). Redis and nginx run under registries.ts's
// watchdog; a relay is this process's direct child (so a test can SIGKILL or SIGTERM it).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { freePort, spawnWatched, stopChild, type RegistriesInfo } from './registries.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Waits until `url` answers 2xx; throws after `ms`. */
export async function waitForOk(url: string, ms: number): Promise<void> {
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

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts redis-server on 127.0.0.1 (no persistence, no protected mode needed on loopback). */
export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  const child = spawnWatched(
    ['/usr/bin/redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    join(dir, `redis-${port}.log`),
  );
  const url = `redis://127.0.0.1:${port}`;
  const end = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new net.Socket();
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1', () => {
        s.write('PING\r\n');
        s.once('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      });
    });
    if (ok) break;
    if (Date.now() > end) throw new Error(`redis-server did not answer on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, port, stop: () => stopChild(child) };
}

export interface Nginx {
  port: number;
  origin: string;
  stop(): Promise<void>;
}

/** Starts nginx on 127.0.0.1 balancing round-robin over `upstreams` (ports), bodies streamed both ways. */
export async function startNginx(dir: string, upstreams: readonly number[], listen?: number): Promise<Nginx> {
  const port = listen ?? (await freePort());
  const d = join(dir, `nginx-${port}`);
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(d, sub), { recursive: true });
  const conf = join(d, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
error_log ${d}/error.log warn;
pid ${d}/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
  upstream relays {
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    proxy_http_version 1.1;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_set_header Host $http_host;
    proxy_set_header Connection "";
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;
    location / { proxy_pass http://relays; }
  }
}
`,
  );
  const child = spawnWatched(['/usr/sbin/nginx', '-p', d, '-c', conf, '-g', 'daemon off;'], join(d, 'stdout.log'));
  const origin = `http://localhost:${port}`;
  await waitForOk(`http://127.0.0.1:${port}/healthz`, 20_000);
  return { port, origin, stop: () => stopChild(child) };
}

export interface Relay {
  port: number;
  origin: string;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal) once the process ended. */
  exited: Promise<number | string>;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Starts the app's server (`node --import tsx server/main.ts`, dist/ built beforehand) as a relay
 * to the rig's registries, without the embedded registry, its locks in `redisUrl` when given.
 */
export async function startRelay(
  regs: RegistriesInfo,
  o: { dir: string; redisUrl?: string; publicOrigins?: string[]; env?: Record<string, string> },
): Promise<Relay> {
  const port = await freePort();
  const hosts = [...new Set([regs.tls.host, regs.basic.host])].join(',');
  const logFile = join(o.dir, `relay-${port}.log`);
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      EMBEDDED_REGISTRY: 'off',
      RELAY_ALLOWED_REGISTRIES: hosts,
      RELAY_PRIVATE_REGISTRIES: hosts,
      RELAY_PLAIN_HTTP_REGISTRIES: regs.basic.host,
      NODE_EXTRA_CA_CERTS: regs.tls.caFile,
      PKCS11_MODULE: '',
      ...(o.redisUrl ? { RELAY_LOCKS_URL: o.redisUrl } : {}),
      ...(o.publicOrigins ? { PUBLIC_ORIGINS: o.publicOrigins.join(',') } : {}),
      ...o.env,
    },
    stdio: ['ignore', log, log],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  await waitForOk(`http://127.0.0.1:${port}/healthz`, 60_000).catch((e: unknown) => {
    kill();
    throw e;
  });
  return {
    port,
    origin: `http://localhost:${port}`,
    child,
    exited,
    logFile,
    stop: async () => {
      kill();
      await exited;
    },
  };
}

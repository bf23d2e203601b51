/**
 * Relay streaming benchmark: uploads (POST, streamed PATCH, PUT with the digest) and downloads a
 * blob (512 MiB by default) directly to a TLS registry and through the relay, in rounds that take
 * turns (medians reported), and reports the throughput of both, the relay's peak RSS and its CPU
 * time per MiB. The relay runs in a child process (this file, run
 * with COSIGN_WEB_BENCH_RELAY_CHILD=1) so its memory is measured on its own; the child samples
 * its RSS every 10 ms and reports the baseline and the peak over IPC. The client side uses
 * node:http/https with streamed, hashed bodies, the same way for both paths.
 *
 *   const r = await benchRelay({ registry: { host: 'localhost:5000', caFile: '/path/ca.crt' } });
 */
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';

export interface BenchRelayOptions {
  /** A TLS registry on loopback: `host:port` and the PEM file of the CA that signed its certificate. */
  registry: { host: string; caFile: string };
  /** Blob size in bytes (default 512 MiB). */
  sizeBytes?: number;
  /** Repository to push to (default a fresh `bench/relay-<random>`). */
  repository?: string;
  /** Rounds, each direct and relayed in turn (default BENCH_RELAY_ROUNDS or 3); figures are medians. */
  rounds?: number;
  /** Progress lines (default none). */
  log?: (line: string) => void;
}

export interface BenchRelayResult {
  sizeMiB: number;
  rounds: number;
  directUpMBps: number;
  directDownMBps: number;
  relayUpMBps: number;
  relayDownMBps: number;
  /** Bytes moved (up and down) per second, direct. */
  directMBps: number;
  /** Bytes moved (up and down) per second, through the relay. */
  relayMBps: number;
  /** relayMBps / directMBps. */
  ratio: number;
  /** The relay process's RSS when idle after a warm-up transfer, in MiB. */
  relayBaseRssMB: number;
  /** The relay process's highest RSS during the measured transfers, in MiB. */
  relayPeakRssMB: number;
  /** relayPeakRssMB - relayBaseRssMB. */
  relayRssGrowthMB: number;
  /** The relay process's CPU time per MiB moved up and down (user + system, ms/MiB): its own cost, whatever else loads the machine. */
  relayCpuMsPerMiBUp: number;
  relayCpuMsPerMiBDown: number;
}

const MiB = 1024 * 1024;
/** Size of the chunks `generated` yields. */
export const CHUNK = 256 * 1024;
const CHILD_ENV = 'COSIGN_WEB_BENCH_RELAY_CHILD';

export interface Endpoint {
  /** e.g. https://localhost:5000 or http://127.0.0.1:PORT/relay/localhost:5000 */
  base: string;
  agent: http.Agent;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** One request with an optional streamed body; the response body is hashed and counted. */
function request(
  ep: Endpoint,
  method: string,
  url: string,
  body?: AsyncIterable<Buffer>,
): Promise<Reply & { digest: string; bytes: number }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, agent: ep.agent, headers: { 'Content-Type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, digest: `sha256:${hash.digest('hex')}`, bytes }),
      );
    });
    if (body === undefined) {
      req.end();
      return;
    }
    void (async () => {
      for await (const chunk of body) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch((e: unknown) => req.destroy(e as Error));
  });
}

/** `size` bytes made on demand (one random block, stamped per chunk), hashed as they go. */
export function generated(size: number): { chunks: AsyncIterable<Buffer>; digest: () => string } {
  const block = randomBytes(CHUNK);
  const hash = createHash('sha256');
  let digest = '';
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < size; sent += CHUNK) {
      const chunk = Buffer.from(block.subarray(0, Math.min(CHUNK, size - sent)));
      chunk.writeUInt32BE(sent / CHUNK, 0);
      hash.update(chunk);
      yield chunk;
    }
    digest = `sha256:${hash.digest('hex')}`;
  }
  return { chunks: chunks(), digest: () => digest };
}

function expectStatus(r: Reply, status: number, what: string): void {
  if (r.status !== status) throw new Error(`${what}: expected HTTP ${status}, got ${r.status}`);
}

/** Resolves a Location against the endpoint: relay paths against the relay's origin. */
function follow(ep: Endpoint, location: string): string {
  return new URL(location, ep.base).href;
}

export async function push(ep: Endpoint, repo: string, size: number): Promise<{ digest: string; ms: number }> {
  const t0 = performance.now();
  const start = await request(ep, 'POST', `${ep.base}/v2/${repo}/blobs/uploads/`);
  expectStatus(start, 202, 'start upload');
  const { chunks, digest } = generated(size);
  const patch = await request(ep, 'PATCH', follow(ep, String(start.headers.location)), chunks);
  expectStatus(patch, 202, 'upload');
  const d = digest();
  const put = await request(ep, 'PUT', `${follow(ep, String(patch.headers.location))}&digest=${d}`);
  expectStatus(put, 201, 'finish upload');
  return { digest: d, ms: performance.now() - t0 };
}

export async function pull(ep: Endpoint, repo: string, digest: string, size: number): Promise<number> {
  const t0 = performance.now();
  const r = await request(ep, 'GET', `${ep.base}/v2/${repo}/blobs/${digest}`);
  expectStatus(r, 200, 'download');
  if (r.digest !== digest || r.bytes !== size) throw new Error(`download: got ${r.bytes} bytes hashing to ${r.digest}`);
  return performance.now() - t0;
}

interface ChildReady {
  port: number;
}
interface ChildStats {
  rss: number;
  peak: number;
  /** The child's CPU time so far (user + system), in ms. */
  cpuMs: number;
}

/** Starts the relay child and returns its port and a way to read (and reset) its RSS peak. */
async function startChild(registry: BenchRelayOptions['registry']): Promise<{
  port: number;
  stats: (reset: boolean) => Promise<ChildStats>;
  stop: () => Promise<void>;
}> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, [CHILD_ENV]: '1', BENCH_REGISTRY: registry.host, BENCH_CA_FILE: registry.caFile },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    child.once('message', (m) => resolve(m as ChildReady));
    child.once('exit', (code) => reject(new Error(`relay child exited (${code})`)));
  });
  const stats = (reset: boolean): Promise<ChildStats> =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m as ChildStats));
      child.send({ reset });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null) {
        resolve();
        return;
      }
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { port: ready.port, stats, stop };
}

/**
 * Measures direct and relayed transfer of one blob each way.
 * @throws Error when a transfer fails or a digest does not match
 */
export async function benchRelay(opts: BenchRelayOptions): Promise<BenchRelayResult> {
  const size = opts.sizeBytes ?? 512 * MiB;
  const repo = opts.repository ?? `bench/relay-${randomBytes(4).toString('hex')}`;
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? Number(process.env['BENCH_RELAY_ROUNDS'] ?? 3);
  const ca = readFileSync(opts.registry.caFile, 'utf8');
  const direct: Endpoint = {
    base: `https://${opts.registry.host}`,
    agent: new https.Agent({ keepAlive: true, ca }),
  };
  const child = await startChild(opts.registry);
  const relayed: Endpoint = {
    base: `http://127.0.0.1:${child.port}/relay/${opts.registry.host}`,
    agent: new http.Agent({ keepAlive: true }),
  };
  try {
    // Warm up both paths (TLS sessions, JIT), then take the relay's idle baseline.
    const warm = 16 * MiB;
    for (const ep of [direct, relayed]) {
      const w = await push(ep, repo, warm);
      await pull(ep, repo, w.digest, warm);
    }
    await new Promise((r) => setTimeout(r, 300));
    const base = await child.stats(true);

    const mb = size / MiB;
    // Rounds taking turns, direct then relay for each direction, so a pair sees the same load on
    // a shared machine; each figure is the median over the rounds.
    const t = { du: [] as number[], ru: [] as number[], dd: [] as number[], rd: [] as number[] };
    let cpuUp = 0;
    let cpuDown = 0;
    for (let i = 0; i < rounds; i++) {
      const du = await push(direct, repo, size);
      const before = await child.stats(false);
      const ru = await push(relayed, repo, size);
      const afterUp = await child.stats(false);
      t.dd.push(await pull(direct, repo, du.digest, size));
      const beforeDown = await child.stats(false);
      t.rd.push(await pull(relayed, repo, ru.digest, size));
      const afterDown = await child.stats(false);
      t.du.push(du.ms);
      t.ru.push(ru.ms);
      cpuUp += afterUp.cpuMs - before.cpuMs;
      cpuDown += afterDown.cpuMs - beforeDown.cpuMs;
      log(
        `round ${i + 1}: up direct ${(mb / (du.ms / 1000)).toFixed(0)} relay ${(mb / (ru.ms / 1000)).toFixed(0)} MB/s, ` +
          `down direct ${(mb / (t.dd.at(-1)! / 1000)).toFixed(0)} relay ${(mb / (t.rd.at(-1)! / 1000)).toFixed(0)} MB/s`,
      );
    }
    const peak = await child.stats(false);
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const [du, ru, dd, rd] = [med(t.du), med(t.ru), med(t.dd), med(t.rd)];

    const directMBps = (2 * mb) / ((du + dd) / 1000);
    const relayMBps = (2 * mb) / ((ru + rd) / 1000);
    const round = (x: number): number => Math.round(x * 10) / 10;
    return {
      sizeMiB: mb,
      rounds,
      directUpMBps: round(mb / (du / 1000)),
      directDownMBps: round(mb / (dd / 1000)),
      relayUpMBps: round(mb / (ru / 1000)),
      relayDownMBps: round(mb / (rd / 1000)),
      directMBps: round(directMBps),
      relayMBps: round(relayMBps),
      ratio: Math.round((relayMBps / directMBps) * 100) / 100,
      relayBaseRssMB: round(base.rss / MiB),
      relayPeakRssMB: round(peak.peak / MiB),
      relayRssGrowthMB: round((peak.peak - base.rss) / MiB),
      relayCpuMsPerMiBUp: round(cpuUp / (mb * rounds)),
      relayCpuMsPerMiBDown: round(cpuDown / (mb * rounds)),
    };
  } finally {
    direct.agent.destroy();
    relayed.agent.destroy();
    await child.stop();
  }
}

/** The child: a relay that reaches only the benchmark's registry, reporting its RSS over IPC. */
async function runChild(): Promise<void> {
  const { createApp } = await import('../server/app.ts');
  const { serveApp } = await import('../server/serve.ts');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const registry = process.env['BENCH_REGISTRY'] ?? '';
  const app = createApp({
    staticRoot: mkdtempSync(join(tmpdir(), 'cosign-web-bench-')),
    relay: {
      allowedRegistries: [registry],
      privateRegistries: [registry],
      ca: readFileSync(process.env['BENCH_CA_FILE'] ?? '', 'utf8'),
      log: () => undefined,
    },
  });
  const { server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  process.on('message', (m: { reset: boolean }) => {
    const rss = process.memoryUsage().rss;
    peak = Math.max(peak, rss);
    const cpu = process.cpuUsage();
    process.send?.({ rss, peak, cpuMs: (cpu.user + cpu.system) / 1000 } satisfies ChildStats);
    if (m.reset) peak = rss;
  });
  process.on('SIGTERM', () => {
    clearInterval(sampler);
    server.close(() => process.exit(0));
    (server as http.Server).closeAllConnections();
  });
  process.on('disconnect', () => process.exit(0));
  process.send?.({ port } satisfies ChildReady);
}

if (process.env[CHILD_ENV] === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  await runChild();
}

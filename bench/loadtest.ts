/**
 * `npm run loadtest`: a bounded load test of the relay on loopback that stops by itself.
 *
 * Starts a real CNCF distribution registry behind TLS (test/rig/registries.ts) and the real server
 * (server/main.ts, its own process, embedded registry off), seeds the registry directly with
 * images and three 64 MiB blobs, then runs LOADTEST_CLIENTS (200) concurrent clients through the
 * relay for LOADTEST_SECONDS (60): manifests by tag (GET, HEAD), small blobs (GET, and pushes of
 * 1–16 KiB), and on LOADTEST_BIG_CLIENTS (3) of them 64 MiB blobs (one push each, then
 * downloads). Every body read is hashed and compared with its digest. Meanwhile a worker thread
 * asks the server's /healthz every 50 ms, and the server's RSS and CPU time are read from /proc
 * every 100 ms. The server also measures its own event-loop delay (a preloaded
 * monitorEventLoopDelay, read on SIGUSR2), which tells a slow server from a machine too busy to
 * run it: the run prints both, and the machine's load average.
 *
 * Bounds (the exit code is 1 when one is broken):
 *   - no error of the relay's own: no answer with X-Relay-Error, no broken connection, no body
 *     that does not hash to its digest (answers of the registry's own, without X-Relay-Error, are
 *     counted and shown, not failed);
 *   - /healthz p99 under LOADTEST_HEALTHZ_P99_MS (100 ms), every probe answered;
 *   - server RSS: the peak at most LOADTEST_RSS_PEAK_MB (256) MiB above the RSS before the load,
 *     and 10 s after the load at most LOADTEST_RSS_END_MB (128) MiB above it. What stays is the
 *     heap and allocator keeping what the load needed, not a leak: idle, 60 s of load left +97 MiB
 *     and 180 s (three times the requests) +103 MiB.
 * Linux only (reads /proc/<pid>/status).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { freePort, startRegistries } from '../test/rig/registries.ts';
import { generated } from './relay.ts';

const env = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, not "${process.env[name]}".`);
  return n;
};
const SECONDS = env('LOADTEST_SECONDS', 60);
const CLIENTS = env('LOADTEST_CLIENTS', 200);
const BIG_CLIENTS = Math.min(CLIENTS, env('LOADTEST_BIG_CLIENTS', 3));
const P99_MS = env('LOADTEST_HEALTHZ_P99_MS', 100);
const RSS_PEAK_MB = env('LOADTEST_RSS_PEAK_MB', 256);
const RSS_END_MB = env('LOADTEST_RSS_END_MB', 128);
const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const IMAGES = 20;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

/** One answer: status, the headers that matter here, and the body's digest and length. */
interface Answer {
  status: number;
  location: string;
  relayError: string;
  contentDigest: string;
  digest: string;
  bytes: number;
}

interface Target {
  base: string;
  agent: http.Agent;
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function send(
  t: Target,
  method: string,
  path: string,
  body?: Uint8Array | AsyncIterable<Buffer>,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(path.startsWith('http') ? path : `${t.base}${path}`);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, agent: t.agent, headers });
    req.on('error', reject);
    req.on('response', (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      res.on('error', reject);
      res.on('end', () => {
        const h = (n: string): string => String(res.headers[n] ?? '');
        resolve({
          status: res.statusCode ?? 0,
          location: h('location'),
          relayError: h('x-relay-error'),
          contentDigest: h('docker-content-digest'),
          digest: `sha256:${hash.digest('hex')}`,
          bytes,
        });
      });
    });
    if (body === undefined) req.end();
    else if (body instanceof Uint8Array) req.end(body);
    else
      void (async () => {
        for await (const chunk of body) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch((e: unknown) => req.destroy(e as Error));
  });
}

/** Counts per outcome; `relay` holds the relay's own failures, which break the bound. */
class Tally {
  requests = 0;
  byOp = new Map<string, number>();
  registry = new Map<string, number>();
  relay: string[] = [];
  bytesDown = 0;

  ok(op: string, a: Answer): void {
    this.requests++;
    this.bytesDown += a.bytes;
    this.byOp.set(op, (this.byOp.get(op) ?? 0) + 1);
  }
  /** An answer of the wrong status: the relay's when it says so, the registry's otherwise. */
  unexpected(op: string, a: Answer): void {
    this.requests++;
    if (a.relayError) this.relay.push(`${op}: HTTP ${a.status} ${a.relayError}`);
    else this.registry.set(`${op}: HTTP ${a.status}`, (this.registry.get(`${op}: HTTP ${a.status}`) ?? 0) + 1);
  }
  failed(op: string, why: string): void {
    this.requests++;
    this.relay.push(`${op}: ${why}`);
  }
}

/** Pushes `body` (bytes or chunks) as a blob: POST, then PUT with the digest. Returns the digest. */
async function pushBlob(
  t: Target,
  repo: string,
  body: Uint8Array | { chunks: AsyncIterable<Buffer>; digest: () => string },
): Promise<{ start: Answer; end: Answer | null; digest: string }> {
  const start = await send(t, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) return { start, end: null, digest: '' };
  const loc = new URL(start.location, t.base).href;
  if (body instanceof Uint8Array) {
    const digest = sha256(body);
    const sep = loc.includes('?') ? '&' : '?';
    const end = await send(t, 'PUT', `${loc}${sep}digest=${digest}`, body, {
      'content-type': 'application/octet-stream',
    });
    return { start, end, digest };
  }
  const patch = await send(t, 'PATCH', loc, body.chunks, { 'content-type': 'application/octet-stream' });
  if (patch.status !== 202) return { start, end: patch, digest: '' };
  const next = new URL(patch.location, t.base).href;
  const digest = body.digest();
  const end = await send(t, 'PUT', `${next}${next.includes('?') ? '&' : '?'}digest=${digest}`);
  return { start, end, digest };
}

interface Seed {
  tags: { tag: string; digest: string }[];
  small: string[];
  big: string[];
}

/** Images (config + one small layer, tagged) and 64 MiB blobs, pushed straight to the registry. */
async function seed(direct: Target, repo: string): Promise<Seed> {
  const out: Seed = { tags: [], small: [], big: [] };
  const must = async (b: Uint8Array): Promise<string> => {
    const r = await pushBlob(direct, repo, b);
    if (r.end?.status !== 201) throw new Error(`seeding a blob failed: HTTP ${r.end?.status ?? r.start.status}`);
    return r.digest;
  };
  const config = new TextEncoder().encode('{}');
  const configDigest = await must(config);
  for (let i = 0; i < IMAGES; i++) {
    const layer = randomBytes(1024 + i * 512);
    const layerDigest = await must(layer);
    out.small.push(layerDigest);
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: layerDigest, size: layer.length }],
      }),
    );
    const put = await send(direct, 'PUT', `/v2/${repo}/manifests/t${i}`, manifest, { 'content-type': MANIFEST_TYPE });
    if (put.status !== 201) throw new Error(`seeding manifest t${i} failed: HTTP ${put.status}`);
    out.tags.push({ tag: `t${i}`, digest: sha256(manifest) });
  }
  for (let i = 0; i < 3; i++) {
    const r = await pushBlob(direct, repo, generated(BIG));
    if (r.end?.status !== 201) throw new Error(`seeding a 64 MiB blob failed: HTTP ${r.end?.status}`);
    out.big.push(r.digest);
  }
  return out;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** One small-traffic client: manifests by tag, small blobs, small pushes, until `until`. */
async function smallClient(t: Target, repo: string, s: Seed, until: number, tally: Tally): Promise<void> {
  while (Date.now() < until) {
    const r = Math.random();
    try {
      if (r < 0.45) {
        const { tag, digest } = pick(s.tags);
        const a = await send(t, 'GET', `/v2/${repo}/manifests/${tag}`, undefined, { accept: MANIFEST_TYPE });
        if (a.status !== 200) tally.unexpected('GET manifest', a);
        else if (a.digest !== digest || a.contentDigest !== digest) tally.failed('GET manifest', 'wrong bytes');
        else tally.ok('GET manifest', a);
      } else if (r < 0.55) {
        const a = await send(t, 'HEAD', `/v2/${repo}/manifests/${pick(s.tags).tag}`, undefined, {
          accept: MANIFEST_TYPE,
        });
        if (a.status === 200) tally.ok('HEAD manifest', a);
        else tally.unexpected('HEAD manifest', a);
      } else if (r < 0.95) {
        const digest = pick(s.small);
        const a = await send(t, 'GET', `/v2/${repo}/blobs/${digest}`);
        if (a.status !== 200) tally.unexpected('GET small blob', a);
        else if (a.digest !== digest) tally.failed('GET small blob', 'wrong bytes');
        else tally.ok('GET small blob', a);
      } else {
        const p = await pushBlob(t, repo, randomBytes(1024 + Math.floor(Math.random() * 15 * 1024)));
        const a = p.end ?? p.start;
        if (a.status === 201) tally.ok('push small blob', a);
        else tally.unexpected('push small blob', a);
      }
    } catch (e) {
      tally.failed('request', (e as Error).message);
    }
  }
}

/** One big-blob client: pushes one 64 MiB blob, then downloads 64 MiB blobs, until `until`. */
async function bigClient(t: Target, repo: string, s: Seed, until: number, tally: Tally): Promise<void> {
  try {
    const p = await pushBlob(t, repo, generated(BIG));
    const a = p.end ?? p.start;
    if (a.status === 201) tally.ok('push 64 MiB blob', a);
    else tally.unexpected('push 64 MiB blob', a);
    while (Date.now() < until) {
      const digest = pick(s.big);
      const got = await send(t, 'GET', `/v2/${repo}/blobs/${digest}`);
      if (got.status !== 200) tally.unexpected('GET 64 MiB blob', got);
      else if (got.digest !== digest || got.bytes !== BIG) tally.failed('GET 64 MiB blob', 'wrong bytes');
      else tally.ok('GET 64 MiB blob', got);
    }
  } catch (e) {
    tally.failed('64 MiB blob', (e as Error).message);
  }
}

/** The /healthz prober: a worker thread of its own, so the clients' work does not delay its clock. */
const PROBER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const times = []; let failures = 0; let stop = false;
parentPort.on('message', () => { stop = true; });
function probe() {
  if (stop) { parentPort.postMessage({ times, failures }); return; }
  const t0 = performance.now();
  const req = http.get(workerData.url, { agent, timeout: 10000 }, (res) => {
    res.resume();
    res.on('end', () => { if (res.statusCode === 200) times.push(performance.now() - t0); else failures++; setTimeout(probe, 50); });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', () => { failures++; setTimeout(probe, 50); });
}
probe();
`;

function startProber(url: string): () => Promise<{ times: number[]; failures: number }> {
  const w = new Worker(PROBER, { eval: true, workerData: { url } });
  return () =>
    new Promise((resolve) => {
      w.once('message', (m: { times: number[]; failures: number }) => {
        void w.terminate();
        resolve(m);
      });
      w.postMessage('stop');
    });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/**
 * Preloaded into the server: its event-loop delay since the last SIGUSR2 (a 5 ms timer's lateness),
 * written to LOADTEST_LOOP_FILE on SIGUSR2.
 */
const LOOP_MONITOR = [
  'import { monitorEventLoopDelay } from "node:perf_hooks";',
  'import { writeFileSync } from "node:fs";',
  'const h = monitorEventLoopDelay({ resolution: 5 }); h.enable();',
  'process.on("SIGUSR2", () => {',
  '  const ms = (n) => Math.max(0, n / 1e6 - 5);',
  '  writeFileSync(process.env.LOADTEST_LOOP_FILE, JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) }));',
  '  h.reset();',
  '});',
].join('\n');

/** The server's CPU seconds (user + system) from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Asks the server for its event-loop delay since the last ask, and resets it. */
async function loopDelay(pid: number, file: string): Promise<{ p50: number; p99: number; max: number }> {
  rmSync(file, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as { p50: number; p99: number; max: number };
    } catch {
      // not written yet
    }
  }
  throw new Error('the server did not report its event-loop delay');
}

async function startServer(
  registry: string,
  caFile: string,
  loopFile: string,
): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  // The relay is what is measured: the page is a placeholder, so no build is needed.
  const staticRoot = mkdtempSync(join(tmpdir(), 'cosign-web-loadtest-'));
  writeFileSync(join(staticRoot, 'index.html'), '<!doctype html><title>load test</title>');
  const monitor = `data:text/javascript,${encodeURIComponent(LOOP_MONITOR)}`;
  const child = spawn(process.execPath, ['--import', monitor, '--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      STATIC_ROOT: staticRoot,
      EMBEDDED_REGISTRY: 'off',
      RELAY_ALLOWED_REGISTRIES: registry,
      RELAY_PRIVATE_REGISTRIES: registry,
      NODE_EXTRA_CA_CERTS: caFile,
      LOADTEST_LOOP_FILE: loopFile,
    },
  });
  child.on('exit', () => rmSync(staticRoot, { recursive: true, force: true }));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${out}`)));
  });
  child.stdout?.resume();
  return { child, port };
}

async function main(): Promise<number> {
  const t0 = Date.now();
  console.log(`relay load test: ${CLIENTS} clients (${BIG_CLIENTS} on 64 MiB blobs) for ${SECONDS} s`);
  const regs = await startRegistries({ token: false });
  let server: ChildProcess | undefined;
  try {
    const direct: Target = {
      base: `https://${regs.tls.host}`,
      agent: new https.Agent({ keepAlive: true, ca: readFileSync(regs.tls.caFile) }),
    };
    const repo = `loadtest/app-${randomBytes(3).toString('hex')}`;
    const s = await seed(direct, repo);
    direct.agent.destroy();
    const loopFile = join(regs.dir, 'loop-delay.json');
    const started = await startServer(regs.tls.host, regs.tls.caFile, loopFile);
    server = started.child;
    const pid = server.pid!;
    const origin = `http://127.0.0.1:${started.port}`;
    const relay: Target = {
      base: `${origin}/relay/${regs.tls.host}`,
      agent: new http.Agent({ keepAlive: true, maxSockets: CLIENTS + 10 }),
    };
    // Warm-up (JIT, upstream connections), then the RSS the growth is measured from.
    await smallClient(relay, repo, s, Date.now() + 2_000, new Tally());
    await new Promise((r) => setTimeout(r, 1_000));
    await loopDelay(pid, loopFile);
    const cpuStart = cpuSeconds(pid);
    const rssStart = rssMiB(pid);
    let rssPeak = rssStart;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMiB(pid))), 100);
    const stopProber = startProber(`${origin}/healthz`);
    const tally = new Tally();
    const until = Date.now() + SECONDS * 1000;
    const loadStart = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        i < BIG_CLIENTS ? bigClient(relay, repo, s, until, tally) : smallClient(relay, repo, s, until, tally),
      ),
    );
    const loadSeconds = (performance.now() - loadStart) / 1000;
    const health = await stopProber();
    const loop = await loopDelay(pid, loopFile);
    const cpu = (cpuSeconds(pid) - cpuStart) / loadSeconds;
    relay.agent.destroy();
    await new Promise((r) => setTimeout(r, 10_000));
    clearInterval(sampler);
    const rssEnd = rssMiB(pid);
    rssPeak = Math.max(rssPeak, rssEnd);

    const p50 = percentile(health.times, 50);
    const p99 = percentile(health.times, 99);
    console.log(
      `requests: ${tally.requests} in ${loadSeconds.toFixed(1)} s = ${(tally.requests / loadSeconds).toFixed(0)}/s`,
    );
    console.log(`  ${[...tally.byOp].map(([op, n]) => `${op} ${n}`).join(', ')}`);
    console.log(`  ${(tally.bytesDown / MiB / loadSeconds).toFixed(0)} MiB/s read through the relay`);
    const registryErrors = [...tally.registry].map(([k, n]) => `${k} ×${n}`).join(', ');
    console.log(`registry's own errors: ${registryErrors || 'none'}`);
    console.log(
      `relay errors: ${tally.relay.length}${tally.relay.length ? ` (${tally.relay.slice(0, 5).join('; ')})` : ''}`,
    );
    console.log(
      `/healthz: ${health.times.length} probes, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${Math.max(...health.times).toFixed(1)} ms, ${health.failures} failed`,
    );
    console.log(
      `server event loop: delay p50 ${loop.p50.toFixed(1)} ms, p99 ${loop.p99.toFixed(1)} ms, max ${loop.max.toFixed(1)} ms; CPU ${(cpu * 100).toFixed(0)}% of one core; machine load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    );
    console.log(
      `server RSS: start ${rssStart.toFixed(0)} MiB, peak ${rssPeak.toFixed(0)} MiB (+${(rssPeak - rssStart).toFixed(0)}), end ${rssEnd.toFixed(0)} MiB (+${(rssEnd - rssStart).toFixed(0)}, 10 s after the load)`,
    );

    const broken: string[] = [];
    if (tally.relay.length > 0) broken.push(`${tally.relay.length} relay errors (bound 0)`);
    if (health.failures > 0 || health.times.length === 0) broken.push(`${health.failures} /healthz probes failed`);
    if (!(p99 < P99_MS)) broken.push(`/healthz p99 ${p99.toFixed(1)} ms (bound ${P99_MS} ms)`);
    if (rssPeak - rssStart > RSS_PEAK_MB)
      broken.push(`RSS peak +${(rssPeak - rssStart).toFixed(0)} MiB (bound ${RSS_PEAK_MB})`);
    if (rssEnd - rssStart > RSS_END_MB)
      broken.push(`RSS end +${(rssEnd - rssStart).toFixed(0)} MiB (bound ${RSS_END_MB})`);
    console.log(broken.length ? `FAILED: ${broken.join('; ')}` : 'all bounds held');
    console.log(`(${((Date.now() - t0) / 1000).toFixed(0)} s in all)`);
    return broken.length ? 1 : 0;
  } finally {
    server?.kill('SIGTERM');
    await regs.stop();
  }
}

process.exitCode = await main();

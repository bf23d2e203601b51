/**
 * Many relays benchmark (issue 16): a 512 MiB blob up and down through Debian's nginx balancing
 * two relay processes (the app's own server) next to one relay alone, in the same run, and the
 * tag lock's acquire/release round trip (POST /locks/acquire then /locks/release, over HTTP to a
 * relay) with the locks in Redis next to the in-memory locks, and the Redis store's own round trip
 * (its acquire and release scripts, in process): median and p99.
 *
 *   const r = await benchRelays(regs);
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type RegistriesInfo } from '../test/rig/registries.ts';
import { startNginx, startRedis, startRelay, type Relay } from '../test/rig/relays.ts';
import { RedisLocks } from '../server/locks-redis.ts';
import { pull, push, type Endpoint } from './relay.ts';

export interface BenchRelaysResult {
  sizeMiB: number;
  oneRelay: { upMBps: number; downMBps: number };
  nginxTwoRelays: { upMBps: number; downMBps: number };
  /** Through nginx and two relays over one relay alone, up and down together. */
  ratio: number;
  redisLock: { medianMs: number; p99Ms: number };
  memoryLock: { medianMs: number; p99Ms: number };
  /** The store alone (server/locks-redis.ts in this process): acquire + release scripts. */
  redisStore: { medianMs: number; p99Ms: number };
  lockRounds: number;
}

const MiB = 1024 * 1024;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function transfer(origin: string, registry: string, size: number): Promise<{ upMBps: number; downMBps: number }> {
  const ep: Endpoint = { base: `${origin}/relay/${registry}`, agent: new http.Agent({ keepAlive: true }) };
  const repo = `bench/relays-${Math.random().toString(36).slice(2, 10)}`;
  const up = await push(ep, repo, size);
  const downMs = await pull(ep, repo, up.digest, size);
  ep.agent.destroy();
  return { upMBps: size / MiB / (up.ms / 1000), downMBps: size / MiB / (downMs / 1000) };
}

/** `rounds` acquire+release round trips of fresh keys through `relay`, in ms each. */
async function lockRoundTrips(relay: Relay, registry: string, rounds: number): Promise<number[]> {
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${relay.origin}/locks/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const key = `${registry}/bench/locks:k${i}`;
    const t0 = performance.now();
    const got = await post('acquire', { key });
    const { token } = (await got.json()) as { token: string };
    const done = await post('release', { key, token });
    await done.arrayBuffer();
    times.push(performance.now() - t0);
    if (got.status !== 200 || done.status !== 204) throw new Error(`lock round ${i}: ${got.status} / ${done.status}`);
  }
  return times.slice(Math.min(20, rounds / 10));
}

/** Runs both comparisons against the rig's TLS registry. */
export async function benchRelays(
  regs: RegistriesInfo,
  sizeBytes = 512 * MiB,
  rounds = 500,
): Promise<BenchRelaysResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cosign-web-bench-relays-'));
  const started: { stop(): Promise<void> }[] = [];
  try {
    const redis = await startRedis(dir);
    started.push(redis);
    const nginxPort = await freePort();
    const publicOrigins = [`http://localhost:${nginxPort}`];
    const [a, b, memory] = await Promise.all([
      startRelay(regs, { dir, redisUrl: redis.url, publicOrigins }),
      startRelay(regs, { dir, redisUrl: redis.url, publicOrigins }),
      startRelay(regs, { dir }),
    ]);
    started.push(a, b, memory);
    const nginx = await startNginx(dir, [a.port, b.port], nginxPort);
    started.push(nginx);
    const host = regs.tls.host;
    // Warm-up, then one relay alone and nginx with two, in the same run.
    await transfer(a.origin, host, 16 * MiB);
    const oneRelay = await transfer(a.origin, host, sizeBytes);
    const nginxTwoRelays = await transfer(nginx.origin, host, sizeBytes);
    const redisTimes = await lockRoundTrips(a, host, rounds);
    const memoryTimes = await lockRoundTrips(memory, host, rounds);
    const store = new RedisLocks({ url: redis.url });
    const storeTimes: number[] = [];
    const client = await store.name('bench');
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      const got = await store.acquire(`${host}/bench/store:k${i}`, client, 15_000, 5_000);
      if (got.kind !== 'granted') throw new Error(`store round ${i}: ${got.kind}`);
      await store.release(`${host}/bench/store:k${i}`, got.token, 15_000);
      storeTimes.push(performance.now() - t0);
    }
    await store.close();
    return {
      sizeMiB: sizeBytes / MiB,
      oneRelay,
      nginxTwoRelays,
      ratio:
        (1 / nginxTwoRelays.upMBps + 1 / nginxTwoRelays.downMBps) ** -1 /
        (1 / oneRelay.upMBps + 1 / oneRelay.downMBps) ** -1,
      redisLock: { medianMs: percentile(redisTimes, 50), p99Ms: percentile(redisTimes, 99) },
      memoryLock: { medianMs: percentile(memoryTimes, 50), p99Ms: percentile(memoryTimes, 99) },
      redisStore: { medianMs: percentile(storeTimes, 50), p99Ms: percentile(storeTimes, 99) },
      lockRounds: redisTimes.length,
    };
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The relay streams: a 512 MiB blob goes up (POST, streamed PATCH, PUT with the digest) and down
 * through the relay served over a real socket on 127.0.0.1, to and from the rig's TLS registry.
 * The blob is generated as a stream and hashed as a stream on both sides; the process's RSS is
 * sampled during the transfer and must grow by less than 64 MiB (the relay and the client share
 * this process, so the bound covers both). The download uses fetch, as the page does; the upload
 * uses node:http (see `patch`).
 */
import type { ServerType } from '@hono/node-server';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { generated } from '../../bench/relay.ts';
import { serveApp } from '../../server/serve.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';

const regs = inject('cosignWebRegistries');
const host = regs.tls.host;
const MiB = 1024 * 1024;
const SIZE = 512 * MiB;

let server: ServerType;
let base: string;
const lines: string[] = [];

beforeAll(async () => {
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: {
      allowedRegistries: [host],
      privateRegistries: [host],
      ca: readFileSync(regs.tls.caFile, 'utf8'),
      log: (l) => lines.push(l),
    },
  });
  const s = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  server = s.server;
  base = `http://127.0.0.1:${s.port}/relay/${host}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/**
 * A streamed PATCH with node:http. Not fetch: Node 20's fetch (undici 6) holds on to a streamed
 * request body, growing RSS by the whole body even when sending to a server that discards it.
 */
function patch(url: string, body: AsyncIterable<Buffer>): Promise<{ status: number; location: string; range: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          location: String(res.headers.location),
          range: String(res.headers.range),
        }),
      );
    });
    void (async () => {
      for await (const chunk of body) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch((e: unknown) => req.destroy(e as Error));
  });
}

async function upload(repo: string, size: number): Promise<string> {
  const origin = new URL(base).origin;
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const { chunks, digest } = generated(size);
  const sent = await patch(`${origin}${start.headers.get('location')}`, chunks);
  expect(sent.status).toBe(202);
  expect(sent.range).toBe(`0-${size - 1}`);
  const d = digest();
  const put = await fetch(`${origin}${sent.location}&digest=${d}`, { method: 'PUT' });
  expect(put.status).toBe(201);
  expect(put.headers.get('docker-content-digest')).toBe(d);
  return d;
}

async function download(repo: string, digest: string): Promise<{ digest: string; bytes: number }> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  const hash = createHash('sha256');
  let bytes = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
    hash.update(value);
  }
  return { digest: `sha256:${hash.digest('hex')}`, bytes };
}

it('moves a 512 MiB blob up and down with flat memory', { timeout: 600_000 }, async () => {
  const repo = `relay/stream-${randomBytes(4).toString('hex')}`;
  // Warm up: agents, TLS sessions, JIT; then take the baseline.
  const warm = await upload(repo, 16 * MiB);
  expect((await download(repo, warm)).digest).toBe(warm);
  await new Promise((r) => setTimeout(r, 200));
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const t0 = performance.now();
    const digest = await upload(repo, SIZE);
    const t1 = performance.now();
    const got = await download(repo, digest);
    const t2 = performance.now();
    expect(got).toEqual({ digest, bytes: SIZE });
    const growth = (peak - baseline) / MiB;
    console.log(
      `relay 512 MiB: up ${(SIZE / MiB / ((t1 - t0) / 1000)).toFixed(0)} MB/s, ` +
        `down ${(SIZE / MiB / ((t2 - t1) / 1000)).toFixed(0)} MB/s, RSS growth ${growth.toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(64);
  } finally {
    clearInterval(sampler);
  }
  expect(lines.some((l) => l.includes(` PATCH ${host} `) && l.includes(`up=${SIZE}B`))).toBe(true);
  expect(lines.some((l) => l.includes(` GET ${host} `) && l.includes(`down=${SIZE}B`))).toBe(true);
});

/**
 * Graceful shutdown (issue 16): a relay (the app's own server process) sent SIGTERM in the middle
 * of copying a 256 MiB blob between two repositories of the real registry — streamed down from
 * one and up to the other through it — stops taking connections at once, lets the copy finish,
 * then exits 0; a second SIGTERM to another relay ends it at once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { RegistryClient } from '../../shared/registry/client.ts';
import { startRelay } from '../rig/relays.ts';
import { caFetch } from './ca-fetch.ts';

const regs = inject('cosignWebRegistries');
const SIZE = 256 * 1024 * 1024;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-shutdown-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** True once nothing accepts connections at `origin` any more. */
async function refusesConnections(origin: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const refused = await fetch(`${origin}/healthz`).then(
      () => false,
      () => true,
    );
    if (refused) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

it('SIGTERM mid-copy of a 256 MiB blob: no new connections, the copy finishes, then the relay exits 0', async () => {
  const direct = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
  const src = { registry: regs.tls.host, repository: 'shutdown/src' };
  const dst = { registry: regs.tls.host, repository: 'shutdown/dst' };
  const blob = await direct.pushBlob(src, randomBytes(SIZE));
  const relay = await startRelay(regs, { dir, env: { SHUTDOWN_DRAIN_MS: '120000' } });
  const base = `${relay.origin}/relay/${regs.tls.host}`;

  const start = await fetch(`${base}/v2/${dst.repository}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, relay.origin);
  location.searchParams.set('digest', blob.digest);
  const down = await fetch(`${base}/v2/${src.repository}/blobs/${blob.digest}`);
  expect(down.status).toBe(200);

  // The bytes pass through this test on their way back up: at 32 MiB the relay gets SIGTERM, and
  // the copy waits until the relay refuses new connections before it goes on.
  let passed = 0;
  let signalled: Promise<boolean> | undefined;
  const through = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      passed += chunk.length;
      if (passed >= 32 * 1024 * 1024 && signalled === undefined) {
        relay.child.kill('SIGTERM');
        signalled = refusesConnections(relay.origin);
        expect(await signalled).toBe(true);
      }
      controller.enqueue(chunk);
    },
  });
  const up = await fetch(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
    body: down.body!.pipeThrough(through),
    duplex: 'half',
  } as RequestInit);
  expect(up.status).toBe(201);
  expect(signalled).toBeDefined();
  expect(passed).toBe(SIZE);
  expect(await direct.blobExists(dst, blob.digest)).toBe(true);
  expect(await relay.exited).toBe(0);
  const log = await readFile(relay.logFile, 'utf8');
  expect(log).toMatch(/shutdown: SIGTERM; no new connections, [1-9]\d* requests in flight/);
  expect(log).toContain('shutdown: every request finished');
}, 300_000);

it('a second SIGTERM ends a draining relay at once', async () => {
  const relay = await startRelay(regs, { dir, env: { SHUTDOWN_DRAIN_MS: '120000' } });
  // A request that stays in flight: a blob download nobody reads.
  const direct = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
  const blob = await direct.pushBlob({ registry: regs.tls.host, repository: 'shutdown/second' }, randomBytes(8 << 20));
  const pending = await fetch(`${relay.origin}/relay/${regs.tls.host}/v2/shutdown/second/blobs/${blob.digest}`);
  expect(pending.status).toBe(200);
  relay.child.kill('SIGTERM');
  expect(await refusesConnections(relay.origin)).toBe(true);
  expect(relay.child.exitCode).toBeNull();
  relay.child.kill('SIGTERM');
  expect(await relay.exited).toBe(1);
  await pending.body?.cancel().catch(() => undefined);
}, 120_000);

/**
 * The embedded registry survives being killed mid-upload: the real server process (server/main.ts)
 * is SIGKILLed while a blob streams in; restarted on the same data folder it serves everything it
 * had acknowledged, holds no object whose bytes differ from its digest, and takes the upload again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
let dataDir = '';
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts server/main.ts on free ports with the embedded registry over `dataDir`; returns its registry address. */
async function startServer(): Promise<{ child: ChildProcess; registry: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', EMBEDDED_REGISTRY_PORT: '0', REGISTRY_DATA: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const registry = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /embedded registry on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  return { child, registry };
}

function request(
  url: string,
  method: string,
  body?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: body ? { 'content-length': body.length } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function everyBlobMatchesItsDigest(): Promise<number> {
  const dir = join(dataDir, 'blobs', 'sha256');
  const names = await readdir(dir);
  for (const hex of names) {
    const bytes = await readFile(join(dir, hex));
    expect(createHash('sha256').update(bytes).digest('hex'), `blob ${hex}`).toBe(hex);
  }
  return names.length;
}

it('kill -9 during an upload, restart: nothing half-written, acknowledged data kept, upload works again', async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cosign-web-registry-kill-'));
  const first = await startServer();
  const base = `http://${first.registry}/v2/kill/test`;
  const blob = randomBytes(8 * 1024 * 1024);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

  // An upload session, then a PATCH that sends half the blob and never finishes: kill meanwhile.
  const start = await request(`${base}/blobs/uploads/`, 'POST');
  expect(start.status).toBe(202);
  const location = new URL(String(start.headers.location), `http://${first.registry}`).href;
  const patch = http.request(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' } });
  patch.on('error', () => undefined);
  patch.write(blob.subarray(0, blob.length / 2));
  await new Promise((r) => setTimeout(r, 300));
  // The registry really is mid-upload: the session's partial file is on disk.
  expect((await readdir(join(dataDir, 'uploads'))).length).toBeGreaterThan(0);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));

  const second = await startServer();
  const again = `http://${second.registry}/v2/kill/test`;
  // The seeded samples were acknowledged before the kill and are still served.
  expect((await request(`http://${second.registry}/v2/samples/hello/manifests/v1`, 'HEAD')).status).toBe(200);
  expect((await request(`${again}/blobs/${digest}`, 'HEAD')).status).toBe(404);
  const stored = await everyBlobMatchesItsDigest();
  expect(stored).toBeGreaterThan(0);

  // The same blob uploads cleanly now, and is served whole.
  const put = await request(`${again}/blobs/uploads/?digest=${digest}`, 'POST', blob);
  expect(put.status).toBe(201);
  const head = await request(`${again}/blobs/${digest}`, 'HEAD');
  expect(head.status).toBe(200);
  expect(Number(head.headers['content-length'])).toBe(blob.length);
  await everyBlobMatchesItsDigest();
  second.child.kill('SIGTERM');
});

/**
 * The built page as the server sends it (issue 14, first load): the build's precompress plugin
 * (scripts/precompress.ts) writes .br and .gz copies, and the app (server/app.ts) sends the one the
 * client accepts with Content-Encoding and Vary, caches hashed assets for a year (immutable) and
 * makes index.html revalidate, with the page's CSP and security headers unchanged. Through
 * `app.request()` (the bytes as sent, not decoded) and once over real HTTP on loopback.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Plugin } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, createApp } from '../../../server/app.ts';
import { serveApp } from '../../../server/serve.ts';
import { precompress } from '../../../scripts/precompress.ts';

const SCRIPT = `export const page = ${JSON.stringify('cosign-web '.repeat(500))};\n`;
const ASSET = '/assets/index-D1iZYrGR.js';
const HTML = `<!doctype html><title>cosign-web</title><script type="module" src="${ASSET}"></script>${'<!-- padding -->'.repeat(80)}`;
const IMMUTABLE = 'public, max-age=31536000, immutable';

let root: string;

/** Runs the plugin's writeBundle hook on `dir` as Vite does after writing these files. */
async function runPrecompress(dir: string, files: string[]): Promise<void> {
  const plugin: Plugin = precompress();
  const hook = plugin.writeBundle as (this: unknown, o: { dir: string }, b: Record<string, unknown>) => Promise<void>;
  await hook.call({}, { dir }, Object.fromEntries(files.map((f) => [f, {}])));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cosign-web-static-'));
  await mkdir(join(root, 'assets'));
  await writeFile(join(root, 'index.html'), HTML);
  await writeFile(join(root, ASSET.slice(1)), SCRIPT);
  await writeFile(join(root, 'assets/tiny-AAAAAAAA.js'), 'export {};\n');
  await runPrecompress(root, ['index.html', ASSET.slice(1), 'assets/tiny-AAAAAAAA.js']);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('precompress plugin', () => {
  it('writes .br and .gz beside files worth compressing, and nothing beside tiny ones', async () => {
    const names = (await readdir(join(root, 'assets'))).sort();
    expect(names).toEqual(['index-D1iZYrGR.js', 'index-D1iZYrGR.js.br', 'index-D1iZYrGR.js.gz', 'tiny-AAAAAAAA.js']);
    expect((await readdir(root)).filter((n) => n.startsWith('index.html')).sort()).toEqual([
      'index.html',
      'index.html.br',
      'index.html.gz',
    ]);
  });
});

describe('static files, compressed and cached', () => {
  const app = (): ReturnType<typeof createApp> => createApp({ staticRoot: root });
  const get = (path: string, acceptEncoding?: string): Promise<Response> =>
    Promise.resolve(app().request(path, { headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {} }));

  it('sends brotli to a browser that takes it, the same bytes once decoded', async () => {
    const res = await get(ASSET, 'gzip, deflate, br, zstd');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('br');
    expect(res.headers.get('vary')).toBe('Accept-Encoding');
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    expect(body.length).toBeLessThan(SCRIPT.length / 10);
    expect(brotliDecompressSync(body).toString()).toBe(SCRIPT);
  });

  it('sends gzip when brotli is not accepted, and the plain file when nothing is', async () => {
    const gz = await get(ASSET, 'gzip');
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(Buffer.from(await gz.arrayBuffer())).toString()).toBe(SCRIPT);
    const plain = await get(ASSET);
    expect(plain.headers.get('content-encoding')).toBeNull();
    expect(plain.headers.get('vary')).toBe('Accept-Encoding');
    expect(await plain.text()).toBe(SCRIPT);
  });

  it('caches a hashed asset for a year, immutable, compressed or not', async () => {
    for (const ae of ['br', 'gzip', undefined]) {
      expect((await get(ASSET, ae)).headers.get('cache-control'), String(ae)).toBe(IMMUTABLE);
    }
    expect((await get('/assets/tiny-AAAAAAAA.js', 'br')).headers.get('cache-control')).toBe(IMMUTABLE);
  });

  it('makes index.html revalidate on every load, and keeps the page headers on it', async () => {
    for (const path of ['/', '/index.html']) {
      const res = await get(path, 'gzip, br');
      expect(res.headers.get('cache-control'), path).toBe('no-cache');
      expect(res.headers.get('content-encoding'), path).toBe('br');
      expect(brotliDecompressSync(Buffer.from(await res.arrayBuffer())).toString()).toBe(HTML);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    }
  });

  it('caches nothing it does not find: a missing asset is the JSON 404 without immutable', async () => {
    const res = await get('/assets/gone-ZZZZZZZZ.js', 'br');
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).not.toBe(IMMUTABLE);
    expect(res.headers.get('content-encoding')).toBeNull();
  });

  it('keeps the encoding and caching headers over real HTTP on loopback', async () => {
    const { server, port } = await serveApp(createApp({ staticRoot: root }), { port: 0, hostname: '127.0.0.1' });
    try {
      const { headers, body } = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>(
        (resolve, reject) => {
          const req = http.get(
            { host: '127.0.0.1', port, path: ASSET, headers: { host: `localhost:${port}`, 'accept-encoding': 'br' } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
            },
          );
          req.on('error', reject);
        },
      );
      expect(headers['content-encoding']).toBe('br');
      expect(headers['cache-control']).toBe(IMMUTABLE);
      expect(headers.vary).toBe('Accept-Encoding');
      expect(brotliDecompressSync(body).toString()).toBe(SCRIPT);
    } finally {
      server.close();
    }
  });
});

/**
 * The JSON endpoints' body limit (server/body-limit.ts; issue #12, item 2) over a real socket: a
 * large streamed body without Content-Length is refused with 413 REQUEST_TOO_LARGE as soon as it
 * passes the limit, long before it ends, and the server's memory stays flat; a Content-Length over
 * the limit is refused before any of the body is read.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../server/app.ts';
import { serveApp } from '../../../server/serve.ts';
import { Site } from '../../../server/site.ts';
import { testStaticRoot } from './loopback.ts';

const MiB = 1024 * 1024;
let server: { close(cb: () => void): unknown };
let port: number;

beforeAll(async () => {
  const app = createApp({
    staticRoot: testStaticRoot(),
    site: new Site(),
    relay: { localRegistries: ['localhost:5000'] },
  });
  ({ server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' }));
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

interface Outcome {
  status: number;
  body: string;
  /** Bytes of the body written when the answer arrived. */
  sentBeforeAnswer: number;
}

/**
 * POSTs up to `total` bytes of a JSON string in 1 MiB chunks (chunked unless `contentLength`),
 * stopping as soon as the answer arrives.
 */
function streamPost(path: string, total: number, contentLength?: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(contentLength === undefined ? {} : { 'Content-Length': String(contentLength) }),
      },
    });
    req.on('response', (res) => {
      answered = true;
      const at = sent;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), sentBeforeAnswer: at });
      });
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    const chunk = Buffer.alloc(MiB, 'a');
    const pump = (): void => {
      if (sent === 0) {
        req.write('{"key":"');
      }
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end('"}');
    };
    pump();
  });
}

describe('the JSON body limit', () => {
  it('refuses a large chunked body early, with 413, and memory stays flat', async () => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    const out = await streamPost('/locks/acquire', 256 * MiB);
    const after = process.memoryUsage().rss;
    expect(out.status).toBe(413);
    expect(JSON.parse(out.body)).toEqual({
      code: 'REQUEST_TOO_LARGE',
      message: 'A request body here is at most 16384 bytes.',
    });
    // Answered while most of the 256 MiB was still to come (socket buffers hold a few MiB).
    expect(out.sentBeforeAnswer).toBeLessThan(32 * MiB);
    // Generous: before the limit, the whole body was buffered (RSS grew by more than 256 MiB).
    expect(after - before).toBeLessThan(96 * MiB);
  });

  it('refuses a Content-Length over the limit before reading the body', async () => {
    const out = await streamPost('/locks/acquire', 64 * MiB, 768 * MiB);
    expect(out.status).toBe(413);
    expect(JSON.parse(out.body).code).toBe('REQUEST_TOO_LARGE');
    expect(out.sentBeforeAnswer).toBeLessThan(32 * MiB);
  });

  it('still takes a lock request of ordinary size', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/locks/acquire`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ key: 'localhost:5000/a/b:v1' }),
    });
    expect(res.status).toBe(200);
  });
});

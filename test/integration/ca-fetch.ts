/**
 * A `fetch` for Node tests that trusts an extra CA (the rig's throwaway CA) without touching the
 * process's global trust store: node:http/https underneath, WHATWG Request/Response outside.
 * Loopback only: it refuses any other host, so a test cannot reach the network by mistake.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** `caFile`: path of a PEM CA bundle to trust in addition to nothing else (the rig's CA). */
export function caFetch(caFile?: string): typeof fetch {
  const agent = new https.Agent({ ...(caFile ? { ca: readFileSync(caFile, 'utf8') } : {}), keepAlive: true });
  return async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    if (!LOOPBACK.has(url.hostname)) throw new TypeError(`test fetch refuses non-loopback host ${url.hostname}`);
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => (headers[k] = v));
    if (body) headers['content-length'] = String(body.length);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const r = mod.request(
        url,
        { method: req.method, headers, ...(url.protocol === 'https:' ? { agent } : {}) },
        (res) => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (Array.isArray(v)) for (const x of v) h.append(k, x);
            else if (v !== undefined) h.set(k, v);
          }
          const status = res.statusCode ?? 500;
          const noBody = req.method === 'HEAD' || status === 204 || status === 304;
          if (noBody) res.resume();
          resolve(
            new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: h }),
          );
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  };
}

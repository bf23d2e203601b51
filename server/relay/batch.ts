/**
 * Many small blob reads in one request: `POST /relay/_batch {"paths": ["/relay/<host>/v2/<repo>/blobs/sha256:<hex>", …]}`.
 * Verifying a `.sig` of 100 signatures reads 100 payload blobs; a browser speaks HTTP/1.1 to a
 * loopback server and keeps at most six requests to it in flight, so the page waits on the
 * connection limit, not on the registry. Here the server runs the reads side by side.
 *
 * It is not a second relay: each path is handed, as a GET, to the relay's own handler (the same
 * instance, server/relay/relay.ts), so the allowlist, the address checks, the redirect checks and
 * the log line are exactly those of a single request. What a batch may name is narrower still:
 * only blob reads by sha256 digest, all on one registry host (the request's Authorization, if
 * any, goes to each of them, as the page would send it to each), at most MAX_ITEMS, each answer
 * at most MAX_ITEM_BYTES (what the page reads of a signature blob). The client checks every
 * blob's size and digest, as for a single read, and reads any item not answered 200 on its own.
 *
 * The answer (200, `application/octet-stream`) is, for each path in order, a line
 * `<status> <length>\n` followed by that many bytes: the blob for 200, nothing otherwise.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { Hono } from 'hono';
import { RelayError } from '../../shared/errors.ts';

/** Most paths in one batch. */
export const MAX_ITEMS = 64;
/** Largest answer passed on per item: the page reads at most 1 MiB of a signature blob. */
export const MAX_ITEM_BYTES = 1024 * 1024;
/** Reads of one batch in flight at once. */
const AT_ONCE = 8;

const BLOB_PATH = /^\/relay\/([^/?#]+)\/v2\/[^?#]+\/blobs\/sha256:[0-9a-f]{64}$/;

const bad = (message: string): RelayError => new RelayError('RELAY_BAD_REQUEST', message, 400);

/** The batch's paths, checked. @throws RelayError RELAY_BAD_REQUEST */
function pathsOf(body: unknown): string[] {
  const paths = (body as { paths?: unknown } | null)?.paths;
  if (!Array.isArray(paths) || paths.length === 0 || paths.length > MAX_ITEMS) {
    throw bad(`A batch names 1 to ${MAX_ITEMS} blob paths in "paths".`);
  }
  let host: string | undefined;
  for (const p of paths) {
    const m = typeof p === 'string' ? BLOB_PATH.exec(p) : null;
    if (!m || p.includes('/../') || p.includes('/./')) {
      throw bad('A batch names only blob reads: /relay/<registry>/v2/<repository>/blobs/sha256:<64 hex digits>.');
    }
    if (host !== undefined && m[1] !== host) throw bad('The paths of one batch are all on one registry.');
    host = m[1];
  }
  return paths as string[];
}

/** An answer's body, or null (and the rest left unread) once it passes MAX_ITEM_BYTES. */
async function readCapped(res: Response): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > MAX_ITEM_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** One item's answer: its status and, for a 200 within the limit, its bytes. */
async function readItem(inner: Hono, path: string, headers: Headers, signal: AbortSignal): Promise<Uint8Array> {
  let status: number;
  let bytes: Uint8Array = new Uint8Array(0);
  try {
    const res = await inner.request(path, { method: 'GET', headers, signal });
    status = res.status;
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (status === 200 && !(length > MAX_ITEM_BYTES)) {
      const body = await readCapped(res);
      if (body) bytes = body;
      else status = 413;
    } else {
      if (status === 200) status = 413;
      await res.body?.cancel();
    }
  } catch {
    status = 502;
  }
  const head = new TextEncoder().encode(`${status} ${bytes.length}\n`);
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

/**
 * The batch route's handler, given the relay handler every item goes through.
 * @throws RelayError RELAY_BAD_REQUEST (400) for a body that is not a batch of blob paths on one registry
 */
export function relayBatch(relayHandler: MiddlewareHandler): (c: Context) => Promise<Response> {
  const inner = new Hono();
  inner.all('/relay/*', relayHandler);
  // An item the relay refuses answers with its status (and the client reads it on its own).
  inner.onError((e) => new Response(null, { status: e instanceof RelayError ? (e.status ?? 500) : 500 }));
  return async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw bad('A batch is a JSON object with "paths".');
    }
    const paths = pathsOf(body);
    const headers = new Headers();
    const authorization = c.req.header('authorization');
    if (authorization) headers.set('authorization', authorization);
    const signal = c.req.raw.signal;
    // AT_ONCE at a time, written in order as each is ready.
    let running = 0;
    const queue: (() => void)[] = [];
    const limited = async (path: string): Promise<Uint8Array> => {
      if (running >= AT_ONCE) await new Promise<void>((r) => queue.push(r));
      running++;
      try {
        return await readItem(inner, path, headers, signal);
      } finally {
        running--;
        queue.shift()?.();
      }
    };
    const reads = paths.map(limited);
    let i = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (i >= reads.length) return controller.close();
        controller.enqueue(await reads[i++]!);
      },
    });
    return new Response(stream, { status: 200, headers: { 'content-type': 'application/octet-stream' } });
  };
}

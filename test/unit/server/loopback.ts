/**
 * Helpers for the relay's unit tests: small HTTP servers on 127.0.0.1 that record what reaches
 * them, the relay app built with test options, and upstream hooks that prove no connection was
 * attempted. Every server listens on loopback only; nothing here sends a packet anywhere else.
 */
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { createApp } from '../../../server/app.ts';
import type { RelayOptions, RequestUpstream } from '../../../server/relay/config.ts';
import { Site } from '../../../server/site.ts';

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface Loopback {
  port: number;
  /** "127.0.0.1:PORT" */
  authority: string;
  requests: Recorded[];
  /** Calls `f` when any connection to this server closes. */
  onClose(f: () => void): void;
  close(): Promise<void>;
}

export type LoopbackHandler = (req: Recorded, res: http.ServerResponse) => void;

/** Starts an HTTP server on 127.0.0.1 that reads each request body fully, records it, then calls `handler`. */
export async function startLoopback(handler: LoopbackHandler): Promise<Loopback> {
  const requests: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      };
      requests.push(rec);
      handler(rec, res);
    });
  });
  return listen(server, requests);
}

/** A server on 127.0.0.1 that accepts connections and never answers. */
export async function startSilent(): Promise<Loopback> {
  const requests: Recorded[] = [];
  const server = http.createServer((req) => {
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: [],
      body: Buffer.alloc(0),
    });
    req.resume();
  });
  return listen(server, requests);
}

async function listen(server: http.Server, requests: Recorded[]): Promise<Loopback> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    authority: `127.0.0.1:${port}`,
    requests,
    onClose: (f) => {
      for (const socket of sockets) socket.once('close', f);
      server.on('connection', (socket: net.Socket) => socket.once('close', f));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 with nothing listening on it (bound, read, released). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * A folder standing in for the built page: an index.html, and a source map the server must not serve. Checked in, read-only, so no test
 * run leaves a temporary copy behind.
 */
export function testStaticRoot(): string {
  return join(import.meta.dirname, 'static-root');
}

/**
 * The app with the relay configured by `relay`; log lines collected in `lines`. Its page origin is
 * `http://localhost` (port 80), where `app.request('/…')` addresses it.
 */
export function relayApp(relay: RelayOptions): { app: ReturnType<typeof createApp>; lines: string[] } {
  const lines: string[] = [];
  const app = createApp({
    staticRoot: testStaticRoot(),
    relay: { log: (l) => lines.push(l), ...relay },
    site: new Site({ ports: [80] }),
  });
  return { app, lines };
}

/** A resolver stub that answers from a table and records every name asked. */
export function stubLookup(table: Record<string, string[]>): {
  lookup: (host: string) => Promise<LookupAddress[]>;
  asked: string[];
} {
  const asked: string[] = [];
  return {
    asked,
    lookup: async (host) => {
      asked.push(host);
      const addresses = table[host];
      if (addresses === undefined) {
        const err: NodeJS.ErrnoException = new Error(`stub: no such host ${host}`);
        err.code = 'ENOTFOUND';
        throw err;
      }
      return addresses.map((address) => ({ address, family: net.isIPv6(address) ? 6 : 4 }));
    },
  };
}

export interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * A stand-in for http.ClientRequest that never opens a socket: it swallows the body, then either
 * emits the scripted response or fails as a refused connection would.
 */
class FakeRequest extends Writable {
  readonly #answer: FakeAnswer | undefined;
  constructor(answer: FakeAnswer | undefined) {
    super();
    this.#answer = answer;
  }
  override _write(_chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    cb();
  }
  override _final(cb: (err?: Error | null) => void): void {
    cb();
    process.nextTick(() => {
      const answer = this.#answer;
      if (answer === undefined) {
        const err: NodeJS.ErrnoException = new Error('stub: connection refused');
        err.code = 'ECONNREFUSED';
        this.destroy(err);
        return;
      }
      const res = Readable.from(answer.body === undefined ? [] : [Buffer.from(answer.body)]) as Readable & {
        statusCode: number;
        headers: http.IncomingHttpHeaders;
      };
      res.statusCode = answer.status;
      res.headers = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      this.emit('response', res);
    });
  }
}

type Attempt = Parameters<RequestUpstream>[0];

/**
 * An upstream hook that records each attempt and never opens a socket: each attempt gets the next
 * scripted answer, or fails as a refused connection once the script is used up. Tests assert
 * `attempts` stays empty where nothing may connect.
 */
export function scriptedUpstream(answers: FakeAnswer[] = []): {
  requestUpstream: RequestUpstream;
  attempts: Attempt[];
} {
  const attempts: Attempt[] = [];
  const requestUpstream: RequestUpstream = (options) => {
    attempts.push(options);
    return new FakeRequest(answers.shift()) as unknown as http.ClientRequest;
  };
  return { requestUpstream, attempts };
}

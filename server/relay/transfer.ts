/**
 * The relay's blob transfer, `POST /relay-transfer` (the order's shape: shared/registry/transfer.ts):
 * one blob streamed from a source registry straight into an upload session the page opened on the
 * destination, so a copy's bytes cross the relay once instead of going through the page.
 *
 * - Both ends pass the same checks as any relayed request, before anything connects: the host on
 *   the allowlist (RELAY_ALLOWED_REGISTRIES, never a read-only TUF host), the registry API path,
 *   every resolved address checked and the connection pinned to it (upstream.ts), redirects of the
 *   source followed as the relay follows a GET's.
 * - The Authorization of each side comes with the order and goes to that side only, for this one
 *   transfer; it is never stored or logged.
 * - The bytes are hashed on the way and the upload is closed in the same request (`PUT ?digest=`
 *   with the whole body, https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-a-blob-monolithically);
 *   the last chunk is held back until the size and digest are checked, so a source that lies
 *   never completes the upload (the session is then deleted).
 * - The answer streams progress as NDJSON lines; a refusal before any byte moves is an ordinary
 *   relay error (the page then sends the bytes itself).
 * - One log line per transfer: both hosts and paths without query, outcome, bytes, time.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { createHash } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { CosignWebError, RegistryError, RelayError } from '../../shared/errors.ts';
import { TRANSFER_CONTENT_TYPE, type TransferLine, type TransferOrder } from '../../shared/registry/transfer.ts';
import { normaliseRelayOptions, type RelayConfig, type RelayOptions } from './config.ts';
import { RELAY_USER_AGENT } from './headers.ts';
import { isRegistryApiPath } from './realms.ts';
import { exchange, notAllowed, type Sender } from './relay.ts';
import { parseRelayTarget } from './target.ts';
import { makeAgents, resolveChecked, sendUpstream, type Agents, type Hop } from './upstream.ts';

/** Largest transfer order (two authorizations and an upload location). */
export const TRANSFER_ORDER_BYTES = 64 * 1024;
/** Largest Authorization value taken for one side (registry tokens are a few KiB at most). */
const MAX_AUTHORIZATION_CHARS = 16 * 1024;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** A host (name, IPv4, [IPv6]) and optional port, nothing else: the path is the relay's to build. */
const AUTHORITY = /^[A-Za-z0-9.\-[\]:]+$/;
const UPLOAD_PATH = /^\/v2\/.+\/blobs\/uploads\/[^/]+$/;
/** Progress lines at most this often. */
const PROGRESS_MS = 200;

function bad(message: string): RelayError {
  return new RelayError('RELAY_BAD_REQUEST', message, 400);
}

function failed(message: string): RelayError {
  return new RelayError('RELAY_TRANSFER_FAILED', message, 502);
}

function authorization(value: unknown, side: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_AUTHORIZATION_CHARS || !/^[\x21-\x7e][\x20-\x7e]*$/.test(value)) {
    throw bad(`The ${side} authorization of a transfer must be one header value of visible ASCII.`);
  }
  return value;
}

/**
 * The order, checked field by field. @throws RelayError RELAY_BAD_REQUEST
 */
function checkOrder(body: unknown): TransferOrder {
  const o = body as { from?: Record<string, unknown>; to?: Record<string, unknown> } | null;
  const from = o?.from;
  const to = o?.to;
  if (typeof from !== 'object' || from === null || typeof to !== 'object' || to === null) {
    throw bad('A transfer order is JSON {from: {registry, repository, digest, size}, to: {location}}.');
  }
  const { registry, repository, digest, size } = from;
  const location = to.location;
  if (typeof registry !== 'string' || registry.length > 300 || !AUTHORITY.test(registry)) {
    throw bad('The transfer names no source registry (host[:port]).');
  }
  if (typeof repository !== 'string' || repository.length > 255 || !REPOSITORY.test(repository)) {
    throw bad('The transfer names no valid source repository.');
  }
  if (typeof digest !== 'string' || !DIGEST.test(digest)) throw bad('The transfer names no sha256 digest.');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad('The transfer names no size.');
  if (typeof location !== 'string' || location.length > 4096) throw bad('The transfer names no upload location.');
  const fromAuth = authorization(from.authorization, 'source');
  const toAuth = authorization(to.authorization, 'destination');
  return {
    from: { registry, repository, digest, size, ...(fromAuth ? { authorization: fromAuth } : {}) },
    to: { location, ...(toAuth ? { authorization: toAuth } : {}) },
  };
}

/**
 * A hop for `host[:port]` and a path with query, checked as a relay path: syntax, allowlist
 * (no read-only host), registry API path. @throws RelayError RELAY_BAD_REQUEST, RELAY_UPSTREAM_NOT_ALLOWED
 */
function checkedHop(config: RelayConfig, authority: string, pathAndQuery: string): Hop {
  const target = parseRelayTarget(`/relay/${authority}${pathAndQuery}`, config.schemeFor);
  if (!config.isDirect(target, target.port)) throw notAllowed(target.authority);
  if (!isRegistryApiPath(target.path)) throw bad('A transfer reaches the registry API (/v2/…) only.');
  return { ...target, pathAndQuery: `${target.path}${target.query}` };
}

/** The destination's upload session as a hop, the digest added to its query. @throws RelayError RELAY_BAD_REQUEST, RELAY_UPSTREAM_NOT_ALLOWED */
function uploadHop(config: RelayConfig, order: TransferOrder): Hop {
  let u: URL;
  try {
    u = new URL(order.to.location);
  } catch {
    throw bad('The upload location of a transfer is not a URL.');
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '' || u.hash !== '') {
    throw bad('The upload location of a transfer must be an http(s) URL without credentials or fragment.');
  }
  if (!UPLOAD_PATH.test(u.pathname)) throw bad('The upload location of a transfer is not an upload session.');
  const query = `${u.search === '' ? '?' : `${u.search}&`}digest=${order.from.digest}`;
  return checkedHop(config, u.host, `${u.pathname}${query}`);
}

function headersWith(auth: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { ...extra, ...(auth ? { authorization: auth } : {}), 'user-agent': RELAY_USER_AGENT };
}

/**
 * Bytes passed on to the destination at a time. A TLS source gives 16 KiB pieces; written one by
 * one, each cost the relay a socket write (a system call) and its bookkeeping, the largest part of
 * its CPU per byte, on the two cores it shares with both registries.
 */
export const PASS_BYTES = 256 * 1024;

/**
 * Passes the bytes on in pieces of about PASS_BYTES while hashing them, holding the last chunk
 * back until size and digest are checked: a body that is not the blob never reaches its end, so
 * the upload is never completed.
 */
export class Checked extends Transform {
  readonly #hash = createHash('sha256');
  #seen = 0;
  #held: Buffer | null = null;
  /** Chunks checked into the hash and not yet passed on, before the held one. */
  #ready: Buffer[] = [];
  #readyBytes = 0;
  /** The source's lie, once found. */
  mismatch: RegistryError | null = null;

  /** `passed` hears of each chunk as it is passed on (counted here: no second 'data' listener per chunk). */
  constructor(
    private readonly want: { digest: string; size: number },
    private readonly passed: (bytes: number) => void,
  ) {
    super();
  }

  #refuse(e: RegistryError, cb: TransformCallback): void {
    this.mismatch = e;
    cb(e);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.want.size) {
      this.#refuse(
        new RegistryError(
          'REGISTRY_SIZE_MISMATCH',
          `The source sent more than the ${this.want.size} bytes its descriptor gives for blob ${this.want.digest}; the relay did not complete the upload.`,
        ),
        cb,
      );
      return;
    }
    this.#hash.update(chunk);
    if (this.#held) {
      this.#ready.push(this.#held);
      this.#readyBytes += this.#held.length;
    }
    this.#held = chunk;
    cb(null, this.#readyBytes >= PASS_BYTES ? this.#take() : undefined);
  }

  /** The ready chunks as one buffer, counted as passed on. */
  #take(): Buffer | undefined {
    if (this.#readyBytes === 0) return undefined;
    const out = this.#ready.length === 1 ? this.#ready[0]! : Buffer.concat(this.#ready, this.#readyBytes);
    this.passed(this.#readyBytes);
    this.#ready = [];
    this.#readyBytes = 0;
    return out;
  }

  override _flush(cb: TransformCallback): void {
    const { size, digest } = this.want;
    if (this.#seen !== size) {
      this.#refuse(
        new RegistryError(
          'REGISTRY_SIZE_MISMATCH',
          `The source sent ${this.#seen} bytes for blob ${digest}, but its descriptor says ${size}; the relay did not complete the upload.`,
        ),
        cb,
      );
      return;
    }
    const actual = `sha256:${this.#hash.digest('hex')}`;
    if (actual !== digest) {
      this.#refuse(
        new RegistryError(
          'REGISTRY_DIGEST_MISMATCH',
          `The source's blob ${digest} does not match its digest: its bytes hash to ${actual}; the relay did not complete the upload.`,
        ),
        cb,
      );
      return;
    }
    const ready = this.#take();
    if (ready) this.push(ready);
    if (this.#held) this.passed(this.#held.length);
    cb(null, this.#held ?? undefined);
  }
}

/** Reads at most 64 KiB of an upstream error answer: the OCI error's code and message, when there is one. */
async function errorDetail(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of res) {
      total += (chunk as Buffer).length;
      if (total > 64 * 1024) break;
      chunks.push(chunk as Buffer);
    }
    const first = (
      JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: string; message?: string }[] }
    ).errors?.[0];
    return first ? ` (${[first.code, first.message].filter(Boolean).join(': ')})` : '';
  } catch {
    return '';
  } finally {
    res.destroy();
  }
}

/** One transfer as it runs. */
interface Run {
  config: RelayConfig;
  agents: Agents;
  order: TransferOrder;
  source: Hop;
  upload: Hop;
  uploadAddresses: LookupAddress[];
  abort: AbortController;
  bytes: number;
}

/**
 * Opens the source blob (redirects followed and checked). Before any byte moves, so a refusal is
 * an ordinary relay error. @throws RelayError RELAY_TRANSFER_FAILED (502) when the source does not
 * serve the blob as ordered, and the relay's upstream codes
 */
async function openSource(
  r: Pick<Run, 'config' | 'agents' | 'order' | 'source' | 'abort'>,
  addresses: LookupAddress[],
): Promise<IncomingMessage> {
  const sender: Sender = {
    config: r.config,
    agents: r.agents,
    entry: { redirects: 0, bytesUp: 0 },
    method: 'GET',
    signal: r.abort.signal,
  };
  const { from } = r.order;
  const { res } = await exchange(sender, { hop: r.source, addresses }, headersWith(from.authorization), null);
  const what = `blob ${from.digest} of ${from.registry}/${from.repository}`;
  if (res.statusCode !== 200) {
    throw failed(`The source registry said ${res.statusCode} for ${what}${await errorDetail(res)}.`);
  }
  const length = res.headers['content-length'];
  if (res.headers['content-encoding'] !== undefined || (length !== undefined && Number(length) !== from.size)) {
    res.destroy();
    throw failed(`The source registry serves ${what} as ${length ?? 'an unknown number of'} bytes, not ${from.size}.`);
  }
  return res;
}

/**
 * Streams the source into the upload and closes it (`PUT ?digest=` with the body), calling
 * `progress` as bytes go up. On any failure the upload session is deleted, best effort.
 * @throws RegistryError REGISTRY_DIGEST_MISMATCH, REGISTRY_SIZE_MISMATCH (the source lied);
 *   RelayError RELAY_TRANSFER_FAILED and the relay's upstream codes
 */
async function pour(r: Run, source: IncomingMessage, progress: () => void): Promise<void> {
  const { from, to } = r.order;
  const checked = new Checked(from, (n) => {
    r.bytes += n;
    progress();
  });
  pipeline(source, checked, () => undefined);
  try {
    const res = await sendUpstream({
      hop: r.upload,
      addresses: r.uploadAddresses,
      method: 'PUT',
      headers: headersWith(to.authorization, {
        'content-type': 'application/octet-stream',
        'content-length': String(from.size),
      }),
      body: checked,
      config: r.config,
      agents: r.agents,
      signal: r.abort.signal,
    }).catch((e: unknown) => {
      throw checked.mismatch ?? e;
    });
    if (res.statusCode !== 201 && res.statusCode !== 204) {
      throw failed(
        `The destination registry at ${r.upload.authority} said ${res.statusCode} to closing the upload of blob ${from.digest}${await errorDetail(res)}.`,
      );
    }
    res.resume();
    const claimed = res.headers['docker-content-digest'];
    if (claimed !== undefined && claimed !== from.digest) {
      throw failed(`The destination registry stored the blob as ${String(claimed)}, not ${from.digest}.`);
    }
  } catch (e) {
    source.destroy();
    await deleteUpload(r);
    throw e;
  }
}

/** Abandons the destination's upload session (`DELETE`); a registry that fails this expires it itself. */
async function deleteUpload(r: Run): Promise<void> {
  const path = r.upload.pathAndQuery.replace(/[?&]digest=[^&]*$/, '');
  try {
    const res = await sendUpstream({
      hop: { ...r.upload, pathAndQuery: path },
      addresses: r.uploadAddresses,
      method: 'DELETE',
      headers: headersWith(r.order.to.authorization),
      body: null,
      config: r.config,
      agents: r.agents,
    });
    res.resume();
  } catch {
    // best effort
  }
}

async function readOrder(c: Context): Promise<TransferOrder> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch (e) {
    if (e instanceof CosignWebError) throw e;
    throw bad('A transfer order is a JSON object.');
  }
  return checkOrder(body);
}

function logLine(r: Pick<Run, 'source' | 'upload'> | null, started: number, outcome: string, bytes: number): string {
  const ms = Math.round(performance.now() - started);
  const ends = r
    ? `${r.source.authority} ${r.source.pathAndQuery} -> ${r.upload.authority} ${r.upload.pathAndQuery.replace(/\?.*$/, '')}`
    : '- -';
  return `relay TRANSFER ${ends} ${outcome} up=${bytes}B ${ms}ms`;
}

/** The answer: progress lines while the blob goes up, then the outcome. */
function progressAnswer(r: Run, source: IncomingMessage, started: number): Response {
  const encoder = new TextEncoder();
  let last = 0;
  let closed = false;
  return new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (line: TransferLine): void => {
          if (!closed) controller.enqueue(encoder.encode(`${JSON.stringify(line)}\n`));
        };
        const progress = (): void => {
          const now = performance.now();
          if (now - last < PROGRESS_MS) return;
          last = now;
          send({ bytes: r.bytes });
        };
        pour(r, source, progress)
          .then(
            () => {
              send({ bytes: r.bytes, done: true });
              r.config.log(logLine(r, started, '200', r.bytes));
            },
            (e: unknown) => {
              const err = e instanceof CosignWebError ? e : failed('The relay failed while transferring the blob.');
              send({ error: { code: err.code, message: err.message } });
              r.config.log(logLine(r, started, err.code, r.bytes));
            },
          )
          .finally(() => {
            if (closed) return;
            closed = true;
            controller.close();
          });
      },
      cancel() {
        closed = true;
        r.abort.abort();
      },
    }),
    { status: 200, headers: { 'content-type': TRANSFER_CONTENT_TYPE } },
  );
}

/**
 * The transfer handler, for `app.all('/relay-transfer', relayTransfer(options))` behind the
 * relay's origin check and a JSON body limit.
 * @throws RelayError (to app.onError) for every refusal before a byte moves: RELAY_METHOD_NOT_ALLOWED
 *   (405), RELAY_BAD_REQUEST, RELAY_UPSTREAM_NOT_ALLOWED, RELAY_ADDRESS_REFUSED (403 and 400),
 *   RELAY_TRANSFER_FAILED (502) when the source does not serve the blob, the upstream codes
 */
export function relayTransfer(options: RelayOptions = {}): MiddlewareHandler {
  const config = normaliseRelayOptions(options);
  const agents = makeAgents(config);
  return async (c) => {
    const started = performance.now();
    let run: Omit<Run, 'uploadAddresses' | 'bytes'> | null = null;
    try {
      if (c.req.method !== 'POST') {
        c.header('Allow', 'POST');
        throw new RelayError('RELAY_METHOD_NOT_ALLOWED', 'A blob transfer is ordered with POST.', 405);
      }
      const order = await readOrder(c);
      const { from } = order;
      const source = checkedHop(config, from.registry, `/v2/${from.repository}/blobs/${from.digest}`);
      const upload = uploadHop(config, order);
      const abort = new AbortController();
      run = { config, agents, order, source, upload, abort };
      // Both ends resolved and checked before anything connects.
      const [sourceAddresses, uploadAddresses] = await Promise.all([
        resolveChecked(source, config),
        resolveChecked(upload, config),
      ]);
      const res = await openSource(run, sourceAddresses);
      return progressAnswer({ ...run, uploadAddresses, bytes: 0 }, res, started);
    } catch (e) {
      const code = e instanceof CosignWebError ? e.code : 'RELAY_INTERNAL';
      config.log(logLine(run, started, code, 0));
      throw e;
    }
  };
}

/**
 * An OCI distribution-spec client (https://github.com/opencontainers/distribution-spec/blob/main/spec.md)
 * that takes its `fetch` from the caller: in the page every request goes through the relay
 * (`relayRouting`), in Node tests it can talk to a registry directly. It authenticates as Docker
 * clients do (auth.ts), checks the digest and size of everything it fetches, and turns every
 * failure into a RegistryError (or the relay's RelayError) with a sentence a person understands.
 */
import { RegistryError, RelayError, type RegistryErrorCode, type RelayErrorCode } from '../errors.ts';
import { RELAY_ERROR_HEADER, relayMessageOf } from './relay-error.ts';
import { sha256Digest } from '../crypto/digest.ts';
import { AuthCache, basicAuthorization, parseChallenges, readTokenResponse, type Credentials } from './auth.ts';
import { MANIFEST_ACCEPT, MT, type Descriptor } from './mediatypes.ts';
import { apiHost, isSha256Digest, isValidTag } from './reference.ts';
import { readUpTo } from './body.ts';
import { readTransferAnswer, TRANSFER_CONTENT_TYPE, TRANSFER_PATH, type TransferOrder } from './transfer.ts';
import { MAX_JSON_DEPTH, jsonDepthWithin } from '../encoding/json-depth.ts';

/** A repository in a registry. */
export interface RepoRef {
  registry: string;
  repository: string;
}

export interface RegistryClientOptions {
  fetch: typeof globalThis.fetch;
  /** Maps an upstream URL to the URL actually fetched (the relay's path); default: unchanged. */
  route?: (upstream: URL) => string;
  /** Maps a URL the server returned (e.g. an upload Location the relay rewrote) back upstream. */
  unroute?: (fetched: URL) => URL | null;
  /** Which scheme a registry speaks; default https. (Through the relay the relay decides.) */
  scheme?: (registry: string) => 'https' | 'http';
  /** Credentials per registry host, asked for when a registry challenges. */
  credentials?: (registry: string) => Credentials | undefined;
  /** Largest manifest accepted, in bytes (default 4 MiB, as distribution's limit). */
  maxManifestBytes?: number;
  /** Largest blob read into memory by getBlob (default 64 MiB). */
  maxBlobBytes?: number;
  /** The relay's batch route for small blob reads (relayRouting sets it); none: getBlobs reads nothing. */
  batch?: string;
  /** URL of the relay's blob transfer (transfer.ts), when there is one: transferBlob uses it. */
  transfer?: string;
}

export interface Manifest {
  descriptor: Descriptor;
  bytes: Uint8Array;
  /** The parsed JSON. */
  json: Record<string, unknown>;
  /** The answer's ETag header exactly as sent (quotes included), or null: putManifest's `ifMatch`. */
  etag: string | null;
}

/** Options of putManifest. */
export interface PutManifestOptions {
  /**
   * Write only if the tag's current ETag is this one (`If-Match`, RFC 9110 §13.1.1), as getManifest
   * returned it. A registry that ignores If-Match writes anyway.
   */
  ifMatch?: string;
}

export interface ReferrersResult {
  descriptors: Descriptor[];
  /** 'api': the OCI 1.1 referrers API; 'tag-schema': the `sha256-<hex>` fallback index. */
  via: 'api' | 'tag-schema';
  /** True when the registry applied the artifactType filter itself. */
  filtersApplied: boolean;
  /** With 'tag-schema': the digest of the fallback index read, when there is one. */
  indexDigest?: string;
}

/** A blob being read: its body streams, unbuffered. */
export interface BlobStream {
  body: ReadableStream<Uint8Array>;
  /** Content-Length, or the expected size when the registry sent none (NaN when neither). */
  size: number;
}

/** A chunked upload in progress: where to send the next chunk and how many bytes went so far. */
export interface UploadSession {
  repo: RepoRef;
  location: URL;
  offset: number;
}

/** A manifest or blob exactly as the registry served it, with the answer's headers (for Inspect). */
export interface RawResponse {
  bytes: Uint8Array;
  /** `sha256:<hex>` of the bytes, computed here. */
  digest: string;
  status: number;
  /** Every response header as received (names lower-case, in the order Headers iterates them). */
  headers: [string, string][];
  /** Content-Type without parameters ('' when absent). */
  mediaType: string;
  /** The Docker-Content-Digest header, or null. */
  registryDigest: string | null;
  /** The Content-Length header, or null when absent or not a number. */
  contentLength: number | null;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | Blob;
  /** Token scopes this request needs. */
  scopes: string[];
  /** Statuses that are success for this request. */
  ok: number[];
  /** What the request is about, for error sentences ("manifest sha256:…"). */
  what: string;
}

const MiB = 1024 * 1024;
/** Pages of a tag list followed (at the client's n=1000, up to a million tags). */
const MAX_TAG_PAGES = 1000;
/** Pages of a referrers answer followed (callers read a few hundred referrers at most). */
const MAX_REFERRER_PAGES = 64;

/** Routing through the relay served at `origin`: `https://host/path` ↔ `origin/relay/host/path`. */
export function relayRouting(origin: string): Pick<RegistryClientOptions, 'route' | 'unroute' | 'batch' | 'transfer'> {
  const base = new URL(origin);
  return {
    batch: `${base.origin}/relay/_batch`,
    transfer: `${base.origin}${TRANSFER_PATH}`,
    route: (u) => `${base.origin}/relay/${u.host}${u.pathname}${u.search}`,
    unroute: (u) => {
      if (u.origin !== base.origin || !u.pathname.startsWith('/relay/')) return null;
      const rest = u.pathname.slice('/relay/'.length);
      const slash = rest.indexOf('/');
      const host = slash < 0 ? rest : rest.slice(0, slash);
      return new URL(`https://${host}${slash < 0 ? '/' : rest.slice(slash)}${u.search}`);
    },
  };
}

/**
 * Splits a batch answer (`<status> <length>\n<bytes>` per blob, in order) into `out`, keeping the
 * blobs answered 200 whose size and digest are the ones asked for.
 */
function readBatch(
  bytes: Uint8Array,
  blobs: readonly { digest: string; size: number }[],
  out: Map<string, Uint8Array>,
): void {
  let at = 0;
  for (const b of blobs) {
    const eol = bytes.indexOf(10, at);
    if (eol < 0 || eol - at > 32) return;
    const [status, length] = new TextDecoder().decode(bytes.subarray(at, eol)).split(' ').map(Number);
    if (!Number.isSafeInteger(length) || length! < 0 || eol + 1 + length! > bytes.length) return;
    const blob = bytes.slice(eol + 1, eol + 1 + length!);
    at = eol + 1 + length!;
    if (status === 200 && blob.length === b.size && sha256Digest(blob) === b.digest) out.set(b.digest, blob);
  }
}

const STATUS_CODES: Record<number, RegistryErrorCode> = {
  401: 'REGISTRY_UNAUTHORIZED',
  403: 'REGISTRY_DENIED',
  404: 'REGISTRY_NOT_FOUND',
  405: 'REGISTRY_UNSUPPORTED',
  413: 'REGISTRY_TOO_LARGE',
  501: 'REGISTRY_UNSUPPORTED',
};

const STATUS_WORDS: Record<number, string> = {
  401: 'the credentials were refused or are missing',
  403: 'access is denied',
  404: 'not found',
  405: 'the registry does not allow this operation',
  413: 'too large for the registry',
  429: 'too many requests, try again later',
  501: 'the registry does not support this operation',
};

/** Reads at most `max` bytes of a response body. @throws RegistryError REGISTRY_TOO_LARGE */
async function readLimited(res: Response, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  const tooLarge = (): RegistryError =>
    new RegistryError(
      'REGISTRY_TOO_LARGE',
      `The registry's ${what} is larger than the ${Math.round(max / MiB)} MiB this page accepts.`,
    );
  if (declared > max) {
    await res.body?.cancel();
    throw tooLarge();
  }
  const bytes = await readUpTo(res.body, max);
  if (!bytes) throw tooLarge();
  return bytes;
}

function mediaTypeOf(res: Response): string {
  return (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
}

/** @throws RegistryError REGISTRY_UNSUPPORTED unless `digest` is `sha256:<64 lower-case hex>`. */
function checkSha256(digest: string): void {
  if (isSha256Digest(digest)) return;
  const shown = digest.length > 80 ? `${digest.slice(0, 80)}…` : digest;
  throw new RegistryError(
    'REGISTRY_UNSUPPORTED',
    `Only sha256 digests are supported, and "${shown}" is not one, so nothing is requested by it.`,
  );
}

/**
 * Parses bytes a registry sent as a JSON object.
 * @param what what the answer is, for the sentence ("the tags of library/alpine").
 * @throws RegistryError REGISTRY_BAD_RESPONSE, saying so plainly when it is a web page or nests more
 *   than MAX_JSON_DEPTH levels.
 */
function parseJsonObject(bytes: Uint8Array, registry: string, what: string, mediaType = ''): Record<string, unknown> {
  let json: unknown;
  let text = '';
  let tooDeep = false;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    tooDeep = !jsonDepthWithin(text);
    json = tooDeep ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (tooDeep) {
    throw new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      `${registry} answered ${what} nested more than ${MAX_JSON_DEPTH} levels deep, so it is not read.`,
    );
  }
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) return json as Record<string, unknown>;
  const page = mediaType === 'text/html' || text.trimStart().startsWith('<');
  throw new RegistryError(
    'REGISTRY_BAD_RESPONSE',
    page
      ? `${registry} answered with a web page instead of ${what}: the address may not be a registry's API, or a login page or proxy stands in front of it.`
      : `${registry} answered with something that is not a JSON object instead of ${what}, so it cannot be read.`,
  );
}

/**
 * Reads a registry's answer whole (at most `max` bytes) as a JSON object.
 * @throws RegistryError REGISTRY_TOO_LARGE, REGISTRY_BAD_RESPONSE
 */
async function readJsonObject(
  res: Response,
  max: number,
  registry: string,
  what: string,
): Promise<Record<string, unknown>> {
  return parseJsonObject(await readLimited(res, max, what), registry, what, mediaTypeOf(res));
}

/** The target of a `Link` header's `rel="next"` entry (RFC 8288), or null. */
function nextLink(header: string | null): string | null {
  for (const m of (header ?? '').matchAll(/<([^>]*)>([^<]*)/g)) {
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2]!);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) return m[1]!;
  }
  return null;
}

function rawResponse(res: Response, bytes: Uint8Array): RawResponse {
  const headers: [string, string][] = [];
  res.headers.forEach((value, name) => headers.push([name, value]));
  const length = res.headers.get('content-length');
  return {
    bytes,
    digest: sha256Digest(bytes),
    status: res.status,
    headers,
    mediaType: mediaTypeOf(res),
    registryDigest: res.headers.get('docker-content-digest'),
    contentLength: length !== null && /^\d+$/.test(length.trim()) ? Number(length) : null,
  };
}

export class RegistryClient {
  readonly #opts: Required<Pick<RegistryClientOptions, 'maxManifestBytes' | 'maxBlobBytes'>> & RegistryClientOptions;
  readonly #auth = new AuthCache();
  /** Registries whose last referrers answer was not the API's: their fallback index is asked for alongside. */
  readonly #noReferrersApi = new Set<string>();
  /** Blob uploads opened ahead of need (openUploadsAhead), per `registry/repository`, for pushBlob to take. */
  readonly #ahead = new Map<string, Promise<URL | null>[]>();

  constructor(options: RegistryClientOptions) {
    this.#opts = { maxManifestBytes: 4 * MiB, maxBlobBytes: 64 * MiB, ...options };
  }

  /** Forgets cached tokens (e.g. after the user changes credentials). */
  forgetAuth(registry?: string): void {
    this.#auth.clear(registry);
  }

  #upstream(registry: string, path: string): URL {
    const scheme = this.#opts.scheme?.(registry) ?? 'https';
    return new URL(`${scheme}://${apiHost(registry)}${path}`);
  }

  #route(u: URL): string {
    return this.#opts.route ? this.#opts.route(u) : u.href;
  }

  async #fetch(url: URL, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await this.#opts.fetch(this.#route(url), {
        ...init,
        redirect: 'follow',
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch (e) {
      throw new RegistryError('REGISTRY_UNREACHABLE', `Could not reach ${url.host}: ${(e as Error).message}.`, {
        cause: e,
      });
    }
    const relayCode = res.headers.get(RELAY_ERROR_HEADER);
    if (relayCode) {
      // The sentence travels in a header too: a HEAD answer (a look-up's first request) has no body.
      let message = relayMessageOf(res.headers) ?? `The relay refused the request to ${url.host}.`;
      try {
        const body = (await res.json()) as { message?: unknown };
        if (typeof body.message === 'string' && body.message.trim() !== '') message = body.message;
      } catch {
        // keep the header's sentence
      }
      throw new RelayError(relayCode as RelayErrorCode, message, res.status);
    }
    return res;
  }

  /** Gets a token or Basic header for a challenge. */
  async #authorize(registry: string, challengeHeader: string, scopes: string[]): Promise<string> {
    const creds = this.#opts.credentials?.(registry);
    const challenges = parseChallenges(challengeHeader);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (!bearer) {
      if (!challenges.some((c) => c.scheme === 'basic')) {
        throw new RegistryError(
          'REGISTRY_AUTH_FAILED',
          `${registry} asks for "${challenges[0]!.scheme}" authentication, which this page does not speak.`,
        );
      }
      if (!creds) {
        throw new RegistryError('REGISTRY_UNAUTHORIZED', `${registry} needs a username and password.`, { status: 401 });
      }
      const header = basicAuthorization(creds);
      this.#auth.set(registry, '*', header, 3600);
      return header;
    }
    const realm = bearer.params.realm;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? '');
      if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') throw new Error('scheme');
    } catch {
      throw new RegistryError('REGISTRY_AUTH_FAILED', `${registry} sent a token challenge without a usable realm URL.`);
    }
    const wanted = new Set(scopes);
    if (bearer.params.scope) for (const s of bearer.params.scope.split(' ')) if (s) wanted.add(s);
    if (bearer.params.service) realmUrl.searchParams.set('service', bearer.params.service);
    for (const s of wanted) realmUrl.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (creds) headers.authorization = basicAuthorization(creds);
    const res = await this.#fetch(realmUrl, { method: 'GET', headers });
    if (!res.ok) {
      await res.body?.cancel();
      const code = res.status === 401 || res.status === 403 ? 'REGISTRY_UNAUTHORIZED' : 'REGISTRY_AUTH_FAILED';
      throw new RegistryError(
        code,
        `The token service of ${registry} said ${res.status}: ${res.status === 401 || res.status === 403 ? 'the credentials were refused' : 'it failed'}.`,
        { status: res.status },
      );
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new RegistryError(
        'REGISTRY_AUTH_FAILED',
        `The token service of ${registry} answered something that is not JSON.`,
      );
    }
    const { token, expiresIn } = readTokenResponse(json);
    const header = `Bearer ${token}`;
    this.#auth.set(registry, scopes.join(' '), header, expiresIn);
    return header;
  }

  /** One request with authentication: cached header, else challenge → authorize → retry once. */
  async #request(registry: string, url: URL, o: RequestOptions): Promise<Response> {
    const scopeKey = o.scopes.join(' ');
    const send = (authorization?: string): Promise<Response> =>
      this.#fetch(url, {
        method: o.method ?? 'GET',
        headers: { ...o.headers, ...(authorization ? { authorization } : {}) },
        ...(o.body ? { body: o.body as BodyInit } : {}),
      });
    const cached = this.#auth.get(registry, scopeKey);
    let res = await send(cached);
    if (res.status === 401) {
      const challenge = res.headers.get('www-authenticate');
      await res.body?.cancel();
      if (!challenge) {
        throw new RegistryError('REGISTRY_UNAUTHORIZED', `${registry} said 401 without saying how to authenticate.`, {
          status: 401,
        });
      }
      if (cached) this.#auth.forget(registry, scopeKey);
      res = await send(await this.#authorize(registry, challenge, o.scopes));
    }
    if (!o.ok.includes(res.status)) throw await this.#errorFor(registry, res, o.what);
    return res;
  }

  async #errorFor(registry: string, res: Response, what: string): Promise<RegistryError> {
    let detail = '';
    try {
      const text = new TextDecoder().decode(await readLimited(res, 64 * 1024, 'error'));
      const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      const first = body.errors?.[0];
      if (first) detail = ` (${[first.code, first.message].filter(Boolean).join(': ')})`;
    } catch {
      // not an OCI error body
    }
    const code = STATUS_CODES[res.status] ?? (res.status >= 500 ? 'REGISTRY_ERROR' : 'REGISTRY_BAD_RESPONSE');
    const words = STATUS_WORDS[res.status] ?? (res.status >= 500 ? 'the registry failed' : 'unexpected answer');
    return new RegistryError(code, `${registry} said ${res.status} for ${what}: ${words}${detail}.`, {
      status: res.status,
    });
  }

  static scopes(repo: RepoRef, push: boolean): string[] {
    return [`repository:${repo.repository}:${push ? 'pull,push' : 'pull'}`];
  }

  /** `GET /v2/`: is this a registry, and do the credentials work? */
  async ping(registry: string): Promise<void> {
    const res = await this.#request(registry, this.#upstream(registry, '/v2/'), {
      scopes: [],
      ok: [200],
      what: 'its API root',
    });
    await res.body?.cancel();
  }

  /**
   * Resolves a tag or digest to a descriptor with HEAD, falling back to GET when the registry's
   * HEAD answer lacks the digest.
   * @throws RegistryError REGISTRY_NOT_FOUND and the other request codes.
   */
  async resolve(repo: RepoRef, reference: string): Promise<Descriptor> {
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/manifests/${reference}`);
    const what = `${repo.repository}:${reference}`;
    const res = await this.#request(repo.registry, url, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
      scopes: RegistryClient.scopes(repo, false),
      ok: [200, 405],
      what,
    });
    const digest = res.headers.get('docker-content-digest');
    const size = Number(res.headers.get('content-length'));
    const mediaType = mediaTypeOf(res);
    if (res.status === 200 && digest && isSha256Digest(digest) && Number.isSafeInteger(size) && size > 0 && mediaType) {
      if (isSha256Digest(reference) && digest !== reference) {
        throw new RegistryError(
          'REGISTRY_DIGEST_MISMATCH',
          `${repo.registry} answered ${digest} when asked for ${reference}.`,
        );
      }
      return { mediaType, digest, size };
    }
    return (await this.getManifest(repo, reference)).descriptor;
  }

  /** GETs `/v2/<repository>/<path>` for reading, where only a 200 is an answer. */
  async #fetchOk(repo: RepoRef, path: string, what: string, headers?: Record<string, string>): Promise<Response> {
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/${path}`);
    return this.#request(repo.registry, url, {
      ...(headers ? { headers } : {}),
      scopes: RegistryClient.scopes(repo, false),
      ok: [200],
      what,
    });
  }

  /**
   * Fetches a manifest or index and checks it: size limit, digest (against the reference when it
   * is a digest, against Docker-Content-Digest when it is a tag), JSON. The answer's ETag comes
   * with it, for a conditional putManifest.
   * @throws RegistryError REGISTRY_DIGEST_MISMATCH, REGISTRY_TOO_LARGE, REGISTRY_BAD_RESPONSE (not a
   *   JSON object) and the request codes.
   */
  async getManifest(repo: RepoRef, reference: string): Promise<Manifest> {
    const what = `manifest ${repo.repository}:${reference}`;
    const res = await this.#fetchOk(repo, `manifests/${reference}`, what, { accept: MANIFEST_ACCEPT });
    const bytes = await readLimited(res, this.#opts.maxManifestBytes, what);
    const digest = sha256Digest(bytes);
    const claimed = res.headers.get('docker-content-digest');
    if (isSha256Digest(reference) && digest !== reference) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The ${what} does not match its digest: its bytes hash to ${digest}.`,
      );
    }
    if (claimed && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The ${what} hashes to ${digest}, but the registry says ${claimed}.`,
      );
    }
    const json = parseJsonObject(bytes, repo.registry, `the ${what}`, mediaTypeOf(res));
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : '') || mediaTypeOf(res);
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    if (typeof json.artifactType === 'string') descriptor.artifactType = json.artifactType;
    return { descriptor, bytes, json, etag: res.headers.get('etag') };
  }

  /**
   * Fetches a manifest or index as served, with the answer's headers, without judging it: its
   * digest is computed and returned beside the registry's Docker-Content-Digest, not compared
   * (Inspect shows both, and says when they differ).
   * @throws RegistryError for a failed request, REGISTRY_TOO_LARGE over the manifest limit, or
   *   REGISTRY_BAD_RESPONSE for a reference that is neither a tag nor a digest (it goes into the path).
   */
  async fetchManifest(repo: RepoRef, reference: string): Promise<RawResponse> {
    if (!isValidTag(reference) && !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(reference)) {
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        `"${reference}" is neither a tag nor a digest, so no manifest is fetched by it.`,
      );
    }
    const what = `manifest ${repo.repository}:${reference}`;
    const res = await this.#fetchOk(repo, `manifests/${reference}`, what, { accept: MANIFEST_ACCEPT });
    return rawResponse(res, await readLimited(res, this.#opts.maxManifestBytes, what));
  }

  /**
   * Fetches a blob as served, with the answer's headers; like fetchManifest, the digest is
   * computed and returned, not compared.
   * @throws RegistryError for a failed request, or REGISTRY_TOO_LARGE over `maxBytes` (default the
   *   client's blob limit), or REGISTRY_UNSUPPORTED for a digest that is not sha256:<hex> (a
   *   registry's descriptor must not steer the request to another path).
   */
  async fetchBlob(repo: RepoRef, digest: string, maxBytes?: number): Promise<RawResponse> {
    checkSha256(digest);
    const what = `blob ${digest}`;
    const res = await this.#fetchOk(repo, `blobs/${digest}`, what);
    const max = Math.min(maxBytes ?? this.#opts.maxBlobBytes, this.#opts.maxBlobBytes);
    return rawResponse(res, await readLimited(res, max, what));
  }

  /**
   * Pushes a manifest under a tag or its digest; returns its digest (checked against the registry's).
   * With `ifMatch` (an ETag getManifest returned) the registry is asked to write only if the tag has
   * not changed since.
   * @throws RegistryError REGISTRY_PRECONDITION_FAILED when it has (412), REGISTRY_DIGEST_MISMATCH,
   *   REGISTRY_TOO_LARGE and the request codes.
   */
  async putManifest(
    repo: RepoRef,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: PutManifestOptions = {},
  ): Promise<string> {
    return (await this.#putManifest(repo, reference, bytes, mediaType, options)).digest;
  }

  /**
   * Pushes a manifest that has a `subject` by its digest, and says whether the registry processed
   * the subject (the `OCI-Subject` answer of registries with the referrers API). When it did not,
   * the caller maintains the referrers tag schema's index itself.
   */
  async pushReferrer(
    repo: RepoRef,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<{ digest: string; subjectProcessed: boolean }> {
    const digest = sha256Digest(bytes);
    const { headers } = await this.#putManifest(repo, digest, bytes, mediaType);
    const subjectProcessed = headers.has('oci-subject');
    if (subjectProcessed) this.#noReferrersApi.delete(repo.registry);
    else this.#noReferrersApi.add(repo.registry);
    return { digest, subjectProcessed };
  }

  /**
   * True when this registry's last answer about referrers (a referrers listing, or a referrer
   * pushed) showed no referrers API: a signer then starts updating the fallback index at once.
   */
  lacksReferrersApi(registry: string): boolean {
    return this.#noReferrersApi.has(registry);
  }

  async #putManifest(
    repo: RepoRef,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
    options: PutManifestOptions = {},
  ): Promise<{ digest: string; headers: Headers }> {
    const digest = sha256Digest(bytes);
    if (bytes.length > this.#opts.maxManifestBytes) {
      throw new RegistryError(
        'REGISTRY_TOO_LARGE',
        `The manifest is larger than ${Math.round(this.#opts.maxManifestBytes / MiB)} MiB.`,
      );
    }
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/manifests/${reference}`);
    const { ifMatch } = options;
    const res = await this.#request(repo.registry, url, {
      method: 'PUT',
      headers: { 'content-type': mediaType, ...(ifMatch !== undefined ? { 'if-match': ifMatch } : {}) },
      body: bytes,
      scopes: RegistryClient.scopes(repo, true),
      ok: ifMatch !== undefined ? [200, 201, 412] : [200, 201],
      what: `pushing manifest ${repo.repository}:${reference}`,
    });
    await res.body?.cancel();
    if (res.status === 412) {
      throw new RegistryError(
        'REGISTRY_PRECONDITION_FAILED',
        `The tag ${repo.repository}:${reference} changed while it was being rewritten (${repo.registry} no longer has ETag ${ifMatch} there, so it said 412); read it again and retry.`,
        { status: 412 },
      );
    }
    const claimed = res.headers.get('docker-content-digest');
    if (claimed && claimed !== digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The registry stored the manifest as ${claimed}, but its bytes hash to ${digest}.`,
      );
    }
    return { digest, headers: res.headers };
  }

  /** Deletes a manifest by digest. */
  async deleteManifest(repo: RepoRef, digest: string): Promise<void> {
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/manifests/${digest}`);
    const res = await this.#request(repo.registry, url, {
      method: 'DELETE',
      scopes: [`repository:${repo.repository}:delete`, ...RegistryClient.scopes(repo, true)],
      ok: [200, 202],
      what: `deleting manifest ${digest}`,
    });
    await res.body?.cancel();
  }

  /** True when the registry has the blob in this repository. @throws RegistryError REGISTRY_UNSUPPORTED for a non-sha256 digest */
  async blobExists(repo: RepoRef, digest: string): Promise<boolean> {
    checkSha256(digest);
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/${digest}`);
    const res = await this.#request(repo.registry, url, {
      method: 'HEAD',
      scopes: RegistryClient.scopes(repo, false),
      ok: [200, 404],
      what: `blob ${digest}`,
    });
    await res.body?.cancel();
    return res.status === 200;
  }

  /**
   * Fetches a blob and checks its size and digest.
   * @throws RegistryError REGISTRY_UNSUPPORTED for a non-sha256 digest, REGISTRY_SIZE_MISMATCH,
   *   REGISTRY_DIGEST_MISMATCH, REGISTRY_TOO_LARGE and the request codes.
   */
  async getBlob(repo: RepoRef, digest: string, expectedSize?: number): Promise<Uint8Array> {
    checkSha256(digest);
    const what = `blob ${digest}`;
    const res = await this.#fetchOk(repo, `blobs/${digest}`, what);
    const max = expectedSize ?? this.#opts.maxBlobBytes;
    const bytes = await readLimited(res, Math.min(max, this.#opts.maxBlobBytes), what);
    if (expectedSize !== undefined && bytes.length !== expectedSize) {
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `The ${what} is ${bytes.length} bytes, but its descriptor says ${expectedSize}.`,
      );
    }
    const actual = sha256Digest(bytes);
    if (actual !== digest)
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The ${what} does not match its digest: its bytes hash to ${actual}.`,
      );
    return bytes;
  }

  /**
   * Reads small blobs of one repository in one request, where the relay offers it (the `batch`
   * option; server/relay/batch.ts), each checked for its size and digest as getBlob checks it.
   * Best effort: a blob missing from the result (refused, absent, not authorised, not matching,
   * or no batch route at all) is for getBlob to read on its own, with its own errors.
   * @returns the blobs read, by digest
   */
  async getBlobs(repo: RepoRef, blobs: readonly { digest: string; size: number }[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const batch = this.#opts.batch;
    if (!batch || blobs.length === 0) return out;
    const paths = blobs.map(
      (b) => new URL(this.#route(this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/${b.digest}`))).pathname,
    );
    const authorization = this.#auth.get(repo.registry, RegistryClient.scopes(repo, false).join(' '));
    try {
      const res = await this.#opts.fetch(batch, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ paths }),
        credentials: 'omit',
        cache: 'no-store',
      });
      if (!res.ok) {
        await res.body?.cancel();
        return out;
      }
      // The relay passes at most 1 MiB per item (more than a signature blob may be).
      const max = blobs.length * (MiB + 32);
      readBatch(await readLimited(res, max, 'a batch of blobs'), blobs, out);
    } catch {
      // best effort: every blob is read on its own
    }
    return out;
  }

  /**
   * A URL the server answered with (a Location or Link target) as an upstream URL, or null when it
   * is not a URL. Through the relay it is a relay path, relative to the URL actually fetched, and is
   * mapped back with `unroute`; a target the relay left alone is relative to the upstream URL.
   */
  #served(target: string, requested: URL): URL | null {
    try {
      const fetched = new URL(this.#route(requested), 'http://relative.invalid');
      return this.#opts.unroute?.(new URL(target, fetched)) ?? new URL(target, requested);
    } catch {
      return null;
    }
  }

  #location(res: Response, requested: URL): URL {
    const loc = res.headers.get('location');
    const url = loc ? this.#served(loc, requested) : null;
    if (!url)
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        'The registry started an upload without saying where to send it (no usable Location).',
      );
    return url;
  }

  /**
   * Requests `first`, then each page its answers' `Link: <…>; rel="next"` names, at most `maxPages`
   * in all, yielding every answer; the consumer reads each body before asking for the next page.
   * Pagination never leaves the registry (same host, same scheme) and never asks for a page twice.
   */
  async *#pages(registry: string, first: URL, o: RequestOptions, maxPages: number): AsyncGenerator<Response> {
    const asked = new Set<string>();
    let url: URL | null = first;
    while (url && asked.size < maxPages) {
      asked.add(url.href);
      const res: Response = await this.#request(registry, url, o);
      yield res;
      const target = nextLink(res.headers.get('link'));
      const next: URL | null = target === null ? null : this.#served(target, url);
      if (next) next.protocol = url.protocol;
      url = next && next.host === url.host && !asked.has(next.href) ? next : null;
    }
  }

  /**
   * Uploads a blob (POST then monolithic PUT), unless the repository already has it; with
   * `mountFrom`, first asks the registry to mount it from another repository of the same registry.
   * With `ask: false` it uploads without asking first (a HEAD less), for a small blob that is
   * almost surely new, such as a signature just made: uploading a blob the registry has is harmless.
   * @returns the blob's descriptor (media type application/octet-stream unless given).
   */
  async pushBlob(
    repo: RepoRef,
    bytes: Uint8Array,
    opts: { mountFrom?: string; mediaType?: string; ask?: boolean } = {},
  ): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    const descriptor: Descriptor = {
      mediaType: opts.mediaType ?? 'application/octet-stream',
      digest,
      size: bytes.length,
    };
    if (opts.ask !== false && (await this.blobExists(repo, digest))) return descriptor;
    const scopes = [
      ...RegistryClient.scopes(repo, true),
      ...(opts.mountFrom && opts.mountFrom !== repo.repository ? [`repository:${opts.mountFrom}:pull`] : []),
    ];
    const mounting = opts.mountFrom !== undefined && opts.mountFrom !== repo.repository;
    // An upload opened ahead (openUploadsAhead) is taken first; a mount asks with its own POST.
    let put = mounting ? null : await this.#takeAhead(repo);
    if (!put) {
      const start = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/uploads/`);
      if (mounting) {
        start.searchParams.set('mount', digest);
        start.searchParams.set('from', opts.mountFrom!);
      }
      const res = await this.#request(repo.registry, start, {
        method: 'POST',
        headers: { 'content-length': '0' },
        scopes,
        ok: [201, 202],
        what: `starting an upload to ${repo.repository}`,
      });
      await res.body?.cancel();
      if (res.status === 201) return descriptor; // mounted
      put = this.#location(res, start);
    }
    put.searchParams.set('digest', digest);
    const done = await this.#request(repo.registry, put, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      scopes,
      ok: [201, 204],
      what: `uploading blob ${digest}`,
    });
    await done.body?.cancel();
    const claimed = done.headers.get('docker-content-digest');
    if (claimed && claimed !== digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The registry stored the blob as ${claimed}, but its bytes hash to ${digest}.`,
      );
    }
    return descriptor;
  }

  /**
   * Opens `count` blob uploads in `repo` ahead of need (`POST /blobs/uploads/` each, not awaited),
   * for the next pushBlob calls there to take instead of opening their own: a signing knows it
   * will upload a few small blobs, so their uploads open while it still reads the image, a round
   * trip less in a row. One that fails is dropped quietly (pushBlob then opens its own, and says
   * why if that fails too). Close the ones left with dropUploadsAhead.
   */
  openUploadsAhead(repo: RepoRef, count: number): void {
    const key = `${repo.registry}/${repo.repository}`;
    const list = this.#ahead.get(key) ?? [];
    for (let i = 0; i < count; i++) {
      const opening = this.#openUpload(repo).catch(() => null);
      list.push(opening);
    }
    this.#ahead.set(key, list);
  }

  /** The next upload opened ahead in `repo` (its URL, a copy), or null when none is left or it failed to open. */
  async #takeAhead(repo: RepoRef): Promise<URL | null> {
    const opening = this.#ahead.get(`${repo.registry}/${repo.repository}`)?.shift();
    const url = opening ? await opening.catch(() => null) : null;
    return url ? new URL(url) : null;
  }

  /**
   * Cancels the uploads opened ahead in `repo` that no push took (`DELETE` on each, as the
   * distribution spec cancels an upload), so that none is left open on the registry. Never throws.
   */
  async dropUploadsAhead(repo: RepoRef): Promise<void> {
    const key = `${repo.registry}/${repo.repository}`;
    const left = this.#ahead.get(key) ?? [];
    this.#ahead.delete(key);
    await Promise.all(
      left.map(async (opening) => {
        const url = await opening.catch(() => null);
        if (!url) return;
        await this.#request(repo.registry, url, {
          method: 'DELETE',
          scopes: RegistryClient.scopes(repo, true),
          ok: [202, 204, 404],
          what: `cancelling an upload to ${repo.repository}`,
        }).then(
          (res) => res.body?.cancel(),
          () => undefined,
        );
      }),
    );
  }

  /**
   * Opens a blob for streaming (nothing is buffered here): the caller reads `body` and checks the
   * digest as the bytes pass (copy.ts does). `size` is the registry's Content-Length, or
   * `expectedSize` when the registry sends none.
   * @throws RegistryError REGISTRY_SIZE_MISMATCH when the registry's length is not `expectedSize`,
   *   REGISTRY_UNSUPPORTED for a non-sha256 digest, and the request codes.
   */
  async openBlob(repo: RepoRef, digest: string, expectedSize?: number): Promise<BlobStream> {
    checkSha256(digest);
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/${digest}`);
    const res = await this.#request(repo.registry, url, {
      scopes: RegistryClient.scopes(repo, false),
      ok: [200],
      what: `blob ${digest}`,
    });
    // Only a plain decimal length of an unencoded body says how many bytes will arrive: an empty
    // header is no length, and a Content-Encoding's length is of the encoded bytes. The caller
    // counts what arrives anyway.
    const length = res.headers.get('content-length') ?? '';
    const declared = /^\d+$/.test(length) && !res.headers.get('content-encoding') ? Number(length) : NaN;
    if (expectedSize !== undefined && Number.isSafeInteger(declared) && declared !== expectedSize) {
      await res.body?.cancel();
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `The blob ${digest} is ${declared} bytes, but its descriptor says ${expectedSize}.`,
      );
    }
    const size = Number.isSafeInteger(declared) ? declared : (expectedSize ?? NaN);
    return { body: res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }), size };
  }

  /**
   * Starts a chunked upload (`POST /blobs/uploads/`); send the bytes with uploadChunk, close with
   * finishUpload. https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-a-blob-in-chunks
   */
  async startUpload(repo: RepoRef): Promise<UploadSession> {
    return { repo, location: await this.#openUpload(repo), offset: 0 };
  }

  /** `POST /blobs/uploads/`: a new upload's URL (its Location). */
  async #openUpload(repo: RepoRef): Promise<URL> {
    const start = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/uploads/`);
    const res = await this.#request(repo.registry, start, {
      method: 'POST',
      headers: { 'content-length': '0' },
      scopes: RegistryClient.scopes(repo, true),
      ok: [202],
      what: `starting an upload to ${repo.repository}`,
    });
    await res.body?.cancel();
    return this.#location(res, start);
  }

  /**
   * Asks the registry to mount a blob from another repository of the same registry. A registry
   * that will not (another registry's blob, no access to `fromRepo`, no mount support) opens an
   * ordinary upload instead, returned as `session`.
   * @throws RegistryError REGISTRY_UNSUPPORTED for a non-sha256 digest, and the request codes.
   */
  async mountBlob(
    repo: RepoRef,
    digest: string,
    fromRepo: string,
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
    checkSha256(digest);
    const start = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/uploads/`);
    start.searchParams.set('mount', digest);
    start.searchParams.set('from', fromRepo);
    const res = await this.#request(repo.registry, start, {
      method: 'POST',
      headers: { 'content-length': '0' },
      scopes: [...RegistryClient.scopes(repo, true), `repository:${fromRepo}:pull`],
      ok: [201, 202],
      what: `mounting blob ${digest} into ${repo.repository}`,
    });
    await res.body?.cancel();
    if (res.status === 201) return { mounted: true };
    return { mounted: false, session: { repo, location: this.#location(res, start), offset: 0 } };
  }

  /**
   * Sends one chunk of an upload (`PATCH` with Content-Range), whole, so that browsers send it
   * over HTTP/1.1 (Chromium refuses a streamed request body there). It goes as a Blob: measured in
   * Chromium 156, a Uint8Array fetch body uploads at about 3 MB/s and the same bytes as a Blob at
   * about 90 MB/s. Returns the session at its new offset and Location (the registry may move it
   * with every chunk).
   */
  async uploadChunk(session: UploadSession, bytes: Uint8Array): Promise<UploadSession> {
    const { repo } = session;
    const end = session.offset + bytes.length - 1;
    const res = await this.#request(repo.registry, session.location, {
      method: 'PATCH',
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(bytes.length),
        'content-range': `${session.offset}-${end}`,
      },
      body: new Blob([bytes as Uint8Array<ArrayBuffer>]),
      scopes: RegistryClient.scopes(repo, true),
      ok: [202],
      what: `uploading bytes ${session.offset}-${end} to ${repo.repository}`,
    });
    await res.body?.cancel();
    return { repo, location: this.#location(res, session.location), offset: end + 1 };
  }

  /**
   * Closes an upload with `PUT ?digest=`; the registry checks the digest of everything sent.
   * @throws RegistryError REGISTRY_DIGEST_MISMATCH when the registry names another digest,
   *   REGISTRY_UNSUPPORTED for a non-sha256 digest.
   */
  async finishUpload(session: UploadSession, digest: string): Promise<void> {
    checkSha256(digest);
    const { repo } = session;
    const put = new URL(session.location);
    put.searchParams.set('digest', digest);
    const res = await this.#request(repo.registry, put, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
      scopes: RegistryClient.scopes(repo, true),
      ok: [201, 204],
      what: `closing the upload of blob ${digest}`,
    });
    await res.body?.cancel();
    const claimed = res.headers.get('docker-content-digest');
    if (claimed && claimed !== digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The registry stored the blob as ${claimed}, but its bytes hash to ${digest}.`,
      );
    }
  }

  /**
   * The Authorization this client sends to `repo` for pulling (or pushing), null when the registry
   * asks for none: the cached one, else the one a HEAD of `digest`'s blob there earns.
   */
  async #authorizationFor(repo: RepoRef, push: boolean, digest: string): Promise<string | null> {
    const scopes = RegistryClient.scopes(repo, push);
    const cached = this.#auth.get(repo.registry, scopes.join(' '));
    if (cached) return cached;
    const url = this.#upstream(repo.registry, `/v2/${repo.repository}/blobs/${digest}`);
    const res = await this.#request(repo.registry, url, {
      method: 'HEAD',
      scopes,
      ok: [200, 404],
      what: `blob ${digest}`,
    });
    await res.body?.cancel();
    return this.#auth.get(repo.registry, scopes.join(' ')) ?? null;
  }

  /**
   * Has the relay's blob transfer (option `transfer`) stream a blob from `src` straight into the
   * open upload `session` and close it, hashing on the way; `onBytes` hears of the bytes as they
   * go up. Each side's Authorization goes along for this one transfer.
   * @returns true when the blob is on the destination; false when no transfer was made (no
   *   transfer route, or the relay refused it before a byte moved: an older server, a registry it
   *   may not reach, a source that does not serve the blob), the session untouched.
   * @throws RegistryError REGISTRY_DIGEST_MISMATCH, REGISTRY_SIZE_MISMATCH when the source's
   *   bytes were not the blob (the upload was not completed); RelayError RELAY_TRANSFER_FAILED and
   *   the relay's upstream codes when a registry failed part-way; the signal's reason.
   */
  async transferBlob(
    src: RepoRef,
    blob: { digest: string; size: number },
    session: UploadSession,
    onBytes: (n: number) => void,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const endpoint = this.#opts.transfer;
    if (endpoint === undefined) return false;
    checkSha256(blob.digest);
    const [fromAuth, toAuth] = await Promise.all([
      this.#authorizationFor(src, false, blob.digest),
      this.#authorizationFor(session.repo, true, blob.digest),
    ]);
    const order: TransferOrder = {
      from: {
        registry: apiHost(src.registry),
        repository: src.repository,
        ...blob,
        ...(fromAuth ? { authorization: fromAuth } : {}),
      },
      to: { location: session.location.href, ...(toAuth ? { authorization: toAuth } : {}) },
    };
    let res: Response;
    try {
      res = await this.#opts.fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(order),
        credentials: 'omit',
        cache: 'no-store',
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw signal.reason ?? e;
      return false;
    }
    if (res.status !== 200 || !res.body || res.headers.get('content-type') !== TRANSFER_CONTENT_TYPE) {
      await res.body?.cancel();
      return false;
    }
    await readTransferAnswer(res.body, onBytes);
    return true;
  }

  /** Abandons an upload (`DELETE`); a registry that fails this only keeps a stale session. */
  async cancelUpload(session: UploadSession): Promise<void> {
    try {
      const res = await this.#request(session.repo.registry, session.location, {
        method: 'DELETE',
        scopes: RegistryClient.scopes(session.repo, true),
        ok: [200, 202, 204, 404],
        what: 'cancelling an upload',
      });
      await res.body?.cancel();
    } catch {
      // the registry expires abandoned uploads on its own
    }
  }

  /**
   * Lists every tag of a repository, following `Link` pagination (at most MAX_TAG_PAGES pages).
   * @throws RegistryError REGISTRY_BAD_RESPONSE for an answer that is not a tag list, and the
   *   request codes.
   */
  async listTags(repo: RepoRef): Promise<string[]> {
    const first = this.#upstream(repo.registry, `/v2/${repo.repository}/tags/list`);
    first.searchParams.set('n', '1000');
    const what = `the tags of ${repo.repository}`;
    const request = {
      headers: { accept: 'application/json' },
      scopes: RegistryClient.scopes(repo, false),
      ok: [200],
      what,
    };
    const tags: string[] = [];
    for await (const res of this.#pages(repo.registry, first, request, MAX_TAG_PAGES)) {
      const body = await readJsonObject(res, 16 * MiB, repo.registry, what);
      if (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags)) {
        throw new RegistryError(
          'REGISTRY_BAD_RESPONSE',
          `${repo.registry} answered ${what} with a tag list that is not a list.`,
        );
      }
      for (const t of (body.tags as unknown[] | null | undefined) ?? []) if (typeof t === 'string') tags.push(t);
    }
    return tags;
  }

  /**
   * The referrers of a manifest: the OCI 1.1 referrers API, its `Link` pages merged (at most
   * MAX_REFERRER_PAGES), or, where the registry lacks it (404, or an answer that is not an OCI
   * index), the referrers tag schema's index at `sha256-<hex>`. The fallback index is returned
   * whole: its `artifactType` fields are not trustworthy (cosign 3.1 writes the empty type there).
   * @throws RegistryError REGISTRY_UNSUPPORTED for a non-sha256 digest, REGISTRY_BAD_RESPONSE for an
   *   API answer that is not an OCI index, and the request codes.
   */
  async referrers(repo: RepoRef, digest: string, artifactType?: string): Promise<ReferrersResult> {
    checkSha256(digest);
    const first = this.#upstream(repo.registry, `/v2/${repo.repository}/referrers/${digest}`);
    if (artifactType) first.searchParams.set('artifactType', artifactType);
    const what = `the referrers of ${digest}`;
    const request = {
      headers: { accept: MT.ociIndex },
      scopes: RegistryClient.scopes(repo, false),
      ok: [200, 404],
      what,
    };
    const descriptors: Descriptor[] = [];
    let filtersApplied = true;
    let page = 0;
    // A registry that answered without the API before likely will again: its fallback index is
    // read at the same time (one round trip, not two), and used only if the API is still missing.
    const byTag = this.#noReferrersApi.has(repo.registry) ? this.#referrersByTag(repo, digest) : null;
    byTag?.catch(() => undefined);
    for await (const res of this.#pages(repo.registry, first, request, MAX_REFERRER_PAGES)) {
      if (res.status !== 200 || mediaTypeOf(res) !== MT.ociIndex) {
        await res.body?.cancel();
        if (page === 0) {
          this.#noReferrersApi.add(repo.registry);
          return byTag ?? this.#referrersByTag(repo, digest);
        }
        throw new RegistryError(
          'REGISTRY_BAD_RESPONSE',
          `${repo.registry} answered page ${page + 1} of ${what} with ${res.status} ${mediaTypeOf(res) || 'no media type'}, not an OCI index.`,
        );
      }
      const index = await readJsonObject(res, this.#opts.maxManifestBytes, repo.registry, what);
      if (index.manifests !== undefined && !Array.isArray(index.manifests)) {
        throw new RegistryError(
          'REGISTRY_BAD_RESPONSE',
          `${repo.registry} answered ${what} with an index whose manifests are not a list.`,
        );
      }
      this.#noReferrersApi.delete(repo.registry);
      descriptors.push(...((index.manifests as Descriptor[] | undefined) ?? []));
      filtersApplied &&= (res.headers.get('oci-filters-applied') ?? '')
        .split(',')
        .map((s) => s.trim())
        .includes('artifactType');
      page++;
    }
    return { descriptors, via: 'api', filtersApplied };
  }

  /** The referrers tag schema's fallback index of `digest`; none is an empty list. */
  async #referrersByTag(repo: RepoRef, digest: string): Promise<ReferrersResult> {
    const tag = digest.replace(':', '-');
    try {
      const index = await this.getManifest(repo, tag);
      const manifests = (index.json.manifests as Descriptor[] | undefined) ?? [];
      return { descriptors: manifests, via: 'tag-schema', filtersApplied: false, indexDigest: index.descriptor.digest };
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND')
        return { descriptors: [], via: 'tag-schema', filtersApplied: false };
      throw e;
    }
  }
}

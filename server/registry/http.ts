/**
 * What the embedded registry's route handlers (routes/*.ts) share: the request as a handler sees it
 * (its parameters, where the registry is mounted, the storage and limits), the checks of names,
 * digests and lengths, and the distribution spec's answers, errors included.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import type { Context } from 'hono';
import { readUpTo } from '../../shared/registry/body.ts';
import { isSha256Digest, isValidRepository } from '../../shared/registry/reference.ts';
import type { KeyedLock } from '../keyed-lock.ts';
import { DistributionError } from './errors.ts';
import type { Gate } from './gate.ts';
import type { Storage, UploadSession } from './storage.ts';

export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' };

/** Any digest the spec's grammar allows: `algorithm:encoded`. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** What every handler works on, made once per registry. */
export interface RegistryState {
  storage: Storage;
  /** Largest blob accepted, in bytes. */
  maxUploadBytes: number;
  /** Largest manifest accepted, in bytes. */
  maxManifestBytes: number;
  /** Serialises the writes of each tag, so an If-Match check and the write it guards are one step. */
  tagWrites: KeyedLock;
  /** Writes that check blobs and then name them take shared turns; gc takes an exclusive one. */
  gate: Gate;
  /** Starts a gc soon (after a manifest is deleted); one runs at a time. */
  collectSoon(): void;
}

/**
 * The route's parameters as the path spells them. Hono percent-decodes parameters (`a%2Fb` →
 * `a/b`); this registry never did, and names, tags, digests and upload ids hold no `%`, so one
 * spelled with an escape keeps failing their checks instead of being read as another name.
 * `pattern` is the route as registered (`/v2/:name{.+}/manifests/:reference`): `name` is its
 * only parameter spanning segments, the others are single segments after it.
 */
function spelledParams(path: string, pattern: string): Map<string, string> {
  const want = pattern.split('/');
  const got = path.split('/');
  const params = new Map<string, string>();
  const nameAt = want.findIndex((w) => w.startsWith(':name'));
  if (nameAt < 0) return params;
  const after = want.length - nameAt - 1;
  params.set('name', got.slice(nameAt, got.length - after).join('/'));
  for (let i = 1; i <= after; i++) {
    const w = want[nameAt + i]!;
    if (w.startsWith(':')) params.set(w.slice(1), got[got.length - after - 1 + i]!);
  }
  return params;
}

/** One request to a registry route, as its handler sees it. */
export class RegistryRequest {
  readonly c: Context;
  readonly reg: RegistryState;
  /** The path the registry is mounted under ('' at the root). */
  readonly prefix: string;
  readonly #params: Map<string, string>;

  /** `pattern`: the route as registered on the registry's own app (without the mount path). */
  constructor(c: Context, reg: RegistryState, pattern: string) {
    this.c = c;
    this.reg = reg;
    const routePath = c.req.routePath;
    this.prefix = routePath.endsWith(pattern) ? routePath.slice(0, routePath.length - pattern.length) : '';
    this.#params = spelledParams(c.req.path.slice(this.prefix.length), pattern);
  }

  get method(): string {
    return this.c.req.method;
  }

  /** The repository name ('' on routes without one). */
  get name(): string {
    return this.#params.get('name') ?? '';
  }

  /** A parameter of the route, as spelled in the path. */
  param(key: 'reference' | 'digest' | 'id'): string {
    return this.#params.get(key) ?? '';
  }

  /** A path in this repository, under the mount path: for Location and Link. */
  location(tail: string): string {
    return `${this.prefix}/v2/${this.name}/${tail}`;
  }

  /** Location, Range and Docker-Upload-UUID of an upload session. */
  uploadHeaders(s: UploadSession): Record<string, string> {
    return {
      Location: this.location(`blobs/uploads/${s.id}`),
      Range: `0-${Math.max(0, s.offset - 1)}`,
      'Docker-Upload-UUID': s.id,
    };
  }
}

/** A route's handler; it throws DistributionError for every refusal. */
export type RegistryHandler = (r: RegistryRequest) => Promise<Response>;

/** @throws DistributionError NAME_INVALID */
export function checkName(name: string): void {
  if (!isValidRepository(name)) {
    throw new DistributionError('NAME_INVALID', 400, `"${name}" is not a valid repository name.`);
  }
}

/** @throws DistributionError DIGEST_INVALID for a malformed digest, UNSUPPORTED for another algorithm */
export function checkDigest(digest: string): void {
  if (isSha256Digest(digest)) return;
  if (DIGEST_GRAMMAR.test(digest) && !digest.startsWith('sha256:')) {
    throw new DistributionError('UNSUPPORTED', 400, `Only sha256 digests are stored here, not "${digest}".`);
  }
  throw new DistributionError('DIGEST_INVALID', 400, `"${digest}" is not a valid digest.`);
}

/** The request's Content-Length, if it has one. @throws DistributionError SIZE_INVALID */
export function declaredLength(c: Context): number | undefined {
  const v = c.req.header('content-length');
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new DistributionError('SIZE_INVALID', 400, `Content-Length "${v}" is not a length.`);
  }
  return n;
}

/** Reads at most `max` bytes of a body. @throws DistributionError SIZE_INVALID (413) */
export async function readBody(c: Context, max: number, what: string): Promise<Uint8Array> {
  const declared = declaredLength(c);
  const tooLarge = (): DistributionError =>
    new DistributionError('SIZE_INVALID', 413, `The ${what} is larger than this registry's limit of ${max} bytes.`);
  if (declared !== undefined && declared > max) throw tooLarge();
  const bytes = await readUpTo(c.req.raw.body, max);
  if (!bytes) throw tooLarge();
  return bytes;
}

/** The spec's error answer: JSON `{errors: [...]}`, no body for HEAD. */
export function errorResponse(e: DistributionError, method: string): Response {
  const headers: Record<string, string> = { ...API_VERSION_HEADER, ...e.headers };
  if (method === 'HEAD') return new Response(null, { status: e.status, headers });
  headers['Content-Type'] = 'application/json';
  return new Response(JSON.stringify(e.toJSON()), { status: e.status, headers });
}

export function json(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...API_VERSION_HEADER, 'Content-Type': 'application/json', ...headers },
  });
}

export function empty(status: number, headers: Record<string, string>): Response {
  return new Response(null, { status, headers: { ...API_VERSION_HEADER, ...headers } });
}

export function methodNotAllowed(method: string): DistributionError {
  return new DistributionError('UNSUPPORTED', 405, `${method} is not supported here.`);
}

/**
 * An embedded OCI registry as a Hono sub-app, so that the project works with no registry installed:
 * the distribution spec's pull, push, content discovery (tags, OCI 1.1 referrers) and content
 * management endpoints, over the content-addressed disk storage of storage.ts.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { Hono, type Context } from 'hono';
import { Readable } from 'node:stream';
import { MT, isIndexMediaType, isManifestMediaType } from '../../shared/registry/mediatypes.ts';
import { isSha256Digest, isValidRepository, isValidTag } from '../../shared/registry/reference.ts';
import { readUpTo } from '../../shared/registry/body.ts';
import { DistributionError } from './errors.ts';
import { Storage, type ManifestLink, type UploadSession } from './storage.ts';

export interface EmbeddedRegistryOptions {
  /** Folder holding everything the registry stores (created if missing). */
  dataDir: string;
  /** Largest blob accepted, in bytes (default 2 GiB). */
  maxUploadBytes?: number;
  /** Largest manifest accepted, in bytes (default 4 MiB, as distribution). */
  maxManifestBytes?: number;
}

export interface EmbeddedRegistry {
  /** Serves `/v2/…`; mount it at the root of a host, as clients expect. */
  app: Hono;
  /** Waits for requests in progress, then ends every upload session. */
  close(): Promise<void>;
}

const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' };

/** Any digest the spec's grammar allows: `algorithm:encoded`. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

type Route =
  | { kind: 'ping' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

function parseRoute(rest: string): Route | undefined {
  if (rest === '' || rest === '/') return { kind: 'ping' };
  let m = /^\/(.+)\/manifests\/([^/]+)$/.exec(rest);
  if (m) return { kind: 'manifest', name: m[1]!, reference: m[2]! };
  m = /^\/(.+)\/blobs\/uploads\/?$/.exec(rest);
  if (m) return { kind: 'uploads', name: m[1]! };
  m = /^\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(rest);
  if (m) return { kind: 'upload', name: m[1]!, id: m[2]! };
  m = /^\/(.+)\/blobs\/([^/]+)$/.exec(rest);
  if (m) return { kind: 'blob', name: m[1]!, digest: m[2]! };
  m = /^\/(.+)\/tags\/list$/.exec(rest);
  if (m) return { kind: 'tags', name: m[1]! };
  m = /^\/(.+)\/referrers\/([^/]+)$/.exec(rest);
  if (m) return { kind: 'referrers', name: m[1]!, digest: m[2]! };
  return undefined;
}

function checkName(name: string): void {
  if (!isValidRepository(name)) {
    throw new DistributionError('NAME_INVALID', 400, `"${name}" is not a valid repository name.`);
  }
}

/** @throws DistributionError DIGEST_INVALID for a malformed digest, UNSUPPORTED for another algorithm */
function checkDigest(digest: string): void {
  if (isSha256Digest(digest)) return;
  if (DIGEST_GRAMMAR.test(digest) && !digest.startsWith('sha256:')) {
    throw new DistributionError('UNSUPPORTED', 400, `Only sha256 digests are stored here, not "${digest}".`);
  }
  throw new DistributionError('DIGEST_INVALID', 400, `"${digest}" is not a valid digest.`);
}

function declaredLength(c: Context): number | undefined {
  const v = c.req.header('content-length');
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new DistributionError('SIZE_INVALID', 400, `Content-Length "${v}" is not a length.`);
  }
  return n;
}

function errorResponse(e: DistributionError, method: string): Response {
  const headers: Record<string, string> = { ...API_VERSION_HEADER, ...e.headers };
  if (method === 'HEAD') return new Response(null, { status: e.status, headers });
  headers['Content-Type'] = 'application/json';
  return new Response(JSON.stringify(e.toJSON()), { status: e.status, headers });
}

function json(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...API_VERSION_HEADER, 'Content-Type': 'application/json', ...headers },
  });
}

function empty(status: number, headers: Record<string, string>): Response {
  return new Response(null, { status, headers: { ...API_VERSION_HEADER, ...headers } });
}

function methodNotAllowed(method: string): DistributionError {
  return new DistributionError('UNSUPPORTED', 405, `${method} is not supported here.`);
}

/** Reads at most `max` bytes of a body. @throws DistributionError SIZE_INVALID (413) */
async function readBody(c: Context, max: number, what: string): Promise<Uint8Array> {
  const declared = declaredLength(c);
  const tooLarge = (): DistributionError =>
    new DistributionError('SIZE_INVALID', 413, `The ${what} is larger than this registry's limit of ${max} bytes.`);
  if (declared !== undefined && declared > max) throw tooLarge();
  const bytes = await readUpTo(c.req.raw.body, max);
  if (!bytes) throw tooLarge();
  return bytes;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface DescriptorLike {
  mediaType: string;
  digest: string;
  size: number;
}

function descriptorAt(v: unknown, where: string): DescriptorLike {
  if (!isRecord(v) || typeof v['digest'] !== 'string' || typeof v['size'] !== 'number') {
    throw new DistributionError('MANIFEST_INVALID', 400, `The manifest's ${where} is not a descriptor.`);
  }
  try {
    checkDigest(v['digest']);
  } catch {
    throw new DistributionError('MANIFEST_INVALID', 400, `The manifest's ${where} has an invalid digest.`);
  }
  return { mediaType: typeof v['mediaType'] === 'string' ? v['mediaType'] : '', digest: v['digest'], size: v['size'] };
}

function stringRecord(v: unknown): Record<string, string> | undefined {
  if (!isRecord(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

/**
 * Creates the registry over `dataDir`. Anything acknowledged before is served again after a
 * restart; upload sessions in progress are not kept.
 */
export function createEmbeddedRegistry(options: EmbeddedRegistryOptions): EmbeddedRegistry {
  const maxUpload = options.maxUploadBytes ?? 2 * 1024 * 1024 * 1024;
  const maxManifest = options.maxManifestBytes ?? 4 * 1024 * 1024;
  const storage = new Storage(options.dataDir);
  const ready = storage.open();
  const inFlight = new Set<Promise<Response>>();
  let closed = false;

  function location(prefix: string, name: string, tail: string): string {
    return `${prefix}/v2/${name}/${tail}`;
  }

  function uploadHeaders(prefix: string, s: UploadSession): Record<string, string> {
    return {
      Location: location(prefix, s.name, `blobs/uploads/${s.id}`),
      Range: `0-${Math.max(0, s.offset - 1)}`,
      'Docker-Upload-UUID': s.id,
    };
  }

  async function blob(c: Context, name: string, digest: string): Promise<Response> {
    checkDigest(digest);
    const method = c.req.method;
    if (method === 'DELETE') {
      if (!(await storage.deleteBlob(digest))) {
        throw new DistributionError('BLOB_UNKNOWN', 404, `Blob ${digest} is not stored here.`);
      }
      return empty(202, {});
    }
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method);
    const size = await storage.blobSize(digest);
    if (size === undefined) {
      throw new DistributionError('BLOB_UNKNOWN', 404, `Blob ${digest} is not stored in ${name}.`, { digest });
    }
    const headers: Record<string, string> = {
      'Docker-Content-Digest': digest,
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
    };
    const range = c.req.header('range');
    if (method === 'GET' && range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      let start = m?.[1] === '' || m === null ? NaN : Number(m[1]);
      let end = m?.[2] === '' || m === null ? size - 1 : Number(m[2]);
      if (m !== null && m[1] === '' && m[2] !== '') {
        start = Math.max(0, size - Number(m[2]));
        end = size - 1;
      }
      end = Math.min(end, size - 1);
      if (!Number.isSafeInteger(start) || start > end || start >= size) {
        return empty(416, { 'Content-Range': `bytes */${size}` });
      }
      const stream = Readable.toWeb(storage.readBlobStream(digest, { start, end })) as ReadableStream<Uint8Array>;
      return new Response(stream, {
        status: 206,
        headers: {
          ...API_VERSION_HEADER,
          ...headers,
          'Content-Length': String(end - start + 1),
          'Content-Range': `bytes ${start}-${end}/${size}`,
        },
      });
    }
    headers['Content-Length'] = String(size);
    if (method === 'HEAD') return empty(200, headers);
    const stream = Readable.toWeb(storage.readBlobStream(digest)) as ReadableStream<Uint8Array>;
    return new Response(stream, { status: 200, headers: { ...API_VERSION_HEADER, ...headers } });
  }

  async function startUpload(c: Context, prefix: string, name: string): Promise<Response> {
    if (c.req.method !== 'POST') throw methodNotAllowed(c.req.method);
    const mount = c.req.query('mount');
    if (mount !== undefined) {
      checkDigest(mount);
      const from = c.req.query('from');
      if (from !== undefined) checkName(from);
      if ((await storage.blobSize(mount)) !== undefined) {
        return empty(201, { Location: location(prefix, name, `blobs/${mount}`), 'Docker-Content-Digest': mount });
      }
    }
    const digest = c.req.query('digest');
    if (digest !== undefined) {
      checkDigest(digest);
      const declared = declaredLength(c);
      await storage.putBlobStream(c.req.raw.body, digest, {
        max: maxUpload,
        ...(declared === undefined ? {} : { declared }),
      });
      return empty(201, { Location: location(prefix, name, `blobs/${digest}`), 'Docker-Content-Digest': digest });
    }
    await c.req.raw.body?.cancel().catch(() => undefined);
    const s = await storage.startUpload(name);
    return empty(202, { ...uploadHeaders(prefix, s), 'Content-Length': '0' });
  }

  /** Content-Range `<start>-<end>` of a PATCH must start where the upload is. */
  function checkContentRange(c: Context, prefix: string, s: UploadSession): void {
    const header = c.req.header('content-range');
    if (header === undefined) return;
    const m = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
    const start = m === null ? NaN : Number(m[1]);
    const end = m === null ? NaN : Number(m[2]);
    const declared = declaredLength(c);
    if (m === null || start !== s.offset || end < start || (declared !== undefined && declared !== end - start + 1)) {
      throw new DistributionError(
        'BLOB_UPLOAD_INVALID',
        416,
        `The chunk's Content-Range "${header}" does not follow the ${s.offset} bytes uploaded so far.`,
        null,
        uploadHeaders(prefix, s),
      );
    }
  }

  async function upload(c: Context, prefix: string, name: string, id: string): Promise<Response> {
    const s = storage.session(name, id);
    const method = c.req.method;
    if (method === 'GET') return empty(204, uploadHeaders(prefix, s));
    if (method === 'DELETE') {
      await storage.serialised(s, () => storage.cancelUpload(s));
      return empty(204, {});
    }
    if (method !== 'PATCH' && method !== 'PUT') throw methodNotAllowed(method);
    return storage.serialised(s, async () => {
      storage.session(name, id);
      const declared = declaredLength(c);
      const limits = { max: maxUpload, ...(declared === undefined ? {} : { declared }) };
      if (method === 'PATCH') {
        checkContentRange(c, prefix, s);
        await storage.appendChunk(s, c.req.raw.body, limits);
        return empty(202, { ...uploadHeaders(prefix, s), 'Content-Length': '0' });
      }
      const digest = c.req.query('digest');
      if (digest === undefined) {
        throw new DistributionError('DIGEST_INVALID', 400, 'Closing an upload needs ?digest=.');
      }
      checkDigest(digest);
      if (c.req.header('content-range') !== undefined) checkContentRange(c, prefix, s);
      await storage.appendChunk(s, c.req.raw.body, limits);
      await storage.finishUpload(s, digest);
      return empty(201, {
        Location: location(prefix, name, `blobs/${digest}`),
        'Docker-Content-Digest': digest,
        'Content-Length': '0',
      });
    });
  }

  async function resolveReference(name: string, reference: string): Promise<ManifestLink> {
    let digest = reference;
    if (!reference.includes(':')) {
      if (!isValidTag(reference)) {
        throw new DistributionError('MANIFEST_INVALID', 400, `"${reference}" is not a valid tag.`);
      }
      const tagged = await storage.tag(name, reference);
      if (tagged === undefined) {
        throw new DistributionError('MANIFEST_UNKNOWN', 404, `No manifest is tagged ${reference} in ${name}.`);
      }
      digest = tagged;
    } else {
      checkDigest(reference);
    }
    const link = await storage.manifestLink(name, digest);
    if (link === undefined) {
      throw new DistributionError('MANIFEST_UNKNOWN', 404, `Manifest ${digest} is not in ${name}.`, { digest });
    }
    return link;
  }

  /** Parses a manifest and checks what it refers to. @throws DistributionError MANIFEST_* */
  async function checkManifest(name: string, bytes: Uint8Array, contentType: string): Promise<ManifestLink> {
    let doc: unknown;
    try {
      doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new DistributionError('MANIFEST_INVALID', 400, 'The manifest is not JSON.');
    }
    if (!isRecord(doc)) throw new DistributionError('MANIFEST_INVALID', 400, 'The manifest is not a JSON object.');
    const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
    const mediaType = contentType !== '' ? contentType : (declared ?? '');
    if (!isManifestMediaType(mediaType)) {
      throw new DistributionError(
        'MANIFEST_INVALID',
        400,
        `Media type "${mediaType}" is not a manifest type stored here.`,
      );
    }
    if (declared !== undefined && declared !== mediaType) {
      throw new DistributionError(
        'MANIFEST_INVALID',
        400,
        `The manifest says mediaType "${declared}" but was sent as "${mediaType}".`,
      );
    }
    if (doc['schemaVersion'] !== 2) {
      throw new DistributionError('MANIFEST_INVALID', 400, 'The manifest is not schemaVersion 2.');
    }
    const missing: string[] = [];
    if (isIndexMediaType(mediaType)) {
      const children = doc['manifests'];
      if (!Array.isArray(children)) throw new DistributionError('MANIFEST_INVALID', 400, 'The index has no manifests.');
      for (const [i, child] of children.entries()) {
        const d = descriptorAt(child, `manifests[${i}]`);
        if ((await storage.manifestLink(name, d.digest)) === undefined) missing.push(d.digest);
      }
    } else {
      const refs = [descriptorAt(doc['config'], 'config')];
      const layers = doc['layers'];
      if (!Array.isArray(layers)) throw new DistributionError('MANIFEST_INVALID', 400, 'The manifest has no layers.');
      for (const [i, layer] of layers.entries()) refs.push(descriptorAt(layer, `layers[${i}]`));
      for (const d of refs) {
        const size = await storage.blobSize(d.digest);
        if (size === undefined) missing.push(d.digest);
        else if (size !== d.size) {
          throw new DistributionError('MANIFEST_INVALID', 400, `Blob ${d.digest} has ${size} bytes, not ${d.size}.`);
        }
      }
    }
    if (missing.length > 0) {
      throw new DistributionError(
        'MANIFEST_BLOB_UNKNOWN',
        400,
        `The manifest refers to ${missing.length === 1 ? 'content' : 'contents'} not in ${name}: ${missing.join(', ')}.`,
        { digests: missing },
      );
    }
    const link: ManifestLink = { mediaType, digest: '', size: bytes.length };
    if (doc['subject'] !== undefined) link.subject = descriptorAt(doc['subject'], 'subject').digest;
    const config = isRecord(doc['config']) ? doc['config'] : undefined;
    const artifactType =
      typeof doc['artifactType'] === 'string'
        ? doc['artifactType']
        : typeof config?.['mediaType'] === 'string'
          ? config['mediaType']
          : undefined;
    if (artifactType !== undefined) link.artifactType = artifactType;
    const annotations = stringRecord(doc['annotations']);
    if (annotations !== undefined) link.annotations = annotations;
    return link;
  }

  async function manifest(c: Context, prefix: string, name: string, reference: string): Promise<Response> {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') {
      const link = await resolveReference(name, reference);
      const headers = {
        'Content-Type': link.mediaType,
        'Docker-Content-Digest': link.digest,
        'Content-Length': String(link.size),
      };
      if (method === 'HEAD') return empty(200, headers);
      const bytes = await storage.readBlob(link.digest);
      return new Response(new Uint8Array(bytes), { status: 200, headers: { ...API_VERSION_HEADER, ...headers } });
    }
    if (method === 'DELETE') {
      if (!reference.includes(':')) {
        if (!isValidTag(reference))
          throw new DistributionError('MANIFEST_INVALID', 400, `"${reference}" is not a valid tag.`);
        if (!(await storage.deleteTag(name, reference))) {
          throw new DistributionError('MANIFEST_UNKNOWN', 404, `No manifest is tagged ${reference} in ${name}.`);
        }
        return empty(202, {});
      }
      checkDigest(reference);
      if (!(await storage.deleteManifestLink(name, reference))) {
        throw new DistributionError('MANIFEST_UNKNOWN', 404, `Manifest ${reference} is not in ${name}.`);
      }
      return empty(202, {});
    }
    if (method !== 'PUT') throw methodNotAllowed(method);
    const byDigest = reference.includes(':');
    if (byDigest) checkDigest(reference);
    else if (!isValidTag(reference)) {
      throw new DistributionError('MANIFEST_INVALID', 400, `"${reference}" is not a valid tag.`);
    }
    const bytes = await readBody(c, maxManifest, 'manifest');
    const contentType = (c.req.header('content-type') ?? '').split(';')[0]!.trim();
    const link = await checkManifest(name, bytes, contentType);
    const digest = await storage.putBlobBytes(bytes);
    if (byDigest && digest !== reference) {
      throw new DistributionError('DIGEST_INVALID', 400, `The manifest has digest ${digest}, not ${reference}.`, {
        expected: reference,
        got: digest,
      });
    }
    link.digest = digest;
    await storage.putManifestLink(name, link);
    if (!byDigest) await storage.putTag(name, reference, digest);
    const headers: Record<string, string> = {
      Location: location(prefix, name, `manifests/${digest}`),
      'Docker-Content-Digest': digest,
      'Content-Length': '0',
    };
    if (link.subject !== undefined) headers['OCI-Subject'] = link.subject;
    return empty(201, headers);
  }

  async function tags(c: Context, prefix: string, name: string): Promise<Response> {
    if (c.req.method !== 'GET') throw methodNotAllowed(c.req.method);
    const all = await storage.tags(name);
    if (all === undefined) throw new DistributionError('NAME_UNKNOWN', 404, `Repository ${name} is not known here.`);
    const last = c.req.query('last');
    const nText = c.req.query('n');
    let list = last === undefined ? all : all.filter((t) => t > last);
    let headers: Record<string, string> = {};
    if (nText !== undefined) {
      const n = Number(nText);
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new DistributionError('UNSUPPORTED', 400, `n=${nText} is not a number of tags.`);
      }
      if (list.length > n) {
        list = list.slice(0, n);
        const lastShown = list[list.length - 1];
        if (lastShown !== undefined) {
          const next = `${location(prefix, name, 'tags/list')}?n=${n}&last=${encodeURIComponent(lastShown)}`;
          headers = { Link: `<${next}>; rel="next"` };
        }
      }
    }
    return json({ name, tags: list }, 200, headers);
  }

  async function referrers(c: Context, name: string, digest: string): Promise<Response> {
    if (c.req.method !== 'GET') throw methodNotAllowed(c.req.method);
    checkDigest(digest);
    const artifactType = c.req.query('artifactType');
    const manifests = [];
    for (const link of await storage.manifestLinks(name)) {
      if (link.subject !== digest) continue;
      if (artifactType !== undefined && link.artifactType !== artifactType) continue;
      manifests.push({
        mediaType: link.mediaType,
        digest: link.digest,
        size: link.size,
        ...(link.artifactType === undefined ? {} : { artifactType: link.artifactType }),
        ...(link.annotations === undefined ? {} : { annotations: link.annotations }),
      });
    }
    const headers: Record<string, string> = { 'Content-Type': MT.ociIndex };
    if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
    return json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests }, 200, headers);
  }

  async function dispatch(c: Context): Promise<Response> {
    await ready;
    const routePath = c.req.routePath;
    const prefix = routePath.endsWith('/v2/*')
      ? routePath.slice(0, -'/v2/*'.length)
      : routePath.slice(0, -'/v2'.length);
    const rest = c.req.path.slice(prefix.length + '/v2'.length);
    const route = parseRoute(rest);
    if (route === undefined) {
      throw new DistributionError('UNSUPPORTED', 404, `Nothing is served at ${c.req.path}.`);
    }
    if (route.kind === 'ping') {
      if (c.req.method !== 'GET' && c.req.method !== 'HEAD') throw methodNotAllowed(c.req.method);
      return c.req.method === 'HEAD' ? empty(200, {}) : json({}, 200);
    }
    checkName(route.name);
    switch (route.kind) {
      case 'manifest':
        return manifest(c, prefix, route.name, route.reference);
      case 'uploads':
        return startUpload(c, prefix, route.name);
      case 'upload':
        return upload(c, prefix, route.name, route.id);
      case 'blob':
        return blob(c, route.name, route.digest);
      case 'tags':
        return tags(c, prefix, route.name);
      case 'referrers':
        return referrers(c, route.name, route.digest);
    }
  }

  async function handle(c: Context): Promise<Response> {
    if (closed)
      return errorResponse(new DistributionError('UNSUPPORTED', 503, 'The registry is closing.'), c.req.method);
    const work = dispatch(c).catch((e: unknown) => {
      if (e instanceof DistributionError) return errorResponse(e, c.req.method);
      throw e;
    });
    inFlight.add(work);
    try {
      return await work;
    } finally {
      inFlight.delete(work);
    }
  }

  const app = new Hono();
  app.all('/v2', handle);
  app.all('/v2/*', handle);

  return {
    app,
    async close(): Promise<void> {
      closed = true;
      await ready.catch(() => undefined);
      await Promise.allSettled([...inFlight]);
      storage.dropSessions();
    },
  };
}

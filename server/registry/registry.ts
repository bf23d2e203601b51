/**
 * An embedded OCI registry as a Hono sub-app, so that the project works with no registry installed:
 * the distribution spec's pull, push, content discovery (tags, OCI 1.1 referrers) and content
 * management endpoints, over the content-addressed disk storage of storage.ts. Each resource has
 * its handlers in routes/ (base, manifests, uploads, blobs, tags, referrers); this file puts them
 * on Hono routes and answers their DistributionErrors in the spec's JSON form. With a `token`, every
 * request must carry it (auth.ts). Upload sessions idle for `sessionIdleMs` are dropped each minute;
 * gc (gc.ts) runs at start and after each manifest delete.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { Hono, type Context } from 'hono';
import { KeyedLock } from '../keyed-lock.ts';
import { checkToken } from './auth.ts';
import { DistributionError } from './errors.ts';
import { collectGarbage, describeGc, GC_GRACE_MS, linkNamedBlobs } from './gc.ts';
import { Gate } from './gate.ts';
import {
  checkName,
  errorResponse,
  methodNotAllowed,
  RegistryRequest,
  type RegistryHandler,
  type RegistryState,
} from './http.ts';
import { notServed, ping } from './routes/base.ts';
import { checkBlobDigest, deleteBlob, getBlob } from './routes/blobs.ts';
import { deleteManifest, getManifest, putManifest } from './routes/manifests.ts';
import { listReferrers } from './routes/referrers.ts';
import { listTags } from './routes/tags.ts';
import { cancelUpload, checkSession, finishUpload, patchUpload, startUpload, uploadStatus } from './routes/uploads.ts';
import { Storage, type StorageLimits } from './storage.ts';
import { Site } from '../site.ts';

export interface EmbeddedRegistryOptions {
  /** Folder holding everything the registry stores (created if missing). */
  dataDir: string;
  /** Largest blob accepted, in bytes (default 2 GiB). */
  maxUploadBytes?: number;
  /** Largest manifest accepted, in bytes (default 4 MiB, as distribution). */
  maxManifestBytes?: number;
  /** The credential every request must carry (EMBEDDED_REGISTRY_TOKEN); absent: none asked. */
  token?: string;
  /** Disk quota, session caps and idle time (storage.ts; defaults: no quota, 128/32 sessions, 10 min). */
  limits?: Partial<StorageLimits>;
  /** gc keeps unnamed blobs written or mounted within this long (default 1 hour). */
  gcGraceMs?: number;
  /** Where gc's one-line reports go (default: none). */
  log?: (line: string) => void;
  /**
   * The host names it answers to and the page origins that may write (server/site.ts); default:
   * the loopback names, and no browser origin may write.
   */
  site?: Site;
}

export interface EmbeddedRegistry {
  /** Serves `/v2/…`; mount it at the root of a host, as clients expect. */
  app: Hono;
  /** Waits for requests in progress, then ends every upload session. */
  close(): Promise<void>;
}

type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** One resource: its path, its handler per method, and what is checked before the method is. */
interface Resource {
  pattern: string;
  methods: Partial<Record<Method, RegistryHandler>>;
  /** Runs before the method is looked at (after the name is checked on routes with one). */
  check?: (r: RegistryRequest) => Promise<void>;
}

const NAME = '/v2/:name{.+}';

/**
 * The routes, in the order a path is claimed when several match (a repository name may hold
 * `blobs/uploads` or `manifests`: the first resource whose pattern fits answers).
 */
const RESOURCES: readonly Resource[] = [
  { pattern: '/v2', methods: { GET: ping, HEAD: ping } },
  { pattern: '/v2/', methods: { GET: ping, HEAD: ping } },
  {
    pattern: `${NAME}/manifests/:reference`,
    methods: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  },
  { pattern: `${NAME}/blobs/uploads`, methods: { POST: startUpload } },
  { pattern: `${NAME}/blobs/uploads/`, methods: { POST: startUpload } },
  {
    pattern: `${NAME}/blobs/uploads/:id`,
    methods: { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload },
    check: checkSession,
  },
  {
    pattern: `${NAME}/blobs/:digest`,
    methods: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob },
    check: checkBlobDigest,
  },
  { pattern: `${NAME}/tags/list`, methods: { GET: listTags } },
  { pattern: `${NAME}/referrers/:digest`, methods: { GET: listReferrers } },
];

/**
 * Creates the registry over `dataDir`. Anything acknowledged before is served again after a
 * restart; upload sessions in progress are not kept.
 */
export function createEmbeddedRegistry(options: EmbeddedRegistryOptions): EmbeddedRegistry {
  const storage = new Storage(options.dataDir, options.limits);
  const gate = new Gate();
  const collector = gcRunner(storage, gate, options);
  const reg: RegistryState = {
    storage,
    maxUploadBytes: options.maxUploadBytes ?? 2 * 1024 * 1024 * 1024,
    maxManifestBytes: options.maxManifestBytes ?? 4 * 1024 * 1024,
    tagWrites: new KeyedLock(),
    gate,
    collectSoon: collector.soon,
  };
  const ready = (async () => {
    await storage.open();
    await storage.hold(true);
    await linkNamedBlobs(storage);
    collector.soon();
  })();
  const expiry = setInterval(() => void storage.expireSessions().catch(() => undefined), 60_000);
  expiry.unref();
  const inFlight = new Set<Promise<Response>>();
  let closed = false;

  /** Every request: refused while closing, held until storage is open, counted while in flight. */
  async function serve(c: Context, pattern: string, answer: RegistryHandler): Promise<Response> {
    if (closed)
      return errorResponse(new DistributionError('UNSUPPORTED', 503, 'The registry is closing.'), c.req.method);
    const work = ready
      .then(() => {
        if (options.token !== undefined) checkToken(options.token, c.req.header('authorization'));
        return answer(new RegistryRequest(c, reg, pattern));
      })
      .catch((e: unknown) => {
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
  // Only the names it serves (DNS rebinding: 421), no writes from browsers (403: the page writes
  // through the relay), in the spec's error form with DENIED.
  const site = options.site ?? new Site();
  app.use('*', async (c, next) => {
    const refused = site.refusal(c, 'none');
    if (refused) return errorResponse(new DistributionError('DENIED', refused.status, refused.message), c.req.method);
    return next();
  });
  for (const resource of RESOURCES) route(app, resource, serve);
  app.all('/v2/*', (c) => serve(c, '/v2/*', notServed));

  return {
    app,
    async close(): Promise<void> {
      closed = true;
      clearInterval(expiry);
      await ready.catch(() => undefined);
      await Promise.allSettled([...inFlight]);
      await collector.idle();
      reg.storage.dropSessions();
      await storage.hold(false);
    },
  };
}

/** Runs gc when asked, one at a time: a request made while one runs starts one more after it. */
function gcRunner(
  storage: Storage,
  gate: Gate,
  options: EmbeddedRegistryOptions,
): { soon(): void; idle(): Promise<void> } {
  let running: Promise<void> | undefined;
  let again = false;
  const run = async (): Promise<void> => {
    do {
      again = false;
      const result = await gate.exclusive(() => collectGarbage(storage, options.gcGraceMs ?? GC_GRACE_MS));
      if (result.blobs > 0) options.log?.(describeGc(result));
    } while (again);
  };
  return {
    soon() {
      if (running) {
        again = true;
        return;
      }
      running = run()
        .catch((e: unknown) => options.log?.(`gc failed: ${(e as Error).name}`))
        .finally(() => (running = undefined));
    },
    idle: async () => {
      await running;
    },
  };
}

/** The answer to a method the resource does not take. @throws DistributionError UNSUPPORTED (405) */
async function notAllowed(r: RegistryRequest): Promise<Response> {
  throw methodNotAllowed(r.method);
}

/**
 * Puts one resource on Hono routes: a route per method, then one that refuses the others with
 * 405. Hono answers HEAD with the GET route (and drops the body), so the GET route serves HEAD
 * only where the resource has a HEAD handler.
 */
function route(
  app: Hono,
  resource: Resource,
  serve: (c: Context, pattern: string, answer: RegistryHandler) => Promise<Response>,
): void {
  const { pattern, methods, check } = resource;
  const checked =
    (answer: RegistryHandler): RegistryHandler =>
    async (r) => {
      if (pattern.startsWith(NAME)) checkName(r.name);
      await check?.(r);
      return answer(r);
    };
  for (const [method, handler] of Object.entries(methods) as [Method, RegistryHandler][]) {
    if (method === 'HEAD') continue;
    const head = methods.HEAD ?? notAllowed;
    const answer = checked((r) => (r.method === 'HEAD' ? head(r) : handler(r)));
    app.on(method, pattern, (c) => serve(c, pattern, answer));
  }
  const refuse = checked(notAllowed);
  app.all(pattern, (c) => serve(c, pattern, refuse));
}

/**
 * The embedded registry's uploads: `POST /v2/<name>/blobs/uploads/` opens a session, takes a whole
 * blob at once (`?digest=`) or mounts one already stored (`?mount=&from=`) (end-4a/4b/11); then
 * `/v2/<name>/blobs/uploads/<id>`: GET its status, PATCH a chunk, PUT the last one with
 * `?digest=`, DELETE to cancel (end-5, end-6, end-13). Requests of one session run one at a time.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
 */
import { DistributionError } from '../errors.ts';
import { checkDigest, checkName, declaredLength, empty, type RegistryRequest } from '../http.ts';
import type { UploadSession } from '../storage.ts';

/** The size limits of a body sent to this request. */
function limits(r: RegistryRequest): { max: number; declared?: number } {
  const declared = declaredLength(r.c);
  return { max: r.reg.maxUploadBytes, ...(declared === undefined ? {} : { declared }) };
}

/** 201 for a blob now stored under `digest`. */
function created(r: RegistryRequest, digest: string, extra: Record<string, string> = {}): Response {
  return empty(201, { Location: r.location(`blobs/${digest}`), 'Docker-Content-Digest': digest, ...extra });
}

/**
 * POST: mounts a blob that `from` holds, stores a whole blob sent with `?digest=`, or opens a
 * session (also for a mount of a blob `from` does not hold, as the spec says).
 * @throws DistributionError DIGEST_INVALID, UNSUPPORTED, NAME_INVALID (`from`), SIZE_INVALID,
 *   DENIED (507, the disk quota), TOO_MANY_REQUESTS (429, sessions)
 */
export async function startUpload(r: RegistryRequest): Promise<Response> {
  const { c } = r;
  const { storage } = r.reg;
  const mount = c.req.query('mount');
  if (mount !== undefined) {
    checkDigest(mount);
    const from = c.req.query('from');
    if (from !== undefined) checkName(from);
    const mounted =
      from !== undefined &&
      (await r.reg.gate.shared(async () => {
        if ((await storage.repoBlobSize(from, mount)) === undefined) return false;
        await storage.linkBlob(r.name, mount);
        return true;
      }));
    if (mounted) return created(r, mount);
  }
  const digest = c.req.query('digest');
  if (digest !== undefined) {
    checkDigest(digest);
    await storage.putBlobStream(c.req.raw.body, digest, limits(r));
    await storage.linkBlob(r.name, digest);
    return created(r, digest);
  }
  await c.req.raw.body?.cancel().catch(() => undefined);
  const s = await storage.startUpload(r.name);
  return empty(202, { ...r.uploadHeaders(s), 'Content-Length': '0' });
}

/**
 * Checked before the method: the session must be in progress in this repository.
 * @throws DistributionError BLOB_UPLOAD_UNKNOWN (404)
 */
export async function checkSession(r: RegistryRequest): Promise<void> {
  r.reg.storage.session(r.name, r.param('id'));
}

function session(r: RegistryRequest): UploadSession {
  return r.reg.storage.session(r.name, r.param('id'));
}

/** GET: 204 with where the upload is. */
export async function uploadStatus(r: RegistryRequest): Promise<Response> {
  return empty(204, r.uploadHeaders(session(r)));
}

/** DELETE: the session and its bytes are dropped; 204. */
export async function cancelUpload(r: RegistryRequest): Promise<Response> {
  const s = session(r);
  await r.reg.storage.serialised(s, () => r.reg.storage.cancelUpload(s));
  return empty(204, {});
}

/**
 * A chunk's Content-Range `<start>-<end>` must start where the upload is.
 * @throws DistributionError BLOB_UPLOAD_INVALID (416, with the session's headers)
 */
function checkContentRange(r: RegistryRequest, s: UploadSession): void {
  const header = r.c.req.header('content-range');
  if (header === undefined) return;
  const m = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const start = m === null ? NaN : Number(m[1]);
  const end = m === null ? NaN : Number(m[2]);
  const declared = declaredLength(r.c);
  if (m === null || start !== s.offset || end < start || (declared !== undefined && declared !== end - start + 1)) {
    throw new DistributionError(
      'BLOB_UPLOAD_INVALID',
      416,
      `The chunk's Content-Range "${header}" does not follow the ${s.offset} bytes uploaded so far.`,
      null,
      r.uploadHeaders(s),
    );
  }
}

/** PATCH: appends a chunk; 202. @throws DistributionError BLOB_UPLOAD_INVALID (416), SIZE_INVALID, DENIED (507) */
export async function patchUpload(r: RegistryRequest): Promise<Response> {
  const s = session(r);
  return r.reg.storage.serialised(s, async () => {
    session(r);
    const bounds = limits(r);
    checkContentRange(r, s);
    await r.reg.storage.appendChunk(s, r.c.req.raw.body, bounds);
    return empty(202, { ...r.uploadHeaders(s), 'Content-Length': '0' });
  });
}

/**
 * PUT `?digest=`: appends the last chunk (possibly none) and stores the blob; 201.
 * @throws DistributionError DIGEST_INVALID, BLOB_UPLOAD_INVALID (416), SIZE_INVALID
 */
export async function finishUpload(r: RegistryRequest): Promise<Response> {
  const s = session(r);
  return r.reg.storage.serialised(s, async () => {
    session(r);
    const bounds = limits(r);
    const digest = r.c.req.query('digest');
    if (digest === undefined) {
      throw new DistributionError('DIGEST_INVALID', 400, 'Closing an upload needs ?digest=.');
    }
    checkDigest(digest);
    if (r.c.req.header('content-range') !== undefined) checkContentRange(r, s);
    await r.reg.storage.appendChunk(s, r.c.req.raw.body, bounds);
    await r.reg.storage.finishUpload(s, digest);
    await r.reg.storage.linkBlob(r.name, digest);
    return created(r, digest, { 'Content-Length': '0' });
  });
}

/**
 * The embedded registry's blobs, `/v2/<name>/blobs/<digest>`: GET and HEAD (end-2, end-10; a GET
 * may ask for one byte range, answered 206 or 416) and DELETE (end-10). A repository serves only
 * the blobs linked to it (pushed or mounted there, or named by its manifests; storage.ts): through
 * any other name a blob is BLOB_UNKNOWN, as in distribution. DELETE removes the repository's link;
 * the bytes go at the next gc (gc.ts) once no manifest names them.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-blobs
 */
import { Readable } from 'node:stream';
import { DistributionError } from '../errors.ts';
import { API_VERSION_HEADER, checkDigest, empty, type RegistryRequest } from '../http.ts';

/**
 * Checked before the method: a malformed digest is refused whatever was asked.
 * @throws DistributionError DIGEST_INVALID, UNSUPPORTED
 */
export async function checkBlobDigest(r: RegistryRequest): Promise<void> {
  checkDigest(r.param('digest'));
}

/** The inclusive byte range a `Range: bytes=…` header asks of `size` bytes; undefined when unsatisfiable. */
function byteRange(range: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
  let start = m?.[1] === '' || m === null ? NaN : Number(m[1]);
  let end = m?.[2] === '' || m === null ? size - 1 : Number(m[2]);
  if (m !== null && m[1] === '' && m[2] !== '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  }
  end = Math.min(end, size - 1);
  if (!Number.isSafeInteger(start) || start > end || start >= size) return undefined;
  return { start, end };
}

/** GET and HEAD: the bytes, or the range asked for. @throws DistributionError BLOB_UNKNOWN (404) */
export async function getBlob(r: RegistryRequest): Promise<Response> {
  const digest = r.param('digest');
  const { storage } = r.reg;
  const size = await storage.repoBlobSize(r.name, digest);
  if (size === undefined) {
    throw new DistributionError('BLOB_UNKNOWN', 404, `Blob ${digest} is not stored in ${r.name}.`, { digest });
  }
  const headers: Record<string, string> = {
    'Docker-Content-Digest': digest,
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
  };
  const range = r.c.req.header('range');
  if (r.method === 'GET' && range !== undefined) {
    const asked = byteRange(range, size);
    if (asked === undefined) return empty(416, { 'Content-Range': `bytes */${size}` });
    const { start, end } = asked;
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
  if (r.method === 'HEAD') return empty(200, headers);
  const stream = Readable.toWeb(storage.readBlobStream(digest)) as ReadableStream<Uint8Array>;
  return new Response(stream, { status: 200, headers: { ...API_VERSION_HEADER, ...headers } });
}

/** DELETE: 202. @throws DistributionError BLOB_UNKNOWN (404) */
export async function deleteBlob(r: RegistryRequest): Promise<Response> {
  const digest = r.param('digest');
  const { storage } = r.reg;
  if ((await storage.repoBlobSize(r.name, digest)) === undefined || !(await storage.unlinkBlob(r.name, digest))) {
    throw new DistributionError('BLOB_UNKNOWN', 404, `Blob ${digest} is not stored in ${r.name}.`, { digest });
  }
  return empty(202, {});
}

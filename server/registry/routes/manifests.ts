/**
 * The embedded registry's manifests, `/v2/<name>/manifests/<reference>` (a tag or a digest): GET and
 * HEAD (end-3), PUT (end-7), DELETE (end-9). Each answer about one manifest carries its ETag, the
 * quoted digest (`"sha256:…"`), as distribution sends it. A PUT with `If-Match` (RFC 9110 §13.1.1)
 * writes only while the reference still has one of the ETags it names, else 412
 * PRECONDITION_FAILED: a client that read a tag, changed the manifest and writes it back with the
 * ETag it read cannot overwrite another writer's change. The check and the write are one step:
 * the writes of one tag (PUT and DELETE) run one at a time, and the check comes before the body
 * is read (RFC 9110 §13.2.2), so nothing of a refused PUT is stored.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 */
import { isValidTag } from '../../../shared/registry/reference.ts';
import { DistributionError } from '../errors.ts';
import { API_VERSION_HEADER, checkDigest, empty, readBody, type RegistryRequest } from '../http.ts';
import { checkManifest } from '../manifest-check.ts';
import type { ManifestLink } from '../storage.ts';

function isDigest(reference: string): boolean {
  return reference.includes(':');
}

/** @throws DistributionError MANIFEST_INVALID (400) */
function checkTag(tag: string): void {
  if (!isValidTag(tag)) throw new DistributionError('MANIFEST_INVALID', 400, `"${tag}" is not a valid tag.`);
}

/** @throws DistributionError MANIFEST_INVALID, DIGEST_INVALID, UNSUPPORTED */
function checkReference(reference: string): void {
  if (isDigest(reference)) checkDigest(reference);
  else checkTag(reference);
}

function etagOf(digest: string): string {
  return `"${digest}"`;
}

/**
 * The manifest a tag or digest names in the repository.
 * @throws DistributionError MANIFEST_UNKNOWN (404), MANIFEST_INVALID, DIGEST_INVALID, UNSUPPORTED
 */
async function resolveReference(r: RegistryRequest, reference: string): Promise<ManifestLink> {
  const { storage } = r.reg;
  let digest = reference;
  checkReference(reference);
  if (!isDigest(reference)) {
    const tagged = await storage.tag(r.name, reference);
    if (tagged === undefined) {
      throw new DistributionError('MANIFEST_UNKNOWN', 404, `No manifest is tagged ${reference} in ${r.name}.`);
    }
    digest = tagged;
  }
  const link = await storage.manifestLink(r.name, digest);
  if (link === undefined) {
    throw new DistributionError('MANIFEST_UNKNOWN', 404, `Manifest ${digest} is not in ${r.name}.`, { digest });
  }
  return link;
}

/** GET and HEAD: the bytes as pushed, with media type, digest and ETag. @throws DistributionError MANIFEST_UNKNOWN */
export async function getManifest(r: RegistryRequest): Promise<Response> {
  const link = await resolveReference(r, r.param('reference'));
  const headers = {
    'Content-Type': link.mediaType,
    'Docker-Content-Digest': link.digest,
    ETag: etagOf(link.digest),
    'Content-Length': String(link.size),
  };
  if (r.method === 'HEAD') return empty(200, headers);
  const bytes = await r.reg.storage.readBlob(link.digest);
  return new Response(new Uint8Array(bytes), { status: 200, headers: { ...API_VERSION_HEADER, ...headers } });
}

/**
 * `If-Match` (RFC 9110 §13.1.1): `*` holds while the reference names a manifest; a list of entity
 * tags holds while one of them is the current ETag, compared strongly (a weak `W/"…"` never holds).
 * @throws DistributionError PRECONDITION_FAILED (412)
 */
async function checkIfMatch(r: RegistryRequest, reference: string): Promise<void> {
  const header = r.c.req.header('if-match');
  if (header === undefined) return;
  let current: string | undefined;
  try {
    current = etagOf((await resolveReference(r, reference)).digest);
  } catch (e) {
    if (!(e instanceof DistributionError && e.code === 'MANIFEST_UNKNOWN')) throw e;
  }
  const tags = header.split(',').map((t) => t.trim());
  const holds = current !== undefined && (tags.includes('*') || tags.includes(current));
  if (!holds) {
    throw new DistributionError(
      'PRECONDITION_FAILED',
      412,
      current === undefined
        ? `${reference} names no manifest in ${r.name}, so If-Match does not hold.`
        : `${reference} in ${r.name} has ETag ${current} now, not one If-Match names.`,
      { etag: current ?? null },
    );
  }
}

/** Runs a write of `reference` alone among the writes of the same tag (digests need no turn). */
function writeInTurn<T>(r: RegistryRequest, reference: string, write: () => Promise<T>): Promise<T> {
  return isDigest(reference) ? write() : r.reg.tagWrites.run(`${r.name}:${reference}`, write);
}

/**
 * PUT: checks and stores the manifest, then moves the tag; 201 with Location, digest, ETag and
 * OCI-Subject for a referrer.
 * @throws DistributionError PRECONDITION_FAILED (412), SIZE_INVALID (413), MANIFEST_INVALID,
 *   MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID (a body whose digest is not the reference), UNSUPPORTED,
 *   DENIED (507, the disk quota)
 */
export async function putManifest(r: RegistryRequest): Promise<Response> {
  const reference = r.param('reference');
  checkReference(reference);
  return writeInTurn(r, reference, async () => {
    await checkIfMatch(r, reference);
    const { storage } = r.reg;
    const bytes = await readBody(r.c, r.reg.maxManifestBytes, 'manifest');
    const contentType = (r.c.req.header('content-type') ?? '').split(';')[0]!.trim();
    const link = await r.reg.gate.shared(async () => {
      const checked = await checkManifest(storage, r.name, bytes, contentType);
      const digest = await storage.putBlobBytes(bytes);
      if (isDigest(reference) && digest !== reference) {
        throw new DistributionError('DIGEST_INVALID', 400, `The manifest has digest ${digest}, not ${reference}.`, {
          expected: reference,
          got: digest,
        });
      }
      checked.digest = digest;
      await storage.linkBlob(r.name, digest);
      await storage.putManifestLink(r.name, checked);
      return checked;
    });
    const { digest } = link;
    if (!isDigest(reference)) await storage.putTag(r.name, reference, digest);
    const headers: Record<string, string> = {
      Location: r.location(`manifests/${digest}`),
      'Docker-Content-Digest': digest,
      ETag: etagOf(digest),
      'Content-Length': '0',
    };
    if (link.subject !== undefined) headers['OCI-Subject'] = link.subject;
    return empty(201, headers);
  });
}

/**
 * DELETE: a tag (the manifest stays) or a manifest by digest, after which gc runs (gc.ts); 202.
 * @throws DistributionError MANIFEST_UNKNOWN (404)
 */
export async function deleteManifest(r: RegistryRequest): Promise<Response> {
  const reference = r.param('reference');
  const { storage } = r.reg;
  checkReference(reference);
  return writeInTurn(r, reference, async () => {
    if (!isDigest(reference)) {
      if (!(await storage.deleteTag(r.name, reference))) {
        throw new DistributionError('MANIFEST_UNKNOWN', 404, `No manifest is tagged ${reference} in ${r.name}.`);
      }
    } else if (!(await storage.deleteManifestLink(r.name, reference))) {
      throw new DistributionError('MANIFEST_UNKNOWN', 404, `Manifest ${reference} is not in ${r.name}.`);
    } else {
      r.reg.collectSoon();
    }
    return empty(202, {});
  });
}

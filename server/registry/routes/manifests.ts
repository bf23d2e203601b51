/**
 * The embedded registry's manifests, `/v2/<name>/manifests/<reference>` (a tag or a digest): GET and
 * HEAD (end-3), PUT (end-7), DELETE (end-9).
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

/** GET and HEAD: the bytes as pushed, with media type and digest. @throws DistributionError MANIFEST_UNKNOWN */
export async function getManifest(r: RegistryRequest): Promise<Response> {
  const link = await resolveReference(r, r.param('reference'));
  const headers = {
    'Content-Type': link.mediaType,
    'Docker-Content-Digest': link.digest,
    'Content-Length': String(link.size),
  };
  if (r.method === 'HEAD') return empty(200, headers);
  const bytes = await r.reg.storage.readBlob(link.digest);
  return new Response(new Uint8Array(bytes), { status: 200, headers: { ...API_VERSION_HEADER, ...headers } });
}

/**
 * PUT: checks and stores the manifest, then moves the tag; 201 with Location, digest and
 * OCI-Subject for a referrer.
 * @throws DistributionError SIZE_INVALID (413), MANIFEST_INVALID,
 *   MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID (a body whose digest is not the reference), UNSUPPORTED
 */
export async function putManifest(r: RegistryRequest): Promise<Response> {
  const reference = r.param('reference');
  checkReference(reference);
  const { storage } = r.reg;
  const bytes = await readBody(r.c, r.reg.maxManifestBytes, 'manifest');
  const contentType = (r.c.req.header('content-type') ?? '').split(';')[0]!.trim();
  const link = await checkManifest(storage, r.name, bytes, contentType);
  const digest = await storage.putBlobBytes(bytes);
  if (isDigest(reference) && digest !== reference) {
    throw new DistributionError('DIGEST_INVALID', 400, `The manifest has digest ${digest}, not ${reference}.`, {
      expected: reference,
      got: digest,
    });
  }
  link.digest = digest;
  await storage.putManifestLink(r.name, link);
  if (!isDigest(reference)) await storage.putTag(r.name, reference, digest);
  const headers: Record<string, string> = {
    Location: r.location(`manifests/${digest}`),
    'Docker-Content-Digest': digest,
    'Content-Length': '0',
  };
  if (link.subject !== undefined) headers['OCI-Subject'] = link.subject;
  return empty(201, headers);
}

/** DELETE: a tag (the manifest stays) or a manifest by digest; 202. @throws DistributionError MANIFEST_UNKNOWN (404) */
export async function deleteManifest(r: RegistryRequest): Promise<Response> {
  const reference = r.param('reference');
  const { storage } = r.reg;
  checkReference(reference);
  if (!isDigest(reference)) {
    if (!(await storage.deleteTag(r.name, reference))) {
      throw new DistributionError('MANIFEST_UNKNOWN', 404, `No manifest is tagged ${reference} in ${r.name}.`);
    }
  } else if (!(await storage.deleteManifestLink(r.name, reference))) {
    throw new DistributionError('MANIFEST_UNKNOWN', 404, `Manifest ${reference} is not in ${r.name}.`);
  }
  return empty(202, {});
}

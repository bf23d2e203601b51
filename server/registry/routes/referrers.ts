/**
 * The embedded registry's OCI 1.1 referrers API, `GET /v2/<name>/referrers/<digest>
 * [?artifactType=<type>]` (end-12a/12b): an image index of the manifests whose `subject` is that
 * digest, filtered by artifact type when asked (then `OCI-Filters-Applied: artifactType`).
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
 */
import { MT } from '../../../shared/registry/mediatypes.ts';
import { checkDigest, json, type RegistryRequest } from '../http.ts';

/** @throws DistributionError DIGEST_INVALID, UNSUPPORTED for a digest this registry does not take */
export async function listReferrers(r: RegistryRequest): Promise<Response> {
  const digest = r.param('digest');
  checkDigest(digest);
  const artifactType = r.c.req.query('artifactType');
  const manifests = [];
  for (const link of await r.reg.storage.manifestLinks(r.name)) {
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

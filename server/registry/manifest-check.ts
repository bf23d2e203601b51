/**
 * What the embedded registry checks in a manifest before it stores it (distribution spec, "Pushing
 * Manifests"): JSON, a manifest media type matching the one it was sent as, schemaVersion 2, and
 * every blob (or, for an index, every manifest) it refers to present in the repository with the
 * size it claims. What the referrers API needs of it (subject, artifactType, annotations) is kept.
 * JSON nested deeper than 64 levels is refused by a scan of the bytes before JSON.parse runs: a
 * 4 MiB manifest of nested arrays would otherwise hold the event loop for about half a second.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-manifests
 */
import { jsonDepthWithin, MAX_JSON_DEPTH } from '../../shared/encoding/json-depth.ts';
import { isIndexMediaType, isManifestMediaType } from '../../shared/registry/mediatypes.ts';
import { DistributionError } from './errors.ts';
import { checkDigest } from './http.ts';
import type { ManifestLink, Storage } from './storage.ts';

interface DescriptorLike {
  mediaType: string;
  digest: string;
  size: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(message: string): DistributionError {
  return new DistributionError('MANIFEST_INVALID', 400, message);
}

function descriptorAt(v: unknown, where: string): DescriptorLike {
  if (!isRecord(v) || typeof v['digest'] !== 'string' || typeof v['size'] !== 'number') {
    throw invalid(`The manifest's ${where} is not a descriptor.`);
  }
  try {
    checkDigest(v['digest']);
  } catch {
    throw invalid(`The manifest's ${where} has an invalid digest.`);
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
 * Manifest bytes as JSON: 'deep' when they nest arrays or objects deeper than MAX_JSON_DEPTH (seen
 * before JSON.parse, which would otherwise stall the event loop on them), 'invalid' when not JSON.
 */
function manifestJson(bytes: Uint8Array): { doc: unknown } | 'deep' | 'invalid' {
  const text = Buffer.from(bytes).toString('utf8');
  if (!jsonDepthWithin(text)) return 'deep';
  try {
    return { doc: JSON.parse(text) as unknown };
  } catch {
    return 'invalid';
  }
}

/** The manifest as JSON, with the media type it is stored under. @throws DistributionError MANIFEST_INVALID */
function parseManifest(bytes: Uint8Array, contentType: string): { doc: Record<string, unknown>; mediaType: string } {
  const read = manifestJson(bytes);
  if (read === 'deep') throw invalid(`The manifest nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels.`);
  if (read === 'invalid') throw invalid('The manifest is not JSON.');
  const doc = read.doc;
  if (!isRecord(doc)) throw invalid('The manifest is not a JSON object.');
  const declared = typeof doc['mediaType'] === 'string' ? doc['mediaType'] : undefined;
  const mediaType = contentType !== '' ? contentType : (declared ?? '');
  if (!isManifestMediaType(mediaType)) {
    throw invalid(`Media type "${mediaType}" is not a manifest type stored here.`);
  }
  if (declared !== undefined && declared !== mediaType) {
    throw invalid(`The manifest says mediaType "${declared}" but was sent as "${mediaType}".`);
  }
  if (doc['schemaVersion'] !== 2) throw invalid('The manifest is not schemaVersion 2.');
  return { doc, mediaType };
}

/**
 * The digests the manifest refers to that the repository lacks.
 * @throws DistributionError MANIFEST_INVALID for a malformed list or a blob of another size
 */
async function missingReferences(
  storage: Storage,
  name: string,
  doc: Record<string, unknown>,
  mediaType: string,
): Promise<string[]> {
  const missing: string[] = [];
  if (isIndexMediaType(mediaType)) {
    const children = doc['manifests'];
    if (!Array.isArray(children)) throw invalid('The index has no manifests.');
    for (const [i, child] of children.entries()) {
      const d = descriptorAt(child, `manifests[${i}]`);
      if ((await storage.manifestLink(name, d.digest)) === undefined) missing.push(d.digest);
    }
    return missing;
  }
  const refs = [descriptorAt(doc['config'], 'config')];
  const layers = doc['layers'];
  if (!Array.isArray(layers)) throw invalid('The manifest has no layers.');
  for (const [i, layer] of layers.entries()) refs.push(descriptorAt(layer, `layers[${i}]`));
  for (const d of refs) {
    const size = await storage.repoBlobSize(name, d.digest);
    if (size === undefined) missing.push(d.digest);
    else if (size !== d.size) throw invalid(`Blob ${d.digest} has ${size} bytes, not ${d.size}.`);
  }
  return missing;
}

/**
 * Every digest a stored manifest names (config, layers, an index's manifests, subject, an artifact
 * manifest's blobs): what gc.ts keeps. Bytes that are not such JSON name nothing.
 */
export function namedDigests(bytes: Uint8Array): string[] {
  const read = manifestJson(bytes);
  if (typeof read === 'string') return [];
  const doc = read.doc;
  if (!isRecord(doc)) return [];
  const named: unknown[] = [doc['config'], doc['subject']];
  for (const list of [doc['layers'], doc['manifests'], doc['blobs']]) if (Array.isArray(list)) named.push(...list);
  return named.flatMap((d) => (isRecord(d) && typeof d['digest'] === 'string' ? [d['digest']] : []));
}

/**
 * Parses a manifest and checks what it refers to; returns what is kept about it, its digest still
 * empty (the caller stores the bytes and fills it in).
 * @throws DistributionError MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN (detail: the missing digests)
 */
export async function checkManifest(
  storage: Storage,
  name: string,
  bytes: Uint8Array,
  contentType: string,
): Promise<ManifestLink> {
  const { doc, mediaType } = parseManifest(bytes, contentType);
  const missing = await missingReferences(storage, name, doc, mediaType);
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

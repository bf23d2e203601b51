/**
 * Inspecting an image as `skopeo inspect --raw` and `skopeo inspect --config --raw` show it: the
 * manifest or index exactly as the registry served it (so the digest of what is shown is the
 * digest), the config blob of the image (or of one platform of an index), the answer's headers,
 * each digest computed here next to the one the registry sent (Docker-Content-Digest) and the one
 * that was asked for, and every media type explained (registry/explain.ts).
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 */
import { RegistryError, reasonOf, type Reason } from '../errors.ts';
import type { RawResponse, RegistryClient, RepoRef } from '../registry/client.ts';
import { explainMediaType, type MediaTypeExplanation } from '../registry/explain.ts';
import { isIndexMediaType, platformName, type Descriptor } from '../registry/mediatypes.ts';
import { formatReference, isSha256Digest, manifestReference, parseReference } from '../registry/reference.ts';
import { isObject, type JsonValue } from '../cosign/strict-json.ts';
import { jsonDepthWithin } from '../encoding/json-depth.ts';

/** Largest config blob read (image configs are a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface DigestCheck {
  /** sha256 of the bytes as served, computed here. */
  computed: string;
  /** Docker-Content-Digest, or null when the registry sent none. */
  registry: string | null;
  /** The digest asked for (a digest reference, or the descriptor that named this object), or null for a tag. */
  expected: string | null;
  /** True when neither the registry's nor the expected digest differs from the computed one. */
  ok: boolean;
  /** One sentence saying how they compare. */
  sentence: string;
}

/** One object as served: a manifest, an index or a config blob. */
export interface InspectedObject {
  role: 'manifest' | 'index' | 'config';
  /** Where it was read: `repo@sha256:…`, `repo:tag` or `blob sha256:…`. */
  source: string;
  raw: RawResponse;
  /** The bytes as UTF-8 text, or null when they are not UTF-8 (then shown as hex). */
  text: string | null;
  /** The bytes parsed as JSON, re-indented for the pretty view; null when not JSON. */
  pretty: string | null;
  /** The object's own `mediaType` field, else the Content-Type, else the descriptor's. */
  mediaType: string;
  explanation: MediaTypeExplanation;
  digest: DigestCheck;
}

/** A descriptor of the shown manifest (config, layer, subject, platform), with what its type means. */
export interface ExplainedDescriptor {
  /** config, layer 0…, subject, or the platform name of an index entry. */
  role: string;
  descriptor: Descriptor;
  explanation: MediaTypeExplanation;
  /** The artifactType's explanation, when the descriptor has one. */
  artifact: MediaTypeExplanation | null;
}

export interface InspectResult {
  input: string;
  /** The normalised reference. */
  reference: string;
  repo: RepoRef;
  /** What the reference names: an image manifest or an index. */
  top: InspectedObject;
  /** For an index, its entries; for a manifest, []. */
  platforms: { name: string; descriptor: Descriptor }[];
  /** The platform shown below the index (as skopeo picks on an amd64 machine unless chosen), or null. */
  platform: string | null;
  /** The image manifest shown: `top` itself, or the chosen platform's manifest. */
  manifest: InspectedObject;
  /** The manifest's config blob (what `skopeo inspect --config --raw` prints), or null when it has none. */
  config: InspectedObject | null;
  /** Why the config could not be read, when it could not. */
  configError: Reason | null;
  /** The manifest's descriptors: config, layers, subject (and the index's entries first). */
  descriptors: ExplainedDescriptor[];
  /** Every distinct media and artifact type shown, explained once. */
  mediaTypes: MediaTypeExplanation[];
}

export interface InspectOptions {
  image: string;
  /** For an index: which platform (`linux/arm64/v8`) to show; default linux/amd64, else the first. */
  platform?: string;
}

function short(d: string): string {
  return d.length > 19 ? `${d.slice(0, 19)}…` : d;
}

/** Compares the computed digest with the registry's and the expected one, in words. */
export function checkDigests(
  computed: string,
  registry: string | null,
  expected: string | null,
  expectedWhat = 'the digest asked for',
): DigestCheck {
  const problems: string[] = [];
  if (registry !== null && registry !== computed)
    problems.push(`the registry says ${registry} (Docker-Content-Digest), but the bytes hash to ${computed}`);
  if (expected !== null && expected !== computed)
    problems.push(`${expectedWhat} is ${expected}, but the bytes hash to ${computed}`);
  const ok = problems.length === 0;
  let sentence: string;
  if (!ok) sentence = `Digest mismatch: ${problems.join('; ')}.`;
  else if (registry !== null && expected !== null)
    sentence = `The bytes hash to ${short(computed)}, ${expectedWhat} and the one the registry sent.`;
  else if (registry !== null) sentence = `The bytes hash to ${short(computed)}, the digest the registry sent.`;
  else if (expected !== null) sentence = `The bytes hash to ${short(computed)}, ${expectedWhat}.`;
  else sentence = `The bytes hash to ${short(computed)}; the registry sent no digest to compare with.`;
  return { computed, registry, expected, ok, sentence };
}

function decodeText(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** JSON.parse's value, or undefined for what is not JSON or nests too deeply to pretty-print. */
function parseJson(text: string | null): unknown {
  if (text === null || !jsonDepthWithin(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A JSON object (strict-json's isObject, over JSON.parse's plain numbers). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return isObject(v as JsonValue);
}

function isDescriptor(v: unknown): v is Descriptor {
  return isRecord(v) && typeof v.mediaType === 'string' && typeof v.digest === 'string' && typeof v.size === 'number';
}

/** Builds the view of one served object. */
export function inspectObject(
  role: InspectedObject['role'],
  source: string,
  raw: RawResponse,
  expected: string | null,
  fallbackMediaType = '',
): InspectedObject {
  const text = decodeText(raw.bytes);
  const json = parseJson(text);
  const own = isRecord(json) && typeof json.mediaType === 'string' ? json.mediaType : '';
  const mediaType = (role === 'config' ? fallbackMediaType : own) || raw.mediaType || fallbackMediaType;
  return {
    role,
    source,
    raw,
    text,
    pretty: json === undefined ? null : JSON.stringify(json, null, 2),
    mediaType,
    explanation: explainMediaType(mediaType),
    digest: checkDigests(
      raw.digest,
      raw.registryDigest,
      expected,
      role === 'config' ? 'the digest the manifest names' : 'the digest asked for',
    ),
  };
}

function describe(role: string, d: Descriptor): ExplainedDescriptor {
  return {
    role,
    descriptor: d,
    explanation: explainMediaType(d.mediaType),
    artifact: typeof d.artifactType === 'string' ? explainMediaType(d.artifactType) : null,
  };
}

/** The platform shown for an index: the one asked for, else linux/amd64 (what skopeo picks here), else the first. */
export function choosePlatform(entries: { name: string }[], wanted?: string): string | null {
  if (entries.length === 0) return null;
  if (wanted && entries.some((e) => e.name === wanted)) return wanted;
  return entries.find((e) => e.name === 'linux/amd64')?.name ?? entries[0]!.name;
}

/**
 * An index's platforms (each also a descriptor shown) and the manifest of the one chosen.
 * @throws RegistryError REGISTRY_NOT_FOUND when `wanted` names no entry, REGISTRY_BAD_RESPONSE when
 *   the chosen entry's digest is not sha256, and what fetchManifest throws.
 */
async function choosePlatformManifest(
  client: RegistryClient,
  repo: RepoRef,
  index: InspectedObject,
  wanted: string | undefined,
  descriptors: ExplainedDescriptor[],
): Promise<Pick<InspectResult, 'platforms' | 'platform' | 'manifest'>> {
  const json = parseJson(index.text);
  const platforms: InspectResult['platforms'] = [];
  const list = isRecord(json) && Array.isArray(json.manifests) ? json.manifests : [];
  for (const d of list) {
    if (!isDescriptor(d)) continue;
    const pname = d.platform ? platformName(d.platform) : 'unknown platform';
    platforms.push({ name: pname, descriptor: d });
    descriptors.push(describe(`platform ${pname}`, d));
  }
  const platform = choosePlatform(platforms, wanted);
  if (wanted && platform !== wanted) {
    throw new RegistryError(
      'REGISTRY_NOT_FOUND',
      `The index has no ${wanted} manifest; it has ${platforms.map((p) => p.name).join(', ') || 'none'}.`,
    );
  }
  const chosen = platforms.find((p) => p.name === platform);
  if (!chosen) return { platforms, platform, manifest: index };
  if (!isSha256Digest(chosen.descriptor.digest)) {
    // The digest goes into the request path: one like "../x" or "a?b" would fetch something else.
    throw new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      `The index names its ${platform} manifest by "${chosen.descriptor.digest}", which is not a sha256 digest; it is not fetched.`,
    );
  }
  const raw = await client.fetchManifest(repo, chosen.descriptor.digest);
  const source = `${repo.registry}/${repo.repository}@${chosen.descriptor.digest}`;
  return { platforms, platform, manifest: inspectObject('manifest', source, raw, chosen.descriptor.digest) };
}

/** The config blob `c` names, as served, its size compared too. @throws what fetchBlob throws, RegistryError REGISTRY_BAD_RESPONSE for a digest that is not sha256. */
async function readConfig(client: RegistryClient, repo: RepoRef, c: Descriptor): Promise<InspectedObject> {
  if (!isSha256Digest(c.digest)) {
    throw new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      `The manifest names its config by "${c.digest}", which is not a sha256 digest; it is not fetched.`,
    );
  }
  const raw = await client.fetchBlob(repo, c.digest, MAX_CONFIG_BYTES);
  const config = inspectObject('config', `blob ${c.digest}`, raw, c.digest, c.mediaType);
  if (raw.bytes.length !== c.size) {
    config.digest = {
      ...config.digest,
      ok: false,
      sentence: `${config.digest.sentence} Its size is ${raw.bytes.length} bytes, but the manifest says ${c.size}.`,
    };
  }
  return config;
}

/** An image manifest's config (read; a failure is its reason), and its descriptors: config, layers, subject. */
async function manifestParts(
  client: RegistryClient,
  repo: RepoRef,
  manifest: InspectedObject,
  descriptors: ExplainedDescriptor[],
): Promise<Pick<InspectResult, 'config' | 'configError'>> {
  const json = parseJson(manifest.text);
  let config: InspectedObject | null = null;
  let configError: Reason | null = null;
  if (!isRecord(json) || isIndexMediaType(manifest.mediaType)) return { config, configError };
  if (isDescriptor(json.config)) {
    descriptors.push(describe('config', json.config));
    try {
      config = await readConfig(client, repo, json.config);
    } catch (e) {
      configError = reasonOf(e);
    }
  }
  const layers = Array.isArray(json.layers) ? json.layers : [];
  layers.forEach((l, i) => {
    if (isDescriptor(l)) descriptors.push(describe(`layer ${i}`, l));
  });
  if (isDescriptor(json.subject)) descriptors.push(describe('subject', json.subject));
  return { config, configError };
}

/** Every distinct media and artifact type shown, explained once, in the order shown. */
function mediaTypesShown(
  top: InspectedObject,
  manifest: InspectedObject,
  descriptors: ExplainedDescriptor[],
): MediaTypeExplanation[] {
  const seen = new Map<string, MediaTypeExplanation>();
  const add = (e: MediaTypeExplanation | null): void => {
    if (e && e.mediaType && !seen.has(e.mediaType)) seen.set(e.mediaType, e);
  };
  add(top.explanation);
  add(manifest.explanation);
  for (const d of descriptors) {
    add(d.explanation);
    add(d.artifact);
  }
  const json = parseJson(manifest.text);
  const artifactType = isRecord(json) ? json.artifactType : undefined;
  if (typeof artifactType === 'string') add(explainMediaType(artifactType));
  return [...seen.values()];
}

/**
 * Reads an image's manifest (or index, then one platform's manifest) and config as served.
 * @throws RegistryError/RelayError when the manifest cannot be read (a config that cannot be read
 *   is reported in `configError` instead); RegistryError REGISTRY_REFERENCE_INVALID for a bad
 *   reference; RegistryError REGISTRY_NOT_FOUND when `platform` names no entry of the index.
 */
export async function inspectImage(client: RegistryClient, opts: InspectOptions): Promise<InspectResult> {
  const ref = parseReference(opts.image);
  const repo: RepoRef = { registry: ref.registry, repository: ref.repository };
  const reference = manifestReference(ref);
  const name = `${ref.registry}/${ref.repository}`;
  const topRaw = await client.fetchManifest(repo, reference);
  const expected = isSha256Digest(reference) ? reference : null;
  const shown = inspectObject(
    'manifest',
    `${name}${reference.includes(':') ? '@' : ':'}${reference}`,
    topRaw,
    expected,
  );
  const isIndex = isIndexMediaType(shown.mediaType);
  const top: InspectedObject = isIndex ? { ...shown, role: 'index' } : shown;
  const descriptors: ExplainedDescriptor[] = [];
  const { platforms, platform, manifest } = isIndex
    ? await choosePlatformManifest(client, repo, top, opts.platform, descriptors)
    : { platforms: [], platform: null, manifest: top };
  const { config, configError } = await manifestParts(client, repo, manifest, descriptors);
  return {
    input: opts.image,
    reference: formatReference(ref),
    repo,
    top,
    platforms,
    platform,
    manifest,
    config,
    configError,
    descriptors,
    mediaTypes: mediaTypesShown(top, manifest, descriptors),
  };
}

/**
 * The first step of a copy (copy.ts): reading the source — the image or index, its platform
 * manifests, and for the root and each platform what is attached (shared/ops/attachments.ts: the
 * `.sig`, `.att` and `.sbom` tags and the referrers, a referrer index with its manifests) — into
 * the list of blobs and manifests to push, bounded before anything is written.
 */
import { ManageError, RegistryError } from '../errors.ts';
import type { Manifest, RepoRef } from '../registry/client.ts';
import { isIndexMediaType, isManifestMediaType, platformName, type Descriptor } from '../registry/mediatypes.ts';
import { isSha256Digest } from '../registry/reference.ts';
import { MAX_PLATFORMS, MAX_REFERRERS } from '../cosign/limits.ts';
import { TAG_SUFFIXES, readAttachments, type TagSuffix } from './attachments.ts';
import { checkAbort, short, type CopyOptions } from './copy-run.ts';

const MiB = 1024 * 1024;
/** Most blobs a copy takes on (64 platforms of 127 layers, with room for signatures). */
export const MAX_COPY_BLOBS = 10_000;
/**
 * Most bytes of manifests a copy holds (it pushes them byte for byte after the blobs). Platforms
 * and referrers per manifest are bounded as verification bounds them (MAX_PLATFORMS, MAX_REFERRERS).
 */
export const MAX_COPY_MANIFEST_BYTES = 64 * MiB;

export interface BlobJob {
  digest: string;
  size: number;
  what: string;
}

export interface AttachmentJob {
  subject: string;
  suffix: TagSuffix;
  tag: string;
  manifest: Manifest;
}

export interface ReferrerJob {
  subject: string;
  descriptor: Descriptor;
  manifest: Manifest;
  /** Manifests a referrer index refers to, pushed before it. */
  children: Manifest[];
}

export interface Plan {
  root: Manifest;
  /** Platform manifests of an index (pushed before it). */
  children: { manifest: Manifest; platform: string }[];
  blobs: Map<string, BlobJob>;
  attachments: AttachmentJob[];
  referrers: ReferrerJob[];
  referrersVia: 'api' | 'tag-schema' | null;
  bytesTotal: number;
}

/**
 * A descriptor read from the source, checked before anything is fetched or pushed by it.
 * @throws RegistryError REGISTRY_BAD_RESPONSE without a sha256 digest, a media type or a size.
 */
function checkedDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null || typeof d.digest !== 'string' || !isSha256Digest(d.digest)) {
    throw new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      `The ${what} names no digest of the form sha256 followed by 64 hex digits.`,
    );
  }
  if (typeof d.mediaType !== 'string' || typeof d.size !== 'number') {
    throw new RegistryError('REGISTRY_BAD_RESPONSE', `The ${what} ${short(d.digest)} has no media type or size.`);
  }
  return d as Descriptor;
}

/** The entries of a source manifest's `layers` or `manifests`, each checked. @throws RegistryError REGISTRY_BAD_RESPONSE */
function descriptors(json: Record<string, unknown>, field: 'layers' | 'manifests', of: string): Descriptor[] {
  const list = json[field];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new RegistryError('REGISTRY_BAD_RESPONSE', `The ${field} of ${of} is not a list.`);
  return list.map((d) => checkedDescriptor(d, `${field === 'layers' ? 'layer' : 'manifest'} listed by ${of}`));
}

/** Each digest once: an index listing a manifest twice is copied (and counted) once. */
function unique(list: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return list.filter((d) => !seen.has(d.digest) && (seen.add(d.digest), true));
}

function isImageManifest(mediaType: string): boolean {
  return isManifestMediaType(mediaType) && !isIndexMediaType(mediaType);
}

/** A foreign layer (Windows base layers) lives elsewhere and is not copied, as skopeo does by default. */
function isForeign(d: Descriptor): boolean {
  return (
    (typeof d.mediaType === 'string' && d.mediaType.includes('foreign')) ||
    Array.isArray((d as { urls?: unknown }).urls)
  );
}

/** The blobs a copy pushes and the bytes of manifests it holds, each bounded. */
class Totals {
  readonly blobs = new Map<string, BlobJob>();
  bytesTotal = 0;
  #manifestBytes = 0;

  /** @throws RegistryError REGISTRY_BAD_RESPONSE without a usable size; ManageError MANAGE_TOO_MANY */
  addBlob(d: Descriptor, what: string): void {
    if (this.blobs.has(d.digest) || isForeign(d)) return;
    if (!Number.isSafeInteger(d.size) || d.size < 0) {
      throw new RegistryError('REGISTRY_BAD_RESPONSE', `The ${what} ${short(d.digest)} has no usable size.`);
    }
    if (this.blobs.size >= MAX_COPY_BLOBS) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `The image and its signatures name more than ${MAX_COPY_BLOBS} blobs; this page copies at most ${MAX_COPY_BLOBS}.`,
      );
    }
    this.blobs.set(d.digest, { digest: d.digest, size: d.size, what });
    this.bytesTotal += d.size;
  }

  /**
   * A manifest and, for an image manifest, its blobs (config and layers); an index's children are
   * read by the caller.
   * @throws ManageError MANAGE_TOO_MANY; RegistryError REGISTRY_BAD_RESPONSE for a bad descriptor.
   */
  addManifest(m: Manifest, of: string): void {
    this.bytesTotal += m.bytes.length;
    // Every manifest read is held until it is pushed: bound them together, not only one by one.
    this.#manifestBytes += m.bytes.length;
    if (this.#manifestBytes > MAX_COPY_MANIFEST_BYTES) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `The manifests of the image, its platforms and its signatures add up to more than ${MAX_COPY_MANIFEST_BYTES / MiB} MiB; this page holds at most that much while copying.`,
      );
    }
    if (isIndexMediaType(m.descriptor.mediaType)) return;
    if (m.json.config !== undefined)
      this.addBlob(checkedDescriptor(m.json.config, `config of ${of}`), `config of ${of}`);
    for (const l of descriptors(m.json, 'layers', of)) this.addBlob(l, `layer of ${of}`);
  }
}

/** What the plan collects about the subjects' attachments and referrers. */
interface Attached {
  attachments: AttachmentJob[];
  referrers: ReferrerJob[];
  referrersVia: Plan['referrersVia'];
  seen: Set<string>;
}

type Report = (item: string) => void;

/** The platform manifests of an index root (none for an image). */
async function readPlatforms(o: CopyOptions, src: RepoRef, root: Manifest, totals: Totals, report: Report) {
  const children: Plan['children'] = [];
  if (!isIndexMediaType(root.descriptor.mediaType)) return children;
  const list = unique(descriptors(root.json, 'manifests', `the index ${short(root.descriptor.digest)}`));
  if (list.length > MAX_PLATFORMS) {
    throw new ManageError(
      'MANAGE_TOO_MANY',
      `The index lists ${list.length} manifests; this page copies at most ${MAX_PLATFORMS}.`,
    );
  }
  for (const d of list) {
    checkAbort(o.signal);
    const m = await o.client.getManifest(src, d.digest);
    if (isIndexMediaType(m.descriptor.mediaType)) {
      throw new RegistryError(
        'REGISTRY_UNSUPPORTED',
        `The index ${short(root.descriptor.digest)} nests another index; this page copies one level.`,
      );
    }
    const platform = d.platform ? platformName(d.platform) : 'unknown platform';
    children.push({ manifest: m, platform });
    totals.addManifest(m, platform);
    report(`Read ${platform}`);
  }
  return children;
}

/** The image manifests a referrer index lists, pushed before it. */
async function readReferrerIndex(o: CopyOptions, src: RepoRef, d: Descriptor, m: Manifest, totals: Totals) {
  const what = `the referrer index ${short(d.digest)}`;
  const list = unique(descriptors(m.json, 'manifests', what));
  if (list.length > MAX_REFERRERS) {
    throw new ManageError(
      'MANAGE_TOO_MANY',
      `${what} lists ${list.length} manifests; this page copies at most ${MAX_REFERRERS}.`,
    );
  }
  const children: Manifest[] = [];
  for (const c of list) {
    checkAbort(o.signal);
    const cm = isImageManifest(c.mediaType) ? await o.client.getManifest(src, c.digest) : null;
    if (!cm || !isImageManifest(cm.descriptor.mediaType)) {
      throw new RegistryError(
        'REGISTRY_UNSUPPORTED',
        `${what} lists ${short(c.digest)}, which is not an image manifest; this page copies referrer indexes of image manifests only.`,
      );
    }
    children.push(cm);
    totals.addManifest(cm, `referrer ${short(d.digest)}`);
  }
  return children;
}

/** The `.sig`, `.att` and `.sbom` tags and the referrers of one subject. @throws what reading them threw */
async function readAttached(o: CopyOptions, src: RepoRef, subject: string, totals: Totals, out: Attached) {
  const read = await readAttachments(o.client, src, subject, o.signal ? { signal: o.signal } : {});
  for (const suffix of TAG_SUFFIXES) {
    const t = read.tags[suffix];
    if (t.state === 'failed') throw t.error;
    if (t.state === 'absent') continue;
    out.attachments.push({ subject, suffix, tag: t.tag, manifest: t.manifest });
    totals.addManifest(t.manifest, t.tag);
  }
  if (read.referrers.state === 'failed') throw read.referrers.error;
  const refs = read.referrers;
  out.referrersVia ??= refs.via;
  if (refs.descriptors.length > MAX_REFERRERS) {
    throw new ManageError(
      'MANAGE_TOO_MANY',
      `${short(subject)} has ${refs.descriptors.length} referrers; this page copies at most ${MAX_REFERRERS}.`,
    );
  }
  for (const r of refs.referrers) {
    const d = r.descriptor;
    if (!isSha256Digest(d.digest) || out.seen.has(`${subject} ${d.digest}`)) continue;
    out.seen.add(`${subject} ${d.digest}`);
    const m = await r.manifest();
    const job: ReferrerJob = { subject, descriptor: d, manifest: m, children: [] };
    totals.addManifest(m, `referrer ${short(d.digest)}`);
    if (isIndexMediaType(m.descriptor.mediaType)) job.children = await readReferrerIndex(o, src, d, m, totals);
    out.referrers.push(job);
  }
}

/**
 * Reads the source: the image or index, its platforms, their attachments and referrers.
 * @throws RegistryError REGISTRY_UNSUPPORTED (not an image, a nested index), REGISTRY_BAD_RESPONSE
 *   (a bad descriptor); ManageError MANAGE_TOO_MANY; RegistryError and RelayError from the
 *   registry; the signal's reason.
 */
export async function plan(o: CopyOptions, src: RepoRef, reference: string, report: Report): Promise<Plan> {
  const root = await o.client.getManifest(src, reference);
  const rootType = root.descriptor.mediaType;
  if (!isManifestMediaType(rootType)) {
    throw new RegistryError(
      'REGISTRY_UNSUPPORTED',
      `${root.descriptor.digest} is a "${rootType}", not an image manifest or index this page copies.`,
    );
  }
  const totals = new Totals();
  report(`Reading ${short(root.descriptor.digest)}`);
  const children = await readPlatforms(o, src, root, totals, report);
  totals.addManifest(root, isIndexMediaType(rootType) ? 'the index' : 'the image');

  // Attachments and referrers of the root and of each platform manifest.
  const subjects = [root.descriptor.digest, ...children.map((c) => c.manifest.descriptor.digest)];
  const out: Attached = { attachments: [], referrers: [], referrersVia: null, seen: new Set() };
  for (const subject of subjects) {
    checkAbort(o.signal);
    await readAttached(o, src, subject, totals, out);
    report(`Read the signatures of ${short(subject)}`);
  }
  const { attachments, referrers, referrersVia } = out;
  return { root, children, blobs: totals.blobs, attachments, referrers, referrersVia, bytesTotal: totals.bytesTotal };
}

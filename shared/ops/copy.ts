/**
 * Copying an image with everything cosign attaches to it, from one registry (or repository) to
 * another, as `cosign copy` and `skopeo copy --all` with sigstore attachments do: the image or
 * index and every platform manifest, the legacy `sha256-<hex>.sig`, `.att` and `.sbom` tags, and
 * the OCI 1.1 referrers (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers)
 * with their blobs, for the root and for each platform.
 *
 * - Digests are preserved: every manifest is pushed byte for byte as the source served it. The
 *   one exception is a `.sig` (or `.att`) tag the destination already has: its layers are merged
 *   with the source's, none twice, with the tag writer signing uses (shared/ops/tag-writer.ts:
 *   lock per attempt, If-Match, read back at once and after a settle delay, retried), instead of
 *   overwriting someone's signatures.
 * - Blobs stream: each is read from the source's response as it arrives, hashed on the way, and
 *   sent in bounded chunks (`PATCH` with Content-Range, then `PUT ?digest=`), so no blob is ever
 *   held whole; within one registry a blob is mounted from the source repository instead.
 * - Resumable: every blob and manifest is looked up on the destination first and skipped when
 *   there, so a copy that stopped half-way finishes when run again, with nothing duplicated.
 * - On a destination without the referrers API the referrers tag schema's index (`sha256-<hex>`)
 *   is kept up to date, entries merged, none twice, the same way.
 * - The destination tag moves last, so it never points at a copy whose signatures are missing.
 *
 * With a public key, the copy is then verified on the destination with verifyImage (verify.ts):
 * every signature by that key that verifies on the source must verify on the copy.
 */
import { ManageError, RegistryError, CosignWebError } from '../errors.ts';
import { streamSha256 } from '../crypto/stream-hash.ts';
import type { Manifest, RegistryClient, RepoRef, UploadSession } from '../registry/client.ts';
import { isIndexMediaType, isManifestMediaType, platformName, type Descriptor } from '../registry/mediatypes.ts';
import {
  formatReference,
  isSha256Digest,
  manifestReference,
  parseReference,
  repositoryName,
  type ImageReference,
} from '../registry/reference.ts';
import { pool } from './pool.ts';
import { describeIdentityRule, type IdentityRule } from '../cosign/identity.ts';
import { referrersTag, sameSignatureLayer } from '../cosign/manifests.ts';
import {
  addEntries,
  entriesOf,
  referrersIndexList,
  rewriteTag,
  sigList,
  type ListTag,
  type TagLock,
} from './tag-writer.ts';
import { MAX_PLATFORMS, MAX_REFERRERS } from '../cosign/limits.ts';
import { verifyImage, type VerificationResult } from './verify.ts';

const MiB = 1024 * 1024;
/**
 * Default chunk of a blob upload. bench/copy.ts measured 4, 8 and 16 MiB within run-to-run noise
 * of each other (28–43 MB/s through the relay); 8 MiB keeps a blob's memory at two chunks.
 */
export const DEFAULT_CHUNK_BYTES = 8 * MiB;
/** The legacy attachment tags cosign writes next to an image, `sha256-<hex>.<suffix>`. */
export const ATTACHMENT_SUFFIXES = ['sig', 'att', 'sbom'] as const;
export type AttachmentSuffix = (typeof ATTACHMENT_SUFFIXES)[number];
/** Most blobs a copy takes on (64 platforms of 127 layers, with room for signatures). */
export const MAX_COPY_BLOBS = 10_000;
/**
 * Most bytes of manifests a copy holds (it pushes them byte for byte after the blobs). Platforms
 * and referrers per manifest are bounded as verification bounds them (MAX_PLATFORMS, MAX_REFERRERS).
 */
export const MAX_COPY_MANIFEST_BYTES = 64 * MiB;

export type CopyStep = 'planning' | 'blobs' | 'manifests' | 'signatures' | 'referrers' | 'tag' | 'verifying' | 'done';

export interface CopyProgress {
  bytesDone: number;
  bytesTotal: number;
  step: CopyStep;
  /** What is being worked on, in words ("layer sha256:… of linux/amd64"). */
  item: string;
}

export type CopyOutcome = 'copied' | 'mounted' | 'skipped' | 'merged';

export interface CopiedItem {
  kind: 'blob' | 'manifest' | 'attachment' | 'referrer' | 'referrers-index' | 'tag';
  /** The digest written (for a merged tag: the new manifest's). */
  digest: string;
  size: number;
  outcome: CopyOutcome;
  /** What it is, in words: "config of linux/arm64", "sha256-….sig", "tag v1". */
  what: string;
}

export interface CopyOptions {
  /** One client reaches both registries (it routes by host). */
  client: RegistryClient;
  /** `host/repo:tag` or `host/repo@sha256:…`. */
  source: string;
  /** `host/repo:tag`, or `host/repo` to keep the source's tag; never a digest. */
  destination: string;
  onProgress?: (p: CopyProgress) => void;
  /** Bytes per uploaded chunk (default 8 MiB). */
  chunkBytes?: number;
  /** Blobs copied at once (default 3). */
  concurrency?: number;
  /** Serialises the read-modify-write of a `.sig` or fallback index per tag (the relay's lock). */
  lock?: TagLock;
  /** Milliseconds before the second read-back of a merged tag (default: random 100–400 ms, as signing). */
  settleDelay?: () => number;
  /** Verify the copy with this public key (SubjectPublicKeyInfo DER) once it is complete. */
  verify?: { spki: Uint8Array; identity?: IdentityRule };
  signal?: AbortSignal;
}

export interface CopyVerification {
  verified: boolean;
  /** MANAGE_COPY_VERIFY_FAILED with the reason when not verified. */
  error: { code: 'MANAGE_COPY_VERIFY_FAILED'; message: string } | null;
  /** What was checked, in a sentence. */
  summary: string;
  identityDescription: string;
  /** Signatures by the key that verify, per manifest, on the source and on the copy. */
  manifests: { digest: string; platform: string | null; source: number; destination: number }[];
  destination: VerificationResult;
}

export interface CopyResult {
  /** The source as read (`host/repo:tag`), and the destination written (`host/repo:tag`). */
  source: string;
  destination: string;
  /** The tag written on the destination, or null when copied by digest only. */
  tag: string | null;
  digest: string;
  mediaType: string;
  platforms: string[];
  items: CopiedItem[];
  /** Counts per kind of thing and outcome. */
  summary: {
    blobs: Record<CopyOutcome, number>;
    manifests: Record<CopyOutcome, number>;
    signatures: Record<CopyOutcome, number>;
    bytesCopied: number;
    bytesMounted: number;
    bytesSkipped: number;
  };
  /** How each side lists referrers ('api': the OCI 1.1 referrers API; 'tag-schema': the fallback index). */
  referrers: { source: 'api' | 'tag-schema' | null; destination: 'api' | 'tag-schema' | null };
  verification: CopyVerification | null;
}

interface BlobJob {
  digest: string;
  size: number;
  what: string;
}

interface AttachmentJob {
  subject: string;
  suffix: AttachmentSuffix;
  tag: string;
  manifest: Manifest;
}

interface ReferrerJob {
  subject: string;
  descriptor: Descriptor;
  manifest: Manifest;
  /** Manifests a referrer index refers to, pushed before it. */
  children: Manifest[];
}

interface Plan {
  root: Manifest;
  /** Platform manifests of an index (pushed before it). */
  children: { manifest: Manifest; platform: string }[];
  blobs: Map<string, BlobJob>;
  attachments: AttachmentJob[];
  referrers: ReferrerJob[];
  referrersVia: 'api' | 'tag-schema' | null;
  bytesTotal: number;
}

function short(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

function emptyCounts(): Record<CopyOutcome, number> {
  return { copied: 0, mounted: 0, skipped: 0, merged: 0 };
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

function isNotFound(e: unknown): boolean {
  return e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND';
}

async function readOptional(client: RegistryClient, repo: RepoRef, reference: string): Promise<Manifest | null> {
  try {
    return await client.getManifest(repo, reference);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

async function manifestExists(client: RegistryClient, repo: RepoRef, digest: string): Promise<boolean> {
  try {
    return (await client.resolve(repo, digest)).digest === digest;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** A foreign layer (Windows base layers) lives elsewhere and is not copied, as skopeo does by default. */
function isForeign(d: Descriptor): boolean {
  return (
    (typeof d.mediaType === 'string' && d.mediaType.includes('foreign')) ||
    Array.isArray((d as { urls?: unknown }).urls)
  );
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}

/** The destination's reference and tag. @throws ManageError MANAGE_COPY_DESTINATION_INVALID, MANAGE_SAME_IMAGE */
function destinationOf(source: ImageReference, text: string): { ref: ImageReference; tag: string | null } {
  const ref = parseReference(text);
  if (ref.digest) {
    throw new ManageError(
      'MANAGE_COPY_DESTINATION_INVALID',
      `The destination "${text.trim()}" names a digest; give a repository and a tag (the copy keeps the source's digest).`,
    );
  }
  const tag = ref.tag ?? source.tag ?? null;
  if (
    ref.registry === source.registry &&
    ref.repository === source.repository &&
    (tag === null || tag === source.tag)
  ) {
    throw new ManageError(
      'MANAGE_SAME_IMAGE',
      `The source and the destination are the same image (${formatReference({ ...ref, ...(tag ? { tag } : {}) })}); choose another repository or tag.`,
    );
  }
  return { ref: { registry: ref.registry, repository: ref.repository, ...(tag ? { tag } : {}) }, tag };
}

/** Reads the source: the image or index, its platforms, their attachments and referrers. */
async function plan(o: CopyOptions, src: RepoRef, reference: string, report: (item: string) => void): Promise<Plan> {
  const { client } = o;
  const root = await client.getManifest(src, reference);
  const rootType = root.descriptor.mediaType;
  if (!isManifestMediaType(rootType)) {
    throw new RegistryError(
      'REGISTRY_UNSUPPORTED',
      `${root.descriptor.digest} is a "${rootType}", not an image manifest or index this page copies.`,
    );
  }
  const blobs = new Map<string, BlobJob>();
  let bytesTotal = 0;
  let manifestBytes = 0;
  const addBlob = (d: Descriptor, what: string): void => {
    if (blobs.has(d.digest) || isForeign(d)) return;
    if (!Number.isSafeInteger(d.size) || d.size < 0) {
      throw new RegistryError('REGISTRY_BAD_RESPONSE', `The ${what} ${short(d.digest)} has no usable size.`);
    }
    if (blobs.size >= MAX_COPY_BLOBS) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `The image and its signatures name more than ${MAX_COPY_BLOBS} blobs; this page copies at most ${MAX_COPY_BLOBS}.`,
      );
    }
    blobs.set(d.digest, { digest: d.digest, size: d.size, what });
    bytesTotal += d.size;
  };
  /** Blobs of an image manifest (config and layers); an index's children are read by the caller. */
  const addManifestBlobs = (m: Manifest, of: string): void => {
    bytesTotal += m.bytes.length;
    // Every manifest read is held until it is pushed: bound them together, not only one by one.
    manifestBytes += m.bytes.length;
    if (manifestBytes > MAX_COPY_MANIFEST_BYTES) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `The manifests of the image, its platforms and its signatures add up to more than ${MAX_COPY_MANIFEST_BYTES / MiB} MiB; this page holds at most that much while copying.`,
      );
    }
    if (isIndexMediaType(m.descriptor.mediaType)) return;
    if (m.json.config !== undefined) addBlob(checkedDescriptor(m.json.config, `config of ${of}`), `config of ${of}`);
    for (const l of descriptors(m.json, 'layers', of)) addBlob(l, `layer of ${of}`);
  };

  report(`Reading ${short(root.descriptor.digest)}`);
  const children: Plan['children'] = [];
  if (isIndexMediaType(rootType)) {
    const list = unique(descriptors(root.json, 'manifests', `the index ${short(root.descriptor.digest)}`));
    if (list.length > MAX_PLATFORMS) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `The index lists ${list.length} manifests; this page copies at most ${MAX_PLATFORMS}.`,
      );
    }
    for (const d of list) {
      checkAbort(o.signal);
      const m = await client.getManifest(src, d.digest);
      if (isIndexMediaType(m.descriptor.mediaType)) {
        throw new RegistryError(
          'REGISTRY_UNSUPPORTED',
          `The index ${short(root.descriptor.digest)} nests another index; this page copies one level.`,
        );
      }
      const platform = d.platform ? platformName(d.platform) : 'unknown platform';
      children.push({ manifest: m, platform });
      addManifestBlobs(m, platform);
      report(`Read ${platform}`);
    }
  }
  addManifestBlobs(root, isIndexMediaType(rootType) ? 'the index' : 'the image');

  // Attachments and referrers of the root and of each platform manifest.
  const subjects = [root.descriptor.digest, ...children.map((c) => c.manifest.descriptor.digest)];
  const attachments: AttachmentJob[] = [];
  const referrers: ReferrerJob[] = [];
  let referrersVia: Plan['referrersVia'] = null;
  const seenReferrers = new Set<string>();
  for (const subject of subjects) {
    checkAbort(o.signal);
    for (const suffix of ATTACHMENT_SUFFIXES) {
      const tag = `${subject.replace(':', '-')}.${suffix}`;
      const m = await readOptional(client, src, tag);
      if (!m) continue;
      attachments.push({ subject, suffix, tag, manifest: m });
      addManifestBlobs(m, tag);
    }
    const refs = await client.referrers(src, subject);
    referrersVia ??= refs.via;
    if (refs.descriptors.length > MAX_REFERRERS) {
      throw new ManageError(
        'MANAGE_TOO_MANY',
        `${short(subject)} has ${refs.descriptors.length} referrers; this page copies at most ${MAX_REFERRERS}.`,
      );
    }
    for (const d of refs.descriptors) {
      if (!isSha256Digest(d.digest) || seenReferrers.has(`${subject} ${d.digest}`)) continue;
      seenReferrers.add(`${subject} ${d.digest}`);
      const m = await client.getManifest(src, d.digest);
      const job: ReferrerJob = { subject, descriptor: d, manifest: m, children: [] };
      addManifestBlobs(m, `referrer ${short(d.digest)}`);
      if (isIndexMediaType(m.descriptor.mediaType)) {
        const what = `the referrer index ${short(d.digest)}`;
        const list = unique(descriptors(m.json, 'manifests', what));
        if (list.length > MAX_REFERRERS) {
          throw new ManageError(
            'MANAGE_TOO_MANY',
            `${what} lists ${list.length} manifests; this page copies at most ${MAX_REFERRERS}.`,
          );
        }
        for (const c of list) {
          checkAbort(o.signal);
          const cm = isImageManifest(c.mediaType) ? await client.getManifest(src, c.digest) : null;
          if (!cm || !isImageManifest(cm.descriptor.mediaType)) {
            throw new RegistryError(
              'REGISTRY_UNSUPPORTED',
              `${what} lists ${short(c.digest)}, which is not an image manifest; this page copies referrer indexes of image manifests only.`,
            );
          }
          job.children.push(cm);
          addManifestBlobs(cm, `referrer ${short(d.digest)}`);
        }
      }
      referrers.push(job);
    }
    report(`Read the signatures of ${short(subject)}`);
  }
  return { root, children, blobs, attachments, referrers, referrersVia, bytesTotal };
}

/**
 * Streams one blob from the source into an open upload, in chunks of `chunkBytes`, one chunk in
 * flight while the next is read, hashing as it goes. The upload is closed only when size and
 * digest are right, else cancelled.
 */
async function streamBlob(
  o: CopyOptions,
  src: RepoRef,
  blob: BlobJob,
  session: UploadSession,
  onBytes: (n: number) => void,
): Promise<void> {
  const { client } = o;
  const chunkBytes = Math.max(64 * 1024, o.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const { body } = await client.openBlob(src, blob.digest, blob.size);
  const reader = body.getReader();
  const hasher = await streamSha256();
  let received = 0;
  let buffer = new Uint8Array(Math.min(chunkBytes, Math.max(blob.size, 1)));
  let filled = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let current = session;
  const send = (chunk: Uint8Array): void => {
    const p = inFlight.then(async () => {
      current = await client.uploadChunk(current, chunk);
      onBytes(chunk.length);
    });
    // The loop reads the source while this chunk is in flight: a failed upload must not be an
    // unhandled rejection meanwhile. The failure still surfaces at the next `await inFlight`.
    p.catch(() => undefined);
    inFlight = p;
  };
  try {
    for (;;) {
      checkAbort(o.signal);
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > blob.size) {
        throw new RegistryError(
          'REGISTRY_SIZE_MISMATCH',
          `The source sent more than the ${blob.size} bytes its descriptor gives for blob ${blob.digest}.`,
        );
      }
      hasher.update(value);
      let at = 0;
      while (at < value.length) {
        const n = Math.min(buffer.length - filled, value.length - at);
        buffer.set(value.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === buffer.length) {
          await inFlight; // at most one chunk in flight and one being filled
          send(buffer);
          buffer = new Uint8Array(Math.min(chunkBytes, Math.max(blob.size - received + (value.length - at), 1)));
          filled = 0;
        }
      }
    }
    if (filled > 0) send(buffer.subarray(0, filled));
    await inFlight;
    if (received !== blob.size) {
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `The source sent ${received} bytes for blob ${blob.digest}, but its descriptor says ${blob.size}.`,
      );
    }
    const digest = hasher.digest();
    if (digest !== blob.digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The source's blob ${blob.digest} does not match its digest: its bytes hash to ${digest}.`,
      );
    }
    await client.finishUpload(current, blob.digest);
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    await inFlight.catch(() => undefined);
    await client.cancelUpload(current);
    throw e;
  }
}

const noLock: TagLock = async () => async () => undefined;

/**
 * Copies an image with its signatures, attestations and referrers, then (with `verify`) checks
 * the copy with the key.
 * @throws ManageError MANAGE_SAME_IMAGE, MANAGE_COPY_DESTINATION_INVALID, MANAGE_TOO_MANY before
 *   anything is written; MANAGE_COPY_INCOMPLETE when a write failed part-way (the message says
 *   what is on the destination; running the copy again resumes); RegistryError and RelayError
 *   when the source cannot be read; the signal's reason when it aborts.
 */
export async function copyImage(o: CopyOptions): Promise<CopyResult> {
  const { client } = o;
  const sourceRef = parseReference(o.source);
  const { ref: destRef, tag } = destinationOf(sourceRef, o.destination);
  const src: RepoRef = { registry: sourceRef.registry, repository: sourceRef.repository };
  const dst: RepoRef = { registry: destRef.registry, repository: destRef.repository };
  const sameRegistry = src.registry === dst.registry;
  const lock = o.lock ?? noLock;

  let bytesDone = 0;
  let bytesTotal = 0;
  let step: CopyStep = 'planning';
  const report = (item: string): void => o.onProgress?.({ bytesDone, bytesTotal, step, item });

  report(`Reading ${formatReference(sourceRef)}`);
  const p = await plan(o, src, manifestReference(sourceRef), report);
  bytesTotal = p.bytesTotal;
  const digest = p.root.descriptor.digest;

  const items: CopiedItem[] = [];
  const summary: CopyResult['summary'] = {
    blobs: emptyCounts(),
    manifests: emptyCounts(),
    signatures: emptyCounts(),
    bytesCopied: 0,
    bytesMounted: 0,
    bytesSkipped: 0,
  };
  const record = (item: CopiedItem): void => {
    items.push(item);
    const group =
      item.kind === 'blob'
        ? summary.blobs
        : item.kind === 'manifest' || item.kind === 'tag'
          ? summary.manifests
          : summary.signatures;
    group[item.outcome]++;
  };
  let destVia: 'api' | 'tag-schema' | null = null;
  /** Puts `ours` into a tag's list (tag-writer.ts); the last manifest written, or null when none was needed. */
  const mergeInto = async (list: ListTag, ours: Descriptor[], same: (a: Descriptor, b: Descriptor) => boolean) =>
    (await rewriteTag(list, addEntries(ours, same), { lock, ...(o.settleDelay ? { settleDelay: o.settleDelay } : {}) }))
      .written;

  try {
    // 1. Blobs: image layers and configs, and the blobs of signatures, attestations and referrers.
    step = 'blobs';
    const blobList = [...p.blobs.values()];
    await pool(blobList, Math.max(1, o.concurrency ?? 3), async (b) => {
      checkAbort(o.signal);
      report(`${b.what} ${short(b.digest)}`);
      if (await client.blobExists(dst, b.digest)) {
        bytesDone += b.size;
        summary.bytesSkipped += b.size;
        record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'skipped', what: b.what });
        report(`${b.what} ${short(b.digest)} is there already`);
        return;
      }
      let session: UploadSession;
      if (sameRegistry) {
        const mount = await client.mountBlob(dst, b.digest, src.repository);
        if (mount.mounted) {
          bytesDone += b.size;
          summary.bytesMounted += b.size;
          record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'mounted', what: b.what });
          report(`${b.what} ${short(b.digest)} mounted`);
          return;
        }
        session = mount.session;
      } else {
        session = await client.startUpload(dst);
      }
      let sent = 0;
      try {
        await streamBlob(o, src, b, session, (n) => {
          sent += n;
          bytesDone += n;
          report(`${b.what} ${short(b.digest)}`);
        });
      } catch (e) {
        bytesDone -= sent; // a blob is there whole or not at all
        throw e;
      }
      summary.bytesCopied += b.size;
      record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'copied', what: b.what });
    });

    // 2. Manifests, byte for byte: platform manifests, then the index (or the image), by digest.
    step = 'manifests';
    const pushManifest = async (m: Manifest, what: string, kind: CopiedItem['kind']): Promise<void> => {
      checkAbort(o.signal);
      const d = m.descriptor;
      report(`${what} ${short(d.digest)}`);
      if (await manifestExists(client, dst, d.digest)) {
        record({ kind, digest: d.digest, size: d.size, outcome: 'skipped', what });
      } else {
        await client.putManifest(dst, d.digest, m.bytes, d.mediaType);
        record({ kind, digest: d.digest, size: d.size, outcome: 'copied', what });
      }
      bytesDone += d.size;
      report(`${what} ${short(d.digest)}`);
    };
    for (const c of p.children) await pushManifest(c.manifest, `manifest of ${c.platform}`, 'manifest');
    await pushManifest(p.root, p.children.length ? 'index' : 'image manifest', 'manifest');

    // 3. Legacy attachments (.sig, .att, .sbom): copied as they are, or merged into the destination's.
    step = 'signatures';
    for (const a of p.attachments) {
      checkAbort(o.signal);
      report(a.tag);
      bytesDone += a.manifest.bytes.length;
      const srcDesc = a.manifest.descriptor;
      const release = await lock(`${dst.registry}/${dst.repository}:${a.tag}`);
      let there: Manifest | null;
      try {
        there = await readOptional(client, dst, a.tag);
        if (there?.descriptor.digest === srcDesc.digest) {
          record({ kind: 'attachment', digest: srcDesc.digest, size: srcDesc.size, outcome: 'skipped', what: a.tag });
          continue;
        }
        if (!there || a.suffix === 'sbom') {
          // cosign attach sbom replaces the SBOM; .sig and .att are appended to, below.
          await client.putManifest(dst, a.tag, a.manifest.bytes, srcDesc.mediaType);
          record({ kind: 'attachment', digest: srcDesc.digest, size: srcDesc.size, outcome: 'copied', what: a.tag });
          continue;
        }
      } finally {
        await release();
      }
      // Appended to as signing appends: under the lock per attempt, read back twice, retried.
      const before = entriesOf(there.json, 'layers');
      const ours = entriesOf(a.manifest.json, 'layers');
      const adding = ours.filter((l) => !before.some((b) => sameSignatureLayer(b, l))).length;
      const written = await mergeInto(sigList(client, dst, a.tag), ours, sameSignatureLayer);
      record(
        written
          ? {
              kind: 'attachment',
              ...written,
              outcome: 'merged',
              what: `${a.tag} (${adding} layers added to ${before.length})`,
            }
          : {
              kind: 'attachment',
              digest: there.descriptor.digest,
              size: there.descriptor.size,
              outcome: 'skipped',
              what: `${a.tag} (holds every source layer)`,
            },
      );
    }

    // 4. Referrers: each manifest by digest, then the fallback index where the destination needs one.
    step = 'referrers';
    const bySubject = new Map<string, ReferrerJob[]>();
    for (const r of p.referrers) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r]);
    for (const [subject, jobs] of bySubject) {
      for (const r of jobs) {
        for (const c of r.children) await pushManifest(c, `referrer part`, 'referrer');
        checkAbort(o.signal);
        const d = r.manifest.descriptor;
        const what = `referrer ${short(d.digest)} of ${short(subject)}`;
        if (await manifestExists(client, dst, d.digest)) {
          record({ kind: 'referrer', digest: d.digest, size: d.size, outcome: 'skipped', what });
        } else {
          const pushed = await client.pushReferrer(dst, r.manifest.bytes, d.mediaType);
          if (pushed.subjectProcessed) destVia = 'api';
          record({ kind: 'referrer', digest: d.digest, size: d.size, outcome: 'copied', what });
        }
        bytesDone += d.size;
        report(what);
      }
      const onDest = await client.referrers(dst, subject);
      if (destVia !== 'api') destVia = onDest.via;
      if (onDest.via === 'api') {
        // The registry lists referrers itself; check that it lists ours.
        const absent = jobs.filter((j) => !onDest.descriptors.some((x) => x.digest === j.manifest.descriptor.digest));
        if (absent.length > 0) {
          throw new ManageError(
            'MANAGE_COPY_INCOMPLETE',
            `${dst.registry} does not list ${absent.length} copied referrer${absent.length === 1 ? '' : 's'} of ${short(subject)}.`,
          );
        }
        continue;
      }
      const fallbackTag = referrersTag(subject);
      const ours = jobs.map((j) => ({
        ...j.descriptor,
        mediaType: j.manifest.descriptor.mediaType,
        size: j.manifest.descriptor.size,
      }));
      const there = await readOptional(client, dst, fallbackTag);
      const missing = ours.filter(
        (j) => !entriesOf(there?.json ?? null, 'manifests').some((e) => e.digest === j.digest),
      );
      const written =
        missing.length === 0
          ? null
          : await mergeInto(referrersIndexList(client, dst, fallbackTag), ours, (x, y) => x.digest === y.digest);
      if (!written) {
        const now = there ?? (await client.getManifest(dst, fallbackTag));
        record({
          kind: 'referrers-index',
          digest: now.descriptor.digest,
          size: now.descriptor.size,
          outcome: 'skipped',
          what: fallbackTag,
        });
        continue;
      }
      record({
        kind: 'referrers-index',
        ...written,
        outcome: there ? 'merged' : 'copied',
        what: `${fallbackTag} (${missing.length} entr${missing.length === 1 ? 'y' : 'ies'} added)`,
      });
    }

    // 5. The tag, last: it points at the copy only once everything above is there.
    step = 'tag';
    if (tag) {
      checkAbort(o.signal);
      report(`tag ${tag}`);
      let current: string | null = null;
      try {
        current = (await client.resolve(dst, tag)).digest;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (current === digest) {
        record({ kind: 'tag', digest, size: p.root.bytes.length, outcome: 'skipped', what: `tag ${tag}` });
      } else {
        await client.putManifest(dst, tag, p.root.bytes, p.root.descriptor.mediaType);
        record({ kind: 'tag', digest, size: p.root.bytes.length, outcome: 'copied', what: `tag ${tag}` });
      }
    }
  } catch (e) {
    if (o.signal?.aborted && e === o.signal.reason) throw e;
    // Nothing on the destination yet (e.g. refused credentials): the registry's own words say it best.
    if (items.length === 0) throw e;
    throw incomplete(e, p, items, step, dst, tag);
  }

  const result: CopyResult = {
    source: formatReference(sourceRef),
    destination: formatReference(destRef),
    tag,
    digest,
    mediaType: p.root.descriptor.mediaType,
    platforms: p.children.map((c) => c.platform),
    items,
    summary,
    referrers: { source: p.referrersVia, destination: destVia },
    verification: null,
  };
  if (o.verify) {
    step = 'verifying';
    report('Verifying the copy');
    result.verification = await verifyCopy(o, sourceRef, destRef, digest, o.verify);
  }
  step = 'done';
  bytesDone = bytesTotal;
  report('Copied');
  return result;
}

/** MANAGE_COPY_INCOMPLETE for a copy that failed part-way, saying what is on the destination. */
function incomplete(
  cause: unknown,
  p: Plan,
  items: CopiedItem[],
  step: CopyStep,
  dst: RepoRef,
  tag: string | null,
): ManageError {
  const done = (kind: CopiedItem['kind']): number => items.filter((i) => i.kind === kind).length;
  const manifestsTotal = p.children.length + 1;
  const why =
    cause instanceof CosignWebError
      ? cause.message
      : `Unexpected failure: ${(cause as Error)?.message ?? String(cause)}`;
  const there = [
    `${done('blob')} of ${p.blobs.size} blobs`,
    `${done('manifest')} of ${manifestsTotal} manifests`,
    `${done('attachment')} of ${p.attachments.length} signature tags`,
    `${done('referrer')} of ${p.referrers.length} referrers`,
  ].join(', ');
  const tagWords = tag
    ? step === 'tag'
      ? `the tag ${tag} may not point at the copy yet`
      : `the tag ${tag} was not moved`
    : 'no tag is written when copying by digest';
  const doing: Record<CopyStep, string> = {
    planning: 'reading the source',
    blobs: 'copying blobs',
    manifests: 'copying manifests',
    signatures: 'copying the .sig, .att and .sbom tags',
    referrers: 'copying referrers',
    tag: 'moving the tag',
    verifying: 'verifying',
    done: 'finishing',
  };
  return new ManageError(
    'MANAGE_COPY_INCOMPLETE',
    `The copy to ${dst.registry}/${dst.repository} stopped while ${doing[step]}: ${why} On the destination now: ${there}; ${tagWords}. Everything there is whole and checked: run the copy again to resume, it skips what is there.`,
    { cause },
  );
}

/**
 * Verifies the source and the copy with the same key; the copy passes when its root verifies and
 * no manifest has fewer signatures by the key than on the source.
 */
async function verifyCopy(
  o: CopyOptions,
  sourceRef: ImageReference,
  destRef: ImageReference,
  digest: string,
  v: NonNullable<CopyOptions['verify']>,
): Promise<CopyVerification> {
  const identity: IdentityRule = v.identity ?? { type: 'exactRepository', dockerRepository: repositoryName(sourceRef) };
  const common = { spki: v.spki, ...(o.signal ? { signal: o.signal } : {}) };
  const [before, after] = await Promise.all([
    verifyImage(o.client, { ...common, image: `${repositoryName(sourceRef)}@${digest}`, identity }),
    verifyImage(o.client, { ...common, image: `${repositoryName(destRef)}@${digest}`, identity }),
  ]);
  const count = (r: VerificationResult, d: string): number =>
    r.manifests.find((m) => m.digest === d)?.signatures.filter((s) => s.verified).length ?? 0;
  const manifests = before.manifests.map((m) => ({
    digest: m.digest,
    platform: m.platform,
    source: count(before, m.digest),
    destination: count(after, m.digest),
  }));
  const total = manifests.reduce((n, m) => n + m.destination, 0);
  const lost = manifests.filter((m) => m.destination < m.source);
  let error: CopyVerification['error'] = null;
  if (!after.verified) {
    const why = before.verified
      ? `the copy does not verify while the source does: ${after.summary}`
      : `neither the source nor the copy verifies with this key: ${after.summary}`;
    error = { code: 'MANAGE_COPY_VERIFY_FAILED', message: `Copied, but ${why}` };
  } else if (lost.length > 0) {
    const m = lost[0]!;
    error = {
      code: 'MANAGE_COPY_VERIFY_FAILED',
      message: `Copied, but ${m.platform ?? 'the image'} (${short(m.digest)}) has ${m.destination} signature${m.destination === 1 ? '' : 's'} by this key on the copy and ${m.source} on the source.`,
    };
  }
  const idWords =
    identity.type === 'exactRepository'
      ? `legacy signatures must name the source repository ${identity.dockerRepository} (a copy keeps the signed payload, which names where the image was signed)`
      : describeIdentityRule(identity);
  return {
    verified: error === null,
    error,
    summary: error
      ? error.message
      : `Verified on ${repositoryName(destRef)}@${short(digest)}: ${total} signature${total === 1 ? '' : 's'} by this key over ${manifests.length} manifest${manifests.length === 1 ? '' : 's'}, as many as on the source; ${idWords}.`,
    identityDescription: describeIdentityRule(identity),
    manifests,
    destination: after,
  };
}

/**
 * Everything attached to one manifest, read the one way every workflow (verify, tree, remove,
 * copy) needs it: the legacy tags cosign writes beside an image, `sha256-<hex>.sig` (one signature
 * per layer), `.att` (cosign 2 attestations) and `.sbom` (`cosign attach sbom`), and the OCI 1.1
 * referrers, through the referrers API or, on a registry without it, the referrers tag schema's
 * index at `sha256-<hex>` (whose `artifactType` fields are not trusted: cosign 3.1 writes the
 * empty type there, so each referrer's manifest is read to tell what it is).
 *
 * A lookup that fails is reported on its part (with the error thrown, to rethrow or to show); a
 * tag that does not exist is `absent`. Only an aborted signal makes readAttachments throw.
 * What is read is bounded by shared/cosign/limits.ts: the first MAX_LAYERS layers of a tag
 * manifest and the first MAX_REFERRERS referrers are handed out, the counts say how many there
 * were. Beside it: the guarded read of one signature blob (readSignatureBlob) and the platform
 * manifests of an index whose attachments are read (indexPlatforms).
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
 */
import { RegistryError, VerificationError, reasonOf, type Reason } from '../errors.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, isManifestMediaType, platformName, type Descriptor } from '../registry/mediatypes.ts';
import { isSha256Digest } from '../registry/reference.ts';
import { referrersTag } from '../cosign/manifests.ts';
import { MAX_LAYERS, MAX_PLATFORMS, MAX_REFERRERS, MAX_SIGNATURE_BLOB } from '../cosign/limits.ts';
import { pool } from './pool.ts';

/** The legacy tags cosign writes beside an image, in the order they are read and listed. */
export const TAG_SUFFIXES = ['sig', 'att', 'sbom'] as const;
export type TagSuffix = (typeof TAG_SUFFIXES)[number];

/** `sha256-<hex>.<suffix>`: the legacy tag of `suffix` for the manifest `sha256:<hex>`. */
export function attachmentTag(subject: string, suffix: TagSuffix): string {
  return `${referrersTag(subject)}.${suffix}`;
}

/** A legacy tag that exists. */
export interface TagFound {
  state: 'found';
  suffix: TagSuffix;
  tag: string;
  /** The manifest at the tag: its bytes as served, its JSON, its descriptor and its ETag. */
  manifest: Manifest;
  /** The first MAX_LAYERS entries of its `layers`, unchecked (a hostile registry may put anything there). */
  layers: unknown[];
  /** How many entries `layers` holds in the manifest (0 when it is not a list). */
  layerCount: number;
}

/** The read of one legacy tag. */
export type TagRead =
  | TagFound
  | { state: 'absent'; suffix: TagSuffix; tag: string }
  | { state: 'failed'; suffix: TagSuffix; tag: string; reason: Reason; error: unknown };

/** One referrer listed for the manifest. */
export interface Referrer {
  /** As the referrers answer or the fallback index lists it (it has a string digest). */
  descriptor: Descriptor;
  /**
   * The referrer's manifest, read at the first call; later calls share that answer, failure included.
   * @throws RegistryError REGISTRY_UNSUPPORTED when the listed digest is not sha256, and what
   *   RegistryClient.getManifest throws.
   */
  manifest(): Promise<Manifest>;
}

/** The referrers, listed. */
export interface ReferrersFound {
  state: 'found';
  /** 'api': the OCI 1.1 referrers API; 'tag-schema': the fallback index (or none: no referrers). */
  via: 'api' | 'tag-schema';
  /** The referrers tag schema's index that was read, when the registry has no API and the tag exists. */
  fallback: { tag: string; digest: string } | null;
  /** Every listed descriptor that has a string digest, in the registry's order (not bounded). */
  descriptors: Descriptor[];
  /** The first MAX_REFERRERS of them, each with its manifest. */
  referrers: Referrer[];
}

/** The read of the referrers. */
export type ReferrersRead = ReferrersFound | { state: 'failed'; reason: Reason; error: unknown };

/** What is attached to `subject`. */
export interface Attachments<S extends TagSuffix = TagSuffix> {
  subject: string;
  /** One read per legacy tag asked for. */
  tags: Record<S, TagRead>;
  referrers: ReferrersRead;
}

export interface ReadAttachmentsOptions<S extends TagSuffix = TagSuffix> {
  /** The legacy tags to read (default all three). */
  tags?: readonly S[];
  /** Requests in flight at once (default 6). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called after each lookup (a tag, the referrers), with a sentence for a progress line. */
  onLookup?: (message: string) => void;
}

function isNotFound(reason: Reason): boolean {
  return reason.code === 'REGISTRY_NOT_FOUND';
}

/** Reads the legacy tag of `suffix` for `subject`; a registry failure is reported in the result. */
export async function readAttachmentTag(
  client: RegistryClient,
  repo: RepoRef,
  subject: string,
  suffix: TagSuffix,
): Promise<TagRead> {
  const tag = attachmentTag(subject, suffix);
  let manifest: Manifest;
  try {
    manifest = await client.getManifest(repo, tag);
  } catch (error) {
    const reason = reasonOf(error);
    return isNotFound(reason) ? { state: 'absent', suffix, tag } : { state: 'failed', suffix, tag, reason, error };
  }
  const layers = Array.isArray(manifest.json.layers) ? (manifest.json.layers as unknown[]) : [];
  return {
    state: 'found',
    suffix,
    tag,
    manifest,
    layers: layers.slice(0, MAX_LAYERS),
    layerCount: layers.length,
  };
}

/** A referrer whose manifest is read once, on demand. */
function referrer(client: RegistryClient, repo: RepoRef, descriptor: Descriptor): Referrer {
  let read: Promise<Manifest> | null = null;
  const get = async (): Promise<Manifest> => {
    if (!isSha256Digest(descriptor.digest)) {
      throw new RegistryError('REGISTRY_UNSUPPORTED', `${descriptor.digest} is not a sha256 digest.`);
    }
    return client.getManifest(repo, descriptor.digest);
  };
  return {
    descriptor,
    manifest: () => (read ??= get()),
  };
}

function hasDigest(d: unknown): d is Descriptor {
  return typeof d === 'object' && d !== null && typeof (d as { digest?: unknown }).digest === 'string';
}

async function readReferrers(client: RegistryClient, repo: RepoRef, subject: string): Promise<ReferrersRead> {
  let refs;
  try {
    refs = await client.referrers(repo, subject);
  } catch (error) {
    return { state: 'failed', reason: reasonOf(error), error };
  }
  const descriptors = (refs.descriptors as unknown[]).filter(hasDigest);
  return {
    state: 'found',
    via: refs.via,
    fallback:
      refs.via === 'tag-schema' && refs.indexDigest !== undefined
        ? { tag: referrersTag(subject), digest: refs.indexDigest }
        : null,
    descriptors,
    referrers: descriptors.slice(0, MAX_REFERRERS).map((d) => referrer(client, repo, d)),
  };
}

/** The lookups of readAttachments, each settling as its own answer arrives. */
export interface AttachmentReads<S extends TagSuffix = TagSuffix> {
  subject: string;
  tags: Record<S, Promise<TagRead>>;
  referrers: Promise<ReferrersRead>;
  /**
   * Settles once no lookup is under way: rejected with the signal's reason when it aborted (the
   * lookups not yet started are then rejected with it too).
   */
  settled: Promise<void>;
}

/**
 * Starts reading what is attached to the manifest `subject` (as readAttachments), handing out each
 * lookup's promise at once, so a caller can go on with the `.sig` tag while the referrers are still
 * being listed. Its promises reject only with the signal's reason.
 */
export function startAttachmentReads<S extends TagSuffix = TagSuffix>(
  client: RegistryClient,
  repo: RepoRef,
  subject: string,
  options: ReadAttachmentsOptions<S> = {},
): AttachmentReads<S> {
  const { signal, onLookup } = options;
  const suffixes = (options.tags ?? TAG_SUFFIXES) as readonly S[];
  const concurrency = Math.max(1, options.concurrency ?? 6);
  const lookups: (() => Promise<TagRead | ReferrersRead>)[] = [
    ...suffixes.map((suffix) => async () => {
      const read = await readAttachmentTag(client, repo, subject, suffix);
      onLookup?.(`Looked for ${read.tag}`);
      return read;
    }),
    async () => {
      const read = await readReferrers(client, repo, subject);
      // A subject is a sha256 digest (71 characters): shown by its first 12 hex digits.
      onLookup?.(`Looked for referrers of ${subject.slice(0, 19)}…`);
      return read;
    },
  ];
  const answers = lookups.map(() => {
    let settle!: { resolve: (r: TagRead | ReferrersRead) => void; reject: (e: unknown) => void };
    const promise = new Promise<TagRead | ReferrersRead>((resolve, reject) => (settle = { resolve, reject }));
    promise.catch(() => undefined); // a caller that stopped listening leaves no unhandled rejection
    return { promise, ...settle };
  });
  const settled = pool(lookups, concurrency, async (lookup, i) => {
    signal?.throwIfAborted();
    answers[i]!.resolve(await lookup());
  }).then(
    () => signal?.throwIfAborted(),
    (e: unknown) => {
      for (const a of answers) a.reject(e); // no-op for the answers already given
      throw e;
    },
  );
  settled.catch(() => undefined);
  const tags = Object.fromEntries(suffixes.map((s, i) => [s, answers[i]!.promise])) as Record<S, Promise<TagRead>>;
  const referrers = answers[suffixes.length]!.promise as Promise<ReferrersRead>;
  return { subject, tags, referrers, settled };
}

/**
 * Reads what is attached to the manifest `subject`: the legacy tags asked for and the referrers,
 * all lookups at once (at most `concurrency`).
 * @throws the signal's reason when `signal` aborts; every registry failure is reported in the
 *   result instead.
 */
export async function readAttachments<S extends TagSuffix = TagSuffix>(
  client: RegistryClient,
  repo: RepoRef,
  subject: string,
  options: ReadAttachmentsOptions<S> = {},
): Promise<Attachments<S>> {
  const reads = startAttachmentReads(client, repo, subject, options);
  await reads.settled;
  const tags = {} as Record<S, TagRead>;
  for (const s of Object.keys(reads.tags) as S[]) tags[s] = await reads.tags[s];
  return { subject, tags, referrers: await reads.referrers };
}

/**
 * Reads a signature's (or attestation's) blob named by a layer: a payload, a bundle, an envelope.
 * Only a descriptor with a sha256 digest and a size is followed, and none over MAX_SIGNATURE_BLOB.
 * @param what what the blob is, for the sentences ("payload blob", "layer").
 * @throws VerificationError VERIFY_LAYER_MISMATCH for an unusable descriptor, VERIFY_TOO_MANY over
 *   the limit; what RegistryClient.getBlob throws (REGISTRY_DIGEST_MISMATCH, REGISTRY_SIZE_MISMATCH,
 *   REGISTRY_TOO_LARGE when more is served than the descriptor says, and the request codes).
 */
export async function readSignatureBlob(
  client: RegistryClient,
  repo: RepoRef,
  layer: Descriptor,
  what: string,
): Promise<Uint8Array> {
  if (!isSha256Digest(layer.digest) || !Number.isSafeInteger(layer.size) || layer.size < 0) {
    throw new VerificationError(
      'VERIFY_LAYER_MISMATCH',
      `The ${what} descriptor has no usable sha256 digest and size.`,
    );
  }
  if (layer.size > MAX_SIGNATURE_BLOB) {
    throw new VerificationError(
      'VERIFY_TOO_MANY',
      `The ${what} claims ${layer.size} bytes; this page reads at most 1 MiB.`,
    );
  }
  return client.getBlob(repo, layer.digest, layer.size);
}

/** Blobs asked for in one batch (server/relay/batch.ts takes at most 64). */
const BATCH = 25;

/**
 * The signature blobs of one repository, each read once per digest (layers that share a payload
 * share the read), and fetched ahead in batches where the client can (RegistryClient.getBlobs,
 * through the relay): a page over HTTP/1.1 keeps six requests to its server in flight, a batch
 * lets the server read 25 at once. What a batch did not bring is read on its own.
 */
export class SignatureBlobs {
  readonly #client: RegistryClient;
  readonly #repo: RepoRef;
  readonly #ahead = new Map<string, Promise<Uint8Array | undefined>>();
  readonly #reads = new Map<string, Promise<Uint8Array>>();

  constructor(client: RegistryClient, repo: RepoRef) {
    this.#client = client;
    this.#repo = repo;
  }

  /** Starts reading the usable descriptors among `layers` in batches (only when the client batches). */
  prefetch(layers: readonly unknown[]): void {
    if (typeof this.#client.getBlobs !== 'function') return;
    const wanted = new Map<string, Descriptor>();
    for (const l of layers) {
      const d = l as Descriptor | null;
      if (typeof d !== 'object' || d === null || !isSha256Digest(d.digest)) continue;
      if (!Number.isSafeInteger(d.size) || d.size < 0 || d.size > MAX_SIGNATURE_BLOB) continue;
      if (!this.#ahead.has(d.digest)) wanted.set(d.digest, d);
    }
    const list = [...wanted.values()];
    for (let i = 0; i < list.length; i += BATCH) {
      const chunk = list.slice(i, i + BATCH);
      const got = this.#client.getBlobs(this.#repo, chunk).catch(() => new Map<string, Uint8Array>());
      for (const d of chunk)
        this.#ahead.set(
          d.digest,
          got.then((m) => m.get(d.digest)),
        );
    }
  }

  /**
   * A blob as {@link readSignatureBlob} reads it, from a batch when one brought it.
   * @throws what readSignatureBlob throws
   */
  read(layer: Descriptor, what: string): Promise<Uint8Array> {
    const key = `${what} ${String(layer.digest)} ${String(layer.size)}`;
    let read = this.#reads.get(key);
    if (!read) {
      read = (async () => {
        const ahead = await this.#ahead.get(layer.digest);
        if (ahead && ahead.length === layer.size) return ahead;
        return readSignatureBlob(this.#client, this.#repo, layer, what);
      })();
      this.#reads.set(key, read);
    }
    return read;
  }
}

/** A platform manifest an index lists, as the workflows read it. */
export interface PlatformEntry {
  digest: string;
  /** The entry's manifest media type; an OCI manifest when it names none this client reads. */
  mediaType: string;
  /** `linux/arm64/v8`, or `unknown platform`. */
  platform: string;
}

/**
 * The platform manifests of an index whose attachments are read: the entries with a sha256
 * digest, the first MAX_PLATFORMS of them, and how many there are.
 */
export function indexPlatforms(index: Manifest): { platforms: PlatformEntry[]; listed: number } {
  const list = (Array.isArray(index.json.manifests) ? (index.json.manifests as unknown[]) : []).filter(
    (d): d is Descriptor => hasDigest(d) && isSha256Digest(d.digest),
  );
  const platforms = list.slice(0, MAX_PLATFORMS).map((c) => ({
    digest: c.digest,
    mediaType: typeof c.mediaType === 'string' && isManifestMediaType(c.mediaType) ? c.mediaType : MT.ociManifest,
    platform: c.platform ? platformName(c.platform) : 'unknown platform',
  }));
  return { platforms, listed: list.length };
}

/** The note that a tag holds more layers than are read, or null. */
export function tooManyLayers(found: TagFound): Reason | null {
  if (found.layerCount <= MAX_LAYERS) return null;
  return {
    code: 'VERIFY_TOO_MANY',
    message: `${found.tag} holds ${found.layerCount} layers; this page reads the first ${MAX_LAYERS}.`,
  };
}

/** The note that more referrers are listed than are read, or null; `what` names the subject ("image"). */
export function tooManyReferrers(found: ReferrersFound, what: string): Reason | null {
  if (found.descriptors.length <= MAX_REFERRERS) return null;
  return {
    code: 'VERIFY_TOO_MANY',
    message: `The ${what} has ${found.descriptors.length} referrers; this page reads the first ${MAX_REFERRERS}.`,
  };
}

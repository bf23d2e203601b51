/**
 * One writer for the tags that hold a list of descriptors: the layers of a `sha256-<hex>.sig`
 * manifest (one per legacy signature) and the entries of the referrers tag schema's index
 * (`sha256-<hex>`, https://github.com/opencontainers/distribution-spec/blob/main/spec.md#referrers-tag-schema).
 * Signing adds to them, copying merges a source's entries into them, removing takes entries out;
 * all three go through {@link rewriteTag}.
 *
 * Rewriting such a tag is read-modify-write, and two writers that read the same list lose one's
 * change (10 concurrent `cosign sign` leave one signature). Each round here:
 * 1. takes the tag's lock (the relay's, passed in; without one, none), reads the list, applies the
 *    change and writes the result with `If-Match` set to the ETag the registry gave with the read,
 *    when it gave one — a registry that honours it answers 412 to a writer that lost the race,
 *    and that round counts as lost: read again, apply again;
 * 2. reads the tag back at once, still under the lock: the change missing means the round is lost;
 * 3. only when no lock was granted for the round (no lock passed, or a server without /locks),
 *    reads it again after a random settle delay: a writer that read before this write and wrote
 *    after it (behind another relay, or on a registry that ignores If-Match) shows up as the change
 *    missing from that read, and the round is lost.
 * Up to a bounded number of rounds, with a growing random back-off between them.
 *
 * When the settle wait is skipped: the lock said it granted the key ({@link TagLockRelease.held},
 * set by the relay's lock for a token it was given). Every writer of this code behind that lock
 * (signing, removing, copying, on any page the server serves) reads, writes and reads back inside
 * its hold, so none can write between another's read and its read-back, and the read-back under
 * the lock proves the write. What the wait still bought against writers that do not take the lock
 * (cosign or crane writing the same tag, this code with no lock or behind another relay that does
 * not share the lock store) is a window of 100–400 ms after the write in which their overwrite was
 * caught; without it such an overwrite is caught only while the read-back under the lock runs —
 * the same exposure those writers already had after the second read-back.
 */
import { RegistryError, SignatureError } from '../errors.ts';
import type { RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, type Descriptor } from '../registry/mediatypes.ts';
import { buildReferrersIndex, buildSigManifest } from '../cosign/manifests.ts';

/**
 * Ends a hold. `held` is true when a lock server granted the key (the relay's lock with a token),
 * and false or absent when the lock only stands in for one (none configured, a server without
 * /locks): only a granted hold lets {@link rewriteTag} skip its settle wait.
 */
export type TagLockRelease = (() => Promise<void>) & { readonly held?: boolean };

/** The keys taken by one {@link TagLock} `ahead` call; `done` gives back those no write took. */
export interface TagLockAhead {
  done(): void;
}

/** Most keys one `ahead` call takes (the relay's /locks batch limit). */
export const LOCK_BATCH_MAX = 16;

/**
 * A lock held while a read-modify-write of one tag runs; `release` must always be called.
 * `ahead`, where the lock server offers it, takes the keys of writes about to come in one request,
 * all or none and without waiting: a later call for one of them gets that hold at once. When any
 * key is held by another writer, none is kept and each write takes its key in line, so a signer
 * never holds a tag it is not writing while it waits for another.
 */
export type TagLock = ((key: string) => Promise<TagLockRelease>) & {
  ahead?: (keys: string[]) => TagLockAhead;
};

/** What a list tag holds now. */
export interface TagState {
  /** The digest of the manifest the tag points at. */
  digest: string;
  /** The registry's ETag for it, for a conditional write; null when it sent none. */
  etag: string | null;
  entries: Descriptor[];
}

/** A manifest written under a tag. */
export interface Written {
  digest: string;
  size: number;
}

/** A tag whose manifest is a list of descriptors, and how to write it. */
export interface ListTag {
  client: RegistryClient;
  repo: RepoRef;
  tag: string;
  /** Where the list is: `layers` of a `.sig` manifest, `manifests` of an index. */
  field: 'layers' | 'manifests';
  /**
   * Pushes a manifest holding exactly `entries` under the tag, only if the tag's ETag is still
   * `ifMatch` when that is given.
   * @throws RegistryError REGISTRY_PRECONDITION_FAILED when it is not, and the registry's codes.
   */
  put(entries: Descriptor[], ifMatch?: string): Promise<Written>;
  /**
   * What a change that empties the list does instead of writing an empty list (removal deletes
   * the manifest); returns the manifest written instead, or null when the tag is gone. Without
   * it an empty list is written.
   */
  drop?(current: TagState): Promise<Written | null>;
}

/** A change to a list tag's entries. */
export interface TagChange {
  /** The list to write, given the tag's list now; null when it needs no write. */
  apply(current: Descriptor[]): Descriptor[] | null;
  /** True when a list read back shows the change in place. */
  holds(list: Descriptor[]): boolean;
  /** Sees the list read under the lock, and a read-back that did not hold. */
  observe?(list: Descriptor[]): void;
  /** The error thrown when the change did not stay after `attempts` rounds. */
  lost(key: string, attempts: number, cause: unknown): Error;
}

export interface TagWriteOptions {
  lock?: TagLock;
  /** Milliseconds to wait before the second read-back (default: random 100–400 ms). */
  settleDelay?: () => number;
  /** Read-modify-write rounds before giving up (default 10). */
  maxAttempts?: number;
  /**
   * Count a registry's momentary failure (see {@link isTransient}) as a lost round and read
   * again a few times before giving up (default true). A 412 always counts as a lost round.
   */
  retryTransient?: boolean;
  /**
   * Read back after a round that found nothing to change, as after a write (default true); false
   * takes a list that needs no change as it is and returns at once.
   */
  readBackUnchanged?: boolean;
}

/** What {@link rewriteTag} did last: put a manifest under the tag, deleted it, or nothing. */
export interface TagWriteResult {
  /** The last manifest this writer put under the tag, or null. */
  written: Written | null;
  last: 'put' | 'deleted' | null;
}

const TRANSIENT = new Set([
  'REGISTRY_BAD_RESPONSE',
  'REGISTRY_NOT_FOUND',
  'REGISTRY_ERROR',
  'REGISTRY_DIGEST_MISMATCH',
]);

/**
 * True for the failures distribution 2.8 gives for a moment under concurrent writers: 400
 * DIGEST_INVALID to a manifest, or 500 to a read, while another upload of the same blob commits;
 * a 404 while another writer replaces a tag.
 */
export function isTransient(e: unknown): boolean {
  return e instanceof RegistryError && TRANSIENT.has(e.code);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const noLock: TagLock = async () => async () => undefined;

/** The lock key of a tag: `registry/repository:tag`. */
export function tagKey(repo: RepoRef, tag: string): string {
  return `${repo.registry}/${repo.repository}:${tag}`;
}

/**
 * Runs `fn` holding the tag's lock (or none), releasing it whatever happens.
 * @throws whatever `fn` or the lock throws.
 */
export async function withTagLock<T>(lock: TagLock | undefined, key: string, fn: () => Promise<T>): Promise<T> {
  const release = await (lock ?? noLock)(key);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/** The entries of a manifest's `layers` or `manifests` that name a digest (others are not ours to judge). */
export function entriesOf(
  json: Record<string, unknown> | null | undefined,
  field: 'layers' | 'manifests',
): Descriptor[] {
  const list = json?.[field];
  return Array.isArray(list)
    ? (list.filter((d) => typeof d === 'object' && d !== null && typeof d.digest === 'string') as Descriptor[])
    : [];
}

/**
 * Reads a list tag, or null when the tag does not exist.
 * @throws RegistryError (but REGISTRY_NOT_FOUND) and RelayError from the registry.
 */
export async function readList(list: ListTag): Promise<TagState | null> {
  try {
    const m = await list.client.getManifest(list.repo, list.tag);
    return { digest: m.descriptor.digest, etag: m.etag, entries: entriesOf(m.json, list.field) };
  } catch (e) {
    if (e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND') return null;
    throw e;
  }
}

/**
 * A `.sig` tag: written as cosign writes it (config rebuilt over the layers), after pushing
 * `blobs` (a signer's payload, pushed again in case a concurrent writer's cleanup raced it).
 * `ready`, when given, is an upload of those blobs already under way: each write waits for it
 * (false: it failed, and the write throws without writing; the caller reports the upload's error),
 * and the first write takes that upload as the blobs' push (a registry keeps a blob it was just
 * sent: the embedded one collects none younger than an hour, distribution only offline); later
 * rounds, after another writer had the tag, push them again.
 * `guess`, when given, is the list the first write will most likely hold (a `.sig` that does not
 * exist yet: the signer's layer alone): its config blob is uploaded at once, while the lock is
 * taken and the tag read, and a write whose config is that one waits for that upload instead of
 * making its own. A wrong guess costs one small unreferenced blob.
 */
export function sigList(
  client: RegistryClient,
  repo: RepoRef,
  tag: string,
  blobs: { bytes: Uint8Array; mediaType: string }[] = [],
  ready?: Promise<boolean>,
  guess?: Descriptor[],
): ListTag {
  const pushConfig = (config: Uint8Array): Promise<unknown> =>
    client.pushBlob(repo, config, { mediaType: MT.ociConfig, ask: false });
  const early = new Map<string, Promise<unknown>>();
  if (guess) {
    const { config, configDescriptor } = buildSigManifest(guess);
    const upload = pushConfig(config);
    upload.catch(() => undefined); // a failed early upload is made again by the write that needs it
    early.set(configDescriptor.digest, upload);
  }
  let pushedWithReady = ready !== undefined;
  return {
    client,
    repo,
    tag,
    field: 'layers',
    async put(entries, ifMatch) {
      const { manifest, config, configDescriptor } = buildSigManifest(entries);
      if (ready && !(await ready)) {
        throw new SignatureError('SIGNATURE_WRITE_LOST', `The signature's payload could not be uploaded to ${tag}.`);
      }
      const again = !pushedWithReady;
      pushedWithReady = false;
      const started = early.get(configDescriptor.digest);
      early.delete(configDescriptor.digest);
      await Promise.all([
        ...(again ? blobs.map((b) => client.pushBlob(repo, b.bytes, { mediaType: b.mediaType })) : []),
        started ? started.catch(() => pushConfig(config)) : pushConfig(config),
      ]);
      const digest = await client.putManifest(repo, tag, manifest, MT.ociManifest, ifMatch ? { ifMatch } : {});
      return { digest, size: manifest.length };
    },
  };
}

/**
 * The referrers tag schema's index at `tag`. `ready`, when given, is the push of the referrer
 * being added, under way while the lock is taken and the index read: each write waits for it
 * (false: it failed, or is not to be listed here, and the write throws without writing).
 */
export function referrersIndexList(
  client: RegistryClient,
  repo: RepoRef,
  tag: string,
  ready?: Promise<boolean>,
): ListTag {
  return {
    client,
    repo,
    tag,
    field: 'manifests',
    async put(entries, ifMatch) {
      const index = buildReferrersIndex(entries);
      if (ready && !(await ready)) {
        throw new SignatureError('SIGNATURE_WRITE_LOST', `The referrer to list in ${tag} was not pushed.`);
      }
      const digest = await client.putManifest(repo, tag, index, MT.ociIndex, ifMatch ? { ifMatch } : {});
      return { digest, size: index.length };
    },
  };
}

/**
 * A set of entries under a sameness that implies the same digest: looked up by digest first, so a
 * list of a thousand signatures is matched against another in linear time, not quadratic.
 */
class EntrySet {
  readonly #byDigest = new Map<string, Descriptor[]>();
  readonly #same: (a: Descriptor, b: Descriptor) => boolean;

  constructor(same: (a: Descriptor, b: Descriptor) => boolean, entries: readonly Descriptor[] = []) {
    this.#same = same;
    for (const d of entries) this.add(d);
  }

  has(d: Descriptor): boolean {
    return this.#byDigest.get(d.digest)?.some((k) => this.#same(k, d)) ?? false;
  }

  /** Adds `d` unless an entry the same is there; true when added. */
  add(d: Descriptor): boolean {
    if (this.has(d)) return false;
    const bucket = this.#byDigest.get(d.digest);
    if (bucket) bucket.push(d);
    else this.#byDigest.set(d.digest, [d]);
    return true;
  }
}

/**
 * Adds `ours` to a list, each once (`same` says when two entries are the same, and holds only for
 * entries with the same digest); also how a source's entries are merged into a destination's.
 * Entries kept: ours, and others' that appeared while this writer worked and then vanished (a
 * concurrent writer's change lost to a third writer). What was there at the first read and later
 * goes is not put back: that is a removal (shared/ops/remove.ts), not a lost write.
 */
export function addEntries(ours: Descriptor[], same: (a: Descriptor, b: Descriptor) => boolean): TagChange {
  const known: Descriptor[] = [];
  const knownSet = new EntrySet(same);
  for (const d of ours) if (knownSet.add(d)) known.push(d);
  let initial: EntrySet | null = null;
  const missing = (list: Descriptor[]): Descriptor[] => {
    const there = new EntrySet(same, list);
    return known.filter((k) => !there.has(k));
  };
  return {
    observe(list) {
      initial ??= new EntrySet(same, list);
      for (const d of list) if (!initial.has(d) && knownSet.add(d)) known.push(d);
    },
    apply(current) {
      const absent = missing(current);
      return absent.length > 0 ? [...current, ...absent] : null;
    },
    holds: (list) => missing(list).length === 0,
    lost: (key, attempts, cause) =>
      new SignatureError(
        'SIGNATURE_WRITE_LOST',
        `Other signers kept overwriting ${key} and this signature did not stay after ${attempts} attempts; try again.`,
        { cause },
      ),
  };
}

/**
 * Takes the entries `isTarget` picks out of a list. Each write is the list as it is now minus
 * the targets, so it never drops another writer's entry it read.
 */
export function removeEntries(
  isTarget: (d: Descriptor) => boolean,
  lost: (key: string, attempts: number) => Error,
): TagChange {
  return {
    apply: (current) => (current.some(isTarget) ? current.filter((d) => !isTarget(d)) : null),
    holds: (list) => !list.some(isTarget),
    lost: (key, attempts) => lost(key, attempts),
  };
}

/** Reads a list, again after a momentary failure when `transient` (a read can fail while another writer replaces the tag). */
async function readEntries(list: ListTag, transient: boolean): Promise<TagState | null> {
  for (let i = 0; ; i++) {
    try {
      return await readList(list);
    } catch (e) {
      if (!transient || i >= 4 || !isTransient(e)) throw e;
      await sleep(50 + Math.random() * 100);
    }
  }
}

/** Writes `next` over `current`: a conditional put, or the list's drop when it empties. */
async function writeList(list: ListTag, current: TagState | null, next: Descriptor[]): Promise<Written | null> {
  if (next.length === 0 && current && list.drop) return list.drop(current);
  return list.put(next, current?.etag ?? undefined);
}

/** How one round of {@link rewriteTag} ended. */
type Round =
  | { end: 'done' }
  /** The change held at the read-back under a lock that was not granted: settle, then read again. */
  | { end: 'settle' }
  | { end: 'lost'; error?: unknown };

/**
 * One round under the lock: read, apply, write, read back at once.
 * @throws what rewriteTag throws, but a lost round.
 */
async function round(
  list: ListTag,
  change: TagChange,
  o: TagWriteOptions,
  key: string,
  result: TagWriteResult,
): Promise<Round> {
  const transient = o.retryTransient ?? true;
  const release = await (o.lock ?? noLock)(key);
  try {
    const current = await readEntries(list, transient);
    change.observe?.(current?.entries ?? []);
    const next = change.apply(current?.entries ?? []);
    // Read under a granted lock, the list needs no change and none can come in between.
    if (!next && (o.readBackUnchanged === false || release.held === true)) return { end: 'done' };
    if (next) {
      const written = await writeList(list, current, next);
      result.last = written ? 'put' : 'deleted';
      if (written) result.written = written;
    }
    const back = (await readEntries(list, transient))?.entries ?? [];
    if (!change.holds(back)) {
      change.observe?.(back);
      return { end: 'lost' };
    }
    return { end: release.held === true ? 'done' : 'settle' };
  } catch (e) {
    // 412: another writer changed the tag since our read. And concurrent writers of the same
    // blobs can make distribution refuse a manifest for a moment. Both: a lost round.
    const precondition = e instanceof RegistryError && e.code === 'REGISTRY_PRECONDITION_FAILED';
    if (!precondition && !(transient && isTransient(e))) throw e;
    return { end: 'lost', error: e };
  } finally {
    await release();
  }
}

/**
 * Applies `change` to a list tag and makes it stay, as far as the registry allows (see the
 * header): under the lock and If-Match, read back at once, and — without a granted lock — again
 * after the settle delay.
 * @throws the change's `lost` error (SIGNATURE_WRITE_LOST for additions) when other writers kept
 *   undoing it; RegistryError (not a lost round) and RelayError from the registry; what `drop` throws.
 */
export async function rewriteTag(list: ListTag, change: TagChange, o: TagWriteOptions = {}): Promise<TagWriteResult> {
  const key = tagKey(list.repo, list.tag);
  const settle = o.settleDelay ?? (() => 100 + Math.random() * 300);
  const attempts = o.maxAttempts ?? 10;
  const result: TagWriteResult = { written: null, last: null };
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const r = await round(list, change, o, key, result);
    if (r.end === 'done') return result;
    if (r.end === 'lost' && 'error' in r) {
      lastError = r.error;
      await sleep(settle() * attempt);
      continue;
    }
    if (r.end === 'settle') {
      // No lock kept other writers out: a concurrent writer that read before our write and wrote
      // after our read-back shows up as the change missing after a random delay.
      await sleep(settle());
      const second = (await readEntries(list, o.retryTransient ?? true))?.entries ?? [];
      if (change.holds(second)) return result;
      change.observe?.(second);
    }
    // Lost to another writer: back off a random, growing while so the writers spread out.
    await sleep(Math.random() * 100 * attempt);
  }
  throw change.lost(key, attempts, lastError);
}

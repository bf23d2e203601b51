/**
 * Removing signatures from an image, one or all, leaving every other signature as it was.
 *
 * A legacy signature is one layer of the `sha256-<hex>.sig` manifest: removing it rewrites that
 * manifest without the layer (the other layer descriptors kept as they are, the config rebuilt as
 * cosign builds it), or deletes the manifest by digest when it was the last layer. That rewrite is
 * a read-modify-write as signing's append is, through the same tag writer (tag-writer.ts):
 * serialised per tag through the same lock (the relay's), written with If-Match where the registry
 * gives an ETag, and read back at once and after a random delay: a removed layer that came back
 * (a concurrent signer that had read it) is removed again, a bounded number of times. Each
 * rewrite writes the tag as it is now minus our targets, so it never drops another's layer it
 * read; a layer of someone else that vanishes meanwhile is never put back — that is their removal,
 * and signing's append (sign.ts) follows the same rule for what was there at its first read — and
 * it is named in the report as gone meanwhile instead of counted intact.
 *
 * A bundle signature is its own referrer manifest: removing it deletes that manifest by digest,
 * and where the referrers tag schema's index (`sha256-<hex>`) lists it, rewrites the index without
 * it (or deletes the index when it empties).
 *
 * Deletions run before any rewrite, so a registry that refuses DELETE (405 UNSUPPORTED, as
 * distribution with deletes disabled answers) refuses the first step and nothing changes. At the
 * end everything is read back: each removed signature is gone and every other `.sig` layer and
 * referrer is still there, byte for byte (descriptor equal, blob or manifest digest-checked; the
 * blobs a few at a time, at most as many as the tree reads, none over a signature's size limit,
 * which is compared by descriptor only).
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#deleting-manifests
 */
import { ManageError, RegistryError, RelayError } from '../errors.ts';
import type { RegistryClient, RepoRef } from '../registry/client.ts';
import type { Descriptor } from '../registry/mediatypes.ts';
import { referrersTag, sameSignatureLayer, sigTag } from '../cosign/manifests.ts';
import { readAttachments } from './attachments.ts';
import {
  entriesOf,
  readList,
  referrersIndexList,
  removeEntries,
  rewriteTag,
  sigList,
  tagKey,
  withTagLock,
  type ListTag,
  type TagLock,
  type TagWriteOptions,
  type TagWriteResult,
} from './tag-writer.ts';
import { pool } from './pool.ts';
import { MAX_LAYERS, MAX_REFERRERS, MAX_SIGNATURE_BLOB } from '../cosign/limits.ts';
import { isObject, type JsonValue } from '../cosign/strict-json.ts';
import type { TreeItem, TreeNode } from './tree.ts';

/** One signature to remove, from one manifest (`subject`). */
export type RemoveTarget =
  | { kind: 'legacy'; subject: string; tag: string; layer: Descriptor; label: string }
  | { kind: 'referrer'; subject: string; digest: string; label: string };

export interface RemoveOptions {
  client: RegistryClient;
  repo: RepoRef;
  /** The manifest the signatures are about (the image, or one platform of an index). */
  subject: string;
  targets: RemoveTarget[];
  /** The per-tag lock signers use (the relay's in the page). */
  lock?: TagLock;
  onProgress?: (done: number, total: number, message: string) => void;
  /**
   * Milliseconds to wait before the second read-back (default: random 500–800 ms, longer than a
   * signer's own settle delay and back-off, so a concurrent signer that puts the removed layer
   * back — its merge cannot tell a removal from a lost write — is seen and undone).
   */
  settleDelay?: () => number;
  /** Read-modify-write attempts before giving up (default 10). */
  maxAttempts?: number;
}

export interface RemoveReport {
  /** The labels of what was removed. */
  removed: string[];
  /** Other signatures and referrers read back intact. */
  intact: number;
  /** Other signatures and referrers that were there before and another writer removed meanwhile. */
  vanished: string[];
  /** What happened to the `.sig` manifest and the referrers tag schema's index. */
  sigManifest: 'rewritten' | 'deleted' | 'unchanged';
  fallbackIndex: 'rewritten' | 'deleted' | 'unchanged';
}

/** Read-back requests in flight at once. */
const READ_BACK_CONCURRENCY = 6;

function short(d: string): string {
  return d.length > 19 ? `${d.slice(0, 19)}…` : d;
}

/** A label that names exactly one signature, for the confirmation dialog and the report. */
export function describeItem(item: TreeItem): string {
  const who = item.signer ? `, key sha256:${item.signer.fingerprint.slice(0, 12)}…` : '';
  if (item.source === 'sig')
    return `legacy signature: layer ${item.layerIndex} of ${item.tag} (payload ${short(item.layer!.digest)}${who})`;
  return `Sigstore bundle signature: referrer ${item.manifest}${who}`;
}

/**
 * The removal target of one tree item under `node`.
 * @throws ManageError MANAGE_SIGNATURE_NOT_FOUND when the item is not a removable signature.
 */
export function targetOf(node: TreeNode, item: TreeItem): RemoveTarget {
  if (!item.removable) {
    throw new ManageError(
      'MANAGE_SIGNATURE_NOT_FOUND',
      `${item.title} is not a signature; only signatures are removed here.`,
    );
  }
  const label = describeItem(item);
  if (item.source === 'sig' && item.layer && item.tag) {
    return { kind: 'legacy', subject: node.digest, tag: item.tag, layer: item.layer, label };
  }
  if (item.source === 'referrer') return { kind: 'referrer', subject: node.digest, digest: item.manifest, label };
  throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${item.title} cannot be removed.`);
}

/** Every signature under one node (not its platforms), for "Remove all signatures". */
export function allSignatureTargets(node: TreeNode): RemoveTarget[] {
  return [...node.sig.items, ...node.referrers.items].filter((i) => i.removable).map((i) => targetOf(node, i));
}

/** Key-order-independent equality of two descriptors (every field, annotations included). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function sameDescriptor(a: Descriptor, b: Descriptor): boolean {
  return canonical(a) === canonical(b);
}

/** A DELETE the registry refused, in words; anything else passes through. */
function refused(e: unknown, repo: RepoRef, what: string, done: string[]): unknown {
  if (e instanceof RegistryError && (e.code === 'REGISTRY_UNSUPPORTED' || e.code === 'REGISTRY_DENIED')) {
    const already = done.length ? ` Already removed before the refusal: ${done.join('; ')}.` : ' Nothing was removed.';
    return new ManageError(
      'MANAGE_DELETE_REFUSED',
      `${repo.registry} refused to delete ${what} (${e.status ?? 'error'} ${e.code === 'REGISTRY_DENIED' ? 'access denied' : 'deleting is not supported'}): this registry does not allow removing manifests.${already}`,
      { cause: e },
    );
  }
  return e;
}

type LegacyTarget = Extract<RemoveTarget, { kind: 'legacy' }>;
type ReferrerTarget = Extract<RemoveTarget, { kind: 'referrer' }>;

/** One removal as it runs: its targets, the two tags it may rewrite, what it did so far. */
interface Removal {
  o: RemoveOptions;
  legacy: LegacyTarget[];
  referrers: ReferrerTarget[];
  /** The `.sig` tag, deleted (with a refusal in words) when its last layer goes. */
  sig: ListTag;
  /** The referrers tag schema's index, deleted (or written empty) when its last entry goes. */
  index: ListTag;
  write: TagWriteOptions;
  /** Labels of what is removed so far, for a refusal's message. */
  removed: string[];
  report: RemoveReport;
  total: number;
  progress(message: string): void;
  isTarget(layer: Descriptor): boolean;
}

interface Snapshot {
  /** The `.sig` manifest's digest and every layer of it, or null without one. */
  sig: { digest: string; entries: Descriptor[] } | null;
  referrers: Descriptor[];
}

/** The `.sig` tag and the referrers as they are now (attachments.ts). @throws what reading them threw */
async function snapshot(r: Removal): Promise<Snapshot> {
  const { client, repo, subject } = r.o;
  const read = await readAttachments(client, repo, subject, { tags: ['sig'] });
  const sig = read.tags.sig;
  if (sig.state === 'failed') throw sig.error;
  if (read.referrers.state === 'failed') throw read.referrers.error;
  return {
    // Every layer, not only the first MAX_LAYERS the reader hands out: each one kept is checked.
    sig:
      sig.state === 'found'
        ? { digest: sig.manifest.descriptor.digest, entries: entriesOf(sig.manifest.json, 'layers') }
        : null,
    referrers: read.referrers.descriptors,
  };
}

/**
 * The `.sig` tag, deleted when its last layer goes (a refusal said in words, naming `removed`),
 * and the referrers index, deleted or else written empty when its last entry goes.
 */
function removalTags(o: RemoveOptions, removed: string[]): { sig: ListTag; index: ListTag } {
  const { client, repo, subject } = o;
  const sig = sigList(client, repo, sigTag(subject));
  sig.drop = async (current) => {
    try {
      await client.deleteManifest(repo, current.digest);
    } catch (e) {
      throw refused(e, repo, `the ${sig.tag} manifest`, removed);
    }
    return null;
  };
  const index = referrersIndexList(client, repo, referrersTag(subject));
  index.drop = async (current) => {
    try {
      await client.deleteManifest(repo, current.digest);
      return null;
    } catch (e) {
      // A registry that will not delete it gets an empty index: the removed entries are gone either way.
      if (!(e instanceof RegistryError || e instanceof RelayError)) throw e;
      return index.put([], current.etag ?? undefined);
    }
  };
  return { sig, index };
}

/**
 * The removal's targets split by kind, and its tags.
 * @throws ManageError MANAGE_SIGNATURE_NOT_FOUND without targets or with one about another manifest.
 */
function startRemoval(o: RemoveOptions): Removal {
  const { subject } = o;
  if (o.targets.length === 0) throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', 'There is no signature to remove.');
  for (const t of o.targets) {
    if (t.subject !== subject) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} belongs to ${t.subject}, not ${subject}.`);
    }
  }
  const legacy = o.targets.filter((t): t is LegacyTarget => t.kind === 'legacy');
  const referrers = o.targets.filter((t): t is ReferrerTarget => t.kind === 'referrer');
  const removed: string[] = [];
  const { sig, index } = removalTags(o, removed);
  const total = referrers.length + (legacy.length ? 1 : 0) + 2;
  let step = 0;
  return {
    o,
    legacy,
    referrers,
    sig,
    index,
    write: {
      lock: o.lock,
      settleDelay: o.settleDelay ?? (() => 500 + Math.random() * 300),
      maxAttempts: o.maxAttempts ?? 10,
      retryTransient: false,
    },
    removed,
    report: { removed, intact: 0, vanished: [], sigManifest: 'unchanged', fallbackIndex: 'unchanged' },
    total,
    progress: (message) => o.onProgress?.(++step, total, message),
    isTarget: (l) => legacy.some((t) => sameSignatureLayer(l, t.layer)),
  };
}

/**
 * Checks that every target is there now, and that each referrer target is about this manifest.
 * @throws ManageError MANAGE_SIGNATURE_NOT_FOUND
 */
async function checkTargets(r: Removal, before: Snapshot): Promise<void> {
  const { client, repo, subject } = r.o;
  for (const t of r.legacy) {
    if (t.tag !== r.sig.tag || !before.sig?.entries.some((l) => sameSignatureLayer(l, t.layer))) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} is no longer there: reload the tree.`);
    }
  }
  for (const t of r.referrers) {
    if (!before.referrers.some((d) => d.digest === t.digest)) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} is no longer there: reload the tree.`);
    }
  }
  // A referrer listed under the subject may be about another manifest (the fallback index is a
  // tag anyone who can push may edit): only one whose own subject is this manifest is deleted.
  for (const t of r.referrers) {
    const m = await client.getManifest(repo, t.digest);
    const about = isObject(m.json.subject as JsonValue)
      ? (m.json.subject as Record<string, unknown>).digest
      : undefined;
    if (about !== subject) {
      throw new ManageError(
        'MANAGE_SIGNATURE_NOT_FOUND',
        `${t.label} is listed under ${subject} but is about ${typeof about === 'string' ? about : 'no manifest'}: it is not a signature of this manifest, so it was not removed. Nothing was removed.`,
      );
    }
  }
}

/**
 * The deletions, before any rewrite, so that a registry that refuses DELETE refuses before
 * anything has changed: the `.sig` manifest when every layer goes, then each referrer.
 * @throws ManageError MANAGE_DELETE_REFUSED
 */
async function deleteFirst(r: Removal, sigEmpties: boolean): Promise<void> {
  const { client, repo } = r.o;
  if (r.legacy.length && sigEmpties) {
    await withTagLock(r.write.lock, tagKey(repo, r.sig.tag), async () => {
      const current = await readList(r.sig);
      if (current && current.entries.every(r.isTarget)) {
        await r.sig.drop!(current);
        r.report.sigManifest = 'deleted';
      }
    });
  }
  for (const t of r.referrers) {
    try {
      await client.deleteManifest(repo, t.digest);
    } catch (e) {
      if (!(e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND'))
        throw refused(e, repo, `the referrer ${t.digest}`, r.removed);
    }
    r.removed.push(t.label);
    r.progress(`Deleted referrer ${short(t.digest)}`);
  }
}

/** What a tag rewrite did, in the report's words; `was` when it wrote nothing. */
function outcome(w: TagWriteResult, was: RemoveReport['sigManifest']): RemoveReport['sigManifest'] {
  return w.last === 'put' ? 'rewritten' : w.last === 'deleted' ? 'deleted' : was;
}

/**
 * Drops the deleted referrers from the referrers tag schema's index, where there is one.
 * @throws ManageError MANAGE_REMOVE_LOST when other writers kept putting them back.
 */
async function updateFallbackIndex(r: Removal): Promise<void> {
  const gone = (d: Descriptor): boolean => r.referrers.some((t) => t.digest === d.digest);
  const change = removeEntries(
    gone,
    (_key, attempts) =>
      new ManageError(
        'MANAGE_REMOVE_LOST',
        `Other writers kept rewriting ${r.index.tag} and the referrers index still lists a removed signature after ${attempts} attempts.`,
      ),
  );
  // An index that lists none of them (or none at all) is left as read, without reading it back.
  const written = await rewriteTag(r.index, change, { ...r.write, readBackUnchanged: false });
  r.report.fallbackIndex = outcome(written, r.report.fallbackIndex);
}

/**
 * Rewrites `.sig` without the targets, until two read-backs agree (see the header).
 * @throws ManageError MANAGE_REMOVE_LOST, MANAGE_DELETE_REFUSED
 */
async function rewriteSig(r: Removal): Promise<void> {
  // Done when none of our targets is there; what else is there is others' business (see the header).
  const change = removeEntries(
    r.isTarget,
    (_key, attempts) =>
      new ManageError(
        'MANAGE_REMOVE_LOST',
        `Other writers kept rewriting ${r.sig.tag} and the removal did not stay after ${attempts} attempts; try again.`,
      ),
  );
  r.report.sigManifest = outcome(await rewriteTag(r.sig, change, r.write), r.report.sigManifest);
}

/**
 * Reads everything back: the removed ones are gone, every other one is there, byte for byte.
 * Counts the intact ones and names the vanished ones in the report.
 * @throws ManageError MANAGE_REMOVE_LOST when a removed one is still there or a kept one changed.
 */
async function readBack(r: Removal, before: Snapshot, keptLayers: Descriptor[]): Promise<void> {
  const { client, repo } = r.o;
  const after = await snapshot(r);
  const problems: string[] = [];
  for (const t of r.legacy) {
    if (after.sig?.entries.some((l) => sameSignatureLayer(l, t.layer))) problems.push(`${t.label} is still there`);
  }
  for (const t of r.referrers) {
    if (after.referrers.some((d) => d.digest === t.digest)) problems.push(`${t.label} is still listed`);
  }
  const keptReferrers = before.referrers.filter((d) => !r.referrers.some((t) => t.digest === d.digest));
  const reads: (() => Promise<unknown>)[] = [];
  for (const l of keptLayers) {
    if (!after.sig?.entries.some((a) => sameDescriptor(a, l))) {
      // Gone (our rewrites keep every layer they read): another writer removed it.
      if (!after.sig?.entries.some((a) => sameSignatureLayer(a, l)))
        r.report.vanished.push(`.sig layer ${short(l.digest)}`);
      else problems.push(`the .sig layer ${short(l.digest)} changed`);
      continue;
    }
    r.report.intact++;
    // A payload over the size a signature can have is compared by its descriptor only: the
    // registry's sizes are not trusted to decide how much is read.
    if (Number.isSafeInteger(l.size) && l.size >= 0 && l.size <= MAX_SIGNATURE_BLOB)
      reads.push(() => client.getBlob(repo, l.digest, l.size));
  }
  for (const d of keptReferrers) {
    if (!after.referrers.some((a) => a.digest === d.digest)) {
      // Our index rewrites keep every entry they read: another writer removed it.
      r.report.vanished.push(`referrer ${short(d.digest)}`);
      continue;
    }
    r.report.intact++;
    reads.push(() => client.getManifest(repo, d.digest));
  }
  // As many reads as the tree itself makes at most, a few at a time.
  await pool(reads.slice(0, MAX_LAYERS + MAX_REFERRERS), READ_BACK_CONCURRENCY, (read) => read());
  r.progress('Read back');
  if (problems.length) {
    throw new ManageError(
      'MANAGE_REMOVE_LOST',
      `After removing, the registry does not show what was expected: ${problems.join('; ')}. Reload the tree to see its state.`,
    );
  }
}

/**
 * Removes the given signatures of one manifest and checks that every other one stayed.
 * @throws ManageError MANAGE_SIGNATURE_NOT_FOUND (a target is not there, or a referrer target is
 *   about another manifest), MANAGE_DELETE_REFUSED (the registry refuses DELETE; says what, if
 *   anything, was removed before), MANAGE_REMOVE_LOST (concurrent writers kept undoing the
 *   removal, or the read-back found another signature changed); RegistryError/RelayError from the
 *   registry.
 */
export async function removeSignatures(o: RemoveOptions): Promise<RemoveReport> {
  const r = startRemoval(o);
  o.onProgress?.(0, r.total, 'Reading the signatures as they are now');
  const before = await snapshot(r);
  await checkTargets(r, before);
  const keptLayers = (before.sig?.entries ?? []).filter((l) => !r.isTarget(l));
  await deleteFirst(r, keptLayers.length === 0);
  if (r.referrers.length) await updateFallbackIndex(r);
  r.progress('Referrers index checked');
  if (r.legacy.length) {
    await rewriteSig(r);
    r.removed.push(...r.legacy.map((t) => t.label));
    r.progress(`Rewrote ${r.sig.tag}`);
  }
  await readBack(r, before, keptLayers);
  return r.report;
}

/**
 * Removing signatures from an image, one or all, leaving every other signature as it was.
 *
 * A legacy signature is one layer of the `sha256-<hex>.sig` manifest: removing it rewrites that
 * manifest without the layer (the other layer descriptors kept as they are, the config rebuilt as
 * cosign builds it), or deletes the manifest by digest when it was the last layer. That rewrite is
 * a read-modify-write as signing's append is (sign.ts), serialised per tag through the same lock
 * (the relay's) and read back at once and after a random delay: a removed layer that came back
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
import { MT, type Descriptor } from '../registry/mediatypes.ts';
import {
  buildReferrersIndex,
  buildSigManifest,
  referrersTag,
  sameSignatureLayer,
  sigTag,
} from '../cosign/manifests.ts';
import type { TagLock } from './sign.ts';
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const noLock: TagLock = async () => async () => undefined;

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

async function readTag(
  client: RegistryClient,
  repo: RepoRef,
  tag: string,
): Promise<{ digest: string; json: Record<string, unknown> } | null> {
  try {
    const m = await client.getManifest(repo, tag);
    return { digest: m.descriptor.digest, json: m.json };
  } catch (e) {
    if (e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND') return null;
    throw e;
  }
}

function listOf(json: Record<string, unknown> | null | undefined, field: 'layers' | 'manifests'): Descriptor[] {
  const list = json?.[field];
  return Array.isArray(list)
    ? (list.filter((d) => typeof d === 'object' && d !== null && typeof d.digest === 'string') as Descriptor[])
    : [];
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

interface Snapshot {
  sig: { digest: string; layers: Descriptor[] } | null;
  referrers: Descriptor[];
}

async function snapshot(client: RegistryClient, repo: RepoRef, subject: string): Promise<Snapshot> {
  const sig = await readTag(client, repo, sigTag(subject));
  const refs = await client.referrers(repo, subject);
  return {
    sig: sig ? { digest: sig.digest, layers: listOf(sig.json, 'layers') } : null,
    referrers: refs.descriptors.filter((d) => typeof d?.digest === 'string'),
  };
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
  const { client, repo, subject } = o;
  if (o.targets.length === 0) throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', 'There is no signature to remove.');
  for (const t of o.targets) {
    if (t.subject !== subject) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} belongs to ${t.subject}, not ${subject}.`);
    }
  }
  const lock = o.lock ?? noLock;
  const settle = o.settleDelay ?? (() => 500 + Math.random() * 300);
  const attempts = o.maxAttempts ?? 10;
  const legacy = o.targets.filter((t): t is Extract<RemoveTarget, { kind: 'legacy' }> => t.kind === 'legacy');
  const referrers = o.targets.filter((t): t is Extract<RemoveTarget, { kind: 'referrer' }> => t.kind === 'referrer');
  const total = referrers.length + (legacy.length ? 1 : 0) + 2;
  let step = 0;
  const progress = (message: string): void => o.onProgress?.(++step, total, message);
  o.onProgress?.(0, total, 'Reading the signatures as they are now');

  const before = await snapshot(client, repo, subject);
  const tag = sigTag(subject);
  for (const t of legacy) {
    if (t.tag !== tag || !before.sig?.layers.some((l) => sameSignatureLayer(l, t.layer))) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} is no longer there: reload the tree.`);
    }
  }
  for (const t of referrers) {
    if (!before.referrers.some((d) => d.digest === t.digest)) {
      throw new ManageError('MANAGE_SIGNATURE_NOT_FOUND', `${t.label} is no longer there: reload the tree.`);
    }
  }
  // A referrer listed under the subject may be about another manifest (the fallback index is a
  // tag anyone who can push may edit): only one whose own subject is this manifest is deleted.
  for (const t of referrers) {
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
  const isTarget = (l: Descriptor): boolean => legacy.some((t) => sameSignatureLayer(l, t.layer));
  const keptLayers = (before.sig?.layers ?? []).filter((l) => !isTarget(l));
  const removed: string[] = [];
  const report: RemoveReport = {
    removed,
    intact: 0,
    vanished: [],
    sigManifest: 'unchanged',
    fallbackIndex: 'unchanged',
  };

  // Deletions first: a registry that refuses DELETE refuses before anything has changed.
  if (legacy.length && keptLayers.length === 0) {
    await withSigLock(async () => {
      const current = await readTag(client, repo, tag);
      if (current && listOf(current.json, 'layers').every(isTarget)) {
        try {
          await client.deleteManifest(repo, current.digest);
        } catch (e) {
          throw refused(e, repo, `the ${tag} manifest`, removed);
        }
        report.sigManifest = 'deleted';
      }
    });
  }
  for (const t of referrers) {
    try {
      await client.deleteManifest(repo, t.digest);
    } catch (e) {
      if (!(e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND'))
        throw refused(e, repo, `the referrer ${t.digest}`, removed);
    }
    removed.push(t.label);
    progress(`Deleted referrer ${short(t.digest)}`);
  }
  if (referrers.length) await updateFallbackIndex();
  progress('Referrers index checked');
  if (legacy.length) {
    await rewriteSig();
    removed.push(...legacy.map((t) => t.label));
    progress(`Rewrote ${tag}`);
  }

  // Read everything back: the removed ones are gone, every other one is there, byte for byte.
  const after = await snapshot(client, repo, subject);
  const problems: string[] = [];
  for (const t of legacy) {
    if (after.sig?.layers.some((l) => sameSignatureLayer(l, t.layer))) problems.push(`${t.label} is still there`);
  }
  for (const t of referrers) {
    if (after.referrers.some((d) => d.digest === t.digest)) problems.push(`${t.label} is still listed`);
  }
  const keptReferrers = before.referrers.filter((r) => !referrers.some((t) => t.digest === r.digest));
  const readBack: (() => Promise<unknown>)[] = [];
  for (const l of keptLayers) {
    if (!after.sig?.layers.some((a) => sameDescriptor(a, l))) {
      // Gone (our rewrites keep every layer they read): another writer removed it.
      if (!after.sig?.layers.some((a) => sameSignatureLayer(a, l)))
        report.vanished.push(`.sig layer ${short(l.digest)}`);
      else problems.push(`the .sig layer ${short(l.digest)} changed`);
      continue;
    }
    report.intact++;
    // A payload over the size a signature can have is compared by its descriptor only: the
    // registry's sizes are not trusted to decide how much is read.
    if (Number.isSafeInteger(l.size) && l.size >= 0 && l.size <= MAX_SIGNATURE_BLOB)
      readBack.push(() => client.getBlob(repo, l.digest, l.size));
  }
  for (const d of keptReferrers) {
    if (!after.referrers.some((a) => a.digest === d.digest)) {
      // Our index rewrites keep every entry they read: another writer removed it.
      report.vanished.push(`referrer ${short(d.digest)}`);
      continue;
    }
    report.intact++;
    readBack.push(() => client.getManifest(repo, d.digest));
  }
  // As many reads as the tree itself makes at most, a few at a time.
  await pool(readBack.slice(0, MAX_LAYERS + MAX_REFERRERS), READ_BACK_CONCURRENCY, (read) => read());
  progress('Read back');
  if (problems.length) {
    throw new ManageError(
      'MANAGE_REMOVE_LOST',
      `After removing, the registry does not show what was expected: ${problems.join('; ')}. Reload the tree to see its state.`,
    );
  }
  return report;

  async function withSigLock<T>(fn: () => Promise<T>): Promise<T> {
    const release = await lock(`${repo.registry}/${repo.repository}:${tag}`);
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  /** Rewrites `.sig` without the targets, until two read-backs agree (see the header). */
  async function rewriteSig(): Promise<void> {
    // Done when none of our targets is there; what else is there is others' business (see the header).
    const ok = (layers: Descriptor[]): boolean => !layers.some(isTarget);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await withSigLock(async () => {
        const current = await readTag(client, repo, tag);
        const layers = listOf(current?.json, 'layers');
        if (ok(layers)) return;
        const next = layers.filter((l) => !isTarget(l));
        if (next.length === 0) {
          if (current) {
            try {
              await client.deleteManifest(repo, current.digest);
            } catch (e) {
              throw refused(e, repo, `the ${tag} manifest`, removed);
            }
          }
          report.sigManifest = 'deleted';
          return;
        }
        const { manifest, config } = buildSigManifest(next);
        await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
        await client.putManifest(repo, tag, manifest, MT.ociManifest);
        report.sigManifest = 'rewritten';
      });
      const first = listOf((await readTag(client, repo, tag))?.json, 'layers');
      if (ok(first)) {
        await sleep(settle());
        const second = listOf((await readTag(client, repo, tag))?.json, 'layers');
        if (ok(second)) return;
      }
      await sleep(Math.random() * 100 * attempt);
    }
    throw new ManageError(
      'MANAGE_REMOVE_LOST',
      `Other writers kept rewriting ${tag} and the removal did not stay after ${attempts} attempts; try again.`,
    );
  }

  /** Drops the deleted referrers from the referrers tag schema's index, where there is one. */
  async function updateFallbackIndex(): Promise<void> {
    const indexTag = referrersTag(subject);
    const gone = (d: Descriptor): boolean => referrers.some((t) => t.digest === d.digest);
    const key = `${repo.registry}/${repo.repository}:${indexTag}`;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const release = await lock(key);
      try {
        const current = await readTag(client, repo, indexTag);
        const entries = listOf(current?.json, 'manifests');
        if (!current || !entries.some(gone)) return;
        const rest = entries.filter((d) => !gone(d));
        if (rest.length === 0) {
          try {
            await client.deleteManifest(repo, current.digest);
            report.fallbackIndex = 'deleted';
          } catch (e) {
            if (!(e instanceof RegistryError || e instanceof RelayError)) throw e;
            await client.putManifest(repo, indexTag, buildReferrersIndex([]), MT.ociIndex);
            report.fallbackIndex = 'rewritten';
          }
        } else {
          await client.putManifest(repo, indexTag, buildReferrersIndex(rest), MT.ociIndex);
          report.fallbackIndex = 'rewritten';
        }
      } finally {
        await release();
      }
      const first = listOf((await readTag(client, repo, indexTag))?.json, 'manifests');
      if (!first.some(gone)) {
        await sleep(settle());
        const second = listOf((await readTag(client, repo, indexTag))?.json, 'manifests');
        if (!second.some(gone)) return;
      }
      await sleep(Math.random() * 100 * attempt);
    }
    throw new ManageError(
      'MANAGE_REMOVE_LOST',
      `Other writers kept rewriting ${indexTag} and the referrers index still lists a removed signature after ${attempts} attempts.`,
    );
  }
}

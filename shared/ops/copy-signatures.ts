/**
 * The signature steps of a copy (copy.ts): the legacy `.sig`, `.att` and `.sbom` tags, then the
 * referrers, each manifest by digest, and on a destination without the referrers API the
 * referrers tag schema's index. A `.sig` or `.att` tag, or a fallback index, the destination
 * already has is merged with the source's entries, none twice, through tag-writer.ts (the tag's
 * lock, If-Match, read back twice), never overwritten; an `.sbom` is replaced, as
 * `cosign attach sbom` does.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#referrers-tag-schema
 */
import { ManageError } from '../errors.ts';
import type { Manifest } from '../registry/client.ts';
import type { Descriptor } from '../registry/mediatypes.ts';
import { referrersTag, sameSignatureLayer } from '../cosign/manifests.ts';
import type { AttachmentJob, Plan, ReferrerJob } from './copy-plan.ts';
import { checkAbort, pushManifest, pushUnlessThere, readOptional, short, type CopyRun } from './copy-run.ts';
import {
  addEntries,
  entriesOf,
  referrersIndexList,
  rewriteTag,
  sigList,
  tagKey,
  withTagLock,
  type TagWriteOptions,
} from './tag-writer.ts';

const sameDigest = (x: Descriptor, y: Descriptor): boolean => x.digest === y.digest;

function writeOptions(run: CopyRun): TagWriteOptions {
  return { lock: run.o.lock, ...(run.o.settleDelay ? { settleDelay: run.o.settleDelay } : {}) };
}

/**
 * One legacy tag: skipped when the destination has the same manifest, pushed as it is when the
 * destination has none (or it is an `.sbom`), merged otherwise.
 */
async function copyAttachment(run: CopyRun, a: AttachmentJob): Promise<void> {
  const { client, dst } = run;
  checkAbort(run.o.signal);
  run.report(a.tag);
  run.bytesDone += a.manifest.bytes.length;
  const srcDesc = a.manifest.descriptor;
  const there = await withTagLock(run.o.lock, tagKey(dst, a.tag), async () => {
    const found = await readOptional(client, dst, a.tag);
    if (found?.descriptor.digest === srcDesc.digest) {
      run.record({ kind: 'attachment', digest: srcDesc.digest, size: srcDesc.size, outcome: 'skipped', what: a.tag });
      return null;
    }
    if (!found || a.suffix === 'sbom') {
      // cosign attach sbom replaces the SBOM; .sig and .att are appended to, below.
      await client.putManifest(dst, a.tag, a.manifest.bytes, srcDesc.mediaType);
      run.record({ kind: 'attachment', digest: srcDesc.digest, size: srcDesc.size, outcome: 'copied', what: a.tag });
      return null;
    }
    return found;
  });
  if (there) await mergeAttachment(run, a, there);
}

/** Appends the source's layers to the destination's tag as signing appends (tag-writer.ts). */
async function mergeAttachment(run: CopyRun, a: AttachmentJob, there: Manifest): Promise<void> {
  const before = entriesOf(there.json, 'layers');
  const ours = entriesOf(a.manifest.json, 'layers');
  const adding = ours.filter((l) => !before.some((b) => sameSignatureLayer(b, l))).length;
  const list = sigList(run.client, run.dst, a.tag);
  const { written } = await rewriteTag(list, addEntries(ours, sameSignatureLayer), writeOptions(run));
  run.record(
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

/**
 * Copies the `.sig`, `.att` and `.sbom` tags of the plan.
 * @throws SignatureError SIGNATURE_WRITE_LOST when other writers kept overwriting a merged tag;
 *   RegistryError and RelayError from the registry; the signal's reason.
 */
export async function copyAttachments(run: CopyRun, p: Plan): Promise<void> {
  for (const a of p.attachments) await copyAttachment(run, a);
}

/** One referrer manifest (after the manifests a referrer index lists), by digest. */
async function copyReferrer(run: CopyRun, subject: string, r: ReferrerJob): Promise<void> {
  for (const c of r.children) await pushManifest(run, c, `referrer part`, 'referrer');
  checkAbort(run.o.signal);
  const d = r.manifest.descriptor;
  const what = `referrer ${short(d.digest)} of ${short(subject)}`;
  const outcome = await pushUnlessThere(run, r.manifest, true);
  run.record({ kind: 'referrer', digest: d.digest, size: d.size, outcome, what });
  run.bytesDone += d.size;
  run.report(what);
}

/** Merges a subject's copied referrers into the destination's fallback index. */
async function mergeFallbackIndex(run: CopyRun, subject: string, jobs: ReferrerJob[]): Promise<void> {
  const { client, dst } = run;
  const fallbackTag = referrersTag(subject);
  const ours = jobs.map((j) => ({
    ...j.descriptor,
    mediaType: j.manifest.descriptor.mediaType,
    size: j.manifest.descriptor.size,
  }));
  const there = await readOptional(client, dst, fallbackTag);
  const missing = ours.filter((j) => !entriesOf(there?.json ?? null, 'manifests').some((e) => e.digest === j.digest));
  const written =
    missing.length === 0
      ? null
      : (
          await rewriteTag(
            referrersIndexList(client, dst, fallbackTag),
            addEntries(ours, sameDigest),
            writeOptions(run),
          )
        ).written;
  if (!written) {
    const now = there ?? (await client.getManifest(dst, fallbackTag));
    const { digest, size } = now.descriptor;
    run.record({ kind: 'referrers-index', digest, size, outcome: 'skipped', what: fallbackTag });
    return;
  }
  run.record({
    kind: 'referrers-index',
    ...written,
    outcome: there ? 'merged' : 'copied',
    what: `${fallbackTag} (${missing.length} entr${missing.length === 1 ? 'y' : 'ies'} added)`,
  });
}

/**
 * Makes the destination list a subject's copied referrers: a registry with the referrers API must
 * list them itself; without it, they are merged into the fallback index.
 * @throws ManageError MANAGE_COPY_INCOMPLETE when the API does not list one.
 */
async function listReferrers(run: CopyRun, subject: string, jobs: ReferrerJob[]): Promise<void> {
  const { dst } = run;
  const onDest = await run.client.referrers(dst, subject);
  if (run.destVia !== 'api') run.destVia = onDest.via;
  if (onDest.via !== 'api') return mergeFallbackIndex(run, subject, jobs);
  const absent = jobs.filter((j) => !onDest.descriptors.some((x) => x.digest === j.manifest.descriptor.digest));
  if (absent.length > 0) {
    throw new ManageError(
      'MANAGE_COPY_INCOMPLETE',
      `${dst.registry} does not list ${absent.length} copied referrer${absent.length === 1 ? '' : 's'} of ${short(subject)}.`,
    );
  }
}

/**
 * Copies the referrers of the plan, subject by subject, each followed by its listing.
 * @throws ManageError MANAGE_COPY_INCOMPLETE; SignatureError SIGNATURE_WRITE_LOST (the fallback
 *   index); RegistryError and RelayError from the registry; the signal's reason.
 */
export async function copyReferrers(run: CopyRun, p: Plan): Promise<void> {
  const bySubject = new Map<string, ReferrerJob[]>();
  for (const r of p.referrers) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r]);
  for (const [subject, jobs] of bySubject) {
    for (const r of jobs) await copyReferrer(run, subject, r);
    await listReferrers(run, subject, jobs);
  }
}

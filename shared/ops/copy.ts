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
 *
 * The steps, in their order: plan (copy-plan.ts, reads the source and bounds it), blobs
 * (copy-blobs.ts), manifests, the legacy tags and the referrers (copy-signatures.ts), the tag,
 * then the verification; what they share is in copy-run.ts.
 */
import { ManageError, CosignWebError } from '../errors.ts';
import type { RepoRef } from '../registry/client.ts';
import {
  formatReference,
  manifestReference,
  parseReference,
  repositoryName,
  type ImageReference,
} from '../registry/reference.ts';
import { describeIdentityRule, type IdentityRule } from '../cosign/identity.ts';
import { verifyImage, type VerificationResult } from './verify.ts';
import { plan, type Plan } from './copy-plan.ts';
import { copyBlobs } from './copy-blobs.ts';
import { copyAttachments, copyReferrers } from './copy-signatures.ts';
import {
  checkAbort,
  isNotFound,
  pushManifest,
  short,
  startRun,
  type CopiedItem,
  type CopyOptions,
  type CopyResult,
  type CopyRun,
  type CopyStep,
  type CopyVerification,
} from './copy-run.ts';

export { MAX_COPY_BLOBS, MAX_COPY_MANIFEST_BYTES } from './copy-plan.ts';
export type { CopiedItem, CopyOutcome, CopyProgress, CopyResult } from './copy-run.ts';

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

/** Platform manifests, then the index (or the image), by digest, byte for byte. */
async function copyManifests(run: CopyRun, p: Plan): Promise<void> {
  for (const c of p.children) await pushManifest(run, c.manifest, `manifest of ${c.platform}`, 'manifest');
  await pushManifest(run, p.root, p.children.length ? 'index' : 'image manifest', 'manifest');
}

/** Points the destination's tag at the copy, unless it does already. */
async function moveTag(run: CopyRun, p: Plan, tag: string): Promise<void> {
  const { client, dst } = run;
  const digest = p.root.descriptor.digest;
  checkAbort(run.o.signal);
  run.report(`tag ${tag}`);
  let current: string | null = null;
  try {
    current = (await client.resolve(dst, tag)).digest;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (current === digest) {
    run.record({ kind: 'tag', digest, size: p.root.bytes.length, outcome: 'skipped', what: `tag ${tag}` });
  } else {
    await client.putManifest(dst, tag, p.root.bytes, p.root.descriptor.mediaType);
    run.record({ kind: 'tag', digest, size: p.root.bytes.length, outcome: 'copied', what: `tag ${tag}` });
  }
}

/**
 * Every write of a copy, in order; the tag last, so it points at the copy only once everything
 * else is there.
 * @throws ManageError MANAGE_COPY_INCOMPLETE when a write failed after something was written;
 *   what the first write threw when nothing was; the signal's reason when it aborts.
 */
async function writeCopy(run: CopyRun, p: Plan, tag: string | null): Promise<void> {
  try {
    // 1. Blobs: image layers and configs, and the blobs of signatures, attestations and referrers.
    run.step = 'blobs';
    await copyBlobs(run, p);
    // 2. Manifests, byte for byte: platform manifests, then the index (or the image), by digest.
    run.step = 'manifests';
    await copyManifests(run, p);
    // 3. Legacy attachments (.sig, .att, .sbom): copied as they are, or merged into the destination's.
    run.step = 'signatures';
    await copyAttachments(run, p);
    // 4. Referrers: each manifest by digest, then the fallback index where the destination needs one.
    run.step = 'referrers';
    await copyReferrers(run, p);
    // 5. The tag, last: it points at the copy only once everything above is there.
    run.step = 'tag';
    if (tag) await moveTag(run, p, tag);
  } catch (e) {
    const { signal } = run.o;
    if (signal?.aborted && e === signal.reason) throw e;
    // Nothing on the destination yet (e.g. refused credentials): the registry's own words say it best.
    if (run.items.length === 0) throw e;
    throw incomplete(e, p, run.items, run.step, run.dst, tag);
  }
}

/**
 * Copies an image with its signatures, attestations and referrers, then (with `verify`) checks
 * the copy with the key.
 * @throws ManageError MANAGE_SAME_IMAGE, MANAGE_COPY_DESTINATION_INVALID, MANAGE_TOO_MANY before
 *   anything is written; MANAGE_COPY_INCOMPLETE when a write failed part-way (the message says
 *   what is on the destination; running the copy again resumes); RegistryError and RelayError
 *   when the source cannot be read; the signal's reason when it aborts.
 */
export async function copyImage(o: CopyOptions): Promise<CopyResult> {
  const sourceRef = parseReference(o.source);
  const { ref: destRef, tag } = destinationOf(sourceRef, o.destination);
  const src: RepoRef = { registry: sourceRef.registry, repository: sourceRef.repository };
  const dst: RepoRef = { registry: destRef.registry, repository: destRef.repository };
  const run = startRun(o, src, dst);

  run.report(`Reading ${formatReference(sourceRef)}`);
  const p = await plan(o, src, manifestReference(sourceRef), run.report);
  run.bytesTotal = p.bytesTotal;
  const digest = p.root.descriptor.digest;
  await writeCopy(run, p, tag);

  const result: CopyResult = {
    source: formatReference(sourceRef),
    destination: formatReference(destRef),
    tag,
    digest,
    mediaType: p.root.descriptor.mediaType,
    platforms: p.children.map((c) => c.platform),
    items: run.items,
    summary: run.summary,
    referrers: { source: p.referrersVia, destination: run.destVia },
    verification: null,
  };
  if (o.verify) {
    run.step = 'verifying';
    run.report('Verifying the copy');
    result.verification = await verifyCopy(o, sourceRef, destRef, digest, o.verify);
  }
  run.step = 'done';
  run.bytesDone = run.bytesTotal;
  run.report('Copied');
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

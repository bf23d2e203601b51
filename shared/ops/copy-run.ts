/**
 * What every step of a copy (copy.ts) shares: the options and results it speaks in, and the run
 * itself — where it copies from and to, the bytes done, the step it is at, what it wrote so far
 * and the progress report — with the pieces more than one step uses (pushing a manifest by
 * digest, looking one up on the destination).
 */
import { RegistryError } from '../errors.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import type { IdentityRule } from '../cosign/identity.ts';
import type { TagLock } from './tag-writer.ts';
import type { VerificationResult } from './verify.ts';

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
  /**
   * Let the relay stream blobs from registry to registry when the client has its blob transfer
   * (RegistryClientOptions.transfer); default true. False: every byte goes through this client.
   */
  relayTransfer?: boolean;
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

/** One copy as it runs. */
export interface CopyRun {
  o: CopyOptions;
  client: RegistryClient;
  src: RepoRef;
  dst: RepoRef;
  step: CopyStep;
  bytesDone: number;
  bytesTotal: number;
  /** What was written or found on the destination, in order. */
  items: CopiedItem[];
  summary: CopyResult['summary'];
  /** How the destination lists referrers, once a referrer was pushed or looked up. */
  destVia: 'api' | 'tag-schema' | null;
  /** Reports progress on `item` (with the run's bytes and step). */
  report(item: string): void;
  /** Adds an item to the result and its count to the summary. */
  record(item: CopiedItem): void;
}

function emptyCounts(): Record<CopyOutcome, number> {
  return { copied: 0, mounted: 0, skipped: 0, merged: 0 };
}

/** A copy from `src` to `dst` that has done nothing yet. */
export function startRun(o: CopyOptions, src: RepoRef, dst: RepoRef): CopyRun {
  const run: CopyRun = {
    o,
    client: o.client,
    src,
    dst,
    step: 'planning',
    bytesDone: 0,
    bytesTotal: 0,
    items: [],
    summary: {
      blobs: emptyCounts(),
      manifests: emptyCounts(),
      signatures: emptyCounts(),
      bytesCopied: 0,
      bytesMounted: 0,
      bytesSkipped: 0,
    },
    destVia: null,
    report: (item) => o.onProgress?.({ bytesDone: run.bytesDone, bytesTotal: run.bytesTotal, step: run.step, item }),
    record: (item) => {
      run.items.push(item);
      const { summary } = run;
      const group =
        item.kind === 'blob'
          ? summary.blobs
          : item.kind === 'manifest' || item.kind === 'tag'
            ? summary.manifests
            : summary.signatures;
      group[item.outcome]++;
    },
  };
  return run;
}

export function short(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

/** @throws the signal's reason when it has aborted. */
export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new Error('aborted');
}

export function isNotFound(e: unknown): boolean {
  return e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND';
}

/** The manifest at `reference`, or null when there is none. @throws RegistryError but REGISTRY_NOT_FOUND */
export async function readOptional(client: RegistryClient, repo: RepoRef, reference: string): Promise<Manifest | null> {
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

/**
 * Pushes a manifest to the destination by digest, byte for byte, unless it is there already.
 * @throws RegistryError and RelayError from the registry; the signal's reason.
 */
export async function pushManifest(run: CopyRun, m: Manifest, what: string, kind: CopiedItem['kind']): Promise<void> {
  checkAbort(run.o.signal);
  const d = m.descriptor;
  run.report(`${what} ${short(d.digest)}`);
  run.record({ kind, digest: d.digest, size: d.size, outcome: await pushUnlessThere(run, m), what });
  run.bytesDone += d.size;
  run.report(`${what} ${short(d.digest)}`);
}

/**
 * Pushes a manifest by digest unless the destination has it; a referrer through pushReferrer,
 * which tells whether the destination has the referrers API.
 */
export async function pushUnlessThere(run: CopyRun, m: Manifest, asReferrer = false): Promise<'copied' | 'skipped'> {
  const d = m.descriptor;
  if (await manifestExists(run.client, run.dst, d.digest)) return 'skipped';
  if (asReferrer) {
    const pushed = await run.client.pushReferrer(run.dst, m.bytes, d.mediaType);
    if (pushed.subjectProcessed) run.destVia = 'api';
  } else {
    await run.client.putManifest(run.dst, d.digest, m.bytes, d.mediaType);
  }
  return 'copied';
}

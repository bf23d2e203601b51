/**
 * Garbage collection of the embedded registry: removes the blob files no manifest names, and the
 * repositories' links to them (storage.ts). Mark and sweep, as distribution's `garbage-collect`:
 * every manifest of every repository marks itself and every digest it names (config, layers, an
 * index's manifests, subject, blobs); a blob is removed only when unmarked and not written or
 * mounted within the grace period, so a push whose manifest has not arrived yet keeps its blobs.
 * While it runs, the writes that check blobs and then name them (manifest PUT, mount) wait for it
 * (gate.ts), so a manifest never names a blob removed under it.
 * https://github.com/distribution/distribution/blob/main/docs/content/about/garbage-collection.md
 */
import type { Storage } from './storage.ts';
import { namedDigests } from './manifest-check.ts';

/** What a collection freed. */
export interface GcResult {
  /** Blob files removed, and their bytes. */
  blobs: number;
  bytes: number;
  /** Blob files kept because a manifest names them. */
  kept: number;
}

/** The default grace period: blobs written or mounted within it are kept even when unnamed. */
export const GC_GRACE_MS = 60 * 60 * 1000;

/** Every digest some manifest of some repository names, the manifests themselves included. */
async function mark(storage: Storage): Promise<Set<string>> {
  const marked = new Set<string>();
  for (const name of await storage.repositories()) {
    for (const link of await storage.manifestLinks(name)) {
      marked.add(link.digest);
      if (link.subject !== undefined) marked.add(link.subject);
      const bytes = await storage.readBlob(link.digest).catch(() => undefined);
      if (bytes !== undefined) for (const d of namedDigests(bytes)) marked.add(d);
    }
  }
  return marked;
}

/**
 * Removes every blob file that no manifest names and that is older than `graceMs`, and the links
 * of every repository to blobs no longer stored (their bytes leave the quota's count).
 * Never removes a blob a manifest names. @throws on a file-system error
 */
export async function collectGarbage(storage: Storage, graceMs = GC_GRACE_MS, now = Date.now()): Promise<GcResult> {
  const marked = await mark(storage);
  const result: GcResult = { blobs: 0, bytes: 0, kept: 0 };
  for (const hex of await storage.blobHexes()) {
    const digest = `sha256:${hex}`;
    if (marked.has(digest)) {
      result.kept++;
      continue;
    }
    const time = await storage.blobTime(digest);
    if (time === undefined || now - time < graceMs) continue;
    result.bytes += await storage.deleteBlobFile(digest);
    result.blobs++;
  }
  for (const name of await storage.repositories()) {
    for (const digest of await storage.linkedBlobs(name)) {
      if ((await storage.blobSize(digest)) === undefined) await storage.unlinkBlob(name, digest);
    }
  }
  return result;
}

/** One line saying what a collection freed. */
export function describeGc(r: GcResult): string {
  const mib = (r.bytes / (1024 * 1024)).toFixed(1);
  return `gc: freed ${r.blobs} blob${r.blobs === 1 ? '' : 's'} (${r.bytes} bytes, ${mib} MiB); kept ${r.kept} named by manifests`;
}

/**
 * Links every blob a repository's manifests name to that repository: once, for a folder written
 * before repositories kept their own links (the `layout` marker says it was done).
 */
export async function linkNamedBlobs(storage: Storage): Promise<void> {
  if ((await storage.marker('layout')) === '2') return;
  for (const name of await storage.repositories()) {
    for (const link of await storage.manifestLinks(name)) {
      const bytes = await storage.readBlob(link.digest).catch(() => undefined);
      for (const d of [link.digest, ...(bytes ? namedDigests(bytes) : [])]) {
        if (/^sha256:[0-9a-f]{64}$/.test(d) && (await storage.blobSize(d)) !== undefined)
          await storage.linkBlob(name, d);
      }
    }
  }
  await storage.setMarker('layout', '2');
}

/**
 * On-disk storage of the embedded registry: content-addressed blobs (`blobs/sha256/<hex>`, shared by
 * every repository), per repository the manifests it holds and its tags, and upload sessions.
 * Every file that is visible under its final name was written whole to `tmp/`, fsync'd and renamed
 * (atomic on one filesystem), and every blob was checked against its digest before the rename, so a
 * crash leaves either nothing or a complete, correct object. Upload sessions live in `uploads/` and
 * in memory; both are dropped on restart.
 * Limits, known: the folder is not fsync'd after a rename, so this is safe against a process crash,
 * not a power cut; blobs are shared, so deleting one removes it for every repository that used it;
 * an abandoned upload session lasts until the next restart.
 * Layout follows the idea of https://github.com/opencontainers/image-spec/blob/main/image-layout.md;
 * the protocol is https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DistributionError } from './errors.ts';

/** What is kept about a manifest in a repository, beside its bytes (a blob). */
export interface ManifestLink {
  mediaType: string;
  digest: string;
  size: number;
  /** For the referrers API. */
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** An upload session: the bytes so far in `uploads/<id>` and their running hash. */
export interface UploadSession {
  id: string;
  name: string;
  path: string;
  offset: number;
  hash: Hash;
  /** Serialises the requests of one session. */
  queue: Promise<unknown>;
}

const HEX_RE = /^[0-9a-f]{64}$/;

function hexOf(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  if (!digest.startsWith('sha256:') || !HEX_RE.test(hex)) {
    throw new DistributionError('DIGEST_INVALID', 400, `"${digest}" is not a sha256 digest this registry stores.`);
  }
  return hex;
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

export class Storage {
  readonly #root: string;
  readonly #tmp: string;
  readonly #uploads: string;
  readonly #sessions = new Map<string, UploadSession>();

  constructor(root: string) {
    this.#root = root;
    this.#tmp = join(root, 'tmp');
    this.#uploads = join(root, 'uploads');
  }

  /** Creates the folders and drops what a previous run left half done (temp files, sessions). */
  async open(): Promise<void> {
    await rm(this.#tmp, { recursive: true, force: true });
    await rm(this.#uploads, { recursive: true, force: true });
    await Promise.all([
      mkdir(this.#tmp, { recursive: true }),
      mkdir(this.#uploads, { recursive: true }),
      mkdir(join(this.#root, 'blobs', 'sha256'), { recursive: true }),
      mkdir(join(this.#root, 'repositories'), { recursive: true }),
    ]);
  }

  blobPath(digest: string): string {
    return join(this.#root, 'blobs', 'sha256', hexOf(digest));
  }

  /** Repository names hold slashes and may nest in each other: one folder per name, by hash. */
  #repoDir(name: string): string {
    return join(this.#root, 'repositories', createHash('sha256').update(name).digest('hex'));
  }

  async blobSize(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  readBlobStream(digest: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.blobPath(digest), range);
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  async deleteBlob(digest: string): Promise<boolean> {
    try {
      await unlink(this.blobPath(digest));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Writes small bytes under `path` atomically (temp file, fsync, rename). */
  async #writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
    const tmp = join(this.#tmp, randomUUID());
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await mkdir(join(path, '..'), { recursive: true });
    await rename(tmp, path);
  }

  /** Stores bytes whose digest was computed here (manifests). */
  async putBlobBytes(bytes: Uint8Array): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await this.#writeAtomic(this.blobPath(digest), bytes);
    return digest;
  }

  /**
   * Streams a body into a temp file while hashing it, checks the digest and size, and renames it
   * into place. @throws DistributionError DIGEST_INVALID, SIZE_INVALID
   */
  async putBlobStream(
    body: ReadableStream<Uint8Array> | null,
    digest: string,
    limits: { max: number; declared?: number },
  ): Promise<number> {
    const target = this.blobPath(digest);
    const tmp = join(this.#tmp, randomUUID());
    const hash = createHash('sha256');
    const fh = await open(tmp, 'wx');
    let size: number;
    try {
      try {
        size = await appendBody(body, fh, hash, 0, limits.max);
        await fh.sync();
      } finally {
        await fh.close();
      }
      checkDeclared(size, limits.declared);
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) {
        throw new DistributionError('DIGEST_INVALID', 400, `The blob's content has digest ${got}, not ${digest}.`, {
          expected: digest,
          got,
        });
      }
      await rename(tmp, target);
      return size;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async startUpload(name: string): Promise<UploadSession> {
    const id = randomUUID();
    const path = join(this.#uploads, id);
    await (await open(path, 'wx')).close();
    const s: UploadSession = { id, name, path, offset: 0, hash: createHash('sha256'), queue: Promise.resolve() };
    this.#sessions.set(id, s);
    return s;
  }

  session(name: string, id: string): UploadSession {
    const s = this.#sessions.get(id);
    if (s === undefined || s.name !== name) {
      throw new DistributionError('BLOB_UPLOAD_UNKNOWN', 404, `No upload ${id} is in progress in ${name}.`);
    }
    return s;
  }

  /** Runs `fn` after every earlier request of the same session has finished. */
  serialised<T>(s: UploadSession, fn: () => Promise<T>): Promise<T> {
    const next = s.queue.then(fn, fn);
    s.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Appends a chunk to a session; on any failure the session is rolled back to where it was.
   * @throws DistributionError SIZE_INVALID
   */
  async appendChunk(
    s: UploadSession,
    body: ReadableStream<Uint8Array> | null,
    limits: { max: number; declared?: number },
  ): Promise<void> {
    const saved = s.hash.copy();
    const start = s.offset;
    const fh = await open(s.path, 'r+');
    try {
      const n = await appendBody(body, fh, s.hash, start, limits.max);
      checkDeclared(n, limits.declared);
      await fh.sync();
      s.offset = start + n;
    } catch (e) {
      s.hash = saved;
      await fh.truncate(start);
      throw e;
    } finally {
      await fh.close();
    }
  }

  /** Checks the session's digest and moves it into place. @throws DistributionError DIGEST_INVALID */
  async finishUpload(s: UploadSession, digest: string): Promise<void> {
    const target = this.blobPath(digest);
    const got = `sha256:${s.hash.copy().digest('hex')}`;
    if (got !== digest) {
      throw new DistributionError('DIGEST_INVALID', 400, `The uploaded content has digest ${got}, not ${digest}.`, {
        expected: digest,
        got,
      });
    }
    this.#sessions.delete(s.id);
    await rename(s.path, target);
  }

  async cancelUpload(s: UploadSession): Promise<void> {
    this.#sessions.delete(s.id);
    await rm(s.path, { force: true });
  }

  /** Ends every session (the registry is closing); their files are removed on the next open(). */
  dropSessions(): void {
    this.#sessions.clear();
  }

  // --- manifests and tags -------------------------------------------------------------------

  async putManifestLink(name: string, link: ManifestLink): Promise<void> {
    const dir = this.#repoDir(name);
    await this.#writeAtomic(join(dir, 'name'), name);
    await this.#writeAtomic(join(dir, 'manifests', hexOf(link.digest)), JSON.stringify(link));
  }

  async manifestLink(name: string, digest: string): Promise<ManifestLink | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#repoDir(name), 'manifests', hexOf(digest)), 'utf8')) as ManifestLink;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async manifestLinks(name: string): Promise<ManifestLink[]> {
    const dir = join(this.#repoDir(name), 'manifests');
    let files: string[];
    try {
      files = await readdir(dir);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
    const links: ManifestLink[] = [];
    for (const f of files.sort()) {
      if (!HEX_RE.test(f)) continue;
      const link = await this.manifestLink(name, `sha256:${f}`);
      if (link !== undefined) links.push(link);
    }
    return links;
  }

  async deleteManifestLink(name: string, digest: string): Promise<boolean> {
    try {
      await unlink(join(this.#repoDir(name), 'manifests', hexOf(digest)));
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
    for (const tag of (await this.tags(name)) ?? []) {
      if ((await this.tag(name, tag)) === digest) await this.deleteTag(name, tag);
    }
    return true;
  }

  async putTag(name: string, tag: string, digest: string): Promise<void> {
    await this.#writeAtomic(join(this.#repoDir(name), 'tags', tag), digest);
  }

  async tag(name: string, tag: string): Promise<string | undefined> {
    try {
      return await readFile(join(this.#repoDir(name), 'tags', tag), 'utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async deleteTag(name: string, tag: string): Promise<boolean> {
    try {
      await unlink(join(this.#repoDir(name), 'tags', tag));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** The repository's tags, sorted; undefined when the repository is unknown. */
  async tags(name: string): Promise<string[] | undefined> {
    const dir = this.#repoDir(name);
    try {
      await stat(join(dir, 'name'));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    try {
      return (await readdir(join(dir, 'tags'))).sort();
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }
}

function checkDeclared(size: number, declared: number | undefined): void {
  if (declared !== undefined && declared !== size) {
    throw new DistributionError(
      'SIZE_INVALID',
      400,
      `The request declared ${declared} bytes (Content-Length) but ${size} arrived.`,
    );
  }
}

/**
 * Writes a request body at `position` of an open file, hashing it, never holding more than one
 * chunk. @returns the number of bytes written. @throws DistributionError SIZE_INVALID over `max`
 * (counting `position`).
 */
async function appendBody(
  body: ReadableStream<Uint8Array> | null,
  fh: FileHandle,
  hash: Hash,
  position: number,
  max: number,
): Promise<number> {
  if (body === null) return 0;
  const reader = body.getReader();
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (position + n + value.length > max) {
        throw new DistributionError(
          'SIZE_INVALID',
          413,
          `The blob is larger than this registry's limit of ${max} bytes.`,
        );
      }
      let off = 0;
      while (off < value.length) {
        const { bytesWritten } = await fh.write(value, off, value.length - off, position + n + off);
        off += bytesWritten;
      }
      hash.update(value);
      n += value.length;
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
  return n;
}

/**
 * On-disk storage of the embedded registry: content-addressed blobs (`blobs/sha256/<hex>`, shared by
 * every repository), per repository the manifests it holds and its tags, and upload sessions.
 * Every file that is visible under its final name was written whole to `tmp/`, fsync'd and renamed
 * (atomic on one filesystem), and every blob was checked against its digest before the rename, so a
 * crash leaves either nothing or a complete, correct object. Upload sessions live in `uploads/` and
 * in memory; both are dropped on restart.
 * A blob file is shared by every repository, but a repository sees only the blobs linked to it
 * (`repositories/<hash>/blobs/<hex>`: pushed or mounted there, or named by a manifest pushed
 * there), as distribution does; deleting a blob through a repository removes that link, and gc.ts
 * removes the files no manifest names. The bytes stored (blobs and upload sessions) are counted
 * against a quota (`maxBytes`); upload sessions are capped in number and dropped when idle.
 * Limits, known: the folder is not fsync'd after a rename, so this is safe against a process crash,
 * not a power cut; the byte count is kept in memory, recounted from disk at open and moved by every
 * write and delete after that.
 * Layout follows the idea of https://github.com/opencontainers/image-spec/blob/main/image-layout.md;
 * the protocol is https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, type FileHandle, readdir, readFile, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
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
  /** Requests of this session running now, and when the last one ended (ms since the epoch). */
  active: number;
  idleSince: number;
}

/** The limits Storage enforces. */
export interface StorageLimits {
  /** Bytes of blobs and upload sessions together (REGISTRY_MAX_BYTES); Infinity for none. */
  maxBytes: number;
  /** Upload sessions open at once, in all and per repository. */
  maxSessions: number;
  maxSessionsPerRepository: number;
  /** A session with no request for this long is dropped, its bytes with it. */
  sessionIdleMs: number;
}

const DEFAULT_STORAGE_LIMITS: StorageLimits = {
  maxBytes: Infinity,
  maxSessions: 128,
  maxSessionsPerRepository: 32,
  sessionIdleMs: 10 * 60 * 1000,
};

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
  /**
   * Each repository's manifest links as last read, until a link is put or deleted there: the
   * referrers API reads them all per request, and an index's platforms would read them all again
   * for each platform (quadratic in the repository's manifests).
   */
  readonly #links = new Map<string, Promise<ManifestLink[]>>();
  /** Each repository's sorted tags as last read, until a tag or manifest is put or deleted there (each tag page reads them). */
  readonly #tagLists = new Map<string, Promise<string[] | undefined>>();
  readonly limits: StorageLimits;
  /** Bytes of blob files and upload sessions, and of bodies being written now. */
  #used = 0;

  constructor(root: string, limits: Partial<StorageLimits> = {}) {
    this.#root = root;
    this.#tmp = join(root, 'tmp');
    this.#uploads = join(root, 'uploads');
    this.limits = { ...DEFAULT_STORAGE_LIMITS, ...limits };
  }

  /**
   * Counts `n` more bytes against the quota (negative: frees them).
   * @throws DistributionError DENIED (507) when they do not fit; nothing is counted then
   */
  reserve(n: number): void {
    const { maxBytes } = this.limits;
    if (n > 0 && this.#used + n > maxBytes) {
      throw new DistributionError(
        'DENIED',
        507,
        `This registry's disk quota (REGISTRY_MAX_BYTES, ${maxBytes} bytes) is used up: ${this.#used} bytes are stored, so the upload was refused. Delete images and run gc to free space.`,
        { maxBytes, used: this.#used },
      );
    }
    this.#used = Math.max(0, this.#used + n);
  }

  /** Recounts the bytes of the blob files on disk (sessions in progress added). */
  async #recount(): Promise<void> {
    let total = 0;
    for (const hex of await this.blobHexes()) total += (await this.blobSize(`sha256:${hex}`)) ?? 0;
    for (const s of this.#sessions.values()) total += s.offset;
    this.#used = total;
  }

  /**
   * The pid of the live process serving this folder (`server.pid`), if another one is.
   * A pid file left by a process that is gone does not count.
   */
  async holder(): Promise<number | undefined> {
    let pid: number;
    try {
      pid = Number(await readFile(join(this.#root, 'server.pid'), 'utf8'));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  /** Marks the folder as served by this process (`server.pid`), or no longer (`false`). */
  async hold(held: boolean): Promise<void> {
    if (held) await this.#writeAtomic(join(this.#root, 'server.pid'), String(process.pid));
    else await rm(join(this.#root, 'server.pid'), { force: true });
  }

  /** A small marker file at the root (`layout`): its text, or undefined. */
  async marker(file: 'layout'): Promise<string | undefined> {
    try {
      return await readFile(join(this.#root, file), 'utf8');
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async setMarker(file: 'layout', text: string): Promise<void> {
    await this.#writeAtomic(join(this.#root, file), text);
  }

  /** The hex digests of every blob file. */
  async blobHexes(): Promise<string[]> {
    return (await readdir(join(this.#root, 'blobs', 'sha256'))).filter((f) => HEX_RE.test(f));
  }

  /** The names of every repository that ever held something. */
  async repositories(): Promise<string[]> {
    const names: string[] = [];
    for (const dir of await readdir(join(this.#root, 'repositories'))) {
      try {
        names.push(await readFile(join(this.#root, 'repositories', dir, 'name'), 'utf8'));
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
    return names;
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
    await this.#recount();
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

  /** Removes a blob file (gc.ts; repositories forget blobs with unlinkBlob). @returns the bytes freed */
  async deleteBlobFile(digest: string): Promise<number> {
    const size = await this.blobSize(digest);
    if (size === undefined) return 0;
    try {
      await unlink(this.blobPath(digest));
    } catch (e) {
      if (isNotFound(e)) return 0;
      throw e;
    }
    this.#used = Math.max(0, this.#used - size);
    return size;
  }

  /** When a blob file was last written or mounted (ms since the epoch); undefined when absent. */
  async blobTime(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).mtimeMs;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  // --- which repository sees which blob -------------------------------------------------------

  #blobLink(name: string, digest: string): string {
    return join(this.#repoDir(name), 'blobs', hexOf(digest));
  }

  /**
   * Records the repository's name in its folder (the folder is named by a hash) the first time
   * something is stored there; every later write would only fsync the same bytes again.
   */
  async #nameRepository(dir: string, name: string): Promise<void> {
    try {
      await stat(join(dir, 'name'));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await this.#writeAtomic(join(dir, 'name'), name);
    }
  }

  /** Makes a blob visible in a repository, and fresh again for gc's grace period. */
  async linkBlob(name: string, digest: string): Promise<void> {
    const dir = this.#repoDir(name);
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await this.#nameRepository(dir, name);
    await (await open(this.#blobLink(name, digest), 'w')).close();
    const now = new Date();
    await utimes(this.blobPath(digest), now, now).catch((e: unknown) => {
      if (!isNotFound(e)) throw e;
    });
  }

  /** @returns whether the repository had the link */
  async unlinkBlob(name: string, digest: string): Promise<boolean> {
    try {
      await unlink(this.#blobLink(name, digest));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** The digests of the blobs linked to a repository. */
  async linkedBlobs(name: string): Promise<string[]> {
    try {
      return (await readdir(join(this.#repoDir(name), 'blobs')))
        .filter((f) => HEX_RE.test(f))
        .map((f) => `sha256:${f}`);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
  }

  /** The size of a blob as this repository sees it: undefined unless stored and linked to it. */
  async repoBlobSize(name: string, digest: string): Promise<number | undefined> {
    try {
      await stat(this.#blobLink(name, digest));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
    return this.blobSize(digest);
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

  /** Stores bytes whose digest was computed here (manifests). @throws DistributionError DENIED (quota) */
  async putBlobBytes(bytes: Uint8Array): Promise<string> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const had = await this.blobSize(digest);
    if (had !== undefined) {
      const now = new Date();
      await utimes(this.blobPath(digest), now, now);
      return digest;
    }
    this.reserve(bytes.length);
    try {
      await this.#writeAtomic(this.blobPath(digest), bytes);
    } catch (e) {
      this.reserve(-bytes.length);
      throw e;
    }
    return digest;
  }

  /** Renames a checked temp file (its bytes already counted) to its blob path. */
  async #commitBlob(tmp: string, digest: string): Promise<void> {
    const had = await this.blobSize(digest);
    await rename(tmp, this.blobPath(digest));
    // The same bytes were stored already: they are counted once.
    if (had !== undefined) this.reserve(-had);
  }

  /**
   * Streams a body into a temp file while hashing it, checks the digest and size, and renames it
   * into place. @throws DistributionError DIGEST_INVALID, SIZE_INVALID, DENIED (quota)
   */
  async putBlobStream(
    body: ReadableStream<Uint8Array> | null,
    digest: string,
    limits: { max: number; declared?: number },
  ): Promise<number> {
    const tmp = join(this.#tmp, randomUUID());
    const hash = createHash('sha256');
    const fh = await open(tmp, 'wx');
    let counted = 0;
    let size: number;
    try {
      try {
        size = await appendBody(body, fh, hash, 0, limits.max, (n) => {
          this.reserve(n);
          counted += n;
        });
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
      await this.#commitBlob(tmp, digest);
      return size;
    } catch (e) {
      this.reserve(-counted);
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Opens an upload session, after dropping the idle ones.
   * @throws DistributionError TOO_MANY_REQUESTS (429) when the registry or the repository has as
   *   many sessions open as it takes
   */
  async startUpload(name: string): Promise<UploadSession> {
    await this.expireSessions();
    const { maxSessions, maxSessionsPerRepository, sessionIdleMs } = this.limits;
    const inRepo = [...this.#sessions.values()].filter((x) => x.name === name).length;
    if (this.#sessions.size >= maxSessions || inRepo >= maxSessionsPerRepository) {
      const which =
        inRepo >= maxSessionsPerRepository ? `${name} has ${inRepo}` : `the registry has ${this.#sessions.size}`;
      throw new DistributionError(
        'TOO_MANY_REQUESTS',
        429,
        `Too many uploads are in progress (${which} open; at most ${maxSessions} in all and ${maxSessionsPerRepository} per repository): finish or cancel some, or wait ${Math.ceil(sessionIdleMs / 60000)} minutes for idle ones to be dropped.`,
        null,
        { 'Retry-After': '60' },
      );
    }
    const id = randomUUID();
    const path = join(this.#uploads, id);
    await (await open(path, 'wx')).close();
    const s: UploadSession = {
      id,
      name,
      path,
      offset: 0,
      hash: createHash('sha256'),
      queue: Promise.resolve(),
      active: 0,
      idleSince: Date.now(),
    };
    this.#sessions.set(id, s);
    return s;
  }

  /** Drops every session with no request for `sessionIdleMs`, and its bytes. @returns how many */
  async expireSessions(now = Date.now()): Promise<number> {
    const idle = [...this.#sessions.values()].filter(
      (s) => s.active === 0 && now - s.idleSince >= this.limits.sessionIdleMs,
    );
    for (const s of idle) await this.cancelUpload(s);
    return idle.length;
  }

  session(name: string, id: string): UploadSession {
    const s = this.#sessions.get(id);
    if (s === undefined || s.name !== name) {
      throw new DistributionError('BLOB_UPLOAD_UNKNOWN', 404, `No upload ${id} is in progress in ${name}.`);
    }
    return s;
  }

  /** Runs `fn` after every earlier request of the same session has finished; the session is busy meanwhile. */
  serialised<T>(s: UploadSession, fn: () => Promise<T>): Promise<T> {
    s.active++;
    const next = s.queue.then(fn, fn).finally(() => {
      s.active--;
      s.idleSince = Date.now();
    });
    s.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Appends a chunk to a session; on any failure the session is rolled back to where it was.
   * @throws DistributionError SIZE_INVALID, DENIED (quota)
   */
  async appendChunk(
    s: UploadSession,
    body: ReadableStream<Uint8Array> | null,
    limits: { max: number; declared?: number },
  ): Promise<void> {
    const saved = s.hash.copy();
    const start = s.offset;
    const fh = await open(s.path, 'r+');
    let counted = 0;
    try {
      const n = await appendBody(body, fh, s.hash, start, limits.max, (k) => {
        this.reserve(k);
        counted += k;
      });
      checkDeclared(n, limits.declared);
      await fh.sync();
      s.offset = start + n;
    } catch (e) {
      this.reserve(-counted);
      s.hash = saved;
      await fh.truncate(start);
      throw e;
    } finally {
      await fh.close();
    }
  }

  /** Checks the session's digest and moves it into place. @throws DistributionError DIGEST_INVALID */
  async finishUpload(s: UploadSession, digest: string): Promise<void> {
    const got = `sha256:${s.hash.copy().digest('hex')}`;
    if (got !== digest) {
      throw new DistributionError('DIGEST_INVALID', 400, `The uploaded content has digest ${got}, not ${digest}.`, {
        expected: digest,
        got,
      });
    }
    this.#sessions.delete(s.id);
    await this.#commitBlob(s.path, digest);
  }

  async cancelUpload(s: UploadSession): Promise<void> {
    if (!this.#sessions.delete(s.id)) return;
    this.reserve(-s.offset);
    await rm(s.path, { force: true });
  }

  /** Ends every session (the registry is closing); their files are removed on the next open(). */
  dropSessions(): void {
    for (const s of this.#sessions.values()) this.reserve(-s.offset);
    this.#sessions.clear();
  }

  // --- manifests and tags -------------------------------------------------------------------

  async putManifestLink(name: string, link: ManifestLink): Promise<void> {
    this.#links.delete(name);
    this.#tagLists.delete(name);
    const dir = this.#repoDir(name);
    await this.#nameRepository(dir, name);
    await this.#writeAtomic(join(dir, 'manifests', hexOf(link.digest)), JSON.stringify(link));
    this.#links.delete(name);
    this.#tagLists.delete(name);
  }

  async manifestLink(name: string, digest: string): Promise<ManifestLink | undefined> {
    try {
      return JSON.parse(await readFile(join(this.#repoDir(name), 'manifests', hexOf(digest)), 'utf8')) as ManifestLink;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Every manifest link of a repository, in digest order (read once until the next change there). */
  manifestLinks(name: string): Promise<ManifestLink[]> {
    let links = this.#links.get(name);
    if (!links) {
      links = this.#readManifestLinks(name);
      this.#links.set(name, links);
      // A failed read is not kept.
      links.catch(() => this.#links.get(name) === links && this.#links.delete(name));
    }
    return links.then((l) => [...l]);
  }

  async #readManifestLinks(name: string): Promise<ManifestLink[]> {
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
    this.#links.delete(name);
    try {
      await unlink(join(this.#repoDir(name), 'manifests', hexOf(digest)));
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    } finally {
      this.#links.delete(name);
      this.#tagLists.delete(name);
    }
    for (const tag of (await this.tags(name)) ?? []) {
      if ((await this.tag(name, tag)) === digest) await this.deleteTag(name, tag);
    }
    return true;
  }

  async putTag(name: string, tag: string, digest: string): Promise<void> {
    this.#tagLists.delete(name);
    try {
      await this.#writeAtomic(join(this.#repoDir(name), 'tags', tag), digest);
    } finally {
      this.#tagLists.delete(name);
    }
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
    this.#tagLists.delete(name);
    try {
      await unlink(join(this.#repoDir(name), 'tags', tag));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    } finally {
      this.#tagLists.delete(name);
    }
  }

  /** The repository's tags, sorted; undefined when the repository never held a manifest. */
  tags(name: string): Promise<string[] | undefined> {
    let tags = this.#tagLists.get(name);
    if (!tags) {
      tags = this.#readTags(name);
      this.#tagLists.set(name, tags);
      tags.catch(() => this.#tagLists.get(name) === tags && this.#tagLists.delete(name));
    }
    return tags.then((t) => t && [...t]);
  }

  async #readTags(name: string): Promise<string[] | undefined> {
    const dir = this.#repoDir(name);
    try {
      await stat(join(dir, 'manifests'));
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
 * chunk; `count` is told of each chunk before it is written (and may refuse it by throwing).
 * @returns the number of bytes written. @throws DistributionError SIZE_INVALID over `max`
 * (counting `position`), and whatever `count` throws.
 */
async function appendBody(
  body: ReadableStream<Uint8Array> | null,
  fh: FileHandle,
  hash: Hash,
  position: number,
  max: number,
  count: (n: number) => void,
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
      count(value.length);
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

/**
 * The blobs step of a copy (copy.ts): image layers and configs, and the blobs of signatures,
 * attestations and referrers, a few at once. A blob the destination has is skipped; within one
 * registry it is mounted from the source repository; otherwise, where the client reaches the
 * registries through a relay with a blob transfer (shared/registry/transfer.ts), the relay streams
 * it from source to destination, hashing on the way, while the plan and the progress stay here;
 * else (or when the relay refuses the transfer) it streams through here: read from the source's
 * response as it arrives, hashed on the way, and sent in bounded chunks (`PATCH` with
 * Content-Range, then `PUT ?digest=`), so no blob is ever held whole.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-a-blob-in-chunks
 */
import { RegistryError } from '../errors.ts';
import { streamSha256 } from '../crypto/stream-hash.ts';
import type { RepoRef, UploadSession } from '../registry/client.ts';
import { pool } from './pool.ts';
import type { BlobJob, Plan } from './copy-plan.ts';
import { checkAbort, short, type CopyOptions, type CopyRun } from './copy-run.ts';

const MiB = 1024 * 1024;
/**
 * Default chunk of a blob upload. bench/copy.ts measured 4, 8 and 16 MiB within run-to-run noise
 * of each other (28–43 MB/s through the relay); 8 MiB keeps a blob's memory at two chunks.
 */
const DEFAULT_CHUNK_BYTES = 8 * MiB;

/**
 * Streams one blob from the source into an open upload, in chunks of `chunkBytes`, one chunk in
 * flight while the next is read, hashing as it goes. The upload is closed only when size and
 * digest are right, else cancelled.
 */
async function streamBlob(
  o: CopyOptions,
  src: RepoRef,
  blob: BlobJob,
  session: UploadSession,
  onBytes: (n: number) => void,
): Promise<void> {
  const { client } = o;
  const chunkBytes = Math.max(64 * 1024, o.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const { body } = await client.openBlob(src, blob.digest, blob.size);
  const reader = body.getReader();
  const hasher = await streamSha256();
  let received = 0;
  let buffer = new Uint8Array(Math.min(chunkBytes, Math.max(blob.size, 1)));
  let filled = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let current = session;
  const send = (chunk: Uint8Array): void => {
    const p = inFlight.then(async () => {
      current = await client.uploadChunk(current, chunk);
      onBytes(chunk.length);
    });
    // The loop reads the source while this chunk is in flight: a failed upload must not be an
    // unhandled rejection meanwhile. The failure still surfaces at the next `await inFlight`.
    p.catch(() => undefined);
    inFlight = p;
  };
  try {
    for (;;) {
      checkAbort(o.signal);
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      if (received > blob.size) {
        throw new RegistryError(
          'REGISTRY_SIZE_MISMATCH',
          `The source sent more than the ${blob.size} bytes its descriptor gives for blob ${blob.digest}.`,
        );
      }
      hasher.update(value);
      let at = 0;
      while (at < value.length) {
        const n = Math.min(buffer.length - filled, value.length - at);
        buffer.set(value.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === buffer.length) {
          await inFlight; // at most one chunk in flight and one being filled
          send(buffer);
          buffer = new Uint8Array(Math.min(chunkBytes, Math.max(blob.size - received + (value.length - at), 1)));
          filled = 0;
        }
      }
    }
    if (filled > 0) send(buffer.subarray(0, filled));
    await inFlight;
    if (received !== blob.size) {
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `The source sent ${received} bytes for blob ${blob.digest}, but its descriptor says ${blob.size}.`,
      );
    }
    const digest = hasher.digest();
    if (digest !== blob.digest) {
      throw new RegistryError(
        'REGISTRY_DIGEST_MISMATCH',
        `The source's blob ${blob.digest} does not match its digest: its bytes hash to ${digest}.`,
      );
    }
    await client.finishUpload(current, blob.digest);
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    await inFlight.catch(() => undefined);
    await client.cancelUpload(current);
    throw e;
  }
}

/** Mounts a blob from the source repository, or opens an upload when the registry will not; null when mounted. */
async function openUpload(run: CopyRun, b: BlobJob): Promise<UploadSession | null> {
  const { client, src, dst } = run;
  if (src.registry !== dst.registry) return client.startUpload(dst);
  const mount = await client.mountBlob(dst, b.digest, src.repository);
  if (!mount.mounted) return mount.session;
  run.bytesDone += b.size;
  run.summary.bytesMounted += b.size;
  run.record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'mounted', what: b.what });
  run.report(`${b.what} ${short(b.digest)} mounted`);
  return null;
}

/**
 * Has the relay move the blob from the source straight into the session (client.transferBlob),
 * unless the copy says not to; false when no transfer was made, the session untouched.
 * @throws what transferBlob throws, the session abandoned
 */
async function transfer(
  run: CopyRun,
  b: BlobJob,
  session: UploadSession,
  onBytes: (n: number) => void,
): Promise<boolean> {
  if (run.o.relayTransfer === false) return false;
  try {
    return await run.client.transferBlob(run.src, b, session, onBytes, run.o.signal);
  } catch (e) {
    await run.client.cancelUpload(session);
    throw e;
  }
}

/** One blob onto the destination: skipped, mounted, moved by the relay or streamed through here. */
async function copyBlob(run: CopyRun, b: BlobJob): Promise<void> {
  checkAbort(run.o.signal);
  run.report(`${b.what} ${short(b.digest)}`);
  if (await run.client.blobExists(run.dst, b.digest)) {
    run.bytesDone += b.size;
    run.summary.bytesSkipped += b.size;
    run.record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'skipped', what: b.what });
    run.report(`${b.what} ${short(b.digest)} is there already`);
    return;
  }
  const session = await openUpload(run, b);
  if (!session) return;
  let sent = 0;
  const onBytes = (n: number): void => {
    sent += n;
    run.bytesDone += n;
    run.report(`${b.what} ${short(b.digest)}`);
  };
  try {
    if (!(await transfer(run, b, session, onBytes))) await streamBlob(run.o, run.src, b, session, onBytes);
  } catch (e) {
    run.bytesDone -= sent; // a blob is there whole or not at all
    throw e;
  }
  run.summary.bytesCopied += b.size;
  run.record({ kind: 'blob', digest: b.digest, size: b.size, outcome: 'copied', what: b.what });
}

/**
 * Copies every blob of the plan, `concurrency` at once (default 3).
 * @throws RegistryError REGISTRY_SIZE_MISMATCH, REGISTRY_DIGEST_MISMATCH (the source lied) and
 *   the registries' codes; RelayError; the signal's reason.
 */
export async function copyBlobs(run: CopyRun, p: Plan): Promise<void> {
  await pool([...p.blobs.values()], Math.max(1, run.o.concurrency ?? 3), (b) => copyBlob(run, b));
}

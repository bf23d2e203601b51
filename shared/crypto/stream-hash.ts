/**
 * SHA-256 for large streams (blobs being copied, files being verified): hash-wasm's WebAssembly
 * SHA-256, about ten times faster than @noble/hashes in Node and in Chromium, so hashing a blob on
 * its way through never sets the pace of a copy. Where a Content-Security-Policy refuses
 * WebAssembly, @noble/hashes (digest.ts) does the same job, slower. hashByteStream feeds a whole
 * stream to a hasher through one reused buffer.
 */
import { createSHA256 } from 'hash-wasm';
import { sha256Hasher, type Hasher } from './digest.ts';

/** An incremental SHA-256 (`sha256:<hex>`), in WebAssembly when the runtime allows it. */
export async function streamSha256(): Promise<Hasher> {
  try {
    const h = await createSHA256();
    h.init();
    return {
      update: (chunk) => void h.update(chunk),
      digest: () => `sha256:${h.digest('hex')}`,
    };
  } catch {
    return sha256Hasher();
  }
}

/**
 * Feeds every byte of `stream` to `hasher`, calling `onBytes` with each piece's length. A byte
 * stream (Blob.stream(), a fetch body) is read with a BYOB reader into one buffer of
 * `bufferBytes`, handed back by each read: no allocation per piece, and never more than that
 * buffer held, however long the stream. Any other stream is read piece by piece.
 * @throws what reading the stream throws (a file that can no longer be read, an aborted body).
 */
export async function hashByteStream(
  stream: ReadableStream<Uint8Array>,
  hasher: Hasher,
  onBytes: (n: number) => void,
  bufferBytes = 1024 * 1024,
): Promise<void> {
  let byob: ReadableStreamBYOBReader | null = null;
  try {
    byob = stream.getReader({ mode: 'byob' });
  } catch {
    // Not a byte stream: the default reader below.
  }
  if (byob) {
    let buffer = new ArrayBuffer(bufferBytes);
    for (;;) {
      const { done, value } = await byob.read(new Uint8Array(buffer));
      if (done || !value) return;
      hasher.update(value);
      onBytes(value.byteLength);
      buffer = value.buffer as ArrayBuffer; // the same memory, handed back by the read
    }
  }
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    hasher.update(value);
    onBytes(value.byteLength);
  }
}

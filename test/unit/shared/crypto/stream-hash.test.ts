/**
 * The SHA-256 that copy.ts runs over blobs in transit (shared/crypto/stream-hash.ts, WebAssembly)
 * agrees with the one-shot digest (@noble/hashes) however the bytes are cut into chunks, in Node
 * and in Chromium; hashByteStream reads a byte stream into the one buffer it hands out, and any
 * other stream piece by piece, to the same digest.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { hashByteStream, streamSha256 } from '../../../../shared/crypto/stream-hash.ts';

describe('streamSha256', () => {
  it('known answers: the empty string and "abc"', async () => {
    const empty = await streamSha256();
    expect(empty.digest()).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const abc = await streamSha256();
    for (const c of ['a', 'b', 'c']) abc.update(new TextEncoder().encode(c));
    expect(abc.digest()).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('any chunking of any bytes hashes as the whole', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 20 }), async (chunks) => {
        const h = await streamSha256();
        for (const c of chunks) h.update(c);
        const whole = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let o = 0;
        for (const c of chunks) {
          whole.set(c, o);
          o += c.length;
        }
        expect(h.digest()).toBe(sha256Digest(whole));
      }),
      { numRuns: 100 },
    );
  });
});

/** `n` bytes that differ from one position to the next. */
const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 8)) & 255);

describe('hashByteStream', () => {
  it('reads a byte stream into buffers of at most bufferBytes that it provides, to the whole digest', async () => {
    const data = bytes(3 * 65536 + 17);
    let offset = 0;
    const views: number[] = [];
    const stream = new ReadableStream({
      type: 'bytes',
      pull(c) {
        // The reader's own buffer is filled (a BYOB request), never a chunk allocated here.
        const view = c.byobRequest!.view!;
        views.push(view.byteLength);
        const n = Math.min(view.byteLength, data.length - offset, 40_000);
        new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(offset, offset + n));
        offset += n;
        c.byobRequest!.respond(n);
        if (offset === data.length) c.close();
      },
    });
    const h = await streamSha256();
    const pieces: number[] = [];
    await hashByteStream(stream, h, (n) => pieces.push(n), 65536);
    expect(h.digest()).toBe(sha256Digest(data));
    expect(pieces.reduce((a, b) => a + b, 0)).toBe(data.length);
    expect(views.length).toBeGreaterThan(1);
    expect(views.every((v) => v === 65536)).toBe(true);
  });

  it('reads a Blob and a stream that is not a byte stream to the same digest', async () => {
    const data = bytes(1_000_003);
    const whole = sha256Digest(data);
    const fromBlob = await streamSha256();
    await hashByteStream(new Blob([data as Uint8Array<ArrayBuffer>]).stream(), fromBlob, () => undefined, 4096);
    expect(fromBlob.digest()).toBe(whole);
    const pieces = [data.subarray(0, 5), data.subarray(5, 700_000), data.subarray(700_000)];
    const plain = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = pieces.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const h = await streamSha256();
    const seen: number[] = [];
    await hashByteStream(plain, h, (n) => seen.push(n));
    expect(h.digest()).toBe(whole);
    expect(seen).toEqual([5, 699_995, 300_003]);
  });

  it('throws what the stream throws', async () => {
    const failure = new Error('the file can no longer be read');
    const stream = new ReadableStream({
      type: 'bytes',
      pull(c) {
        c.error(failure);
      },
    });
    await expect(hashByteStream(stream, await streamSha256(), () => undefined)).rejects.toBe(failure);
  });
});

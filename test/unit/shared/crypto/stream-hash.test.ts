/**
 * The SHA-256 that copy.ts runs over blobs in transit (shared/crypto/stream-hash.ts, WebAssembly)
 * agrees with the one-shot digest (@noble/hashes) however the bytes are cut into chunks, in Node
 * and in Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Digest } from '../../../../shared/crypto/digest.ts';
import { streamSha256 } from '../../../../shared/crypto/stream-hash.ts';

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

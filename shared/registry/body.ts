/**
 * Reading a body with a size limit, for both sides of the registry protocol: the client reading a
 * registry's answer and the embedded registry reading a request. Stops at the limit instead of
 * buffering whatever a peer sends.
 */

/**
 * Reads `stream` whole, or returns null once it passes `max` bytes (the stream is then cancelled).
 * A null stream is an empty body.
 */
export async function readUpTo(stream: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | null> {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

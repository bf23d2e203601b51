/**
 * Bounded concurrency for registry work: many small reads (signature layers, referrers) or a few
 * large transfers (blobs), never all at once.
 */

/**
 * Runs `fn` over `items`, at most `limit` at a time, and returns the results in the items' order.
 * The first failure stops new items from starting; the ones under way finish (or fail) before it
 * is thrown, so when this returns or throws nothing is still running.
 * @throws the first error `fn` threw
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return out;
}

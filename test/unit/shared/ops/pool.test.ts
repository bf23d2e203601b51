/** shared/ops/pool.ts: results in order, never more than `limit` at once, a failure stops new work. */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { pool } from '../../../../shared/ops/pool.ts';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('returns every result in the items’ order and never runs more than limit at once', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(3), { maxLength: 30 }), fc.integer({ min: 1, max: 6 }), async (delays, limit) => {
      let running = 0;
      let most = 0;
      const out = await pool(delays, limit, async (d, i) => {
        running++;
        most = Math.max(most, running);
        await tick(d);
        running--;
        return i * 10;
      });
      expect(out).toEqual(delays.map((_, i) => i * 10));
      expect(most).toBeLessThanOrEqual(limit);
    }),
    { numRuns: 40 },
  );
});

it('after a failure starts nothing new, lets the running ones finish, then throws the first error', async () => {
  const started: number[] = [];
  const finished: number[] = [];
  const run = pool([0, 1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    started.push(n);
    if (n === 1) throw new Error('item 1 failed');
    await tick(20);
    finished.push(n);
    return n;
  });
  await expect(run).rejects.toThrow('item 1 failed');
  // Items 0 and 2 were under way when 1 failed: they finished before pool threw.
  expect(finished.sort()).toEqual([0, 2]);
  expect(started.sort()).toEqual([0, 1, 2]);
});

it('an empty list gives an empty result without calling fn', async () => {
  expect(await pool([], 4, () => Promise.reject(new Error('called')))).toEqual([]);
});

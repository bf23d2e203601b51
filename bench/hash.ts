/**
 * Hashing a 1 GiB file on the page (#/verify-file's "File to verify": a worker reads the file's
 * stream into one reused buffer and hashes each piece with SHA-256) next to `sha256sum` on the
 * same file, the two taking turns `runs` times (medians reported, so a busy moment of a shared
 * machine falls on both). Playwright's setInputFiles hands Chromium the path, so the page reads
 * the file from disk as a user's choice would.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright';
import { TOOL_PATHS } from '../test/rig/tools.ts';
import { median } from './verify.ts';

export interface HashFigures {
  sizeMiB: number;
  runs: number;
  sha256sumMs: number;
  pageMs: number;
}

export async function benchHash(browser: Browser, baseUrl: string, sizeMiB = 1024, runs = 3): Promise<HashFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'cosign-web-bench-hash-'));
  try {
    const file = join(dir, 'big.bin');
    // Written, not sparse: a sparse file would flatter both readers.
    const fd = openSync(file, 'w');
    const chunk = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 31) & 255);
    for (let i = 0; i < sizeMiB / 8; i++) writeSync(fd, chunk);
    closeSync(fd);
    const expected = `sha256:${execFileSync(TOOL_PATHS.sha256sum, [file], { encoding: 'utf8' }).split(' ')[0]}`; // warms the page cache for both
    const sums: number[] = [];
    const pages: number[] = [];
    for (let run = 0; run < runs; run++) {
      const t0 = performance.now();
      execFileSync(TOOL_PATHS.sha256sum, [file]);
      sums.push(performance.now() - t0);
      const page = await browser.newPage();
      await page.goto(`${baseUrl}/#/verify-file`);
      const digest = page.getByLabel('File digest', { exact: true });
      const t1 = performance.now();
      await page.getByLabel('File to verify', { exact: true }).setInputFiles(file);
      for (let i = 0; i < 6000 && (await digest.inputValue()) !== expected; i++) await page.waitForTimeout(20);
      pages.push(performance.now() - t1);
      if ((await digest.inputValue()) !== expected)
        throw new Error('the page did not reach the digest sha256sum gives');
      await page.close();
    }
    return { sizeMiB, runs, sha256sumMs: median(sums), pageMs: median(pages) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Hashing a 1 GiB file on the page (#/verify-file's "File to verify": a worker reads the file's
 * stream into one reused buffer and hashes each piece with SHA-256) next to `sha256sum` on the
 * same file, the two taking turns `runs` times (medians reported, so a busy moment of a shared
 * machine falls on both); given `oldUrl` (another build of the page), that one takes its turn too.
 * Playwright's setInputFiles hands Chromium the path, so the page reads the file from disk as a
 * user's choice would; the page itself waits for the digest (Playwright's polling over CDP would
 * take CPU from the two cores being measured).
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
  /** The page at `oldUrl`, when given. */
  oldPageMs?: number;
}

/** Milliseconds from choosing `file` on `url`'s #/verify-file to its digest in "File digest". */
async function pageHash(browser: Browser, url: string, file: string, expected: string): Promise<number> {
  const page = await browser.newPage();
  try {
    await page.goto(`${url}/#/verify-file`);
    const input = page.getByLabel('File to verify', { exact: true });
    await input.waitFor();
    const t0 = performance.now();
    await input.setInputFiles(file);
    await page.waitForFunction(
      (want) => (document.getElementById('vf-digest') as HTMLInputElement | null)?.value === want,
      expected,
      { polling: 10, timeout: 120_000 },
    );
    return performance.now() - t0;
  } finally {
    await page.close();
  }
}

export async function benchHash(
  browser: Browser,
  baseUrl: string,
  sizeMiB = 1024,
  runs = 3,
  oldUrl?: string,
): Promise<HashFigures> {
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
    const olds: number[] = [];
    for (let run = 0; run < runs; run++) {
      const t0 = performance.now();
      execFileSync(TOOL_PATHS.sha256sum, [file]);
      sums.push(performance.now() - t0);
      // Old and new swap places each turn, so neither always follows sha256sum.
      if (oldUrl && run % 2 === 1) olds.push(await pageHash(browser, oldUrl, file, expected));
      pages.push(await pageHash(browser, baseUrl, file, expected));
      if (oldUrl && run % 2 === 0) olds.push(await pageHash(browser, oldUrl, file, expected));
    }
    return {
      sizeMiB,
      runs,
      sha256sumMs: median(sums),
      pageMs: median(pages),
      ...(oldUrl ? { oldPageMs: median(olds) } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

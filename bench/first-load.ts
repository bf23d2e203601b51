/**
 * The JavaScript a first visit loads (issue 14, "First load"): each route opened in a fresh
 * Chromium context (empty cache, no stored keys), waited on until its page shows and the network
 * is idle; every script the page fetched is counted as served (Playwright's response body size:
 * the bytes on the wire, brotli when the server has a .br copy) and, from the built files, what it
 * weighs plain, gzip -9 and brotli at quality 11 (as the build's copies are made). A worker the
 * page starts early (the Keys page's scrypt worker) is not needed to show the page: it is counted
 * apart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Browser } from 'playwright';

export interface FirstLoadFigures {
  route: string;
  scripts: number;
  /** Bytes of the scripts as built, then gzip -9 and brotli 11 of each, summed. */
  plainBytes: number;
  gzipBytes: number;
  brotliBytes: number;
  /** Response body bytes Chromium received for them (what was actually sent). */
  transferredBytes: number;
  /** Content-Encoding of the largest script, as sent. */
  encoding: string;
  /** Brotli bytes of worker scripts the page started early (the Keys page's scrypt worker), not counted above. */
  workerBrotliBytes: number;
}

const brotli = (bytes: Uint8Array): number =>
  brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY } }).length;
/** Vite names a worker's script after its module: `scrypt.worker-<hash>.js`. */
const WORKER_SCRIPT = /\.worker-[^/]+\.js$/;

/**
 * Opens each `routes` entry (`#/welcome`, …) on `baseUrl` in its own fresh context and sums the
 * scripts it fetched. `ready` names the heading that shows the page is there.
 */
export async function benchFirstLoad(
  browser: Browser,
  baseUrl: string,
  distDir: string,
  routes: { route: string; heading: string }[],
): Promise<FirstLoadFigures[]> {
  const out: FirstLoadFigures[] = [];
  for (const { route, heading } of routes) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const scripts: { path: string; transferred: Promise<number>; encoding: string }[] = [];
    page.on('response', (res) => {
      if (res.request().resourceType() !== 'script') return;
      scripts.push({
        path: new URL(res.url()).pathname,
        transferred: res
          .request()
          .sizes()
          .then((s) => s.responseBodySize),
        encoding: res.headers()['content-encoding'] ?? 'identity',
      });
    });
    await page.goto(`${baseUrl}/${route}`);
    await page.getByRole('heading', { name: heading, level: 1 }).waitFor({ timeout: 60_000 });
    await page.waitForLoadState('networkidle');
    let plainBytes = 0;
    let gzipBytes = 0;
    let brotliBytes = 0;
    let transferredBytes = 0;
    let largest = { size: -1, encoding: '' };
    let workerBrotliBytes = 0;
    for (const s of scripts) {
      const file = join(distDir, s.path);
      const bytes = readFileSync(file);
      if (WORKER_SCRIPT.test(s.path)) {
        workerBrotliBytes += brotli(bytes);
        continue;
      }
      const plain = bytes.length;
      plainBytes += plain;
      // As scripts/precompress.ts compresses them (so an older build without copies compares).
      gzipBytes += gzipSync(bytes, { level: 9 }).length;
      brotliBytes += brotli(bytes);
      transferredBytes += await s.transferred;
      if (plain > largest.size) largest = { size: plain, encoding: s.encoding };
    }
    out.push({
      route,
      scripts: scripts.filter((s) => !WORKER_SCRIPT.test(s.path)).length,
      plainBytes,
      gzipBytes,
      brotliBytes,
      transferredBytes,
      encoding: largest.encoding,
      workerBrotliBytes,
    });
    await context.close();
  }
  return out;
}

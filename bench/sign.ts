/**
 * Signing figures for `npm run bench`: from clicking "Sign" on the real page (key already
 * unlocked) to both formats pushed, through the relay, next to the cosign CLI signing the same
 * image with the same key file in the same run (cosign 2.5 writes the legacy format, cosign 3.1
 * the bundle; the page writes both in one click); then the same for an index of two platforms
 * (3 manifests), next to `cosign sign --recursive`.
 */
import type { Browser, Locator, Page, Request } from 'playwright';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pushSampleImage } from '../test/rig/images.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import {
  cosign2SignArgs,
  cosign3SignArgs,
  cosignEnv,
  makeCosign3Offline,
  makeToolHome,
  runOk,
} from '../test/rig/tools.ts';

export interface SignFigures {
  pageMs: number[];
  cosign2Ms: number[];
  cosign3Ms: number[];
}

/** A single-platform image, and an index of 3 manifests (the index and its 2 platforms, `--recursive`). */
export interface SignBench {
  image: SignFigures;
  index: SignFigures;
}

const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/**
 * Clicks `button` and measures, inside the page, from the click to a "Signed" status, so that
 * Playwright's polling adds nothing.
 * @throws Error with the status when signing failed.
 */
export async function clickToSigned(page: Page, button: Locator): Promise<number> {
  const trace = process.env.BENCH_SIGN_TRACE ? traceRequests(page) : null;
  await page.evaluate(() => {
    const w = window as unknown as { signMs: Promise<number>; clickAt: number };
    w.signMs = new Promise((resolve) => {
      let t0 = 0;
      document.addEventListener(
        'click',
        () => {
          t0 = performance.now();
          w.clickAt = performance.timeOrigin + t0;
        },
        { capture: true, once: true },
      );
      new MutationObserver((_, obs) => {
        const text = document.querySelector('[role=status]')?.textContent ?? '';
        if (/^Signed sha256/.test(text) || text.includes('said') || /[A-Z]+_[A-Z_]+/.test(text)) {
          obs.disconnect();
          resolve(/^Signed sha256/.test(text) ? performance.now() - t0 : NaN);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  await button.click();
  const ms = await page.evaluate(() => (window as unknown as { signMs: Promise<number> }).signMs);
  if (trace) await trace(ms);
  if (Number.isNaN(ms)) throw new Error(`signing on the page failed: ${await page.getByRole('status').textContent()}`);
  return ms;
}

/**
 * One traced request as a line: when it started and ended, in ms after `zero` (a wall-clock time),
 * its method and its path with digests cut short; and its start.
 */
export function requestLine(r: Request, zero: number): [number, string] {
  const t = r.timing();
  const start = t.startTime - zero;
  const path = new URL(r.url()).pathname.replace(/sha256[:-]([0-9a-f]{6})[0-9a-f]{58}/g, 'sha256-$1…');
  const end = t.responseEnd >= 0 ? (start + t.responseEnd).toFixed(0) : '?';
  return [start, `${start.toFixed(0).padStart(5)}–${end.padEnd(5)} ${r.method().padEnd(6)} ${path}`];
}

/**
 * BENCH_SIGN_TRACE=1 (BENCH_VERIFY_TRACE=1 for verifying): records every request the page makes
 * and prints, after the work, each one that started between the click (`window.clickAt`) and the
 * outcome as `start–end ms  METHOD path` (relative to the click), to see which requests wait on which.
 * @returns a function that prints the waterfall and stops recording.
 */
export function traceRequests(page: Page): (ms: number) => Promise<void> {
  const seen: Request[] = [];
  const onRequest = (r: Request): void => void seen.push(r);
  page.on('request', onRequest);
  return async (ms) => {
    page.off('request', onRequest);
    const clickAt = await page.evaluate(() => (window as unknown as { clickAt: number }).clickAt);
    const lines: [number, string][] = [];
    for (const r of seen) {
      const [start, line] = requestLine(r, clickAt);
      if (start >= 0 && start <= ms) lines.push([start, line]);
    }
    console.log(`  trace, ${ms.toFixed(0)} ms, ${lines.length} requests:`);
    for (const [, l] of lines.sort((a, b) => a[0] - b[0])) console.log(`    ${l}`);
  };
}

/**
 * Generates a cosign key pair on the Keys page (password "bench") and saves its cosign.key in `dir`.
 * @returns the key file's path; the key stays unlocked in the page.
 */
export async function pageKeyPair(page: Page, baseUrl: string, dir: string): Promise<string> {
  await page.goto(`${baseUrl}/#/keys`);
  await page.getByLabel('New key password').fill('bench');
  await page.getByRole('button', { name: 'Generate key pair' }).click();
  await page.getByRole('status').filter({ hasText: 'Key ready' }).waitFor();
  const [dl] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download cosign.key' }).click(),
  ]);
  const keyFile = join(dir, 'cosign.key');
  writeFileSync(keyFile, readFileSync(await dl.path()));
  return keyFile;
}

export async function benchSign(
  browser: Browser,
  baseUrl: string,
  regs: RegistriesInfo,
  runs: number,
): Promise<SignBench> {
  const home = await makeToolHome('cosign-web-bench-');
  try {
    const page = await browser.newPage();
    const keyFile = await pageKeyPair(page, baseUrl, home.dir);
    const env = cosignEnv(home, { password: 'bench', caFile: regs.tls.caFile });
    const offline = await makeCosign3Offline(home);
    const out: SignBench = {
      image: { pageMs: [], cosign2Ms: [], cosign3Ms: [] },
      index: { pageMs: [], cosign2Ms: [], cosign3Ms: [] },
    };
    for (let i = 0; i <= runs; i++) {
      for (const kind of ['image', 'index'] as const) {
        const index = kind === 'index';
        const image = await pushSampleImage(
          { host: regs.tls.host, caFile: regs.tls.caFile },
          `bench/sign-${kind}-${i}`,
          'v1',
          { index },
        );
        await page.goto(`${baseUrl}/#/sign`);
        await page.getByLabel('Image reference').fill(image.ref);
        const ms = await clickToSigned(page, page.getByRole('button', { name: 'Sign' }));
        const extra = index ? ['--recursive'] : [];
        const c2 = await time(() => runOk('cosign2', cosign2SignArgs(keyFile, image.ref, extra), { env }));
        const c3 = await time(() => runOk('cosign3', cosign3SignArgs(keyFile, offline, image.ref, extra), { env }));
        if (i > 0) {
          out[kind].pageMs.push(ms);
          out[kind].cosign2Ms.push(c2);
          out[kind].cosign3Ms.push(c3);
        }
      }
    }
    await page.close();
    return out;
  } finally {
    await home.cleanup();
  }
}

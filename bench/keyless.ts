/**
 * Verifying keyless images in Chromium on the real page, through the relay: a legacy signature
 * with a certificate and a Rekor v1 SET, the same with an RFC 3161 timestamp, and a v0.3 bundle
 * with a log entry (SET, inclusion proof, checkpoint), without and with an RFC 3161 timestamp — next to `cosign verify` (cosign 3.1)
 * on the same image with the same trusted root (`--trusted-root`, offline), process start included.
 * Given `oldUrl` (a server with another build of the page), its page takes turns with this one's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright';
import { median, pageRun } from './verify.ts';
import { cosignKeylessVerifyArgs, makeKeylessFixtures, VARIANT_SPECS } from '../test/rig/keyless-images.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import { cosignEnv, makeToolHome, runOk } from '../test/rig/tools.ts';

export interface KeylessFigure {
  name: string;
  cosign3Ms: number;
  pageMs: number;
  /** The page at `oldUrl`, when given. */
  oldPageMs?: number;
}

type Variant = Awaited<ReturnType<typeof makeKeylessFixtures>>['variants'][number];

/** #/verify at `url`, filled in for `v` with the trusted root `root`. */
async function openVerify(browser: Browser, url: string, root: string, v: Variant): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${url}/#/verify`);
  await page.getByLabel('Trusted root file').setInputFiles(root);
  const picked = page.getByLabel('Trust root', { exact: true });
  for (let i = 0; i < 200 && !(await picked.inputValue()).startsWith('sha256:'); i++) await page.waitForTimeout(50);
  await page.getByLabel('Image reference').fill(v.ref);
  await page.getByLabel('Certificate identity', { exact: true }).fill(v.identity);
  await page.getByLabel('Certificate OIDC issuer', { exact: true }).fill(v.issuer);
  if (v.format === 'bundle' && !VARIANT_SPECS[v.name].log)
    await page.getByLabel('Transparency log').selectOption('ignore');
  return page;
}

export async function benchKeyless(
  browser: Browser,
  baseUrl: string,
  regs: RegistriesInfo,
  runs: number,
  oldUrl?: string,
): Promise<KeylessFigure[]> {
  const home = await makeToolHome('cosign-web-bench-keyless-');
  const fxDir = mkdtempSync(join(tmpdir(), 'cosign-web-bench-keyless-fx-'));
  try {
    const fx = await makeKeylessFixtures({
      home,
      registry: regs.tls,
      dir: fxDir,
      repoPrefix: 'bench-keyless',
      only: ['good', 'timestamped', 'bundleLogGood', 'bundleLogTimestamped'],
    });
    const env = cosignEnv(home, { caFile: regs.tls.caFile });
    const out: KeylessFigure[] = [];
    for (const v of fx.variants) {
      const tsa = VARIANT_SPECS[v.name].timestamp !== undefined ? ['--use-signed-timestamps'] : [];
      const argv = cosignKeylessVerifyArgs(v, ['--trusted-root', fx.trust.trustedRoot, ...tsa]);
      const cosign: number[] = [];
      for (let i = 0; i <= runs; i++) {
        const t0 = performance.now();
        await runOk('cosign3', argv, { env });
        if (i > 0) cosign.push(performance.now() - t0);
      }
      const page = await openVerify(browser, baseUrl, fx.trust.trustedRoot, v);
      const oldPage = oldUrl ? await openVerify(browser, oldUrl, fx.trust.trustedRoot, v) : null;
      const times: number[] = [];
      const olds: number[] = [];
      for (let i = 0; i <= runs; i++) {
        // Old and new swap places each turn.
        const old = oldPage && i % 2 === 1 ? await pageRun(oldPage) : NaN;
        const ms = await pageRun(page);
        if (i > 0) times.push(ms);
        const old2 = oldPage && i % 2 === 0 ? await pageRun(oldPage) : old;
        if (i > 0 && oldPage) olds.push(old2);
      }
      await page.close();
      await oldPage?.close();
      out.push({
        name: `${v.name} (${v.description})`,
        cosign3Ms: median(cosign),
        pageMs: median(times),
        ...(oldPage ? { oldPageMs: median(olds) } : {}),
      });
    }
    return out;
  } finally {
    await home.cleanup();
    rmSync(fxDir, { recursive: true, force: true });
  }
}

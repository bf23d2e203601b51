/**
 * Verifying keyless images in Chromium on the real page, through the relay: a legacy signature
 * with a certificate and a Rekor v1 SET, the same with an RFC 3161 timestamp, and a cosign 3.1
 * bundle with a log entry (SET, inclusion proof, checkpoint) — next to `cosign verify` (cosign 3.1)
 * on the same image with the same trusted root (`--trusted-root`, offline), process start included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright';
import { median, pageRun } from './verify.ts';
import { cosignKeylessVerifyArgs, makeKeylessFixtures, VARIANT_SPECS } from '../test/rig/keyless-images.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import { cosignEnv, makeToolHome, runOk } from '../test/rig/tools.ts';

export interface KeylessFigure {
  name: string;
  cosign3Ms: number;
  pageMs: number;
}

export async function benchKeyless(
  browser: Browser,
  baseUrl: string,
  regs: RegistriesInfo,
  runs: number,
): Promise<KeylessFigure[]> {
  const home = await makeToolHome('cosign-web-bench-keyless-');
  const fxDir = mkdtempSync(join(tmpdir(), 'cosign-web-bench-keyless-fx-'));
  try {
    const fx = await makeKeylessFixtures({
      home,
      registry: regs.tls,
      dir: fxDir,
      repoPrefix: 'bench-keyless',
      only: ['good', 'timestamped', 'bundleLogGood'],
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
      const page = await browser.newPage();
      await page.goto(`${baseUrl}/#/verify`);
      await page.getByLabel('Trusted root file').setInputFiles(fx.trust.trustedRoot);
      const root = page.getByLabel('Trust root', { exact: true });
      for (let i = 0; i < 200 && !(await root.inputValue()).startsWith('sha256:'); i++) await page.waitForTimeout(50);
      await page.getByLabel('Image reference').fill(v.ref);
      await page.getByLabel('Certificate identity', { exact: true }).fill(v.identity);
      await page.getByLabel('Certificate OIDC issuer', { exact: true }).fill(v.issuer);
      if (v.format === 'bundle' && !VARIANT_SPECS[v.name].log)
        await page.getByLabel('Transparency log').selectOption('ignore');
      const times: number[] = [];
      for (let i = 0; i <= runs; i++) {
        const ms = await pageRun(page);
        if (i > 0) times.push(ms);
      }
      await page.close();
      out.push({ name: `${v.name} (${v.description})`, cosign3Ms: median(cosign), pageMs: median(times) });
    }
    return out;
  } finally {
    await home.cleanup();
    rmSync(fxDir, { recursive: true, force: true });
  }
}

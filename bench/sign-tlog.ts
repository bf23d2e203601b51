/**
 * Signing with a transparency log and a timestamp for `npm run bench`: from clicking "Sign" on the
 * real page (cosign key already unlocked, consent given, log and TSA chosen) to the bundle pushed,
 * logged to the REAL Rekor v2 and timestamped by the REAL timestamp authority on loopback (both
 * through the relay, every answer verified against the trusted root), next to `cosign sign` 3.1
 * with the same key file, the same signing config (made by cosign 3.1) and trusted root, on the
 * same registry, in the same run. Also the page writing both formats (legacy timestamped too).
 */
import type { Browser, Page, Request } from 'playwright';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { relayEnvFor, startAppServer } from '../test/rig/app-server.ts';
import { pushSampleImage } from '../test/rig/images.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import { startSigstoreServices, type SigstoreServices } from '../test/rig/sigstore-services.ts';
import { cosignEnv, makeToolHome, runOk } from '../test/rig/tools.ts';
import { openSignWithServices } from '../test/e2e/helpers.ts';
import { clickToSigned, pageKeyPair } from './sign.ts';

/**
 * Waits a random part of the rig log's checkpoint interval (`--checkpoint-interval=1s`): Rekor v2
 * answers an upload once the next checkpoint holds it, so a bench whose steps keep one rhythm
 * would hand one signer always the start of an interval (a wait of ~1 s) and the other its end.
 * Each timed signing starts at a random phase instead, so neither is favoured.
 */
export function randomLogPhase(): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * 1000));
}

/** The items in a random order (Fisher–Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * `cosign sign` 3.1 with `flags` (the key or the identity token), a signing config whose log is
 * reached through `timer`, and the trusted root, started at a random phase of the log's interval.
 * @returns [the whole run, its log upload's round trip] in ms.
 */
export async function timedCosignSign(o: {
  flags: string[];
  signingConfig: string;
  trustedRoot: string;
  ref: string;
  env: Record<string, string>;
  timer: { waits: number[] };
}): Promise<[number, number]> {
  await randomLogPhase();
  const t0 = performance.now();
  const args = [
    'sign',
    ...o.flags,
    '--signing-config',
    o.signingConfig,
    '--trusted-root',
    o.trustedRoot,
    '--yes',
    o.ref,
  ];
  await runOk('cosign3', args, { env: o.env });
  return [performance.now() - t0, o.timer.waits.at(-1) ?? NaN];
}

/** Runs round 0 (a warm-up: page chunks, cosign's caches, the services) to `runs`, each round's turns in a new order. */
export async function takeTurns(runs: number, round: (i: number) => (() => Promise<unknown>)[]): Promise<void> {
  for (let i = 0; i <= runs; i++) for (const turn of shuffled(round(i))) await turn();
}

export interface SignTlogBench {
  pageBundleMs: number[];
  pageBothMs: number[];
  cosign3Ms: number[];
  /** Of each signing, the log upload's round trip (Rekor v2 answers once a checkpoint holds the entry). */
  logWaitMs: { pageBundle: number[]; pageBoth: number[]; cosign3: number[] };
}

/**
 * A pass-through proxy in front of the log for cosign (its signing config names this proxy): it
 * times each log upload from the request to the end of the answer, as the page's are timed.
 */
export async function logTimer(upstream: string): Promise<{ url: string; waits: number[]; close(): Promise<void> }> {
  const target = new URL(upstream);
  const waits: number[] = [];
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const options = { hostname: target.hostname, port: target.port, path: req.url, method: req.method };
    const up = http.request({ ...options, headers: { ...req.headers, host: target.host } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res).on('finish', () => {
        if (req.url === '/api/v2/log/entries') waits.push(performance.now() - t0);
      });
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    waits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * Runs `fn` (a signing) and returns, with its result, how long the page's log upload took from
 * being sent to its answer (Rekor v2 answers once the entry is in a published checkpoint).
 */
async function withLogWait(page: Page, fn: () => Promise<number>): Promise<[number, number]> {
  let wait = NaN;
  const onDone = (r: Request): void => {
    if (r.url().endsWith('/api/v2/log/entries')) wait = r.timing().responseEnd;
  };
  page.on('requestfinished', onDone);
  try {
    return [await fn(), wait];
  } finally {
    page.off('requestfinished', onDone);
  }
}

async function fillForm(page: Page, baseUrl: string, ref: string, stack: SigstoreServices, legacy: boolean) {
  await openSignWithServices(page, baseUrl, ref, {
    signingConfig: stack.signingConfigFile,
    trustedRoot: stack.trustedRootFile,
  });
  const legacyBox = page.getByRole('checkbox', { name: /Legacy/ });
  if ((await legacyBox.isChecked()) !== legacy) await legacyBox.click();
  await page.getByLabel('Transparency log', { exact: true }).selectOption('config');
  await page.getByLabel('Timestamp authority', { exact: true }).selectOption('config');
}

export async function benchSignTlog(browser: Browser, regs: RegistriesInfo, runs: number): Promise<SignTlogBench> {
  const home = await makeToolHome('cosign-web-bench-tlog-');
  const stack = await startSigstoreServices({ dir: join(home.dir, 'services') });
  const server = await startAppServer(home.dir, relayEnvFor([stack.rekor.url, stack.tsa.baseUrl], regs.tls));
  const timer = await logTimer(stack.rekor.url);
  const cosignConfig = join(home.dir, 'signing_config_timed.json');
  writeFileSync(cosignConfig, readFileSync(stack.signingConfigFile, 'utf8').replaceAll(stack.rekor.url, timer.url));
  try {
    const page = await browser.newPage();
    const keyFile = await pageKeyPair(page, server.origin, home.dir);
    const env = cosignEnv(home, { password: 'bench', caFile: regs.tls.caFile });
    const out: SignTlogBench = {
      pageBundleMs: [],
      pageBothMs: [],
      cosign3Ms: [],
      logWaitMs: { pageBundle: [], pageBoth: [], cosign3: [] },
    };
    const sign = page.getByRole('button', { name: 'Sign', exact: true });
    const tls = { host: regs.tls.host, caFile: regs.tls.caFile };
    // The consent is asked once for the key, before the first upload: given outside the timing.
    const first = await pushSampleImage(tls, 'bench/tlog-consent', 'v1');
    await fillForm(page, server.origin, first.ref, stack, false);
    await sign.click();
    await page.getByRole('button', { name: 'Log publicly and sign' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /^Signed/ })
      .waitFor({ timeout: 120_000 });
    const pageSigning = async (i: number, legacy: boolean): Promise<[number, number]> => {
      const image = await pushSampleImage(tls, `bench/tlog-${legacy ? 'both' : 'bundle'}-${i}`, 'v1');
      await fillForm(page, server.origin, image.ref, stack, legacy);
      await randomLogPhase();
      return withLogWait(page, () => clickToSigned(page, sign));
    };
    const cosignSigning = async (i: number): Promise<[number, number]> => {
      const other = await pushSampleImage(tls, `bench/tlog-cosign-${i}`, 'v1');
      const { trustedRootFile: trustedRoot } = stack;
      return timedCosignSign({
        flags: ['--key', keyFile],
        signingConfig: cosignConfig,
        trustedRoot,
        ref: other.ref,
        env,
        timer,
      });
    };
    await takeTurns(runs, (i) => [
      async () => ([out.pageBundleMs[i], out.logWaitMs.pageBundle[i]] = await pageSigning(i, false)),
      async () => ([out.pageBothMs[i], out.logWaitMs.pageBoth[i]] = await pageSigning(i, true)),
      async () => ([out.cosign3Ms[i], out.logWaitMs.cosign3[i]] = await cosignSigning(i)),
    ]);
    // Round 0 was the warm-up.
    for (const list of [out.pageBundleMs, out.pageBothMs, out.cosign3Ms, ...Object.values(out.logWaitMs)]) list.shift();
    await page.close();
    return out;
  } finally {
    await timer.close();
    await server.stop();
    await stack.stop();
    await home.cleanup();
  }
}

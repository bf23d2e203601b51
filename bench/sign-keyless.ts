/**
 * Keyless signing for `npm run bench`: "Sign with your identity" on the real page against the REAL
 * Fulcio, Rekor v2 and timestamp authority and the rig's own OpenID Connect issuer on loopback (all
 * through the relay, every answer verified against the trusted root before the push), next to
 * `cosign sign --identity-token` 3.1 with the same signing config and trusted root, on the same
 * registry, in the same run.
 *
 * The page's time is taken from the ID token in hand — the answer to the page's code exchange at
 * the issuer's token endpoint, as Chromium receives it — to "Signed" shown (seen inside the page); cosign's from
 * its start with the token given on its command line (so cosign's own start-up is in its time, and
 * the page's key generation, Fulcio request, log upload, timestamp and push are in the page's). The
 * time from clicking "Sign in" at the issuer (its redirect back and the code exchange included) is
 * reported too. The consent for the issuer is given once, before the timed runs. Each timed
 * signing starts at a random phase of the log's checkpoint interval (randomLogPhase).
 */
import type { Browser, Page, Request } from 'playwright';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relayEnvFor, startAppServer } from '../test/rig/app-server.ts';
import { startFulcio } from '../test/rig/fulcio.ts';
import { pushSampleImage } from '../test/rig/images.ts';
import { startOidcIssuer } from '../test/rig/oidc-issuer.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import { createSigningConfig, startSigstoreServices } from '../test/rig/sigstore-services.ts';
import { cosignEnv, makeToolHome } from '../test/rig/tools.ts';
import { openSignWithServices } from '../test/e2e/helpers.ts';
import { requestLine } from './sign.ts';
import { logTimer, randomLogPhase, takeTurns, timedCosignSign } from './sign-tlog.ts';

export interface SignKeylessBench {
  /** Token in hand to bundle pushed. */
  pageBundleMs: number[];
  /** Token in hand to both formats pushed. */
  pageBothMs: number[];
  /** Clicking "Sign in" at the issuer to both formats pushed. */
  pageBothFromLoginMs: number[];
  cosign3Ms: number[];
  /** Of each signing, the log upload's round trip: the page's (bundle, both formats) and cosign's. */
  logWaitMs: { pageBundle: number[]; pageBoth: number[]; cosign3: number[] };
}

const EMAIL = 'bench@rig.test';
const LONG = { timeout: 120_000 };

/**
 * Clicks "Sign", logs in at the issuer's page as a person would, waits for "Signed".
 * @returns [token in hand → signed, "Sign in" clicked → signed, the log upload's round trip] in ms.
 */
async function signKeyless(page: Page, consent: boolean): Promise<[number, number, number]> {
  const seen: Request[] = [];
  const onRequest = (r: Request): void => void seen.push(r);
  page.on('request', onRequest);
  // "Signed" is seen inside the page as it is shown (a MutationObserver), not by polling it.
  await page.evaluate(() => {
    const w = window as unknown as { signedAt: Promise<number> };
    w.signedAt = new Promise((resolve) => {
      new MutationObserver((_, obs) => {
        const text = document.querySelector('[role=status]')?.textContent ?? '';
        if (!/^Signed sha256/.test(text) && !/[A-Z]+_[A-Z_]+/.test(text)) return;
        obs.disconnect();
        resolve(/^Signed sha256/.test(text) ? performance.timeOrigin + performance.now() : NaN);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  const tokenAnswer = page.waitForResponse(
    (r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/token'),
    LONG,
  );
  const popup = page.waitForEvent('popup', LONG);
  await page.getByRole('button', { name: 'Sign', exact: true }).click();
  if (consent) await page.getByRole('button', { name: 'Log publicly and sign' }).click();
  const login = await popup;
  await login.getByLabel('Email').fill(EMAIL);
  await randomLogPhase();
  const clickAt = Date.now();
  await login.getByRole('button', { name: 'Sign in' }).click();
  const signedAt = await page.evaluate(() => (window as unknown as { signedAt: Promise<number> }).signedAt);
  if (Number.isNaN(signedAt))
    throw new Error(`keyless signing failed: ${await page.getByRole('status').textContent()}`);
  // When Chromium had the token endpoint's whole answer (the request's start and end, wall clock).
  const token = (await tokenAnswer).request().timing();
  const tokenAt = token.startTime + token.responseEnd;
  page.off('request', onRequest);
  // The log upload's round trip (Rekor v2 answers once the next checkpoint holds the entry).
  const logged = seen.find((r) => r.url().endsWith('/api/v2/log/entries'))?.timing().responseEnd ?? NaN;
  if (process.env.BENCH_SIGN_TRACE) {
    console.log(`  trace from the token answered, ${(signedAt - tokenAt).toFixed(0)} ms:`);
    for (const r of seen) {
      const [start, line] = requestLine(r, tokenAt);
      if (start >= 0) console.log(`    ${line}`);
    }
  }
  return [signedAt - tokenAt, signedAt - clickAt, logged];
}

export async function benchSignKeyless(
  browser: Browser,
  regs: RegistriesInfo,
  runs: number,
): Promise<SignKeylessBench> {
  const home = await makeToolHome('cosign-web-bench-keyless-sign-');
  const dir = mkdtempSync(join(tmpdir(), 'cosign-web-bench-keyless-sign-'));
  const issuer = await startOidcIssuer();
  const fulcio = await startFulcio({ dir, issuerUrl: issuer.url });
  const stack = await startSigstoreServices({
    dir: join(dir, 'services'),
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  const signingConfig = join(dir, 'keyless-signing-config.json');
  await createSigningConfig(dir, stack.rekor.url, stack.tsa.url, stack.validFrom, signingConfig, {
    fulcioUrl: fulcio.url,
    oidcUrl: issuer.url,
  });
  const server = await startAppServer(
    dir,
    relayEnvFor([stack.rekor.url, stack.tsa.baseUrl, fulcio.url, issuer.url], regs.tls),
  );
  // cosign reaches the log through a pass-through proxy that times its upload (sign-tlog.ts).
  const timer = await logTimer(stack.rekor.url);
  const cosignConfig = join(dir, 'keyless-signing-config-timed.json');
  writeFileSync(cosignConfig, readFileSync(signingConfig, 'utf8').replaceAll(stack.rekor.url, timer.url));
  try {
    const page = await browser.newPage();
    const env = cosignEnv(home, { caFile: regs.tls.caFile });
    const tls = { host: regs.tls.host, caFile: regs.tls.caFile };
    const fill = async (ref: string, legacy: boolean): Promise<void> => {
      await openSignWithServices(page, server.origin, ref, { signingConfig, trustedRoot: stack.trustedRootFile });
      await page.getByRole('radio', { name: /Sign with your identity/ }).check();
      const legacyBox = page.getByRole('checkbox', { name: /Legacy/ });
      if ((await legacyBox.isChecked()) !== legacy) await legacyBox.click();
    };
    const out: SignKeylessBench = {
      pageBundleMs: [],
      pageBothMs: [],
      pageBothFromLoginMs: [],
      cosign3Ms: [],
      logWaitMs: { pageBundle: [], pageBoth: [], cosign3: [] },
    };
    // The consent for the issuer is given once, outside the timing.
    const first = await pushSampleImage(tls, 'bench/keyless-consent', 'v1');
    await fill(first.ref, false);
    await signKeyless(page, true);
    const pageSigning = async (i: number, legacy: boolean): Promise<[number, number, number]> => {
      const image = await pushSampleImage(tls, `bench/keyless-${legacy ? 'both' : 'bundle'}-${i}`, 'v1');
      await fill(image.ref, legacy);
      return signKeyless(page, false);
    };
    const cosignSigning = async (i: number): Promise<[number, number]> => {
      const other = await pushSampleImage(tls, `bench/keyless-cosign-${i}`, 'v1');
      const flags = ['--identity-token', await issuer.token({ email: EMAIL })];
      const { trustedRootFile: trustedRoot } = stack;
      return timedCosignSign({ flags, signingConfig: cosignConfig, trustedRoot, ref: other.ref, env, timer });
    };
    await takeTurns(runs, (i) => [
      async () => ([out.pageBundleMs[i], , out.logWaitMs.pageBundle[i]] = await pageSigning(i, false)),
      async () =>
        ([out.pageBothMs[i], out.pageBothFromLoginMs[i], out.logWaitMs.pageBoth[i]] = await pageSigning(i, true)),
      async () => ([out.cosign3Ms[i], out.logWaitMs.cosign3[i]] = await cosignSigning(i)),
    ]);
    // Round 0 was the warm-up.
    const { logWaitMs, ...totals } = out;
    for (const list of [...Object.values(totals), ...Object.values(logWaitMs)]) list.shift();
    await page.close();
    return out;
  } finally {
    await timer.close();
    await server.stop();
    await stack.stop();
    await fulcio.stop();
    await issuer.stop();
    await home.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

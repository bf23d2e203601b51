/**
 * `npm run bench`: measured figures, each next to its baseline measured in the same run.
 *
 * Sections: scrypt (below); signing on the page next to the cosign CLI (bench/sign.ts);
 * verifying 100 signatures on the page next to cosign (bench/verify.ts); the relay's streaming
 * throughput and memory next to direct registry access (bench/relay.ts); signing through
 * the relay's PKCS#11 endpoint on SoftHSM next to `pkcs11-tool --sign` (bench/pkcs11.ts); nginx and
 * two relays sharing their locks in Redis next to one relay, and the lock round trip (bench/relays.ts); copying
 * a signed image on the page and with the shared code next to `skopeo copy` (bench/copy.ts); the
 * JavaScript a first visit loads per route, plain, gzip and brotli (bench/first-load.ts).
 *
 * scrypt (cosign's key derivation, N=65536 r=8 p=1): node's native scrypt (OpenSSL) is the
 * baseline; then each JavaScript/WebAssembly implementation in Node, the same in Chromium inside
 * the app's own worker, and the whole "Unlock key" action on the real page (click to "Key ready"),
 * with the page's normal CSP and with a CSP that forbids WebAssembly (the scrypt-js fallback).
 *
 * `BENCH_ONLY=hash,keyless npm run bench` runs only the named sections (scrypt, unlock, sigstore,
 * sign, sign-tlog, sign-keyless, verify, hash, keyless, relay, relays, copy, growth, pkcs11, firstload); without it, all of them.
 * `BENCH_OLD_DIST=<another build's dist/>` (e.g. of main, built in a worktree of its own) has that
 * page take turns with this one's in the hash and keyless sections, so old and new share a run.
 */
import { serve } from '@hono/node-server';
import { chromium, type Browser } from 'playwright';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { scrypt as nodeScrypt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { scrypt, type ScryptImpl } from '../shared/crypto/scrypt.ts';
import { CONTENT_SECURITY_POLICY, createApp } from '../server/app.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../test/chromium.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const N = 65536;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const password = new TextEncoder().encode('bench password');
const salt = new Uint8Array(32).fill(7);

const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
/** Whether a section runs: all of them unless BENCH_ONLY names some. */
const want = (section: string): boolean => !ONLY || ONLY.includes(section);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number): string => `${ms.toFixed(0).padStart(5)} ms`;
const rows: [string, number, string][] = [];
function row(name: string, ms: number, note = ''): void {
  rows.push([name, ms, note]);
  console.log(`  ${name.padEnd(58)} ${fmt(ms)}  ${note}`);
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

async function nodeSection(): Promise<number> {
  console.log(`scrypt N=${N} r=8 p=1 in Node ${process.version} (median of ${RUNS})`);
  const native = median(
    await time(
      () =>
        new Promise((res, rej) =>
          nodeScrypt(password, salt, 32, { N, r: 8, p: 1, maxmem: 256 * 2 ** 20 }, (e, k) => (e ? rej(e) : res(k))),
        ),
    ),
  );
  row('node native crypto.scrypt (baseline)', native);
  for (const impl of ['wasm', 'noble', 'js'] as ScryptImpl[]) {
    const ms = median(await time(() => scrypt(password, salt, { N, r: 8, p: 1 }, { impl })));
    row(
      `node ${impl === 'wasm' ? 'hash-wasm (WebAssembly)' : impl === 'js' ? 'scrypt-js' : '@noble/hashes'}`,
      ms,
      `${(ms / native).toFixed(2)}× native`,
    );
  }
  return native;
}

function listen(staticRoot: string, csp: string): Promise<{ url: string; close(): void }> {
  const app = createApp({ staticRoot });
  // The bench may tighten the CSP to force the scrypt-js fallback.
  const wrapped = async (req: Request): Promise<Response> => {
    const res = await app.fetch(req);
    const headers = new Headers(res.headers);
    if (headers.has('content-security-policy')) headers.set('content-security-policy', csp);
    return new Response(res.body, { status: res.status, headers });
  };
  return new Promise((resolve) => {
    const server = serve({ fetch: wrapped, port: 0, hostname: '127.0.0.1' }, (info) =>
      resolve({ url: `http://localhost:${info.port}`, close: () => server.close() }),
    );
  });
}

async function chromiumWorkerSection(browser: Browser, native: number): Promise<void> {
  console.log(`\nscrypt N=${N} in Chromium, in the app's scrypt worker (median of ${RUNS}; worker's own timing)`);
  const site = await listen(join(ROOT, 'bench/dist'), CONTENT_SECURITY_POLICY);
  const page = await browser.newPage();
  await page.goto(site.url + '/');
  for (const impl of ['wasm', 'noble', 'js'] as const) {
    const results: number[] = [];
    await page.evaluate(([i, n]) => window.benchScrypt(i, n), [impl, N] as const);
    for (let i = 0; i < RUNS; i++)
      results.push((await page.evaluate(([i, n]) => window.benchScrypt(i, n), [impl, N] as const)).ms);
    const ms = median(results);
    row(
      `chromium worker ${impl === 'wasm' ? 'hash-wasm (WebAssembly)' : impl === 'js' ? 'scrypt-js' : '@noble/hashes'}`,
      ms,
      `${(ms / native).toFixed(2)}× node native`,
    );
  }
  await page.close();
  site.close();
}

async function unlockSection(browser: Browser, native: number): Promise<void> {
  console.log(
    `\n"Unlock key" on the real page, a cosign 2.5 key (N=${N}): click to "Key ready" (median of ${RUNS}, first run apart)`,
  );
  const key = join(ROOT, 'test/vectors/keys/cosign2-pw.key');
  const noWasm = CONTENT_SECURITY_POLICY.replace(" 'wasm-unsafe-eval'", '');
  for (const [label, csp] of [
    ['page CSP (WebAssembly allowed)', CONTENT_SECURITY_POLICY],
    ['CSP without wasm-unsafe-eval (scrypt-js fallback)', noWasm],
  ] as const) {
    const site = await listen(join(ROOT, 'dist'), csp);
    const page = await browser.newPage();
    await page.goto(site.url + '/#/keys');
    const times: number[] = [];
    let how = '';
    const scryptMs: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      await page.getByLabel('Cosign private key').setInputFiles(key);
      await page.getByLabel('Key password', { exact: true }).fill('correct horse');
      // Timed inside the page, from the click event to the status text changing, so Playwright's
      // polling adds nothing.
      await page.evaluate(() => {
        const w = window as unknown as { unlockMs: Promise<number> };
        w.unlockMs = new Promise((resolve) => {
          let t0 = 0;
          document.addEventListener('click', () => (t0 = performance.now()), { capture: true, once: true });
          new MutationObserver((_, obs) => {
            if (document.querySelector('[role=status]')?.textContent?.includes('Key ready')) {
              obs.disconnect();
              resolve(performance.now() - t0);
            }
          }).observe(document.body, { subtree: true, childList: true, characterData: true });
        });
      });
      await page.getByRole('button', { name: 'Unlock key' }).click();
      times.push(await page.evaluate(() => (window as unknown as { unlockMs: Promise<number> }).unlockMs));
      how = (await page.getByRole('status').textContent()) ?? '';
      scryptMs.push(Number(/scrypt took (\d+) ms/.exec(how)?.[1] ?? NaN));
      await page.evaluate(() => document.querySelector('[role=status]')?.replaceChildren());
      await page.reload();
    }
    const impl = /\(([^)]*)\)\.?\s*$/.exec(how)?.[1] ?? '?';
    row(`unlock, ${label}: first`, times[0]!, `${impl}`);
    const ms = median(times.slice(1));
    row(`unlock, ${label}: median`, ms, `${(ms / native).toFixed(2)}× node native scrypt`);
    row(`  of which scrypt in the worker: median`, median(scryptMs.slice(1)), '');
    await page.close();
    site.close();
  }
}

async function registrySections(browser: Browser): Promise<void> {
  // The real registries and the app's server with its relay set for them, as the e2e tests run it.
  process.env.E2E_PORT ??= '8097';
  if (!['sign', 'sign-tlog', 'sign-keyless', 'verify', 'hash', 'keyless', 'relay', 'relays', 'copy'].some(want)) return;
  const { default: globalSetup } = await import('../test/e2e/global-setup.ts');
  const teardown = await globalSetup();
  try {
    const { registriesFromEnv } = await import('../test/rig/registries.ts');
    const regs = registriesFromEnv()!;
    if (want('sign')) await signSection(browser, regs);
    if (want('sign-tlog')) await signTlogSection(browser, regs);
    if (want('sign-keyless')) await signKeylessSection(browser, regs);
    if (want('verify')) await verifySection(browser, regs);
    if (want('hash')) await hashSection(browser);
    if (want('keyless')) await keylessSection(browser, regs);
    if (want('relay')) await relaySection(regs);
    if (want('relays')) await relaysSection(regs);
    if (want('copy')) await copySection(browser, regs);
  } finally {
    await teardown();
  }
}

/** The app's server that registrySections starts (E2E_PORT). */
const baseUrl = (): string => `http://localhost:${process.env.E2E_PORT}`;

async function signSection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchSign } = await import('./sign.ts');
  console.log(`\nSigning, key already unlocked, through the relay (median of ${RUNS}, first run apart)`);
  const s = await benchSign(browser, baseUrl(), regs, RUNS);
  for (const [kind, f, flag] of [
    ['a single-platform image', s.image, ''],
    ['an index of 3 manifests', s.index, ' --recursive'],
  ] as const) {
    const page = median(f.pageMs);
    const c2 = median(f.cosign2Ms);
    const c3 = median(f.cosign3Ms);
    row(`${kind}: cosign 2.5 sign${flag} (legacy .sig)`, c2, '');
    row(`${kind}: cosign 3.1 sign${flag} (bundle)`, c3, '');
    row(`  cosign 2.5 + 3.1, both formats (baseline)`, c2 + c3, '');
    row(`  page: click "Sign" to both formats pushed`, page, `${(page / (c2 + c3)).toFixed(2)}× cosign 2.5 + 3.1`);
  }
}

async function signTlogSection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchSignTlog } = await import('./sign-tlog.ts');
  console.log(
    `\nSigning with the real Rekor v2 and TSA on loopback, key unlocked (median of ${RUNS}, first run apart)`,
  );
  const s = await benchSignTlog(browser, regs, RUNS);
  const c3 = median(s.cosign3Ms);
  row('cosign 3.1 sign, same key file, signing config and root', c3, '');
  const page = median(s.pageBundleMs);
  row('page: click "Sign" to bundle pushed (logged, timestamped)', page, `${(page / c3).toFixed(2)}× cosign 3.1`);
  const both = median(s.pageBothMs);
  row('page: both formats (bundle logged, both timestamped)', both, `${(both / c3).toFixed(2)}× cosign 3.1`);
  // The log answers at its next checkpoint (every second in the rig): each signing's own time is
  // its total less that wait, medians of each.
  const own = (total: number[], wait: number[]): number => median(total.map((t, i) => t - wait[i]!));
  const w = s.logWaitMs;
  row('  of which the log upload (waiting for a checkpoint): cosign 3.1', median(w.cosign3), '');
  row('  page, bundle / both formats', median(w.pageBundle), `both: ${median(w.pageBoth).toFixed(0)} ms`);
  const c3own = own(s.cosign3Ms, w.cosign3);
  row('  the rest, cosign 3.1', c3own, '');
  const pageOwn = own(s.pageBundleMs, w.pageBundle);
  const bothOwn = own(s.pageBothMs, w.pageBoth);
  row('  the rest, page: bundle', pageOwn, `${(pageOwn / c3own).toFixed(2)}× cosign's rest`);
  row('  the rest, page: both formats', bothOwn, `${(bothOwn / c3own).toFixed(2)}× cosign's rest`);
}

async function signKeylessSection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchSignKeyless } = await import('./sign-keyless.ts');
  console.log(
    `\nSigning keyless with the real Fulcio, Rekor v2 and TSA and the rig's issuer on loopback (median of ${RUNS}, first run apart)`,
  );
  const s = await benchSignKeyless(browser, regs, RUNS);
  const c3 = median(s.cosign3Ms);
  row('cosign 3.1 sign --identity-token, same config and root', c3, '');
  const bundle = median(s.pageBundleMs);
  row('page: token in hand to bundle pushed', bundle, `${(bundle / c3).toFixed(2)}× cosign 3.1`);
  const both = median(s.pageBothMs);
  row('page: token in hand to both formats pushed', both, `${(both / c3).toFixed(2)}× cosign 3.1`);
  row('  the same from clicking "Sign in" at the issuer', median(s.pageBothFromLoginMs), '');
  const w = s.logWaitMs;
  row('  of which the log upload (waiting for a checkpoint): cosign 3.1', median(w.cosign3), '');
  row('  page, bundle / both formats', median(w.pageBundle), `both: ${median(w.pageBoth).toFixed(0)} ms`);
  const own = (totals: number[], waits: number[]): number => median(totals.map((t, i) => t - waits[i]!));
  const cosignOwn = own(s.cosign3Ms, w.cosign3);
  row('  the rest, cosign 3.1', cosignOwn, '');
  for (const [name, totals, waits] of [
    ['bundle', s.pageBundleMs, w.pageBundle],
    ['both formats', s.pageBothMs, w.pageBoth],
  ] as const) {
    const mine = own(totals, waits);
    row(`  the rest, page: ${name}`, mine, `${(mine / cosignOwn).toFixed(2)}× cosign's rest`);
  }
}

async function verifySection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchVerify } = await import('./verify.ts');
  console.log(`\nVerifying a .sig with 100 signatures (median of ${RUNS})`);
  const v = await benchVerify({ runs: RUNS, browser, baseUrl: baseUrl(), regs });
  row('cosign 2.5 verify (baseline)', v.cosign2MedianMs, '');
  row('page in Chromium, through the relay: first', v.pageFirstMs, '');
  row(
    'page in Chromium, through the relay: median',
    v.pageMedianMs,
    `${(v.pageMedianMs / v.cosign2MedianMs).toFixed(1)}× cosign`,
  );
  row('shared code in Node, direct to the registry', v.nodeMedianMs, '');
  row('shared code in Node, through the relay', v.nodeRelayMedianMs, '');
}

async function hashSection(browser: Browser): Promise<void> {
  const { benchHash } = await import('./hash.ts');
  // BENCH_OLD_DIST: another build's dist/ (e.g. of main), its page taking turns with this one's.
  const old = process.env.BENCH_OLD_DIST ? await listen(process.env.BENCH_OLD_DIST, CONTENT_SECURITY_POLICY) : null;
  const h = await benchHash(browser, baseUrl(), 1024, Number(process.env.BENCH_HASH_RUNS ?? 3), old?.url);
  old?.close();
  console.log(`\nHashing a ${h.sizeMiB} MiB file (written, in the page cache; median of ${h.runs}, taking turns)`);
  row('sha256sum (baseline)', h.sha256sumMs, `${((h.sizeMiB / h.sha256sumMs) * 1000).toFixed(0)} MiB/s`);
  row(
    'the page, "File to verify" to digest (one worker, streamed)',
    h.pageMs,
    `${((h.sizeMiB / h.pageMs) * 1000).toFixed(0)} MiB/s, ${(h.sha256sumMs / h.pageMs).toFixed(2)}× sha256sum's speed`,
  );
  if (h.oldPageMs !== undefined)
    row(
      '  the page built from BENCH_OLD_DIST, same turns',
      h.oldPageMs,
      `${(h.sha256sumMs / h.oldPageMs).toFixed(2)}× sha256sum's speed`,
    );
}

async function keylessSection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchKeyless } = await import('./keyless.ts');
  console.log(`\nVerifying keyless images on the page through the relay, against a trusted root (median of ${RUNS})`);
  const old = process.env.BENCH_OLD_DIST ? await oldServer(regs, process.env.BENCH_OLD_DIST) : null;
  try {
    for (const k of await benchKeyless(browser, baseUrl(), regs, RUNS, old?.url)) {
      row(`${k.name.slice(0, 50)}: cosign 3.1 verify (baseline)`, k.cosign3Ms);
      row(`  the page in Chromium, click to verdict`, k.pageMs, `${(k.pageMs / k.cosign3Ms).toFixed(2)}× cosign`);
      if (k.oldPageMs !== undefined)
        row(
          `  the page built from BENCH_OLD_DIST, same turns`,
          k.oldPageMs,
          `${(k.oldPageMs / k.cosign3Ms).toFixed(2)}× cosign`,
        );
    }
  } finally {
    await old?.stop();
  }
}

/** The app's server (this code) serving another build of the page (STATIC_ROOT), relaying to the rig's TLS registry. */
async function oldServer(regs: RegistriesInfo, dist: string): Promise<{ url: string; stop(): Promise<void> }> {
  const { startAppServer } = await import('../test/rig/app-server.ts');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'cosign-web-bench-old-'));
  const server = await startAppServer(dir, {
    STATIC_ROOT: dist,
    RELAY_ALLOWED_REGISTRIES: regs.tls.host,
    RELAY_PRIVATE_REGISTRIES: regs.tls.host,
    NODE_EXTRA_CA_CERTS: regs.tls.caFile,
    EMBEDDED_REGISTRY: 'off',
  });
  return {
    url: server.origin,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function relaySection(regs: RegistriesInfo): Promise<void> {
  const { benchRelay } = await import('./relay.ts');
  const sizeMiB = Number(process.env.BENCH_RELAY_MIB ?? 512);
  console.log(`\nA ${sizeMiB} MiB blob up and down, direct to the TLS registry and through the relay`);
  const r = await benchRelay({ registry: regs.tls, sizeBytes: sizeMiB * 2 ** 20 });
  console.log(
    `  direct up / down                                         ${r.directUpMBps.toFixed(0)} / ${r.directDownMBps.toFixed(0)} MB/s`,
  );
  console.log(
    `  relay up / down                                          ${r.relayUpMBps.toFixed(0)} / ${r.relayDownMBps.toFixed(0)} MB/s`,
  );
  console.log(
    `  relay / direct: up ${(r.relayUpMBps / r.directUpMBps).toFixed(2)}, down ${(r.relayDownMBps / r.directDownMBps).toFixed(2)}, both ${r.ratio.toFixed(2)} (median of ${r.rounds} rounds taking turns)`,
  );
  console.log(
    `  relay CPU per MiB: up ${r.relayCpuMsPerMiBUp.toFixed(1)} ms, down ${r.relayCpuMsPerMiBDown.toFixed(1)} ms`,
  );
  console.log(
    `  relay RSS: idle ${r.relayBaseRssMB.toFixed(0)} MiB, peak ${r.relayPeakRssMB.toFixed(0)} MiB (+${r.relayRssGrowthMB.toFixed(0)} MiB)`,
  );
}

async function relaysSection(regs: RegistriesInfo): Promise<void> {
  const { benchRelays } = await import('./relays.ts');
  const sizeMiB = Number(process.env.BENCH_RELAY_MIB ?? 512);
  console.log(`\nA ${sizeMiB} MiB blob up and down through nginx and two relays (locks in Redis), next to one relay`);
  const r = await benchRelays(regs, sizeMiB * 2 ** 20);
  const mbps = (x: { upMBps: number; downMBps: number }): string =>
    `${x.upMBps.toFixed(0)} / ${x.downMBps.toFixed(0)} MB/s`;
  console.log(`  one relay up / down                                      ${mbps(r.oneRelay)}`);
  console.log(`  nginx + two relays up / down                             ${mbps(r.nginxTwoRelays)}`);
  console.log(`  nginx + two relays / one relay throughput                ${r.ratio.toFixed(2)}`);
  console.log(`Tag lock acquire + release round trip over HTTP (${r.lockRounds} rounds)`);
  const lock = (x: { medianMs: number; p99Ms: number }): string =>
    `median ${x.medianMs.toFixed(2)} ms, p99 ${x.p99Ms.toFixed(2)} ms`;
  row('  locks in Redis (one relay, RELAY_LOCKS_URL)', r.redisLock.medianMs, lock(r.redisLock));
  row('  locks in memory (one relay)', r.memoryLock.medianMs, lock(r.memoryLock));
  row('  the Redis store alone (acquire + release scripts)', r.redisStore.medianMs, lock(r.redisStore));
}

async function copySection(browser: Browser, regs: RegistriesInfo): Promise<void> {
  const { benchCopy } = await import('./copy.ts');
  const copyMiB = Number(process.env.BENCH_COPY_MIB ?? 256);
  console.log(
    `\nCopying a signed ${copyMiB} MiB image from the TLS registry to the basic-auth one (medians of rounds taking turns)`,
  );
  const c = await benchCopy({ regs, baseUrl: baseUrl(), browser, sizeMiB: copyMiB, log: (l) => console.log(`  ${l}`) });
  const vsSkopeo = (mbps: number | null | undefined): string =>
    `${mbps?.toFixed(0)} MB/s  ${((mbps ?? NaN) / c.skopeoMBps).toFixed(2)}× skopeo`;
  for (const n of c.node) {
    const how =
      n.chunkMiB === null ? "relay's blob transfer   " : `bytes via Node, ${String(n.chunkMiB).padStart(2)} MiB chunks`;
    console.log(`  shared code in Node, through the relay, ${how}  ${vsSkopeo(n.MBps)}`);
  }
  if (c.relayCpuMsPerMiB !== null)
    console.log(
      `    the server's CPU during the relay's transfers: ${c.relayCpuMsPerMiB.toFixed(2)} ms per MiB copied`,
    );
  console.log(`  page in Chromium, through the relay (click to "Copied")     ${vsSkopeo(c.pageMBps)}`);
  console.log(`  skopeo copy, direct (baseline)                             ${c.skopeoMBps.toFixed(0)} MB/s`);
}

async function sigstoreSection(browser: Browser): Promise<void> {
  console.log(`\nSigstore bundle verification, certificate + log (+ timestamp), offline (median of ${RUNS})`);
  const site = await listen(join(ROOT, 'bench/dist'), CONTENT_SECURITY_POLICY);
  const page = await browser.newPage();
  await page.goto(site.url + '/');
  const { benchSigstore } = await import('./sigstore.ts');
  for (const f of await benchSigstore(page, RUNS)) {
    row(`${f.name}: cosign 3.1 verify-blob (baseline, a process)`, f.cosign);
    row(`${f.name}: in Chromium, shared code`, f.chromium, `${(f.chromium / f.cosign).toFixed(2)}× cosign`);
    row(`${f.name}: in Node, shared code`, f.node, `${(f.node / f.cosign).toFixed(2)}× cosign`);
    row(`${f.name}: cosign-web verify-bundle (a process)`, f.cli, `${(f.cli / f.cosign).toFixed(2)}× cosign`);
  }
  await page.close();
  site.close();
}

async function firstLoadSection(browser: Browser): Promise<void> {
  const { benchFirstLoad } = await import('./first-load.ts');
  console.log('\nJavaScript a first visit loads, per route (fresh context, page shown, network idle)');
  const site = await listen(join(ROOT, 'dist'), CONTENT_SECURITY_POLICY);
  const pub = encodeURIComponent(readFileSync(join(ROOT, 'test/vectors/keys/cosign2-pw.pub'), 'utf8'));
  const link = `#/verify?image=${encodeURIComponent(`localhost:1/bench@sha256:${'0'.repeat(64)}`)}&key=${pub}`;
  const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
  for (const f of await benchFirstLoad(browser, site.url, join(ROOT, 'dist'), [
    { route: '#/welcome', heading: 'Start' },
    { route: '#/keys', heading: 'Keys' },
    { route: link, heading: 'Verify' },
  ])) {
    console.log(
      `  ${f.route.slice(0, 24).padEnd(24)} ${String(f.scripts).padStart(2)} scripts: ${kib(f.plainBytes)} plain, ` +
        `${kib(f.gzipBytes)} gzip, ${kib(f.brotliBytes)} brotli; sent ${kib(f.transferredBytes)} (${f.encoding})` +
        (f.workerBrotliBytes ? `; then a worker started early, ${kib(f.workerBrotliBytes)} brotli` : ''),
    );
  }
  site.close();
}

async function growthSection(): Promise<void> {
  const { benchGrowth } = await import('./growth.ts');
  console.log('\nGrowth: the shared code in Node against the embedded registry in-process, n/10 and n (median of 3)');
  for (const g of await benchGrowth()) {
    const heap = `heap +${g.smallHeapMiB.toFixed(1)} / +${g.largeHeapMiB.toFixed(1)} MiB`;
    console.log(
      `  ${`${g.what}, n = ${g.small} / ${g.large}`.padEnd(58)} ${g.smallMs.toFixed(0).padStart(5)} / ${g.largeMs.toFixed(0).padStart(5)} ms  time ×${(g.largeMs / g.smallMs).toFixed(1)} for work ×${(g.large / g.small).toFixed(1)}, ${heap}`,
    );
  }
}

async function main(): Promise<void> {
  console.log(`cosign-web bench, ${new Date().toISOString()}, ${process.platform} ${process.arch}`);
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync('npx', ['vite', 'build', '--config', 'bench/vite.config.ts'], { cwd: ROOT, stdio: 'inherit' });
  const native = want('scrypt') || want('unlock') ? await nodeSection() : NaN;
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  try {
    console.log(`(Chromium ${browser.version()})`);
    if (want('scrypt')) await chromiumWorkerSection(browser, native);
    if (want('unlock')) await unlockSection(browser, native);
    if (want('sigstore')) await sigstoreSection(browser);
    if (want('firstload')) await firstLoadSection(browser);
    await registrySections(browser);
  } finally {
    await browser.close();
  }
  if (want('growth')) await growthSection();
  if (!want('pkcs11')) return;
  const { benchPkcs11, printPkcs11 } = await import('./pkcs11.ts');
  const pkcs11Runs = Number(process.env.BENCH_PKCS11_RUNS ?? 100);
  console.log(`\nPKCS#11 signing on SoftHSM2, a simple-signing payload (${pkcs11Runs} signatures per figure)`);
  printPkcs11(await benchPkcs11(pkcs11Runs), pkcs11Runs);
}

await main();

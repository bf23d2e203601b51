/**
 * Verification figures for `npm run bench`: verifying a `.sig` manifest holding 100 signatures
 * (one key, 100 payloads that differ by an annotation, since cosign keeps a single signature per
 * key and payload), measured in the same run
 *   - on the real page in Chromium, from clicking "Verify" to the "Verified" status, through the
 *     real relay to a real distribution 2.8 registry (timed inside the page);
 *   - with the same shared code in Node, fetching the registry directly (no relay, no page);
 *   - with `cosign2 verify --key` on the same image (the baseline; process start included).
 * Everything it needs (registries, the server, Chromium) is started here unless passed in.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright';
import { parsePlainPrivateKeyPem, publicKeyPem } from '../shared/crypto/keys.ts';
import { importPrivateKey, signWithCryptoKey } from '../shared/crypto/webcrypto.ts';
import { toBase64 } from '../shared/encoding/base64.ts';
import { RegistryClient, relayRouting } from '../shared/registry/client.ts';
import { MT } from '../shared/registry/mediatypes.ts';
import { buildSigManifest, sigLayer, sigTag } from '../shared/cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../shared/cosign/payload.ts';
import { verifyImage } from '../shared/ops/verify.ts';
import { caFetch } from '../test/integration/ca-fetch.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../test/chromium.ts';
import { pushSampleImage } from '../test/rig/images.ts';
import { freePort, registriesInfo, startRegistries, type RegistriesInfo } from '../test/rig/registries.ts';
import { cosignEnv, cosignVerifyArgs, makeToolHome, runOk } from '../test/rig/tools.ts';
import { traceRequests } from './sign.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SIGNATURES = 100;

export interface VerifyBenchOptions {
  /** Timed runs after one warm-up (default BENCH_RUNS or 5). */
  runs?: number;
  browser?: Browser;
  /** A running server (with its relay allowed to reach `regs`); started here when absent. */
  baseUrl?: string;
  regs?: RegistriesInfo;
}

export interface VerifyBench {
  signatures: number;
  runs: number;
  /** Chromium, the real page through the relay: the first run (cold), then each timed run. */
  pageFirstMs: number;
  pageMs: number[];
  pageMedianMs: number;
  /** Node, the same shared code with a direct fetch. */
  nodeMs: number[];
  nodeMedianMs: number;
  /** Node, the same shared code through the relay, as many requests in flight as the page. */
  nodeRelayMedianMs: number;
  /** cosign 2.5 `verify --key` on the same image (the baseline). */
  cosign2Ms: number[];
  cosign2MedianMs: number;
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Timed runs of verifyImage after one warm-up, each checked to verify every signature. */
async function nodeRuns(
  client: RegistryClient,
  ref: string,
  spki: Uint8Array,
  runs: number,
  concurrency?: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i <= runs; i++) {
    let count = 0;
    const ms = await timed(async () => {
      const r = await verifyImage(client, { image: ref, spki, ...(concurrency ? { concurrency } : {}) });
      count = r.manifests[0]!.signatures.filter((s) => s.verified).length;
    });
    if (count !== SIGNATURES) throw new Error(`the verifier verified ${count} signatures, not ${SIGNATURES}`);
    if (i > 0) out.push(ms);
  }
  return out;
}

/** Pushes an image and a `.sig` manifest with `n` signatures by the key in `pem`. */
async function signedImage(regs: RegistriesInfo, pem: string, n: number): Promise<{ ref: string; pub: string }> {
  const info = parsePlainPrivateKeyPem(pem);
  const key = await importPrivateKey(info);
  const image = await pushSampleImage({ host: regs.tls.host, caFile: regs.tls.caFile }, 'bench/verify', 'v1');
  const client = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
  const repo = { registry: regs.tls.host, repository: 'bench/verify' };
  const layers = [];
  for (let i = 0; i < n; i++) {
    const payload = buildSimpleSigningPayload(image.repository, image.digest, { n: String(i) });
    const signature = await signWithCryptoKey(key, info.algorithm, payload);
    await client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning });
    layers.push(sigLayer(payload, toBase64(signature)));
  }
  const { manifest, config } = buildSigManifest(layers);
  await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
  await client.putManifest(repo, sigTag(image.digest), manifest, MT.ociManifest);
  return { ref: image.ref, pub: publicKeyPem(info.spki) };
}

async function startServer(regs: RegistriesInfo): Promise<{ url: string; stop(): void }> {
  if (!existsSync(join(ROOT, 'dist', 'index.html'))) {
    execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  }
  const port = await freePort();
  const server = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      RELAY_ALLOWED_REGISTRIES: regs.tls.host,
      RELAY_PRIVATE_REGISTRIES: regs.tls.host,
      NODE_EXTRA_CA_CERTS: regs.tls.caFile,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://localhost:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (i > 300) {
      server.kill('SIGKILL');
      throw new Error('the server did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop: () => server.kill('SIGTERM') };
}

/** One click on "Verify", timed inside the page up to the "Verified" status. */
/** Milliseconds from the click on "Verify" to a "Verified" status on the Verify page. */
export async function pageRun(page: Page): Promise<number> {
  const trace = process.env.BENCH_VERIFY_TRACE ? traceRequests(page) : null;
  await page.evaluate(() => {
    const w = window as unknown as { verifyMs: Promise<number>; clickAt: number };
    w.verifyMs = new Promise((resolve) => {
      let t0 = 0;
      let working = false;
      document.addEventListener('click', () => (t0 = performance.now()), { capture: true, once: true });
      new MutationObserver((_, obs) => {
        const text = document.querySelector('[role=status]')?.textContent?.trim() ?? '';
        if (text.startsWith('Verifying')) working = true;
        else if (working && (text.startsWith('Verified') || text.startsWith('Not verified'))) {
          obs.disconnect();
          w.clickAt = performance.timeOrigin + t0; // for BENCH_VERIFY_TRACE
          resolve(text.startsWith('Verified') ? performance.now() - t0 : NaN);
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
  });
  await page.getByRole('button', { name: 'Verify', exact: true }).click();
  const ms = await page.evaluate(() => (window as unknown as { verifyMs: Promise<number> }).verifyMs);
  if (trace) await trace(ms);
  if (Number.isNaN(ms))
    throw new Error(`verifying on the page failed: ${await page.getByRole('status').textContent()}`);
  return ms;
}

export async function benchVerify(opts: VerifyBenchOptions = {}): Promise<VerifyBench> {
  const runs = opts.runs ?? Number(process.env.BENCH_RUNS ?? 5);
  const started = opts.regs ? null : await startRegistries({ token: false });
  const regs = opts.regs ?? registriesInfo(started!);
  const home = await makeToolHome('cosign-web-bench-verify-');
  const server = opts.baseUrl ? null : await startServer(regs);
  const baseUrl = opts.baseUrl ?? server!.url;
  const browser = opts.browser ?? (await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS }));
  try {
    const pem = readFileSync(join(ROOT, 'test/vectors/keys/ec-p256-pkcs8.pem'), 'utf8');
    const { ref, pub } = await signedImage(regs, pem, SIGNATURES);
    const pubFile = join(home.dir, 'cosign.pub');
    writeFileSync(pubFile, pub);
    const spki = parsePlainPrivateKeyPem(pem).spki;

    // cosign 2.5, checked to see all 100 first.
    const env = cosignEnv(home, { caFile: regs.tls.caFile });
    const seen = JSON.parse((await runOk('cosign2', cosignVerifyArgs(pubFile, ref), { env })).stdout) as unknown[];
    if (seen.length !== SIGNATURES) throw new Error(`cosign2 verified ${seen.length} signatures, not ${SIGNATURES}`);
    const cosign2Ms: number[] = [];
    for (let i = 0; i < runs; i++)
      cosign2Ms.push(await timed(() => runOk('cosign2', cosignVerifyArgs(pubFile, ref), { env })));

    // The shared code in Node, direct to the registry, then through the relay (the page's concurrency).
    const nodeMs = await nodeRuns(new RegistryClient({ fetch: caFetch(regs.tls.caFile) }), ref, spki, runs);
    const relayed = new RegistryClient({ fetch: (i, init) => globalThis.fetch(i, init), ...relayRouting(baseUrl) });
    const nodeRelayMs = await nodeRuns(relayed, ref, spki, runs, 12);

    // The real page, through the relay.
    const page = await browser.newPage();
    await page.goto(`${baseUrl}/#/verify`);
    await page.getByLabel('Image reference').fill(ref);
    await page.getByLabel('Public key', { exact: true }).fill(pub);
    const pageFirstMs = await pageRun(page);
    const text = (await page.getByRole('status').textContent()) ?? '';
    if (!text.startsWith(`Verified: ${SIGNATURES} signatures`)) throw new Error(`the page said: ${text}`);
    const pageMs: number[] = [];
    for (let i = 0; i < runs; i++) pageMs.push(await pageRun(page));
    await page.close();

    return {
      signatures: SIGNATURES,
      runs,
      pageFirstMs,
      pageMs,
      pageMedianMs: median(pageMs),
      nodeMs,
      nodeMedianMs: median(nodeMs),
      nodeRelayMedianMs: median(nodeRelayMs),
      cosign2Ms,
      cosign2MedianMs: median(cosign2Ms),
    };
  } finally {
    if (!opts.browser) await browser.close();
    server?.stop();
    await home.cleanup();
    await started?.stop();
  }
}

// Run on its own: `npx tsx bench/verify.ts`.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await benchVerify();
  const f = (ms: number): string => `${ms.toFixed(0).padStart(6)} ms`;
  console.log(`verify a .sig with ${r.signatures} signatures (median of ${r.runs})`);
  console.log(`  cosign2 verify --key (baseline)                  ${f(r.cosign2MedianMs)}`);
  console.log(
    `  shared code in Node, direct fetch                ${f(r.nodeMedianMs)}  ${(r.nodeMedianMs / r.cosign2MedianMs).toFixed(2)}× cosign2`,
  );
  console.log(`  Verify page in Chromium via the relay: first     ${f(r.pageFirstMs)}`);
  console.log(
    `  Verify page in Chromium via the relay: median    ${f(r.pageMedianMs)}  ${(r.pageMedianMs / r.cosign2MedianMs).toFixed(2)}× cosign2`,
  );
}

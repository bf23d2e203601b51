/**
 * Copy figures for `npm run bench`: a 256 MiB image (two random 128 MiB layers, signed by cosign
 * 2.5) copied from the TLS registry to the basic-auth one, through the relay, by the shared copy
 * code (shared/ops/copy.ts) in Node (with the relay's blob transfer, and sending the bytes itself
 * in chunks), by the real page in Chromium (click
 * "Copy" to "Copied"), and by the real `skopeo copy` between the same registries in the same run
 * (its sigstore attachments on, so it carries the `.sig` too). Every copy goes to a fresh
 * repository, so nothing is skipped.
 *
 * Runs on its own with the e2e server (the real registries and the server's relay):
 *   STATIC_ROOT=/tmp/dist E2E_PORT=8097 npx tsx bench/copy.ts
 */
import type { Browser } from 'playwright';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyImage } from '../shared/ops/copy.ts';
import { RegistryClient, relayRouting, type RepoRef } from '../shared/registry/client.ts';
import { MT } from '../shared/registry/mediatypes.ts';
import { utf8 } from '../shared/encoding/base64.ts';
import type { RegistriesInfo } from '../test/rig/registries.ts';
import { skopeoAccess } from '../test/rig/images.ts';
import { caFetch } from '../test/integration/ca-fetch.ts';
import {
  cosign2SignArgs,
  cosignEnv,
  makeToolHome,
  runOk,
  skopeoEnv,
  skopeoRegistryFlags,
  type ToolHome,
} from '../test/rig/tools.ts';

const MiB = 1024 * 1024;

export interface CopyBenchOptions {
  regs: RegistriesInfo;
  /** The server whose relay the page and the Node copies go through. */
  baseUrl: string;
  browser?: Browser;
  /** Image size (default 256 MiB, in two layers). */
  sizeMiB?: number;
  /** Chunk sizes tried by the Node copies that send the bytes themselves (default 8 MiB). */
  chunksMiB?: number[];
  log?: (line: string) => void;
}

export interface CopyBench {
  sizeMiB: number;
  /** Rounds taken in turns (BENCH_COPY_ROUNDS, default 3); figures are medians, the chunked copy runs once. */
  rounds: number;
  /**
   * MB/s (10^6 bytes) of image bytes, shared code in Node through the relay: with the relay's blob
   * transfer (chunkMiB null), and sending the bytes itself per chunk size (relayTransfer false).
   */
  node: { chunkMiB: number | null; MBps: number }[];
  /**
   * The server's CPU time (user + system, from /proc) per MiB of image copied by the Node copies
   * with the relay's transfer, median over the rounds; null when the server's pid is not known
   * (E2E_SERVER_PID, set by the e2e global setup) or /proc cannot be read.
   */
  relayCpuMsPerMiB: number | null;
  /** The page in Chromium, through the relay (its blob transfer), click to "Copied"; null without a browser. */
  pageMBps: number | null;
  /** skopeo copy, direct between the registries. */
  skopeoMBps: number;
}

/** Pushes `layers` random layers of `layerBytes` each, in 16 MiB chunks, and a manifest tagged v1. */
async function pushImage(client: RegistryClient, repo: RepoRef, layers: number, layerBytes: number): Promise<string> {
  const descriptors = [];
  for (let l = 0; l < layers; l++) {
    let session = await client.startUpload(repo);
    const hash = createHash('sha256');
    for (let sent = 0; sent < layerBytes; sent += 16 * MiB) {
      const chunk = randomBytes(Math.min(16 * MiB, layerBytes - sent));
      hash.update(chunk);
      session = await client.uploadChunk(session, chunk);
    }
    const digest = `sha256:${hash.digest('hex')}`;
    await client.finishUpload(session, digest);
    descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: layerBytes });
  }
  const config = await client.pushBlob(
    repo,
    utf8(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: descriptors.map((d) => d.digest) },
      }),
    ),
    { mediaType: MT.ociConfig },
  );
  const manifest = utf8(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: descriptors }));
  return client.putManifest(repo, 'v1', manifest, MT.ociManifest);
}

/** The e2e server's CPU time so far (user + system), in ms, or null (not this server, no /proc). */
function serverCpuMs(): number | null {
  const pid = process.env.E2E_SERVER_PID;
  if (!pid) return null;
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  } catch {
    return null;
  }
}

const seconds = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};

async function pageCopy(
  browser: Browser,
  baseUrl: string,
  regs: RegistriesInfo,
  source: string,
  dest: string,
): Promise<number> {
  const page = await browser.newPage();
  try {
    await page.goto(`${baseUrl}/#/copy?source=${encodeURIComponent(source)}&destination=${encodeURIComponent(dest)}`);
    await page.getByText('Registry credentials').click();
    await page.getByLabel('Destination registry username').fill(regs.basic.username);
    await page.getByLabel('Destination registry password').fill(regs.basic.password);
    // Timed inside the page from the click to the "Copied" status, so Playwright's polling adds nothing.
    await page.evaluate(() => {
      const w = window as unknown as { copyMs: Promise<number> };
      w.copyMs = new Promise((resolve) => {
        let t0 = 0;
        document.addEventListener('click', () => (t0 = performance.now()), { capture: true, once: true });
        new MutationObserver((_, obs) => {
          const el = document.querySelector('[role=status]');
          const text = el?.textContent?.trim() ?? '';
          if (text.startsWith('Copied') || el?.classList.contains('error')) {
            obs.disconnect();
            resolve(text.startsWith('Copied') ? performance.now() - t0 : NaN);
          }
        }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      });
    });
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    const ms = await page.evaluate(() => (window as unknown as { copyMs: Promise<number> }).copyMs);
    if (Number.isNaN(ms)) throw new Error(`copy on the page failed: ${await page.getByRole('status').textContent()}`);
    return ms / 1000;
  } finally {
    await page.close();
  }
}

/**
 * Runs the copies and returns their throughput.
 * @throws Error when a copy fails
 */
export async function benchCopy(o: CopyBenchOptions): Promise<CopyBench> {
  const { regs } = o;
  const log = o.log ?? (() => undefined);
  const sizeMiB = o.sizeMiB ?? 256;
  const bytes = sizeMiB * MiB;
  const run = randomBytes(3).toString('hex');
  const rounds = Number(process.env['BENCH_COPY_ROUNDS'] ?? 3);
  const direct = new RegistryClient({ fetch: caFetch(regs.tls.caFile) });
  const home: ToolHome = await makeToolHome('cosign-web-bench-copy-');
  /**
   * A fresh signed image per round: skopeo remembers where it pushed a blob (its blob info cache)
   * and would mount it from an earlier round's copy instead of copying.
   */
  const signedImage = async (i: number): Promise<string> => {
    const srcRepo: RepoRef = { registry: regs.tls.host, repository: `bench/copy-${run}-src-${i}` };
    const digest = await pushImage(direct, srcRepo, 2, bytes / 2);
    await runOk(
      'cosign2',
      cosign2SignArgs(join(home.dir, 'cosign.key'), `${regs.tls.host}/${srcRepo.repository}@${digest}`),
      { env: cosignEnv(home, { password: '', caFile: regs.tls.caFile }) },
    );
    return `${regs.tls.host}/${srcRepo.repository}:v1`;
  };
  try {
    await runOk('cosign2', ['generate-key-pair'], { cwd: home.dir, env: cosignEnv(home, { password: '' }) });
    const client = new RegistryClient({
      fetch: (input, init) => globalThis.fetch(input, init),
      ...relayRouting(o.baseUrl),
      credentials: (r) =>
        r === regs.basic.host ? { username: regs.basic.username, password: regs.basic.password } : undefined,
    });
    const mbps = (s: number): number => Math.round((bytes / 1e6 / s) * 10) / 10;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const scratch = await mkdtemp(join(tmpdir(), 'cosign-web-bench-skopeo-'));
    try {
      const src = await skopeoAccess({ host: regs.tls.host, caFile: regs.tls.caFile }, scratch);
      const skopeoCopy = (source: string, dest: string): Promise<unknown> =>
        runOk(
          'skopeo',
          [
            'copy',
            '--preserve-digests',
            ...skopeoRegistryFlags(src, 'src'),
            ...skopeoRegistryFlags({ creds: `${regs.basic.username}:${regs.basic.password}` }, 'dest'),
            `docker://${source}`,
            `docker://${regs.basic.host}/${dest}:v1`,
          ],
          { env: skopeoEnv(home), timeoutMs: 600_000 },
        );
      // Rounds taking turns (Node with the relay's transfer, the page, skopeo), so each sees the
      // same load on a shared machine; each figure is the median over the rounds.
      const t = { transfer: [] as number[], page: [] as number[], skopeo: [] as number[], cpu: [] as number[] };
      let first = '';
      for (let i = 0; i < rounds; i++) {
        const source = await signedImage(i);
        first ||= source;
        const phases = new Map<string, number>();
        const cpu0 = serverCpuMs();
        const t0 = performance.now();
        t.transfer.push(
          await seconds(() =>
            copyImage({
              client,
              source,
              destination: `${regs.basic.host}/bench/copy-${run}-node-transfer-${i}:v1`,
              onProgress: (p) => phases.set(p.step, performance.now() - t0),
            }),
          ),
        );
        const cpu1 = serverCpuMs();
        if (cpu0 !== null && cpu1 !== null) t.cpu.push((cpu1 - cpu0) / sizeMiB);
        log(
          `round ${i + 1}: node transfer, ms at the end of each step: ${[...phases].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}${t.cpu.length > i ? `; the server's CPU ${t.cpu[i]!.toFixed(2)} ms per MiB` : ''}`,
        );
        if (o.browser) {
          const dest = `${regs.basic.host}/bench/copy-${run}-page-${i}:v1`;
          t.page.push(await pageCopy(o.browser, o.baseUrl, regs, source, dest));
        }
        t.skopeo.push(await seconds(() => skopeoCopy(source, `bench/copy-${run}-skopeo-${i}`)));
        log(
          `round ${i + 1}: node transfer ${mbps(t.transfer.at(-1)!)}, page ${t.page.length ? mbps(t.page.at(-1)!) : '-'}, skopeo ${mbps(t.skopeo.at(-1)!)} MB/s`,
        );
      }
      const node: CopyBench['node'] = [{ chunkMiB: null, MBps: mbps(median(t.transfer)) }];
      // Once: every byte through this client, as before the relay's transfer.
      for (const chunkMiB of o.chunksMiB ?? [8]) {
        const s = await seconds(() =>
          copyImage({
            client,
            source: first,
            destination: `${regs.basic.host}/bench/copy-${run}-node-${chunkMiB}:v1`,
            chunkBytes: chunkMiB * MiB,
            relayTransfer: false,
          }),
        );
        node.push({ chunkMiB, MBps: mbps(s) });
        log(`node, ${chunkMiB} MiB chunks: ${mbps(s)} MB/s`);
      }
      const pageMBps = t.page.length ? mbps(median(t.page)) : null;
      const relayCpuMsPerMiB = t.cpu.length === rounds ? median(t.cpu) : null;
      return { sizeMiB, rounds, node, relayCpuMsPerMiB, pageMBps, skopeoMBps: mbps(median(t.skopeo)) };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  } finally {
    await home.cleanup();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { chromium } = await import('playwright');
  const { CHROMIUM_ARGS, CHROMIUM_PATH } = await import('../test/chromium.ts');
  process.env.E2E_PORT ??= '8097';
  const { default: globalSetup, E2E_PORT } = await import('../test/e2e/global-setup.ts');
  const teardown = await globalSetup();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  try {
    const { registriesFromEnv } = await import('../test/rig/registries.ts');
    const r = await benchCopy({
      regs: registriesFromEnv()!,
      baseUrl: `http://localhost:${E2E_PORT}`,
      browser,
      sizeMiB: Number(process.env.BENCH_COPY_MIB ?? 256),
      log: (l) => console.log(`  ${l}`),
    });
    console.log(JSON.stringify(r));
  } finally {
    await browser.close();
    await teardown();
  }
}

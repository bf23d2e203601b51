/**
 * PKCS#11 signing figures for `npm run bench` (and alone: `npx tsx bench/pkcs11.ts`), on a SoftHSM2
 * token made for the run, for each key (P-256, RSA 2048), median over 100 signatures of a cosign
 * simple-signing payload:
 * - through the relay: `POST /pkcs11/sign` over real HTTP to the app on loopback (JSON, base64,
 *   payload check, back-off, per-token lock, open session + C_Login + sign + C_Logout + close,
 *   verify, audit line);
 * - in process: the same provider.sign call without HTTP;
 * - pkcs11js C_SignInit + C_Sign alone, in a session logged in once (the token's own cost);
 * - baseline: `pkcs11-tool --sign` on the same key, one process per signature (process spawn,
 *   module load, C_Initialize, login and file I/O included, as a script calling it would pay);
 * and 100 concurrent requests through the relay (wall time), which the per-token lock serialises.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../server/app.ts';
import { serveApp } from '../server/serve.ts';
import { buildSimpleSigningPayload } from '../shared/cosign/payload.ts';
import { createSoftHsmToken } from '../test/rig/softhsm.ts';

export interface Pkcs11BenchRow {
  key: string;
  httpMs: number;
  inProcessMs: number;
  cSignMs: number;
  toolMs: number;
  concurrent100Ms: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 5; i++) await fn(i); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** Runs the figures; `runs` signatures per measurement (default 100). */
export async function benchPkcs11(runs = 100): Promise<Pkcs11BenchRow[]> {
  const pin = 'bench-pin-1234';
  const apiToken = 'bench-api-token-0123456789abcdef';
  const hsm = await createSoftHsmToken({
    tokenLabel: 'cosign-web bench',
    pin,
    keys: [
      { label: 'bench p256', id: '01', type: 'EC:prime256v1' },
      { label: 'bench rsa', id: '02', type: 'rsa:2048' },
    ],
  });
  process.env['SOFTHSM2_CONF'] = hsm.conf;
  const { loadPkcs11Module } = await import('../server/pkcs11/module.ts');
  const provider = await loadPkcs11Module(hsm.module);
  const app = createApp({
    staticRoot: hsm.dir,
    relay: { allowedRegistries: ['registry.bench.example'] },
    pkcs11: { provider, apiToken, log: () => undefined },
  });
  const served = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  const base = `http://127.0.0.1:${served.port}`;
  const payload = buildSimpleSigningPayload('registry.bench.example/app:v1', `sha256:${'5e'.repeat(32)}`);
  const body = (uri: string) => JSON.stringify({ uri, pin, payload: Buffer.from(payload).toString('base64') });
  const headers = { Authorization: `Bearer ${apiToken}`, 'Content-Type': 'application/json' };
  const post = async (uri: string) => {
    const res = await fetch(`${base}/pkcs11/sign`, { method: 'POST', headers, body: body(uri) });
    if (res.status !== 200) throw new Error(`POST /pkcs11/sign: ${res.status} ${await res.text()}`);
    await res.json();
  };
  // pkcs11js directly, for the token's own cost: a second handle on the same (already
  // initialised) module, one session logged in once.
  const lib = (await import('pkcs11js')).default;
  const p11 = new lib.PKCS11();
  p11.load(hsm.module);
  try {
    p11.C_Initialize();
  } catch {
    // CKR_CRYPTOKI_ALREADY_INITIALIZED: the provider initialised this process's module
  }
  const rows: Pkcs11BenchRow[] = [];
  try {
    const listed = (await (await fetch(`${base}/pkcs11/keys`, { headers })).json()) as {
      keys: { uri: string; label: string; algorithm: string }[];
    };
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === hsm.tokenLabel)!;
    const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION);
    const input = join(hsm.dir, 'bench-input');
    for (const made of hsm.keys) {
      const key = listed.keys.find((k) => k.label === made.label)!;
      const { parsePkcs11Uri } = await import('../server/pkcs11/uri.ts');
      const uri = parsePkcs11Uri(key.uri);
      const http = median(await timeEach(runs, () => post(key.uri)));
      const inProcess = median(await timeEach(runs, () => provider.sign(uri, pin, payload)));
      const ec = made.algorithm.startsWith('ECDSA');
      // The session's login is shared with the provider's: log in around this measurement only.
      p11.C_Login(session, lib.CKU_USER, pin);
      let cSign: number;
      try {
        p11.C_FindObjectsInit(session, [
          { type: lib.CKA_CLASS, value: lib.CKO_PRIVATE_KEY },
          { type: lib.CKA_ID, value: Buffer.from(made.id, 'hex') },
        ]);
        const [priv] = p11.C_FindObjects(session, 1);
        p11.C_FindObjectsFinal(session);
        const data = ec ? createHash('sha256').update(payload).digest() : Buffer.from(payload);
        cSign = median(
          await timeEach(runs, async () => {
            p11.C_SignInit(session, { mechanism: ec ? lib.CKM_ECDSA : lib.CKM_SHA256_RSA_PKCS }, priv!);
            p11.C_Sign(session, data, Buffer.alloc(512));
          }),
        );
      } finally {
        p11.C_Logout(session);
      }
      await writeFile(input, ec ? createHash('sha256').update(payload).digest() : payload);
      const tool = median(
        await timeEach(runs, () => hsm.toolSign(hsm.tokenLabel, made.id, ec ? 'ECDSA' : 'SHA256-RSA-PKCS', input)),
      );
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 100 }, () => post(key.uri)));
      const concurrent = performance.now() - t0;
      rows.push({
        key: key.algorithm,
        httpMs: http,
        inProcessMs: inProcess,
        cSignMs: cSign,
        toolMs: tool,
        concurrent100Ms: concurrent,
      });
    }
    p11.C_CloseSession(session);
  } finally {
    await new Promise<void>((r) => served.server.close(() => r()));
    provider.close();
    await hsm.cleanup();
  }
  return rows;
}

/** Prints the figures as `npm run bench` shows them. */
export function printPkcs11(rows: Pkcs11BenchRow[], runs: number): void {
  const ms = (x: number) => `${x.toFixed(2).padStart(8)} ms`;
  for (const r of rows) {
    console.log(`  ${r.key}, median of ${runs}:`);
    console.log(`    pkcs11-tool --sign, one process each (baseline)        ${ms(r.toolMs)}`);
    console.log(
      `    POST /pkcs11/sign over HTTP on loopback                 ${ms(r.httpMs)}  ${(r.toolMs / r.httpMs).toFixed(1)}× faster than pkcs11-tool`,
    );
    console.log(
      `    provider.sign in process (login, sign, logout, verify)  ${ms(r.inProcessMs)}  HTTP adds ${ms(r.httpMs - r.inProcessMs)}`,
    );
    console.log(`    C_SignInit + C_Sign alone, session logged in            ${ms(r.cSignMs)}`);
    console.log(
      `    100 concurrent POSTs, wall time                         ${ms(r.concurrent100Ms)}  (${(r.concurrent100Ms / 100).toFixed(2)} ms per signature)`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.env.BENCH_PKCS11_RUNS ?? 100);
  console.log(`PKCS#11 signing on SoftHSM2 (${runs} signatures per figure)`);
  printPkcs11(await benchPkcs11(runs), runs);
}

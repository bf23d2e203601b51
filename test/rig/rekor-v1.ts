// The REAL Rekor v1 (sigstore/rekor v1.5.4, `rekor-server`) on loopback, for the signatures only a
// v1 log can make acceptable: the legacy `.sig` format's SET (`dev.sigstore.cosign/bundle`), which
// cosign 2.5 and skopeo 1.18 (`rekorPublicKeyPath`) verify. Under it, Trillian v1.7.3
// (`trillian_log_server`, `trillian_log_signer`, `createtree`) on Debian's MariaDB — the released
// Trillian binaries have no in-memory storage. All built or installed by install.sh.
//
// Facts found with the binaries (test/rig/README.md lists them against SIGSTORE-STACK.md):
// - MariaDB runs as a private instance: `mariadb-install-db --no-defaults --datadir=D` (2 s), then
//   `mariadbd --no-defaults --datadir=D --socket=S --skip-networking` — a unix socket only, nothing
//   on TCP — with Trillian's schema (`storage/mysql/schema/storage.sql` of the module, copied next to
//   the binaries by install-sigstore-services.sh) loaded by the `mariadb` client.
// - Trillian: `--storage_system=mysql --quota_system=noop --mysql_uri=root@unix(S)/trillian
//   --rpc_endpoint=127.0.0.1:P --http_endpoint=127.0.0.1:P2`, the signer with `--force_master`;
//   `createtree --admin_server=127.0.0.1:P` prints the tree id as its last line.
// - Rekor: see startRekorV1's arguments; its signing key is `GET /api/v1/log/publicKey` (PEM). Its
//   metrics server is hard-wired to `:2112` on every interface with the error ignored
//   (cmd/rekor-server/app/serve.go): the first Rekor v1 on the machine serves metrics there, later
//   ones serve none; nothing sends it traffic.
import { type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, loopbackGet, spawnWatched, stopChild } from './registries.ts';
import { missingBinary, waitUntil } from './sigstore-services.ts';
import { baseEnv, CACHE_DIR, run } from './tools.ts';

const TRILLIAN_DIR = join(CACHE_DIR, 'go', 'trillian-v1.7.3');
export const REKOR_V1_BINARIES = {
  rekorServer: join(CACHE_DIR, 'go', 'rekor-v1.5.4', 'rekor-server'),
  logServer: join(TRILLIAN_DIR, 'trillian_log_server'),
  logSigner: join(TRILLIAN_DIR, 'trillian_log_signer'),
  createTree: join(TRILLIAN_DIR, 'createtree'),
  schema: join(TRILLIAN_DIR, 'storage.sql'),
} as const;

export interface RekorV1 {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The log's signing key (ECDSA P-256, SPKI PEM) and its file: `SIGSTORE_REKOR_PUBLIC_KEY`, `rekorPublicKeyPath`. */
  publicKeyPem: string;
  publicKeyFile: string;
  treeId: string;
  logFile: string;
  stop(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

async function startMariaDb(dir: string, timeoutMs: number): Promise<{ child: ChildProcess; socket: string }> {
  const datadir = join(dir, 'mariadb');
  const socket = join(dir, 'mariadb.sock');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  const init = await run(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot],
    { timeoutMs },
  );
  if (init.code !== 0) throw new Error(`mariadb-install-db failed: ${init.stderr.slice(-2000)}`);
  const logFile = join(dir, 'mariadb.log');
  const child = spawnWatched(
    [
      'mariadbd',
      '--no-defaults',
      `--datadir=${datadir}`,
      `--socket=${socket}`,
      '--skip-networking',
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      '--innodb-buffer-pool-size=16M',
      '--skip-log-bin',
      ...asRoot,
    ],
    logFile,
    baseEnv(),
  );
  await waitUntil('MariaDB', child, logFile, timeoutMs, async () => {
    if (!existsSync(socket)) return false;
    return (
      (await run('mariadb', ['--no-defaults', '-S', socket, '-uroot', '-e', 'SELECT 1'], { timeoutMs: 10_000 }))
        .code === 0
    );
  });
  const sql = await readFile(REKOR_V1_BINARIES.schema, 'utf8');
  const load = await run(
    'mariadb',
    ['--no-defaults', '-S', socket, '-uroot', '-e', `CREATE DATABASE trillian; USE trillian; ${sql}`],
    {
      timeoutMs,
    },
  );
  if (load.code !== 0) throw new Error(`loading Trillian's schema failed: ${load.stderr.slice(-2000)}`);
  return { child, socket };
}

async function startTrillian(dir: string, socket: string, timeoutMs: number) {
  const storage = ['--storage_system=mysql', '--quota_system=noop', `--mysql_uri=root@unix(${socket})/trillian`];
  const [rpc, http, signerRpc, signerHttp] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const serverLog = join(dir, 'trillian-server.log');
  const server = spawnWatched(
    [
      REKOR_V1_BINARIES.logServer,
      ...storage,
      `--rpc_endpoint=${LOOPBACK}:${rpc}`,
      `--http_endpoint=${LOOPBACK}:${http}`,
      '--logtostderr',
    ],
    serverLog,
    baseEnv(),
  );
  const signer = spawnWatched(
    [
      REKOR_V1_BINARIES.logSigner,
      ...storage,
      `--rpc_endpoint=${LOOPBACK}:${signerRpc}`,
      `--http_endpoint=${LOOPBACK}:${signerHttp}`,
      '--force_master',
      '--sequencer_interval=100ms',
      '--batch_size=100',
      '--logtostderr',
    ],
    join(dir, 'trillian-signer.log'),
    baseEnv(),
  );
  let treeId = '';
  await waitUntil('Trillian', server, serverLog, timeoutMs, async () => {
    const r = await run(REKOR_V1_BINARIES.createTree, [`--admin_server=${LOOPBACK}:${rpc}`], { timeoutMs: 20_000 });
    treeId = r.stdout.trim().split('\n').pop() ?? '';
    return r.code === 0 && /^\d+$/.test(treeId);
  });
  return { children: [server, signer], rpc, treeId };
}

/**
 * Starts MariaDB, Trillian and Rekor v1 in `dir` and waits until Rekor serves its public key.
 * @throws Error when a binary is missing (run install.sh) or a service does not start in time
 */
export async function startRekorV1(o: { dir: string; readyTimeoutMs?: number }): Promise<RekorV1> {
  for (const bin of Object.values(REKOR_V1_BINARIES)) if (!existsSync(bin)) throw missingBinary(bin);
  await mkdir(o.dir, { recursive: true });
  const timeoutMs = o.readyTimeoutMs ?? 90_000;
  const children: ChildProcess[] = [];
  const stop = async () => {
    // Rekor and Trillian first, the database last.
    for (const c of children.splice(0).reverse()) await stopChild(c);
  };
  try {
    const db = await startMariaDb(o.dir, timeoutMs);
    children.push(db.child);
    const trillian = await startTrillian(o.dir, db.socket, timeoutMs);
    children.push(...trillian.children);
    const port = await freePort();
    const logFile = join(o.dir, 'rekor-v1.log');
    const rekor = spawnWatched(
      [
        REKOR_V1_BINARIES.rekorServer,
        'serve',
        `--rekor_server.address=${LOOPBACK}`,
        // The checkpoint's origin ("<hostname> - <tree id>") and signer name: the host of the log's
        // URL, which verifiers compare it with (the default is the machine's host name).
        `--rekor_server.hostname=${LOOPBACK}`,
        `--port=${port}`,
        `--trillian_log_server.address=${LOOPBACK}`,
        `--trillian_log_server.port=${trillian.rpc}`,
        `--trillian_log_server.tlog_id=${trillian.treeId}`,
        '--rekor_server.signer=memory',
        '--enable_retrieve_api=false',
        '--enable_attestation_storage=false',
        '--enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID,searchLogQuery',
      ],
      logFile,
      { ...baseEnv(), HOME: o.dir },
    );
    children.push(rekor);
    const url = `http://${LOOPBACK}:${port}`;
    let publicKeyPem = '';
    await waitUntil('Rekor v1', rekor, logFile, timeoutMs, async () => {
      const r = await loopbackGet(`${url}/api/v1/log/publicKey`, { timeoutMs: 5_000 });
      publicKeyPem = r.body.toString('utf8');
      return r.status === 200 && publicKeyPem.includes('BEGIN PUBLIC KEY');
    });
    const publicKeyFile = join(o.dir, 'rekor-v1.pub.pem');
    await writeFile(publicKeyFile, publicKeyPem);
    return { url, publicKeyPem, publicKeyFile, treeId: trillian.treeId, logFile, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

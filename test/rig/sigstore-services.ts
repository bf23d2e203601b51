// The REAL Sigstore services on loopback, for tests: the timestamp authority
// (sigstore/timestamp-authority v2.1.3, `timestamp-server`) and Rekor v2 (sigstore/rekor-tiles
// v2.3.0, `posix`, tiles on local files), both built by install-sigstore-services.sh, plus the
// trusted_root.json and signing_config.json (v0.2) that point cosign 3.1 — and our verifier — at them.
//
// Facts found with the binaries (test/rig/README.md lists them against SIGSTORE-STACK.md):
// - Rekor v2: `posix serve --hostname=127.0.0.1 --http-address=127.0.0.1 --http-port=P
//   --grpc-address=127.0.0.1 --grpc-port=P2 --http-metrics-port=P3 --storage-dir=D
//   --signer-filepath=KEY --checkpoint-interval=1s`; every listener binds to the address given
//   (metrics to --http-address). `GET /healthz` answers `{"status":"SERVING"}`. `--hostname` is the
//   checkpoint origin and the name the checkpoint is signed under; cosign 3.1 and sigstore-go check
//   it against the host of the log's baseUrl. The log ID in its entries is the note key hash: for
//   Ed25519 SHA-256(origin ‖ "\n" ‖ 0x01 ‖ raw key), for ECDSA SHA-256(SPKI DER)
//   (rekor-tiles pkg/note/note.go KeyHash). Signing and verifying need no tiles server.
// - The TSA's metrics server listens on ":2112" — every interface, a fixed port, no flag — and the
//   TSA exits when it cannot bind it (pkg/server/prometheus.go). So each TSA runs in a network
//   namespace of its own (`unshare -n`, `-rn` when not root), where that port is private and
//   unreachable, and serves its API on a unix socket (`--scheme=unix --socket-path=…`, go-swagger's
//   flags); a TCP proxy here gives it a 127.0.0.1 port. Chain: `GET /api/v1/timestamp/certchain`
//   (leaf, intermediate, root; the memory signer makes a new chain at each start, valid from a few
//   minutes before it).
import { type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, loopbackGet, spawnWatched, stopChild } from './registries.ts';
import { baseEnv, CACHE_DIR, run, runOk } from './tools.ts';

/** The binaries install-sigstore-services.sh builds. */
export const SERVICE_BINARIES = {
  timestampServer: join(CACHE_DIR, 'go', 'timestamp-authority-v2.1.3', 'timestamp-server'),
  rekorV2: join(CACHE_DIR, 'go', 'rekor-tiles-v2.3.0', 'posix'),
} as const;

const LOOPBACK = '127.0.0.1';
const TRUSTED_ROOT_MEDIA_TYPE = 'application/vnd.dev.sigstore.trustedroot+json;version=0.1';

export type LogKeyType = 'ed25519' | 'ecdsa-p256';

export interface RekorV2 {
  /** The log's base URL, `http://127.0.0.1:<port>` (what the trusted root and signing config name). */
  url: string;
  /** The checkpoint origin (`--hostname`): the host of `url`. */
  origin: string;
  grpcPort: number;
  metricsPort: number;
  storageDir: string;
  keyType: LogKeyType;
  /** The log's public key: SPKI PEM, its file, and its DER. */
  publicKeyPem: string;
  publicKeyFile: string;
  publicKeyDer: Buffer;
  /** The log ID as Rekor v2 computes it (base64), the `logId.keyId` of its entries. */
  logId: string;
  logFile: string;
}

export interface Tsa {
  /** `http://127.0.0.1:<port>` (the TCP proxy in front of the TSA's unix socket). */
  baseUrl: string;
  /** The timestamp endpoint, `<baseUrl>/api/v1/timestamp`. */
  url: string;
  /** The chain the TSA serves, leaf first (PEM, one per certificate), and its file. */
  chainPem: string[];
  chainFile: string;
  socketPath: string;
  logFile: string;
}

export interface SigstoreServices {
  dir: string;
  rekor: RekorV2;
  tsa: Tsa;
  /** When the trusted root and signing config start trusting the services (a minute before start). */
  validFrom: Date;
  trustedRoot: TrustedRootJson;
  trustedRootFile: string;
  signingConfigFile: string;
  /** With `rekorV1`: a signing config naming that log (majorApiVersion 1) and the TSA, as public good's names rekor.sigstore.dev. */
  signingConfigV1File?: string;
  stop(): Promise<void>;
}

/** A certificate authority to add to the trusted root (a test CA made with openssl). */
export interface ExtraAuthority {
  uri: string;
  /** The CA's chain, intermediate first, root last (PEM). */
  chainPem: string[];
}

export interface StartServicesOptions {
  /** The folder for keys, storage and logs (made; removed by stop() only when made here). */
  dir?: string;
  /** The log's key (default Ed25519, as upstream's compose file and the public-good v2 logs). */
  logKeyType?: LogKeyType;
  /** Added to the trusted root's `certificateAuthorities`. */
  certificateAuthorities?: ExtraAuthority[];
  /** How long each service may take to answer (default 60 s: a loaded 2-core machine). */
  readyTimeoutMs?: number;
  /** A Rekor v1 log (test/rig/rekor-v1.ts) to list in the trusted root too, and in a signing config of its own. */
  rekorV1?: RekorV1Log;
}

/** A Rekor v1 log (test/rig/rekor-v1.ts's RekorV1) as the trusted root names it: its URL and its ECDSA P-256 key (PEM). */
export interface RekorV1Log {
  url: string;
  publicKeyPem: string;
}

/** The parts of trusted_root.json this module writes (protobuf JSON). */
export interface TrustedRootJson {
  mediaType: string;
  tlogs: {
    baseUrl: string;
    hashAlgorithm: 'SHA2_256';
    publicKey: { rawBytes: string; keyDetails: string; validFor: { start: string } };
    logId: { keyId: string };
  }[];
  certificateAuthorities: {
    subject: Record<string, string>;
    uri: string;
    certChain: { certificates: { rawBytes: string }[] };
    validFor: { start: string };
  }[];
  ctlogs: never[];
  timestampAuthorities: TrustedRootJson['certificateAuthorities'];
}

/**
 * The log ID Rekor v2 gives a key under an origin (rekor-tiles pkg/note KeyHash): the signed-note
 * key hash SHA-256(origin ‖ "\n" ‖ 0x01 ‖ key) for Ed25519, SHA-256 of the SPKI DER for ECDSA.
 */
export function rekorV2LogId(origin: string, spkiDer: Buffer, keyType: LogKeyType): Buffer {
  const h = createHash('sha256');
  if (keyType === 'ecdsa-p256') return h.update(spkiDer).digest();
  // An Ed25519 SPKI is 12 bytes of algorithm identifier, then the 32-byte key.
  return h
    .update(Buffer.concat([Buffer.from(`${origin}\n`, 'utf8'), Buffer.from([0x01]), spkiDer.subarray(12)]))
    .digest();
}

const pemBlocks = (text: string): string[] =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => b.trimEnd() + '\n') ?? [];

const derB64 = (pem: string): string => Buffer.from(new X509Certificate(pem).raw).toString('base64');

/** `O=…, CN=…` of a certificate, as trusted_root.json's DistinguishedName. */
function subjectOf(pem: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of new X509Certificate(pem).subject.split('\n')) {
    const [k, v] = line.split('=');
    if (k === 'O' && v) out['organization'] = v;
    if (k === 'CN' && v) out['commonName'] = v;
  }
  return out;
}

function authority(uri: string, chainPem: string[], start: string): TrustedRootJson['certificateAuthorities'][0] {
  return {
    subject: subjectOf(chainPem[chainPem.length - 1]!),
    uri,
    certChain: { certificates: chainPem.map((p) => ({ rawBytes: derB64(p) })) },
    validFor: { start },
  };
}

/**
 * trusted_root.json for a Rekor v2 log and a TSA (and optionally certificate authorities): what
 * `cosign trusted-root create` writes for them (the rig's tests compare the two).
 */
export function makeTrustedRoot(o: {
  rekor: Pick<RekorV2, 'url' | 'publicKeyDer' | 'keyType' | 'logId'>;
  tsa: Pick<Tsa, 'url' | 'chainPem'>;
  validFrom: Date;
  certificateAuthorities?: ExtraAuthority[];
  /** A Rekor v1 log (ECDSA P-256), listed after the v2 log; its log ID is SHA-256 of its key's SPKI DER. */
  rekorV1?: RekorV1Log;
}): TrustedRootJson {
  const start = o.validFrom.toISOString().replace(/\.\d+Z$/, 'Z');
  const v1Der = o.rekorV1 && createPublicKey(o.rekorV1.publicKeyPem).export({ type: 'spki', format: 'der' });
  const v1Log: TrustedRootJson['tlogs'] =
    o.rekorV1 && v1Der
      ? [
          {
            baseUrl: o.rekorV1.url,
            hashAlgorithm: 'SHA2_256',
            publicKey: {
              rawBytes: v1Der.toString('base64'),
              keyDetails: 'PKIX_ECDSA_P256_SHA_256',
              validFor: { start },
            },
            logId: { keyId: createHash('sha256').update(v1Der).digest('base64') },
          },
        ]
      : [];
  return {
    mediaType: TRUSTED_ROOT_MEDIA_TYPE,
    tlogs: [
      {
        baseUrl: o.rekor.url,
        hashAlgorithm: 'SHA2_256',
        publicKey: {
          rawBytes: o.rekor.publicKeyDer.toString('base64'),
          keyDetails: o.rekor.keyType === 'ed25519' ? 'PKIX_ED25519' : 'PKIX_ECDSA_P256_SHA_256',
          validFor: { start },
        },
        logId: { keyId: o.rekor.logId },
      },
      ...v1Log,
    ],
    certificateAuthorities: (o.certificateAuthorities ?? []).map((ca) => authority(ca.uri, ca.chainPem, start)),
    ctlogs: [],
    timestampAuthorities: [authority(o.tsa.url, o.tsa.chainPem, start)],
  };
}

/**
 * signing_config.json v0.2 sending cosign 3.1 (and the page) to this Rekor log (v2, or v1 with
 * `rekorApiVersion` 1) and this TSA (none when `tsaUrl` is empty), no Fulcio, no OIDC unless
 * `keyless` names them, made by cosign 3.1 itself:
 * `cosign signing-config create --no-default-{fulcio,oidc,rekor,tsa} --rekor=url=…,api-version=2,…
 * --rekor-config=ANY --tsa=url=…/api/v1/timestamp,api-version=1,… --tsa-config=ANY --out F`.
 */
export async function createSigningConfig(
  dir: string,
  rekorUrl: string,
  tsaUrl: string,
  validFrom: Date,
  out: string,
  keyless?: { fulcioUrl: string; oidcUrl: string },
  /** The log's major API version: 2 (Rekor v2), or 1 (Rekor v1, as public good's rekor.sigstore.dev). */
  rekorApiVersion: 1 | 2 = 2,
): Promise<void> {
  const common = `start-time=${validFrom.toISOString().replace(/\.\d+Z$/, 'Z')},operator=cosign-web rig`;
  const ca = keyless
    ? [
        `--fulcio=url=${keyless.fulcioUrl},api-version=1,${common}`,
        `--oidc-provider=url=${keyless.oidcUrl},api-version=1,${common}`,
      ]
    : ['--no-default-fulcio', '--no-default-oidc'];
  await runOk(
    'cosign3',
    [
      'signing-config',
      'create',
      ...ca,
      '--no-default-rekor',
      '--no-default-tsa',
      `--rekor=url=${rekorUrl},api-version=${rekorApiVersion},${common}`,
      '--rekor-config=ANY',
      ...(tsaUrl ? [`--tsa=url=${tsaUrl},api-version=1,${common}`, '--tsa-config=ANY'] : []),
      '--out',
      out,
    ],
    { env: { HOME: dir, TUF_ROOT: join(dir, 'tuf'), DOCKER_CONFIG: join(dir, 'docker') }, timeoutMs: 60_000 },
  );
}

/** Polls `probe` until it answers true; throws with the service's last log lines otherwise. */
export async function waitUntil(
  what: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let why = 'no answer yet';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      why = `it exited (${child.exitCode ?? child.signalCode})`;
      break;
    }
    try {
      if (await probe()) return;
    } catch (e) {
      why = (e as Error).message;
    }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const log = existsSync(logFile) ? (await readFile(logFile, 'utf8')).split('\n').slice(-25).join('\n') : '';
  throw new Error(`${what} did not become ready within ${timeoutMs} ms: ${why}\n${log}`);
}

export function missingBinary(path: string): Error {
  return new Error(`${path} is missing: run bash test/rig/install.sh (or test/rig/install-sigstore-services.sh)`);
}

async function startRekor(dir: string, keyType: LogKeyType, timeoutMs: number) {
  if (!existsSync(SERVICE_BINARIES.rekorV2)) throw missingBinary(SERVICE_BINARIES.rekorV2);
  const keys =
    keyType === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'rekor-key.pem');
  const publicKeyFile = join(dir, 'rekor-key.pub.pem');
  const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const publicKeyDer = keys.publicKey.export({ type: 'spki', format: 'der' });
  await writeFile(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(publicKeyFile, publicKeyPem);
  const storageDir = join(dir, 'rekor-storage');
  await mkdir(storageDir);
  const [httpPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const logFile = join(dir, 'rekor.log');
  const child = spawnWatched(
    [
      SERVICE_BINARIES.rekorV2,
      'serve',
      `--hostname=${LOOPBACK}`,
      `--http-address=${LOOPBACK}`,
      `--http-port=${httpPort}`,
      `--grpc-address=${LOOPBACK}`,
      `--grpc-port=${grpcPort}`,
      `--http-metrics-port=${metricsPort}`,
      `--storage-dir=${storageDir}`,
      `--signer-filepath=${keyFile}`,
      '--checkpoint-interval=1s',
    ],
    logFile,
    { ...baseEnv(), HOME: dir },
  );
  const url = `http://${LOOPBACK}:${httpPort}`;
  await waitUntil('Rekor v2', child, logFile, timeoutMs, async () => {
    const r = await loopbackGet(`${url}/healthz`, { timeoutMs: 5_000 });
    return r.status === 200 && r.body.toString().includes('SERVING');
  }).catch(async (e: unknown) => {
    await stopChild(child);
    throw e;
  });
  const rekor: RekorV2 = {
    url,
    origin: LOOPBACK,
    grpcPort,
    metricsPort,
    storageDir,
    keyType,
    publicKeyPem,
    publicKeyFile,
    publicKeyDer,
    logId: rekorV2LogId(LOOPBACK, publicKeyDer, keyType).toString('base64'),
    logFile,
  };
  return { rekor, child };
}

/** A TCP listener on 127.0.0.1 that pipes each connection to a unix socket. */
async function unixProxy(socketPath: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return { port, close };
}

async function startTsa(dir: string, timeoutMs: number) {
  if (!existsSync(SERVICE_BINARIES.timestampServer)) throw missingBinary(SERVICE_BINARIES.timestampServer);
  const socketPath = join(dir, 'tsa.sock');
  const logFile = join(dir, 'tsa.log');
  // As root, a network namespace alone; otherwise inside a user namespace too.
  const unshare = process.getuid?.() === 0 ? ['unshare', '--net'] : ['unshare', '--net', '--map-root-user'];
  const probe = await run(unshare[0]!, [...unshare.slice(1), 'true'], { timeoutMs: 30_000 });
  if (probe.code !== 0)
    throw new Error(
      `The timestamp authority needs a network namespace of its own (its metrics port :2112 is fixed), but \`${unshare.join(' ')}\` failed: ${probe.stderr.trim()}`,
    );
  const child = spawnWatched(
    [
      ...unshare,
      SERVICE_BINARIES.timestampServer,
      'serve',
      '--scheme=unix',
      `--socket-path=${socketPath}`,
      '--timestamp-signer=memory',
      '--disable-ntp-monitoring',
      '--log-type=prod',
    ],
    logFile,
    // HOME: the TSA reads $HOME/.timestamp-server.yaml and ./timestamp-server.yaml when present.
    { ...baseEnv(), HOME: dir },
  );
  const proxy = await unixProxy(socketPath);
  const baseUrl = `http://${LOOPBACK}:${proxy.port}`;
  let chainText = '';
  try {
    await waitUntil('the timestamp authority', child, logFile, timeoutMs, async () => {
      if (!existsSync(socketPath)) return false;
      const r = await loopbackGet(`${baseUrl}/api/v1/timestamp/certchain`, { timeoutMs: 5_000 });
      chainText = r.body.toString('utf8');
      return r.status === 200 && pemBlocks(chainText).length > 0;
    });
  } catch (e) {
    await proxy.close();
    await stopChild(child);
    throw e;
  }
  const chainPem = pemBlocks(chainText);
  const chainFile = join(dir, 'tsa-chain.pem');
  await writeFile(chainFile, chainPem.join(''));
  const tsa: Tsa = { baseUrl, url: `${baseUrl}/api/v1/timestamp`, chainPem, chainFile, socketPath, logFile };
  return { tsa, child, proxy };
}

/**
 * Starts a Rekor v2 log and a timestamp authority on 127.0.0.1 (free ports), waits until both
 * answer, and writes `trusted_root.json` and `signing_config.json` for them in the folder.
 * @throws Error when a binary is missing (run install.sh), a service does not start in time, or
 *   `unshare` cannot make a network namespace.
 */
export async function startSigstoreServices(opts: StartServicesOptions = {}): Promise<SigstoreServices> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'cosign-web-sigstore-')));
  await mkdir(dir, { recursive: true });
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const children: ChildProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
    await Promise.all(children.splice(0).map((c) => stopChild(c)));
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    const validFrom = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    // Both at once; whichever started is stopped again when the other did not.
    const [rs, ts] = await Promise.allSettled([
      startRekor(dir, opts.logKeyType ?? 'ed25519', timeoutMs),
      startTsa(dir, timeoutMs),
    ]);
    if (rs.status === 'fulfilled') children.push(rs.value.child);
    if (ts.status === 'fulfilled') {
      children.push(ts.value.child);
      closers.push(ts.value.proxy.close);
    }
    if (rs.status === 'rejected') throw rs.reason;
    if (ts.status === 'rejected') throw ts.reason;
    const [r, t] = [rs.value, ts.value];
    const trustedRoot = makeTrustedRoot({
      rekor: r.rekor,
      tsa: t.tsa,
      validFrom,
      ...(opts.certificateAuthorities ? { certificateAuthorities: opts.certificateAuthorities } : {}),
      ...(opts.rekorV1 ? { rekorV1: opts.rekorV1 } : {}),
    });
    const trustedRootFile = join(dir, 'trusted_root.json');
    const signingConfigFile = join(dir, 'signing_config.json');
    await writeFile(trustedRootFile, JSON.stringify(trustedRoot));
    await createSigningConfig(dir, r.rekor.url, t.tsa.url, validFrom, signingConfigFile);
    const signingConfigV1File = opts.rekorV1 ? join(dir, 'signing_config.v1.json') : undefined;
    if (opts.rekorV1 && signingConfigV1File)
      await createSigningConfig(dir, opts.rekorV1.url, t.tsa.url, validFrom, signingConfigV1File, undefined, 1);
    const files = { trustedRootFile, signingConfigFile, ...(signingConfigV1File ? { signingConfigV1File } : {}) };
    return { dir, rekor: r.rekor, tsa: t.tsa, validFrom, trustedRoot, ...files, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** `cosign3 sign-blob` arguments that sign `file` with `key` through these services into `bundleFile`. */
export function cosign3SignBlobArgs(
  services: Pick<SigstoreServices, 'signingConfigFile' | 'trustedRootFile'>,
  key: string,
  file: string,
  bundleFile: string,
): string[] {
  return [
    'sign-blob',
    '--key',
    key,
    '--signing-config',
    services.signingConfigFile,
    '--trusted-root',
    services.trustedRootFile,
    '--bundle',
    bundleFile,
    '--yes',
    file,
  ];
}

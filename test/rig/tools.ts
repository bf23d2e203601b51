// Paths of the real tools installed by test/rig/install.sh, and a way to run them (no shell, a clean
// environment) with the flags and environment that keep cosign and skopeo OFF the network.
//
// Flags found with the real tools (cosign 2.5.0 from Debian trixie, cosign 3.1.1 from Debian sid,
// skopeo 1.18.0 from trixie) against local distribution 2.8 registries, key-based, no network.
// rig.test.ts proves each of them; DEAD_PROXY below turns any hidden network use into a failure.
//
// cosign 2.5 (legacy `.sig` format)
//   sign:   cosign2 sign --key cosign.key --tlog-upload=false --yes [--recursive] REF@DIGEST
//           (no TUF access at all; --yes only skips prompts that do not show up with a key)
//   verify: cosign2 verify --key cosign.pub --insecure-ignore-tlog=true REF@DIGEST
//           (stderr: "WARNING: Skipping tlog verification is an insecure practice…"; without
//           --insecure-ignore-tlog it fetches the TUF root for the Rekor key and fails offline)
//   blob:   cosign2 sign-blob --key K --tlog-upload=false --output-signature F FILE
//           cosign2 verify-blob --key P --insecure-ignore-tlog=true --signature F FILE
// cosign 3.1 (Sigstore bundle format by default; OCI 1.1 referrers or the referrers-tag fallback)
//   sign:   cosign3 sign --key cosign.key --signing-config SC --trusted-root TR --yes REF@DIGEST
//           SC = `cosign3 signing-config create --no-default-fulcio --no-default-oidc
//                 --no-default-rekor --no-default-tsa --out SC` (no log, no TSA, no Fulcio)
//           TR = `cosign3 trusted-root create --no-default-ctfe --no-default-fulcio
//                 --no-default-rekor --no-default-tsa --out TR` (an empty trusted root).
//           Without --trusted-root, sign still tries to fetch trusted_root.json through TUF
//           ("WARNING: Could not fetch trusted_root.json from the TUF repository. Continuing…")
//           and then succeeds; with it, cosign 3.1 makes no network attempt.
//           `--tlog-upload=false` is REFUSED together with a signing config ("--tlog-upload=false
//           is not supported with --signing-config or --use-signing-config").
//   legacy: cosign3 sign --key K --tlog-upload=false --use-signing-config=false
//           --new-bundle-format=false --yes REF@DIGEST  (writes the cosign 2.x `.sig` object;
//           prints "Flag --new-bundle-format has been deprecated")
//   verify: cosign3 verify --key cosign.pub --insecure-ignore-tlog=true [--trusted-root TR] REF
//           (no TUF access). It reads both formats, but when an image has bundle signatures it
//           reports only those, not the legacy `.sig` ones.
//   cosign 3.1 also takes --registry-username/--registry-password/--registry-cacert (so do
//   cosign 2.5's sign and verify), an alternative to `cosign login` and SSL_CERT_FILE.
// Both cosigns: the registry CA through SSL_CERT_FILE (Go's crypto/x509 honours it), credentials
//   through `cosign login HOST -u U --password-stdin` writing $DOCKER_CONFIG/config.json (a temp
//   dir), COSIGN_PASSWORD for the key password (the empty string is a valid password), TUF_ROOT and
//   HOME in a temp dir so no ~/.sigstore is read or written. go-containerregistry tries https and
//   falls back to plain http for localhost / 127.0.0.1, so a plain HTTP registry on loopback needs
//   no flag. Signing the same payload again with the same key appends nothing (cosign's duplicate
//   detector finds the existing signature).
// skopeo 1.18: the wrapper made by install.sh runs it through trixie's loader with a default
//   accept-anything policy and a registries.d that sets `use-sigstore-attachments: true`.
//   TLS registry: --src-cert-dir/--dest-cert-dir (--cert-dir for inspect) = a dir holding ca.crt.
//   plain HTTP registry: --src-tls-verify=false / --dest-tls-verify=false (--tls-verify=false).
//   credentials: --src-creds/--dest-creds/--creds USER:PASS (or --authfile FILE).
//   sign:   skopeo copy [--all] --sign-by-sigstore-private-key cosign.key
//           --sign-passphrase-file FILE SRC docker://HOST/REPO:TAG  (one trailing newline of FILE
//           is dropped)
//   verify: skopeo --policy policy.json copy --remove-signatures docker://HOST/REPO:TAG oci:DIR
//           with a policy whose transports.docker["HOST/REPO"] is [{type: sigstoreSigned,
//           keyPath: cosign.pub, signedIdentity: …}] (see sigstorePolicy). --remove-signatures is
//           needed because an oci: destination cannot store signatures ("Pushing signatures for
//           OCI images is not supported"); the policy is still enforced on the source.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** The cache folder used by install.sh (outside the checkout). */
export const CACHE_DIR: string =
  process.env['COSIGN_WEB_CACHE'] !== undefined && process.env['COSIGN_WEB_CACHE'] !== ''
    ? process.env['COSIGN_WEB_CACHE']
    : join(homedir(), '.cache', 'cosign-web');

export type ToolName =
  'cosign2' | 'cosign3' | 'skopeo' | 'openssl' | 'htpasswd' | 'docker-registry' | 'python3' | 'sha256sum';

/** Absolute paths of every tool the rig runs. python3 is Debian's, which has python3-nacl. */
export const TOOL_PATHS: Readonly<Record<ToolName, string>> = {
  cosign2: join(CACHE_DIR, 'bin', 'cosign2'),
  cosign3: join(CACHE_DIR, 'bin', 'cosign3'),
  skopeo: join(CACHE_DIR, 'bin', 'skopeo'),
  openssl: '/usr/bin/openssl',
  htpasswd: '/usr/bin/htpasswd',
  'docker-registry': '/usr/bin/docker-registry',
  python3: '/usr/bin/python3',
  sha256sum: '/usr/bin/sha256sum',
};

export interface RunOptions {
  /** Added to the clean base environment; a value of undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** Written to the tool's standard input (closed right after). */
  input?: string | Uint8Array;
  cwd?: string;
  /** Kill the tool (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Only these variables pass from this process to a tool. Everything else (COSIGN_PASSWORD,
 * COSIGN_*, SIGSTORE_*, TUF_ROOT, DOCKER_CONFIG, REGISTRY_AUTH_FILE, SSL_CERT_FILE, proxies…) is
 * dropped, so nothing from the outside changes what a tool does by accident.
 */
const PASSED_THROUGH = ['PATH', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'] as const;

/**
 * Any attempt by a tool to reach a non-loopback address goes to this dead proxy and fails at once
 * (Go and containers/image never proxy loopback addresses, so local registries are unaffected).
 * This makes "must not use the network" an enforced property rather than a hope.
 */
export const DEAD_PROXY = 'http://127.0.0.1:9';

export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASSED_THROUGH) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  env['PATH'] ??= '/usr/local/bin:/usr/bin:/bin';
  env['HTTPS_PROXY'] = DEAD_PROXY;
  env['HTTP_PROXY'] = DEAD_PROXY;
  env['https_proxy'] = DEAD_PROXY;
  env['http_proxy'] = DEAD_PROXY;
  env['NO_PROXY'] = 'localhost,127.0.0.1';
  env['no_proxy'] = 'localhost,127.0.0.1';
  return env;
}

/** Runs a tool without a shell and collects its output. Never rejects on a non-zero exit. */
export function run(tool: ToolName | string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const file = tool in TOOL_PATHS ? TOOL_PATHS[tool as ToolName] : tool;
  const env = baseEnv();
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${e.message} (did test/rig/install.sh run?)`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: timedOut
          ? `${stderr}\n[rig] ${tool} killed after ${opts.timeoutMs ?? 120_000} ms`
          : signal !== null
            ? `${stderr}\n[rig] ${tool} ended by ${signal}`
            : stderr,
      });
    });
    child.stdin.on('error', () => {
      /* the tool may exit before reading its input */
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Like run() but throws (with the tool's stderr) unless it exits 0. */
export async function runOk(
  tool: ToolName | string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const r = await run(tool, args, opts);
  if (r.code !== 0) {
    throw new Error(`${tool} ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

/** A private HOME / TUF_ROOT / DOCKER_CONFIG for the tools, removed by cleanup(). */
export interface ToolHome {
  dir: string;
  home: string;
  tufRoot: string;
  dockerConfig: string;
  cleanup(): Promise<void>;
}

export async function makeToolHome(prefix = 'cosign-web-tools-'): Promise<ToolHome> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  const tufRoot = join(dir, 'tuf');
  const dockerConfig = join(dir, 'docker');
  await Promise.all([mkdir(home), mkdir(tufRoot), mkdir(dockerConfig)]);
  await writeFile(join(dockerConfig, 'config.json'), '{"auths":{}}\n');
  return { dir, home, tufRoot, dockerConfig, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface CosignEnvOptions {
  /** Key password (COSIGN_PASSWORD). Omit to leave it unset (cosign then prompts and fails). */
  password?: string;
  /** CA bundle that signs the local TLS registries (SSL_CERT_FILE). */
  caFile?: string;
}

/** Environment for cosign2/cosign3: private HOME, TUF_ROOT, DOCKER_CONFIG, optional CA and password. */
export function cosignEnv(home: ToolHome, opts: CosignEnvOptions = {}): Record<string, string> {
  const env: Record<string, string> = {
    HOME: home.home,
    TUF_ROOT: home.tufRoot,
    DOCKER_CONFIG: home.dockerConfig,
  };
  if (opts.password !== undefined) env['COSIGN_PASSWORD'] = opts.password;
  if (opts.caFile !== undefined) env['SSL_CERT_FILE'] = opts.caFile;
  return env;
}

/** Environment for skopeo: private HOME (its auth file lives under XDG_RUNTIME_DIR/HOME). */
export function skopeoEnv(home: ToolHome): Record<string, string> {
  return {
    HOME: home.home,
    XDG_RUNTIME_DIR: join(home.dir, 'run'),
    REGISTRY_AUTH_FILE: join(home.dockerConfig, 'config.json'),
  };
}

/** cosign 2.5 sign with a key, no transparency log. */
export function cosign2SignArgs(key: string, ref: string, extra: readonly string[] = []): string[] {
  return ['sign', '--key', key, '--tlog-upload=false', '--yes', ...extra, ref];
}

/** cosign 2.5 / 3.1 verify with a public key, no transparency log. */
export function cosignVerifyArgs(pub: string, ref: string, extra: readonly string[] = []): string[] {
  return ['verify', '--key', pub, '--insecure-ignore-tlog=true', ...extra, ref];
}

/** Files that let cosign 3.1 sign with a key and no network (see makeCosign3Offline). */
export interface Cosign3Offline {
  signingConfig: string;
  trustedRoot: string;
}

/** cosign 3.1 sign with a key, the offline signing config and an empty trusted root (bundle format). */
export function cosign3SignArgs(
  key: string,
  offline: Cosign3Offline,
  ref: string,
  extra: readonly string[] = [],
): string[] {
  return [
    'sign',
    '--key',
    key,
    '--signing-config',
    offline.signingConfig,
    '--trusted-root',
    offline.trustedRoot,
    '--yes',
    ...extra,
    ref,
  ];
}

/** cosign 3.1 sign with a key in the cosign 2.x legacy `.sig` format, no log. */
export function cosign3LegacySignArgs(key: string, ref: string, extra: readonly string[] = []): string[] {
  return [
    'sign',
    '--key',
    key,
    '--tlog-upload=false',
    '--use-signing-config=false',
    '--new-bundle-format=false',
    '--yes',
    ...extra,
    ref,
  ];
}

/**
 * Writes, with cosign 3.1 itself, a signing config with no Fulcio, OIDC, Rekor or TSA and an empty
 * trusted root, so that signing with a key needs no network (not even a TUF refresh).
 */
export async function makeCosign3Offline(home: ToolHome, dir = home.dir): Promise<Cosign3Offline> {
  const signingConfig = join(dir, 'signing-config.json');
  const trustedRoot = join(dir, 'trusted-root.json');
  const env = { env: cosignEnv(home) };
  await runOk(
    'cosign3',
    [
      'signing-config',
      'create',
      '--no-default-fulcio',
      '--no-default-oidc',
      '--no-default-rekor',
      '--no-default-tsa',
      '--out',
      signingConfig,
    ],
    env,
  );
  await runOk(
    'cosign3',
    [
      'trusted-root',
      'create',
      '--no-default-ctfe',
      '--no-default-fulcio',
      '--no-default-rekor',
      '--no-default-tsa',
      '--out',
      trustedRoot,
    ],
    env,
  );
  return { signingConfig, trustedRoot };
}

/** `cosign login` for a registry, writing into the home's DOCKER_CONFIG. */
export async function cosignLogin(
  tool: 'cosign2' | 'cosign3',
  home: ToolHome,
  host: string,
  username: string,
  password: string,
  caFile?: string,
): Promise<void> {
  await runOk(tool, ['login', host, '-u', username, '--password-stdin'], {
    env: cosignEnv(home, caFile === undefined ? {} : { caFile }),
    input: password,
  });
}

/**
 * A folder holding `ca.crt`, as skopeo's --cert-dir / --src-cert-dir / --dest-cert-dir want. The
 * file is written beside and renamed into place, so a skopeo already reading the folder (tests
 * that run concurrently make the same folder again) never sees it empty or half written.
 */
export async function makeCertDir(caFile: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const part = join(dir, `.ca.crt.${process.pid}.${randomBytes(6).toString('hex')}`);
  await copyFile(caFile, part);
  await rename(part, join(dir, 'ca.crt'));
  return dir;
}

/** How skopeo reaches one registry; made by skopeoRegistryFlags. */
export interface SkopeoAccess {
  /** A dir with ca.crt for a TLS registry; undefined for plain HTTP. */
  certDir?: string;
  /** USER:PASS for basic or token auth. */
  creds?: string;
}

/**
 * skopeo flags to reach a registry as source ('src'), destination ('dest') or for inspect-like
 * commands ('plain'). Plain HTTP registries need tls-verify=false.
 */
export function skopeoRegistryFlags(access: SkopeoAccess, role: 'src' | 'dest' | 'plain'): string[] {
  const p = role === 'plain' ? '' : `${role}-`;
  const flags: string[] = [];
  if (access.certDir !== undefined) flags.push(`--${p}cert-dir`, access.certDir);
  else flags.push(`--${p}tls-verify=false`);
  if (access.creds !== undefined) flags.push(`--${p}creds`, access.creds);
  return flags;
}

/**
 * A containers-policy.json(5) that demands a sigstore signature by `pubKeyFile` for the given
 * repositories ("HOST/REPO"), rejects everything else, and accepts the local oci: layout side.
 */
export function sigstorePolicy(
  pubKeyFile: string,
  repos: readonly string[],
  signedIdentity: Record<string, unknown> = { type: 'matchRepository' },
  extra: Record<string, unknown> = {},
): string {
  const docker: Record<string, unknown[]> = {};
  for (const r of repos) docker[r] = [{ type: 'sigstoreSigned', keyPath: pubKeyFile, ...extra, signedIdentity }];
  return JSON.stringify(
    {
      default: [{ type: 'reject' }],
      transports: {
        docker,
        oci: { '': [{ type: 'insecureAcceptAnything' }] },
        dir: { '': [{ type: 'insecureAcceptAnything' }] },
      },
    },
    null,
    2,
  );
}

/** Versions of the installed tools: Debian package versions (cosign builds report "devel"). */
export interface ToolVersions {
  cosign2: string;
  cosign3: string;
  skopeo: string;
  registry: string;
  openssl: string;
}

async function packageVersion(root: 'trixie' | 'sid', pkg: string): Promise<string> {
  const text = await readFile(join(CACHE_DIR, root, 'PACKAGES'), 'utf8');
  for (const line of text.split('\n')) {
    const [name, version] = line.split(' ');
    if (name === pkg && version !== undefined) return version;
  }
  throw new Error(`${pkg} not in ${root}/PACKAGES: run bash test/rig/install.sh`);
}

export async function toolVersions(): Promise<ToolVersions> {
  const [cosign2, cosign3, skopeo, registry, openssl] = await Promise.all([
    packageVersion('trixie', 'cosign'),
    packageVersion('sid', 'cosign'),
    runOk('skopeo', ['--version']).then((r) => r.stdout.trim().replace(/^skopeo version /, '')),
    runOk('docker-registry', ['--version']).then((r) => r.stdout.trim().split(' ').pop() ?? ''),
    runOk('openssl', ['version']).then((r) => r.stdout.trim().split(' ')[1] ?? ''),
  ]);
  return { cosign2, cosign3, skopeo, registry, openssl };
}

/**
 * Pulls an image with skopeo under a sigstoreSigned policy for `pubKeyFile` (skopeo enforces the
 * policy on the source; the oci: copy drops the signatures, which oci: cannot store). Returns the
 * result, so callers can assert acceptance or refusal.
 */
export async function skopeoPolicyPull(
  home: ToolHome,
  access: SkopeoAccess,
  pubKeyFile: string,
  ref: string,
  opts: {
    identity?: Record<string, unknown>;
    all?: boolean;
    repository?: string;
    /** Also demand a Rekor v1 SET that verifies with this log key (PEM file). */
    rekorPublicKeyPath?: string;
    /** A whole containers-policy.json to use instead (then `pubKeyFile` is not used). */
    policy?: string;
  } = {},
): Promise<RunResult> {
  // The policy names the image's repository unless the caller names another one.
  const repo = opts.repository ?? ref.replace(/@.*$/, '').replace(/:[^/:]+$/, '');
  const scratch = await mkdtemp(join(home.dir, 'pull-'));
  const policy = join(scratch, 'policy.json');
  const rekor = opts.rekorPublicKeyPath ? { rekorPublicKeyPath: opts.rekorPublicKeyPath } : {};
  await writeFile(policy, opts.policy ?? sigstorePolicy(pubKeyFile, [repo], opts.identity, rekor));
  return run(
    'skopeo',
    [
      '--policy',
      policy,
      'copy',
      ...(opts.all ? ['--all'] : []),
      '--remove-signatures',
      ...skopeoRegistryFlags(access, 'src'),
      `docker://${ref}`,
      `oci:${join(scratch, 'layout')}:pulled`,
    ],
    { env: skopeoEnv(home) },
  );
}

/** Copies an image with skopeo, signing the copy with a cosign key (`--sign-by-sigstore-private-key`). */
export async function skopeoSignedCopy(
  home: ToolHome,
  access: SkopeoAccess,
  key: string,
  password: string,
  src: string,
  dest: string,
  opts: { all?: boolean } = {},
): Promise<RunResult> {
  const scratch = await mkdtemp(join(home.dir, 'sign-'));
  const passFile = join(scratch, 'pass');
  await writeFile(passFile, password + '\n');
  return runOk(
    'skopeo',
    [
      'copy',
      ...(opts.all ? ['--all'] : []),
      ...skopeoRegistryFlags(access, 'src'),
      ...skopeoRegistryFlags(access, 'dest'),
      '--sign-by-sigstore-private-key',
      key,
      '--sign-passphrase-file',
      passFile,
      `docker://${src}`,
      `docker://${dest}`,
    ],
    { env: skopeoEnv(home) },
  );
}

// A throwaway Sigstore-like PKI for tests, made with the real `openssl` (CA and leaf certificates,
// RFC 3161 timestamps) and node:crypto (keys, signatures): a CA (root P-384 + intermediate P-256)
// and an untrusted one, leaf certificates as Fulcio issues them, a Rekor v1 "log key" with the
// hashedrekord 0.0.1 entry bodies and signed entry timestamps (SET) Rekor v1 returns, the
// `--rekor-response` file cosign 2.5 `attach signature` reads, a trusted_root.json made by cosign 3.1
// `trusted-root create`, and a timestamp authority.
//
// Formats followed:
// - Fulcio certificates: https://github.com/sigstore/fulcio/blob/main/docs/certificate-specification.md
//   (empty subject, critical SAN email or URI, EKU codeSigning, 1.3.6.1.4.1.57264.1.1 = the issuer as
//   raw bytes (deprecated), .1.8 = the issuer as a DER UTF8String, .1.2–.1.6 GitHub workflow claims as
//   raw bytes).
// - Rekor v1 hashedrekord 0.0.1: https://github.com/sigstore/rekor/blob/main/pkg/types/hashedrekord/v0.0.1/hashedrekord_v0_0_1_schema.json
//   and the SET as cosign 2.5 checks it (pkg/cosign/verify.go VerifySET: ECDSA over SHA-256 of the
//   RFC 8785 canonical JSON {"body","integratedTime","logID","logIndex"}; logID = hex SHA-256 of the
//   log key's SPKI DER).
// - `--rekor-response`: cosign's LocalSignedPayload {"base64Signature","cert","rekorBundle":
//   {"SignedEntryTimestamp":<b64>,"Payload":{"body":<b64>,"integratedTime","logIndex","logID"}}}
//   (pkg/cosign/fetch.go, pkg/cosign/bundle/rekor.go); `rekorBundle` is also the value of the
//   `dev.sigstore.cosign/bundle` annotation.
//
// cosign 2.5 checks the leaf against SIGSTORE_ROOT_FILE (self-signed certificates become roots, the
// others intermediates) at the leaf's own notBefore, then the leaf's validity against the SET's
// integratedTime; so the CA here starts two days back and every time is in the past.
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cosignEnv, runOk, type ToolHome } from './tools.ts';

/** Fulcio's OID arc (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md). */
const FULCIO_OID = '1.3.6.1.4.1.57264.1';

/** The issuer of the "good" identities and of every variant but `otherIssuer`. */
export const TEST_ISSUER = 'https://oidc.rig.test';
export const OTHER_ISSUER = 'https://other-oidc.rig.test';
export const TEST_EMAIL = 'alice@rig.test';
export const OTHER_EMAIL = 'mallory@rig.test';
export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
export const GITHUB_IDENTITY = 'https://github.com/rig-org/rig-repo/.github/workflows/release.yml@refs/heads/main';
/** The GitHub workflow claims of the `github` leaf, by Fulcio OID (1.3.6.1.4.1.57264.1.N). */
export const GITHUB_CLAIMS = {
  trigger: 'push', // .2
  sha: '0123456789abcdef0123456789abcdef01234567', // .3
  name: 'release', // .4
  repository: 'rig-org/rig-repo', // .5
  ref: 'refs/heads/main', // .6
} as const;

/** A key pair: node KeyObjects and its PEM files (PKCS#8 private key, SPKI public key). */
export interface KeyFiles {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Unencrypted PKCS#8 PEM (what `cosign import-key-pair --key` takes). */
  keyFile: string;
  /** SPKI PEM. */
  pubFile: string;
  publicKeyPem: string;
}

/** A CA: root (self-signed, P-384) and intermediate (P-256, pathlen 0). */
export interface CaFiles {
  name: string;
  dir: string;
  rootPem: string;
  intermediatePem: string;
  /** The root certificate alone (PEM). */
  rootFile: string;
  /** The intermediate certificate alone (PEM). */
  intermediateFile: string;
  /** Intermediate then root, as `--certificate-chain` and the `chain` annotation want them. */
  chainFile: string;
  /** openssl's private files for issuing. */
  intermediateKeyFile: string;
  configFile: string;
}

/** What a leaf certificate says and how it is held. */
export interface LeafSpec {
  /** SAN: `email` for an email identity, `uri` for a URI (GitHub workflow) identity. */
  san: { email: string } | { uri: string };
  issuer: string;
  /** Seconds since the epoch. */
  notBefore: number;
  notAfter: number;
  /** Add the GitHub workflow claims (.2–.6). */
  github?: boolean;
}

export interface Leaf extends KeyFiles {
  name: string;
  spec: LeafSpec;
  /** The SAN value, as cosign's --certificate-identity compares it. */
  identity: string;
  certPem: string;
  certFile: string;
  /** Its CA's intermediate + root (PEM file). */
  chainFile: string;
  ca: CaFiles;
}

/** A Rekor v1 log key (ECDSA P-256) with its log ID. */
export interface LogKey extends KeyFiles {
  /** Hex SHA-256 of the SPKI DER, Rekor v1's log ID. */
  logId: string;
}

/** The payload of a Rekor v1 SET and of cosign's `rekorBundle.Payload`. */
export interface RekorPayload {
  /** Standard base64 of the entry body JSON. */
  body: string;
  integratedTime: number;
  logIndex: number;
  logID: string;
}

/** cosign's RekorBundle (the `dev.sigstore.cosign/bundle` annotation). */
export interface RekorBundle {
  /** Standard base64 of the DER ECDSA signature over the canonical payload. */
  SignedEntryTimestamp: string;
  Payload: RekorPayload;
}

/** A timestamp authority: a CA (root P-384) and a TSA leaf (P-256, EKU timeStamping critical). */
export interface TsaFiles {
  dir: string;
  /** TSA leaf then root (PEM), as cosign's `--timestamp-certificate-chain` wants it. */
  chainFile: string;
  certFile: string;
  keyFile: string;
  rootFile: string;
  configFile: string;
}

/** The names of the leaves makeTestPki makes. */
export type LeafName =
  | 'good'
  | 'otherIdentity'
  | 'otherIssuer'
  | 'notYetValid'
  | 'expired'
  | 'untrustedCa'
  | 'github'
  | 'current'
  | 'currentUntrustedCa';

export interface TestPki {
  dir: string;
  /** The trusted CA. */
  ca: CaFiles;
  /** A CA nobody trusts (same shape, other keys). */
  untrustedCa: CaFiles;
  /** The trusted log's key and another one (for SETs nobody should accept). */
  logKey: LogKey;
  otherLogKey: LogKey;
  /** Seconds since the epoch when the log "integrated" entries (30 minutes before makeTestPki ran). */
  logTime: number;
  /** When makeTestPki ran (seconds). */
  now: number;
  leaves: Record<LeafName, Leaf>;
  /** Trusted CA roots (PEM file, the root only). */
  rootsFile: string;
  /** Trusted intermediates (PEM file). */
  intermediatesFile: string;
  /** Root and intermediate in one file: SIGSTORE_ROOT_FILE for cosign 2.5. */
  sigstoreRootFile: string;
  /** trusted_root.json made by cosign 3.1 (`trusted-root create`) for the trusted CA, log and TSA. */
  trustedRootFile: string;
  /**
   * The same for the untrusted CA: cosign 3.1 checks a certificate against its `--trusted-root`
   * when it signs, so signing with an untrusted leaf needs one that trusts it.
   */
  untrustedCaTrustedRootFile: string;
  tsa: TsaFiles;
}

const isoCompact = (t: number): string =>
  new Date(t * 1000)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

async function writeKeyFiles(dir: string, name: string, curve: 'P-256' | 'P-384'): Promise<KeyFiles> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const keyFile = join(dir, `${name}.key.pem`);
  const pubFile = join(dir, `${name}.pub.pem`);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(pubFile, publicKeyPem);
  return { privateKey, publicKey, keyFile, pubFile, publicKeyPem };
}

/** openssl ca's configuration: a database per CA and the extension sections every certificate uses. */
function caConfig(dir: string): string {
  return `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}/newcerts
serial = ${dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = optional
organizationName = optional
[ root_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ intermediate_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ tsa_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;
}

/** One certificate issued by `openssl ca` from a CSR made for `keyFile`. */
async function issue(opts: {
  configFile: string;
  extFile?: string;
  extensions: string;
  keyFile: string;
  subject: string;
  out: string;
  notBefore: number;
  notAfter: number;
  /** The issuer's certificate and key; absent for a self-signed root. */
  issuer?: { cert: string; key: string };
}): Promise<string> {
  const csr = `${opts.out}.csr`;
  await runOk('openssl', ['req', '-new', '-key', opts.keyFile, '-subj', opts.subject, '-out', csr]);
  await runOk('openssl', [
    'ca',
    '-batch',
    '-notext',
    '-config',
    opts.configFile,
    ...(opts.issuer
      ? ['-cert', opts.issuer.cert, '-keyfile', opts.issuer.key]
      : ['-selfsign', '-keyfile', opts.keyFile]),
    ...(opts.extFile ? ['-extfile', opts.extFile] : []),
    '-extensions',
    opts.extensions,
    '-startdate',
    isoCompact(opts.notBefore),
    '-enddate',
    isoCompact(opts.notAfter),
    '-in',
    csr,
    '-out',
    opts.out,
  ]);
  return readFile(opts.out, 'utf8');
}

async function caDir(dir: string): Promise<string> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  const configFile = join(dir, 'ca.cnf');
  await writeFile(configFile, caConfig(dir));
  return configFile;
}

/**
 * In `dir`, a CA directory, a root (P-384) and one certificate under it (P-256, its files named
 * `child.name`), both valid from `from` for ten years, and `chain.pem` (the child, then the root).
 */
async function twoTier(
  dir: string,
  from: number,
  rootSubject: string,
  child: { name: string; extensions: string; subject: string },
) {
  const configFile = await caDir(dir);
  const rootKey = await writeKeyFiles(dir, 'root', 'P-384');
  const childKey = await writeKeyFiles(dir, child.name, 'P-256');
  const rootFile = join(dir, 'root.pem');
  const childFile = join(dir, `${child.name}.pem`);
  const until = from + 10 * 365 * 86400;
  const rootPem = await issue({
    configFile,
    extensions: 'root_ext',
    keyFile: rootKey.keyFile,
    subject: rootSubject,
    out: rootFile,
    notBefore: from,
    notAfter: until,
  });
  const childPem = await issue({
    configFile,
    extensions: child.extensions,
    keyFile: childKey.keyFile,
    subject: child.subject,
    out: childFile,
    notBefore: from,
    notAfter: until,
    issuer: { cert: rootFile, key: rootKey.keyFile },
  });
  const chainFile = join(dir, 'chain.pem');
  await writeFile(chainFile, childPem + rootPem);
  return { configFile, rootPem, rootFile, childPem, childFile, childKeyFile: childKey.keyFile, chainFile };
}

/** Makes a root (P-384) and an intermediate (P-256) valid from `from` for ten years. */
async function makeCa(parent: string, name: string, from: number): Promise<CaFiles> {
  const dir = join(parent, name);
  const t = await twoTier(dir, from, `/O=cosign-web rig/CN=${name} root`, {
    name: 'intermediate',
    extensions: 'intermediate_ext',
    subject: `/O=cosign-web rig/CN=${name} intermediate`,
  });
  return {
    name,
    dir,
    rootPem: t.rootPem,
    intermediatePem: t.childPem,
    rootFile: t.rootFile,
    intermediateFile: t.childFile,
    chainFile: t.chainFile,
    intermediateKeyFile: t.childKeyFile,
    configFile: t.configFile,
  };
}

/** The openssl extension section of a Fulcio-like leaf. */
function leafExtensions(spec: LeafSpec): string {
  const san = 'email' in spec.san ? `email:${spec.san.email}` : `URI:${spec.san.uri}`;
  const lines = [
    '[ leaf_ext ]',
    'keyUsage = critical,digitalSignature',
    'extendedKeyUsage = codeSigning',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
    // Fulcio leaves have an empty subject, so the SAN is critical (RFC 5280 4.2.1.6).
    `subjectAltName = critical,${san}`,
    // .1.1 holds the issuer's bytes as they are (not DER); .1.8 a DER UTF8String.
    `${FULCIO_OID}.1 = DER:${hex(spec.issuer)}`,
    `${FULCIO_OID}.8 = ASN1:UTF8String:${spec.issuer}`,
  ];
  if (spec.github === true) {
    lines.push(
      `${FULCIO_OID}.2 = DER:${hex(GITHUB_CLAIMS.trigger)}`,
      `${FULCIO_OID}.3 = DER:${hex(GITHUB_CLAIMS.sha)}`,
      `${FULCIO_OID}.4 = DER:${hex(GITHUB_CLAIMS.name)}`,
      `${FULCIO_OID}.5 = DER:${hex(GITHUB_CLAIMS.repository)}`,
      `${FULCIO_OID}.6 = DER:${hex(GITHUB_CLAIMS.ref)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Issues a Fulcio-like leaf certificate from `ca` for a fresh P-256 key.
 * @throws Error when openssl fails.
 */
export async function makeLeaf(dir: string, ca: CaFiles, name: string, spec: LeafSpec): Promise<Leaf> {
  const leafDir = join(dir, 'leaves', name);
  await mkdir(leafDir, { recursive: true });
  const keys = await writeKeyFiles(leafDir, 'leaf', 'P-256');
  const extFile = join(leafDir, 'ext.cnf');
  await writeFile(extFile, leafExtensions(spec));
  const certFile = join(leafDir, 'cert.pem');
  const certPem = await issue({
    configFile: ca.configFile,
    extFile,
    extensions: 'leaf_ext',
    keyFile: keys.keyFile,
    subject: '/',
    out: certFile,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    issuer: { cert: ca.intermediateFile, key: ca.intermediateKeyFile },
  });
  return {
    ...keys,
    name,
    spec,
    identity: 'email' in spec.san ? spec.san.email : spec.san.uri,
    certPem,
    certFile,
    chainFile: ca.chainFile,
    ca,
  };
}

/** SHA-256 of the SPKI DER, hex: Rekor v1's log ID for this key. */
export function logIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

async function makeLogKey(dir: string, name: string): Promise<LogKey> {
  const k = await writeKeyFiles(dir, name, 'P-256');
  return { ...k, logId: logIdOf(k.publicKey) };
}

/** ECDSA P-256 over SHA-256, DER (as Go and cosign write signatures). */
export function signBytes(key: KeyObject, data: Uint8Array): Buffer {
  return nodeSign('sha256', data, key);
}

/**
 * The Rekor v1 hashedrekord 0.0.1 entry body (the JSON Rekor stores and returns base64'd) for a
 * signature over an artifact whose SHA-256 is `sha256Hex`, verified by a certificate or public key
 * (PEM). Rekor keeps the PEM base64'd in `publicKey.content`; cosign compares its DER with the
 * signature's certificate.
 */
export function hashedRekordBody(signature: Uint8Array, verifierPem: string, sha256Hex: string): string {
  return JSON.stringify({
    apiVersion: '0.0.1',
    kind: 'hashedrekord',
    spec: {
      data: { hash: { algorithm: 'sha256', value: sha256Hex } },
      signature: {
        content: Buffer.from(signature).toString('base64'),
        publicKey: { content: Buffer.from(verifierPem, 'utf8').toString('base64') },
      },
    },
  });
}

/** RFC 8785 canonical JSON of a SET payload: keys sorted, integers, strings without escapes. */
export function canonicalSetPayload(p: RekorPayload): string {
  return JSON.stringify({ body: p.body, integratedTime: p.integratedTime, logID: p.logID, logIndex: p.logIndex });
}

/** A SET: ECDSA (SHA-256, DER) by `key` over the canonical payload. */
export function signSet(key: KeyObject, p: RekorPayload): Buffer {
  return signBytes(key, Buffer.from(canonicalSetPayload(p), 'utf8'));
}

/** What a log entry is made of; the defaults make a genuine entry. */
export interface EntryOptions {
  /** The log whose ID the entry carries. */
  log: LogKey;
  /** Who signs the SET (default: `log`); another key makes a SET nobody should accept. */
  setSigner?: LogKey;
  integratedTime: number;
  logIndex?: number;
}

/** The RekorBundle (SET + payload) for an entry body (JSON text). */
export function rekorBundle(bodyJson: string, o: EntryOptions): RekorBundle {
  const Payload: RekorPayload = {
    body: Buffer.from(bodyJson, 'utf8').toString('base64'),
    integratedTime: o.integratedTime,
    logIndex: o.logIndex ?? 0,
    logID: o.log.logId,
  };
  const set = signSet((o.setSigner ?? o.log).privateKey, Payload);
  return { SignedEntryTimestamp: set.toString('base64'), Payload };
}

/** The file cosign 2.5 `attach signature --rekor-response` reads (cosign's LocalSignedPayload). */
export function rekorResponse(signature: Uint8Array, certPem: string, bundle: RekorBundle): string {
  return JSON.stringify({
    base64Signature: Buffer.from(signature).toString('base64'),
    cert: certPem,
    rekorBundle: bundle,
  });
}

/** A timestamp authority for `openssl ts -reply`. */
async function makeTsa(parent: string, from: number): Promise<TsaFiles> {
  const dir = join(parent, 'tsa');
  const t = await twoTier(dir, from, '/O=cosign-web rig/CN=tsa root', {
    name: 'tsa',
    extensions: 'tsa_ext',
    subject: '/O=cosign-web rig/CN=tsa',
  });
  const tsConfig = join(dir, 'ts.cnf');
  await writeFile(
    tsConfig,
    `[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = ${dir}
serial = ${dir}/tsaserial
signer_digest = sha256
default_policy = 1.3.6.1.4.1.57264.99.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
`,
  );
  await writeFile(join(dir, 'tsaserial'), '01\n');
  return {
    dir,
    chainFile: t.chainFile,
    certFile: t.childFile,
    keyFile: t.childKeyFile,
    rootFile: t.rootFile,
    configFile: tsConfig,
  };
}

/**
 * An RFC 3161 timestamp response (DER) from the test TSA over `data` (cosign timestamps the raw
 * signature bytes), made by `openssl ts -query` / `-reply`. The time is now: openssl cannot
 * backdate.
 * @throws Error when openssl fails.
 */
export async function timestampResponse(tsa: TsaFiles, data: Uint8Array, name: string): Promise<Buffer> {
  const dataFile = join(tsa.dir, `${name}.data`);
  const query = join(tsa.dir, `${name}.tsq`);
  const reply = join(tsa.dir, `${name}.tsr`);
  await writeFile(dataFile, data);
  await runOk('openssl', ['ts', '-query', '-data', dataFile, '-sha256', '-cert', '-out', query]);
  await runOk('openssl', [
    'ts',
    '-reply',
    '-config',
    tsa.configFile,
    '-queryfile',
    query,
    '-signer',
    tsa.certFile,
    '-inkey',
    tsa.keyFile,
    '-chain',
    tsa.rootFile,
    '-out',
    reply,
  ]);
  return readFile(reply);
}

const rfc3339 = (t: number): string => new Date(t * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * trusted_root.json for cosign 3.1, made by `cosign3 trusted-root create` with the CA chain, the
 * log key and the TSA chain (no CT log: verify with `--insecure-ignore-sct`).
 */
async function makeTrustedRoot(
  home: ToolHome,
  out: string,
  ca: CaFiles,
  log: LogKey,
  tsa: TsaFiles,
  from: number,
): Promise<void> {
  await runOk(
    'cosign3',
    [
      'trusted-root',
      'create',
      `--fulcio=url=https://fulcio.rig.test,certificate-chain=${ca.chainFile},start-time=${rfc3339(from)}`,
      `--rekor=url=https://rekor.rig.test,public-key=${log.pubFile},start-time=${rfc3339(from)}`,
      `--tsa=url=https://tsa.rig.test/api/v1/timestamp,certificate-chain=${tsa.chainFile},start-time=${rfc3339(from)}`,
      '--out',
      out,
    ],
    { env: cosignEnv(home) },
  );
}

/**
 * Makes the whole PKI in `dir` (created): CAs, leaves, log keys, TSA and cosign 3.1's trusted root.
 * Leaf validity, relative to `logTime` (30 minutes ago): good ones [logTime−5 min, logTime+5 min];
 * `notYetValid` starts 5 minutes after it; `expired` ended 5 minutes before it; `current` and
 * `currentUntrustedCa` are valid from 10 minutes ago for an hour (for signatures whose time is "now": bundles without a log, RFC
 * 3161 timestamps).
 * @throws Error when openssl or cosign 3.1 fails.
 */
export async function makeTestPki(home: ToolHome, dir: string): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  const now = Math.floor(Date.now() / 1000);
  const from = now - 2 * 86400;
  const logTime = now - 1800;
  const [ca, untrustedCa, logKey, otherLogKey, tsa] = await Promise.all([
    makeCa(dir, 'ca', from),
    makeCa(dir, 'untrusted-ca', from),
    makeLogKey(dir, 'log'),
    makeLogKey(dir, 'other-log'),
    makeTsa(dir, from),
  ]);
  const window = { notBefore: logTime - 300, notAfter: logTime + 300 };
  const nowWindow = { notBefore: now - 600, notAfter: now + 3600 };
  const alice = { email: TEST_EMAIL };
  const specs: Record<LeafName, [CaFiles, LeafSpec]> = {
    good: [ca, { san: alice, issuer: TEST_ISSUER, ...window }],
    otherIdentity: [ca, { san: { email: OTHER_EMAIL }, issuer: TEST_ISSUER, ...window }],
    otherIssuer: [ca, { san: alice, issuer: OTHER_ISSUER, ...window }],
    notYetValid: [ca, { san: alice, issuer: TEST_ISSUER, notBefore: logTime + 300, notAfter: logTime + 900 }],
    expired: [ca, { san: alice, issuer: TEST_ISSUER, notBefore: logTime - 900, notAfter: logTime - 300 }],
    untrustedCa: [untrustedCa, { san: alice, issuer: TEST_ISSUER, ...window }],
    github: [ca, { san: { uri: GITHUB_IDENTITY }, issuer: GITHUB_ISSUER, github: true, ...window }],
    current: [ca, { san: alice, issuer: TEST_ISSUER, ...nowWindow }],
    currentUntrustedCa: [untrustedCa, { san: alice, issuer: TEST_ISSUER, ...nowWindow }],
  };
  // openssl ca keeps one database per CA: issue one leaf at a time.
  const leaves = {} as Record<LeafName, Leaf>;
  for (const [name, [issuer, spec]] of Object.entries(specs) as [LeafName, [CaFiles, LeafSpec]][]) {
    leaves[name] = await makeLeaf(dir, issuer, name, spec);
  }
  const rootsFile = ca.rootFile;
  const intermediatesFile = ca.intermediateFile;
  const sigstoreRootFile = join(dir, 'sigstore-root.pem');
  await writeFile(sigstoreRootFile, ca.rootPem + ca.intermediatePem);
  const trustedRootFile = join(dir, 'trusted_root.json');
  const untrustedCaTrustedRootFile = join(dir, 'untrusted-ca-trusted_root.json');
  await makeTrustedRoot(home, trustedRootFile, ca, logKey, tsa, from);
  await makeTrustedRoot(home, untrustedCaTrustedRootFile, untrustedCa, otherLogKey, tsa, from);
  return {
    dir,
    ca,
    untrustedCa,
    logKey,
    otherLogKey,
    logTime,
    now,
    leaves,
    rootsFile,
    intermediatesFile,
    sigstoreRootFile,
    trustedRootFile,
    untrustedCaTrustedRootFile,
    tsa,
  };
}

/**
 * Imports a leaf's private key as a cosign key (`cosign3 import-key-pair`, which takes EC keys that
 * Debian's cosign 2.5 refuses), encrypted with `password`. Returns the `.key` path (and writes
 * `.pub` next to it).
 * @throws Error when cosign fails.
 */
export async function importLeafKey(home: ToolHome, leaf: Leaf, password: string): Promise<string> {
  const prefix = join(leaf.keyFile, '..', 'cosign');
  await runOk('cosign3', ['import-key-pair', '--key', leaf.keyFile, '--output-key-prefix', prefix, '--yes'], {
    env: cosignEnv(home, { password }),
  });
  return `${prefix}.key`;
}

/** DSSE's pre-authentication encoding (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md). */
export function dssePae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${payload.length} `, 'utf8'),
    Buffer.from(payload),
  ]);
}

/**
 * The Rekor v1 dsse 0.0.1 entry body for a DSSE envelope (its JSON as stored in the bundle) with one
 * signature, verified by `verifierPem` (certificate or key):
 * https://github.com/sigstore/rekor/blob/main/pkg/types/dsse/v0.0.1/dsse_v0_0_1_schema.json
 */
export function dsseRekordBody(
  envelopeJson: string,
  payload: Uint8Array,
  signature: Uint8Array,
  verifierPem: string,
): string {
  const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
  return JSON.stringify({
    apiVersion: '0.0.1',
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha(envelopeJson) },
      payloadHash: { algorithm: 'sha256', value: sha(payload) },
      signatures: [
        {
          signature: Buffer.from(signature).toString('base64'),
          verifier: Buffer.from(verifierPem, 'utf8').toString('base64'),
        },
      ],
    },
  });
}

const pemToDerB64 = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

/**
 * A Rekor v1 signed checkpoint for a one-entry tree (size 1, root = the entry's RFC 6962 leaf hash
 * SHA-256(0x00 ‖ body)), signed by the log key as a signed note: `<origin>\n1\n<b64 root>\n\n— <name>
 * <b64(4-byte key hint ‖ DER signature)>\n`, the hint being the first 4 bytes of the log ID
 * (rekor pkg/util/signed_note.go).
 */
export function oneEntryCheckpoint(
  log: LogKey,
  body: string,
  origin = 'rekor.rig.test - 1',
): { rootHash: Buffer; envelope: string } {
  const rootHash = createHash('sha256')
    .update(Buffer.concat([Buffer.from([0]), Buffer.from(body, 'utf8')]))
    .digest();
  const note = `${origin}\n1\n${rootHash.toString('base64')}\n`;
  const sig = signBytes(log.privateKey, Buffer.from(note, 'utf8'));
  const hint = Buffer.from(log.logId.slice(0, 8), 'hex');
  const name = origin.split(' ')[0]!;
  return { rootHash, envelope: `${note}\n\u2014 ${name} ${Buffer.concat([hint, sig]).toString('base64')}\n` };
}

/**
 * A Sigstore bundle v0.3 (protobuf JSON) holding a DSSE envelope, the leaf certificate and a Rekor
 * v1 entry with both an inclusion promise (the SET, which gives the time) and an inclusion proof in
 * a one-entry tree with its signed checkpoint (v0.2 and later demand a proof; cosign 3.1 reads only
 * v0.3 bundles from a registry: "bundle version too old").
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
 */
export function dsseBundleV03(o: {
  envelope: { payload: Buffer; payloadType: string; signature: Buffer };
  certPem: string;
  body: string;
  rekor: RekorBundle;
  log: LogKey;
  /** An RFC 3161 TimeStampResp (DER), carried as the bundle's timestamp verification data. */
  timestamp?: Buffer | undefined;
}): string {
  const checkpoint = oneEntryCheckpoint(o.log, o.body);
  return JSON.stringify({
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      certificate: { rawBytes: pemToDerB64(o.certPem) },
      tlogEntries: [
        {
          logIndex: String(o.rekor.Payload.logIndex),
          logId: { keyId: Buffer.from(o.rekor.Payload.logID, 'hex').toString('base64') },
          kindVersion: { kind: 'dsse', version: '0.0.1' },
          integratedTime: String(o.rekor.Payload.integratedTime),
          inclusionPromise: { signedEntryTimestamp: o.rekor.SignedEntryTimestamp },
          inclusionProof: {
            logIndex: '0',
            rootHash: checkpoint.rootHash.toString('base64'),
            treeSize: '1',
            hashes: [],
            checkpoint: { envelope: checkpoint.envelope },
          },
          canonicalizedBody: Buffer.from(o.body, 'utf8').toString('base64'),
        },
      ],
      ...(o.timestamp
        ? { timestampVerificationData: { rfc3161Timestamps: [{ signedTimestamp: o.timestamp.toString('base64') }] } }
        : {}),
    },
    dsseEnvelope: {
      payload: o.envelope.payload.toString('base64'),
      payloadType: o.envelope.payloadType,
      signatures: [{ sig: o.envelope.signature.toString('base64'), keyid: '' }],
    },
  });
}

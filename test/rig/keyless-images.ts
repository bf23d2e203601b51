// Images signed "keyless" (a Fulcio-like certificate, a Rekor v1 entry) with the REAL tools, in
// every variant a verifier must accept or refuse, and what cosign 2.5, cosign 3.1 and skopeo 1.18
// say about each: the fixtures the page's own certificate + transparency-log verdicts are compared
// with. The PKI, log and TSA are test/rig/sigstore-pki.ts's; nothing reaches the network.
//
// How each format is made (found with the real tools, see the header of keyless-interop.test.ts):
// - legacy `.sig` (cosign 2.x format): `cosign2 generate IMG@DIGEST` gives the simple-signing
//   payload; node:crypto signs it with the leaf's key (ECDSA P-256, SHA-256, DER); `cosign2 attach
//   signature --payload --signature --certificate --certificate-chain --rekor-response [--tsr]`
//   writes the layer with the `certificate`, `chain`, `bundle` (and `rfc3161timestamp`) annotations.
//   https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
// - Sigstore bundle (cosign 3.x format): `cosign3 sign --key <imported leaf key> --certificate
//   --certificate-chain --signing-config <no Fulcio, no log, no TSA>` writes a v0.3 bundle whose
//   verification material is the leaf certificate, with no transparency-log entry and no timestamp;
//   it verifies only with `--insecure-ignore-tlog`, at the current time. And a v0.3 bundle built here
//   (DSSE, certificate, Rekor v1 dsse entry with SET + one-entry inclusion proof + signed checkpoint)
//   attached with `cosign3 attach signature --payload bundle.json`, which cosign 3.1 writes as a
//   referrer just as `sign` does (it reads only v0.3 bundles back: "bundle version too old").
//   https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto
// Verified with: cosign 2.5 `verify --certificate-identity --certificate-oidc-issuer
// --insecure-ignore-sct --offline` (SIGSTORE_ROOT_FILE, SIGSTORE_REKOR_PUBLIC_KEY); cosign 3.1 the
// same flags with `--trusted-root`; skopeo 1.18 with a containers-policy.json(5) `sigstoreSigned`
// requirement, once with `fulcio {caPath, oidcIssuer, subjectEmail}` and once with
// `pki {caRootsPath, caIntermediatesPath, subjectEmail}`, both with `rekorPublicKeyPath`.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pushSampleImage, skopeoAccess, type PushedImage } from './images.ts';
import {
  dssePae,
  dsseRekordBody,
  dsseBundleV03,
  GITHUB_IDENTITY,
  GITHUB_ISSUER,
  OTHER_EMAIL,
  TEST_EMAIL,
  TEST_ISSUER,
  hashedRekordBody,
  importLeafKey,
  makeTestPki,
  rekorBundle,
  rekorResponse,
  signBytes,
  timestampResponse,
  type Leaf,
  type LeafName,
  type TestPki,
} from './sigstore-pki.ts';
import {
  cosignEnv,
  makeCosign3Offline,
  run,
  runOk,
  skopeoEnv,
  skopeoRegistryFlags,
  type Cosign3Offline,
  type RunResult,
  type ToolHome,
} from './tools.ts';

/** The tools whose verdicts are collected. skopeo is asked twice: with `fulcio` and with `pki`. */
export type Judge = 'cosign2' | 'cosign3' | 'skopeoFulcio' | 'skopeoPki';
export const JUDGES: readonly Judge[] = ['cosign2', 'cosign3', 'skopeoFulcio', 'skopeoPki'];

/** One tool's verdict: its exit code and the gist of what it printed. */
export interface Verdict {
  accepted: boolean;
  code: number;
  /** The last meaningful stderr lines (error or warnings), at most 400 characters. */
  summary: string;
  /** The command line (tool and arguments) that gave this verdict. */
  argv: string[];
}

export type VariantName =
  | 'good'
  | 'github'
  | 'otherIdentity'
  | 'otherIssuer'
  | 'notYetValid'
  | 'expired'
  | 'untrustedCa'
  | 'setByOtherKey'
  | 'bodyMismatch'
  | 'bodyOtherSignature'
  | 'bodyOtherCertificate'
  | 'timestamped'
  | 'timestampOverOtherData'
  | 'bundleGood'
  | 'bundleWrongIdentity'
  | 'bundleUntrustedCa'
  | 'bundleLogGood'
  | 'bundleLogTimestamped'
  | 'bundleLogTimestampOverOtherData'
  | 'bundleLogExpired'
  | 'bundleLogSetByOtherKey';

/** What each variant is, how it is made, and what a correct verifier says. */
interface VariantSpec {
  format: 'legacy' | 'bundle';
  leaf: LeafName;
  description: string;
  /** The identity a verifier is asked for (default: TEST_EMAIL / TEST_ISSUER). */
  expect?: { identity: string; issuer: string };
  /** A correct verifier accepts. */
  valid: boolean;
  /** Legacy only: how the log entry is spoiled. */
  entry?: 'setByOtherKey' | 'bodyMismatch' | 'bodyOtherSignature' | 'bodyOtherCertificate';
  /**
   * Also an RFC 3161 timestamp over the signature (or over other bytes): `--tsr` for a legacy
   * layer, the bundle's timestampVerificationData for a logged bundle.
   */
  timestamp?: 'signature' | 'otherData';
  /** Where a tool's verdict is not `valid`, and why (what the tool cannot see or express). */
  divergent?: Partial<Record<Judge, { accepted: boolean; why: string }>>;
  /** Bundle only: share the image of another variant (only the expected identity differs). */
  sameImageAs?: VariantName;
  /**
   * Bundle only: a v0.3 bundle built here (DSSE, certificate, Rekor v1 dsse entry with a SET and an
   * inclusion proof)
   * and attached with `cosign3 attach signature --payload bundle.json`, instead of `cosign3 sign`.
   */
  log?: boolean;
}

/** The variants, in the order they are reported. */
const PKI_NOW = {
  accepted: false,
  why: 'skopeo `pki` takes no Rekor key, so it checks the certificate at the current time (it expired 25 minutes ago)',
};
const NO_URI = {
  accepted: false,
  why: 'containers-policy.json cannot name a URI identity (fulcio needs subjectEmail)',
};
const NO_BUNDLE = { accepted: false, why: 'cannot see cosign 3.x bundle signatures (OCI referrers)' };

export const VARIANT_SPECS: Readonly<Record<VariantName, VariantSpec>> = {
  good: {
    format: 'legacy',
    leaf: 'good',
    valid: true,
    description: 'certificate from the trusted CA, genuine log entry',
    divergent: { skopeoPki: PKI_NOW },
  },
  github: {
    format: 'legacy',
    leaf: 'github',
    valid: true,
    expect: { identity: GITHUB_IDENTITY, issuer: GITHUB_ISSUER },
    description: 'GitHub workflow certificate (URI SAN, claims .2–.6), genuine log entry',
    divergent: { skopeoFulcio: NO_URI, skopeoPki: NO_URI },
  },
  otherIdentity: {
    format: 'legacy',
    leaf: 'otherIdentity',
    valid: false,
    description: `certificate for ${OTHER_EMAIL}, expected ${TEST_EMAIL}`,
  },
  otherIssuer: {
    format: 'legacy',
    leaf: 'otherIssuer',
    valid: false,
    description: 'certificate from another OIDC issuer',
  },
  notYetValid: {
    format: 'legacy',
    leaf: 'notYetValid',
    valid: false,
    description: 'certificate valid only after the log time',
  },
  expired: { format: 'legacy', leaf: 'expired', valid: false, description: 'certificate expired before the log time' },
  untrustedCa: { format: 'legacy', leaf: 'untrustedCa', valid: false, description: 'certificate from an untrusted CA' },
  setByOtherKey: {
    format: 'legacy',
    leaf: 'good',
    valid: false,
    entry: 'setByOtherKey',
    description: "SET signed by another key under the trusted log's ID",
  },
  bodyMismatch: {
    format: 'legacy',
    leaf: 'good',
    valid: false,
    entry: 'bodyMismatch',
    description: 'genuine SET over an entry body for another payload hash',
  },
  bodyOtherSignature: {
    format: 'legacy',
    leaf: 'good',
    valid: false,
    entry: 'bodyOtherSignature',
    description: 'genuine SET over an entry for another signature of the same payload by the same key',
  },
  bodyOtherCertificate: {
    format: 'legacy',
    leaf: 'good',
    valid: false,
    entry: 'bodyOtherCertificate',
    description: "genuine SET over an entry for the same payload signed by another leaf (otherIdentity's)",
  },
  timestamped: {
    format: 'legacy',
    leaf: 'current',
    valid: true,
    timestamp: 'signature',
    description: 'certificate valid now, genuine log entry, RFC 3161 timestamp by the test TSA',
  },
  timestampOverOtherData: {
    format: 'legacy',
    leaf: 'current',
    valid: false,
    timestamp: 'otherData',
    description: 'as timestamped, but the RFC 3161 timestamp is over other bytes than the signature',
    divergent: {
      skopeoFulcio: { accepted: true, why: 'containers/image ignores RFC 3161 timestamps' },
      skopeoPki: { accepted: true, why: 'containers/image ignores RFC 3161 timestamps' },
    },
  },
  bundleGood: {
    format: 'bundle',
    leaf: 'current',
    valid: true,
    description: 'cosign 3.1 bundle with the certificate, no log entry (verify with --insecure-ignore-tlog)',
    divergent: { cosign2: NO_BUNDLE, skopeoFulcio: NO_BUNDLE, skopeoPki: NO_BUNDLE },
  },
  bundleWrongIdentity: {
    format: 'bundle',
    leaf: 'current',
    valid: false,
    sameImageAs: 'bundleGood',
    expect: { identity: OTHER_EMAIL, issuer: TEST_ISSUER },
    description: `bundleGood's image, verified expecting ${OTHER_EMAIL}`,
  },
  bundleUntrustedCa: {
    format: 'bundle',
    leaf: 'currentUntrustedCa',
    valid: false,
    description: 'cosign 3.1 bundle with a certificate from an untrusted CA, no log entry',
    divergent: { cosign2: NO_BUNDLE, skopeoFulcio: NO_BUNDLE, skopeoPki: NO_BUNDLE },
  },
  bundleLogGood: {
    format: 'bundle',
    leaf: 'good',
    valid: true,
    log: true,
    description: 'v0.3 bundle built here: DSSE, certificate, Rekor v1 dsse entry with a genuine SET and proof',
    divergent: { cosign2: NO_BUNDLE, skopeoFulcio: NO_BUNDLE, skopeoPki: NO_BUNDLE },
  },
  bundleLogTimestamped: {
    format: 'bundle',
    leaf: 'current',
    valid: true,
    log: true,
    timestamp: 'signature',
    description:
      'v0.3 bundle built here: DSSE, certificate valid now, Rekor v1 dsse entry with a genuine SET and proof, RFC 3161 timestamp by the test TSA',
    divergent: { cosign2: NO_BUNDLE, skopeoFulcio: NO_BUNDLE, skopeoPki: NO_BUNDLE },
  },
  bundleLogTimestampOverOtherData: {
    format: 'bundle',
    leaf: 'current',
    valid: false,
    log: true,
    timestamp: 'otherData',
    description: 'as bundleLogTimestamped, but the RFC 3161 timestamp is over other bytes than the signature',
    divergent: { cosign2: NO_BUNDLE, skopeoFulcio: NO_BUNDLE, skopeoPki: NO_BUNDLE },
  },
  bundleLogExpired: {
    format: 'bundle',
    leaf: 'expired',
    valid: false,
    log: true,
    description: 'as bundleLogGood, with a certificate expired before the log time',
  },
  bundleLogSetByOtherKey: {
    format: 'bundle',
    leaf: 'good',
    valid: false,
    log: true,
    entry: 'setByOtherKey',
    description: "as bundleLogGood, with a SET signed by another key under the trusted log's ID",
  },
};

/** Paths of what verifiers are given to trust. */
export interface TrustMaterial {
  /** Trusted CA roots (PEM). */
  caRoots: string;
  /** Trusted CA intermediates (PEM). */
  caIntermediates: string;
  /** Roots + intermediates in one PEM: cosign 2.5's SIGSTORE_ROOT_FILE. */
  sigstoreRootFile: string;
  /** The Rekor v1 log's public key (PEM): SIGSTORE_REKOR_PUBLIC_KEY, skopeo's rekorPublicKeyPath. */
  rekorPublicKey: string;
  /** cosign 3.1's trusted_root.json (CA, log, TSA; no CT log). */
  trustedRoot: string;
  /** The TSA's chain, leaf then root (PEM): cosign 2.5's `--timestamp-certificate-chain`. */
  tsaChain: string;
}

export interface KeylessVariant {
  name: VariantName;
  format: 'legacy' | 'bundle';
  description: string;
  /** HOST/REPO@sha256:… */
  ref: string;
  image: PushedImage;
  /** What a verifier is asked for. */
  identity: string;
  issuer: string;
  /** What a correct verifier says. */
  valid: boolean;
  /** What each tool is expected to say: `valid`, unless the tool cannot see or express it (why). */
  expected: Record<Judge, { accepted: boolean; why?: string }>;
  leaf: Leaf;
  /** Legacy: the payload signed, the signature (DER), the RekorBundle attached. */
  payload?: Buffer;
  signature?: Buffer;
  /** Legacy: when the (fake) log integrated the entry, seconds. */
  integratedTime?: number;
}

export interface KeylessFixtures {
  pki: TestPki;
  trust: TrustMaterial;
  variants: KeylessVariant[];
}

export interface KeylessOptions {
  home: ToolHome;
  /** A TLS registry of the rig (registries.ts): host and CA file. */
  registry: { host: string; caFile: string };
  /** Folder for the PKI and the signing files (made). */
  dir: string;
  /** Repository prefix; each variant gets `<prefix>/<kebab name>`. */
  repoPrefix?: string;
  /** Only these variants (default: all). */
  only?: readonly VariantName[];
}

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const LEAF_PASSWORD = 'keyless-rig';

/** Runs `tasks` with at most `limit` at a time (the rig runs on two cores). */
export async function pool<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

interface Ctx {
  o: KeylessOptions;
  pki: TestPki;
  env: Record<string, string>;
  offline: Cosign3Offline;
}

/** The hashedrekord body the SET covers: the genuine one, or one spoiled as `entry` says. */
function entryBody(pki: TestPki, leaf: Leaf, payload: Buffer, signature: Buffer, entry: VariantSpec['entry']): string {
  switch (entry) {
    case 'bodyMismatch':
      // Rekor's own parser checks the body's signature against its hash: this body fails there.
      return hashedRekordBody(signature, leaf.certPem, sha256Hex(Buffer.concat([payload, Buffer.from(' ')])));
    case 'bodyOtherSignature':
      // ECDSA is randomised: a second signature of the same payload differs from the attached one.
      return hashedRekordBody(signBytes(leaf.privateKey, payload), leaf.certPem, sha256Hex(payload));
    case 'bodyOtherCertificate': {
      const other = pki.leaves.otherIdentity;
      return hashedRekordBody(signBytes(other.privateKey, payload), other.certPem, sha256Hex(payload));
    }
    default:
      return hashedRekordBody(signature, leaf.certPem, sha256Hex(payload));
  }
}

/** Signs one legacy variant: cosign 2.5 generate, node:crypto signature, cosign 2.5 attach. */
async function signLegacy(
  ctx: Ctx,
  name: VariantName,
  spec: VariantSpec,
  image: PushedImage,
): Promise<Partial<KeylessVariant>> {
  const { pki, env } = ctx;
  const leaf = pki.leaves[spec.leaf];
  const dir = join(ctx.o.dir, 'sign', kebab(name));
  await mkdir(dir, { recursive: true });
  const payload = Buffer.from((await runOk('cosign2', ['generate', image.ref], { env })).stdout, 'utf8');
  const signature = signBytes(leaf.privateKey, payload);
  const files = {
    payload: join(dir, 'payload.json'),
    signature: join(dir, 'signature.b64'),
    response: join(dir, 'rekor-response.json'),
    tsr: join(dir, 'timestamp.tsr'),
  };
  // The log time: 30 minutes ago for the fixed-window leaves, a minute ago for `current` ones.
  const integratedTime = spec.leaf.startsWith('current') ? pki.now - 60 : pki.logTime;
  const body = entryBody(pki, leaf, payload, signature, spec.entry);
  const bundle = rekorBundle(body, {
    log: pki.logKey,
    integratedTime,
    logIndex: 1000 + Object.keys(VARIANT_SPECS).indexOf(name),
    ...(spec.entry === 'setByOtherKey' ? { setSigner: pki.otherLogKey } : {}),
  });
  await Promise.all([
    writeFile(files.payload, payload),
    writeFile(files.signature, signature.toString('base64')),
    writeFile(files.response, rekorResponse(signature, leaf.certPem, bundle)),
  ]);
  const tsr: string[] = [];
  if (spec.timestamp !== undefined) {
    const stamped = spec.timestamp === 'signature' ? signature : Buffer.from('not the signature');
    await writeFile(files.tsr, await timestampResponse(pki.tsa, stamped, kebab(name)));
    tsr.push('--tsr', files.tsr);
  }
  await runOk(
    'cosign2',
    [
      'attach',
      'signature',
      '--payload',
      files.payload,
      '--signature',
      files.signature,
      '--certificate',
      leaf.certFile,
      '--certificate-chain',
      leaf.chainFile,
      '--rekor-response',
      files.response,
      ...tsr,
      image.ref,
    ],
    { env },
  );
  return { payload, signature, integratedTime };
}

/**
 * Builds a v0.3 bundle (DSSE over cosign's sign statement, the leaf certificate, a Rekor v1 dsse
 * entry with a SET and an inclusion proof) and attaches it with `cosign3 attach signature --payload`, which writes any bundle it
 * can load as a referrer exactly as `cosign3 sign` does.
 */
async function attachLoggedBundle(ctx: Ctx, name: VariantName, spec: VariantSpec, image: PushedImage): Promise<void> {
  const { pki } = ctx;
  const leaf = pki.leaves[spec.leaf];
  const dir = join(ctx.o.dir, 'sign', kebab(name));
  await mkdir(dir, { recursive: true });
  // cosign 3.1's statement (cmd/cosign/cli/sign/sign.go signDigestBundle): subject without a name.
  const [alg, hexDigest] = image.digest.split(':') as [string, string];
  const payload = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ digest: { [alg]: hexDigest } }],
      predicateType: 'https://sigstore.dev/cosign/sign/v1',
      predicate: {},
    }),
  );
  const payloadType = 'application/vnd.in-toto+json';
  const signature = signBytes(leaf.privateKey, dssePae(payloadType, payload));
  const envelopeJson = JSON.stringify({
    payload: payload.toString('base64'),
    payloadType,
    signatures: [{ sig: signature.toString('base64') }],
  });
  const body = dsseRekordBody(envelopeJson, payload, signature, leaf.certPem);
  const rekor = rekorBundle(body, {
    log: pki.logKey,
    // A minute ago for a leaf valid now (a timestamp made now must fall in its validity too).
    integratedTime: spec.leaf.startsWith('current') ? pki.now - 60 : pki.logTime,
    logIndex: 0, // the only entry of a one-entry tree
    ...(spec.entry === 'setByOtherKey' ? { setSigner: pki.otherLogKey } : {}),
  });
  const file = join(dir, 'bundle.json');
  const envelope = { payload, payloadType, signature };
  // sigstore-go timestamps a DSSE bundle's signature bytes, as cosign 3.1 asks its TSA to.
  const timestamp =
    spec.timestamp === undefined
      ? undefined
      : await timestampResponse(
          pki.tsa,
          spec.timestamp === 'signature' ? signature : Buffer.from('not the signature'),
          kebab(name),
        );
  await writeFile(file, dsseBundleV03({ envelope, certPem: leaf.certPem, body, rekor, log: pki.logKey, timestamp }));
  await runOk('cosign3', ['attach', 'signature', '--payload', file, image.ref], { env: ctx.env });
}

/** Signs one bundle variant with cosign 3.1, the leaf's key imported and its certificate. */
async function signBundle(ctx: Ctx, spec: VariantSpec, image: PushedImage): Promise<void> {
  const leaf = ctx.pki.leaves[spec.leaf];
  const key = await importLeafKey(ctx.o.home, leaf, LEAF_PASSWORD);
  await runOk(
    'cosign3',
    [
      'sign',
      '--key',
      key,
      '--certificate',
      leaf.certFile,
      '--certificate-chain',
      leaf.chainFile,
      '--signing-config',
      ctx.offline.signingConfig,
      // cosign 3.1 checks the certificate against this root after signing.
      '--trusted-root',
      leaf.ca === ctx.pki.ca ? ctx.pki.trustedRootFile : ctx.pki.untrustedCaTrustedRootFile,
      '--yes',
      image.ref,
    ],
    { env: { ...ctx.env, COSIGN_PASSWORD: LEAF_PASSWORD } },
  );
}

/**
 * Makes the PKI, pushes one small image per variant to the registry and signs it with the real
 * tools. Verdicts are not collected here (see judgeVariant / makeKeylessFixtures).
 * @throws Error when a tool fails to sign or push.
 */
export async function signKeylessImages(o: KeylessOptions): Promise<KeylessFixtures> {
  const pki = await makeTestPki(o.home, join(o.dir, 'pki'));
  const env = cosignEnv(o.home, { caFile: o.registry.caFile });
  const offline = await makeCosign3Offline(o.home, o.dir);
  const ctx: Ctx = { o, pki, env, offline };
  const names = (Object.keys(VARIANT_SPECS) as VariantName[]).filter((n) => o.only?.includes(n) ?? true);
  const prefix = o.repoPrefix ?? 'keyless';
  const own = names.filter((n) => VARIANT_SPECS[n].sameImageAs === undefined);
  const made = new Map<VariantName, KeylessVariant>();
  await pool(
    3,
    own.map((name) => async () => {
      const spec = VARIANT_SPECS[name];
      const image = await pushSampleImage(o.registry, `${prefix}/${kebab(name)}`, 'v1', { label: name });
      const extra = spec.format === 'legacy' ? await signLegacy(ctx, name, spec, image) : {};
      if (spec.format === 'bundle') {
        if (spec.log === true) await attachLoggedBundle(ctx, name, spec, image);
        else await signBundle(ctx, spec, image);
      }
      made.set(name, variantOf(pki, name, image, extra));
    }),
  );
  for (const name of names) {
    const base = VARIANT_SPECS[name].sameImageAs;
    if (base === undefined) continue;
    const shared = made.get(base);
    if (shared === undefined) throw new Error(`variant ${name} needs ${base}: include it in "only"`);
    made.set(name, variantOf(pki, name, shared.image, {}));
  }
  const trust: TrustMaterial = {
    caRoots: pki.rootsFile,
    caIntermediates: pki.intermediatesFile,
    sigstoreRootFile: pki.sigstoreRootFile,
    rekorPublicKey: pki.logKey.pubFile,
    trustedRoot: pki.trustedRootFile,
    tsaChain: pki.tsa.chainFile,
  };
  return { pki, trust, variants: names.map((n) => made.get(n)!) };
}

function variantOf(
  pki: TestPki,
  name: VariantName,
  image: PushedImage,
  extra: Partial<KeylessVariant>,
): KeylessVariant {
  const spec = VARIANT_SPECS[name];
  return {
    name,
    format: spec.format,
    description: spec.description,
    ref: image.ref,
    image,
    identity: spec.expect?.identity ?? TEST_EMAIL,
    issuer: spec.expect?.issuer ?? TEST_ISSUER,
    valid: spec.valid,
    expected: Object.fromEntries(JUDGES.map((j) => [j, spec.divergent?.[j] ?? { accepted: spec.valid }])) as Record<
      Judge,
      { accepted: boolean; why?: string }
    >,
    leaf: pki.leaves[spec.leaf],
    ...extra,
  };
}

/** The gist of a tool's stderr: its error lines, or its last lines. */
export function summarize(r: RunResult): string {
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Flag --') && !/^WARNING: Skipping tlog/.test(l));
  const errors = lines.filter((l) => /^(Error|error|FATA|FATAL|main\.go)/.test(l) || l.includes('level=fatal'));
  const picked = (errors.length > 0 ? errors : lines.slice(-2)).join(' | ');
  return picked.length > 400 ? `${picked.slice(0, 397)}...` : picked;
}

const verdictOf = (argv: string[], r: RunResult): Verdict => ({
  accepted: r.code === 0,
  code: r.code,
  summary: summarize(r),
  argv,
});

/** cosign verify arguments for a variant (both cosigns; `--trusted-root` is added for 3.1). */
export function cosignKeylessVerifyArgs(v: KeylessVariant, extra: readonly string[] = []): string[] {
  return [
    'verify',
    '--certificate-identity',
    v.identity,
    '--certificate-oidc-issuer',
    v.issuer,
    '--insecure-ignore-sct',
    ...(v.format === 'bundle' && VARIANT_SPECS[v.name].log !== true ? ['--insecure-ignore-tlog=true'] : ['--offline']),
    ...extra,
    v.ref,
  ];
}

/**
 * A containers-policy.json(5) requiring a keyless sigstore signature on `repository`: `fulcio`
 * (roots + OIDC issuer + SAN email) with the Rekor key, or `pki` (roots + intermediates + SAN
 * email) without it: skopeo 1.18 refuses a Rekor key with `pki` ("rekorPublickeyPath, … are not
 * supported for pki"). Neither can express a URI identity (subjectEmail is required by `fulcio`;
 * `pki` takes subjectEmail or subjectHostname).
 */
export function keylessPolicy(
  kind: 'fulcio' | 'pki',
  trust: Pick<TrustMaterial, 'caRoots' | 'caIntermediates' | 'rekorPublicKey'>,
  repository: string,
  identity: { email: string; issuer: string },
): string {
  const trustRoot =
    kind === 'fulcio'
      ? { fulcio: { caPath: trust.caRoots, oidcIssuer: identity.issuer, subjectEmail: identity.email } }
      : {
          pki: { caRootsPath: trust.caRoots, caIntermediatesPath: trust.caIntermediates, subjectEmail: identity.email },
        };
  return JSON.stringify(
    {
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          [repository]: [
            {
              type: 'sigstoreSigned',
              ...trustRoot,
              ...(kind === 'fulcio' ? { rekorPublicKeyPath: trust.rekorPublicKey } : {}),
              signedIdentity: { type: 'matchRepository' },
            },
          ],
        },
        oci: { '': [{ type: 'insecureAcceptAnything' }] },
      },
    },
    null,
    2,
  );
}

/** Asks one tool about one variant. */
export async function judgeVariant(
  o: Pick<KeylessOptions, 'home' | 'registry' | 'dir'>,
  trust: TrustMaterial,
  v: KeylessVariant,
  judge: Judge,
): Promise<Verdict> {
  const env = cosignEnv(o.home, { caFile: o.registry.caFile });
  if (judge === 'cosign2') {
    // cosign 2.5 looks at an RFC 3161 timestamp only when given the TSA chain.
    const tsa = VARIANT_SPECS[v.name].timestamp !== undefined ? ['--timestamp-certificate-chain', trust.tsaChain] : [];
    const argv = cosignKeylessVerifyArgs(v, tsa);
    const r = await run('cosign2', argv, {
      env: { ...env, SIGSTORE_ROOT_FILE: trust.sigstoreRootFile, SIGSTORE_REKOR_PUBLIC_KEY: trust.rekorPublicKey },
    });
    return verdictOf(['cosign2', ...argv], r);
  }
  if (judge === 'cosign3') {
    // cosign 3.1 ignores a legacy signature's RFC 3161 timestamp unless told to use it.
    const tsa = VARIANT_SPECS[v.name].timestamp !== undefined ? ['--use-signed-timestamps'] : [];
    const argv = cosignKeylessVerifyArgs(v, ['--trusted-root', trust.trustedRoot, ...tsa]);
    return verdictOf(['cosign3', ...argv], await run('cosign3', argv, { env }));
  }
  const scratch = join(o.dir, 'judge', `${kebab(v.name)}-${judge}`);
  await mkdir(scratch, { recursive: true });
  const policy = join(scratch, 'policy.json');
  const kind = judge === 'skopeoFulcio' ? 'fulcio' : 'pki';
  await writeFile(policy, keylessPolicy(kind, trust, v.image.repository, { email: v.identity, issuer: v.issuer }));
  const access = await skopeoAccess(o.registry, scratch);
  const argv = [
    '--policy',
    policy,
    'copy',
    '--remove-signatures',
    ...skopeoRegistryFlags(access, 'src'),
    `docker://${v.ref}`,
    `oci:${join(scratch, 'layout')}:pulled`,
  ];
  return verdictOf(['skopeo', ...argv], await run('skopeo', argv, { env: skopeoEnv(o.home) }));
}

export type VariantVerdicts = KeylessVariant & { verdicts: Record<Judge, Verdict> };

/**
 * Signs every variant (signKeylessImages) and asks each tool about each one.
 * @throws Error when signing fails (a tool refusing to VERIFY is a verdict, not an error).
 */
export async function makeKeylessFixtures(
  o: KeylessOptions,
): Promise<Omit<KeylessFixtures, 'variants'> & { variants: VariantVerdicts[] }> {
  const fx = await signKeylessImages(o);
  const jobs = fx.variants.flatMap((v) => JUDGES.map((j) => ({ v, j })));
  const verdicts = await pool(
    4,
    jobs.map(
      ({ v, j }) =>
        () =>
          judgeVariant(o, fx.trust, v, j),
    ),
  );
  const variants = fx.variants.map((v) => {
    const mine = {} as Record<Judge, Verdict>;
    jobs.forEach((job, i) => {
      if (job.v === v) mine[job.j] = verdicts[i]!;
    });
    return { ...v, verdicts: mine };
  });
  return { ...fx, variants };
}

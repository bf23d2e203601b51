/**
 * Verifying an image's cosign signatures with a public key, in both formats, through a
 * RegistryClient (the page's goes through the relay).
 *
 * Legacy (https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md): every layer of
 * the `sha256-<hex>.sig` manifest is one signature. Its payload blob is fetched with its digest and
 * size checked; the `dev.cosignproject.cosign/signature` annotation must verify over those exact
 * bytes; the payload is then read as strictly as containers/image reads it; its
 * `docker-manifest-digest` must be the image's digest, its `docker-reference` must satisfy the
 * identity rule, and its `optional` annotations must hold the required ones.
 *
 * Bundle (https://github.com/sigstore/cosign/blob/main/specs/BUNDLE_SPEC.md): every referrer of
 * the image, from the OCI referrers API or else the referrers tag schema's index (whose
 * artifactType fields are not trusted: each referrer manifest is read), whose layer is a Sigstore
 * bundle. It counts as a signature only when its DSSE payload type is in-toto, the statement's
 * predicate type is https://sigstore.dev/cosign/sign/v1 and a subject is the image's digest; the
 * signature is over the DSSE PAE. An attestation signed by the same key is shown, not counted.
 * A statement names only the digest, so identity rules do not apply to bundles.
 *
 * A signature with a certificate instead of a key (keyless) counts only under an identity policy
 * (cosign's --certificate-identity and --certificate-oidc-issuer, or their regular expressions):
 * its certificate must chain to a certificate authority of the trusted root (or the private PKI
 * given) at a verified time, and its log entries and timestamps must check (verify-sigstore.ts,
 * loaded only when a signature carries such material). A keyed signature's log entry is checked
 * when present, under the transparency-log rule (`require`, `check`, `ignore`), as cosign does.
 * For an index, the index and every platform manifest are checked; the platforms count toward the
 * verdict when `requireEveryPlatform` is set, as `skopeo copy --all` demands.
 *
 * The verdict for a manifest is "some signature verifies", as in cosign and containers/image.
 * verifyImage never throws for a verification failure: the result says why. It throws only when
 * the signal aborts.
 */
import { VerificationError, reasonOf, type ErrorCode, type Reason } from '../errors.ts';
import { publicKeyPem } from '../crypto/keys.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { fromHex } from '../encoding/base64.ts';
import { algorithmName, parseSpki } from '../crypto/pkcs.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, isIndexMediaType, type Descriptor } from '../registry/mediatypes.ts';
import {
  formatReference,
  isSha256Digest,
  manifestReference,
  parseReference,
  type ImageReference,
} from '../registry/reference.ts';
import { pool } from './pool.ts';
import {
  indexPlatforms,
  readAttachmentTag,
  SignatureBlobs,
  startAttachmentReads,
  tooManyLayers,
  tooManyReferrers,
  type ReferrersRead,
  type TagRead,
} from './attachments.ts';
import { isBundleMediaType, parseBundle, type ParsedBundle } from '../cosign/bundle.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae, parseStatement, type Statement } from '../cosign/dsse.ts';
import {
  checkIdentityRule,
  describeIdentityRule,
  intendedReference,
  matchIdentity,
  namedString,
  type IdentityRule,
  type NamedReference,
} from '../cosign/identity.ts';
import { BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, SIGNATURE_ANNOTATION, sigTag } from '../cosign/manifests.ts';
import { parseSimpleSigningPayload, payloadAnnotations } from '../cosign/payload.ts';
import { JsonNumber } from '../cosign/strict-json.ts';
import { legacySigstoreBundle } from '../cosign/legacy-sigstore.ts';
import { IDENTITY_PARAMS } from '../cosign/sigstore-params.ts';
import type { SigstoreBundle } from '../sigstore/types.ts';
import type { IdentityPolicy } from '../sigstore/policy.ts';
import type { TlogRule } from '../sigstore/verify-bundle.ts';
import type { SigstoreFacts, SigstoreTrust } from './verify-sigstore.ts';
import type * as SigstoreModuleNs from './verify-sigstore.ts';
import type { ContainersPolicyApplied } from './containers-policy/types.ts';

/** The lazily loaded Sigstore verifier (verify-sigstore.ts), typed without loading it. */
type SigstoreModule = typeof SigstoreModuleNs;
import {
  decodeSignature,
  judgeSignature,
  prepareKey,
  prepareKnownKeys,
  type PreparedKey,
} from '../cosign/verify-signature.ts';

export const RESULT_FORMAT = 'cosign-web-verification/2';

export interface VerifyProgress {
  done: number;
  total: number;
  message: string;
}

export interface VerifyOptions {
  /** The image reference as typed (`host/repo:tag`, `host/repo@sha256:…`). */
  image: string;
  /** The public key: SubjectPublicKeyInfo DER. Absent when only certificates are checked. */
  spki?: Uint8Array | undefined;
  /** What a certificate must name (cosign's --certificate-identity etc.); without it certificates do not count. */
  certificate?: IdentityPolicy | undefined;
  /** The transparency-log rule; default `require` for certificates, `check` for keys. */
  tlog?: TlogRule | undefined;
  /** The trust for Sigstore material, loaded when first needed (default: the shipped public-good root). */
  trust?: (() => Promise<SigstoreTrust>) | undefined;
  /** Default: cosign's rule, identity not checked. */
  identity?: IdentityRule;
  /** Annotations every counted signature must carry, key → value. */
  annotations?: Record<string, string>;
  /** Every platform manifest of an index must be signed too. */
  requireEveryPlatform?: boolean;
  /**
   * Read signatures as containers/image does for a containers-policy.json `sigstoreSigned`
   * requirement (containers-policy/apply.ts sets it): only the legacy `.sig` signatures, RFC 3161
   * timestamps ignored, and a certificate's chain annotation (less its last certificate) offered as
   * intermediates toward the private PKI given.
   */
  containers?: boolean;
  /** Other keys the viewer trusts: tried only to name who made a signature this key did not. */
  knownKeys?: readonly { name: string; spki: Uint8Array }[];
  onProgress?: (p: VerifyProgress) => void;
  signal?: AbortSignal;
  /** Requests in flight at once (default 6). */
  concurrency?: number;
  now?: () => Date;
}

export type CheckId = 'blob' | 'signature' | 'certificate' | 'tlog' | 'payload' | 'digest' | 'identity' | 'annotations';
export const CHECK_IDS: readonly CheckId[] = [
  'blob',
  'signature',
  'certificate',
  'tlog',
  'payload',
  'digest',
  'identity',
  'annotations',
];

export interface Check {
  id: CheckId;
  outcome: 'pass' | 'fail' | 'skipped' | 'not-applicable';
  detail: string;
}

export interface SignatureResult {
  /** Where it is: `<.sig tag> layer <n>` or `referrer sha256:…`. */
  id: string;
  format: 'legacy' | 'bundle';
  /** Only `signature` can verify; the others are shown for what they are. */
  kind: 'signature' | 'attestation' | 'keyless' | 'other';
  verified: boolean;
  error: Reason | null;
  /** Always every check, in CHECK_IDS order. */
  checks: Check[];
  /** "ECDSA P-256 over SHA-256" when the signature verified with the key, else null. */
  algorithm: string | null;
  /** Another key that made it, when that could be told. */
  otherKey: { fingerprint: string; name: string | null } | null;
  /** What the signed content says (null/empty until the signature verified). */
  claims: {
    dockerReference: string | null;
    manifestDigest: string | null;
    annotations: Record<string, string>;
    predicateType: string | null;
    creator: string | null;
    timestamp: number | null;
  };
  /** True when it carries a transparency-log entry. */
  tlogEntry: boolean;
  /** What its certificate, log entries and timestamps proved, when it carries any and they verified. */
  sigstore: SigstoreFacts | null;
  /** The manifest holding it (the .sig manifest or the referrer), and the blob. */
  source: { manifest: string; blob: string | null };
}

export interface ManifestResult {
  digest: string;
  mediaType: string;
  role: 'image' | 'index' | 'platform';
  /** `linux/arm64/v8` for a platform manifest, else null. */
  platform: string | null;
  /** Counts toward the verdict. */
  required: boolean;
  verified: boolean;
  error: Reason | null;
  signatures: SignatureResult[];
  lookups: {
    /** The legacy tag looked up, `sha256-<hex>.sig`. */
    sigTag: string;
    legacy: 'found' | 'absent' | 'failed';
    /** `not-read`: a containers policy applied, and containers/image reads no bundles. */
    referrers: 'api' | 'tag-schema' | 'failed' | 'not-read';
    /** Referrers that are not Sigstore bundles (SBOMs and the like), not listed. */
    otherReferrers: number;
    errors: Reason[];
  };
}

export interface VerificationResult {
  format: typeof RESULT_FORMAT;
  verified: boolean;
  /** One sentence starting with "Verified" or "Not verified". */
  summary: string;
  error: Reason | null;
  checkedAt: string;
  image: {
    input: string;
    /** Normalised reference, as verified (`host/repo:tag`, `host/repo@sha256:…`). */
    reference: string | null;
    /** The reference identity rules compare with (`host/repo:tag` or `host/repo@sha256:…`). */
    intended: string | null;
    digest: string | null;
    mediaType: string | null;
    isIndex: boolean;
  };
  key: {
    algorithm: string | null;
    /** `sha256:<hex>` of the SPKI DER. */
    fingerprint: string | null;
    /** What a cosign 3 bundle's `publicKey.hint` holds for this key. */
    hint: string | null;
    pem: string | null;
    /** The viewer's name for this key, when the page knows it (set by the page; null here). */
    trustedName: string | null;
  };
  policy: {
    identity: IdentityRule;
    identityDescription: string;
    annotations: Record<string, string>;
    requireEveryPlatform: boolean;
    /** The identity policy certificates were held to, or null (certificates did not count). */
    certificate: IdentityPolicy | null;
    /** The transparency-log rule asked for, or null for cosign's default. */
    tlog: TlogRule | null;
    /** The containers-policy.json applied (its scope and requirements), or null. */
    containersPolicy: ContainersPolicyApplied | null;
  };
  /** The Sigstore trust used, when a signature needed it. */
  trustedRoot: { name: string; sha256: string; privatePki: boolean } | null;
  /** The image (or index) first, then each platform of an index. */
  manifests: ManifestResult[];
}

function r(code: ErrorCode, message: string): Reason {
  return { code, message };
}

function short(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

class Checks {
  readonly #map = new Map<CheckId, Check>();
  set(id: CheckId, outcome: Check['outcome'], detail: string): void {
    this.#map.set(id, { id, outcome, detail });
  }
  /** Every check not set yet, as skipped with `detail`. */
  list(detail: string): Check[] {
    return CHECK_IDS.map((id) => this.#map.get(id) ?? { id, outcome: 'skipped', detail });
  }
}

function emptyClaims(): SignatureResult['claims'] {
  return {
    dockerReference: null,
    manifestDigest: null,
    annotations: {},
    predicateType: null,
    creator: null,
    timestamp: null,
  };
}

/** Required annotations against signed ones: the first one missing or different, or null. */
function annotationMismatch(required: Record<string, string>, signed: Record<string, string>): string | null {
  for (const [k, v] of Object.entries(required)) {
    if (!(k in signed)) return `The signature has no annotation "${k}" (required: ${k}=${v}).`;
    if (signed[k] !== v) return `The signature's annotation ${k}=${signed[k]} is not the required ${k}=${v}.`;
  }
  return null;
}

interface Context {
  client: RegistryClient;
  repo: RepoRef;
  key: PreparedKey | null;
  policy: IdentityPolicy | null;
  tlog: TlogRule | undefined;
  containers: boolean;
  /** The Sigstore verifier and its trust, loaded at the first signature that needs them. */
  sigstore(): Promise<Sigstore>;
  others: PreparedKey[];
  identity: IdentityRule;
  intended: NamedReference;
  annotations: Record<string, string>;
  concurrency: number;
  signal: AbortSignal | undefined;
  tick(message: string): void;
  grow(n: number): void;
  /** Lookups started before their manifest was read (a reference by digest), by digest. */
  early: Map<string, Lookup>;
  /** Signature blobs, read once per digest, fetched ahead in batches through the relay. */
  blobs: SignatureBlobs;
}

/** Finishes a signature result from its checks: the first failure is its error. */
function finish(
  base: Omit<SignatureResult, 'checks' | 'verified' | 'error'>,
  checks: Checks,
  skippedDetail: string,
  error: Reason | null,
): SignatureResult {
  const list = checks.list(skippedDetail);
  const verified = base.kind === 'signature' && error === null && !list.some((c) => c.outcome === 'fail');
  return { ...base, checks: list, verified, error };
}

async function fetchSignatureBlob(
  ctx: Context,
  layer: Descriptor,
  checks: Checks,
  what: string,
): Promise<{ bytes: Uint8Array } | { error: Reason }> {
  try {
    const bytes = await ctx.blobs.read(layer, what);
    checks.set('blob', 'pass', `The ${what} (${layer.size} bytes) matches its digest ${short(layer.digest)}.`);
    return { bytes };
  } catch (e) {
    const reason = reasonOf(e);
    const error =
      reason.code === 'REGISTRY_DIGEST_MISMATCH' || reason.code === 'REGISTRY_SIZE_MISMATCH'
        ? r('VERIFY_LAYER_MISMATCH', reason.message)
        : reason.code === 'REGISTRY_TOO_LARGE'
          ? r(
              'VERIFY_LAYER_MISMATCH',
              `The registry served more than the ${layer.size} bytes the ${what} descriptor says.`,
            )
          : reason;
    checks.set('blob', 'fail', error.message);
    return { error };
  }
}

/** A keyless signature (a certificate instead of a key) with no identity policy given: shown, not counted. */
function keyless(base: Omit<SignatureResult, 'checks' | 'verified' | 'error'>, checks: Checks): SignatureResult {
  base.kind = 'keyless';
  const error = r(
    'VERIFY_KEYLESS',
    'Keyless signature (a certificate instead of a key): it counts only when you give the identity and OIDC issuer its certificate must name.',
  );
  checks.set('certificate', 'skipped', error.message);
  return finish(base, checks, 'Not checked: keyless signature.', error);
}

/** A signature made with a key when no key was given (only certificate identities). */
function noKey(base: Base, checks: Checks): SignatureResult {
  const error = r('VERIFY_WRONG_KEY', 'Signed with a key, and no public key was given to check it with.');
  checks.set('signature', 'skipped', error.message);
  return finish(base, checks, 'Not checked: no key to check it with.', error);
}

/** A signature result's fields before its checks are finished. */
type Base = Omit<SignatureResult, 'checks' | 'verified' | 'error'>;

/** Judges a `.sig` layer's signature annotation over the payload bytes; sets the signature check. */
async function judgeLegacy(
  ctx: Context,
  base: Base,
  checks: Checks,
  annotations: Record<string, string>,
  payload: Uint8Array,
): Promise<SignatureResult | null> {
  const sig = decodeSignature(annotations[SIGNATURE_ANNOTATION]);
  if (!sig) {
    const error = r(
      'VERIFY_SIGNATURE_MALFORMED',
      `The layer's ${SIGNATURE_ANNOTATION} annotation is ${SIGNATURE_ANNOTATION in annotations ? 'not standard base64' : 'missing'}.`,
    );
    checks.set('signature', 'fail', error.message);
    return finish(base, checks, 'Not checked: the signature failed.', error);
  }
  if (!ctx.key) return noKey(base, checks);
  const judged = await judgeSignature(ctx.key, payload, sig, { others: ctx.others, what: 'signature' });
  if (!judged.ok) {
    checks.set('signature', 'fail', judged.reason.message);
    base.otherKey = judged.otherKey;
    return finish(base, checks, 'Not checked: the signature failed, so the payload is not trusted.', judged.reason);
  }
  base.algorithm = judged.algorithm;
  checks.set('signature', 'pass', `Signed by this key (${judged.algorithm}) over the exact payload bytes.`);
  return null;
}

/** Checks what a verified simple-signing payload claims: digest, identity, annotations. */
function checkLegacyPayload(
  ctx: Context,
  target: string,
  base: Base,
  checks: Checks,
  bytes: Uint8Array,
): SignatureResult {
  let payload;
  try {
    payload = parseSimpleSigningPayload(bytes);
  } catch (e) {
    const error = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
    checks.set('payload', 'fail', error.message);
    return finish(base, checks, 'Not checked: the payload is malformed.', error);
  }
  checks.set(
    'payload',
    'pass',
    'A valid cosign container image signature payload (strict, as containers/image reads it).',
  );
  const optional = payload.optional ?? {};
  base.claims = {
    dockerReference: payload.dockerReference,
    manifestDigest: payload.manifestDigest,
    annotations: payloadAnnotations(payload),
    predicateType: null,
    creator: typeof optional.creator === 'string' ? optional.creator : null,
    timestamp: optional.timestamp instanceof JsonNumber ? optional.timestamp.value : null,
  };
  let error: Reason | null = null;
  if (payload.manifestDigest === target) {
    checks.set('digest', 'pass', `The payload names this manifest, ${short(target)}.`);
  } else {
    error = r(
      'VERIFY_DIGEST_MISMATCH',
      `The payload names the manifest ${payload.manifestDigest}, not this one (${target}): it signs another image.`,
    );
    checks.set('digest', 'fail', error.message);
  }
  const id = matchIdentity(ctx.identity, ctx.intended, payload.dockerReference);
  if (ctx.identity.type === 'ignore') checks.set('identity', 'skipped', id.detail);
  else if (id.match) checks.set('identity', 'pass', id.detail);
  else {
    error ??= r('VERIFY_IDENTITY_MISMATCH', id.detail);
    checks.set('identity', 'fail', id.detail);
  }
  setAnnotationCheck(ctx, checks, base.claims.annotations, (e) => (error ??= e));
  return finish(base, checks, '', error);
}

/** One layer of the `.sig` manifest: blob, signature over its exact bytes, then what it claims. */
async function verifyLegacyLayer(
  ctx: Context,
  target: string,
  sigManifest: string,
  tag: string,
  n: number,
  layer: Descriptor,
): Promise<SignatureResult> {
  const checks = new Checks();
  const annotations = layer.annotations ?? {};
  const base: Base = {
    id: `${tag} layer ${n}`,
    format: 'legacy',
    kind: 'signature',
    algorithm: null,
    otherKey: null,
    claims: emptyClaims(),
    tlogEntry: BUNDLE_ANNOTATION in annotations,
    sigstore: null,
    source: { manifest: sigManifest, blob: typeof layer.digest === 'string' ? layer.digest : null },
  };
  if (layer.mediaType !== MT.cosignSimpleSigning) {
    base.kind = 'other';
    const error = r(
      'VERIFY_NOT_A_SIGNATURE',
      `This layer's media type is ${JSON.stringify(layer.mediaType)}, not a cosign simple-signing payload.`,
    );
    return finish(base, checks, 'Not checked: not a signature layer.', error);
  }
  const blob = await fetchSignatureBlob(ctx, layer, checks, 'payload blob');
  if ('error' in blob) return finish(base, checks, 'Not checked: the payload blob failed.', blob.error);
  const payload = blob.bytes;
  // containers/image with keys reads only the signature: a certificate beside it is not looked at.
  const certified = CERTIFICATE_ANNOTATION in annotations && !(ctx.containers && ctx.key);
  if (certified && !ctx.policy) return keyless(base, checks);
  const sig = decodeSignature(annotations[SIGNATURE_ANNOTATION]);
  let material: SigstoreBundle | null;
  try {
    material = sig ? legacySigstoreBundle(annotations, payload, sig, { containers: ctx.containers }) : null;
  } catch (e) {
    const error = r('VERIFY_SIGNATURE_MALFORMED', reasonOf(e).message);
    checks.set('signature', 'fail', error.message);
    return finish(base, checks, 'Not checked: an annotation is malformed.', error);
  }
  const artifact = { sha256: sha256Bytes(payload), bytes: payload };
  if (certified) {
    const failed = material ? await judgeCertificate(ctx, base, checks, material, artifact) : null;
    if (!material) return (await judgeLegacy(ctx, base, checks, annotations, payload))!;
    return failed ?? checkLegacyPayload(ctx, target, base, checks, payload);
  }
  if (!ctx.key) return noKey(base, checks);
  const failed =
    (await judgeLegacy(ctx, base, checks, annotations, payload)) ??
    (await judgeKeyedLog(ctx, base, checks, material, artifact));
  return failed ?? checkLegacyPayload(ctx, target, base, checks, payload);
}

/** The Sigstore verifier module and the trust it works with. */
interface Sigstore {
  mod: SigstoreModule;
  trust: SigstoreTrust;
}

const CERTIFICATE_CODES = new Set<ErrorCode>([
  'VERIFY_CERTIFICATE_INVALID',
  'VERIFY_CERTIFICATE_UNTRUSTED',
  'VERIFY_CERTIFICATE_EXPIRED',
  'VERIFY_SCT_MISSING',
  'VERIFY_SCT_INVALID',
  'VERIFY_IDENTITY_MISMATCH',
  'VERIFY_ISSUER_MISMATCH',
  'VERIFY_CLAIM_MISMATCH',
  'VERIFY_REGEXP_INVALID',
  'VERIFY_POLICY_INVALID',
  'VERIFY_NO_VERIFIED_TIME',
]);

/** The check a Sigstore failure belongs to. */
function sigstoreCheck(code: ErrorCode): CheckId {
  if (CERTIFICATE_CODES.has(code)) return 'certificate';
  if (code === 'VERIFY_DIGEST_MISMATCH') return 'digest';
  if (
    code.startsWith('VERIFY_TLOG_') ||
    code.startsWith('VERIFY_TIMESTAMP_') ||
    code.startsWith('VERIFY_TRUSTED_ROOT_')
  )
    return 'tlog';
  if (['VERIFY_SET_INVALID', 'VERIFY_INCLUSION_PROOF_INVALID', 'VERIFY_CHECKPOINT_INVALID'].includes(code))
    return 'tlog';
  return 'signature';
}

/** The Sigstore verifier and trust, or why they could not be had (a trusted root the viewer lacks). */
async function loadOrFail(ctx: Context): Promise<Sigstore | { reason: Reason }> {
  try {
    return await ctx.sigstore();
  } catch (e) {
    return { reason: reasonOf(e) };
  }
}

/** Sets the log check from proven facts: each entry and timestamp, or why there is none. */
function setTlogCheck(checks: Checks, facts: SigstoreFacts): void {
  const entries = facts.tlog.map(
    (l) => `logged in ${l.log} at index ${l.logIndex}${l.integratedTime ? ` on ${l.integratedTime}` : ''} (${l.proof})`,
  );
  const stamps = facts.timestamps.map((t) => `timestamped ${t.time} by ${t.authority}`);
  const all = [...entries, ...stamps];
  if (all.length)
    checks.set(
      'tlog',
      'pass',
      `${all.join('; ')}.`.replace(/^./, (c) => c.toUpperCase()),
    );
  else if (facts.tlogRule === 'ignore') checks.set('tlog', 'skipped', 'The transparency log is ignored, as asked.');
  else checks.set('tlog', 'skipped', 'No transparency-log entry (not required here).');
}

/** Records a Sigstore failure on its check; the signature's result. */
function sigstoreFailed(base: Base, checks: Checks, reason: Reason): SignatureResult {
  checks.set(sigstoreCheck(reason.code), 'fail', reason.message);
  return finish(base, checks, 'Not checked: an earlier check failed.', reason);
}

/**
 * A certificate signature (legacy layer or bundle): counted only under an identity policy, and
 * then judged whole by the Sigstore verifier. Returns the failed result, or null to go on.
 */
async function judgeCertificate(
  ctx: Context,
  base: Base,
  checks: Checks,
  bundle: SigstoreBundle,
  artifact: { sha256: Uint8Array; bytes?: Uint8Array },
): Promise<SignatureResult | null> {
  if (!ctx.policy) return keyless(base, checks);
  const loaded = await loadOrFail(ctx);
  if ('reason' in loaded) return sigstoreFailed(base, checks, loaded.reason);
  const { mod, trust } = loaded;
  const judged = await mod.judgeSigstore(bundle, trust, artifact, {
    policy: ctx.policy,
    ...(ctx.tlog ? { tlog: ctx.tlog } : {}),
  });
  if (!judged.ok) return sigstoreFailed(base, checks, judged.reason);
  base.sigstore = judged.facts;
  const signer = judged.facts.signer;
  if (signer.kind === 'certificate') {
    const times = judged.facts.verifiedTimes.map((t) => `${t.time} (${t.source === 'now' ? 'now' : `from ${t.by}`})`);
    checks.set('signature', 'pass', "Signed by the certificate's key over the exact signed bytes.");
    checks.set(
      'certificate',
      'pass',
      `Issued by ${signer.authority} to ${signer.identity} (OIDC issuer ${signer.issuer ?? 'none'}), valid at ${times.join(', ')}.`,
    );
  }
  setTlogCheck(checks, judged.facts);
  return null;
}

/**
 * A keyed signature's log entries and timestamps, under the log rule (default `check`: verified
 * when present). Returns the failed result, or null to go on.
 */
async function judgeKeyedLog(
  ctx: Context,
  base: Base,
  checks: Checks,
  bundle: SigstoreBundle | null,
  artifact: { sha256: Uint8Array; bytes?: Uint8Array },
): Promise<SignatureResult | null> {
  checks.set('certificate', 'not-applicable', 'Signed with a key, not a certificate.');
  const rule = ctx.tlog ?? 'check';
  const hasMaterial = !!bundle && bundle.tlogEntries.length + bundle.rfc3161Timestamps.length > 0;
  if (rule === 'ignore') {
    checks.set('tlog', 'skipped', 'The transparency log is ignored, as asked.');
    return null;
  }
  if (!hasMaterial && rule === 'check') {
    checks.set('tlog', 'skipped', 'No transparency-log entry (not required for a key).');
    return null;
  }
  if (!bundle)
    return sigstoreFailed(
      base,
      checks,
      r('VERIFY_TLOG_MISSING', 'The signature has no transparency-log entry, and the policy requires one.'),
    );
  const loaded = await loadOrFail(ctx);
  if ('reason' in loaded) return sigstoreFailed(base, checks, loaded.reason);
  const { mod, trust } = loaded;
  const judged = await mod.judgeSigstore(bundle, trust, artifact, { key: ctx.key!.spki, tlog: rule });
  if (!judged.ok) return sigstoreFailed(base, checks, judged.reason);
  base.sigstore = judged.facts;
  setTlogCheck(checks, judged.facts);
  return null;
}

function setAnnotationCheck(
  ctx: Context,
  checks: Checks,
  signed: Record<string, string>,
  fail: (e: Reason) => void,
): void {
  if (Object.keys(ctx.annotations).length === 0) {
    checks.set('annotations', 'skipped', 'No annotations required.');
    return;
  }
  const mismatch = annotationMismatch(ctx.annotations, signed);
  if (mismatch) {
    fail(r('VERIFY_ANNOTATION_MISMATCH', mismatch));
    checks.set('annotations', 'fail', mismatch);
  } else {
    const list = Object.entries(ctx.annotations)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    checks.set('annotations', 'pass', `The signature carries ${list}.`);
  }
}

type Dsse = NonNullable<ParsedBundle['dsse']>;

/**
 * Fetches and parses a referrer's bundle; a keyless bundle or one without a DSSE envelope ends
 * here, as a result.
 */
async function readReferrerBundle(
  ctx: Context,
  base: Base,
  checks: Checks,
  bundleLayer: Descriptor,
): Promise<{ bundle: ParsedBundle; dsse: Dsse; bytes: Uint8Array } | { result: SignatureResult }> {
  const blob = await fetchSignatureBlob(ctx, bundleLayer, checks, 'bundle blob');
  if ('error' in blob) return { result: finish(base, checks, 'Not checked: the bundle blob failed.', blob.error) };
  let bundle;
  try {
    bundle = parseBundle(blob.bytes);
  } catch (e) {
    const error = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
    checks.set('payload', 'fail', error.message);
    return { result: finish(base, checks, 'Not checked: the bundle is malformed.', error) };
  }
  base.tlogEntry = bundle.hasTlogEntries;
  if (bundle.material.kind === 'certificate' && !ctx.policy) {
    return { result: keyless(base, checks) };
  }
  if (!bundle.dsse) {
    base.kind = 'other';
    const error = r(
      'VERIFY_NOT_A_SIGNATURE',
      'This bundle signs a blob digest (a message signature), not an image statement: not an image signature.',
    );
    checks.set('payload', 'fail', error.message);
    return { result: finish(base, checks, 'Not checked: not an image signature.', error) };
  }
  return { bundle, dsse: bundle.dsse, bytes: blob.bytes };
}

/**
 * Reads the DSSE payload as an in-toto statement and tells a signature from an attestation or
 * another payload (sets the payload check and the kind); a malformed statement ends here.
 */
function classifyStatement(
  base: Base,
  checks: Checks,
  dsse: Dsse,
): { statement: Statement | undefined; error: Reason | null } | { result: SignatureResult } {
  let statement;
  if (dsse.payloadType === IN_TOTO_PAYLOAD_TYPE) {
    try {
      statement = parseStatement(dsse.payload);
    } catch (e) {
      const error = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
      checks.set('payload', 'fail', error.message);
      return { result: finish(base, checks, 'Not checked: the statement is malformed.', error) };
    }
  }
  let error: Reason | null = null;
  if (!statement) {
    base.kind = 'other';
    error = r(
      'VERIFY_NOT_A_SIGNATURE',
      `The DSSE payload type is ${JSON.stringify(dsse.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}: not an image signature.`,
    );
    checks.set('payload', 'fail', error.message);
  } else if (statement.predicateType !== COSIGN_SIGN_PREDICATE) {
    base.kind = 'attestation';
    base.claims.predicateType = statement.predicateType;
    error = r(
      'VERIFY_NOT_A_SIGNATURE',
      `An attestation (predicate ${statement.predicateType}), not a signature: it does not count as one.`,
    );
    checks.set('payload', 'fail', error.message);
  } else {
    base.claims.predicateType = statement.predicateType;
    checks.set('payload', 'pass', `An in-toto statement with predicate ${COSIGN_SIGN_PREDICATE} (a cosign signature).`);
  }
  return { statement, error };
}

/** Judges the envelope's signatures over the DSSE PAE (the first that verifies wins); sets the signature check. */
async function judgeDsse(
  ctx: Context,
  base: Base,
  checks: Checks,
  bundle: ParsedBundle,
  dsse: Dsse,
): Promise<{ ok: true } | { ok: false; reason: Reason }> {
  const key = ctx.key!; // judgeReferrer has refused a keyed bundle without a key
  const hint = bundle.material.kind === 'publicKey' ? bundle.material.hint : undefined;
  const signed = pae(dsse.payloadType, dsse.payload);
  let judged = null;
  for (const sig of dsse.signatures) {
    judged = await judgeSignature(key, signed, sig, {
      others: ctx.others,
      what: base.kind === 'attestation' ? 'attestation signature' : 'signature',
      ...(hint !== undefined ? { hint } : {}),
    });
    if (judged.ok) break;
  }
  if (!judged?.ok) {
    const reason = judged?.reason ?? r('VERIFY_SIGNATURE_MALFORMED', 'The DSSE envelope has no signature.');
    checks.set('signature', 'fail', reason.message);
    base.otherKey = judged && !judged.ok ? judged.otherKey : null;
    return { ok: false, reason };
  }
  base.algorithm = judged.algorithm;
  checks.set(
    'signature',
    'pass',
    `Signed by this key (${judged.algorithm}) over the DSSE pre-authentication encoding.`,
  );
  return { ok: true };
}

/** Checks that the statement's subject is `target` (sets the digest check and the claims); the mismatch, or null. */
function checkSubject(base: Base, checks: Checks, statement: Statement, target: string): Reason | null {
  const [alg, hex] = target.split(':') as [string, string];
  const subject = statement.subjects.find((s) => s.digests[alg] === hex);
  let error: Reason | null = null;
  if (subject) {
    base.claims.manifestDigest = target;
    checks.set('digest', 'pass', `The statement's subject is this manifest, ${short(target)}.`);
  } else {
    const named = statement.subjects.map((s) => Object.entries(s.digests).map(([a, h]) => `${a}:${h}`)).flat();
    base.claims.manifestDigest = named[0] ?? null;
    error = r(
      'VERIFY_DIGEST_MISMATCH',
      `The statement's subject is ${named.join(', ') || 'no digest'}, not this manifest (${target}): it signs another image.`,
    );
    checks.set('digest', 'fail', error.message);
  }
  base.claims.annotations = subject?.annotations ?? statement.subjects[0]?.annotations ?? {};
  return error;
}

/**
 * A referrer's signature: a certificate bundle judged whole by the Sigstore verifier, or a keyed
 * one over the DSSE PAE and then its log entries and timestamps under the log rule.
 */
async function judgeReferrer(
  ctx: Context,
  base: Base,
  checks: Checks,
  read: { bundle: ParsedBundle; dsse: Dsse; bytes: Uint8Array },
  target: string,
): Promise<{ ok: true } | { ok: false; reason: Reason }> {
  const certificate = read.bundle.material.kind === 'certificate';
  if (!certificate && !ctx.key) {
    const reason = noKey(base, checks).error!;
    return { ok: false, reason };
  }
  let full: SigstoreBundle | null = null;
  if (certificate || read.bundle.hasTlogEntries) {
    const loaded = await loadOrFail(ctx);
    if ('reason' in loaded) {
      checks.set('tlog', 'fail', loaded.reason.message);
      return { ok: false, reason: loaded.reason };
    }
    try {
      full = loaded.mod.parseSigstoreBundle(read.bytes);
    } catch (e) {
      const reason = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
      checks.set('payload', 'fail', reason.message);
      return { ok: false, reason };
    }
  }
  const artifact = { sha256: fromHex(target.slice('sha256:'.length))! }; // target is a checked sha256 digest
  if (certificate) {
    const failed = await judgeCertificate(ctx, base, checks, full!, artifact);
    return failed ? { ok: false, reason: failed.error! } : { ok: true };
  }
  const judged = await judgeDsse(ctx, base, checks, read.bundle, read.dsse);
  if (!judged.ok) return judged;
  const failed = await judgeKeyedLog(ctx, base, checks, full, artifact);
  return failed ? { ok: false, reason: failed.error! } : { ok: true };
}

/** One bundle referrer: blob, bundle, statement, signature over the PAE, then what it claims. */
async function verifyReferrer(
  ctx: Context,
  target: string,
  manifest: Manifest,
  bundleLayer: Descriptor,
): Promise<SignatureResult> {
  const checks = new Checks();
  const base: Base = {
    id: `referrer ${manifest.descriptor.digest}`,
    format: 'bundle',
    kind: 'signature',
    algorithm: null,
    otherKey: null,
    claims: emptyClaims(),
    tlogEntry: false,
    sigstore: null,
    source: {
      manifest: manifest.descriptor.digest,
      blob: typeof bundleLayer.digest === 'string' ? bundleLayer.digest : null,
    },
  };
  const read = await readReferrerBundle(ctx, base, checks, bundleLayer);
  if ('result' in read) return read.result;
  const classified = classifyStatement(base, checks, read.dsse);
  if ('result' in classified) return classified.result;
  const { statement } = classified;
  let { error } = classified;
  const judged = await judgeReferrer(ctx, base, checks, read, target);
  if (!judged.ok) {
    return finish(
      base,
      checks,
      'Not checked: the signature failed, so the statement is not trusted.',
      error ?? judged.reason,
    );
  }
  if (!statement) return finish(base, checks, 'Not checked: not an image signature.', error);
  const mismatch = checkSubject(base, checks, statement, target);
  error ??= mismatch;
  checks.set(
    'identity',
    'not-applicable',
    'A bundle statement names only the digest, not a reference: identity rules apply to legacy signatures.',
  );
  if (base.kind === 'attestation') return finish(base, checks, 'Not checked: an attestation.', error);
  setAnnotationCheck(ctx, checks, base.claims.annotations, (e) => (error ??= e));
  return finish(base, checks, '', error);
}

/** The `.sig` layers' results; the tag's lookup is recorded in `result.lookups`. */
async function legacySignatures(ctx: Context, result: ManifestResult, sig: TagRead): Promise<SignatureResult[]> {
  if (sig.state !== 'found') {
    result.lookups.legacy = sig.state;
    if (sig.state === 'failed') result.lookups.errors.push(sig.reason);
    return [];
  }
  result.lookups.legacy = 'found';
  const tooMany = tooManyLayers(sig);
  if (tooMany) result.lookups.errors.push(tooMany);
  ctx.grow(sig.layers.length);
  ctx.blobs.prefetch(sig.layers);
  return pool(sig.layers, ctx.concurrency, async (layer, n) => {
    ctx.signal?.throwIfAborted();
    const res = await verifyLegacyLayer(
      ctx,
      result.digest,
      sig.manifest.descriptor.digest,
      sig.tag,
      n,
      typeof layer === 'object' && layer !== null ? (layer as Descriptor) : ({} as Descriptor),
    );
    ctx.tick(`Checked .sig layer ${n}`);
    return res;
  });
}

/** Whether a referrer may be a bundle referrer: a manifest named by a sha256 digest (an index never is). */
const mayHoldBundle = (d: Descriptor): boolean =>
  isSha256Digest(d.digest) && !(d.mediaType && isIndexMediaType(d.mediaType));

/** A referrer manifest's Sigstore bundle layer, if it has one. */
function bundleLayerOf(m: Manifest): Descriptor | undefined {
  const layers = Array.isArray(m.json.layers) ? (m.json.layers as Descriptor[]) : [];
  return layers.find((l) => typeof l === 'object' && l !== null && isBundleMediaType(l.mediaType));
}

/**
 * The bundle referrers' results; the lookup is recorded in `result.lookups`, with the count of
 * referrers that are not bundles, and read failures in `errors` (the caller adds them to its errors).
 */
async function bundleSignatures(
  ctx: Context,
  result: ManifestResult,
  refs: ReferrersRead,
  errors: Reason[],
): Promise<SignatureResult[]> {
  if (refs.state === 'failed') {
    result.lookups.referrers = 'failed';
    errors.push(refs.reason);
    return [];
  }
  result.lookups.referrers = refs.via;
  const tooMany = tooManyReferrers(refs, 'image');
  if (tooMany) errors.push(tooMany);
  ctx.grow(refs.referrers.length);
  const out = await pool(refs.referrers, ctx.concurrency, async (ref): Promise<SignatureResult | 'other' | null> => {
    ctx.signal?.throwIfAborted();
    const d = ref.descriptor;
    try {
      if (!mayHoldBundle(d)) return 'other';
      const m = await ref.manifest();
      const bundleLayer = bundleLayerOf(m);
      if (!bundleLayer) return 'other';
      return await verifyReferrer(ctx, result.digest, m, bundleLayer);
    } catch (e) {
      errors.push(reasonOf(e));
      return null;
    } finally {
      ctx.tick(`Checked referrer ${short(d.digest)}`);
    }
  });
  result.lookups.otherReferrers = out.filter((s) => s === 'other').length;
  return out.filter((s): s is SignatureResult => typeof s === 'object' && s !== null);
}

/**
 * What one manifest's signatures are read from: its `.sig` tag, and its referrers unless not read,
 * each a promise of its own so the `.sig` layers are read while the referrers are still listed.
 */
interface Lookup {
  sig: Promise<TagRead>;
  /** null under a containers policy, which reads legacy signatures only (as containers/image). */
  referrers: Promise<ReferrersRead> | null;
  /** Settles once no lookup is under way. */
  settled: Promise<unknown>;
}

/** Registry lookups per manifest (each a progress step): the `.sig` tag, and the referrers unless not read. */
const lookupsPerManifest = (ctx: Pick<Context, 'containers'>): number => (ctx.containers ? 1 : 2);

/**
 * Reads ahead what each lookup leads to as soon as it answers — the `.sig` layers' blobs, the first
 * referrers' manifests and bundles — rather than once the image's own manifest is in: the same reads the
 * verification makes next (each kept and read once), a round trip's wait earlier.
 */
function readAhead(ctx: Context, sig: Promise<TagRead>, referrers: Promise<ReferrersRead> | null): void {
  sig.then((s) => s.state === 'found' && ctx.blobs.prefetch(s.layers)).catch(() => undefined);
  referrers
    ?.then((r) => {
      if (r.state === 'failed') return;
      for (const ref of r.referrers.slice(0, ctx.concurrency)) {
        if (!mayHoldBundle(ref.descriptor)) continue;
        // Failures are reported where bundleSignatures reads the same (kept) promises.
        ref
          .manifest()
          .then((m) => {
            const bundle = bundleLayerOf(m);
            if (bundle) ctx.blobs.read(bundle, 'bundle blob').catch(() => undefined);
          })
          .catch(() => undefined);
      }
    })
    .catch(() => undefined);
}

/** What the registry reads of a lookup need: none of the keys, policy or trust being prepared. */
type ReadContext = Pick<Context, 'client' | 'repo' | 'containers' | 'concurrency' | 'signal' | 'tick'>;

/**
 * Starts the `.sig` tag's and (unless under a containers policy) the referrers' reads of
 * `digest`, at once, without reading ahead what they lead to (readAhead, once the context is ready).
 */
function startLookup(rc: ReadContext, digest: string): Lookup {
  if (rc.containers) {
    const sig = readAttachmentTag(rc.client, rc.repo, digest, 'sig').then((read) => {
      rc.tick(`Looked for ${read.tag}`);
      return read;
    });
    sig.catch(() => undefined);
    return { sig, referrers: null, settled: sig };
  }
  const read = startAttachmentReads(rc.client, rc.repo, digest, {
    tags: ['sig'],
    concurrency: rc.concurrency,
    signal: rc.signal,
    onLookup: rc.tick,
  });
  return { sig: read.tags.sig, referrers: read.referrers, settled: read.settled };
}

/** Starts the `.sig` tag's and (unless under a containers policy) the referrers' lookups of `digest`, at once. */
function lookUp(ctx: Context, digest: string): Lookup {
  const l = startLookup(ctx, digest);
  readAhead(ctx, l.sig, l.referrers);
  return l;
}

/**
 * Every signature of one manifest, both formats read at once, each as soon as its lookup answers:
 * the `.sig` layers first, then the bundle referrers, each in the registry's order.
 */
async function manifestSignatures(ctx: Context, result: ManifestResult): Promise<void> {
  const read = ctx.early.get(result.digest) ?? lookUp(ctx, result.digest);
  const referrers = read.referrers;
  if (referrers === null) result.lookups.referrers = 'not-read';
  // The referrers' failures are listed after the `.sig` tag's whichever answer comes first.
  const bundleErrors: Reason[] = [];
  const [legacy, bundles] = await Promise.all([
    read.sig.then((sig) => legacySignatures(ctx, result, sig)),
    referrers === null ? [] : referrers.then((refs) => bundleSignatures(ctx, result, refs, bundleErrors)),
  ]);
  result.lookups.errors.push(...bundleErrors);
  result.signatures.push(...legacy, ...bundles);
}

const TELLING: ErrorCode[] = [
  'VERIFY_DIGEST_MISMATCH',
  'VERIFY_IDENTITY_MISMATCH',
  'VERIFY_ANNOTATION_MISMATCH',
  'VERIFY_PAYLOAD_MALFORMED',
  'VERIFY_ALGORITHM_REFUSED',
  'VERIFY_WRONG_KEY',
  'VERIFY_LAYER_MISMATCH',
  'VERIFY_SIGNATURE_MALFORMED',
  'VERIFY_KEYLESS',
  'VERIFY_BAD_SIGNATURE',
];

/** The error a manifest without a verified signature gets. */
function manifestError(m: ManifestResult): Reason | null {
  if (m.verified) return null;
  const where = m.platform ? `The ${m.platform} manifest (${short(m.digest)})` : `This ${m.role}`;
  const candidates = m.signatures.filter((s) => s.kind === 'signature' || s.kind === 'keyless');
  if (candidates.length === 0) {
    const failed = m.lookups.errors[0];
    if (failed) return r(failed.code, `${where}: its signatures could not be read: ${failed.message}`);
    const attestations = m.signatures.filter((s) => s.kind === 'attestation').length;
    const others = m.signatures.length - attestations;
    const shown = [
      attestations === 1 ? 'an attestation' : attestations > 1 ? `${attestations} attestations` : '',
      others === 1
        ? 'an object that is not a signature'
        : others > 1
          ? `${others} objects that are not signatures`
          : '',
    ]
      .filter(Boolean)
      .join(' and ');
    return r(
      'VERIFY_NO_SIGNATURES',
      shown
        ? `${where} has no signatures, only ${shown}, which ${attestations + others === 1 ? 'does' : 'do'} not count as a signature.`
        : `${where} has no signatures: no ${m.lookups.sigTag} tag and no Sigstore bundle referrers.`,
    );
  }
  const codes = new Set(candidates.map((s) => s.error?.code));
  // The most telling reason first: a claim that is wrong says more than "does not verify".
  const rank = (code: ErrorCode | undefined): number => {
    const i = TELLING.indexOf(code as ErrorCode);
    return i < 0 ? TELLING.length : i;
  };
  const first = [...candidates].sort((a, b) => rank(a.error?.code) - rank(b.error?.code))[0]!.error!;
  if (candidates.length === 1) return r(first.code, `${where}: ${first.message}`);
  if (codes.size === 1)
    return r(first.code, `${where}: none of its ${candidates.length} signatures verifies: ${first.message}`);
  return r(
    'VERIFY_NO_VALID_SIGNATURE',
    `${where}: none of its ${candidates.length} signatures verifies with this key; for instance: ${first.message}`,
  );
}

function emptyResult(opts: VerifyOptions, identity: IdentityRule, checkedAt: string): VerificationResult {
  return {
    format: RESULT_FORMAT,
    verified: false,
    summary: '',
    error: null,
    checkedAt,
    image: { input: opts.image, reference: null, intended: null, digest: null, mediaType: null, isIndex: false },
    key: { algorithm: null, fingerprint: null, hint: null, pem: null, trustedName: null },
    policy: {
      identity,
      identityDescription: describeIdentityRule(identity),
      annotations: { ...(opts.annotations ?? {}) },
      requireEveryPlatform: opts.requireEveryPlatform ?? false,
      certificate: opts.certificate ?? null,
      tlog: opts.tlog ?? null,
      containersPolicy: null,
    },
    trustedRoot: null,
    manifests: [],
  };
}

/**
 * The result of a verification decided without reading signatures (a containers policy's
 * `reject`, `insecureAcceptAnything`, or a requirement this page cannot apply): not verified with
 * `error`, or verified with `summary` (which starts "Verified").
 */
export function decidedResult(
  opts: VerifyOptions,
  outcome: { error: Reason } | { summary: string },
): VerificationResult {
  const result = emptyResult(opts, opts.identity ?? { type: 'ignore' }, (opts.now?.() ?? new Date()).toISOString());
  try {
    const ref = parseReference(opts.image);
    result.image.reference = formatReference(ref);
    result.image.intended = namedString(intendedReference(ref));
  } catch {
    // The reference's own error is the caller's to report; the result keeps the input.
  }
  if ('error' in outcome) return fail(result, outcome.error);
  result.verified = true;
  result.summary = outcome.summary;
  return result;
}

function fail(result: VerificationResult, error: Reason): VerificationResult {
  result.verified = false;
  result.error = error;
  result.summary = `Not verified: ${error.message}`;
  return result;
}

/** The keys a verification uses: the one given, and the viewer's others (only to name a signer). */
async function prepareKeys(
  opts: VerifyOptions,
  result: VerificationResult,
): Promise<[PreparedKey | null, PreparedKey[]]> {
  const others = (await prepareKnownKeys(opts.knownKeys)).map((k) => k.key);
  if (!opts.spki) return [null, others];
  const key = await prepareKey(opts.spki);
  result.key = {
    algorithm: algorithmName(key.algorithm),
    fingerprint: `sha256:${key.fingerprint.hex}`,
    hint: key.fingerprint.hint,
    pem: publicKeyPem(opts.spki),
    trustedName: null,
  };
  return [key, others];
}

/**
 * The identity policy certificates are held to, checked up front so a bad regular expression is
 * the verdict rather than every signature's failure; null when none is given.
 * @throws VerificationError VERIFY_POLICY_INVALID when neither a key nor a policy is given,
 *   VERIFY_REGEXP_INVALID and the policy's other refusals.
 */
async function certificatePolicy(opts: VerifyOptions, key: PreparedKey | null): Promise<IdentityPolicy | null> {
  const policy = opts.certificate;
  if (!policyGiven(opts)) {
    if (!key)
      throw new VerificationError(
        'VERIFY_POLICY_INVALID',
        'Give a public key, or the certificate identity and OIDC issuer signatures must name.',
      );
    return null;
  }
  const { compileIdentityPolicy } = await import('../sigstore/policy.ts');
  compileIdentityPolicy(policy!);
  return policy!;
}

/** The options name an identity policy for certificates. */
function policyGiven(opts: VerifyOptions): boolean {
  const policy = opts.certificate;
  return !!policy && (IDENTITY_PARAMS.some((k) => !!policy[k]) || !!policy.subjectEmail || !!policy.subjectHostname);
}

/**
 * What can be checked of the options without waiting (the identity rule, the key's encoding,
 * that there is a key or a policy) is right, so reading the registry may start: a form wrong in
 * these ways reads nothing. (A policy's regular expressions are compiled by setUp.)
 */
function worthReading(opts: VerifyOptions): boolean {
  try {
    checkIdentityRule(opts.identity ?? { type: 'ignore' });
    if (opts.spki) parseSpki(opts.spki);
    return !!opts.spki || policyGiven(opts);
  } catch {
    return false;
  }
}

/**
 * Loads the Sigstore verifier and its trust once, for the signatures that need them. With an
 * identity policy (so certificates are expected) the loading starts at once, while the registry
 * is being read, rather than after the first signature arrives; the result names the root only
 * once a signature used it.
 */
function loadSigstore(opts: VerifyOptions, result: VerificationResult, early: boolean): () => Promise<Sigstore> {
  let loading: Promise<Sigstore> | undefined;
  const load = (): Promise<Sigstore> =>
    (loading ??= (async () => {
      const mod = await import('./verify-sigstore.ts');
      const trust = opts.trust ? await opts.trust() : mod.buildTrust({ root: 'public-good' });
      return { mod, trust };
    })());
  // A failure is the verdict of the first signature that needs the trust, not of this early start.
  if (early) load().catch(() => undefined);
  return async () => {
    const loaded = await load();
    const { trust } = loaded;
    result.trustedRoot = { name: trust.name, sha256: trust.sha256, privatePki: !!trust.privateCAs };
    return loaded;
  };
}

/**
 * Reads the options into a verification context (rule, keys, reference), filling in what the
 * result says about them, and the progress reporter.
 * @throws the identity rule's, the key's or the reference's error.
 */
async function setUp(
  client: RegistryClient,
  opts: VerifyOptions,
  result: VerificationResult,
  reads: EarlyReads | null,
): Promise<{ ctx: Context; ref: ImageReference; top: Promise<Manifest> }> {
  const identity = checkIdentityRule(opts.identity ?? { type: 'ignore' });
  result.policy.identity = identity;
  const [key, others] = await prepareKeys(opts, result);
  const policy = await certificatePolicy(opts, key);
  // Parsed again when the reads could not start: its error is the verdict, after the key's and policy's.
  const early = reads ?? startReads(client, opts, parseReference(opts.image));
  const { rc, ref } = early;
  const intended = intendedReference(ref);
  result.image.reference = formatReference(ref);
  result.image.intended = namedString(intended);
  const ctx: Context = {
    ...rc,
    blobs: new SignatureBlobs(client, rc.repo),
    key,
    policy,
    tlog: opts.tlog,
    sigstore: loadSigstore(opts, result, policy !== null),
    others,
    identity,
    intended,
    annotations: { ...(opts.annotations ?? {}) },
    early: new Map(),
  };
  if (early.lookup) {
    readAhead(ctx, early.lookup.sig, early.lookup.referrers);
    ctx.early.set(early.lookup.digest, early.lookup);
  }
  return { ctx, ref, top: early.top };
}

/** The registry reads started before the keys, policy and trust are ready, and what they need. */
interface EarlyReads {
  ref: ImageReference;
  rc: ReadContext & Pick<Context, 'grow'>;
  /** The image's manifest (or index), as named. */
  top: Promise<Manifest>;
  /** For a reference by digest, its signatures' lookups. */
  lookup: (Lookup & { digest: string }) | null;
  /** Stops their progress reports (the verification ended without them). */
  silence(): void;
}

/**
 * Starts reading the image and, for a reference by digest, looking up its signatures (one round
 * trip less than reading the manifest first), before anything is awaited: preparing keys, the
 * identity policy and the trust would otherwise hold the first request back while the page
 * repaints.
 */
function startReads(client: RegistryClient, opts: VerifyOptions, ref: ImageReference): EarlyReads {
  let done = 0;
  let total = 1;
  let heard = true;
  const report = (message: string): void => {
    if (heard) opts.onProgress?.({ done, total, message });
  };
  const rc: EarlyReads['rc'] = {
    client,
    repo: { registry: ref.registry, repository: ref.repository },
    containers: opts.containers ?? false,
    concurrency: Math.max(1, opts.concurrency ?? 6),
    signal: opts.signal,
    tick: (message) => {
      done++;
      report(message);
    },
    grow: (n) => {
      total += n;
      report('Reading signatures');
    },
  };
  report(`Resolving ${formatReference(ref)}`);
  let lookup: EarlyReads['lookup'] = null;
  if (ref.digest && isSha256Digest(ref.digest)) {
    rc.grow(lookupsPerManifest(rc));
    lookup = { ...startLookup(rc, ref.digest), digest: ref.digest };
  }
  const top = client.getManifest(rc.repo, manifestReference(ref));
  top.catch(() => undefined);
  return { ref, rc, top, lookup, silence: () => (heard = false) };
}

/** The manifests to check: the image or index first, then (at most MAX_PLATFORMS) platforms. */
function manifestsOf(top: Manifest, requireEveryPlatform: boolean): ManifestResult[] {
  const newManifest = (
    d: string,
    mediaType: string,
    role: ManifestResult['role'],
    platform: string | null,
  ): ManifestResult => ({
    digest: d,
    mediaType,
    role,
    platform,
    required: role !== 'platform' || requireEveryPlatform,
    verified: false,
    error: null,
    signatures: [],
    lookups: {
      sigTag: sigTag(d),
      legacy: 'absent',
      referrers: 'tag-schema',
      otherReferrers: 0,
      errors: [],
    },
  });
  const isIndex = isIndexMediaType(top.descriptor.mediaType);
  const manifests = [newManifest(top.descriptor.digest, top.descriptor.mediaType, isIndex ? 'index' : 'image', null)];
  if (isIndex) {
    for (const c of indexPlatforms(top).platforms)
      manifests.push(newManifest(c.digest, c.mediaType, 'platform', c.platform));
  }
  return manifests;
}

/** The verdict over the checked manifests: the root must verify, and every required platform. */
function conclude(result: VerificationResult, ref: ImageReference, opts: VerifyOptions): VerificationResult {
  const root = result.manifests[0]!;
  const platforms = result.manifests.slice(1);
  const count = (m: ManifestResult): number => m.signatures.filter((s) => s.verified).length;
  if (!root.verified) return fail(result, root.error!);
  const unsigned = platforms.filter((p) => p.required && !p.verified);
  if (unsigned.length > 0) {
    const first = unsigned[0]!;
    return fail(
      result,
      r(
        'VERIFY_PLATFORM_UNSIGNED',
        `${unsigned.length} of ${platforms.length} platform manifests ${unsigned.length === 1 ? 'is' : 'are'} not signed by this key, and every platform must be: ${first.error?.message ?? first.platform}`,
      ),
    );
  }
  result.verified = true;
  const n = count(root);
  const signedPlatforms = platforms.filter((p) => p.verified).length;
  const platformWords = result.image.isIndex
    ? opts.requireEveryPlatform
      ? platforms.length === 2
        ? ' and on both platforms'
        : ` and on all ${platforms.length} platforms`
      : `; ${signedPlatforms} of ${platforms.length} platforms signed (not required)`
    : '';
  const signers = root.signatures.filter((s) => s.verified).map((s) => s.sigstore?.signer);
  const certified = signers.find((s) => s?.kind === 'certificate');
  const by =
    certified?.kind === 'certificate' && signers.every((s) => s?.kind === 'certificate')
      ? `by ${certified.identity} (${certified.issuer ?? 'no issuer'})`
      : 'by this key';
  result.summary = `Verified: ${n} signature${n === 1 ? '' : 's'} ${by} on ${ref.registry}/${ref.repository}@${result.image.digest}${platformWords}.`;
  return result;
}

/**
 * Verifies every signature of an image (and of each platform of an index) with one public key.
 * @throws the signal's reason when `opts.signal` aborts; never for a verification failure.
 */
export async function verifyImage(client: RegistryClient, opts: VerifyOptions): Promise<VerificationResult> {
  const checkedAt = (opts.now?.() ?? new Date()).toISOString();
  const result = emptyResult(opts, opts.identity ?? { type: 'ignore' }, checkedAt);
  // The reads start first (a reference that does not parse gets its error from setUp). A reference
  // by digest names the manifest whose signatures count: they are looked up while the manifest
  // itself is read, and used once it has been read by that digest.
  let reads: EarlyReads | null = null;
  try {
    if (worthReading(opts)) reads = startReads(client, opts, parseReference(opts.image));
  } catch {
    // setUp says why, after the key's and policy's own errors.
  }
  let setup;
  try {
    setup = await setUp(client, opts, result, reads);
  } catch (e) {
    // The reads started early are left to end unheard: no progress after the verdict.
    reads?.silence();
    return fail(result, reasonOf(e));
  }
  const { ctx, ref } = setup;
  let top: Manifest;
  try {
    top = await setup.top;
  } catch (e) {
    // Lookups started early report progress: they end before the verdict, never after it.
    await Promise.allSettled([...ctx.early.values()].map((l) => l.settled));
    ctx.signal?.throwIfAborted();
    return fail(result, reasonOf(e));
  }
  ctx.signal?.throwIfAborted();
  ctx.tick('Resolved the image');
  result.image.digest = top.descriptor.digest;
  result.image.mediaType = top.descriptor.mediaType;
  result.image.isIndex = isIndexMediaType(top.descriptor.mediaType);
  result.manifests = manifestsOf(top, opts.requireEveryPlatform ?? false);
  ctx.grow((result.manifests.length - ctx.early.size) * lookupsPerManifest(ctx));
  await pool(result.manifests, 2, async (m) => {
    ctx.signal?.throwIfAborted();
    await manifestSignatures(ctx, m);
    m.verified = m.signatures.some((s) => s.verified);
    m.error = manifestError(m);
  });
  ctx.signal?.throwIfAborted();
  return conclude(result, ref, opts);
}

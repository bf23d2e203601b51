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
 * A signature with a certificate instead of a key (keyless) is shown as such and never counts.
 * For an index, the index and every platform manifest are checked; the platforms count toward the
 * verdict when `requireEveryPlatform` is set, as `skopeo copy --all` demands.
 *
 * The verdict for a manifest is "some signature verifies", as in cosign and containers/image.
 * verifyImage never throws for a verification failure: the result says why. It throws only when
 * the signal aborts.
 */
import { reasonOf, type ErrorCode, type Reason } from '../errors.ts';
import { publicKeyPem } from '../crypto/keys.ts';
import { algorithmName } from '../crypto/pkcs.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, isIndexMediaType, isManifestMediaType, platformName, type Descriptor } from '../registry/mediatypes.ts';
import { formatReference, isSha256Digest, manifestReference, parseReference } from '../registry/reference.ts';
import { pool } from './pool.ts';
import { parseBundle } from '../cosign/bundle.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae, parseStatement } from '../cosign/dsse.ts';
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
import { MAX_LAYERS, MAX_PLATFORMS, MAX_REFERRERS, MAX_SIGNATURE_BLOB } from '../cosign/limits.ts';
import { decodeSignature, judgeSignature, prepareKey, type PreparedKey } from '../cosign/verify-signature.ts';

export const RESULT_FORMAT = 'cosign-web-verification/1';

export interface VerifyProgress {
  done: number;
  total: number;
  message: string;
}

export interface VerifyOptions {
  /** The image reference as typed (`host/repo:tag`, `host/repo@sha256:…`). */
  image: string;
  /** The public key: SubjectPublicKeyInfo DER. */
  spki: Uint8Array;
  /** Default: cosign's rule, identity not checked. */
  identity?: IdentityRule;
  /** Annotations every counted signature must carry, key → value. */
  annotations?: Record<string, string>;
  /** Every platform manifest of an index must be signed too. */
  requireEveryPlatform?: boolean;
  /** Other keys the viewer trusts: tried only to name who made a signature this key did not. */
  knownKeys?: readonly { name: string; spki: Uint8Array }[];
  onProgress?: (p: VerifyProgress) => void;
  signal?: AbortSignal;
  /** Requests in flight at once (default 6). */
  concurrency?: number;
  now?: () => Date;
}

export type CheckId = 'blob' | 'signature' | 'payload' | 'digest' | 'identity' | 'annotations';
export const CHECK_IDS: readonly CheckId[] = ['blob', 'signature', 'payload', 'digest', 'identity', 'annotations'];

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
  /** Always the six checks, in CHECK_IDS order. */
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
  /** True when it carries a transparency-log entry (this page does not check those). */
  tlogEntry: boolean;
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
    referrers: 'api' | 'tag-schema' | 'failed';
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
  };
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
  key: PreparedKey;
  others: PreparedKey[];
  identity: IdentityRule;
  intended: NamedReference;
  annotations: Record<string, string>;
  concurrency: number;
  signal: AbortSignal | undefined;
  tick(message: string): void;
  grow(n: number): void;
}

function checkAbort(ctx: Pick<Context, 'signal'>): void {
  if (ctx.signal?.aborted) throw ctx.signal.reason ?? new Error('aborted');
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
  if (!isSha256Digest(layer.digest) || !Number.isSafeInteger(layer.size) || layer.size < 0) {
    const error = r('VERIFY_LAYER_MISMATCH', `The ${what} descriptor has no usable sha256 digest and size.`);
    checks.set('blob', 'fail', error.message);
    return { error };
  }
  if (layer.size > MAX_SIGNATURE_BLOB) {
    const error = r('VERIFY_TOO_MANY', `The ${what} claims ${layer.size} bytes; this page reads at most 1 MiB.`);
    checks.set('blob', 'fail', error.message);
    return { error };
  }
  try {
    const bytes = await ctx.client.getBlob(ctx.repo, layer.digest, layer.size);
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

/** A keyless signature (a certificate instead of a key): shown as such, never counted. */
function keyless(base: Omit<SignatureResult, 'checks' | 'verified' | 'error'>, checks: Checks): SignatureResult {
  base.kind = 'keyless';
  const error = r(
    'VERIFY_KEYLESS',
    'Keyless signature (a certificate instead of a key): this page verifies with keys, so it does not count.',
  );
  checks.set('signature', 'skipped', error.message);
  return finish(base, checks, 'Not checked: keyless signature.', error);
}

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
  const base = {
    id: `${tag} layer ${n}`,
    format: 'legacy' as const,
    kind: 'signature' as SignatureResult['kind'],
    algorithm: null as string | null,
    otherKey: null as SignatureResult['otherKey'],
    claims: emptyClaims(),
    tlogEntry: BUNDLE_ANNOTATION in annotations,
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
  if (CERTIFICATE_ANNOTATION in annotations) {
    return keyless(base, checks);
  }
  const sig = decodeSignature(annotations[SIGNATURE_ANNOTATION]);
  if (!sig) {
    const error = r(
      'VERIFY_SIGNATURE_MALFORMED',
      `The layer's ${SIGNATURE_ANNOTATION} annotation is ${SIGNATURE_ANNOTATION in annotations ? 'not standard base64' : 'missing'}.`,
    );
    checks.set('signature', 'fail', error.message);
    return finish(base, checks, 'Not checked: the signature failed.', error);
  }
  const judged = await judgeSignature(ctx.key, blob.bytes, sig, { others: ctx.others, what: 'signature' });
  if (!judged.ok) {
    checks.set('signature', 'fail', judged.reason.message);
    base.otherKey = judged.otherKey;
    return finish(base, checks, 'Not checked: the signature failed, so the payload is not trusted.', judged.reason);
  }
  base.algorithm = judged.algorithm;
  checks.set('signature', 'pass', `Signed by this key (${judged.algorithm}) over the exact payload bytes.`);
  let payload;
  try {
    payload = parseSimpleSigningPayload(blob.bytes);
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

function isBundleMediaType(mt: unknown): boolean {
  return typeof mt === 'string' && mt.startsWith('application/vnd.dev.sigstore.bundle');
}

async function verifyReferrer(
  ctx: Context,
  target: string,
  manifest: Manifest,
  bundleLayer: Descriptor,
): Promise<SignatureResult> {
  const checks = new Checks();
  const base = {
    id: `referrer ${manifest.descriptor.digest}`,
    format: 'bundle' as const,
    kind: 'signature' as SignatureResult['kind'],
    algorithm: null as string | null,
    otherKey: null as SignatureResult['otherKey'],
    claims: emptyClaims(),
    tlogEntry: false,
    source: {
      manifest: manifest.descriptor.digest,
      blob: typeof bundleLayer.digest === 'string' ? bundleLayer.digest : null,
    },
  };
  const blob = await fetchSignatureBlob(ctx, bundleLayer, checks, 'bundle blob');
  if ('error' in blob) return finish(base, checks, 'Not checked: the bundle blob failed.', blob.error);
  let bundle;
  try {
    bundle = parseBundle(blob.bytes);
  } catch (e) {
    const error = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
    checks.set('payload', 'fail', error.message);
    return finish(base, checks, 'Not checked: the bundle is malformed.', error);
  }
  base.tlogEntry = bundle.hasTlogEntries;
  if (bundle.material.kind === 'certificate') {
    return keyless(base, checks);
  }
  if (!bundle.dsse) {
    base.kind = 'other';
    const error = r(
      'VERIFY_NOT_A_SIGNATURE',
      'This bundle signs a blob digest (a message signature), not an image statement: not an image signature.',
    );
    checks.set('payload', 'fail', error.message);
    return finish(base, checks, 'Not checked: not an image signature.', error);
  }
  const dsse = bundle.dsse;
  let statement;
  if (dsse.payloadType === IN_TOTO_PAYLOAD_TYPE) {
    try {
      statement = parseStatement(dsse.payload);
    } catch (e) {
      const error = r('VERIFY_PAYLOAD_MALFORMED', reasonOf(e).message);
      checks.set('payload', 'fail', error.message);
      return finish(base, checks, 'Not checked: the statement is malformed.', error);
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
  const hint = bundle.material.kind === 'publicKey' ? bundle.material.hint : undefined;
  const signed = pae(dsse.payloadType, dsse.payload);
  let judged = null;
  for (const sig of dsse.signatures) {
    judged = await judgeSignature(ctx.key, signed, sig, {
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
    return finish(base, checks, 'Not checked: the signature failed, so the statement is not trusted.', error ?? reason);
  }
  base.algorithm = judged.algorithm;
  checks.set(
    'signature',
    'pass',
    `Signed by this key (${judged.algorithm}) over the DSSE pre-authentication encoding.`,
  );
  if (!statement) return finish(base, checks, 'Not checked: not an image signature.', error);
  const [alg, hex] = target.split(':') as [string, string];
  const subject = statement.subjects.find((s) => s.digests[alg] === hex);
  if (subject) {
    base.claims.manifestDigest = target;
    checks.set('digest', 'pass', `The statement's subject is this manifest, ${short(target)}.`);
  } else {
    const named = statement.subjects.map((s) => Object.entries(s.digests).map(([a, h]) => `${a}:${h}`)).flat();
    base.claims.manifestDigest = named[0] ?? null;
    const e = r(
      'VERIFY_DIGEST_MISMATCH',
      `The statement's subject is ${named.join(', ') || 'no digest'}, not this manifest (${target}): it signs another image.`,
    );
    error ??= e;
    checks.set('digest', 'fail', e.message);
  }
  base.claims.annotations = subject?.annotations ?? statement.subjects[0]?.annotations ?? {};
  checks.set(
    'identity',
    'not-applicable',
    'A bundle statement names only the digest, not a reference: identity rules apply to legacy signatures.',
  );
  if (base.kind === 'attestation') return finish(base, checks, 'Not checked: an attestation.', error);
  setAnnotationCheck(ctx, checks, base.claims.annotations, (e) => (error ??= e));
  return finish(base, checks, '', error);
}

async function legacySignatures(ctx: Context, result: ManifestResult): Promise<void> {
  let sig: Manifest;
  try {
    sig = await ctx.client.getManifest(ctx.repo, result.lookups.sigTag);
  } catch (e) {
    const reason = reasonOf(e);
    if (reason.code === 'REGISTRY_NOT_FOUND') result.lookups.legacy = 'absent';
    else {
      result.lookups.legacy = 'failed';
      result.lookups.errors.push(reason);
    }
    return;
  } finally {
    ctx.tick(`Looked for ${result.lookups.sigTag}`);
  }
  result.lookups.legacy = 'found';
  const layers = Array.isArray(sig.json.layers) ? (sig.json.layers as Descriptor[]) : [];
  if (layers.length > MAX_LAYERS) {
    result.lookups.errors.push(
      r(
        'VERIFY_TOO_MANY',
        `${result.lookups.sigTag} holds ${layers.length} layers; this page reads the first ${MAX_LAYERS}.`,
      ),
    );
  }
  const read = layers.slice(0, MAX_LAYERS);
  ctx.grow(read.length);
  const out = await pool(read, ctx.concurrency, async (layer, n) => {
    checkAbort(ctx);
    const res = await verifyLegacyLayer(
      ctx,
      result.digest,
      sig.descriptor.digest,
      result.lookups.sigTag,
      n,
      typeof layer === 'object' && layer !== null ? layer : ({} as Descriptor),
    );
    ctx.tick(`Checked .sig layer ${n}`);
    return res;
  });
  result.signatures.push(...out);
}

async function bundleSignatures(ctx: Context, result: ManifestResult): Promise<void> {
  let descriptors: Descriptor[];
  try {
    const refs = await ctx.client.referrers(ctx.repo, result.digest);
    result.lookups.referrers = refs.via;
    descriptors = refs.descriptors.filter((d) => d && typeof d.digest === 'string');
  } catch (e) {
    result.lookups.referrers = 'failed';
    result.lookups.errors.push(reasonOf(e));
    return;
  } finally {
    ctx.tick(`Looked for referrers of ${short(result.digest)}`);
  }
  if (descriptors.length > MAX_REFERRERS) {
    result.lookups.errors.push(
      r(
        'VERIFY_TOO_MANY',
        `The image has ${descriptors.length} referrers; this page reads the first ${MAX_REFERRERS}.`,
      ),
    );
    descriptors = descriptors.slice(0, MAX_REFERRERS);
  }
  ctx.grow(descriptors.length);
  const out = await pool(descriptors, ctx.concurrency, async (d): Promise<SignatureResult | 'other' | null> => {
    checkAbort(ctx);
    try {
      if (!isSha256Digest(d.digest) || (d.mediaType && isIndexMediaType(d.mediaType))) return 'other';
      const m = await ctx.client.getManifest(ctx.repo, d.digest);
      const layers = Array.isArray(m.json.layers) ? (m.json.layers as Descriptor[]) : [];
      const bundleLayer = layers.find((l) => typeof l === 'object' && l !== null && isBundleMediaType(l.mediaType));
      if (!bundleLayer) return 'other';
      return await verifyReferrer(ctx, result.digest, m, bundleLayer);
    } catch (e) {
      result.lookups.errors.push(reasonOf(e));
      return null;
    } finally {
      ctx.tick(`Checked referrer ${short(d.digest)}`);
    }
  });
  for (const s of out) if (typeof s === 'object' && s !== null) result.signatures.push(s);
  result.lookups.otherReferrers = out.filter((s) => s === 'other').length;
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
    },
    manifests: [],
  };
}

function fail(result: VerificationResult, error: Reason): VerificationResult {
  result.verified = false;
  result.error = error;
  result.summary = `Not verified: ${error.message}`;
  return result;
}

/**
 * Verifies every signature of an image (and of each platform of an index) with one public key.
 * @throws the signal's reason when `opts.signal` aborts; never for a verification failure.
 */
export async function verifyImage(client: RegistryClient, opts: VerifyOptions): Promise<VerificationResult> {
  const checkedAt = (opts.now?.() ?? new Date()).toISOString();
  let identity: IdentityRule = { type: 'ignore' };
  const result = emptyResult(opts, opts.identity ?? identity, checkedAt);
  try {
    identity = checkIdentityRule(opts.identity ?? identity);
    result.policy.identity = identity;
  } catch (e) {
    return fail(result, reasonOf(e));
  }
  let key: PreparedKey;
  try {
    key = await prepareKey(opts.spki);
  } catch (e) {
    return fail(result, reasonOf(e));
  }
  result.key = {
    algorithm: algorithmName(key.algorithm),
    fingerprint: `sha256:${key.fingerprint.hex}`,
    hint: key.fingerprint.hint,
    pem: publicKeyPem(opts.spki),
    trustedName: null,
  };
  const others: PreparedKey[] = [];
  for (const k of (opts.knownKeys ?? []).slice(0, 32)) {
    try {
      others.push(await prepareKey(k.spki, k.name));
    } catch {
      // a stored key this browser cannot load only loses the "made by" hint
    }
  }
  let ref;
  try {
    ref = parseReference(opts.image);
  } catch (e) {
    return fail(result, reasonOf(e));
  }
  const repo: RepoRef = { registry: ref.registry, repository: ref.repository };
  const intended = intendedReference(ref);
  result.image.reference = formatReference(ref);
  result.image.intended = namedString(intended);

  let done = 0;
  let total = 1;
  const report = (message: string): void => opts.onProgress?.({ done, total, message });
  const ctx: Context = {
    client,
    repo,
    key,
    others,
    identity,
    intended,
    annotations: { ...(opts.annotations ?? {}) },
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
  report(`Resolving ${result.image.reference}`);
  let top: Manifest;
  try {
    top = await client.getManifest(repo, manifestReference(ref));
  } catch (e) {
    checkAbort(ctx);
    return fail(result, reasonOf(e));
  }
  checkAbort(ctx);
  ctx.tick('Resolved the image');
  const digest = top.descriptor.digest;
  const isIndex = isIndexMediaType(top.descriptor.mediaType);
  result.image.digest = digest;
  result.image.mediaType = top.descriptor.mediaType;
  result.image.isIndex = isIndex;

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
    required: role !== 'platform' || (opts.requireEveryPlatform ?? false),
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
  const manifests: ManifestResult[] = [
    newManifest(digest, top.descriptor.mediaType, isIndex ? 'index' : 'image', null),
  ];
  if (isIndex) {
    const children = (Array.isArray(top.json.manifests) ? (top.json.manifests as Descriptor[]) : []).filter(
      (d) => d && typeof d.digest === 'string' && isSha256Digest(d.digest),
    );
    for (const c of children.slice(0, MAX_PLATFORMS)) {
      const mt = typeof c.mediaType === 'string' && isManifestMediaType(c.mediaType) ? c.mediaType : MT.ociManifest;
      manifests.push(newManifest(c.digest, mt, 'platform', c.platform ? platformName(c.platform) : 'unknown platform'));
    }
  }
  result.manifests = manifests;
  ctx.grow(manifests.length * 2);
  await pool(manifests, 2, async (m) => {
    checkAbort(ctx);
    await Promise.all([legacySignatures(ctx, m), bundleSignatures(ctx, m)]);
    m.verified = m.signatures.some((s) => s.verified);
    m.error = manifestError(m);
  });
  checkAbort(ctx);

  const root = manifests[0]!;
  const platforms = manifests.slice(1);
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
  const platformWords = isIndex
    ? opts.requireEveryPlatform
      ? ` and on all ${platforms.length} platforms`
      : `; ${signedPlatforms} of ${platforms.length} platforms signed (not required)`
    : '';
  result.summary = `Verified: ${n} signature${n === 1 ? '' : 's'} by this key on ${ref.registry}/${ref.repository}@${digest}${platformWords}.`;
  return result;
}

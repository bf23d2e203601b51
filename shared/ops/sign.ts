/**
 * Signing an image in both cosign formats at once.
 *
 * Legacy: the simple-signing payload is appended as a layer to the `sha256-<hex>.sig` manifest
 * (existing layers kept; an identical layer not added twice) — what cosign 2.x, cosign 3.x and
 * skopeo/podman read. Bundle: a Sigstore bundle v0.3 over a DSSE in-toto statement, pushed as an
 * OCI 1.1 referrer of the image — what cosign 3.x writes by default — with the referrers tag
 * schema's index kept up to date on registries without the referrers API.
 *
 * Appending to `.sig` and to the fallback index is read-modify-write, so concurrent signers can
 * overwrite each other (10 concurrent `cosign sign` leave one signature). Both appends go through
 * tag-writer.ts: serialised per tag through an optional lock (the relay's), written with If-Match
 * where the registry gives an ETag, then read back at once under the lock and, when no lock was
 * granted, again after a short random delay; a signature seen at any point that is missing is
 * merged back and the manifest rewritten, a bounded number of times. The two formats write
 * different tags, so they are pushed at once.
 */
import { RegistryError, SignatureError } from '../errors.ts';
import { toBase64 } from '../encoding/base64.ts';
import { encodePem } from '../encoding/pem.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { fingerprint } from '../crypto/webcrypto.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, isIndexMediaType, type Descriptor, type Platform } from '../registry/mediatypes.ts';
import { isSha256Digest } from '../registry/reference.ts';
import { sha256Digest } from '../crypto/digest.ts';
import { buildDsseBundle } from '../cosign/bundle.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, buildSignStatement, pae } from '../cosign/dsse.ts';
import {
  CERTIFICATE_ANNOTATION,
  CHAIN_ANNOTATION,
  EMPTY_CONFIG,
  buildBundleReferrer,
  referrersTag,
  sameSignatureLayer,
  sigLayer,
  sigTag,
} from '../cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../cosign/payload.ts';
import { pool } from './pool.ts';
import {
  LOCK_BATCH_MAX,
  addEntries,
  isTransient,
  referrersIndexList,
  rewriteTag,
  sigList,
  sleep,
  tagKey,
  type TagLock,
} from './tag-writer.ts';
import type { SignerCertificate, SigningServices } from './sign-services.ts';

/** Something that signs as cosign does: DER ECDSA over SHA-256, RSA PKCS#1 v1.5 SHA-256, Ed25519. */
export interface Signer {
  algorithm: KeyAlgorithm;
  spki: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
  /**
   * The certificate of a keyless signer (Fulcio's, for `spki`): it goes into both formats in place
   * of the bare key, as cosign writes it, and is logged as the entry's verifier.
   */
  certificate?: SignerCertificate;
}

/** One manifest to sign: the image itself, or one platform of an index. */
export interface SignTarget {
  descriptor: Descriptor;
  platform?: Platform;
}

/** What will be signed, shown to the person before they click. */
export interface SignPlan {
  repo: RepoRef;
  root: Descriptor;
  /** The root first, then each platform manifest of an index. */
  targets: SignTarget[];
  /** The root's manifest or index as read to plan, for the reads that follow ("signed before?"). */
  manifest?: Manifest;
}

export type { TagLock };

export interface SignOptions {
  client: RegistryClient;
  signer: Signer;
  plan: SignPlan;
  /** What `critical.identity.docker-reference` says (`registry/repo` or `registry/repo:tag`). */
  dockerReference: string;
  annotations?: Record<string, string>;
  formats: { legacy: boolean; bundle: boolean };
  /** Sign the platform manifests of an index too (as `cosign sign --recursive`); default true. */
  recursive?: boolean;
  lock?: TagLock;
  onProgress?: (done: number, total: number, message: string) => void;
  now?: () => Date;
  /** Milliseconds to wait before the second read-back (default: random 100–400 ms). */
  settleDelay?: () => number;
  /** Read-modify-write attempts before giving up (default 10). */
  maxAttempts?: number;
  /**
   * A transparency log and/or timestamp authority to log and timestamp each signature with; every
   * answer is verified against its trusted root before anything is pushed (sign-services.ts).
   */
  services?: SigningServices;
}

export interface SignedTarget {
  digest: string;
  platform?: Platform;
  /** The `.sig` layer (its digest is the payload's). */
  legacy?: { layer: Descriptor; tag: string };
  /** The bundle referrer manifest, and how it is discoverable. */
  bundle?: { referrer: string; via: 'referrers-api' | 'tag-schema' };
}

export interface SignResult {
  digest: string;
  mediaType: string;
  targets: SignedTarget[];
}

/**
 * Resolves what a reference points at and, for an index, lists its platform manifests.
 * @throws RegistryError from the registry.
 */
export async function planSigning(client: RegistryClient, repo: RepoRef, reference: string): Promise<SignPlan> {
  // One GET: an image's manifest is small, and an index's is needed whole.
  const index = await client.getManifest(repo, reference);
  const root = index.descriptor;
  const targets: SignTarget[] = [{ descriptor: root }];
  if (isIndexMediaType(root.mediaType)) {
    const manifests = index.json.manifests;
    if (!Array.isArray(manifests)) {
      throw new RegistryError('REGISTRY_BAD_RESPONSE', `The index ${root.digest} has no list of manifests.`);
    }
    for (const m of manifests as Descriptor[]) {
      if (typeof m?.digest !== 'string' || typeof m.mediaType !== 'string' || typeof m.size !== 'number') continue;
      // The digest goes into payloads, tags and (for the external signer) file names and shell
      // lines: only a well-formed sha256 digest is taken from a registry's index.
      if (!isSha256Digest(m.digest)) {
        throw new RegistryError(
          'REGISTRY_BAD_RESPONSE',
          `The index ${root.digest} names a manifest whose digest is not sha256 followed by 64 hex digits.`,
        );
      }
      targets.push({
        descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.size },
        ...(m.platform ? { platform: m.platform } : {}),
      });
    }
  } else if (root.mediaType !== MT.ociManifest && root.mediaType !== MT.dockerManifest) {
    throw new SignatureError(
      'SIGNATURE_IMAGE_UNSUPPORTED',
      `${root.digest} is a "${root.mediaType}", not an image manifest or index.`,
    );
  }
  return { repo: { registry: repo.registry, repository: repo.repository }, root, targets, manifest: index };
}

/**
 * Runs a push again when the registry fails it for a moment. distribution 2.8 answers 400
 * DIGEST_INVALID to a manifest, or 500 to a read, while another upload of the same blob (the
 * empty config every bundle referrer shares, an identical payload) commits.
 */
async function withRetries<T>(o: SignOptions, fn: () => Promise<T>): Promise<T> {
  const settle = o.settleDelay ?? (() => 100 + Math.random() * 300);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= 5 || !isTransient(e)) throw e;
      await sleep(settle() * attempt);
    }
  }
}

/** What decides the bytes a signature covers: the options of {@link signImage} minus the I/O. */
export type SigningInput = Pick<SignOptions, 'plan' | 'dockerReference' | 'annotations' | 'formats' | 'recursive'>;

/**
 * The targets {@link signImage} signs, in its order, after checking the options that decide them.
 * @throws SignatureError SIGNATURE_NOTHING_TO_WRITE, SIGNATURE_ANNOTATION_INVALID
 */
export function targetsToSign(o: SigningInput): SignTarget[] {
  if (!o.formats.legacy && !o.formats.bundle) {
    throw new SignatureError('SIGNATURE_NOTHING_TO_WRITE', 'Choose at least one signature format to write.');
  }
  for (const k of Object.keys(o.annotations ?? {})) {
    if (!k) throw new SignatureError('SIGNATURE_ANNOTATION_INVALID', 'An annotation needs a name before the "=".');
  }
  return o.recursive === false ? o.plan.targets.slice(0, 1) : o.plan.targets;
}

/** The simple-signing payload of one target: the exact bytes the legacy signature covers. */
export function legacyPayload(o: SigningInput, target: SignTarget): Uint8Array {
  return buildSimpleSigningPayload(o.dockerReference, target.descriptor.digest, o.annotations);
}

/** The in-toto statement of one target; its DSSE PAE is what the bundle signature covers. */
export function bundleStatement(o: SigningInput, target: SignTarget): Uint8Array {
  return buildSignStatement(target.descriptor.digest, o.annotations);
}

/**
 * The signatures of one target, made — and logged and timestamped, each answer verified, when
 * the plan has services — before anything is pushed.
 */
interface Signed {
  legacy?: { payload: Uint8Array; layer: Descriptor };
  bundle?: Uint8Array;
}

/** The legacy layer of a signature, with its log entry (Rekor v1) and timestamp annotations when asked. */
async function legacyLayer(o: SignOptions, payload: Uint8Array, signature: Uint8Array): Promise<Descriptor> {
  const signed = sigLayer(payload, toBase64(signature));
  const cert = o.signer.certificate;
  const layer = cert
    ? {
        ...signed,
        annotations: {
          ...signed.annotations,
          [CERTIFICATE_ANNOTATION]: encodePem('CERTIFICATE', cert.leaf),
          [CHAIN_ANNOTATION]: cert.chain.map((d) => encodePem('CERTIFICATE', d)).join(''),
        },
      }
    : signed;
  const services = o.services;
  if (!services?.tsa && services?.rekor?.majorApiVersion !== 1) return layer;
  const { legacyWitnessAnnotations } = await import('./sign-services.ts');
  const annotations = layer.annotations ?? {};
  const witnessed = await legacyWitnessAnnotations(services, {
    payload,
    signature,
    spki: o.signer.spki,
    ...(cert ? { certificate: cert } : {}),
    annotations,
  });
  return { ...layer, annotations: { ...annotations, ...witnessed } };
}

/** The bundle's bytes for a signature: logged and timestamped (each answer verified) when asked. */
async function bundleBytes(o: SignOptions, target: SignTarget, statement: Uint8Array, signature: Uint8Array) {
  const cert = o.signer.certificate;
  const hint = cert ? { certificate: cert.leaf } : fingerprint(o.signer.spki).hint;
  if (!o.services?.rekor && !o.services?.tsa) return buildDsseBundle(hint, IN_TOTO_PAYLOAD_TYPE, statement, signature);
  const { witnessedBundle } = await import('./sign-services.ts');
  return witnessedBundle(
    o.services,
    {
      hint,
      payloadType: IN_TOTO_PAYLOAD_TYPE,
      statement,
      signature,
      spki: o.signer.spki,
      ...(cert ? { certificate: cert } : {}),
    },
    target.descriptor.digest,
  );
}

/**
 * Asks the signer for the target's signatures, one at a time (a passkey or a token signs one at
 * once); then the legacy timestamp and the bundle's log entry and timestamp are fetched at once.
 */
async function signTarget(o: SignOptions, target: SignTarget): Promise<Signed> {
  const payload = o.formats.legacy ? legacyPayload(o, target) : undefined;
  const legacySig = payload ? await o.signer.sign(payload) : undefined;
  const statement = o.formats.bundle ? bundleStatement(o, target) : undefined;
  const bundleSig = statement ? await o.signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement)) : undefined;
  // Both settle before either failure is thrown: no service request is left unawaited.
  const [l, b] = await Promise.allSettled([
    payload && legacySig ? legacyLayer(o, payload, legacySig) : undefined,
    statement && bundleSig ? bundleBytes(o, target, statement, bundleSig) : undefined,
  ]);
  if (l.status === 'rejected') throw l.reason;
  if (b.status === 'rejected') throw b.reason;
  return {
    ...(payload && l.value ? { legacy: { payload, layer: l.value } } : {}),
    ...(b.value ? { bundle: b.value } : {}),
  };
}

async function pushLegacy(
  o: SignOptions,
  target: SignTarget,
  signed: NonNullable<Signed['legacy']>,
): Promise<SignedTarget['legacy']> {
  const { client, plan } = o;
  const repo = plan.repo;
  const { payload, layer } = signed;
  // The payload uploads while the lock is taken and the tag read; the write waits for it.
  const pushed = withRetries(o, () =>
    client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning, ask: false }),
  );
  const ready = pushed.then(
    () => true,
    () => false,
  );
  const tag = sigTag(target.descriptor.digest);
  // Most often the first signature: the config of a `.sig` holding this layer alone uploads now too.
  const list = sigList(client, repo, tag, [{ bytes: payload, mediaType: MT.cosignSimpleSigning }], ready, [layer]);
  const [upload, write] = await Promise.allSettled([
    pushed,
    rewriteTag(list, addEntries([layer], sameSignatureLayer), o),
  ]);
  // The upload's own error first: a write that waited for a failed upload says less.
  if (upload.status === 'rejected') throw upload.reason;
  if (write.status === 'rejected') throw write.reason;
  return { layer, tag };
}

function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * One signing run's pushes of the empty config every bundle referrer names: once per repository,
 * without asking first (a HEAD saves nothing: the bundle's own upload, two round trips, runs beside it).
 */
type EmptyConfig = (repo: RepoRef) => Promise<unknown>;

function emptyConfigOnce(client: RegistryClient): EmptyConfig {
  const pushes = new Map<string, Promise<unknown>>();
  return (repo) => {
    const key = `${repo.registry}/${repo.repository}`;
    let p = pushes.get(key);
    if (!p) {
      p = client.pushBlob(repo, EMPTY_CONFIG, { mediaType: MT.ociEmpty, ask: false });
      pushes.set(key, p);
      // A failed push is asked for again by the next retry, not taken from here.
      p.catch(() => pushes.delete(key));
    }
    return p;
  };
}

async function pushBundle(
  o: SignOptions,
  target: SignTarget,
  bundle: Uint8Array,
  emptyConfig: EmptyConfig,
): Promise<SignedTarget['bundle']> {
  const { client, plan } = o;
  const repo = plan.repo;
  const subject = target.descriptor;
  const created = rfc3339Seconds((o.now ?? (() => new Date()))());
  const bundleDesc: Descriptor = { mediaType: MT.sigstoreBundle, digest: sha256Digest(bundle), size: bundle.length };
  const referrer = buildBundleReferrer(subject, bundleDesc, COSIGN_SIGN_PREDICATE, created);
  const entry: Descriptor = {
    mediaType: MT.ociManifest,
    size: referrer.length,
    digest: sha256Digest(referrer),
    artifactType: MT.sigstoreBundle,
  };
  const pushed = withRetries(o, async () => {
    await Promise.all([client.pushBlob(repo, bundle, { mediaType: MT.sigstoreBundle, ask: false }), emptyConfig(repo)]);
    return client.pushReferrer(repo, referrer, MT.ociManifest);
  });
  const change = addEntries([entry], (a, b) => a.digest === b.digest);
  const tag = referrersTag(subject.digest);
  if (!client.lacksReferrersApi(repo.registry)) {
    if ((await pushed).subjectProcessed) return { referrer: entry.digest, via: 'referrers-api' };
    await rewriteTag(referrersIndexList(client, repo, tag), change, o);
    return { referrer: entry.digest, via: 'tag-schema' };
  }
  // A registry known to lack the referrers API: the index's lock and read overlap the push, and
  // its write waits for it (and is not made when the registry took the subject after all).
  const listed = pushed.then(
    (p) => !p.subjectProcessed,
    () => false,
  );
  const [push, write] = await Promise.allSettled([
    pushed,
    rewriteTag(referrersIndexList(client, repo, tag, listed), change, o),
  ]);
  if (push.status === 'rejected') throw push.reason;
  if (push.value.subjectProcessed) return { referrer: entry.digest, via: 'referrers-api' };
  if (write.status === 'rejected') throw write.reason;
  return { referrer: entry.digest, via: 'tag-schema' };
}

/**
 * The tags a signing of `digests` rewrites under a lock: each `.sig` (legacy), and each referrers
 * tag schema index where the registry is known to lack the referrers API (bundle); none when they
 * are more than one lock request takes (each write then takes its own as it comes).
 */
export function signingLockKeys(
  client: RegistryClient,
  repo: RepoRef,
  digests: string[],
  formats: { legacy: boolean; bundle: boolean },
): string[] {
  const fallback = formats.bundle && client.lacksReferrersApi(repo.registry);
  const keys = digests.flatMap((d) => [
    ...(formats.legacy ? [tagKey(repo, sigTag(d))] : []),
    ...(fallback ? [tagKey(repo, referrersTag(d))] : []),
  ]);
  return keys.length <= LOCK_BATCH_MAX ? keys : [];
}

/** Most targets (an index's platform manifests) pushed at once, each in both formats at once. */
const TARGETS_AT_ONCE = 4;

/**
 * Signs every target of a plan in the chosen formats. Every signature is made first, one at a
 * time and in order — and with a log or a timestamp authority, every answer verified — so a signer
 * that fails or is cancelled, or a service that fails, leaves nothing written; then the targets are
 * pushed a few at once, both formats of each at once (different tags, different locks).
 * @throws SignatureError SIGNATURE_NOTHING_TO_WRITE, SIGNATURE_WRITE_LOST; SigningServiceError
 *   from the log or timestamp authority (before anything is pushed); RegistryError and
 *   RelayError from the registry; whatever the signer throws (a locked key, a cancelled passkey).
 */
export async function signImage(o: SignOptions): Promise<SignResult> {
  const targets = targetsToSign(o);
  const total = targets.length;
  o.onProgress?.(0, total, 'Signing…');
  const signed: Signed[] = [];
  for (const t of targets) signed.push(await signTarget(o, t));
  let done = 0;
  const emptyConfig = emptyConfigOnce(o.client);
  // The tags' locks in one request as the pushes start, not one each as each write comes.
  const keys = signingLockKeys(
    o.client,
    o.plan.repo,
    targets.map((t) => t.descriptor.digest),
    o.formats,
  );
  const ahead = keys.length > 0 ? o.lock?.ahead?.(keys) : undefined;
  try {
    return await pushTargets(o, targets, signed, emptyConfig, () => {
      done++;
      o.onProgress?.(done, total, `Signed ${done} of ${total}`);
    });
  } finally {
    ahead?.done();
  }
}

/** Pushes each target's signatures, a few targets at once; `pushed` after each target. */
async function pushTargets(
  o: SignOptions,
  targets: SignTarget[],
  signed: Signed[],
  emptyConfig: EmptyConfig,
  pushed: () => void,
): Promise<SignResult> {
  const results = await pool(targets, TARGETS_AT_ONCE, async (t, i) => {
    const r: SignedTarget = { digest: t.descriptor.digest, ...(t.platform ? { platform: t.platform } : {}) };
    const s = signed[i]!;
    // Both run to their end before a failure is thrown, so nothing is left writing behind it.
    const [legacy, bundle] = await Promise.allSettled([
      s.legacy ? pushLegacy(o, t, s.legacy) : undefined,
      s.bundle ? pushBundle(o, t, s.bundle, emptyConfig) : undefined,
    ]);
    for (const p of [legacy, bundle]) if (p.status === 'rejected') throw p.reason;
    if (legacy.status === 'fulfilled' && legacy.value) r.legacy = legacy.value;
    if (bundle.status === 'fulfilled' && bundle.value) r.bundle = bundle.value;
    pushed();
    return r;
  });
  return { digest: o.plan.root.digest, mediaType: o.plan.root.mediaType, targets: results };
}

/** The default identity: repository:tag when the person typed a tag, the repository otherwise. */
export function defaultIdentity(repository: string, tag: string | undefined): string {
  return tag ? `${repository}:${tag}` : repository;
}

/** Parses `k=v` lines or comma-separated pairs. @throws SignatureError SIGNATURE_ANNOTATION_INVALID */
export function parseAnnotations(text: string): Record<string, string> {
  const out: [string, string][] = [];
  for (const part of text.split(/[\n,]/)) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new SignatureError(
        'SIGNATURE_ANNOTATION_INVALID',
        `"${item}" is not an annotation: write it as key=value.`,
      );
    }
    out.push([item.slice(0, eq).trim(), item.slice(eq + 1).trim()]);
  }
  // Own properties, so an annotation named "__proto__" is kept as one; a repeated key: the last.
  return Object.fromEntries(out);
}

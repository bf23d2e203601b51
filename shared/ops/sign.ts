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
 * where the registry gives an ETag, then read back at once and again after a short random delay;
 * a signature seen at any point that is missing is merged back and the manifest rewritten, a
 * bounded number of times.
 */
import { RegistryError, SignatureError } from '../errors.ts';
import { toBase64 } from '../encoding/base64.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { fingerprint } from '../crypto/webcrypto.ts';
import type { RegistryClient, RepoRef } from '../registry/client.ts';
import { MT, isIndexMediaType, type Descriptor, type Platform } from '../registry/mediatypes.ts';
import { isSha256Digest } from '../registry/reference.ts';
import { buildDsseBundle } from '../cosign/bundle.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, buildSignStatement, pae } from '../cosign/dsse.ts';
import {
  EMPTY_CONFIG,
  buildBundleReferrer,
  referrersTag,
  sameSignatureLayer,
  sigLayer,
  sigTag,
} from '../cosign/manifests.ts';
import { buildSimpleSigningPayload } from '../cosign/payload.ts';
import { addEntries, isTransient, referrersIndexList, rewriteTag, sigList, sleep, type TagLock } from './tag-writer.ts';
import type { SigningServices } from './sign-services.ts';

/** Something that signs as cosign does: DER ECDSA over SHA-256, RSA PKCS#1 v1.5 SHA-256, Ed25519. */
export interface Signer {
  algorithm: KeyAlgorithm;
  spki: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
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
  const root = await client.resolve(repo, reference);
  const targets: SignTarget[] = [{ descriptor: root }];
  if (isIndexMediaType(root.mediaType)) {
    const index = await client.getManifest(repo, root.digest);
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
  return { repo: { registry: repo.registry, repository: repo.repository }, root, targets };
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

/** A legacy signature made (and timestamped) but not pushed yet. */
interface LegacySigned {
  payload: Uint8Array;
  layer: Descriptor;
}

/**
 * Signs the legacy payload now; its timestamp (when asked) is fetched and verified in `done`, so
 * that it overlaps the bundle's signing, logging and timestamping.
 */
async function makeLegacy(o: SignOptions, target: SignTarget): Promise<{ done: Promise<LegacySigned> }> {
  const payload = legacyPayload(o, target);
  const signature = await o.signer.sign(payload);
  const layer = sigLayer(payload, toBase64(signature));
  const services = o.services;
  if (!services?.tsa) return { done: Promise.resolve({ payload, layer }) };
  const done = import('./sign-services.ts')
    .then(({ legacyWitnessAnnotations }) => legacyWitnessAnnotations(services, signature))
    .then((extra) => ({ payload, layer: { ...layer, annotations: { ...layer.annotations, ...extra } } }));
  return { done };
}

async function pushLegacy(o: SignOptions, target: SignTarget, made: LegacySigned): Promise<SignedTarget['legacy']> {
  const { client, plan } = o;
  const repo = plan.repo;
  const { payload, layer } = made;
  await withRetries(o, () => client.pushBlob(repo, payload, { mediaType: MT.cosignSimpleSigning }));
  const tag = sigTag(target.descriptor.digest);
  const list = sigList(client, repo, tag, [{ bytes: payload, mediaType: MT.cosignSimpleSigning }]);
  await rewriteTag(list, addEntries([layer], sameSignatureLayer), o);
  return { layer, tag };
}

function rfc3339Seconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The bundle's bytes: signed, and logged and timestamped (each answer verified) when asked. */
async function makeBundle(o: SignOptions, target: SignTarget): Promise<Uint8Array> {
  const statement = bundleStatement(o, target);
  const signature = await o.signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, statement));
  const hint = fingerprint(o.signer.spki).hint;
  if (!o.services?.rekor && !o.services?.tsa) return buildDsseBundle(hint, IN_TOTO_PAYLOAD_TYPE, statement, signature);
  const { witnessedBundle } = await import('./sign-services.ts');
  return witnessedBundle(
    o.services,
    { hint, payloadType: IN_TOTO_PAYLOAD_TYPE, statement, signature, spki: o.signer.spki },
    target.descriptor.digest,
  );
}

async function pushBundle(o: SignOptions, target: SignTarget, bundle: Uint8Array): Promise<SignedTarget['bundle']> {
  const { client, plan } = o;
  const repo = plan.repo;
  const subject = target.descriptor;
  const created = rfc3339Seconds((o.now ?? (() => new Date()))());
  const pushed = await withRetries(o, async () => {
    const bundleDesc = await client.pushBlob(repo, bundle, { mediaType: MT.sigstoreBundle });
    await client.pushBlob(repo, EMPTY_CONFIG, { mediaType: MT.ociEmpty });
    const referrer = buildBundleReferrer(subject, bundleDesc, COSIGN_SIGN_PREDICATE, created);
    return { ...(await client.pushReferrer(repo, referrer, MT.ociManifest)), size: referrer.length };
  });
  if (pushed.subjectProcessed) return { referrer: pushed.digest, via: 'referrers-api' };
  const entry: Descriptor = {
    mediaType: MT.ociManifest,
    size: pushed.size,
    digest: pushed.digest,
    artifactType: MT.sigstoreBundle,
  };
  const list = referrersIndexList(client, repo, referrersTag(subject.digest));
  await rewriteTag(
    list,
    addEntries([entry], (a, b) => a.digest === b.digest),
    o,
  );
  return { referrer: pushed.digest, via: 'tag-schema' };
}

async function makeBoth(o: SignOptions, t: SignTarget): Promise<{ legacy?: LegacySigned; bundle?: Uint8Array }> {
  const legacy = o.formats.legacy ? (await makeLegacy(o, t)).done : undefined;
  // Both settle before either failure is thrown: no timestamp request is left unawaited.
  const [l, b] = await Promise.allSettled([legacy, o.formats.bundle ? makeBundle(o, t) : undefined]);
  if (l.status === 'rejected') throw l.reason;
  if (b.status === 'rejected') throw b.reason;
  return { ...(l.value ? { legacy: l.value } : {}), ...(b.value ? { bundle: b.value } : {}) };
}

/**
 * Signs every target of a plan in the chosen formats.
 * @throws SignatureError SIGNATURE_NOTHING_TO_WRITE, SIGNATURE_WRITE_LOST; SigningServiceError
 *   from the log or timestamp authority (before that target's signature is pushed); RegistryError and
 *   RelayError from the registry; whatever the signer throws (a locked key, a cancelled passkey).
 */
export async function signImage(o: SignOptions): Promise<SignResult> {
  const targets = targetsToSign(o);
  const total = targets.length;
  const results: SignedTarget[] = [];
  o.onProgress?.(0, total, 'Signing…');
  // With a log or a timestamp authority, every signature is made and every answer verified
  // before the first push: a failure then leaves the registry as it was.
  const made: { legacy?: LegacySigned; bundle?: Uint8Array }[] = [];
  if (o.services) for (const t of targets) made.push(await makeBoth(o, t));
  for (const [i, t] of targets.entries()) {
    const m = o.services ? made[i]! : await makeBoth(o, t);
    const r: SignedTarget = { digest: t.descriptor.digest, ...(t.platform ? { platform: t.platform } : {}) };
    if (m.legacy) r.legacy = await pushLegacy(o, t, m.legacy);
    if (m.bundle) r.bundle = await pushBundle(o, t, m.bundle);
    results.push(r);
    o.onProgress?.(i + 1, total, `Signed ${i + 1} of ${total}`);
  }
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

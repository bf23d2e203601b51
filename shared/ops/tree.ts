/**
 * Everything attached to an image, as `cosign tree` lists it and more: for the image (and, for an
 * index, each platform manifest) the legacy tags `sha256-<hex>.sig` (one signature per layer),
 * `.att` (cosign 2 attestations, DSSE envelopes) and `.sbom` (`cosign attach sbom`), and the OCI
 * 1.1 referrers (through the referrers API, or the referrers tag schema's index at `sha256-<hex>`),
 * each referrer by artifact type: Sigstore bundle signatures and attestations (cosign 3), SBOMs
 * and other artifacts (`oras attach`).
 *
 * For each signature or attestation: which known key made it (the key given, the page's keys, the
 * viewer's trusted keys; else a bundle's key hint), the identity it names (the legacy payload's
 * docker-reference, or the statement's subject), its annotations, and whether the given key
 * verifies it — with the same judgement as verify.ts (verify-signature.ts judges the signature;
 * payload.ts, bundle.ts and dsse.ts read what is signed). Reading failures are reported on the
 * node they belong to; buildTree throws only for the image itself.
 * https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
 */
import { SignatureError, VerificationError, reasonOf, type ErrorCode, type Reason } from '../errors.ts';
import { fromBase64 } from '../encoding/base64.ts';
import { algorithmName } from '../crypto/pkcs.ts';
import type { Manifest, RegistryClient, RepoRef } from '../registry/client.ts';
import { explainMediaType, predicateName, type MediaTypeExplanation } from '../registry/explain.ts';
import { MT, isIndexMediaType, type Descriptor } from '../registry/mediatypes.ts';
import { formatReference, manifestReference, parseReference } from '../registry/reference.ts';
import { pool } from './pool.ts';
import {
  indexPlatforms,
  readAttachments,
  readSignatureBlob,
  tooManyLayers,
  tooManyReferrers,
  type Referrer,
  type ReferrersRead,
  type TagFound,
  type TagRead,
} from './attachments.ts';
import { isBundleMediaType, parseBundle } from '../cosign/bundle.ts';
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE, pae, parseStatement, type Statement } from '../cosign/dsse.ts';
import { CERTIFICATE_ANNOTATION, SIGNATURE_ANNOTATION, sigTag } from '../cosign/manifests.ts';
import { parseSimpleSigningPayload, payloadAnnotations } from '../cosign/payload.ts';
import { isObject, parseStrictJson, stringFields, type JsonValue } from '../cosign/strict-json.ts';
import { MAX_PLATFORMS } from '../cosign/limits.ts';
import {
  decodeSignature,
  hintToHex,
  judgeSignature,
  prepareKey,
  prepareKnownKeys,
  type PreparedKey,
} from '../cosign/verify-signature.ts';

/** Where a key the tree knows comes from. */
export type KeySource = 'given' | 'page' | 'trusted';

export interface TreeKey {
  name: string;
  spki: Uint8Array;
  source: KeySource;
}

export interface TreeOptions {
  image: string;
  /** The public key (SPKI DER) whose verdict is shown on every signature; none: "not checked". */
  key?: Uint8Array | null;
  /** Keys that only name who made a signature: the page's own keys, the viewer's trusted keys. */
  knownKeys?: readonly TreeKey[];
  onProgress?: (done: number, total: number, message: string) => void;
  signal?: AbortSignal;
  /** Requests in flight at once (default 6). */
  concurrency?: number;
  /**
   * Read only the image's own `.sig` and referrers: no `.att`, no `.sbom`, no platform of an index
   * (what signed-before.ts needs; two lookups instead of four per node).
   */
  signaturesOnly?: boolean;
  /**
   * The image's manifest or index as the caller reads it (the Sign page's plan, for "signed
   * before?"): used instead of reading it again when it is the one the reference's digest names.
   * With `signaturesOnly` and a reference pinned to a digest, the image's `.sig` and referrers are
   * asked for while it is still being read. Undefined, or rejected: the tree reads it itself.
   */
  top?: Manifest | Promise<Manifest | undefined>;
}

export interface Verdict {
  state: 'verified' | 'fails' | 'not-checked';
  code: ErrorCode | null;
  reason: string;
}

/** Which place an object was found in. */
export type ItemSource = 'sig' | 'att' | 'sbom' | 'referrer';

/** One attached object: a signature, an attestation, an SBOM or another artifact. */
export interface TreeItem {
  /** Unique in the tree: `<tag>#<layer>` for a legacy layer, `referrer <digest>` for a referrer. */
  id: string;
  source: ItemSource;
  kind: 'signature' | 'attestation' | 'sbom' | 'artifact';
  /** "legacy signature", "Sigstore bundle signature", "attestation: SLSA provenance v1", "SBOM (SPDX JSON)". */
  title: string;
  /** The legacy manifest's tag, or null for a referrer. */
  tag: string | null;
  /** The manifest holding it: the `.sig`/`.att`/`.sbom` manifest or the referrer manifest. */
  manifest: string;
  /** The layer's index in a legacy manifest, or null. */
  layerIndex: number | null;
  /** The layer holding the payload, bundle or document (for a referrer, its first layer), or null. */
  layer: Descriptor | null;
  mediaType: string;
  /** A referrer's artifact type (its own, else its config's media type), or null. */
  artifactType: string | null;
  explanation: MediaTypeExplanation;
  /** Annotations of the layer (legacy) or of the referrer manifest. */
  annotations: Record<string, string>;
  /** Annotations inside what is signed (the payload's `optional`, the statement's subject). */
  signedAnnotations: Record<string, string>;
  /** What the signed content names: a docker-reference (legacy) or the statement's subject. */
  identity: { kind: 'docker-reference' | 'subject'; value: string } | null;
  /** The image digest the signed content names, and whether it is this manifest. */
  names: { digest: string | null; matches: boolean } | null;
  predicateType: string | null;
  /** Who made it, when a known key verifies it (or a bundle's key hint says). */
  signer: { fingerprint: string; name: string | null; source: KeySource | 'hint'; algorithm: string | null } | null;
  keyless: boolean;
  verdict: Verdict;
  /** Signatures can be removed (one .sig layer, one referrer); other objects are only shown. */
  removable: boolean;
}

export interface LegacyGroup {
  /** `sha256-<hex>.sig`, `.att` or `.sbom`. */
  tag: string;
  state: 'found' | 'absent' | 'failed';
  /** The digest of the manifest at that tag, when found. */
  manifest: string | null;
  items: TreeItem[];
}

export interface TreeNode {
  digest: string;
  mediaType: string;
  role: 'image' | 'index' | 'platform';
  platform: string | null;
  sig: LegacyGroup;
  att: LegacyGroup;
  sbom: LegacyGroup;
  referrers: {
    via: 'api' | 'tag-schema' | 'failed';
    /** The referrers tag schema's index, when the registry has no referrers API and it exists. */
    fallback: { tag: string; digest: string; entries: number } | null;
    items: TreeItem[];
  };
  errors: Reason[];
  /** Platform manifests, for an index. */
  children: TreeNode[];
}

export interface ImageTree {
  input: string;
  reference: string;
  repo: RepoRef;
  digest: string;
  mediaType: string;
  isIndex: boolean;
  /** The given key, as the verdicts use it; null when none was given. */
  key: { fingerprint: string; algorithm: string; name: string | null } | null;
  /** Why the given key could not be used, when it could not (then every verdict is "not checked"). */
  keyError: Reason | null;
  root: TreeNode;
}

/** A DSSE envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md). */
export interface DsseEnvelope {
  payloadType: string;
  payload: Uint8Array;
  signatures: Uint8Array[];
}

/**
 * Reads a DSSE envelope as cosign 2 stores an attestation in the `.att` tag:
 * `{"payloadType","payload":"<b64>","signatures":[{"keyid","sig":"<b64>"}]}`.
 * @throws SignatureError SIGNATURE_BUNDLE_INVALID with the reason.
 */
export function parseDsseEnvelope(bytes: Uint8Array): DsseEnvelope {
  const bad = (why: string): SignatureError =>
    new SignatureError('SIGNATURE_BUNDLE_INVALID', `The DSSE envelope is not valid: ${why}.`);
  let root;
  try {
    root = parseStrictJson(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad('it is not strict JSON');
  }
  if (!isObject(root)) throw bad('it is not an object');
  if (typeof root.payloadType !== 'string') throw bad('it has no payloadType');
  const payload = typeof root.payload === 'string' ? fromBase64(root.payload) : null;
  if (!payload) throw bad('its payload is not base64');
  if (!Array.isArray(root.signatures) || root.signatures.length === 0) throw bad('it has no signatures');
  const signatures = root.signatures.map((s, i) => {
    const sig = isObject(s) && typeof s.sig === 'string' ? fromBase64(s.sig) : null;
    if (!sig) throw bad(`signature ${i} is not base64`);
    return sig;
  });
  return { payloadType: root.payloadType, payload, signatures };
}

/** A JSON object, from the registry's JSON (strict-json's isObject over a manifest's values). */
function isRecord(v: unknown): v is Record<string, unknown> {
  return isObject(v as JsonValue);
}

interface Ctx {
  client: RegistryClient;
  repo: RepoRef;
  given: PreparedKey | null;
  known: (PreparedKey & { source: KeySource })[];
  concurrency: number;
  signal: AbortSignal | undefined;
  /** The legacy tags read per node. */
  tags: readonly ('sig' | 'att' | 'sbom')[];
  tick(message: string): void;
  grow(n: number): void;
}

function notChecked(reason: string, code: ErrorCode | null = null): Verdict {
  return { state: 'not-checked', code, reason };
}

const NO_KEY = 'No public key given: add one to see whether it verifies this signature.';

/**
 * Finds who made `signature` over `data` among the known keys (the given one first), and judges it
 * with the given key (its reason in words when it fails).
 */
async function judge(
  ctx: Ctx,
  data: Uint8Array,
  signatures: Uint8Array[],
  hint: string | undefined,
  what: string,
): Promise<{
  signer: TreeItem['signer'];
  given: { ok: true; algorithm: string } | { ok: false; reason: Reason } | null;
}> {
  let given: { ok: true; algorithm: string } | { ok: false; reason: Reason } | null = null;
  let signer: TreeItem['signer'] = null;
  if (ctx.given) {
    for (const sig of signatures) {
      const j = await judgeSignature(ctx.given, data, sig, {
        what,
        others: ctx.known,
        ...(hint !== undefined ? { hint } : {}),
      });
      if (j.ok) {
        given = { ok: true, algorithm: j.algorithm };
        signer = {
          fingerprint: ctx.given.fingerprint.hex,
          name: ctx.given.name ?? null,
          source: 'given',
          algorithm: j.algorithm,
        };
        break;
      }
      given ??= { ok: false, reason: j.reason };
    }
  }
  if (!signer) {
    outer: for (const k of ctx.known) {
      if (ctx.given && k.fingerprint.hex === ctx.given.fingerprint.hex) continue;
      for (const sig of signatures) {
        const j = await judgeSignature(k, data, sig, { what });
        if (j.ok) {
          signer = { fingerprint: k.fingerprint.hex, name: k.name ?? null, source: k.source, algorithm: j.algorithm };
          break outer;
        }
      }
    }
  }
  if (!signer && hint !== undefined) {
    const hex = hintToHex(hint);
    if (hex) signer = { fingerprint: hex, name: null, source: 'hint', algorithm: null };
  }
  return { signer, given };
}

/** The verdict of the given key from its judgement and what the signed content names. */
function verdictOf(
  given: Awaited<ReturnType<typeof judge>>['given'],
  names: TreeItem['names'],
  target: string,
  kind: TreeItem['kind'],
  malformed: Reason | null,
): Verdict {
  if (!given) return notChecked(NO_KEY);
  if (!given.ok) return { state: 'fails', code: given.reason.code, reason: given.reason.message };
  if (malformed) return { state: 'fails', code: 'VERIFY_PAYLOAD_MALFORMED', reason: malformed.message };
  if (names && !names.matches) {
    return {
      state: 'fails',
      code: 'VERIFY_DIGEST_MISMATCH',
      reason: `Signed by this key, but it names ${names.digest ?? 'no digest'}, not this manifest (${target}).`,
    };
  }
  const what = kind === 'attestation' ? 'This attestation is signed by this key' : 'Signed by this key';
  return { state: 'verified', code: null, reason: `${what} (${given.algorithm}) and names this manifest.` };
}

function baseItem(
  partial: Pick<TreeItem, 'id' | 'source' | 'kind' | 'title' | 'tag' | 'manifest' | 'layerIndex' | 'layer'> & {
    mediaType: string;
    artifactType?: string | null;
    annotations?: Record<string, string>;
  },
): TreeItem {
  return {
    artifactType: null,
    annotations: {},
    signedAnnotations: {},
    identity: null,
    names: null,
    predicateType: null,
    signer: null,
    keyless: false,
    verdict: notChecked('Not a signature: nothing to verify.'),
    removable: false,
    explanation: explainMediaType(partial.artifactType ?? partial.mediaType),
    ...partial,
  };
}

/** The item of layer `n` of a legacy tag (`.sig`, `.att`, `.sbom`), before it is judged. */
function layerItem(
  group: LegacyGroup,
  layer: Descriptor,
  n: number,
  what: Pick<TreeItem, 'source' | 'kind' | 'title'> & { mediaType?: string },
): TreeItem {
  return baseItem({
    id: `${group.tag}#${n}`,
    source: what.source,
    kind: what.kind,
    title: what.title,
    tag: group.tag,
    manifest: group.manifest!,
    layerIndex: n,
    layer,
    mediaType: what.mediaType ?? mediaTypeOf(layer),
    annotations: { ...(layer.annotations ?? {}) },
  });
}

/** A descriptor's media type, or '' when the registry sent none (or not a string). */
function mediaTypeOf(d: Descriptor): string {
  return typeof d.mediaType === 'string' ? d.mediaType : '';
}

async function readBlob(ctx: Ctx, layer: Descriptor): Promise<Uint8Array> {
  return readSignatureBlob(ctx.client, ctx.repo, layer, 'layer');
}

function statementFacts(
  statement: Statement,
  target: string,
): Pick<TreeItem, 'identity' | 'names' | 'signedAnnotations'> {
  const [alg, hex] = target.split(':') as [string, string];
  const subject = statement.subjects.find((s) => s.digests[alg] === hex);
  const named = statement.subjects.flatMap((s) => Object.entries(s.digests).map(([a, h]) => `${a}:${h}`));
  const first = statement.subjects[0];
  const label = [first?.name, named[0]].filter(Boolean).join('@');
  return {
    identity: label ? { kind: 'subject', value: label } : null,
    names: { digest: subject ? target : (named[0] ?? null), matches: subject !== undefined },
    signedAnnotations: subject?.annotations ?? first?.annotations ?? {},
  };
}

/** One layer of the `.sig` manifest. */
async function sigItem(ctx: Ctx, target: string, group: LegacyGroup, layer: Descriptor, n: number): Promise<TreeItem> {
  const item = layerItem(group, layer, n, {
    source: 'sig',
    kind: 'signature',
    title: 'legacy signature (.sig layer)',
  });
  const annotations = item.annotations;
  item.removable = true;
  if (layer.mediaType !== MT.cosignSimpleSigning) {
    item.verdict = notChecked(`This layer is a ${layer.mediaType}, not a cosign signature payload.`);
    return item;
  }
  let bytes: Uint8Array;
  try {
    bytes = await readBlob(ctx, layer);
  } catch (e) {
    const r = reasonOf(e);
    item.verdict = { state: ctx.given ? 'fails' : 'not-checked', code: r.code, reason: r.message };
    return item;
  }
  let malformed: Reason | null = null;
  try {
    const payload = parseSimpleSigningPayload(bytes);
    item.identity = { kind: 'docker-reference', value: payload.dockerReference };
    item.names = { digest: payload.manifestDigest, matches: payload.manifestDigest === target };
    item.signedAnnotations = payloadAnnotations(payload);
  } catch (e) {
    malformed = reasonOf(e);
  }
  if (CERTIFICATE_ANNOTATION in annotations) {
    item.keyless = true;
    item.title = 'keyless legacy signature (.sig layer)';
    item.verdict = notChecked(
      'Keyless signature (a certificate instead of a key): this page verifies with keys.',
      'VERIFY_KEYLESS',
    );
    return item;
  }
  const sig = decodeSignature(annotations[SIGNATURE_ANNOTATION]);
  if (!sig) {
    const reason = `The layer's ${SIGNATURE_ANNOTATION} annotation is ${SIGNATURE_ANNOTATION in annotations ? 'not standard base64' : 'missing'}.`;
    item.verdict = ctx.given
      ? { state: 'fails', code: 'VERIFY_SIGNATURE_MALFORMED', reason }
      : notChecked(reason, 'VERIFY_SIGNATURE_MALFORMED');
    return item;
  }
  const j = await judge(ctx, bytes, [sig], undefined, 'signature');
  item.signer = j.signer;
  item.verdict = verdictOf(j.given, item.names, target, item.kind, malformed);
  return item;
}

/** One layer of the `.att` manifest: a DSSE envelope holding an in-toto statement. */
async function attItem(ctx: Ctx, target: string, group: LegacyGroup, layer: Descriptor, n: number): Promise<TreeItem> {
  const item = layerItem(group, layer, n, { source: 'att', kind: 'attestation', title: 'attestation (.att layer)' });
  const annotations = item.annotations;
  item.predicateType = annotations.predicateType ?? null;
  let envelope: DsseEnvelope;
  try {
    envelope = parseDsseEnvelope(await readBlob(ctx, layer));
  } catch (e) {
    const r = reasonOf(e);
    item.verdict = notChecked(r.message, r.code);
    return item;
  }
  let malformed: Reason | null = null;
  if (envelope.payloadType === IN_TOTO_PAYLOAD_TYPE) {
    try {
      const statement = parseStatement(envelope.payload);
      item.predicateType = statement.predicateType;
      Object.assign(item, statementFacts(statement, target));
    } catch (e) {
      malformed = reasonOf(e);
    }
  }
  if (item.predicateType) item.title = `attestation: ${predicateName(item.predicateType)} (.att layer)`;
  const j = await judge(
    ctx,
    pae(envelope.payloadType, envelope.payload),
    envelope.signatures,
    undefined,
    'attestation signature',
  );
  item.signer = j.signer;
  item.verdict = verdictOf(j.given, item.names, target, item.kind, malformed);
  return item;
}

/** The item of a referrer whose manifest could not be read. */
function unreadableReferrer(d: Descriptor, reason: Reason): TreeItem {
  const item = baseItem({
    id: `referrer ${d.digest}`,
    source: 'referrer',
    kind: 'artifact',
    title: 'referrer (unreadable)',
    tag: null,
    manifest: d.digest,
    layerIndex: null,
    layer: null,
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
  });
  item.verdict = notChecked(reason.message, reason.code);
  return item;
}

/**
 * The item of a referrer manifest as it describes itself (artifact type, annotations, its bundle
 * layer or first layer), before anything is judged.
 */
function describeReferrer(m: Manifest): { item: TreeItem; bundleLayer: Descriptor | undefined } {
  const json = m.json;
  const layers = (Array.isArray(json.layers) ? json.layers : []).filter(
    (l): l is Descriptor => isRecord(l) && typeof l.mediaType === 'string',
  );
  const config = isRecord(json.config) ? (json.config as unknown as Descriptor) : null;
  const artifactType =
    typeof json.artifactType === 'string'
      ? json.artifactType
      : typeof config?.mediaType === 'string' && config.mediaType !== MT.ociEmpty
        ? config.mediaType
        : (layers[0]?.mediaType ?? null);
  const annotations = isRecord(json.annotations) ? stringFields(json.annotations) : {};
  const bundleLayer = layers.find((l) => isBundleMediaType(l.mediaType));
  const layer = bundleLayer ?? layers[0] ?? null;
  const explained = explainMediaType(artifactType ?? layer?.mediaType ?? '');
  const item = baseItem({
    id: `referrer ${m.descriptor.digest}`,
    source: 'referrer',
    kind: explained.category === 'sbom' ? 'sbom' : 'artifact',
    title: explained.category === 'sbom' ? `SBOM (${explained.title})` : `artifact: ${explained.title}`,
    tag: null,
    manifest: m.descriptor.digest,
    layerIndex: null,
    layer,
    mediaType: layer?.mediaType ?? m.descriptor.mediaType,
    artifactType,
    annotations,
  });
  return { item, bundleLayer };
}

/**
 * Reads the bundle and its statement into the item (kind, title, identity, predicate), then
 * judges its signature with the known keys.
 */
async function judgeBundle(ctx: Ctx, target: string, item: TreeItem, bundleLayer: Descriptor): Promise<TreeItem> {
  item.predicateType = item.annotations['dev.sigstore.bundle.predicateType'] ?? null;
  let bundle;
  try {
    bundle = parseBundle(await readBlob(ctx, bundleLayer));
  } catch (e) {
    const r = reasonOf(e);
    item.kind = 'signature';
    item.title = 'Sigstore bundle (unreadable)';
    item.removable = true;
    item.verdict = ctx.given
      ? { state: 'fails', code: 'VERIFY_PAYLOAD_MALFORMED', reason: r.message }
      : notChecked(r.message, r.code);
    return item;
  }
  let statement: Statement | null = null;
  let malformed: Reason | null = null;
  if (bundle.dsse?.payloadType === IN_TOTO_PAYLOAD_TYPE) {
    try {
      statement = parseStatement(bundle.dsse.payload);
      item.predicateType = statement.predicateType;
      Object.assign(item, statementFacts(statement, target));
    } catch (e) {
      malformed = reasonOf(e);
    }
  }
  const isSignature = statement
    ? statement.predicateType === COSIGN_SIGN_PREDICATE
    : item.predicateType === COSIGN_SIGN_PREDICATE || item.predicateType === null;
  item.kind = isSignature ? 'signature' : 'attestation';
  item.removable = isSignature;
  item.title = isSignature
    ? 'Sigstore bundle signature (referrer)'
    : `attestation: ${predicateName(item.predicateType ?? 'unknown predicate')} (Sigstore bundle)`;
  if (bundle.material.kind === 'certificate') {
    item.keyless = true;
    item.verdict = notChecked(
      'Keyless signature (a certificate instead of a key): this page verifies with keys.',
      'VERIFY_KEYLESS',
    );
    return item;
  }
  if (!bundle.dsse) {
    item.verdict = notChecked('This bundle signs a blob digest (a message signature), not an image statement.');
    return item;
  }
  const hint = bundle.material.kind === 'publicKey' ? bundle.material.hint : undefined;
  const j = await judge(
    ctx,
    pae(bundle.dsse.payloadType, bundle.dsse.payload),
    bundle.dsse.signatures,
    hint,
    isSignature ? 'signature' : 'attestation signature',
  );
  item.signer = j.signer;
  item.verdict = verdictOf(j.given, item.names, target, item.kind, malformed);
  return item;
}

/** One referrer manifest: read (on demand), described, and judged when it holds a bundle about `target`. */
async function referrerItem(ctx: Ctx, target: string, referrer: Referrer): Promise<TreeItem> {
  let m: Manifest;
  try {
    m = await referrer.manifest();
  } catch (e) {
    return unreadableReferrer(referrer.descriptor, reasonOf(e));
  }
  const { item, bundleLayer } = describeReferrer(m);
  // The fallback index is a tag anyone who can push may edit: a referrer it lists may be about
  // another manifest. Such a one is shown, never counted or removed as a signature of this one.
  const json = m.json;
  const subject = isRecord(json.subject) && typeof json.subject.digest === 'string' ? json.subject.digest : null;
  if (subject !== target) {
    const about = subject ? `another manifest (${subject})` : 'no manifest (it has no subject)';
    item.kind = 'artifact';
    item.title = `${item.title} — listed here, but about ${about}`;
    item.verdict = notChecked(
      `Listed among this manifest's referrers, but about ${about}: it is not judged or removed here.`,
      'VERIFY_DIGEST_MISMATCH',
    );
    return item;
  }
  if (!bundleLayer) return item;
  return judgeBundle(ctx, target, item, bundleLayer);
}

/**
 * Records a legacy tag's lookup in its group (and a failure or the layer limit among the node's
 * errors); the tag when it was found.
 */
function recordTag(node: TreeNode, group: LegacyGroup, read: TagRead): TagFound | null {
  if (read.state !== 'found') {
    group.state = read.state;
    if (read.state === 'failed') node.errors.push(read.reason);
    return null;
  }
  group.state = 'found';
  group.manifest = read.manifest.descriptor.digest;
  const tooMany = tooManyLayers(read);
  if (tooMany) node.errors.push(tooMany);
  return read;
}

/** The `.sbom` layer `n`: an SBOM document, shown, never judged. */
function sbomItem(group: LegacyGroup, layer: Descriptor, n: number): TreeItem {
  const explained = explainMediaType(layer.mediaType);
  return layerItem(group, layer, n, {
    source: 'sbom',
    kind: 'sbom',
    title: `SBOM (${explained.title}, .sbom layer)`,
    mediaType: layer.mediaType,
  });
}

/** The items of a found legacy tag's layers: `each` for `.sig` and `.att`, sbomItem when null. */
async function legacyItems(
  ctx: Ctx,
  node: TreeNode,
  group: LegacyGroup,
  found: TagFound,
  each: ((ctx: Ctx, target: string, group: LegacyGroup, layer: Descriptor, n: number) => Promise<TreeItem>) | null,
): Promise<void> {
  ctx.grow(found.layers.length);
  group.items = await pool(found.layers, ctx.concurrency, async (entry, n) => {
    ctx.signal?.throwIfAborted();
    try {
      const layer = usableLayer(entry, group.tag, n);
      return each ? await each(ctx, node.digest, group, layer, n) : sbomItem(group, layer, n);
    } catch (e) {
      // One bad layer is shown (and, in .sig, can be removed); it does not hide the others.
      if (ctx.signal?.aborted) throw e;
      return unreadableLayer(group, entry, n, reasonOf(e));
    } finally {
      ctx.tick(`Read ${group.tag} layer ${n}`);
    }
  });
}

/**
 * A layer descriptor with the fields every reader needs.
 * @throws VerificationError VERIFY_LAYER_MISMATCH saying what is missing.
 */
function usableLayer(entry: unknown, tag: string, n: number): Descriptor {
  const bad = (why: string): VerificationError =>
    new VerificationError('VERIFY_LAYER_MISMATCH', `Layer ${n} of ${tag} ${why}, so it cannot be read.`);
  if (!isRecord(entry)) throw bad('is not a descriptor (not a JSON object)');
  const d = entry as Record<string, unknown>;
  if (typeof d.mediaType !== 'string') throw bad('has no mediaType');
  if (typeof d.digest !== 'string') throw bad('has no digest');
  if (typeof d.size !== 'number') throw bad('has no size');
  if (d.annotations !== undefined && !isRecord(d.annotations)) throw bad('has annotations that are not an object');
  return d as unknown as Descriptor;
}

/** The item of a layer that could not be read: its reason shown, removable when it is a .sig layer naming a digest. */
function unreadableLayer(group: LegacyGroup, entry: unknown, n: number, reason: Reason): TreeItem {
  const source: ItemSource = group.tag.endsWith('.sig') ? 'sig' : group.tag.endsWith('.att') ? 'att' : 'sbom';
  const d = isRecord(entry) ? entry : null;
  const layer = d && typeof d.digest === 'string' ? (d as unknown as Descriptor) : null;
  const annotations = d && isRecord(d.annotations) ? stringFields(d.annotations) : {};
  const item = baseItem({
    id: `${group.tag}#${n}`,
    source,
    kind: source === 'sig' ? 'signature' : source === 'att' ? 'attestation' : 'sbom',
    title: `unreadable layer (.${source} layer)`,
    tag: group.tag,
    manifest: group.manifest!,
    layerIndex: n,
    layer,
    mediaType: d && typeof d.mediaType === 'string' ? d.mediaType : '',
    annotations,
  });
  item.verdict = notChecked(reason.message, reason.code);
  // Removal names a .sig layer by its digest (and signature annotation); one without a digest cannot be named.
  item.removable = source === 'sig' && layer !== null;
  return item;
}

/** Records the referrers' lookup in the node (a failure or the limit among its errors); the referrers read. */
function recordReferrers(node: TreeNode, read: ReferrersRead): Referrer[] {
  if (read.state === 'failed') {
    node.referrers.via = 'failed';
    node.errors.push(read.reason);
    return [];
  }
  node.referrers.via = read.via;
  if (read.fallback && read.descriptors.length > 0) {
    node.referrers.fallback = { ...read.fallback, entries: read.descriptors.length };
  }
  const tooMany = tooManyReferrers(read, 'manifest');
  if (tooMany) node.errors.push(tooMany);
  return read.referrers;
}

async function referrerItems(ctx: Ctx, node: TreeNode, referrers: Referrer[]): Promise<void> {
  ctx.grow(referrers.length);
  node.referrers.items = await pool(referrers, ctx.concurrency, async (referrer) => {
    ctx.signal?.throwIfAborted();
    try {
      return await referrerItem(ctx, node.digest, referrer);
    } finally {
      ctx.tick(`Read referrer ${referrer.descriptor.digest.slice(0, 19)}…`);
    }
  });
}

function newNode(digest: string, mediaType: string, role: TreeNode['role'], platform: string | null): TreeNode {
  const base = digest.replace(':', '-');
  const group = (suffix: string): LegacyGroup => ({
    tag: `${base}.${suffix}`,
    state: 'absent',
    manifest: null,
    items: [],
  });
  return {
    digest,
    mediaType,
    role,
    platform,
    sig: { ...group('sig'), tag: sigTag(digest) },
    att: group('att'),
    sbom: group('sbom'),
    referrers: { via: 'tag-schema', fallback: null, items: [] },
    errors: [],
    children: [],
  };
}

/** The lookups of what is attached to the manifest `digest`. */
function readNode(ctx: Ctx, digest: string): ReturnType<typeof readAttachments> {
  return readAttachments(ctx.client, ctx.repo, digest, {
    tags: ctx.tags,
    concurrency: ctx.concurrency,
    signal: ctx.signal,
    onLookup: ctx.tick,
  });
}

/**
 * Reads everything attached to the node's manifest (or takes the reads already started for it),
 * then makes an item of each object, all groups at once.
 */
async function fillNode(ctx: Ctx, node: TreeNode, started?: ReturnType<typeof readAttachments>): Promise<void> {
  const read = await (started ?? readNode(ctx, node.digest));
  const sig = recordTag(node, node.sig, read.tags.sig);
  const att = read.tags.att ? recordTag(node, node.att, read.tags.att) : null;
  const sbom = read.tags.sbom ? recordTag(node, node.sbom, read.tags.sbom) : null;
  const referrers = recordReferrers(node, read.referrers);
  await Promise.all([
    sig && legacyItems(ctx, node, node.sig, sig, sigItem),
    att && legacyItems(ctx, node, node.att, att, attItem),
    sbom && legacyItems(ctx, node, node.sbom, sbom, null),
    referrerItems(ctx, node, referrers),
  ]);
}

/** Every item under a node, in display order: .sig, .att, .sbom, referrers. */
export function nodeItems(node: TreeNode): TreeItem[] {
  return [...node.sig.items, ...node.att.items, ...node.sbom.items, ...node.referrers.items];
}

/** The given key (or why it cannot be used) and the known keys, the given one named when it is known. */
async function treeKeys(
  opts: TreeOptions,
): Promise<{ given: PreparedKey | null; keyError: Reason | null; known: Ctx['known'] }> {
  let given: PreparedKey | null = null;
  let keyError: Reason | null = null;
  if (opts.key) {
    try {
      given = await prepareKey(opts.key);
    } catch (e) {
      keyError = reasonOf(e);
    }
  }
  const known: Ctx['known'] = (await prepareKnownKeys(opts.knownKeys)).map(({ key, from }) => ({
    ...key,
    source: from.source,
  }));
  if (given) {
    const named = known.find((k) => k.fingerprint.hex === given!.fingerprint.hex);
    if (named?.name) given = { ...given, name: named.name };
  }
  return { given, keyError, known };
}

/** The node of the image or index, with (at most MAX_PLATFORMS) platform nodes for an index. */
function rootNode(top: Manifest): TreeNode {
  const isIndex = isIndexMediaType(top.descriptor.mediaType);
  const root = newNode(top.descriptor.digest, top.descriptor.mediaType, isIndex ? 'index' : 'image', null);
  if (!isIndex) return root;
  const { platforms, listed } = indexPlatforms(top);
  if (listed > MAX_PLATFORMS) {
    root.errors.push({
      code: 'VERIFY_TOO_MANY',
      message: `The index lists ${listed} platform manifests; this page reads the first ${MAX_PLATFORMS}.`,
    });
  }
  for (const c of platforms) root.children.push(newNode(c.digest, c.mediaType, 'platform', c.platform));
  return root;
}

/**
 * Lists what is attached to an image and to each platform of an index.
 * @throws RegistryError/RelayError when the image itself cannot be read, RegistryError
 *   REGISTRY_REFERENCE_INVALID for a bad reference, the signal's reason when it aborts. Failures
 *   below the image are reported on their node.
 */
export async function buildTree(client: RegistryClient, opts: TreeOptions): Promise<ImageTree> {
  const ref = parseReference(opts.image);
  const repo: RepoRef = { registry: ref.registry, repository: ref.repository };
  const { given, keyError, known } = await treeKeys(opts);
  let done = 0;
  let total = 1;
  const ctx: Ctx = {
    client,
    repo,
    given,
    known,
    concurrency: Math.max(1, opts.concurrency ?? 6),
    signal: opts.signal,
    tags: opts.signaturesOnly ? ['sig'] : ['sig', 'att', 'sbom'],
    tick: (message) => {
      done++;
      opts.onProgress?.(done, total, message);
    },
    grow: (n) => {
      total += n;
      opts.onProgress?.(done, total, 'Reading attached objects');
    },
  };
  opts.onProgress?.(0, 1, `Resolving ${formatReference(ref)}`);
  // The image's own lookups need only its digest: with it typed, they overlap reading the image.
  const early = opts.signaturesOnly && ref.digest !== undefined ? readNode(ctx, ref.digest) : undefined;
  early?.catch(() => undefined); // awaited below, or dropped with the error that ends the tree
  const read = await Promise.resolve(opts.top).catch(() => undefined);
  const top =
    read && ref.digest !== undefined && read.descriptor.digest === ref.digest
      ? read
      : await client.getManifest(repo, manifestReference(ref));
  ctx.signal?.throwIfAborted();
  ctx.tick('Resolved the image');
  const isIndex = isIndexMediaType(top.descriptor.mediaType);
  const root = rootNode(top);
  const nodes = opts.signaturesOnly ? [root] : [root, ...root.children];
  ctx.grow(nodes.length * (ctx.tags.length + 1));
  await pool(nodes, 2, (n) => fillNode(ctx, n, n === root && root.digest === ref.digest ? early : undefined));
  ctx.signal?.throwIfAborted();
  return {
    input: opts.image,
    reference: formatReference(ref),
    repo,
    digest: top.descriptor.digest,
    mediaType: top.descriptor.mediaType,
    isIndex,
    key: given
      ? { fingerprint: given.fingerprint.hex, algorithm: algorithmName(given.algorithm), name: given.name ?? null }
      : null,
    keyError,
    root,
  };
}

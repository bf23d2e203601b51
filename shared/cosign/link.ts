/**
 * Verification links: everything a verification needs, in the URL fragment, so opening the link
 * runs it in the viewer's browser through the relay that served the page (and nothing of it
 * reaches a server log). A public interface: keep the format exactly.
 *
 *   #/verify?image=<url-encoded reference>&key=<url-encoded PEM public key, or base64url SPKI DER>
 *            [&identity=<mode>] [&annotations=<k=v,k=v…>] [&platforms=all] [Sigstore parameters]
 *
 * The Sigstore parameters (sigstore-params.ts: certificateIdentity, certificateOidcIssuer, their
 * regular expressions, the GitHub workflow claims, trustedRoot, caRoots, caIntermediates,
 * rekorPublicKey, tlog) come after; with a certificate identity and issuer, `key` may be left out.
 * `containersPolicy=<base64url of a containers-policy.json text>` applies that policy instead of
 * the key, identity and trust parameters (ops/containers-policy/); `key` may then be left out.
 *   identity=exactReference  also reads &dockerReference=<reference>
 *   identity=exactRepository also reads &dockerRepository=<repository>
 *   identity=remapIdentity   also reads &prefix=<prefix>&signedPrefix=<prefix>
 *
 * Modes: ignore (the default: cosign's rule, identity not checked), matchRepoDigestOrExact,
 * matchExact, matchRepository, exactReference, exactRepository, remapIdentity
 * (containers-policy.json(5) `signedIdentity`). In `annotations`, each key and value is itself
 * percent-encoded (so a value may hold "," or "="), pairs are joined by ",". Values are decoded
 * with decodeURIComponent: "+" is a plus sign, never a space.
 */
import { VerificationError } from '../errors.ts';
import { decode, rawParams, unformKey } from './fragment.ts';
import { fromBase64Url, toBase64Url, utf8 } from '../encoding/base64.ts';
import { parsePublicKey } from '../crypto/keys.ts';
import type { KeyAlgorithm } from '../crypto/pkcs.ts';
import { IDENTITY_MODES, checkIdentityRule, type IdentityRule } from './identity.ts';
import { formatReference, parseReference } from '../registry/reference.ts';
import { hasCertificatePolicy, readSigstoreParams, sigstoreQuery, type SigstoreParams } from './sigstore-params.ts';

export const VERIFY_ROUTE = '/verify';

export interface VerificationLinkInput {
  /** The image; it must name a digest (a tag, if any, is kept beside it). */
  image: string;
  /** The public key, SubjectPublicKeyInfo DER; may be absent when `sigstore` names a certificate identity. */
  spki?: Uint8Array | undefined;
  sigstore?: SigstoreParams | undefined;
  identity?: IdentityRule;
  annotations?: Record<string, string>;
  /** Every platform of an index must be signed (`&platforms=all`). */
  requireEveryPlatform?: boolean;
  /** A containers-policy.json text to apply instead of the key and identity (`&containersPolicy=`). */
  containersPolicy?: string | undefined;
}

export interface ParsedVerificationLink {
  image: string;
  /** The key as the link gave it (PEM or base64url), or null when it names a certificate identity only. */
  keyText: string | null;
  spki: Uint8Array | null;
  /** The key's algorithm, read with it (so the page need not read the key again). */
  algorithm: KeyAlgorithm | null;
  sigstore: SigstoreParams;
  identity: IdentityRule;
  /** False when the link had no `identity` (cosign's rule applies, and the result says so). */
  identityGiven: boolean;
  annotations: Record<string, string>;
  requireEveryPlatform: boolean;
  /** The containers-policy.json text the link carries, or null. */
  containersPolicy: string | null;
}

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_LINK_INVALID', `This verification link is not valid: ${why}.`);
}

/** Percent-encodes an annotation key or value so "," and "=" survive inside the list. */
function encodePart(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The `annotations` value: `k=v` pairs, sorted by key, each part percent-encoded, joined by ",". */
export function encodeAnnotations(annotations: Record<string, string>): string {
  return Object.keys(annotations)
    .sort()
    .map((k) => `${encodePart(k)}=${encodePart(annotations[k]!)}`)
    .join(',');
}

/** Reads an `annotations` value. @throws VerificationError VERIFY_LINK_INVALID */
export function decodeAnnotations(text: string): Record<string, string> {
  const out: [string, string][] = [];
  for (const pair of text.split(',')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid(`the annotation "${pair}" is not key=value`);
    try {
      out.push([decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1))]);
    } catch {
      throw invalid(`the annotation "${pair}" is not properly percent-encoded`);
    }
  }
  // Own properties, so an annotation named "__proto__" is kept as one; a repeated key: the last.
  return Object.fromEntries(out);
}

/** The query part (after `?`) for a verification, in the canonical order. */
function verificationQuery(input: {
  image: string;
  key: string | undefined;
  sigstore?: SigstoreParams | undefined;
  identity?: IdentityRule;
  annotations?: Record<string, string>;
  requireEveryPlatform?: boolean;
  containersPolicy?: string | undefined;
}): string {
  const parts: [string, string][] = [['image', input.image]];
  if (input.key) parts.push(['key', input.key]);
  const id = input.identity;
  if (id && id.type !== 'ignore') {
    parts.push(['identity', id.type]);
    if (id.type === 'exactReference') parts.push(['dockerReference', id.dockerReference]);
    if (id.type === 'exactRepository') parts.push(['dockerRepository', id.dockerRepository]);
    if (id.type === 'remapIdentity') parts.push(['prefix', id.prefix], ['signedPrefix', id.signedPrefix]);
  }
  const ann = input.annotations ? encodeAnnotations(input.annotations) : '';
  const query = parts.map(([k, v]) => `${k}=${encodeURIComponent(v)}`);
  // Already percent-encoded per part; only the separators "," and "=" stay literal.
  if (ann) query.push(`annotations=${ann}`);
  if (input.requireEveryPlatform) query.push('platforms=all');
  if (input.sigstore) query.push(...sigstoreQuery(input.sigstore));
  if (input.containersPolicy) query.push(`containersPolicy=${toBase64Url(utf8(input.containersPolicy))}`);
  return query.join('&');
}

/**
 * The canonical verification link: the image pinned to its digest, the key as base64url of the
 * SPKI DER, the identity rule and annotations when given.
 * @throws VerificationError VERIFY_LINK_INVALID when the image names no digest;
 *   RegistryError REGISTRY_REFERENCE_INVALID when it is not a reference; KeyError for a bad key.
 */
export function verificationLink(origin: string, input: VerificationLinkInput): string {
  const ref = parseReference(input.image);
  if (!ref.digest) throw invalid(`the image "${input.image}" must be pinned to a digest (…@sha256:…)`);
  const spki = input.spki ? parsePublicKey(toBase64Url(input.spki)).spki : undefined;
  if (!spki && !(input.sigstore && hasCertificatePolicy(input.sigstore)) && !input.containersPolicy)
    throw invalid('it needs a public key, a certificate identity or a containers policy');
  const identity = input.identity ? checkIdentityRule(input.identity) : undefined;
  const query = verificationQuery({
    image: formatReference(ref),
    key: spki ? toBase64Url(spki) : undefined,
    ...(input.sigstore ? { sigstore: input.sigstore } : {}),
    ...(identity ? { identity } : {}),
    ...(input.annotations ? { annotations: input.annotations } : {}),
    ...(input.requireEveryPlatform ? { requireEveryPlatform: true } : {}),
    ...(input.containersPolicy ? { containersPolicy: input.containersPolicy } : {}),
  });
  return `${new URL(origin).origin}/#${VERIFY_ROUTE}?${query}`;
}

/**
 * Reads a verification link, its fragment (`#/verify?…`), or just the part after `#`.
 * @throws VerificationError VERIFY_LINK_INVALID (with what is missing or wrong), or the KeyError
 *   and VerificationError VERIFY_POLICY_INVALID of a bad key or identity rule.
 */
export function parseVerificationLink(link: string): ParsedVerificationLink {
  const hash = link.includes('#') ? link.slice(link.indexOf('#') + 1) : link;
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  if (path !== VERIFY_ROUTE) throw invalid(`it opens "${path || '/'}", not ${VERIFY_ROUTE}`);
  return readVerificationQuery(q < 0 ? '' : hash.slice(q + 1));
}

/**
 * Reads the query of a verification link (after `?`, still percent-encoded), as the page's router
 * hands it over.
 * @throws as {@link parseVerificationLink}.
 */
export function readVerificationQuery(query: string): ParsedVerificationLink {
  const params = rawParams(query);
  const get = (name: string): string | undefined => {
    const raw = params.get(name);
    return raw === undefined ? undefined : decode(raw, name);
  };
  const image = get('image')?.trim();
  if (!image) throw invalid('it names no image (image=…)');
  const sigstore = readSigstoreParams(get);
  const containersPolicy = readContainersPolicy(get('containersPolicy'));
  let rawKey = params.get('key');
  if ((rawKey === undefined || rawKey === '') && !hasCertificatePolicy(sigstore) && containersPolicy === null)
    throw invalid(
      'it carries no public key (key=…), no certificate identity (certificateIdentity=…) and no containers policy (containersPolicy=…)',
    );
  let keyText: string | null = null;
  let spki: Uint8Array | null = null;
  let algorithm: KeyAlgorithm | null = null;
  if (rawKey) {
    rawKey = unformKey(rawKey);
    keyText = decode(rawKey, 'key').trim();
    ({ spki, algorithm } = parsePublicKey(keyText));
  }
  const mode = get('identity');
  let identity: IdentityRule = { type: 'ignore' };
  if (mode !== undefined && mode !== '') {
    if (!(IDENTITY_MODES as readonly string[]).includes(mode))
      throw invalid(`"${mode}" is not an identity mode (${IDENTITY_MODES.join(', ')})`);
    identity = checkIdentityRule({
      type: mode,
      dockerReference: get('dockerReference') ?? '',
      dockerRepository: get('dockerRepository') ?? '',
      prefix: get('prefix') ?? '',
      signedPrefix: get('signedPrefix') ?? '',
    } as IdentityRule);
  }
  let rawAnnotations = params.get('annotations');
  // Tolerate a list encoded as a whole ("a%3Db%2Cc%3Dd") instead of part by part.
  if (rawAnnotations && !rawAnnotations.includes('=')) rawAnnotations = decode(rawAnnotations, 'annotations');
  const platforms = get('platforms');
  if (platforms !== undefined && platforms !== 'all' && platforms !== '')
    throw invalid(`platforms must be "all", not "${platforms}"`);
  return {
    image,
    keyText,
    spki,
    algorithm,
    sigstore,
    identity,
    identityGiven: mode !== undefined && mode !== '',
    annotations: rawAnnotations ? decodeAnnotations(rawAnnotations) : {},
    requireEveryPlatform: platforms === 'all',
    containersPolicy,
  };
}

/** The `containersPolicy` value: base64url of UTF-8 text. @throws VerificationError VERIFY_LINK_INVALID */
function readContainersPolicy(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  const bytes = fromBase64Url(value.trim());
  let text: string | null;
  try {
    text = bytes ? new TextDecoder('utf-8', { fatal: true }).decode(bytes) : null;
  } catch {
    text = null;
  }
  if (text === null) throw invalid('containersPolicy must be the base64url (no padding) of a UTF-8 policy text');
  return text;
}

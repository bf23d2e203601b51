/**
 * Identity rules: does the identity a signature claims (`critical.identity.docker-reference` of a
 * legacy payload) fit the image being verified? The rules are containers-policy.json(5)'s
 * `sigstoreSigned.signedIdentity`, implemented as containers/image does
 * (signature/policy_reference_match.go, https://github.com/containers/image), plus cosign's own
 * rule, which is to ignore the identity (`cosign verify` never reads it).
 *
 * References are compared in the fully normalised form of distribution/reference
 * (`docker.io/library/alpine:latest`), as `reference.Named.String()` and `.Name()` give them.
 * Found with skopeo 1.18: matchRepoDigestOrExact and matchExact refuse a repository-only identity
 * (what cosign writes) whether the image is pulled by tag or by digest; matchRepository takes it.
 */
import { RegistryError, VerificationError } from '../errors.ts';
import { DEFAULT_TAG, parseReference, type ImageReference } from '../registry/reference.ts';

export const IDENTITY_MODES = [
  'ignore',
  'matchRepoDigestOrExact',
  'matchExact',
  'matchRepository',
  'exactReference',
  'exactRepository',
  'remapIdentity',
] as const;

export type IdentityMode = (typeof IDENTITY_MODES)[number];

/** `ignore` is cosign's rule; the others are containers-policy.json(5) `signedIdentity` objects. */
export type IdentityRule =
  | { type: 'ignore' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** A reference as distribution/reference's `Named` holds it: full name, optional tag and digest. */
export interface NamedReference {
  /** `registry/repository`, normalised (`docker.io/library/alpine`). */
  name: string;
  tag?: string;
  digest?: string;
}

export interface IdentityOutcome {
  match: boolean;
  /** A sentence saying what was compared with what. */
  detail: string;
}

// distribution/reference's grammar (regexp.go), for remapIdentity's prefix check.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const DOMAIN_PREFIX_RE = new RegExp(`^${DOMAIN}/`);
const NAME_RE = new RegExp(`^${NAME}$`);

/** The `Named` form of a parsed reference. */
export function namedReference(ref: ImageReference): NamedReference {
  return {
    name: `${ref.registry}/${ref.repository}`,
    ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
    ...(ref.digest !== undefined ? { digest: ref.digest } : {}),
  };
}

/**
 * Parses as distribution/reference's ParseNormalizedNamed does.
 * @throws RegistryError REGISTRY_REFERENCE_INVALID
 */
export function parseNamed(text: string): NamedReference {
  return namedReference(parseReference(text));
}

/** `Named.String()`: `name[:tag][@digest]`. */
export function namedString(r: NamedReference): string {
  return r.name + (r.tag !== undefined ? `:${r.tag}` : '') + (r.digest !== undefined ? `@${r.digest}` : '');
}

function isNameOnly(r: NamedReference): boolean {
  return r.tag === undefined && r.digest === undefined;
}

/**
 * The reference an image is verified as, the way containers/image's docker transport holds it: a
 * name without tag or digest gets `:latest`. A reference with both a tag and a digest (which that
 * transport refuses) is fetched by its digest and matched as if pulled by its tag.
 */
export function intendedReference(ref: ImageReference): NamedReference {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) return { name, tag: ref.tag };
  if (ref.digest !== undefined) return { name, digest: ref.digest };
  return { name, tag: DEFAULT_TAG };
}

function invalid(why: string): VerificationError {
  return new VerificationError('VERIFY_POLICY_INVALID', why);
}

function parsesAsNamed(text: string): NamedReference | null {
  try {
    return parseNamed(text);
  } catch (e) {
    if (e instanceof RegistryError) return null;
    throw e;
  }
}

/** containers/image's validateIdentityRemappingPrefix: `host[:port]`, or a name starting with one. */
export function isValidRemapPrefix(s: string): boolean {
  return DOMAIN_RE.test(s) || (NAME_RE.test(s) && DOMAIN_PREFIX_RE.test(s));
}

/**
 * Checks a rule's parameters as containers/image does when it loads a policy, and returns a copy
 * holding only the fields of its type.
 * @throws VerificationError VERIFY_POLICY_INVALID with what is wrong.
 */
export function checkIdentityRule(rule: IdentityRule): IdentityRule {
  switch (rule.type) {
    case 'ignore':
    case 'matchRepoDigestOrExact':
    case 'matchExact':
    case 'matchRepository':
      return { type: rule.type };
    case 'exactReference': {
      const r = parsesAsNamed(rule.dockerReference ?? '');
      if (!r) throw invalid(`exactReference: "${rule.dockerReference ?? ''}" is not a valid image reference.`);
      if (isNameOnly(r))
        throw invalid(`exactReference: "${rule.dockerReference}" has neither a tag nor a digest; it must name one.`);
      return { type: 'exactReference', dockerReference: rule.dockerReference };
    }
    case 'exactRepository':
      if (!parsesAsNamed(rule.dockerRepository ?? ''))
        throw invalid(`exactRepository: "${rule.dockerRepository ?? ''}" is not a valid repository.`);
      return { type: 'exactRepository', dockerRepository: rule.dockerRepository };
    case 'remapIdentity':
      for (const [field, value] of [
        ['prefix', rule.prefix],
        ['signedPrefix', rule.signedPrefix],
      ] as const) {
        if (typeof value !== 'string' || !isValidRemapPrefix(value))
          throw invalid(
            `remapIdentity: ${field} "${value ?? ''}" must be host[:port] or a repository (namespace) that starts with one, e.g. "docker.io/library".`,
          );
      }
      return { type: 'remapIdentity', prefix: rule.prefix, signedPrefix: rule.signedPrefix };
    default:
      throw invalid(`"${(rule as { type: unknown }).type}" is not an identity rule.`);
  }
}

/** A short sentence saying what a rule demands. */
export function describeIdentityRule(rule: IdentityRule): string {
  switch (rule.type) {
    case 'ignore':
      return "Identity not checked (cosign's rule: cosign verify ignores the reference a signature names).";
    case 'matchRepoDigestOrExact':
      return 'matchRepoDigestOrExact: the signature must name this tag exactly, or, when verifying by digest, this repository with a tag or digest.';
    case 'matchExact':
      return 'matchExact: the signature must name exactly the reference verified (tag or digest).';
    case 'matchRepository':
      return 'matchRepository: the signature must name this repository (any tag).';
    case 'exactReference':
      return `exactReference: the signature must name exactly ${rule.dockerReference}.`;
    case 'exactRepository':
      return `exactRepository: the signature must name the repository ${rule.dockerRepository}.`;
    case 'remapIdentity':
      return `remapIdentity: references under ${rule.prefix} are matched as if under ${rule.signedPrefix}, then as matchRepoDigestOrExact.`;
  }
}

/** The rule as a containers-policy.json(5) `signedIdentity` object (`ignore` has none: null). */
export function signedIdentityJson(rule: IdentityRule): Record<string, string> | null {
  return rule.type === 'ignore' ? null : { ...rule };
}

function sameString(
  intended: NamedReference,
  signed: NamedReference,
  signedText: string,
  rule: string,
): IdentityOutcome {
  const want = namedString(intended);
  const got = namedString(signed);
  return got === want
    ? { match: true, detail: `The signature names ${got}, as ${rule} requires.` }
    : { match: false, detail: `The signature names ${signedText}; ${rule} requires exactly ${want}.` };
}

function sameName(intended: NamedReference, signed: NamedReference, signedText: string, rule: string): IdentityOutcome {
  return signed.name === intended.name
    ? {
        match: true,
        detail: `The signature names ${signedText}, in the repository ${intended.name} as ${rule} requires.`,
      }
    : {
        match: false,
        detail: `The signature names ${signedText}, not the repository ${intended.name} that ${rule} requires.`,
      };
}

/** containers/image's matchRepoDigestOrExactReferenceValues. */
function repoDigestOrExact(
  intended: NamedReference,
  signed: NamedReference,
  signedText: string,
  rule: string,
): IdentityOutcome {
  if (isNameOnly(signed)) {
    return {
      match: false,
      detail: `The signature names only the repository ${signedText} (as cosign writes it); ${rule} needs a tag or digest there. matchRepository accepts such signatures.`,
    };
  }
  if (intended.tag !== undefined) return sameString(intended, signed, signedText, rule);
  return sameName(intended, signed, signedText, rule);
}

/** containers/image's prmRemapIdentity.refMatchesPrefix: on `Name()`, at a `/` boundary. */
function matchesPrefix(name: string, prefix: string): boolean {
  if (name.length < prefix.length) return false;
  if (name.length === prefix.length) return name === prefix;
  return name.startsWith(prefix) && name[prefix.length] === '/';
}

/**
 * Applies a remapIdentity rule to the intended reference: rewritten when its name is under
 * `prefix`, and refused (null) when the rewrite is not a canonical reference, as Go's
 * reference.ParseNamed refuses it.
 */
export function remapReference(intended: NamedReference, prefix: string, signedPrefix: string): NamedReference | null {
  if (!matchesPrefix(intended.name, prefix)) return intended;
  const text = namedString(intended).replace(prefix, () => signedPrefix);
  const parsed = parsesAsNamed(text);
  return parsed && namedString(parsed) === text ? parsed : null;
}

/**
 * Does the identity `signedReference` (as a payload holds it) satisfy `rule` for an image verified
 * as `intended` (see {@link intendedReference})? Never throws: an unparseable reference is a
 * mismatch, as in containers/image.
 */
export function matchIdentity(rule: IdentityRule, intended: NamedReference, signedReference: string): IdentityOutcome {
  if (rule.type === 'ignore') {
    return { match: true, detail: `Not checked (cosign's rule); the signature names ${signedReference}.` };
  }
  const signed = parsesAsNamed(signedReference);
  if (!signed) {
    return { match: false, detail: `The signature names "${signedReference}", which is not a valid image reference.` };
  }
  switch (rule.type) {
    case 'matchExact':
      if (isNameOnly(signed))
        return {
          match: false,
          detail: `The signature names only the repository ${signedReference} (as cosign writes it); matchExact needs the exact tag or digest. matchRepository accepts such signatures.`,
        };
      return sameString(intended, signed, signedReference, 'matchExact');
    case 'matchRepoDigestOrExact':
      return repoDigestOrExact(intended, signed, signedReference, 'matchRepoDigestOrExact');
    case 'matchRepository':
      return sameName(intended, signed, signedReference, 'matchRepository');
    case 'exactReference': {
      const want = parsesAsNamed(rule.dockerReference);
      if (!want || isNameOnly(want) || isNameOnly(signed))
        return {
          match: false,
          detail: `exactReference needs both ${rule.dockerReference} and the signature's ${signedReference} to have a tag or digest.`,
        };
      return sameString(want, signed, signedReference, 'exactReference');
    }
    case 'exactRepository': {
      const want = parsesAsNamed(rule.dockerRepository);
      if (!want) return { match: false, detail: `exactRepository's "${rule.dockerRepository}" is not a repository.` };
      return sameName(want, signed, signedReference, 'exactRepository');
    }
    case 'remapIdentity': {
      const remapped = remapReference(intended, rule.prefix, rule.signedPrefix);
      if (!remapped)
        return {
          match: false,
          detail: `Rewriting ${namedString(intended)} from ${rule.prefix} to ${rule.signedPrefix} does not give a canonical reference.`,
        };
      return repoDigestOrExact(remapped, signed, signedReference, `remapIdentity (as ${namedString(remapped)})`);
    }
  }
}

/**
 * Image references, parsed and normalised as Docker does (distribution/reference's grammar and
 * `ParseNormalizedNamed`): `alpine` is `docker.io/library/alpine`, `localhost:5000/a/b:tag`,
 * `ghcr.io/o/r@sha256:…`, `repo:tag@sha256:…`, `[::1]:5000/r`. A name without a registry goes to
 * Docker Hub, whose API lives at registry-1.docker.io.
 * https://github.com/distribution/reference/blob/main/regexp.go
 */
import { RegistryError } from '../errors.ts';

export interface ImageReference {
  /** Registry host[:port], normalised (`docker.io`, never `index.docker.io`). */
  registry: string;
  /** Repository path inside the registry (`library/alpine`). */
  repository: string;
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
export const DOCKER_HUB_API = 'registry-1.docker.io';
export const DEFAULT_TAG = 'latest';

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN_AND_PORT = `${HOST}(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN_AND_PORT}$`);
const TAG_RE = new RegExp(`^${TAG}$`);
const DIGEST_RE = new RegExp(`^${DIGEST}$`);
const NAME_MAX = 255;

function invalid(text: string, why: string): RegistryError {
  return new RegistryError('REGISTRY_REFERENCE_INVALID', `"${text}" is not a valid image reference: ${why}.`);
}

/** True for a digest this project can check: `sha256:` and 64 lower-case hex digits. */
export function isSha256Digest(d: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(d);
}

/** Checks a tag. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Checks a repository path (without registry). */
export function isValidRepository(repo: string): boolean {
  return repo.length <= NAME_MAX && PATH_RE.test(repo);
}

/**
 * Parses and normalises a reference.
 * @throws RegistryError REGISTRY_REFERENCE_INVALID with a sentence saying what is wrong.
 */
export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'it is empty');
  if (/\s/.test(text)) throw invalid(input, 'it contains spaces');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw invalid(input, `"${digest}" is not a digest (algorithm:hex)`);
    const [alg, hex] = digest.split(':') as [string, string];
    if (alg === 'sha256' && !/^[0-9a-f]{64}$/.test(hex))
      throw invalid(input, 'a sha256 digest is 64 lower-case hex digits');
    if (alg === 'sha512' && !/^[0-9a-f]{128}$/.test(hex))
      throw invalid(input, 'a sha512 digest is 128 lower-case hex digits');
  }
  let tag: string | undefined;
  // A tag follows the last ':' after the last '/', so a registry port is not taken for a tag.
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw invalid(input, `"${tag}" is not a valid tag`);
  }
  // As Docker: a bare 64-digit hex name would be mistaken for an image ID.
  if (/^[a-f0-9]{64}$/.test(rest)) throw invalid(input, 'a repository name cannot be a 64-digit hex string');
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  let registry: string;
  let repository: string;
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    registry = DOCKER_HUB;
    repository = rest;
  } else {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) throw invalid(input, `"${registry}" is not a valid registry host`);
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository.toLowerCase() !== repository) throw invalid(input, 'repository names must be lower case');
  if (!PATH_RE.test(repository)) {
    throw invalid(
      input,
      'the repository name may only hold lower-case letters, digits and separators (. _ __ -) between "/"',
    );
  }
  if (registry.length + 1 + repository.length > NAME_MAX)
    throw invalid(input, `the name is longer than ${NAME_MAX} characters`);
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `registry/repository`, the form cosign writes as `docker-reference` (`docker.io/library/alpine`). */
export function repositoryName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The full normalised string: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag ? `:${ref.tag}` : '') + (ref.digest ? `@${ref.digest}` : '');
}

/** The reference pinned to a digest, tag dropped: `registry/repository@sha256:…`. */
export function pinned(ref: ImageReference, digest: string): ImageReference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/** What to ask the registry for: the digest if there is one, else the tag, else `latest`. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host serving a registry's API (`docker.io` → `registry-1.docker.io`). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

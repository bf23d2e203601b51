/**
 * Which requirements of a containers-policy.json apply to an image, exactly as containers/image
 * chooses them for the docker transport (signature/policy_eval.go requirementsForImageRef,
 * docker/policyconfiguration/naming.go): the image's identity (`host/repo:tag`, or
 * `host/repo@digest` when pulled by digest; a bare name gets `:latest`), then its namespaces from
 * the most specific (`host/repo`, each parent path, `host[:port]`, then `*.domain` wildcards of the
 * host without its port, longest first), then the transport's "" scope, then `default`. Scope keys
 * are compared as written: containers/image does not normalise them (`busybox` is not
 * `docker.io/library/busybox`).
 */
import { DEFAULT_TAG, type ImageReference } from '../../registry/reference.ts';
import type { ContainersPolicy, Requirement } from './types.ts';

/**
 * The docker transport's PolicyConfigurationIdentity: `name:tag`, else `name@digest`; a name with
 * neither is `name:latest`. A reference with both a tag and a digest (which the docker transport
 * refuses) is looked up by its tag, as the page verifies it (cosign/identity.ts intendedReference).
 */
export function policyIdentity(ref: ImageReference): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) return `${name}:${ref.tag}`;
  if (ref.digest !== undefined) return `${name}@${ref.digest}`;
  return `${name}:${DEFAULT_TAG}`;
}

/** The docker transport's PolicyConfigurationNamespaces, most specific first. */
export function policyNamespaces(ref: ImageReference): string[] {
  const out: string[] = [];
  let name = `${ref.registry}/${ref.repository}`;
  for (;;) {
    out.push(name);
    const slash = name.lastIndexOf('/');
    if (slash < 0) break;
    name = name.slice(0, slash);
  }
  // The host alone is left; wildcards are made from it without its port.
  const colon = name.indexOf(':');
  if (colon >= 0) name = name.slice(0, colon);
  for (let dot = name.indexOf('.'); dot >= 0; dot = name.indexOf('.')) {
    name = name.slice(dot + 1);
    out.push(`*.${name}`);
  }
  return out;
}

export interface ScopeChoice {
  /** `transports.docker["…"]` or `default`. */
  scope: string;
  identity: string;
  requirements: Requirement[];
}

/** The requirements that apply to `ref` under `policy`, and the scope they come from. */
export function selectScope(policy: ContainersPolicy, ref: ImageReference): ScopeChoice {
  const identity = policyIdentity(ref);
  for (const key of [identity, ...policyNamespaces(ref), '']) {
    const requirements = policy.docker.get(key);
    if (requirements) return { scope: `transports.docker[${JSON.stringify(key)}]`, identity, requirements };
  }
  return { scope: 'default', identity, requirements: policy.default };
}

/**
 * Which paths the relay passes on: the registry API (`/v2`, `/v2/…`,
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints) and the token
 * endpoints (Bearer realms, https://distribution.github.io/distribution/spec/auth/token/) that a
 * registry named in a `WWW-Authenticate` challenge the relay just passed on, remembered per
 * registry for a bounded time, or that the operator configured (RELAY_TOKEN_REALMS). Everything
 * else on an allowed host (its web pages, its metadata endpoints) is refused, so the relay cannot
 * be used to read arbitrary pages of a host it may reach.
 */
import { parseChallenges } from '../../shared/registry/auth.ts';
import { hostKey, parseAuthority, type Host } from './host.ts';

/** How long a realm named in a challenge stays relayable (the token request follows at once). */
export const REALM_TTL_MS = 10 * 60_000;
/** Most realms remembered per registry, and most registries remembered at once. */
const MAX_REALMS_PER_REGISTRY = 8;
const MAX_REGISTRIES = 1000;

/** True for a path of the registry API: `/v2` itself or anything under `/v2/`. */
export function isRegistryApiPath(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

/** The key a realm is remembered and looked up by: scheme, `host:port`, path (no query). */
export function realmKey(scheme: 'http' | 'https', host: Host, port: number, path: string): string {
  return `${scheme}://${hostKey(host, port)}${path}`;
}

/**
 * A realm URL's key, when it is an http(s) URL without credentials whose host parses; else null.
 * The query is not part of it: token requests add `service` and `scope`.
 */
export function realmKeyOfUrl(
  text: string,
): { key: string; host: Host; port: number; scheme: 'http' | 'https' } | null {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return null;
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '') return null;
  const a = parseAuthority(u.host);
  if (a === null) return null;
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const port = a.port ?? (scheme === 'https' ? 443 : 80);
  const host: Host = { host: a.host, kind: a.kind };
  return { key: realmKey(scheme, host, port, u.pathname), host, port, scheme };
}

/** The Bearer realms a `WWW-Authenticate` value names (none when it does not parse). */
export function bearerRealms(header: string): string[] {
  try {
    return parseChallenges(header)
      .filter((c) => c.scheme === 'bearer' && typeof c.params['realm'] === 'string')
      .map((c) => c.params['realm']!);
  } catch {
    return [];
  }
}

/**
 * Token realms seen in challenges, per registry, each until its time runs out. Bounded: at most
 * MAX_REALMS_PER_REGISTRY per registry and MAX_REGISTRIES registries (the oldest go first).
 */
export class RealmMemory {
  readonly #byRegistry = new Map<string, Map<string, number>>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(ttlMs = REALM_TTL_MS, now: () => number = () => Date.now()) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Remembers that `registry` (its `host:port`) named the realm `key` just now. */
  remember(registry: string, key: string): void {
    const realms = this.#byRegistry.get(registry) ?? new Map<string, number>();
    this.#byRegistry.delete(registry);
    realms.delete(key);
    realms.set(key, this.#now() + this.#ttlMs);
    while (realms.size > MAX_REALMS_PER_REGISTRY) realms.delete(realms.keys().next().value!);
    this.#byRegistry.set(registry, realms);
    while (this.#byRegistry.size > MAX_REGISTRIES) this.#byRegistry.delete(this.#byRegistry.keys().next().value!);
  }

  /** True when some registry named the realm `key` and its time has not run out. */
  has(key: string): boolean {
    const now = this.#now();
    for (const [registry, realms] of this.#byRegistry) {
      const until = realms.get(key);
      if (until !== undefined && until > now) return true;
      for (const [k, t] of realms) if (t <= now) realms.delete(k);
      if (realms.size === 0) this.#byRegistry.delete(registry);
    }
    return false;
  }
}

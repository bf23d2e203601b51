/**
 * Registry authentication as Docker clients do it: `WWW-Authenticate` challenges (RFC 7235
 * auth-params), Basic credentials, and the Bearer token flow of the distribution token spec
 * (https://distribution.github.io/distribution/spec/auth/token/): GET realm?service=…&scope=…,
 * with Basic credentials when the user gave some, the token cached per registry and scope.
 */
import { RegistryError } from '../errors.ts';
import { toBase64, utf8 } from '../encoding/base64.ts';

export interface Credentials {
  username: string;
  password: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` value into its challenges (a registry sends one; several are legal).
 * @throws RegistryError REGISTRY_AUTH_FAILED on a malformed header.
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const s = header;
  const fail = (): never => {
    throw new RegistryError(
      'REGISTRY_AUTH_FAILED',
      `The registry sent a malformed authentication challenge: ${JSON.stringify(header.slice(0, 200))}.`,
    );
  };
  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = (): string => {
    const m = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/.exec(s.slice(i));
    if (!m) return '';
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skipWs();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const scheme = token();
    if (!scheme) fail();
    const params: Record<string, string> = {};
    let nextChallenge = false;
    for (;;) {
      skipWs();
      const save = i;
      const name = token();
      skipWs();
      if (!name || s[i] !== '=') {
        // Not an auth-param: the next challenge starts here (or a token68 we do not use).
        i = save;
        nextChallenge = name !== '';
        break;
      }
      i++;
      skipWs();
      let value: string;
      if (s[i] === '"') {
        i++;
        value = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\') i++;
          if (i >= s.length) fail();
          value += s[i++];
        }
        if (s[i] !== '"') fail();
        i++;
      } else {
        value = token();
      }
      params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] === ',') {
        i++;
        continue;
      }
      break;
    }
    out.push({ scheme: scheme.toLowerCase(), params });
    skipWs();
    // A token68 or anything else unparsed: skip to the next comma-separated element.
    if (!nextChallenge && i < s.length && s[i] !== ',') {
      const next = s.indexOf(',', i);
      i = next < 0 ? s.length : next;
    }
  }
  if (out.length === 0) fail();
  return out;
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${toBase64(utf8(`${c.username}:${c.password}`))}`;
}

interface CachedToken {
  header: string;
  expires: number;
}

/** Tokens and Basic headers per registry and scope, kept in memory only. */
export class AuthCache {
  #entries = new Map<string, CachedToken>();

  get(registry: string, scope: string, now = Date.now()): string | undefined {
    const e = this.#entries.get(`${registry}\n${scope}`) ?? this.#entries.get(`${registry}\n*`);
    if (!e) return undefined;
    if (e.expires <= now) return undefined;
    return e.header;
  }

  /** `scope` "*" means any scope (Basic auth). */
  set(registry: string, scope: string, header: string, ttlSeconds: number, now = Date.now()): void {
    // Renew a little early so a token does not expire in flight.
    this.#entries.set(`${registry}\n${scope}`, { header, expires: now + Math.max(ttlSeconds - 10, 5) * 1000 });
  }

  forget(registry: string, scope: string): void {
    this.#entries.delete(`${registry}\n${scope}`);
    this.#entries.delete(`${registry}\n*`);
  }

  clear(registry?: string): void {
    if (registry === undefined) this.#entries.clear();
    else for (const k of [...this.#entries.keys()]) if (k.startsWith(`${registry}\n`)) this.#entries.delete(k);
  }
}

/**
 * Reads a token endpoint's JSON answer.
 * @throws RegistryError REGISTRY_AUTH_FAILED without a token, or with one a header cannot carry
 *   (anything but visible ASCII: RFC 6750's b64token is narrower still).
 */
export function readTokenResponse(json: unknown): { token: string; expiresIn: number } {
  const o = json as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token =
    typeof o?.token === 'string' && o.token ? o.token : typeof o?.access_token === 'string' ? o.access_token : '';
  if (!token) throw new RegistryError('REGISTRY_AUTH_FAILED', "The registry's token service answered without a token.");
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new RegistryError(
      'REGISTRY_AUTH_FAILED',
      "The registry's token service answered a token with characters an Authorization header cannot carry.",
    );
  }
  // The token spec says 60 s when absent.
  const expiresIn = typeof o.expires_in === 'number' && o.expires_in > 0 ? o.expires_in : 60;
  return { token, expiresIn };
}

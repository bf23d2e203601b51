/**
 * Which names and origins this server is: the defence against DNS rebinding (issue #12, item 1)
 * and blind cross-site writes (item 4), for the app and the embedded registry alike.
 *
 * - Host: a request is answered only when its `Host` names one of the served host names —
 *   `localhost`, `127.0.0.1`, `[::1]`, the address in HOST when it is not a wildcard, and the hosts
 *   of PUBLIC_ORIGINS — and 421 Misdirected Request otherwise (RFC 9110 §15.5.20). A page whose
 *   name re-resolves to 127.0.0.1 sends its own name, so it is refused.
 * - Origin: compared whole (scheme, host, port) with the page's origins: `http://<loopback name or
 *   HOST>:<listening port>` and PUBLIC_ORIGINS; never with Host, which an attacker's page controls.
 * - Writes (POST, PUT, PATCH, DELETE): refused with 403 when a browser says they come from
 *   elsewhere (an Origin that is not a page origin, or `Sec-Fetch-Site: cross-site|same-site`
 *   without one). Clients that are not browsers (cosign, crane, skopeo) send neither and pass.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { CosignWebError } from '../shared/errors.ts';
import { parseAuthority, parseHost, urlHost } from './relay/host.ts';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);

interface SiteOptions {
  /** PUBLIC_ORIGINS, already parsed (parsePublicOrigins): origins the page is served as. */
  publicOrigins?: readonly string[];
  /** HOST, the address listened on; a wildcard (0.0.0.0, ::) adds no name. */
  listenHost?: string;
  /** Ports the page is served on (more can be added once listening, with `listening`). */
  ports?: readonly number[];
}

/** Why a request is refused, for the caller to answer in its own form. */
interface Refusal {
  code: 'HOST_NOT_SERVED' | 'ORIGIN_REFUSED';
  status: 421 | 403;
  message: string;
}

function invalid(message: string): CosignWebError {
  return new CosignWebError('CONFIG_INVALID', message);
}

/**
 * PUBLIC_ORIGINS: comma-separated `scheme://host[:port]` (http or https, nothing after the port).
 * @returns the origins in their serialised form (`https://app.example`, default port left out)
 * @throws CosignWebError CONFIG_INVALID for an entry that is not exactly such an origin
 */
export function parsePublicOrigins(value: string | undefined): string[] {
  const origins: string[] = [];
  for (const entry of (value ?? '').split(',').map((e) => e.trim())) {
    if (entry === '') continue;
    const sentence = `PUBLIC_ORIGINS holds "${entry}", which is not an origin like https://cosign.example or http://localhost:8080 (scheme, host and port only).`;
    const m = /^(https?):\/\/([^/?#@\s]+)\/?$/i.exec(entry);
    if (m === null) throw invalid(sentence);
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw invalid(sentence);
    }
    // The host as written must read one way only: no numeric-looking names, no escapes.
    if (parseAuthority(m[2]!) === null) throw invalid(sentence);
    origins.push(url.origin);
  }
  return origins;
}

/** The names and origins one server answers to; `listening` adds a port once it is known. */
export class Site {
  readonly #hosts = new Set<string>();
  readonly #origins = new Set<string>();
  readonly #pageNames: string[];

  constructor(options: SiteOptions = {}) {
    this.#pageNames = [...LOOPBACK_NAMES];
    const listen = (options.listenHost ?? '').toLowerCase();
    if (!WILDCARDS.has(listen)) {
      const parsed = parseHost(listen.includes(':') && !listen.startsWith('[') ? `[${listen}]` : listen);
      if (parsed !== null && !this.#pageNames.includes(urlHost(parsed))) this.#pageNames.push(urlHost(parsed));
    }
    for (const name of this.#pageNames) this.#hosts.add(name);
    for (const origin of options.publicOrigins ?? []) {
      this.#origins.add(origin);
      this.#hosts.add(new URL(origin).hostname);
    }
    for (const port of options.ports ?? []) this.listening(port);
  }

  /** Adds the page origins of a port the page is served on (`http://localhost:<port>`, …). */
  listening(port: number): void {
    for (const name of this.#pageNames) this.#origins.add(new URL(`http://${name}:${port}`).origin);
  }

  /** True when `hostname` (as a URL spells it: lower case, IPv6 in brackets) is served here. */
  servesHost(hostname: string): boolean {
    return this.#hosts.has(hostname);
  }

  /** True when `origin` (an Origin header) is exactly one of the page's origins. */
  isPageOrigin(origin: string): boolean {
    return this.#origins.has(origin);
  }

  /** The page's origins, for logs and messages. */
  get origins(): string[] {
    return [...this.#origins];
  }

  /**
   * Why this request must not be served, or undefined. `writes`: from whom a write is taken —
   * `page`: clients without Origin and the page's origins; `none`: clients without Origin only
   * (the embedded registry, which the page reaches through the relay); `any`: the host name alone
   * is checked (routes that check the Origin of every request themselves).
   */
  refusal(c: Context, writes: 'page' | 'none' | 'any' = 'page'): Refusal | undefined {
    const { hostname } = new URL(c.req.url);
    if (!this.servesHost(hostname)) {
      return {
        code: 'HOST_NOT_SERVED',
        status: 421,
        message: `This server does not serve the host name "${hostname}": open it as localhost, or list the name it is served as in PUBLIC_ORIGINS.`,
      };
    }
    if (writes === 'any' || !WRITES.has(c.req.method)) return undefined;
    const origin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    const foreign =
      origin !== undefined
        ? writes === 'none' || !this.isPageOrigin(origin)
        : site === 'cross-site' || site === 'same-site';
    if (!foreign) return undefined;
    return {
      code: 'ORIGIN_REFUSED',
      status: 403,
      message:
        writes === 'none'
          ? `A page on ${origin ?? 'another site'} may not write here: only registry clients (cosign, crane, skopeo) and the relay may.`
          : `A page on ${origin ?? 'another site'} may not write here: only this server's own page may.`,
    };
  }
}

/**
 * The check for every request of the app: `app.use('*', siteGuard(site, ownCheck))`, where
 * `ownCheck(path)` is true for routes whose Origin check of every request comes later (the relay's).
 * @throws CosignWebError HOST_NOT_SERVED (421), ORIGIN_REFUSED (403) — answered by app.onError
 */
export function siteGuard(site: Site, ownCheck: (path: string) => boolean = () => false): MiddlewareHandler {
  return async (c, next) => {
    const refused = site.refusal(c, ownCheck(c.req.path) ? 'any' : 'page');
    if (refused) throw new CosignWebError(refused.code, refused.message, { status: refused.status });
    await next();
  };
}

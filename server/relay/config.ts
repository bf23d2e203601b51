/**
 * The relay's configuration: options as the app passes them (`RelayOptions`, read from the
 * environment by `relayOptionsFromEnv`), normalised once by each middleware factory into a
 * `RelayConfig` that answers "may the relay reach host:port, and over which scheme?".
 *
 * Environment (all optional):
 * - RELAY_ALLOWED_REGISTRIES    comma-separated `host[:port]`, matched on host and port exactly
 *                               (port default 443, or 80 for a host listed as plain http on 80).
 *                               Replaces the defaults (DEFAULT_REGISTRIES and their blob storage).
 *                               Every host must resolve to public addresses only, unless it is
 *                               also listed in RELAY_PRIVATE_REGISTRIES.
 * - RELAY_PRIVATE_REGISTRIES    comma-separated `host[:port]` (each also allowed) that may resolve
 *                               to loopback, private or link-local addresses: the operator vouches
 *                               for them (over https the certificate still must match the name)
 * - RELAY_PLAIN_HTTP_REGISTRIES comma-separated `host[:port]` spoken to over http (port default 80);
 *                               it chooses the scheme only, the host must be allowed as well
 * - RELAY_TOKEN_REALMS          comma-separated token endpoint URLs (Bearer realms) relayed even
 *                               when no challenge the relay passed on named them (default
 *                               DEFAULT_TOKEN_REALMS); their hosts must be allowed as well
 * - RELAY_CORS_ORIGINS          comma-separated origins allowed to call the relay cross-origin
 * - RELAY_MAX_MANIFEST_BYTES    largest manifest PUT body (default 4 MiB)
 * - RELAY_UPSTREAM_TIMEOUT_MS   time to response headers and idle time upstream (default 30 s)
 * - RELAY_MAX_REDIRECTS         redirects followed for GET and HEAD (default 5)
 * - SIGSTORE_TUF_URL            the Sigstore TUF repository the page keeps its trusted root fresh
 *                               from (metadata base URL; default https://tuf-repo-cdn.sigstore.dev)
 * - SIGSTORE_TUF_TARGETS_URL    where that repository serves targets (default <SIGSTORE_TUF_URL>/targets)
 *                               The TUF hosts (DEFAULT_TUF_HOSTS, or the hosts of these two URLs,
 *                               which replace it) are reachable read-only: GET only, answers of at
 *                               most TUF_MAX_RESPONSE_BYTES, whatever RELAY_ALLOWED_REGISTRIES says.
 *                               An operator-given TUF host may be on loopback or a private network;
 *                               an http:// URL makes its host:port spoken to over plain http.
 * - RELAY_SIGSTORE_SERVICES     comma-separated `host[:port]` of Sigstore services (transparency
 *                               logs, timestamp authorities, Fulcio) the sign page may reach
 *                               (default DEFAULT_SIGSTORE_SERVICES, the hosts of the shipped
 *                               public-good signing config). Only their service paths pass
 *                               (SIGSTORE_SERVICE_PATHS), GET and POST, answers of at most
 *                               TUF_MAX_RESPONSE_BYTES. Operator-given hosts may be on loopback or a
 *                               private network; RELAY_PLAIN_HTTP_REGISTRIES picks plain http.
 * Extra CAs for upstream TLS come from Node's own NODE_EXTRA_CA_CERTS.
 */
import type { LookupAddress } from 'node:dns';
import type http from 'node:http';
import type https from 'node:https';
import { RelayError } from '../../shared/errors.ts';
import { DOCKER_HUB, DOCKER_HUB_API } from '../../shared/registry/reference.ts';
import { hostKey, parseAuthority, type Host } from './host.ts';
import { realmKeyOfUrl } from './realms.ts';

/** Resolves a host name to every address it has (the relay checks all of them). */
export type RelayLookup = (hostname: string) => Promise<LookupAddress[]>;

/** Opens the upstream request; the default is node's http.request or https.request. */
export type RequestUpstream = (options: https.RequestOptions, scheme: 'http' | 'https') => http.ClientRequest;

export interface RelayOptions {
  /** `host[:port]` the relay may reach (RELAY_ALLOWED_REGISTRIES); empty or absent: the defaults. */
  allowedRegistries?: readonly string[];
  /**
   * `host:port` always allowed in addition to `allowedRegistries` or the defaults, spoken to over
   * plain http: the server's own embedded registry on loopback.
   */
  localRegistries?: readonly string[];
  /**
   * `host[:port]` that may resolve to non-public addresses (RELAY_PRIVATE_REGISTRIES); each must be
   * allowed too. Listing a host in `allowedRegistries` alone never lifts the address check.
   */
  privateRegistries?: readonly string[];
  /** `host[:port]` spoken to over plain http (RELAY_PLAIN_HTTP_REGISTRIES); port default 80. */
  plainHttpRegistries?: readonly string[];
  /**
   * Token endpoint URLs (RELAY_TOKEN_REALMS) relayed without a challenge naming them first; empty
   * or absent: DEFAULT_TOKEN_REALMS. Other paths than `/v2/…` pass only as realms a registry's
   * challenge named in an answer the relay passed on (server/relay/realms.ts).
   */
  tokenRealms?: readonly string[];
  /** Test hook: how long a realm named in a challenge stays relayable (default REALM_TTL_MS). */
  realmTtlMs?: number;
  /** Origins (`https://app.example`) that may call the relay cross-origin; default none. */
  corsOrigins?: readonly string[];
  /** Largest body of a manifest PUT, in bytes (default 4 MiB). */
  maxManifestBytes?: number;
  /** Upstream time to response headers, and longest idle time, in ms (default 30 000). */
  upstreamTimeoutMs?: number;
  /** Redirects the relay follows for GET and HEAD (default 5). */
  maxRedirects?: number;
  /**
   * URLs of the TUF repository the page refreshes Sigstore's trusted root from (SIGSTORE_TUF_URL,
   * SIGSTORE_TUF_TARGETS_URL): their hosts are reachable read-only instead of DEFAULT_TUF_HOSTS.
   */
  tufRepositoryUrls?: readonly string[];
  /**
   * CA certificates trusted for upstream TLS instead of Node's defaults. For tests: production
   * leaves it unset and adds CAs with NODE_EXTRA_CA_CERTS.
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Test hook: the resolver (default dns.promises.lookup with all: true). */
  lookup?: RelayLookup;
  /** Test hook: opens the upstream connection (default node's http/https.request). */
  requestUpstream?: RequestUpstream;
  /** Where the one line per relayed request goes (default console.log). */
  log?: (line: string) => void;
  /**
   * `host[:port]` of Sigstore services (RELAY_SIGSTORE_SERVICES): reachable for their service
   * paths alone; empty or absent: DEFAULT_SIGSTORE_SERVICES.
   */
  sigstoreServices?: readonly string[];
  /** Told the same facts as the log line, as fields (metrics, JSON logs: server/observe.ts). */
  observe?: (record: RelayRecord) => void;
}

/** One relayed request, as its log line says it; never a header value, a query or a body. */
export interface RelayRecord {
  method: string;
  /** The registry's `host[:port]`, or `-` when the target was refused before it was known. */
  upstream: string;
  /** The path without its query, or `-`. */
  path: string;
  status: number;
  bytesUp: number;
  bytesDown: number;
  ms: number;
  /** From the start to the registry's answer headers; undefined when there was no answer. */
  upstreamMs: number | undefined;
  redirects: number;
  /** The refusal's or failure's code (or `client-aborted`…), '' when all went well. */
  note: string;
}

/**
 * The public registries reachable when RELAY_ALLOWED_REGISTRIES is empty, all on port 443 over
 * https, with the token endpoints their Bearer challenges name:
 * - Docker Hub: registry-1.docker.io and index.docker.io (registry API), auth.docker.io (tokens)
 * - GitHub: ghcr.io (registry and tokens at ghcr.io/token)
 * - Red Hat Quay: quay.io (registry and tokens at quay.io/v2/auth)
 * - Google Container Registry: gcr.io, us.gcr.io, eu.gcr.io, asia.gcr.io, mirror.gcr.io
 *   (tokens at gcr.io/v2/token)
 * - Google Artifact Registry: `<location>-docker.pkg.dev` (ARTIFACT_REGISTRY_HOST: exactly one
 *   label ending in "-docker" under pkg.dev, no deeper names)
 */
export const DEFAULT_REGISTRIES: readonly string[] = [
  'registry-1.docker.io',
  'index.docker.io',
  'auth.docker.io',
  'ghcr.io',
  'quay.io',
  'gcr.io',
  'us.gcr.io',
  'eu.gcr.io',
  'asia.gcr.io',
  'mirror.gcr.io',
];

/** Artifact Registry's regional hosts: `us-docker.pkg.dev`, `europe-west4-docker.pkg.dev`, … */
export const ARTIFACT_REGISTRY_HOST = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-docker\.pkg\.dev$/;

/**
 * Blob storage the default registries redirect downloads to. With the default list these are
 * reached only as the target of a redirect from a registry above (which the relay follows
 * itself), never by a client naming them in a relay path:
 * - Docker Hub: production.cloudflare.docker.com, production.cloudfront.docker.com and its R2
 *   bucket docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com
 * - GitHub: pkg-containers.githubusercontent.com
 * - Quay: cdn.quay.io, cdn01.quay.io, cdn02.quay.io, cdn03.quay.io
 * - Google: storage.googleapis.com
 */
export const DEFAULT_REDIRECT_TARGETS: readonly string[] = [
  'production.cloudflare.docker.com',
  'production.cloudfront.docker.com',
  'docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com',
  'pkg-containers.githubusercontent.com',
  'cdn.quay.io',
  'cdn01.quay.io',
  'cdn02.quay.io',
  'cdn03.quay.io',
  'storage.googleapis.com',
];

/**
 * Token endpoints of the default registries outside their `/v2/` API (Docker Hub's and GitHub's),
 * relayed even when the relay has not seen the challenge naming them (a restart, another relay).
 * quay.io, gcr.io and Artifact Registry serve tokens under `/v2/`.
 */
export const DEFAULT_TOKEN_REALMS: readonly string[] = ['https://auth.docker.io/token', 'https://ghcr.io/token'];

/**
 * The Sigstore public-good TUF repository (metadata and targets), reachable read-only (GET, answers
 * of at most TUF_MAX_RESPONSE_BYTES) unless SIGSTORE_TUF_URL names another repository.
 */
export const DEFAULT_TUF_HOSTS: readonly string[] = ['tuf-repo-cdn.sigstore.dev'];

/**
 * The hosts of the public-good signing config the page ships (shared/sigstore/shipped-signing-config.ts):
 * Rekor v1, the timestamp authority, Fulcio and the OIDC issuer (for its discovery document and
 * token endpoint; the login page itself is visited by the browser), reachable for their service
 * paths alone unless RELAY_SIGSTORE_SERVICES names others.
 */
export const DEFAULT_SIGSTORE_SERVICES: readonly string[] = [
  'rekor.sigstore.dev',
  'timestamp.sigstore.dev',
  'fulcio.sigstore.dev',
  'oauth2.sigstore.dev',
];

/**
 * What a Sigstore service host may be asked, method and exact path: Rekor v2 and v1 entry
 * uploads and a log's public key, an RFC 3161 timestamp and the TSA's chain, a Fulcio certificate
 * and its chain.
 */
export const SIGSTORE_SERVICE_PATHS: readonly string[] = [
  'POST /api/v2/log/entries',
  'POST /api/v1/log/entries',
  'GET /api/v1/log/publicKey',
  'POST /api/v1/timestamp',
  'GET /api/v1/timestamp/certchain',
  'POST /api/v2/signingCert',
  'GET /api/v1/rootCert',
];

/**
 * Whether a call is one a Sigstore service host may be asked: SIGSTORE_SERVICE_PATHS, or an OIDC
 * issuer's discovery document (`GET <issuer path>/.well-known/openid-configuration`) or token
 * endpoint (`POST …/token`, as Dex's `/auth/token` at oauth2.sigstore.dev) for keyless signing.
 * Never throws.
 */
export function isSigstoreServiceCall(method: string, path: string): boolean {
  if (SIGSTORE_SERVICE_PATHS.includes(`${method} ${path}`)) return true;
  if (method === 'GET' && path.endsWith('/.well-known/openid-configuration')) return true;
  return method === 'POST' && path.endsWith('/token');
}

/** Largest answer the relay passes on from a read-only TUF host (the TUF client's own cap is 4 MiB). */
export const TUF_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_REDIRECTS = 5;

/** The relay's options, checked and put in the form the middleware asks questions of. */
export interface RelayConfig {
  /** True when the allowlist came from RELAY_ALLOWED_REGISTRIES (not the defaults). */
  readonly explicit: boolean;
  /** `host:port` keys a relay path may name (besides Artifact Registry hosts by default). */
  readonly direct: ReadonlySet<string>;
  /** `host:port` keys spoken to over plain http. */
  readonly plainHttp: ReadonlySet<string>;
  readonly maxManifestBytes: number;
  readonly upstreamTimeoutMs: number;
  readonly maxRedirects: number;
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer> | undefined;
  readonly lookup: RelayLookup | undefined;
  readonly requestUpstream: RequestUpstream | undefined;
  readonly log: (line: string) => void;
  /** RelayOptions.observe, set by relay() (relay.ts). */
  readonly observe?: ((record: RelayRecord) => void) | undefined;
  /** True when a relay path may name `host:port`. */
  isDirect(host: Host, port: number): boolean;
  /** Keys (realms.ts realmKey) of the configured token realms. */
  readonly tokenRealms: ReadonlySet<string>;
  readonly realmTtlMs: number | undefined;
  /** True when `host:port` is a TUF repository host (any path may be read with GET). */
  isTufHost(host: Host, port: number): boolean;
  /** True when a redirect may lead to `host:port`. */
  isRedirectTarget(host: Host, port: number): boolean;
  /** True when `host:port` is a Sigstore service host (RELAY_SIGSTORE_SERVICES or the defaults). */
  isSigstoreService(host: Host, port: number): boolean;
  /**
   * True when `host:port` may resolve to non-public addresses: listed in RELAY_PRIVATE_REGISTRIES,
   * the embedded registry, or an operator-given TUF host.
   */
  mayBePrivate(host: Host, port: number): boolean;
  /**
   * True when `host:port` is the embedded registry (a `localRegistries` entry) and nothing else
   * vouches for it: it may be reached on loopback only (`localhost` is never looked up: it is
   * 127.0.0.1, where the embedded registry listens).
   */
  loopbackOnly(host: Host, port: number): boolean;
  /**
   * True when `host:port` is reachable only as a TUF repository: GET only, answers of at most
   * TUF_MAX_RESPONSE_BYTES (false for a host that is also an allowed registry).
   */
  isReadOnly(host: Host, port: number): boolean;
  /** The scheme and port for `host` with an optional port, as a relay path names it. */
  schemeFor(host: Host, port: number | undefined): { scheme: 'http' | 'https'; port: number };
}

function invalid(message: string): RelayError {
  return new RelayError('RELAY_CONFIG_INVALID', message, 500);
}

function entryKey(entry: string, defaultPort: (host: Host) => number, setting: string): string {
  const a = parseAuthority(entry.trim());
  if (a === null) {
    throw invalid(`${setting} holds "${entry}", which is not a host or host:port (IPv6 in brackets).`);
  }
  return hostKey(a, a.port ?? defaultPort(a));
}

/** A TUF repository URL's host as an allowlist key, and whether it is spoken to over plain http. */
export interface TufHost {
  key: string;
  plainHttp: boolean;
}

/**
 * Checks a TUF repository URL (SIGSTORE_TUF_URL, SIGSTORE_TUF_TARGETS_URL): http(s), no
 * credentials, query or fragment, a host the relay's syntax accepts.
 * @returns its host key and scheme
 * @throws RelayError RELAY_CONFIG_INVALID
 */
export function parseTufUrl(text: string, setting = 'SIGSTORE_TUF_URL'): TufHost {
  const wrong = (): RelayError =>
    invalid(`${setting} holds "${text}", which is not a URL like https://tuf.example/metadata.`);
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw wrong();
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '') throw wrong();
  if (u.search !== '' || u.hash !== '') throw wrong();
  const a = parseAuthority(u.host);
  if (a === null) throw wrong();
  const plainHttp = u.protocol === 'http:';
  return { key: hostKey(a, a.port ?? (plainHttp ? 80 : 443)), plainHttp };
}

/** The read-only TUF hosts: those of the URLs given (operator-vouched), else the defaults. */
function tufHosts(urls: readonly string[]): { hosts: TufHost[]; vouched: boolean } {
  const given = urls.filter((u) => u.trim() !== '');
  if (given.length === 0) {
    return {
      hosts: DEFAULT_TUF_HOSTS.map((e) => ({ key: entryKey(e, () => 443, 'DEFAULT_TUF_HOSTS'), plainHttp: false })),
      vouched: false,
    };
  }
  return { hosts: given.map((u) => parseTufUrl(u)), vouched: true };
}

/** The Sigstore service hosts as keys: those given (operator-vouched: may be private), else the defaults. */
function sigstoreServiceKeys(
  entries: readonly string[],
  defaultPort: (h: Host) => number,
): { keys: ReadonlySet<string>; vouched: boolean } {
  const given = entries.filter((e) => e.trim() !== '');
  const setting = given.length > 0 ? 'RELAY_SIGSTORE_SERVICES' : 'DEFAULT_SIGSTORE_SERVICES';
  const keys = (given.length > 0 ? given : DEFAULT_SIGSTORE_SERVICES).map((e) => entryKey(e, defaultPort, setting));
  return { keys: new Set(keys), vouched: given.length > 0 };
}

/**
 * The configured token realms as realm keys: each an http(s) URL without credentials, query or
 * fragment; none given: DEFAULT_TOKEN_REALMS.
 * @throws RelayError RELAY_CONFIG_INVALID
 */
function tokenRealmKeys(urls: readonly string[]): ReadonlySet<string> {
  const given = urls.filter((u) => u.trim() !== '');
  const keys = new Set<string>();
  for (const text of given.length > 0 ? given : DEFAULT_TOKEN_REALMS) {
    const parsed = /[?#]/.test(text) ? null : realmKeyOfUrl(text.trim());
    if (parsed === null) {
      throw invalid(`RELAY_TOKEN_REALMS holds "${text}", which is not a URL like https://auth.example/token.`);
    }
    keys.add(parsed.key);
  }
  return keys;
}

function checkInteger(value: number | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, not ${value}.`);
  }
  return value;
}

/** The relay's numeric limits, checked. @throws RelayError RELAY_CONFIG_INVALID */
function limits(options: RelayOptions): Pick<RelayConfig, 'maxManifestBytes' | 'upstreamTimeoutMs' | 'maxRedirects'> {
  return {
    maxManifestBytes: checkInteger(
      options.maxManifestBytes,
      'RELAY_MAX_MANIFEST_BYTES',
      1,
      Number.MAX_SAFE_INTEGER,
      DEFAULT_MAX_MANIFEST_BYTES,
    ),
    upstreamTimeoutMs: checkInteger(
      options.upstreamTimeoutMs,
      'RELAY_UPSTREAM_TIMEOUT_MS',
      1,
      2_147_483_647,
      DEFAULT_UPSTREAM_TIMEOUT_MS,
    ),
    maxRedirects: checkInteger(options.maxRedirects, 'RELAY_MAX_REDIRECTS', 0, 20, DEFAULT_MAX_REDIRECTS),
  };
}

/**
 * Checks and normalises options once, for a middleware factory.
 * @throws RelayError RELAY_CONFIG_INVALID when an entry or a number is malformed
 */
export function normaliseRelayOptions(options: RelayOptions = {}): RelayConfig {
  const local = (options.localRegistries ?? []).map((e) => entryKey(e, () => 80, 'the embedded registry'));
  const tuf = tufHosts(options.tufRepositoryUrls ?? []);
  const plainHttp = new Set([
    ...(options.plainHttpRegistries ?? []).map((e) => entryKey(e, () => 80, 'RELAY_PLAIN_HTTP_REGISTRIES')),
    ...local,
    ...tuf.hosts.filter((t) => t.plainHttp).map((t) => t.key),
  ]);
  const tufKeys = new Set(tuf.hosts.map((t) => t.key));
  const listed = (options.allowedRegistries ?? []).filter((e) => e.trim() !== '');
  const explicit = listed.length > 0;
  // An allowlist entry without a port takes 80 when the host is a plain-http registry on 80.
  const allowPort = (h: Host): number => (plainHttp.has(hostKey(h, 80)) ? 80 : 443);
  const sigstore = sigstoreServiceKeys(options.sigstoreServices ?? [], allowPort);
  const direct = new Set(
    explicit
      ? listed.map((e) => entryKey(e, allowPort, 'RELAY_ALLOWED_REGISTRIES'))
      : DEFAULT_REGISTRIES.map((e) => entryKey(e, () => 443, 'DEFAULT_REGISTRIES')),
  );
  for (const key of local) direct.add(key);
  const privateKeys = new Set(
    (options.privateRegistries ?? [])
      .filter((e) => e.trim() !== '')
      .map((e) => entryKey(e, allowPort, 'RELAY_PRIVATE_REGISTRIES')),
  );
  const redirectOnly = new Set(
    explicit ? [] : DEFAULT_REDIRECT_TARGETS.map((e) => entryKey(e, () => 443, 'DEFAULT_REDIRECT_TARGETS')),
  );
  const isDirect = (h: Host, port: number): boolean => {
    const key = hostKey(h, port);
    return direct.has(key) || (!explicit && port === 443 && h.kind === 'name' && ARTIFACT_REGISTRY_HOST.test(h.host));
  };
  for (const key of privateKeys) {
    const a = parseAuthority(key)!;
    if (!isDirect(a, a.port!)) {
      throw invalid(
        `RELAY_PRIVATE_REGISTRIES holds ${key}, which the relay may not reach: list it in RELAY_ALLOWED_REGISTRIES too.`,
      );
    }
  }
  const vouched = (h: Host, port: number): boolean =>
    isDirect(h, port)
      ? privateKeys.has(hostKey(h, port))
      : (tuf.vouched && tufKeys.has(hostKey(h, port))) || (sigstore.vouched && sigstore.keys.has(hostKey(h, port)));
  return {
    explicit,
    direct,
    plainHttp,
    ...limits(options),
    tokenRealms: tokenRealmKeys(options.tokenRealms ?? []),
    realmTtlMs: options.realmTtlMs,
    isTufHost: (h, port) => tufKeys.has(hostKey(h, port)),
    isSigstoreService: (h, port) => sigstore.keys.has(hostKey(h, port)),
    ca: options.ca,
    lookup: options.lookup,
    requestUpstream: options.requestUpstream,
    log: options.log ?? ((line) => console.log(line)),
    isDirect,
    isRedirectTarget: (h, port) =>
      isDirect(h, port) || redirectOnly.has(hostKey(h, port)) || tufKeys.has(hostKey(h, port)),
    mayBePrivate: (h, port) => local.includes(hostKey(h, port)) || vouched(h, port),
    loopbackOnly: (h, port) => local.includes(hostKey(h, port)) && !vouched(h, port),
    isReadOnly: (h, port) => tufKeys.has(hostKey(h, port)) && !isDirect(h, port),
    schemeFor: (h, port) => {
      if (port === undefined) {
        return plainHttp.has(hostKey(h, 80)) ? { scheme: 'http', port: 80 } : { scheme: 'https', port: 443 };
      }
      return { scheme: plainHttp.has(hostKey(h, port)) ? 'http' : 'https', port };
    },
  };
}

/**
 * Checks the CORS origins: each an http(s) origin without path, query or credentials; `*` is
 * refused (it would let any web page use this server as its relay).
 * @returns the origins in URL.origin form
 * @throws RelayError RELAY_CONFIG_INVALID
 */
export function normaliseCorsOrigins(origins: readonly string[] = []): ReadonlySet<string> {
  const out = new Set<string>();
  for (const raw of origins) {
    const text = raw.trim();
    if (text === '') continue;
    if (text === '*') throw invalid('RELAY_CORS_ORIGINS may not be "*": list the origins that may use the relay.');
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      throw invalid(`RELAY_CORS_ORIGINS holds "${text}", which is not an origin like https://app.example.`);
    }
    if (
      (u.protocol !== 'https:' && u.protocol !== 'http:') ||
      u.username !== '' ||
      u.password !== '' ||
      (u.pathname !== '/' && u.pathname !== '') ||
      u.search !== '' ||
      u.hash !== '' ||
      text.replace(/\/$/, '').toLowerCase() !== u.origin.toLowerCase()
    ) {
      throw invalid(`RELAY_CORS_ORIGINS holds "${text}", which is not an origin like https://app.example.`);
    }
    out.add(u.origin);
  }
  return out;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function integer(env: Record<string, string | undefined>, name: string): number | undefined {
  const v = env[name]?.trim();
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw invalid(`${name} must be a whole number, not "${v}".`);
  return Number(v);
}

/** Where the page's TUF client reads the Sigstore trusted root from. */
export interface TufRepositoryUrls {
  metadataUrl: string;
  targetsUrl: string;
}

/**
 * SIGSTORE_TUF_URL and SIGSTORE_TUF_TARGETS_URL (default `<SIGSTORE_TUF_URL>/targets`), checked;
 * null when SIGSTORE_TUF_URL is unset (the page then uses Sigstore's public-good repository).
 * @throws RelayError RELAY_CONFIG_INVALID (also for SIGSTORE_TUF_TARGETS_URL alone)
 */
export function tufRepositoryFromEnv(env: Record<string, string | undefined>): TufRepositoryUrls | null {
  const metadataUrl = env['SIGSTORE_TUF_URL']?.trim() ?? '';
  const targets = env['SIGSTORE_TUF_TARGETS_URL']?.trim() ?? '';
  if (metadataUrl === '') {
    if (targets !== '') throw invalid('SIGSTORE_TUF_TARGETS_URL is set, so SIGSTORE_TUF_URL must be too.');
    return null;
  }
  parseTufUrl(metadataUrl, 'SIGSTORE_TUF_URL');
  const targetsUrl = targets !== '' ? targets : `${metadataUrl.replace(/\/+$/, '')}/targets`;
  parseTufUrl(targetsUrl, 'SIGSTORE_TUF_TARGETS_URL');
  return { metadataUrl: metadataUrl.replace(/\/+$/, ''), targetsUrl: targetsUrl.replace(/\/+$/, '') };
}

function tufUrlsFromEnv(env: Record<string, string | undefined>): string[] {
  const repo = tufRepositoryFromEnv(env);
  return repo === null ? [] : [repo.metadataUrl, repo.targetsUrl];
}

/**
 * Reads the relay's settings from the environment (names in the header comment). Values are
 * checked here for syntax and again, fully, by the middleware factories.
 * @throws RelayError RELAY_CONFIG_INVALID
 */
export function relayOptionsFromEnv(env: Record<string, string | undefined>): RelayOptions {
  const options: RelayOptions = {
    allowedRegistries: list(env['RELAY_ALLOWED_REGISTRIES']),
    privateRegistries: list(env['RELAY_PRIVATE_REGISTRIES']),
    plainHttpRegistries: list(env['RELAY_PLAIN_HTTP_REGISTRIES']),
    corsOrigins: list(env['RELAY_CORS_ORIGINS']),
    tokenRealms: list(env['RELAY_TOKEN_REALMS']),
    sigstoreServices: list(env['RELAY_SIGSTORE_SERVICES']),
  };
  const maxManifestBytes = integer(env, 'RELAY_MAX_MANIFEST_BYTES');
  const upstreamTimeoutMs = integer(env, 'RELAY_UPSTREAM_TIMEOUT_MS');
  const maxRedirects = integer(env, 'RELAY_MAX_REDIRECTS');
  if (maxManifestBytes !== undefined) options.maxManifestBytes = maxManifestBytes;
  if (upstreamTimeoutMs !== undefined) options.upstreamTimeoutMs = upstreamTimeoutMs;
  if (maxRedirects !== undefined) options.maxRedirects = maxRedirects;
  const tufUrls = tufUrlsFromEnv(env);
  if (tufUrls.length > 0) options.tufRepositoryUrls = tufUrls;
  // Fail at start-up, not at the first request.
  normaliseRelayOptions(options);
  normaliseCorsOrigins(options.corsOrigins);
  return options;
}

/** One line describing the configuration, for the server's start-up log. */
export function describeRelayConfig(options: RelayOptions): string {
  const c = normaliseRelayOptions(options);
  const hosts = c.explicit ? [...c.direct].join(', ') : 'the default public registries';
  const plain = c.plainHttp.size > 0 ? `; plain http to ${[...c.plainHttp].join(', ')}` : '';
  const inside = (options.privateRegistries ?? []).filter((e) => e.trim() !== '');
  const priv = inside.length > 0 ? `; private addresses allowed for ${inside.join(', ')}` : '';
  return `relay: reaches ${hosts}${plain}${priv}`;
}

/** One line naming the read-only TUF hosts, for the server's start-up log. */
export function describeTufHosts(options: RelayOptions): string {
  const keys = new Set(tufHosts(options.tufRepositoryUrls ?? []).hosts.map((t) => t.key));
  return `relay: reads the Sigstore TUF repository at ${[...keys].join(', ')} (GET only)`;
}

/**
 * "May this image's registry be named?" (a PKCS#11 signature's identity, a tag lock's key): exactly
 * the registries the relay may reach, Docker Hub (`docker.io`) by its API host.
 */
export function relayRegistryAllowed(relay: RelayOptions): (registry: string) => boolean {
  const config = normaliseRelayOptions(relay);
  return (registry) => {
    const authority = parseAuthority(registry === DOCKER_HUB ? DOCKER_HUB_API : registry);
    if (authority === null) return false;
    const port = authority.port ?? config.schemeFor(authority, undefined).port;
    return config.isDirect(authority, port);
  };
}

/**
 * Sigstore signing configs (`signing_config.json`, media type
 * `application/vnd.dev.sigstore.signingconfig.v0.2+json`): the certificate authorities (Fulcio),
 * OpenID Connect issuers, transparency logs (Rekor) and timestamp authorities a signer uses, each
 * with its major API version, validity period and operator, and how many logs and authorities to
 * use (`rekorTlogConfig`, `tsaConfig`: ALL, ANY, or EXACT with a count).
 * https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_trustroot.proto (SigningConfig)
 *
 * Read strictly, as protojson reads it for sigstore-go and cosign 3.1 (an unknown field, a wrong
 * type or a missing URL is refused whole with SIGNING_CONFIG_INVALID), and services are chosen as
 * sigstore-go's pkg/root/signing_config.go SelectService/SelectServices choose them: among the
 * services valid now, the highest API version the client supports, newest validity start first,
 * one per operator; then all of them (ALL), one at random (ANY) or `count` at random (EXACT).
 */
import { SigningServiceError } from '../errors.ts';
import { isJsonObject, parseJsonObject, validityField, type JsonObject } from './json.ts';
import type { ValidityPeriod } from './types.ts';

export const SIGNING_CONFIG_MEDIA_TYPE = 'application/vnd.dev.sigstore.signingconfig.v0.2+json';

/** Most services of one kind a config may list (public good lists one or two of each). */
const MAX_SERVICES = 64;

export interface SigningService {
  url: string;
  majorApiVersion: number;
  validFor: ValidityPeriod;
  operator: string;
}

export type ServiceSelector = 'ALL' | 'ANY' | 'EXACT';

export interface ServiceConfiguration {
  selector: ServiceSelector | 'UNDEFINED';
  /** How many services EXACT takes (0 otherwise). */
  count: number;
}

export interface SigningConfig {
  mediaType: string;
  caUrls: SigningService[];
  oidcUrls: SigningService[];
  rekorTlogUrls: SigningService[];
  rekorTlogConfig: ServiceConfiguration;
  tsaUrls: SigningService[];
  tsaConfig: ServiceConfiguration;
}

function bad(why: string): SigningServiceError {
  return new SigningServiceError('SIGNING_CONFIG_INVALID', `The signing config is not valid: ${why}.`);
}

/** protojson takes a field by its JSON name or its proto name; both spellings at once is an error. */
function field(o: JsonObject, json: string, proto: string, where: string): unknown {
  if (json !== proto && o[json] !== undefined && o[proto] !== undefined) throw bad(`${where} names ${json} twice`);
  return o[json] ?? o[proto];
}

function onlyKnown(o: JsonObject, names: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!names.includes(k)) throw bad(`${where} has an unknown field "${k}"`);
}

function validity(v: unknown, where: string): ValidityPeriod {
  if (isJsonObject(v)) onlyKnown(v, ['start', 'end'], `${where}'s validFor`);
  return validityField(v, where, bad);
}

/** An http(s) URL without credentials or fragment, as a service's base URL must be. */
function serviceUrl(v: unknown, where: string): string {
  if (typeof v !== 'string' || v === '') throw bad(`${where} has no url`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(`${where}'s url ${JSON.stringify(v)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(`${where}'s url is not http(s)`);
  if (u.username || u.password || u.hash) throw bad(`${where}'s url carries credentials or a fragment`);
  return v;
}

const SERVICE_FIELDS = ['url', 'majorApiVersion', 'major_api_version', 'validFor', 'valid_for', 'operator'];

function service(v: unknown, where: string): SigningService {
  if (!isJsonObject(v)) throw bad(`${where} is not an object`);
  onlyKnown(v, SERVICE_FIELDS, where);
  const version = field(v, 'majorApiVersion', 'major_api_version', where);
  // protojson writes a uint32 as a number and reads a decimal string too.
  const n = typeof version === 'string' && /^\d{1,10}$/.test(version) ? Number(version) : version;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 0xffffffff)
    throw bad(`${where}'s majorApiVersion is not a positive whole number`);
  const operator = v.operator ?? '';
  if (typeof operator !== 'string') throw bad(`${where}'s operator is not text`);
  return {
    url: serviceUrl(v.url, where),
    majorApiVersion: n,
    validFor: validity(field(v, 'validFor', 'valid_for', where), where),
    operator,
  };
}

function services(v: unknown, where: string): SigningService[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`${where} is not a list`);
  if (v.length > MAX_SERVICES) throw bad(`${where} lists more than ${MAX_SERVICES} services`);
  return v.map((s, i) => service(s, `${where}[${i}]`));
}

const SELECTORS: Record<string, ServiceConfiguration['selector']> = {
  SERVICE_SELECTOR_UNDEFINED: 'UNDEFINED',
  ALL: 'ALL',
  ANY: 'ANY',
  EXACT: 'EXACT',
  '0': 'UNDEFINED',
  '1': 'ALL',
  '2': 'ANY',
  '3': 'EXACT',
};

function configuration(v: unknown, where: string): ServiceConfiguration {
  if (v === undefined || v === null) return { selector: 'UNDEFINED', count: 0 };
  if (!isJsonObject(v)) throw bad(`${where} is not an object`);
  onlyKnown(v, ['selector', 'count'], where);
  const raw = v.selector ?? 'SERVICE_SELECTOR_UNDEFINED';
  const selector = typeof raw === 'string' || typeof raw === 'number' ? SELECTORS[String(raw)] : undefined;
  if (!selector) throw bad(`${where}'s selector ${JSON.stringify(raw)} is not ALL, ANY or EXACT`);
  const count = v.count ?? 0;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > 0xffffffff)
    throw bad(`${where}'s count is not a whole number`);
  return { selector, count };
}

const TOP_FIELDS = [
  'mediaType',
  'media_type',
  'caUrls',
  'ca_urls',
  'oidcUrls',
  'oidc_urls',
  'rekorTlogUrls',
  'rekor_tlog_urls',
  'rekorTlogConfig',
  'rekor_tlog_config',
  'tsaUrls',
  'tsa_urls',
  'tsaConfig',
  'tsa_config',
];

/**
 * Reads a signing config v0.2 whole.
 * @throws SigningServiceError SIGNING_CONFIG_INVALID (not JSON, another media type, an unknown
 *   field, a service without a URL, version or validity start, a selector that is not one).
 */
export function parseSigningConfig(json: Uint8Array | string): SigningConfig {
  const o = parseJsonObject(json, bad);
  onlyKnown(o, TOP_FIELDS, 'it');
  const mediaType = field(o, 'mediaType', 'media_type', 'it');
  if (mediaType !== SIGNING_CONFIG_MEDIA_TYPE)
    throw bad(`its media type ${JSON.stringify(mediaType)} is not ${SIGNING_CONFIG_MEDIA_TYPE}`);
  return {
    mediaType,
    caUrls: services(field(o, 'caUrls', 'ca_urls', 'it'), 'caUrls'),
    oidcUrls: services(field(o, 'oidcUrls', 'oidc_urls', 'it'), 'oidcUrls'),
    rekorTlogUrls: services(field(o, 'rekorTlogUrls', 'rekor_tlog_urls', 'it'), 'rekorTlogUrls'),
    rekorTlogConfig: configuration(field(o, 'rekorTlogConfig', 'rekor_tlog_config', 'it'), 'rekorTlogConfig'),
    tsaUrls: services(field(o, 'tsaUrls', 'tsa_urls', 'it'), 'tsaUrls'),
    tsaConfig: configuration(field(o, 'tsaConfig', 'tsa_config', 'it'), 'tsaConfig'),
  };
}

/** sigstore-go's Service.ValidAtTime: both ends inclusive, an absent end open. */
export function serviceValidAt(s: SigningService, t: Date): boolean {
  return t.getTime() >= s.validFor.start.getTime() && (!s.validFor.end || t.getTime() <= s.validFor.end.getTime());
}

function noService(what: string, versions: readonly number[], now: Date): SigningServiceError {
  return new SigningServiceError(
    'SIGNING_CONFIG_NO_SERVICE',
    `The signing config names no ${what} valid now (${now.toISOString()}) that speaks API version ${versions.join(' or ')}.`,
  );
}

/** Newest validity start first (a stable sort, as Go's slices.SortFunc then Reverse gives for distinct starts). */
function newestFirst(list: readonly SigningService[]): SigningService[] {
  return [...list].sort((a, b) => b.validFor.start.getTime() - a.validFor.start.getTime());
}

/**
 * One service as sigstore-go's SelectService picks it (Fulcio, OIDC): the highest supported API
 * version first, then the newest validity start, valid at `now`.
 * @throws SigningServiceError SIGNING_CONFIG_NO_SERVICE
 */
export function selectService(
  list: readonly SigningService[],
  versions: readonly number[],
  now: Date,
  what = 'service',
): SigningService {
  for (const v of [...versions].sort((a, b) => b - a))
    for (const s of newestFirst(list)) if (s.majorApiVersion === v && serviceValidAt(s, now)) return s;
  throw noService(what, versions, now);
}

/**
 * The services to use as sigstore-go's SelectServices picks them (Rekor, TSA): valid at `now`,
 * of the highest supported version any of them speaks, one per operator; then per the config.
 * @param random a number in [0, 1) (Math.random by default), for ANY and EXACT.
 * @throws SigningServiceError SIGNING_CONFIG_NO_SERVICE (none valid, EXACT asks for more than there
 *   are), SIGNING_CONFIG_INVALID (no selector, EXACT with a count of 0).
 */
export function selectServices(
  list: readonly SigningService[],
  config: ServiceConfiguration,
  versions: readonly number[],
  now: Date,
  what = 'service',
  random: () => number = Math.random,
): SigningService[] {
  const operators = new Set<string>();
  const chosen: SigningService[] = [];
  for (const v of [...versions].sort((a, b) => b - a)) {
    for (const s of newestFirst(list)) {
      if (s.majorApiVersion !== v || !serviceValidAt(s, now) || operators.has(s.operator)) continue;
      operators.add(s.operator);
      chosen.push(s);
    }
    if (chosen.length) break;
  }
  if (!chosen.length) throw noService(what, versions, now);
  const pick = (): SigningService => chosen.splice(Math.floor(random() * chosen.length), 1)[0]!;
  switch (config.selector) {
    case 'ALL':
      return chosen;
    case 'ANY':
      return [pick()];
    case 'EXACT': {
      if (config.count === 0) throw bad(`its ${what} selector EXACT has a count of 0`);
      if (config.count > chosen.length)
        throw new SigningServiceError(
          'SIGNING_CONFIG_NO_SERVICE',
          `The signing config asks for exactly ${config.count} ${what}s, but only ${chosen.length} can be used now.`,
        );
      return Array.from({ length: config.count }, pick);
    }
    default:
      throw bad(`it gives no selector (ALL, ANY or EXACT) for its ${what}s`);
  }
}

/**
 * What a signing config offers the sign page (shared/sigstore/signing-config.ts selection, as
 * cosign 3.1 selects), and how the page reaches a service: through the relay, `/relay/<host[:port]><path>`.
 */
import {
  selectServices,
  type ServiceConfiguration,
  type SigningService,
} from '../../../../shared/sigstore/signing-config.ts';
import { relayMessageOf } from '../../../../shared/registry/relay-error.ts';

/** A service offered, or why the config offers none this page can use. */
export type Offer = { service: SigningService } | { none: string };

/** The service the config selects now for these API versions, or why there is none. */
export function offerOf(
  list: SigningService[],
  versions: number[],
  selector: ServiceConfiguration,
  what: string,
  now = new Date(),
): Offer {
  try {
    return { service: selectServices(list, selector, versions, now, what)[0]! };
  } catch (e) {
    const spoken = [...new Set(list.map((s) => s.majorApiVersion))];
    if (what === 'transparency log' && spoken.length && !spoken.some((v) => versions.includes(v)))
      return {
        none: `the config's log speaks Rekor API v${spoken.join('/v')}; this page logs to Rekor v1 and v2 only`,
      };
    return { none: (e as Error).message };
  }
}

/**
 * Fetches a service through the relay; the relay's own refusal to reach it (403 not allowed, 502
 * unreachable, 504 timeout, with its X-Relay-Error) is thrown with the relay's sentence, so that
 * shared/sigstore/services.ts counts it as unreachable.
 */
export async function relayedFetch(origin: string, url: string, init: RequestInit): Promise<Response> {
  const res = await fetch(relayedServiceUrl(origin, url), init);
  const relayed = res.headers.get('X-Relay-Error') === null ? null : relayMessageOf(res.headers);
  if (relayed !== null && [403, 502, 504].includes(res.status)) throw new Error(relayed);
  return res;
}

/** A service URL as the relay's path for it on this origin. Never throws for a URL the config holds. */
export function relayedServiceUrl(origin: string, url: string): string {
  const u = new URL(url);
  return `${origin}/relay/${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/** A service URL's host, for sentences. */
export function serviceHost(url: string): string {
  return new URL(url).host;
}

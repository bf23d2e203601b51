/**
 * The embedded registry's base route, `/v2/` (end-1: "does this registry speak the distribution
 * API?"), and the answer for paths under /v2 that name no resource.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#determining-support
 */
import { DistributionError } from '../errors.ts';
import { empty, json, type RegistryRequest } from '../http.ts';

/** GET and HEAD /v2/: 200 `{}` with the API version header. */
export async function ping(r: RegistryRequest): Promise<Response> {
  return r.method === 'HEAD' ? empty(200, {}) : json({}, 200);
}

/** Anything else under /v2. @throws DistributionError UNSUPPORTED (404) */
export async function notServed(r: RegistryRequest): Promise<Response> {
  throw new DistributionError('UNSUPPORTED', 404, `Nothing is served at ${r.c.req.path}.`);
}

/**
 * The embedded registry's one credential: when the operator sets EMBEDDED_REGISTRY_TOKEN, every
 * request must carry it, as `Authorization: Basic` with any user name and the token as password
 * (what `docker login`, `crane auth login`, `skopeo --creds`, `cosign login` and the page's
 * "Registry password" send) or as `Authorization: Bearer <token>`. Otherwise the answer is 401
 * UNAUTHORIZED with a `WWW-Authenticate: Basic` challenge (RFC 7617), as distribution's htpasswd
 * mode answers, so clients ask for or send their credentials.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { DistributionError } from './errors.ts';
import { classifyAddress } from '../relay/address.ts';

export const REGISTRY_REALM = 'cosign-web embedded registry';

/** The smallest token accepted: long enough that guessing it over HTTP is hopeless. */
export const MIN_TOKEN_LENGTH = 16;

/** Why the secret set as `name` cannot be used as a token, or undefined when it can. */
export function tokenProblem(name: string, token: string): string | undefined {
  if (token.length < MIN_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    return `${name} must be at least ${MIN_TOKEN_LENGTH} printable characters without spaces.`;
  }
  return undefined;
}

/** Whether a listening address is loopback only (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || classifyAddress(h) === 'loopback';
}

function sameSecret(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/** The secret an Authorization header carries: Basic's password or Bearer's token. */
function presented(header: string | undefined): string | undefined {
  const m = /^(Basic|Bearer)\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return undefined;
  if (m[1]!.toLowerCase() === 'bearer') return m[2];
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * Checks a request's Authorization header against the token.
 * @throws DistributionError UNAUTHORIZED (401, with the Basic challenge)
 */
export function checkToken(token: string, authorization: string | undefined): void {
  const secret = presented(authorization);
  if (secret !== undefined && sameSecret(secret, token)) return;
  throw new DistributionError(
    'UNAUTHORIZED',
    401,
    authorization === undefined
      ? 'This registry needs credentials: any user name, with the registry token (EMBEDDED_REGISTRY_TOKEN) as password.'
      : 'These credentials are not accepted: the password must be the registry token (EMBEDDED_REGISTRY_TOKEN).',
    null,
    { 'WWW-Authenticate': `Basic realm="${REGISTRY_REALM}", charset="UTF-8"` },
  );
}

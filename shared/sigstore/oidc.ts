/**
 * The OpenID Connect login of keyless signing, as a public client: the authorization-code flow
 * with PKCE (S256), the issuer's discovery document, the code-for-token exchange, and the claims
 * of the ID token that signing needs. The token's signature is not checked here: Fulcio checks it
 * against the issuer's keys, and the identity a signature names is read from the certificate
 * Fulcio issues, never from these claims.
 * https://openid.net/specs/openid-connect-core-1_0.html §3.1 (code flow)
 * https://openid.net/specs/openid-connect-discovery-1_0.html §3–4
 * https://www.rfc-editor.org/rfc/rfc7636 (PKCE)
 * https://www.rfc-editor.org/rfc/rfc6749 §4.1 (authorization code grant, error responses)
 */
import { KeylessError } from '../errors.ts';
import { sha256Bytes } from '../crypto/digest.ts';
import { randomBytes } from '../crypto/webcrypto.ts';
import { fromBase64Url, toBase64Url, utf8 } from '../encoding/base64.ts';
import { parseJsonObject, type JsonObject } from './json.ts';

/** A fetch as the caller routes it (through the relay, on the page). */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/** The scopes Sigstore's clients ask for (cosign, sigstore-js). */
export const OIDC_SCOPE = 'openid email';

export interface OidcEndpoints {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

/** What a login in progress must remember until its callback: never stored beyond the tab. */
export interface LoginRequest {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
  clientId: string;
  endpoints: OidcEndpoints;
}

/** The claims of an ID token that keyless signing reads. */
export interface IdTokenClaims {
  issuer: string;
  /** What Fulcio's proof of possession signs: the email for an email token, else `sub`. */
  subject: string;
  email: string | null;
  expiresAt: Date;
}

/** A claim's value for a sentence, whatever it is (JSON text, shortened). Never throws. */
function shown(v: unknown): string {
  const text = typeof v === 'string' ? v : (JSON.stringify(v) ?? 'nothing');
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

const loginFailed = (message: string) => new KeylessError('KEYLESS_LOGIN_FAILED', message);
const tokenInvalid = (message: string) => new KeylessError('KEYLESS_TOKEN_INVALID', `The ID token ${message}.`);

/** A PKCE verifier (43 base64url characters of 32 random bytes) and its S256 challenge. Never throws. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = toBase64Url(randomBytes(32));
  return { verifier, challenge: toBase64Url(sha256Bytes(utf8(verifier))) };
}

async function readJson(res: Response, what: string): Promise<JsonObject> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  return parseJsonObject(bytes, (why) => loginFailed(`${what} cannot be read (HTTP ${res.status}): ${why}.`));
}

function httpUrl(value: unknown, what: string): string {
  if (typeof value !== 'string') throw loginFailed(`The issuer's discovery document has no ${what}.`);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw loginFailed(`The issuer's ${what} "${value}" is not a URL.`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw loginFailed(`The issuer's ${what} "${value}" is not an http(s) URL.`);
  return value;
}

/**
 * Reads the issuer's discovery document (`<issuer>/.well-known/openid-configuration`).
 * @throws KeylessError KEYLESS_LOGIN_FAILED when it cannot be read, names another issuer (it must
 *   equal `issuer` exactly, as Fulcio requires) or lacks the endpoints; errors of `fetch` pass.
 */
export async function discoverIssuer(fetch: FetchLike, issuer: string, via = (u: string) => u): Promise<OidcEndpoints> {
  const res = await fetch(via(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`));
  if (!res.ok) throw loginFailed(`The issuer ${issuer} answered HTTP ${res.status} for its discovery document.`);
  const doc = await readJson(res, `The discovery document of ${issuer}`);
  if (doc['issuer'] !== issuer)
    throw loginFailed(
      `The discovery document of ${issuer} names the issuer "${shown(doc['issuer'])}"; they must be equal.`,
    );
  const methods = doc['code_challenge_methods_supported'];
  if (Array.isArray(methods) && !methods.includes('S256'))
    throw loginFailed(`The issuer ${issuer} does not offer PKCE with S256, which a page needs to log in safely.`);
  return {
    issuer,
    authorizationEndpoint: httpUrl(doc['authorization_endpoint'], 'authorization endpoint'),
    tokenEndpoint: httpUrl(doc['token_endpoint'], 'token endpoint'),
  };
}

/** The login to open in a popup or by redirect, with what its callback must be checked against. Never throws. */
export function loginRequest(endpoints: OidcEndpoints, clientId: string, redirectUri: string): LoginRequest {
  const { verifier, challenge } = pkcePair();
  const state = toBase64Url(randomBytes(16));
  const nonce = toBase64Url(randomBytes(16));
  const url = new URL(endpoints.authorizationEndpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: OIDC_SCOPE,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(k, v);
  return { url: url.toString(), state, nonce, verifier, redirectUri, clientId, endpoints };
}

/**
 * The authorization code of a callback (the query of the redirect URI).
 * @throws KeylessError KEYLESS_LOGIN_CANCELLED (the person cancelled: `access_denied`),
 *   KEYLESS_LOGIN_FAILED (another error, a state that is not ours, no code)
 */
export function readCallback(query: string, login: Pick<LoginRequest, 'state'>): string {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const error = params.get('error');
  if (params.get('state') !== login.state)
    throw loginFailed('The login answered for another request (its state differs), so it was not used.');
  if (error === 'access_denied')
    throw new KeylessError('KEYLESS_LOGIN_CANCELLED', 'The login was cancelled; nothing was signed.');
  if (error !== null)
    throw loginFailed(
      `The issuer refused the login: ${error}${params.get('error_description') ? ` (${params.get('error_description')})` : ''}.`,
    );
  const code = params.get('code');
  if (!code) throw loginFailed('The login came back without an authorization code.');
  return code;
}

/**
 * Trades the code for an ID token at the token endpoint (with the PKCE verifier).
 * @throws KeylessError KEYLESS_LOGIN_FAILED when the issuer refuses or answers no id_token;
 *   errors of `fetch` pass.
 */
export async function exchangeCode(
  fetch: FetchLike,
  login: Pick<LoginRequest, 'verifier' | 'redirectUri' | 'clientId' | 'endpoints'>,
  code: string,
  via = (u: string) => u,
): Promise<string> {
  const res = await fetch(via(login.endpoints.tokenEndpoint), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: login.redirectUri,
      client_id: login.clientId,
      code_verifier: login.verifier,
    }).toString(),
  });
  const body = await readJson(res, "The issuer's token answer");
  if (!res.ok || typeof body['id_token'] !== 'string') {
    const why =
      typeof body['error'] === 'string'
        ? `${body['error']}${typeof body['error_description'] === 'string' ? `: ${body['error_description']}` : ''}`
        : `HTTP ${res.status}`;
    throw loginFailed(`The issuer did not give an ID token (${why}).`);
  }
  return body['id_token'];
}

/**
 * The claims of an ID token this login asked for, checked for what a signer can check without
 * the issuer's keys: issuer, audience, expiry, nonce.
 * @throws KeylessError KEYLESS_TOKEN_INVALID
 */
export function readIdToken(
  jwt: string,
  expect: { issuer: string; clientId: string; nonce?: string; now?: Date },
): IdTokenClaims {
  const parts = jwt.split('.');
  if (parts.length !== 3) throw tokenInvalid('is not a JWT (three base64url parts)');
  const bytes = fromBase64Url(parts[1]!);
  if (!bytes) throw tokenInvalid('has claims that are not base64url');
  const c = parseJsonObject(bytes, (why) => tokenInvalid(`has no JSON claims: ${why}`));
  if (c['iss'] !== expect.issuer) throw tokenInvalid(`is from "${shown(c['iss'])}", not ${expect.issuer}`);
  const aud = c['aud'];
  if (!(aud === expect.clientId || (Array.isArray(aud) && aud.includes(expect.clientId))))
    throw tokenInvalid(`is not for the client "${expect.clientId}"`);
  const expiresAt = new Date(typeof c['exp'] === 'number' ? c['exp'] * 1000 : NaN);
  if (Number.isNaN(expiresAt.getTime())) throw tokenInvalid('has no valid expiry (exp)');
  if (expiresAt.getTime() <= (expect.now ?? new Date()).getTime())
    throw tokenInvalid(`expired at ${expiresAt.toISOString()}`);
  if (expect.nonce !== undefined && c['nonce'] !== expect.nonce)
    throw tokenInvalid('answers another login (its nonce differs)');
  const email = typeof c['email'] === 'string' ? c['email'] : null;
  const subject = email ?? (typeof c['sub'] === 'string' ? c['sub'] : null);
  if (!subject) throw tokenInvalid('names no subject (neither email nor sub)');
  return { issuer: expect.issuer, subject, email, expiresAt };
}

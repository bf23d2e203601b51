// An OpenID Connect issuer of the project's own for tests, on 127.0.0.1: what Fulcio needs of an
// issuer of the `email` type, and what a browser needs to log in with the authorization-code flow
// and PKCE (RFC 7636). ID tokens are RS256 JWTs signed with `jose` (panva/jose, a well-kept JOSE
// library), as Sigstore's own test issuer signs them.
//
// - `GET /.well-known/openid-configuration`: the discovery document (OpenID Connect Discovery 1.0
//   §3); its `issuer` is this server's URL exactly, as Fulcio requires.
// - `GET /jwks`: the signing key (RFC 7517).
// - `GET /authorize?response_type=code&client_id&redirect_uri&state&nonce&code_challenge&code_challenge_method=S256`:
//   a login page with an "Email" field, "Sign in" and "Cancel" buttons; `POST /authorize` redirects
//   to redirect_uri with `code` and `state` (or `error=access_denied` on Cancel).
// - `POST /token` (form: grant_type=authorization_code, code, redirect_uri, client_id,
//   code_verifier): checks the PKCE verifier against the challenge and answers
//   `{id_token, access_token, token_type, expires_in}`, with CORS for any origin (as Dex's
//   `allowedOrigins: ['*']` does), since a page calls it from the browser.
// Every request is recorded (method, path, headers, body) so tests can check what was sent where.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

/** The claims the issuer puts in a token besides iss, aud, iat, exp. */
export interface TokenClaims {
  email: string;
  email_verified?: boolean;
  sub?: string;
  [claim: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface OidcIssuer {
  /** `http://127.0.0.1:<port>`: the issuer URL, `iss` of its tokens. */
  url: string;
  /** A signed ID token for `claims` (audience `sigstore` unless given), valid for `ttlSeconds` (default 300). */
  token(claims: TokenClaims, opts?: { audience?: string; ttlSeconds?: number; issuedAt?: number }): Promise<string>;
  /** Every request answered so far. */
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
  email: string;
}

const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action *";

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(params: URLSearchParams): string {
  const hidden = [...params]
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Rig issuer: sign in</title>
<meta name="viewport" content="width=device-width"></head><body style="font-family:sans-serif;max-width:30em;margin:2em auto">
<h1>Sign in to the rig's issuer</h1>
<form method="post" action="/authorize">${hidden}
<p><label for="email">Email</label><br><input id="email" name="email" type="email" required value="alice@rig.test"></p>
<p><button type="submit" name="action" value="allow">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button></p>
</form></body></html>`;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

/**
 * Starts the issuer on 127.0.0.1 (a free port).
 * @param opts.clientId the client id the login accepts (default `sigstore`, the public-good one)
 */
export async function startOidcIssuer(opts: { clientId?: string } = {}): Promise<OidcIssuer> {
  const clientId = opts.clientId ?? 'sigstore';
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = randomBytes(8).toString('hex');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const codes = new Map<string, PendingCode>();
  const requests: RecordedRequest[] = [];
  let url = '';

  const token: OidcIssuer['token'] = async (claims, o = {}) => {
    const now = o.issuedAt ?? Math.floor(Date.now() / 1000);
    return new SignJWT({ email_verified: true, sub: claims.email, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(url)
      .setAudience(o.audience ?? clientId)
      .setIssuedAt(now)
      .setExpirationTime(now + (o.ttlSeconds ?? 300))
      .sign(privateKey);
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
      ...headers,
    });
    res.end(text);
  };
  const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': 'Content-Type' };

  async function tokenEndpoint(body: string, res: http.ServerResponse): Promise<void> {
    const form = new URLSearchParams(body);
    const bad = (error: string, description: string) => send(res, 400, { error, error_description: description }, cors);
    if (form.get('grant_type') !== 'authorization_code')
      return bad('unsupported_grant_type', 'only authorization_code');
    const pending = codes.get(form.get('code') ?? '');
    if (!pending) return bad('invalid_grant', 'unknown or used code');
    codes.delete(form.get('code')!);
    if (form.get('client_id') !== pending.clientId) return bad('invalid_client', 'another client asked for this code');
    if (form.get('redirect_uri') !== pending.redirectUri) return bad('invalid_grant', 'redirect_uri differs');
    if (s256(form.get('code_verifier') ?? '') !== pending.challenge)
      return bad('invalid_grant', 'the PKCE code_verifier does not match the challenge');
    const idToken = await token({ email: pending.email, ...(pending.nonce ? { nonce: pending.nonce } : {}) });
    send(
      res,
      200,
      { id_token: idToken, access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 300 },
      cors,
    );
  }

  function authorizeGet(params: URLSearchParams, res: http.ServerResponse): void {
    if (params.get('response_type') !== 'code' || params.get('client_id') !== clientId)
      return send(res, 400, {
        error: 'invalid_request',
        error_description: `response_type=code and client_id=${clientId} are needed`,
      });
    if (params.get('code_challenge_method') !== 'S256' || !params.get('code_challenge'))
      return send(res, 400, { error: 'invalid_request', error_description: 'PKCE with S256 is required' });
    send(res, 200, loginPage(params), { 'Content-Security-Policy': PAGE_CSP });
  }

  function authorizePost(body: string, res: http.ServerResponse): void {
    const form = new URLSearchParams(body);
    const redirect = new URL(form.get('redirect_uri') ?? '');
    const state = form.get('state');
    if (state !== null) redirect.searchParams.set('state', state);
    if (form.get('action') !== 'allow') {
      redirect.searchParams.set('error', 'access_denied');
      redirect.searchParams.set('error_description', 'The user cancelled the login.');
    } else {
      const code = randomBytes(16).toString('hex');
      codes.set(code, {
        clientId: form.get('client_id') ?? '',
        redirectUri: form.get('redirect_uri') ?? '',
        challenge: form.get('code_challenge') ?? '',
        nonce: form.get('nonce'),
        email: form.get('email') ?? '',
      });
      redirect.searchParams.set('code', code);
    }
    res.writeHead(302, { Location: redirect.toString() });
    res.end();
  }

  const server = http.createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', url);
      const body = req.method === 'POST' ? await readBody(req) : '';
      requests.push({ method: req.method ?? '', path: u.pathname + u.search, headers: req.headers, body });
      if (req.method === 'OPTIONS') return send(res, 204, '', { ...cors, 'Access-Control-Allow-Methods': 'POST' });
      if (u.pathname === '/.well-known/openid-configuration')
        return send(
          res,
          200,
          {
            issuer: url,
            authorization_endpoint: `${url}/authorize`,
            token_endpoint: `${url}/token`,
            jwks_uri: `${url}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
            code_challenge_methods_supported: ['S256'],
            scopes_supported: ['openid', 'email'],
            grant_types_supported: ['authorization_code'],
          },
          cors,
        );
      if (u.pathname === '/jwks') return send(res, 200, { keys: [jwk] }, cors);
      if (u.pathname === '/authorize' && req.method === 'GET') return authorizeGet(u.searchParams, res);
      if (u.pathname === '/authorize' && req.method === 'POST') return authorizePost(body, res);
      if (u.pathname === '/token' && req.method === 'POST') return tokenEndpoint(body, res);
      send(res, 404, { error: 'not_found' });
    })().catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: (e as Error).message });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    token,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

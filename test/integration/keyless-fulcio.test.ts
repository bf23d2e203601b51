/**
 * Keyless signing's first half against the REAL Fulcio (v1.8.8, ephemeral CA) and the project's
 * own OpenID Connect issuer (test/rig/oidc-issuer.ts), both on loopback: the login (discovery,
 * authorization code with PKCE, the code traded for an ID token), the token's claims, and a
 * certificate from Fulcio for a fresh non-extractable WebCrypto key, checked against the trusted
 * root. Every refusal by its code: Fulcio refusing an expired token, another audience, an
 * unverified email; a certificate for another key (Fulcio asked, on the way, for another key than
 * ours); a root without Fulcio's CA; a cancelled login; a PKCE verifier that does not match; a state
 * that is not ours.
 *
 * The issuer is driven as a browser would (GET the login page, POST its form, follow the redirect);
 * `test/e2e/` drives the same page in Chromium.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CosignWebError } from '../../shared/errors.ts';
import { exportSpki, generateEcdsaKeyPair, signWithCryptoKey } from '../../shared/crypto/webcrypto.ts';
import { utf8 } from '../../shared/encoding/base64.ts';
import { certificateFacts } from '../../shared/sigstore/certificate.ts';
import { requestSigningCertificate } from '../../shared/sigstore/fulcio.ts';
import {
  discoverIssuer,
  exchangeCode,
  loginRequest,
  readCallback,
  readIdToken,
  type LoginRequest,
} from '../../shared/sigstore/oidc.ts';
import { parseTrustedRoot } from '../../shared/sigstore/trusted-root.ts';
import type { TrustedRoot } from '../../shared/sigstore/types.ts';
import { startFulcio, type Fulcio } from '../rig/fulcio.ts';
import { startOidcIssuer, type OidcIssuer } from '../rig/oidc-issuer.ts';
import { startSigstoreServices, type SigstoreServices } from '../rig/sigstore-services.ts';
import { useRig } from './rig-context.ts';

const rig = useRig({ prefix: 'cosign-web-keyless-' });
const REDIRECT = 'http://localhost:8080/oidc-callback';
let issuer: OidcIssuer;
let fulcio: Fulcio;
let services: SigstoreServices;
let root: TrustedRoot;

beforeAll(async () => {
  issuer = await startOidcIssuer();
  fulcio = await startFulcio({ dir: await rig.tempDir('cosign-web-fulcio-'), issuerUrl: issuer.url });
  services = await startSigstoreServices({
    certificateAuthorities: [{ uri: fulcio.url, chainPem: fulcio.chainPem }],
  });
  root = parseTrustedRoot(readFileSync(services.trustedRootFile));
}, 180_000);
afterAll(async () => {
  await services?.stop();
  await fulcio?.stop();
  await issuer?.stop();
});

/** The login page's form posted as a person would: "Sign in" (or "Cancel") with `email`. */
async function login(req: LoginRequest, email: string, action: 'allow' | 'cancel' = 'allow'): Promise<string> {
  const page = await fetch(req.url);
  expect(page.status).toBe(200);
  const html = await page.text();
  expect(html).toContain('<label for="email">Email</label>');
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    form.set(
      m[1]!,
      m[2]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))),
    );
  form.set('email', email);
  form.set('action', action);
  const res = await fetch(`${issuer.url}/authorize`, { method: 'POST', body: form, redirect: 'manual' });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(location.origin + location.pathname).toBe(REDIRECT);
  return location.search;
}

async function freshKey() {
  const pair = await generateEcdsaKeyPair('P-256', false);
  return { pair, spki: await exportSpki(pair.publicKey) };
}

const proofOver = (subject: string, key: CryptoKey): Promise<Uint8Array> =>
  signWithCryptoKey(key, { kind: 'ecdsa', curve: 'P-256' }, utf8(subject));

type Key = Awaited<ReturnType<typeof freshKey>>;

/** Asks the real Fulcio for a certificate for `key` (a fresh one by default), proving it over `subject`. */
async function askFulcio(
  idToken: string,
  o: { key?: Key; subject?: string; via?: typeof fetch; url?: string; root?: TrustedRoot } = {},
) {
  const key = o.key ?? (await freshKey());
  return requestSigningCertificate(o.via ?? fetch, {
    url: o.url ?? fulcio.url,
    idToken,
    spki: key.spki,
    curve: 'P-256',
    proof: await proofOver(o.subject ?? 'alice@rig.test', key.pair.privateKey),
    root: o.root ?? root,
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (e) {
    return e instanceof CosignWebError ? e.code : `not a project error: ${(e as Error).message}`;
  }
}

describe('the login', () => {
  it('discovers the issuer, logs in with PKCE and reads the ID token', async () => {
    const endpoints = await discoverIssuer(fetch, issuer.url);
    expect(endpoints.tokenEndpoint).toBe(`${issuer.url}/token`);
    const req = loginRequest(endpoints, 'sigstore', REDIRECT);
    expect(new URL(req.url).searchParams.get('code_challenge_method')).toBe('S256');
    const code = readCallback(await login(req, 'alice@rig.test'), req);
    const token = await exchangeCode(fetch, req, code);
    const claims = readIdToken(token, { issuer: issuer.url, clientId: 'sigstore', nonce: req.nonce });
    expect(claims.subject).toBe('alice@rig.test');
    expect(claims.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });

  it('is refused by code when cancelled, answered for another state, or traded with another verifier', async () => {
    const endpoints = await discoverIssuer(fetch, issuer.url);
    const req = loginRequest(endpoints, 'sigstore', REDIRECT);
    const cancelled = await login(req, 'alice@rig.test', 'cancel');
    expect(await codeOf(Promise.resolve().then(() => readCallback(cancelled, req)))).toBe('KEYLESS_LOGIN_CANCELLED');

    const other = loginRequest(endpoints, 'sigstore', REDIRECT);
    const answer = await login(other, 'alice@rig.test');
    expect(await codeOf(Promise.resolve().then(() => readCallback(answer, req)))).toBe('KEYLESS_LOGIN_FAILED');

    const code = readCallback(answer, other);
    expect(await codeOf(exchangeCode(fetch, { ...other, verifier: req.verifier }, code))).toBe('KEYLESS_LOGIN_FAILED');
  });

  it('refuses a token for another client, from another issuer, expired, or for another nonce', async () => {
    const expect_ = { issuer: issuer.url, clientId: 'sigstore' };
    const read = (t: string, e: Parameters<typeof readIdToken>[1] = expect_) =>
      codeOf(Promise.resolve().then(() => readIdToken(t, e)));
    expect(await read(await issuer.token({ email: 'a@rig.test' }, { audience: 'other' }))).toBe(
      'KEYLESS_TOKEN_INVALID',
    );
    expect(await read(await issuer.token({ email: 'a@rig.test' }), { ...expect_, issuer: 'http://127.0.0.1:1' })).toBe(
      'KEYLESS_TOKEN_INVALID',
    );
    const old = Math.floor(Date.now() / 1000) - 3600;
    expect(await read(await issuer.token({ email: 'a@rig.test' }, { issuedAt: old, ttlSeconds: 60 }))).toBe(
      'KEYLESS_TOKEN_INVALID',
    );
    expect(await read(await issuer.token({ email: 'a@rig.test', nonce: 'x' }), { ...expect_, nonce: 'y' })).toBe(
      'KEYLESS_TOKEN_INVALID',
    );
    expect(await read('not.a-jwt')).toBe('KEYLESS_TOKEN_INVALID');
  });
});

describe("Fulcio's certificate", () => {
  it('is issued for our key and identity, and chains to the trusted root', async () => {
    const cert = await askFulcio(await issuer.token({ email: 'alice@rig.test' }));
    const facts = certificateFacts(cert.parsed);
    expect(facts.identities).toEqual(['alice@rig.test']);
    expect(facts.issuer).toBe(issuer.url);
    expect(cert.authority).toBe(fulcio.url);
    // The ephemeral CA signs leaves directly: no intermediates, the root is in the trusted root only.
    expect(cert.intermediates).toEqual([]);
  });

  it('is refused by Fulcio for an expired token, another audience, an unverified email, a wrong proof', async () => {
    const ask = async (idToken: string, subject?: string) => codeOf(askFulcio(idToken, subject ? { subject } : {}));
    const old = Math.floor(Date.now() / 1000) - 3600;
    expect(await ask(await issuer.token({ email: 'alice@rig.test' }, { issuedAt: old, ttlSeconds: 60 }))).toBe(
      'FULCIO_REFUSED',
    );
    expect(await ask(await issuer.token({ email: 'alice@rig.test' }, { audience: 'other-client' }))).toBe(
      'FULCIO_REFUSED',
    );
    expect(await ask(await issuer.token({ email: 'alice@rig.test', email_verified: false }))).toBe('FULCIO_REFUSED');
    expect(await ask(await issuer.token({ email: 'alice@rig.test' }), 'bob@rig.test')).toBe('FULCIO_REFUSED');
  });

  it('keeps what Fulcio said when it refuses', async () => {
    const old = Math.floor(Date.now() / 1000) - 3600;
    const idToken = await issuer.token({ email: 'alice@rig.test' }, { issuedAt: old, ttlSeconds: 60 });
    const e = (await askFulcio(idToken).catch((x: unknown) => x)) as CosignWebError;
    expect(e).toBeInstanceOf(CosignWebError);
    expect(e.message).toMatch(/^Fulcio refused to issue a certificate \(HTTP 40\d\): .+/);
  });

  it('is not used when it is for another key than ours (a request changed on its way)', async () => {
    const ours = await freshKey();
    const theirs = await freshKey();
    const idToken = await issuer.token({ email: 'alice@rig.test' });
    const theirProof = await proofOver('alice@rig.test', theirs.pair.privateKey);
    // A relay in the middle swaps in another key and its proof: the real Fulcio certifies that one.
    const swapping: typeof fetch = async (url, init) => {
      const body = JSON.parse(String(init!.body)) as {
        publicKeyRequest: { publicKey: { content: string }; proofOfPossession: string };
      };
      const { publicKeyPem } = await import('../../shared/crypto/keys.ts');
      body.publicKeyRequest.publicKey.content = publicKeyPem(theirs.spki);
      body.publicKeyRequest.proofOfPossession = Buffer.from(theirProof).toString('base64');
      return fetch(url, { ...init, body: JSON.stringify(body) });
    };
    expect(await codeOf(askFulcio(idToken, { key: ours, via: swapping }))).toBe('FULCIO_KEY_MISMATCH');
  });

  it('is not used when it does not chain to the trusted root, and Fulcio unreachable is its own code', async () => {
    const idToken = await issuer.token({ email: 'alice@rig.test' });
    const noCa: TrustedRoot = { ...root, certificateAuthorities: [] };
    expect(await codeOf(askFulcio(idToken, { root: noCa }))).toBe('FULCIO_CERTIFICATE_UNTRUSTED');
    expect(await codeOf(askFulcio(idToken, { url: 'http://127.0.0.1:9' }))).toBe('FULCIO_UNREACHABLE');
  });
});

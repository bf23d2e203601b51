/**
 * The app as a whole (server/app.ts) through `app.request()`: the page is still served from the
 * static root with its strict CSP, /healthz answers, unknown paths get the JSON 404, relay
 * responses carry the relay's own security headers instead of the page's, and errors thrown in the
 * mounted sub-apps (/locks, /pkcs11) are answered by the app's one onError.
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import {
  answerError,
  CONTENT_SECURITY_POLICY,
  createApp,
  PERMISSIONS_POLICY,
  RELAY_CONTENT_SECURITY_POLICY,
} from '../../../server/app.ts';
import { createLocks } from '../../../server/locks.ts';
import { createPkcs11Routes, pkcs11NotConfigured } from '../../../server/pkcs11/routes.ts';
import { LockError, Pkcs11Error } from '../../../shared/errors.ts';
import { relayApp, testStaticRoot } from './loopback.ts';

describe('createApp', () => {
  const { app } = relayApp({});

  it('serves the page with its CSP', async () => {
    const res = await app.request('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('cosign-web test page');
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('permissions-policy')).toBe(PERMISSIONS_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("require-trusted-types-for 'script'");
  });

  it('never serves a source map, even one left in the static folder', async () => {
    const res = await app.request('/app.js.map');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('NOT_FOUND');
  });

  it('answers /healthz', async () => {
    const res = await app.request('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers unknown paths with the JSON 404', async () => {
    const res = await app.request('/nothing-here');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 'NOT_FOUND', message: 'Nothing is served at /nothing-here.' });
  });

  it('gives relay answers the relay headers, not the page ones', async () => {
    for (const path of ['/relay', '/relay/', '/relay/evil.example/v2/']) {
      const res = await app.request(path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('x-relay-error'), path).not.toBeNull();
      expect(res.headers.get('content-security-policy')).toBe(RELAY_CONTENT_SECURITY_POLICY);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('cross-origin-opener-policy')).toBeNull();
    }
  });
});

describe('errors cross HTTP in app.onError', () => {
  const API_TOKEN = 'app-test-api-token-0123';
  const provider = { listKeys: async () => [], sign: async () => Promise.reject(new Error('unused')), close: () => {} };

  /** Status, the headers that matter here, and the body, which must be exactly {code, message}. */
  async function answer(res: Response) {
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['code', 'message']);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    return { status: res.status, code: body.code, message: body.message };
  }

  it('sub-apps have no onError of their own: what they throw reaches the parent', async () => {
    const seen: unknown[] = [];
    const parent = new Hono()
      .route('/locks', createLocks())
      .route('/pkcs11', pkcs11NotConfigured())
      .route('/keys', createPkcs11Routes({ provider, apiToken: API_TOKEN }))
      .onError((err, c) => {
        seen.push(err);
        return c.text('the parent answered', 418);
      });
    const lock = await parent.request('/locks/release', { method: 'POST', body: '{}' });
    const none = await parent.request('/pkcs11/keys');
    const unauthorized = await parent.request('/keys/keys');
    expect([lock.status, none.status, unauthorized.status]).toEqual([418, 418, 418]);
    expect(seen.map((e) => [e?.constructor, (e as LockError | Pkcs11Error).code])).toEqual([
      [LockError, 'LOCK_BAD_REQUEST'],
      [Pkcs11Error, 'PKCS11_NOT_CONFIGURED'],
      [Pkcs11Error, 'PKCS11_UNAUTHORIZED'],
    ]);
  });

  it('answers a LockError from /locks with its status and code', async () => {
    const app = createApp({ staticRoot: testStaticRoot() });
    const bad = await app.request('/locks/acquire', { method: 'POST', body: 'not json' });
    expect(await answer(bad)).toEqual({
      status: 400,
      code: 'LOCK_BAD_REQUEST',
      message: 'A lock key names one tag: "<registry>/<repository>:<tag>", as the page writes it.',
    });
    expect(bad.headers.get('x-relay-error')).toBeNull();
    const release = await app.request('/locks/release', { method: 'POST', body: JSON.stringify({ key: 'r/x:t' }) });
    expect(await answer(release)).toEqual({
      status: 400,
      code: 'LOCK_BAD_REQUEST',
      message: 'A release needs the "key" and the "token".',
    });
  });

  it('answers a Pkcs11Error from /pkcs11 with its status, code and headers', async () => {
    const off = await createApp({ staticRoot: testStaticRoot() }).request('/pkcs11/keys');
    expect(await answer(off)).toEqual({
      status: 404,
      code: 'PKCS11_NOT_CONFIGURED',
      message: 'This server has no PKCS#11 module configured (PKCS11_MODULE), so it offers no token keys.',
    });
    const app = createApp({ staticRoot: testStaticRoot(), pkcs11: { provider, apiToken: API_TOKEN, log: () => {} } });
    const res = await app.request('/pkcs11/keys', { headers: { Authorization: 'Bearer wrong-token-0123456789' } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="pkcs11"');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-relay-error')).toBeNull();
    expect(await answer(res)).toEqual({
      status: 401,
      code: 'PKCS11_UNAUTHORIZED',
      message: 'This endpoint needs the PKCS#11 API token the operator configured.',
    });
    const failed = new Pkcs11Error('PKCS11_MODULE_FAILED', 'The PKCS#11 module could not be loaded.', 502);
    const broken = createApp({ staticRoot: testStaticRoot(), pkcs11: { provider: failed, apiToken: API_TOKEN } });
    const keys = await broken.request('/pkcs11/keys', { headers: { Authorization: `Bearer ${API_TOKEN}` } });
    expect(await answer(keys)).toEqual({
      status: 502,
      code: 'PKCS11_MODULE_FAILED',
      message: 'The PKCS#11 module could not be loaded.',
    });
  });

  it('answers anything else with 500 SERVER_ERROR, saying nothing of it', async () => {
    const logged: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => logged.push(args);
    try {
      const sub = new Hono().get('/boom', () => {
        throw new TypeError('PIN 4711 at /work/main/server/x.ts:1:1');
      });
      const app = new Hono().route('/sub', sub).onError(answerError);
      const res = await app.request('/sub/boom');
      const text = await res.text();
      expect(res.status).toBe(500);
      expect(JSON.parse(text)).toEqual({ code: 'SERVER_ERROR', message: 'The server failed to handle this request.' });
      expect(res.headers.get('x-relay-error')).toBeNull();
      expect(text).not.toMatch(/4711|x\.ts|TypeError/);
    } finally {
      console.error = original;
    }
    expect(JSON.stringify(logged)).not.toContain('4711');
  });
});

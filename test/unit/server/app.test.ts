/**
 * The app as a whole (server/app.ts) through `app.request()`: the page is still served from the
 * static root with its strict CSP, /healthz answers, unknown paths get the JSON 404, and relay
 * responses carry the relay's own security headers instead of the page's.
 */
import { describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, RELAY_CONTENT_SECURITY_POLICY } from '../../../server/app.ts';
import { relayApp } from './loopback.ts';

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

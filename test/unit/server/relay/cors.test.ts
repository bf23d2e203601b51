/**
 * Who may call the relay from a browser (server/relay/cors.ts), through `app.request()`: by
 * default only the page's own origin, with no CORS headers at all; RELAY_CORS_ORIGINS adds
 * origins that get preflight answers and CORS headers, errors included. Other sites are refused
 * with 403 RELAY_ORIGIN_REFUSED before the relay resolves or connects.
 */
import { describe, expect, it } from 'vitest';
import { relayApp, scriptedUpstream, stubLookup } from '../loopback.ts';

function setup(corsOrigins?: string[]) {
  const { lookup, asked } = stubLookup({ 'ghcr.io': ['140.82.121.34'] });
  const script = scriptedUpstream(
    Array.from({ length: 10 }, () => ({ status: 200, headers: { 'Docker-Content-Digest': 'sha256:abc' }, body: '{}' })),
  );
  const { app } = relayApp({
    lookup,
    requestUpstream: script.requestUpstream,
    ...(corsOrigins ? { corsOrigins } : {}),
  });
  return { app, asked, attempts: script.attempts };
}

describe('default: the page origin only', () => {
  it('serves same-origin requests without any CORS header', async () => {
    const { app, attempts } = setup();
    const cases: Record<string, string>[] = [
      {},
      { Origin: 'http://localhost' },
      { 'Sec-Fetch-Site': 'same-origin' },
      { 'Sec-Fetch-Site': 'none' },
    ];
    for (const headers of cases) {
      const res = await app.request('http://localhost/relay/ghcr.io/v2/', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-expose-headers')).toBeNull();
    }
    expect(attempts).toHaveLength(4);
  });

  it('refuses other origins and cross-site requests without resolving or connecting', async () => {
    const { app, asked, attempts } = setup();
    const cases: Record<string, string>[] = [
      { Origin: 'https://evil.example' },
      { Origin: 'http://localhost:8080' },
      // The scheme is part of the origin: the page is served over http here.
      { Origin: 'https://localhost', 'Sec-Fetch-Site': 'same-origin' },
      { Origin: 'null' },
      { Origin: 'not a url' },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
    ];
    for (const headers of cases) {
      for (const method of ['GET', 'PUT']) {
        const res = await app.request('http://localhost/relay/ghcr.io/v2/r/manifests/x', {
          method,
          headers,
          ...(method === 'PUT' ? { body: '{}' } : {}),
        });
        expect(res.status, JSON.stringify(headers)).toBe(403);
        expect(res.headers.get('x-relay-error')).toBe('RELAY_ORIGIN_REFUSED');
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
        expect(((await res.json()) as { code: string }).code).toBe('RELAY_ORIGIN_REFUSED');
      }
    }
    const preflight = await app.request('http://localhost/relay/ghcr.io/v2/', {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'PUT' },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });
});

describe('RELAY_CORS_ORIGINS', () => {
  it('answers preflights for listed origins', async () => {
    const { app, attempts } = setup(['https://app.example']);
    const res = await app.request('http://localhost/relay/ghcr.io/v2/r/blobs/uploads/', {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, docker-content-digest, x-evil',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, HEAD, PUT, POST, PATCH, DELETE');
    const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase().split(', ');
    expect(allowed).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'range', 'accept', 'docker-content-digest', 'if-match']),
    );
    expect(allowed).not.toContain('x-evil');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('vary')).toContain('Origin');
    expect(attempts).toEqual([]);
  });

  it('adds CORS headers to relayed answers and to relay errors, for listed origins only', async () => {
    const { app } = setup(['https://app.example']);
    const ok = await app.request('http://localhost/relay/ghcr.io/v2/', {
      headers: { Origin: 'https://app.example' },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const exposed = ok.headers.get('access-control-expose-headers')!.split(', ');
    expect(exposed).toEqual(
      expect.arrayContaining([
        'Location',
        'WWW-Authenticate',
        'Docker-Content-Digest',
        'X-Relay-Error',
        'X-Relay-Message',
        'Range',
        'ETag',
      ]),
    );
    expect(ok.headers.get('vary')).toBe('Origin');
    const err = await app.request('http://localhost/relay/evil.example/v2/', {
      headers: { Origin: 'https://app.example' },
    });
    expect(err.status).toBe(403);
    expect(err.headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
    expect(err.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await app.request('http://localhost/relay/ghcr.io/v2/', {
      headers: { Origin: 'https://other.example' },
    });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('refuses "*" and malformed origins when the app is made', () => {
    expect(() => setup(['*'])).toThrow(/RELAY_CORS_ORIGINS/);
    expect(() => setup(['https://app.example/path'])).toThrow(/RELAY_CORS_ORIGINS/);
  });
});

/**
 * The relay's Sigstore service hosts (server/relay/config.ts DEFAULT_SIGSTORE_SERVICES,
 * RELAY_SIGSTORE_SERVICES, SIGSTORE_SERVICE_PATHS; server/relay/relay.ts): the sign page's log
 * upload and timestamp request reach the public-good services by default, also when
 * RELAY_ALLOWED_REGISTRIES replaces the registry defaults; any other path or method to them is
 * refused before anything is resolved; an operator's list replaces the defaults and may name
 * loopback. Traffic goes only to 127.0.0.1; other addresses exist only in stubbed resolver answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_SIGSTORE_SERVICES, relayOptionsFromEnv } from '../../../../server/relay/config.ts';
import { PUBLIC_GOOD_SIGNING_CONFIG } from '../../../../shared/sigstore/shipped-signing-config.ts';
import { parseSigningConfig } from '../../../../shared/sigstore/signing-config.ts';
import { relayApp, scriptedUpstream, startLoopback, stubLookup, type Loopback } from '../loopback.ts';

const PUBLIC = '151.101.0.1';
const servers: Loopback[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('Sigstore services through the relay', () => {
  it('the default list is every host of the shipped signing config, the OIDC issuer included', () => {
    const sc = parseSigningConfig(PUBLIC_GOOD_SIGNING_CONFIG.json);
    const hosts = [...sc.caUrls, ...sc.oidcUrls, ...sc.rekorTlogUrls, ...sc.tsaUrls].map((s) => new URL(s.url).host);
    expect([...DEFAULT_SIGSTORE_SERVICES].sort()).toEqual([...new Set(hosts)].sort());
  });

  it('relays a timestamp request and a Rekor v2 upload to the defaults, also with an explicit registry list', async () => {
    for (const allowedRegistries of [[], ['registry.example']]) {
      const { lookup } = stubLookup({ 'timestamp.sigstore.dev': [PUBLIC], 'rekor.sigstore.dev': [PUBLIC] });
      const { requestUpstream, attempts } = scriptedUpstream([
        { status: 200, body: 'tsr' },
        { status: 201, body: '{}' },
      ]);
      const { app } = relayApp({ allowedRegistries, lookup, requestUpstream });
      const tsa = await app.request('/relay/timestamp.sigstore.dev/api/v1/timestamp', { method: 'POST', body: 'q' });
      expect(tsa.status).toBe(200);
      const log = await app.request('/relay/rekor.sigstore.dev/api/v2/log/entries', { method: 'POST', body: '{}' });
      expect(log.status).toBe(201);
      expect(attempts.map((a) => [a.method, a.path, a.port])).toEqual([
        ['POST', '/api/v1/timestamp', 443],
        ['POST', '/api/v2/log/entries', 443],
      ]);
    }
  });

  it("relays an OIDC issuer's discovery document and token endpoint, and nothing else of it (its login page is the browser's)", async () => {
    const { lookup } = stubLookup({ 'oauth2.sigstore.dev': [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([
      { status: 200, body: '{}' },
      { status: 200, body: '{}' },
    ]);
    const { app } = relayApp({ lookup, requestUpstream });
    const discovery = await app.request('/relay/oauth2.sigstore.dev/auth/.well-known/openid-configuration');
    expect(discovery.status).toBe(200);
    const token = await app.request('/relay/oauth2.sigstore.dev/auth/token', { method: 'POST', body: 'code=x' });
    expect(token.status).toBe(200);
    expect(attempts.map((a) => [a.method, a.path])).toEqual([
      ['GET', '/auth/.well-known/openid-configuration'],
      ['POST', '/auth/token'],
    ]);
    for (const [method, path] of [
      ['GET', '/auth/auth'],
      ['GET', '/auth/token'],
      ['POST', '/auth/.well-known/openid-configuration'],
      ['GET', '/auth/keys'],
    ] as const) {
      const res = await app.request(`/relay/oauth2.sigstore.dev${path}`, { method });
      expect(res.headers.get('x-relay-error'), `${method} ${path}`).toMatch(/^RELAY_(PATH|METHOD)_NOT_ALLOWED$/);
    }
    expect(attempts).toHaveLength(2);
  });

  it('refuses other paths, methods and queries to them before resolving', async () => {
    const { lookup, asked } = stubLookup({ 'rekor.sigstore.dev': [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([]);
    const { app } = relayApp({ lookup, requestUpstream });
    for (const [method, path] of [
      ['GET', '/api/v1/log/entries'],
      ['POST', '/api/v1/index/retrieve'],
      ['GET', '/v2/'],
      ['DELETE', '/api/v2/log/entries'],
      ['POST', '/api/v2/log/entries?x=1'],
    ] as const) {
      const res = await app.request(`/relay/rekor.sigstore.dev${path}`, { method });
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('x-relay-error'), `${method} ${path}`).toMatch(/^RELAY_(PATH|METHOD)_NOT_ALLOWED$/);
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });

  it('RELAY_SIGSTORE_SERVICES replaces the defaults and may name a plain-http service on loopback', async () => {
    const upstream = await startLoopback((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"logIndex":"0"}');
    });
    servers.push(upstream);
    const options = relayOptionsFromEnv({
      RELAY_SIGSTORE_SERVICES: upstream.authority,
      RELAY_PLAIN_HTTP_REGISTRIES: upstream.authority,
    });
    const { app } = relayApp(options);
    const res = await app.request(`/relay/${upstream.authority}/api/v2/log/entries`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(201);
    expect(await res.text()).toBe('{"logIndex":"0"}');
    const gone = await app.request('/relay/timestamp.sigstore.dev/api/v1/timestamp', { method: 'POST', body: 'q' });
    expect(gone.headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
  });
});

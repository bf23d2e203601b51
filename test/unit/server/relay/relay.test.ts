/**
 * The relay handler (server/relay/relay.ts, upstream.ts, headers.ts) through `app.request()`:
 * refusals before any connection (allowlist, every non-public address class with a stubbed
 * resolver, mixed answers), DNS pinning, header filtering both ways against a recording loopback
 * server, Location and Link rewriting, redirect rules, the manifest size limit, timeouts, upstream
 * errors passed through untouched, relay errors as JSON with X-Relay-Error, and the log line.
 * Traffic goes only to 127.0.0.1; other addresses exist only in stubbed resolver answers, and the
 * stubbed upstream hook records that nothing tried to connect to them.
 */
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import http from 'node:http';
import type { RelayOptions } from '../../../../server/relay/config.ts';
import { serveApp } from '../../../../server/serve.ts';
import { RAW_BODY_HEADER } from '../../../../server/relay/raw-answer.ts';
import { relayMessageOf } from '../../../../shared/registry/relay-error.ts';
import {
  closedPort,
  relayApp,
  scriptedUpstream,
  startLoopback,
  startSilent,
  stubLookup,
  type Loopback,
} from '../loopback.ts';

const servers: Loopback[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function loopback(handler: Parameters<typeof startLoopback>[0]): Promise<Loopback> {
  const s = await startLoopback(handler);
  servers.push(s);
  return s;
}

/** Options for a relay that reaches exactly these loopback servers over plain http. */
function plain(...upstreams: Loopback[]): RelayOptions {
  const hosts = upstreams.map((u) => u.authority);
  return { allowedRegistries: hosts, privateRegistries: hosts, plainHttpRegistries: hosts };
}

async function relayError(res: Response): Promise<{ code: string; message: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { code: string; message: string };
  expect(res.headers.get('x-relay-error')).toBe(body.code);
  expect(relayMessageOf(res.headers)).toBe(body.message);
  expect(Object.keys(body).sort()).toEqual(['code', 'message']);
  return body;
}

describe('refusals happen before any connection', () => {
  it('refuses hosts and ports that are not allowlisted, without resolving them', async () => {
    const { lookup, asked } = stubLookup({ 'evil.example': ['93.184.216.34'] });
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: ['localhost:5000', 'registry.example'], lookup, requestUpstream });
    for (const path of [
      '/relay/evil.example/v2/',
      '/relay/localhost/v2/',
      '/relay/localhost:5001/v2/',
      '/relay/registry.example:8443/v2/',
      '/relay/127.0.0.1:5000/v2/',
      '/relay/[::1]:5000/v2/',
      '/relay/ghcr.io/v2/',
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(403);
      const body = await relayError(res);
      expect(body.code).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
      expect(body.message).toContain('RELAY_ALLOWED_REGISTRIES');
    }
    const { app: defaults } = relayApp({ lookup, requestUpstream });
    for (const path of [
      '/relay/production.cloudflare.docker.com/x',
      '/relay/storage.googleapis.com/x',
      '/relay/localhost/v2/',
      '/relay/169.254.169.254/latest/meta-data/',
      '/relay/ghcr.io:8443/v2/',
    ]) {
      expect((await defaults.request(path)).status, path).toBe(403);
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });

  it('refuses a default registry that resolves to any non-public address', async () => {
    const refused = [
      '127.0.0.1',
      '127.1.2.3',
      '10.0.0.1',
      '172.16.5.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '240.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc00::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      '2002:c0a8:0101::1',
    ];
    for (const address of refused) {
      const { lookup, asked } = stubLookup({ 'ghcr.io': [address] });
      const { requestUpstream, attempts } = scriptedUpstream();
      const { app } = relayApp({ lookup, requestUpstream });
      const res = await app.request('/relay/ghcr.io/v2/');
      expect(res.status, address).toBe(403);
      const body = await relayError(res);
      expect(body.code).toBe('RELAY_ADDRESS_REFUSED');
      expect(body.message).not.toContain(address);
      expect(asked).toEqual(['ghcr.io']);
      expect(attempts, address).toEqual([]);
    }
  });

  it('refuses when any one of several addresses is not public', async () => {
    const { lookup } = stubLookup({ 'ghcr.io': ['140.82.121.34', '2606:50c0::1', '10.1.2.3'] });
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request('/relay/ghcr.io/v2/');
    expect((await relayError(res)).code).toBe('RELAY_ADDRESS_REFUSED');
    expect(attempts).toEqual([]);
  });

  it('an allowlisted name that resolves to a private or link-local address is refused unless RELAY_PRIVATE_REGISTRIES lists it', async () => {
    // The injected resolver answers for the names; nothing is sent to these addresses.
    const table = { 'ghcr.io': ['169.254.169.254'], 'registry.internal': ['10.20.30.40'] };
    for (const [host, address] of Object.entries(table)) {
      const { lookup, asked } = stubLookup(table);
      const { requestUpstream, attempts } = scriptedUpstream();
      const { app } = relayApp({ allowedRegistries: [host], lookup, requestUpstream });
      const res = await app.request(`/relay/${host}/v2/`);
      expect(res.status, host).toBe(403);
      const body = await relayError(res);
      expect(body.code).toBe('RELAY_ADDRESS_REFUSED');
      expect(body.message).toContain('RELAY_PRIVATE_REGISTRIES');
      expect(body.message).not.toContain(address);
      expect(asked).toEqual([host]);
      expect(attempts).toEqual([]);
    }
    // Listed as private too: the address check lets it through (to a scripted upstream).
    const { lookup } = stubLookup(table);
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200, body: 'ok' }]);
    const { app } = relayApp({
      allowedRegistries: ['registry.internal', 'ghcr.io'],
      privateRegistries: ['registry.internal'],
      lookup,
      requestUpstream,
    });
    expect((await app.request('/relay/registry.internal/v2/')).status).toBe(200);
    expect(attempts).toHaveLength(1);
    expect((await relayError(await app.request('/relay/ghcr.io/v2/'))).code).toBe('RELAY_ADDRESS_REFUSED');
    expect(attempts).toHaveLength(1);
  });

  it('reaches an IP literal listed explicitly, even a private one (stubbed: nothing connects)', async () => {
    // A literal address listed explicitly is the operator's choice, even a private one.
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200, body: 'ok' }]);
    const { app } = relayApp({
      allowedRegistries: ['10.9.8.7:5000'],
      privateRegistries: ['10.9.8.7:5000'],
      requestUpstream,
    });
    const res = await app.request('/relay/10.9.8.7:5000/v2/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ host: '10.9.8.7', port: 5000, path: '/v2/' });
  });

  it('connects to the checked addresses only: one lookup, pinned through the socket lookup', async () => {
    const { lookup, asked } = stubLookup({ 'ghcr.io': ['140.82.121.34', '2606:50c0:8000::154'] });
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200, body: '{}' }]);
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request('/relay/ghcr.io/v2/');
    expect(res.status).toBe(200);
    expect(asked).toEqual(['ghcr.io']);
    expect(attempts).toHaveLength(1);
    const opts = attempts[0]!;
    expect(opts).toMatchObject({ host: 'ghcr.io', port: 443, servername: 'ghcr.io', protocol: 'https:', path: '/v2/' });
    // The socket's lookup answers from the checked list, whatever name or family it is asked for.
    const pinned = opts.lookup!;
    const all = await new Promise<LookupAddress[]>((resolve) =>
      pinned('rebound.example', { all: true }, (_e, a) => resolve(a as LookupAddress[])),
    );
    expect(all).toEqual([
      { address: '140.82.121.34', family: 4 },
      { address: '2606:50c0:8000::154', family: 6 },
    ]);
    const v6 = await new Promise<string>((resolve) =>
      pinned('ghcr.io', { family: 6 }, (_e, a) => resolve(a as string)),
    );
    expect(v6).toBe('2606:50c0:8000::154');
    expect(asked).toEqual(['ghcr.io']);
  });

  it('lets a name listed in RELAY_PRIVATE_REGISTRIES resolve to a private address (the operator vouches for it)', async () => {
    const { lookup } = stubLookup({ 'registry.internal': ['10.0.0.7'] });
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200 }]);
    const hosts = ['registry.internal:5000'];
    const { app } = relayApp({ allowedRegistries: hosts, privateRegistries: hosts, lookup, requestUpstream });
    expect((await app.request('/relay/registry.internal:5000/v2/')).status).toBe(200);
    expect(attempts).toHaveLength(1);
  });

  it("reaches Artifact Registry's regional hosts by default, and no look-alikes", async () => {
    const { lookup, asked } = stubLookup({ 'europe-west4-docker.pkg.dev': ['142.250.1.1'] });
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200 }]);
    const { app } = relayApp({ lookup, requestUpstream });
    expect((await app.request('/relay/europe-west4-docker.pkg.dev/v2/')).status).toBe(200);
    for (const host of ['evil.pkg.dev', 'x.us-docker.pkg.dev', 'us-docker.pkg.dev.evil.example']) {
      expect((await app.request(`/relay/${host}/v2/`)).status, host).toBe(403);
    }
    expect(asked).toEqual(['europe-west4-docker.pkg.dev']);
    expect(attempts).toHaveLength(1);
  });

  it('refuses methods the registry API does not use', async () => {
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: ['10.0.0.1:5000'], requestUpstream });
    for (const method of ['OPTIONS', 'PROPFIND', 'CONNECT_X']) {
      const res = await app.request('/relay/10.0.0.1:5000/v2/', { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, HEAD, PUT, POST, PATCH, DELETE');
      expect((await relayError(res)).code).toBe('RELAY_METHOD_NOT_ALLOWED');
    }
    expect(attempts).toEqual([]);
  });
});

describe('headers', () => {
  it('forwards only what the registry protocol needs', async () => {
    const up = await loopback((_req, res) => res.end('ok'));
    const { app } = relayApp(plain(up));
    const res = await app.request(`/relay/${up.authority}/v2/r/blobs/uploads/?mount=sha256:abc&from=x`, {
      method: 'POST',
      body: 'hello',
      headers: {
        Accept: 'application/vnd.oci.image.manifest.v1+json',
        Authorization: 'Bearer secret-token',
        'Content-Type': 'application/octet-stream',
        'Content-Range': '0-4',
        Range: 'bytes=0-10',
        'If-None-Match': '"etag"',
        'Docker-Content-Digest': 'sha256:abc',
        'OCI-Chunk-Min-Length': '1',
        'User-Agent': 'Mozilla/5.0 the browser',
        Cookie: 'session=browser-cookie',
        'X-Forwarded-For': '203.0.113.9',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Proto': 'https',
        Forwarded: 'for=203.0.113.9',
        'X-Real-IP': '203.0.113.9',
        'True-Client-IP': '203.0.113.9',
        'CF-Connecting-IP': '203.0.113.9',
        Via: '1.1 proxy',
        'Keep-Alive': 'timeout=5',
        TE: 'trailers',
        Upgrade: 'websocket',
        'Proxy-Authorization': 'Basic eDp5',
        Referer: 'http://localhost/#/keys',
        Origin: 'http://localhost',
        'Accept-Encoding': 'gzip',
        'X-Custom': 'x',
      },
    });
    expect(res.status).toBe(200);
    const got = up.requests[0]!;
    expect(got.method).toBe('POST');
    expect(got.url).toBe('/v2/r/blobs/uploads/?mount=sha256:abc&from=x');
    expect(got.body.toString()).toBe('hello');
    const { host, connection, 'transfer-encoding': te, ...rest } = got.headers;
    expect(host).toBe(up.authority);
    expect(connection).toBe('keep-alive');
    expect(te).toBe('chunked');
    expect(rest).toEqual({
      accept: 'application/vnd.oci.image.manifest.v1+json',
      authorization: 'Bearer secret-token',
      'content-type': 'application/octet-stream',
      'content-range': '0-4',
      range: 'bytes=0-10',
      'if-none-match': '"etag"',
      'docker-content-digest': 'sha256:abc',
      'oci-chunk-min-length': '1',
      'user-agent': 'cosign-web-relay',
    });
  });

  it('drops what the client names in Connection, even an otherwise forwarded header', async () => {
    const up = await loopback((_req, res) => res.end());
    const { app } = relayApp(plain(up));
    await app.request(`/relay/${up.authority}/v2/`, {
      headers: { Connection: 'Authorization, Docker-Secret', Authorization: 'Basic eDp5', 'Docker-Secret': '1' },
    });
    expect(up.requests[0]!.headers.authorization).toBeUndefined();
    expect(up.requests[0]!.headers['docker-secret']).toBeUndefined();
  });

  it('answers with protocol headers only, none that would act on the page origin', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'application/vnd.oci.image.index.v1+json',
        'Docker-Content-Digest': 'sha256:abc',
        'Docker-Distribution-Api-Version': 'registry/2.0',
        'OCI-Subject': 'sha256:def',
        ETag: '"sha256:abc"',
        'Set-Cookie': 'tracking=1; Path=/',
        'Strict-Transport-Security': 'max-age=31536000',
        'Access-Control-Allow-Origin': '*',
        'Access-Control-Allow-Credentials': 'true',
        'Content-Security-Policy': "script-src 'unsafe-inline'",
        'Clear-Site-Data': '"*"',
        'Cache-Control': 'public, max-age=3600',
        'X-Powered-By': 'registry',
        Connection: 'X-Hop',
        'X-Hop': '1',
        'Alt-Svc': 'h3=":443"',
      });
      res.end('{}');
    });
    const { app } = relayApp(plain(up));
    const res = await app.request(`/relay/${up.authority}/v2/r/manifests/latest`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{}');
    const h = res.headers;
    expect(h.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    expect(h.get('docker-content-digest')).toBe('sha256:abc');
    expect(h.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(h.get('oci-subject')).toBe('sha256:def');
    expect(h.get('etag')).toBe('"sha256:abc"');
    for (const name of [
      'set-cookie',
      'strict-transport-security',
      'access-control-allow-origin',
      'access-control-allow-credentials',
      'clear-site-data',
      'x-powered-by',
      'x-hop',
      'alt-svc',
      'x-relay-error',
    ]) {
      expect(h.get(name), name).toBeNull();
    }
    // The relay's own: never cached by shared caches, never sniffed, never run as a document.
    expect(h.get('cache-control')).toBe('no-store');
    expect(h.get('x-content-type-options')).toBe('nosniff');
    expect(h.get('content-security-policy')).toBe("default-src 'none'; sandbox; frame-ancestors 'none'");
    expect(h.get('cross-origin-resource-policy')).toBe('same-origin');
  });
});

describe('conditional manifest writes', () => {
  it('passes If-Match upstream and the ETag back, and the 412 of a stale one untouched', async () => {
    const current = `"sha256:${'a'.repeat(64)}"`;
    const up = await loopback((req, res) => {
      const holds = req.headers['if-match'] === undefined || req.headers['if-match'] === current;
      res.writeHead(holds ? 201 : 412, {
        'Content-Type': 'application/json',
        ...(holds ? { ETag: `"sha256:${'b'.repeat(64)}"`, 'Docker-Content-Digest': `sha256:${'b'.repeat(64)}` } : {}),
      });
      res.end(holds ? '' : '{"errors":[{"code":"PRECONDITION_FAILED","message":"stale","detail":null}]}');
    });
    const { app } = relayApp(plain(up));
    const path = `/relay/${up.authority}/v2/r/manifests/latest`;
    const put = (ifMatch: string) =>
      app.request(path, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'If-Match': ifMatch },
        body: '{}',
      });
    const ok = await put(current);
    expect(up.requests[0]!.headers['if-match']).toBe(current);
    expect(ok.status).toBe(201);
    expect(ok.headers.get('etag')).toBe(`"sha256:${'b'.repeat(64)}"`);
    const stale = await put(`"sha256:${'c'.repeat(64)}"`);
    expect(up.requests[1]!.headers['if-match']).toBe(`"sha256:${'c'.repeat(64)}"`);
    expect(stale.status).toBe(412);
    expect(stale.headers.get('x-relay-error')).toBeNull();
    expect(await stale.text()).toBe('{"errors":[{"code":"PRECONDITION_FAILED","message":"stale","detail":null}]}');
  });
});

describe('Location and Link', () => {
  it('rewrites targets on the same upstream, absolute or relative, to relay paths', async () => {
    let location = '';
    const up = await loopback((_req, res) => {
      res.writeHead(202, { Location: location, 'Docker-Upload-UUID': 'u1', Range: '0-0' });
      res.end();
    });
    const { app } = relayApp(plain(up));
    const cases: Array<[string, string]> = [
      [
        `http://${up.authority}/v2/r/blobs/uploads/u1?_state=abc%3D%3D`,
        `/relay/${up.authority}/v2/r/blobs/uploads/u1?_state=abc%3D%3D`,
      ],
      ['/v2/r/blobs/uploads/u1?_state=xyz', `/relay/${up.authority}/v2/r/blobs/uploads/u1?_state=xyz`],
      ['u1?_state=rel', `/relay/${up.authority}/v2/r/blobs/uploads/u1?_state=rel`],
      // Not relayable: another host, or https where the relay speaks http to this one.
      ['https://elsewhere.example/upload', 'https://elsewhere.example/upload'],
      [`https://${up.authority}/v2/x`, `https://${up.authority}/v2/x`],
    ];
    for (const [given, expected] of cases) {
      location = given;
      const res = await app.request(`/relay/${up.authority}/v2/r/blobs/uploads/`, { method: 'POST' });
      expect(res.status).toBe(202);
      expect(res.headers.get('location'), given).toBe(expected);
      expect(res.headers.get('docker-upload-uuid')).toBe('u1');
      expect(res.headers.get('range')).toBe('0-0');
    }
  });

  it('omits default ports from rewritten https targets, as clients write relay paths', async () => {
    const { lookup } = stubLookup({ 'ghcr.io': ['140.82.121.34'] });
    const { requestUpstream } = scriptedUpstream([
      { status: 202, headers: { Location: 'https://ghcr.io:443/v2/r/blobs/uploads/u?_state=s' } },
    ]);
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request('/relay/ghcr.io/v2/r/blobs/uploads/', { method: 'POST' });
    expect(res.headers.get('location')).toBe('/relay/ghcr.io/v2/r/blobs/uploads/u?_state=s');
  });

  it('rewrites Link targets (pagination) the same way', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(200, { Link: '</v2/_catalog?last=b&n=2>; rel="next"', 'Content-Type': 'application/json' });
      res.end('{"repositories":["a","b"]}');
    });
    const { app } = relayApp(plain(up));
    const res = await app.request(`/relay/${up.authority}/v2/_catalog?n=2`);
    expect(res.headers.get('link')).toBe(`</relay/${up.authority}/v2/_catalog?last=b&n=2>; rel="next"`);
  });
});

describe('redirects', () => {
  it('refuses a redirect to a port that is not allowlisted; that server receives nothing', async () => {
    const target = await loopback((_req, res) => res.end('must not be reached'));
    const first = await loopback((_req, res) => {
      res.writeHead(307, { Location: `http://127.0.0.1:${target.port}/blob` });
      res.end();
    });
    const { app } = relayApp(plain(first));
    const res = await app.request(`/relay/${first.authority}/v2/r/blobs/sha256:abc`);
    expect(res.status).toBe(403);
    const body = await relayError(res);
    expect(body.code).toBe('RELAY_REDIRECT_REFUSED');
    expect(first.requests).toHaveLength(1);
    expect(target.requests).toHaveLength(0);
  });

  it('follows a cross-origin redirect between allowlisted servers without Authorization', async () => {
    const storage = await loopback((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': '4' });
      res.end('blob');
    });
    const registry = await loopback((req, res) => {
      if (req.url.startsWith('/v2/r/blobs/')) {
        res.writeHead(302, { Location: `/moved${req.url}` });
      } else {
        res.writeHead(307, { Location: `http://${storage.authority}/signed?sig=xyz` });
      }
      res.end();
    });
    const { app, lines } = relayApp(plain(registry, storage));
    const res = await app.request(`/relay/${registry.authority}/v2/r/blobs/sha256:abc`, {
      headers: { Authorization: 'Bearer registry-token', Cookie: 'c=1', Range: 'bytes=0-3' },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('blob');
    // Same origin (first hop): the token goes along; other origin: it does not, Range does.
    expect(registry.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer registry-token',
      'Bearer registry-token',
    ]);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.url).toBe('/signed?sig=xyz');
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
    expect(storage.requests[0]!.headers.cookie).toBeUndefined();
    expect(storage.requests[0]!.headers.range).toBe('bytes=0-3');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(`^relay GET ${registry.authority} /v2/r/blobs/sha256:abc 200 up=0B down=4B \\d+ms redirects=2$`),
    );
    expect(lines[0]).not.toContain('sig=');
  });

  it('refuses a redirect from https to plain http', async () => {
    const { lookup } = stubLookup({ 'registry.example': ['93.184.216.34'], 'ghcr.io': ['140.82.121.34'] });
    const { requestUpstream, attempts } = scriptedUpstream([
      { status: 302, headers: { Location: 'http://registry.example:8443/v2/r/blobs/sha256:abc' } },
    ]);
    const { app } = relayApp({ allowedRegistries: ['registry.example:8443'], lookup, requestUpstream });
    const res = await app.request('/relay/registry.example:8443/v2/r/blobs/sha256:abc');
    expect(res.status).toBe(403);
    const body = await relayError(res);
    expect(body.code).toBe('RELAY_PLAIN_HTTP_REFUSED');
    expect(body.message).toContain('RELAY_PLAIN_HTTP_REGISTRIES');
    expect(attempts).toHaveLength(1);
    // With the defaults, http://ghcr.io is port 80: not on the list at all.
    const script = scriptedUpstream([{ status: 302, headers: { Location: 'http://ghcr.io/v2/' } }]);
    const { app: defaults } = relayApp({ lookup, requestUpstream: script.requestUpstream });
    const r2 = await defaults.request('/relay/ghcr.io/v2/');
    expect((await relayError(r2)).code).toBe('RELAY_REDIRECT_REFUSED');
    expect(script.attempts).toHaveLength(1);
  });

  it('checks the addresses of a redirect target before connecting to it', async () => {
    const { lookup, asked } = stubLookup({
      'ghcr.io': ['140.82.121.34'],
      'pkg-containers.githubusercontent.com': ['169.254.169.254'],
    });
    const { requestUpstream, attempts } = scriptedUpstream([
      {
        status: 307,
        headers: { Location: 'https://pkg-containers.githubusercontent.com/ghcr1/blobs/sha256:abc?sig=1' },
      },
      { status: 200, body: 'must not be fetched' },
    ]);
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request('/relay/ghcr.io/v2/r/blobs/sha256:abc', { headers: { Authorization: 'Bearer t' } });
    expect(res.status).toBe(403);
    expect((await relayError(res)).code).toBe('RELAY_ADDRESS_REFUSED');
    expect(asked).toEqual(['ghcr.io', 'pkg-containers.githubusercontent.com']);
    expect(attempts).toHaveLength(1);
  });

  it('follows a default registry to its blob storage, dropping Authorization', async () => {
    const { lookup } = stubLookup({
      'registry-1.docker.io': ['54.236.113.205'],
      'production.cloudflare.docker.com': ['104.16.100.207'],
    });
    const { requestUpstream, attempts } = scriptedUpstream([
      { status: 307, headers: { Location: 'https://production.cloudflare.docker.com/registry-v2/x?verify=1' } },
      { status: 200, headers: { 'Content-Length': '2' }, body: 'ok' },
    ]);
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request('/relay/registry-1.docker.io/v2/library/a/blobs/sha256:abc', {
      headers: { Authorization: 'Bearer hub-token' },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(attempts.map((a) => [a.host, (a.headers as Record<string, string>)['authorization']])).toEqual([
      ['registry-1.docker.io', 'Bearer hub-token'],
      ['production.cloudflare.docker.com', undefined],
    ]);
  });

  it('stops after RELAY_MAX_REDIRECTS with 502', async () => {
    const loop = await loopback((req, res) => {
      res.writeHead(302, { Location: `${req.url}x` });
      res.end();
    });
    const { app } = relayApp({ ...plain(loop), maxRedirects: 3 });
    const res = await app.request(`/relay/${loop.authority}/v2/a`);
    expect(res.status).toBe(502);
    expect((await relayError(res)).code).toBe('RELAY_TOO_MANY_REDIRECTS');
    expect(loop.requests.map((r) => r.url)).toEqual(['/v2/a', '/v2/ax', '/v2/axx', '/v2/axxx']);
  });

  it('does not follow redirects for other methods: the 3xx goes back with a relay Location', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(307, { Location: '/v2/r/blobs/uploads/other' });
      res.end();
    });
    const { app } = relayApp(plain(up));
    const res = await app.request(`/relay/${up.authority}/v2/r/blobs/uploads/u`, { method: 'PUT', body: 'x' });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe(`/relay/${up.authority}/v2/r/blobs/uploads/other`);
    expect(res.headers.get('x-relay-error')).toBeNull();
    expect(up.requests).toHaveLength(1);
  });
});

describe('manifest size limit', () => {
  it('refuses an oversized manifest PUT with 413 before the registry sees anything', async () => {
    const up = await loopback((_req, res) => res.end());
    const { app } = relayApp({ ...plain(up), maxManifestBytes: 1024 });
    const big = 'x'.repeat(1025);
    const declared = await app.request(`/relay/${up.authority}/v2/a/b/manifests/latest`, {
      method: 'PUT',
      body: big,
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Content-Length': '1025' },
    });
    expect(declared.status).toBe(413);
    expect((await relayError(declared)).code).toBe('RELAY_BODY_TOO_LARGE');
    // Without a Content-Length (streamed): counted, still refused before connecting.
    const streamed = await app.request(`/relay/${up.authority}/v2/a/b/manifests/latest`, {
      method: 'PUT',
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big.slice(0, 600)));
          c.enqueue(new TextEncoder().encode(big.slice(600)));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(up.requests).toHaveLength(0);
  });

  it('passes a manifest at the limit with its exact length, and does not limit blobs', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(201);
      res.end();
    });
    const { app } = relayApp({ ...plain(up), maxManifestBytes: 1024 });
    const res = await app.request(`/relay/${up.authority}/v2/a/b/manifests/v1`, {
      method: 'PUT',
      body: 'm'.repeat(1024),
    });
    expect(res.status).toBe(201);
    expect(up.requests[0]!.headers['content-length']).toBe('1024');
    expect(up.requests[0]!.body.length).toBe(1024);
    const blob = await app.request(`/relay/${up.authority}/v2/a/b/blobs/uploads/u?digest=sha256:x`, {
      method: 'PUT',
      body: 'b'.repeat(5000),
    });
    expect(blob.status).toBe(201);
    expect(up.requests[1]!.body.length).toBe(5000);
  });
});

describe('upstream failures', () => {
  it('answers 504 when the registry never answers', async () => {
    const silent = await startSilent();
    servers.push(silent);
    const { app } = relayApp({ ...plain(silent), upstreamTimeoutMs: 300 });
    const t0 = Date.now();
    const res = await app.request(`/relay/${silent.authority}/v2/`);
    expect(res.status).toBe(504);
    expect((await relayError(res)).code).toBe('RELAY_UPSTREAM_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(silent.requests).toHaveLength(1);
  });

  it('cuts a response off when the registry stalls mid-body', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('only part');
    });
    const { app } = relayApp({ ...plain(up), upstreamTimeoutMs: 300 });
    const res = await app.request(`/relay/${up.authority}/v2/r/blobs/sha256:x`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('answers 502 when nothing listens, and when TLS fails', async () => {
    const port = await closedPort();
    const { app } = relayApp(plain({ authority: `127.0.0.1:${port}` } as Loopback));
    const res = await app.request(`/relay/127.0.0.1:${port}/v2/`);
    expect(res.status).toBe(502);
    expect((await relayError(res)).code).toBe('RELAY_UPSTREAM_UNREACHABLE');
    // https to a plain-http server: the handshake fails.
    const up = await loopback((_req, res) => res.end());
    const { app: tls } = relayApp({ allowedRegistries: [up.authority], privateRegistries: [up.authority] });
    const r2 = await tls.request(`/relay/${up.authority}/v2/`);
    expect(r2.status).toBe(502);
    expect((await relayError(r2)).code).toBe('RELAY_UPSTREAM_TLS');
    expect(up.requests).toHaveLength(0);
  });

  it('sends a request again when a kept-alive connection turns out to be closed', async () => {
    // The server answers the first request on each connection and drops the connection on the
    // second, as a registry whose idle timeout fires just as the relay reuses the connection.
    const seen = new WeakMap<object, number>();
    const up = await loopback((req, res) => {
      const socket = res.socket!;
      const n = (seen.get(socket) ?? 0) + 1;
      seen.set(socket, n);
      if (n > 1) {
        socket.destroy();
        return;
      }
      res.end(req.url);
    });
    const { app } = relayApp(plain(up));
    const first = await app.request(`/relay/${up.authority}/v2/a`);
    expect(await first.text()).toBe('/v2/a');
    const second = await app.request(`/relay/${up.authority}/v2/b`);
    expect(second.status).toBe(200);
    expect(await second.text()).toBe('/v2/b');
    expect(up.requests.map((r) => r.url)).toEqual(['/v2/a', '/v2/b', '/v2/b']);
  });

  it('passes registry errors through untouched: status, OCI error body, WWW-Authenticate', async () => {
    const ociError = '{"errors":[{"code":"UNAVAILABLE","message":"try later","detail":null}]}\n';
    const malformed = 'Bearer realm="https://auth.example/token,service=unterminated, ,,scope=';
    const up = await loopback((req, res) => {
      if (req.url === '/v2/') {
        res.writeHead(401, { 'WWW-Authenticate': malformed, 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      } else {
        res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '7' });
        res.end(ociError);
      }
    });
    const { app } = relayApp(plain(up));
    const unauth = await app.request(`/relay/${up.authority}/v2/`);
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('www-authenticate')).toBe(malformed);
    expect(unauth.headers.get('x-relay-error')).toBeNull();
    expect(await unauth.text()).toBe('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    const down = await app.request(`/relay/${up.authority}/v2/r/manifests/latest`);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('7');
    expect(down.headers.get('x-relay-error')).toBeNull();
    expect(await down.text()).toBe(ociError);
  });

  it('turns anything unexpected into 500 RELAY_INTERNAL without a stack trace', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      const { app } = relayApp({
        ...plain(up),
        log: () => {
          throw new TypeError('a bug at /work/main/server/relay/relay.ts:1:1');
        },
      });
      const res = await app.request(`/relay/${up.authority}/v2/`, { headers: { Authorization: 'Bearer secret' } });
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ code: 'RELAY_INTERNAL', message: 'The relay failed to handle this request.' });
      expect(res.headers.get('x-relay-error')).toBe('RELAY_INTERNAL');
      expect(text).not.toMatch(/relay\.ts|TypeError|secret/);
    } finally {
      console.error = original;
    }
    expect(JSON.stringify(errors)).not.toContain('secret');
  });
});

describe('client going away', () => {
  async function served(options: RelayOptions): Promise<{ port: number; lines: string[]; close: () => Promise<void> }> {
    const { app, lines } = relayApp(options);
    const { server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
    return { port, lines, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  it('closes the upstream download when the client disconnects mid-body', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const up = await loopback((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
    });
    const relay = await served(plain(up));
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(`http://127.0.0.1:${relay.port}/relay/${up.authority}/v2/r/blobs/sha256:x`, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', () => undefined);
        setTimeout(() => reject(new Error('no data')), 5000);
      });
      await closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(relay.lines).toEqual([expect.stringMatching(/ 200 up=0B down=\d+B \d+ms client-aborted$/)]);
    } finally {
      await relay.close();
    }
  });

  it("over a real socket, passes a download byte for byte with the app's headers and not the internal marker", async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 5);
    const up = await loopback((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(payload.length) });
      res.end(payload);
    });
    const relay = await served(plain(up));
    try {
      const res = await fetch(`http://127.0.0.1:${relay.port}/relay/${up.authority}/v2/r/blobs/sha256:x`);
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(payload)).toBe(true);
      expect(res.headers.get('content-length')).toBe(String(payload.length));
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get(RAW_BODY_HEADER)).toBeNull();
      while (relay.lines.length === 0) await new Promise((r) => setTimeout(r, 10));
      expect(relay.lines).toEqual([expect.stringMatching(new RegExp(` 200 up=0B down=${payload.length}B \\d+ms$`))]);
    } finally {
      await relay.close();
    }
  });

  it('over a real socket, cuts the client off when the registry dies mid-body', async () => {
    const up = await loopback((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(1024 * 1024) });
      res.write(Buffer.alloc(64 * 1024), () => res.socket?.destroy());
    });
    const relay = await served(plain(up));
    try {
      const res = await fetch(`http://127.0.0.1:${relay.port}/relay/${up.authority}/v2/r/blobs/sha256:x`);
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      while (relay.lines.length === 0) await new Promise((r) => setTimeout(r, 10));
      expect(relay.lines).toEqual([expect.stringMatching(/ 200 up=0B down=\d+B \d+ms upstream-aborted$/)]);
    } finally {
      await relay.close();
    }
  });

  it('abandons the upstream request when the client disconnects before the answer', { timeout: 10_000 }, async () => {
    const silent = await startSilent();
    servers.push(silent);
    let connectionClosed!: () => void;
    const closed = new Promise<void>((resolve) => (connectionClosed = resolve));
    // A long upstream time limit: only the client going away can end this request in time.
    const relay = await served({ ...plain(silent), upstreamTimeoutMs: 120_000 });
    try {
      const req = http.get(`http://127.0.0.1:${relay.port}/relay/${silent.authority}/v2/`);
      req.on('error', () => undefined);
      while (silent.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
      silent.onClose(connectionClosed);
      req.destroy();
      await closed;
    } finally {
      await relay.close();
    }
  });
});

describe('streaming and logging', () => {
  it('streams bodies both ways and logs one line without secrets, queries or bodies', async () => {
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    const up = await loopback((req, res) => {
      if (req.method === 'PATCH') {
        res.writeHead(202, { Location: `/v2/r/blobs/uploads/u?_state=after`, Range: `0-${req.body.length - 1}` });
        res.end();
      } else {
        res.writeHead(200, { 'Content-Length': String(payload.length) });
        res.end(payload);
      }
    });
    const { app, lines } = relayApp(plain(up));
    let sent = 0;
    const upload = await app.request(`/relay/${up.authority}/v2/r/blobs/uploads/u?_state=secret-state`, {
      method: 'PATCH',
      headers: { Authorization: 'Bearer secret-token', 'Content-Type': 'application/octet-stream' },
      body: new ReadableStream({
        pull(c) {
          if (sent >= payload.length) {
            c.close();
            return;
          }
          c.enqueue(payload.subarray(sent, sent + 65536));
          sent += 65536;
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(upload.status).toBe(202);
    expect(await upload.text()).toBe('');
    expect(upload.headers.get('range')).toBe(`0-${payload.length - 1}`);
    expect(up.requests[0]!.body.equals(payload)).toBe(true);

    const download = await app.request(`/relay/${up.authority}/v2/r/blobs/sha256:abc?token=secret-query`, {
      headers: { Authorization: 'Basic c2VjcmV0OnNlY3JldA==' },
    });
    const got = Buffer.from(await download.arrayBuffer());
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    await new Promise((r) => setImmediate(r));

    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`^relay PATCH ${up.authority} /v2/r/blobs/uploads/u 202 up=${payload.length}B down=0B \\d+ms$`),
      ),
      expect.stringMatching(
        new RegExp(`^relay GET ${up.authority} /v2/r/blobs/sha256:abc 200 up=0B down=${payload.length}B \\d+ms$`),
      ),
    ]);
    for (const l of lines) expect(l).not.toMatch(/secret|c2VjcmV0|Bearer|Basic|\?|_state/);
  });

  it('sends a streamed upload over connections with 256 KiB socket buffers, everything else over the default pool', async () => {
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 202 }, { status: 201 }, { status: 200 }]);
    const { app } = relayApp({
      allowedRegistries: ['127.0.0.1:5000'],
      privateRegistries: ['127.0.0.1:5000'],
      requestUpstream,
    });
    const patch = await app.request('/relay/127.0.0.1:5000/v2/r/blobs/uploads/u', {
      method: 'PATCH',
      body: new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array(1024)), c.close()) }),
      duplex: 'half',
    } as RequestInit);
    expect(patch.status).toBe(202);
    const manifest = await app.request('/relay/127.0.0.1:5000/v2/r/manifests/v1', { method: 'PUT', body: '{}' });
    expect(manifest.status).toBe(201);
    expect((await app.request('/relay/127.0.0.1:5000/v2/r/blobs/sha256:abc')).status).toBe(200);
    const buffers = attempts.map(
      (a) => (a.agent as http.Agent & { options: { highWaterMark?: number } }).options.highWaterMark,
    );
    expect(buffers).toEqual([256 * 1024, undefined, undefined]);
    expect(new Set(attempts.map((a) => a.agent)).size).toBe(2);
  });
});

describe('only the registry API and token realms are relayed', () => {
  const table = { 'registry.example': ['93.184.216.34'], 'auth.example': ['93.184.216.35'] };
  const hosts = ['registry.example', 'auth.example'];

  it('refuses any other path on an allowed host with 403 RELAY_PATH_NOT_ALLOWED, before resolving it', async () => {
    const { lookup, asked } = stubLookup(table);
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: hosts, lookup, requestUpstream });
    for (const path of ['/', '/index.html', '/v2x', '/v20/', '/latest/meta-data/', '/token', '/api/v2/']) {
      const res = await app.request(`/relay/registry.example${path}`);
      expect(res.status, path).toBe(403);
      const body = await relayError(res);
      expect(body.code, path).toBe('RELAY_PATH_NOT_ALLOWED');
      expect(body.message).toContain('/v2/');
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });

  it('passes on a realm a challenge named, for its path only and for a bounded time', async () => {
    const { lookup } = stubLookup(table);
    const challenge = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"';
    const { requestUpstream, attempts } = scriptedUpstream([
      { status: 401, headers: { 'WWW-Authenticate': challenge } },
      { status: 200, body: '{"token":"t"}' },
      { status: 200, body: '{"token":"t"}' },
    ]);
    // The realm's time is counted on a clock the test moves: a slow machine cannot outlast it.
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => void vi.useRealTimers());
    const { app } = relayApp({ allowedRegistries: hosts, lookup, requestUpstream, realmTtlMs: 300 });
    // Before any challenge named it, the token service is just another page of an allowed host.
    expect((await relayError(await app.request('/relay/auth.example/token?service=x'))).code).toBe(
      'RELAY_PATH_NOT_ALLOWED',
    );
    const challenged = await app.request('/relay/registry.example/v2/a/manifests/v1');
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get('www-authenticate')).toBe(challenge);
    const token = await app.request('/relay/auth.example/token?service=registry.example&scope=repository:a:pull');
    expect(token.status).toBe(200);
    expect(attempts.map((a) => `${a.host}${a.path}`)).toEqual([
      'registry.example/v2/a/manifests/v1',
      'auth.example/token?service=registry.example&scope=repository:a:pull',
    ]);
    // Another path on the realm's host is still refused, and the realm itself once its time ran out.
    expect((await relayError(await app.request('/relay/auth.example/admin'))).code).toBe('RELAY_PATH_NOT_ALLOWED');
    vi.setSystemTime(Date.now() + 299);
    expect((await app.request('/relay/auth.example/token?service=registry.example')).status).toBe(200);
    vi.setSystemTime(Date.now() + 2);
    expect((await relayError(await app.request('/relay/auth.example/token'))).code).toBe('RELAY_PATH_NOT_ALLOWED');
    expect(attempts).toHaveLength(3);
  });

  it('does not remember a realm the relay may not reach, and relays the configured ones without a challenge', async () => {
    const { lookup } = stubLookup({ ...table, 'ghcr.io': ['140.82.121.34'], 'auth.docker.io': ['3.3.3.3'] });
    const { requestUpstream, attempts } = scriptedUpstream([
      { status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="https://elsewhere.example/token"' } },
      { status: 200 },
      { status: 200 },
      { status: 200 },
    ]);
    const { app } = relayApp({
      allowedRegistries: hosts,
      tokenRealms: ['https://auth.example/oauth2/token'],
      lookup,
      requestUpstream,
    });
    expect((await app.request('/relay/registry.example/v2/')).status).toBe(401);
    expect((await app.request('/relay/auth.example/oauth2/token?scope=x')).status).toBe(200);
    expect((await relayError(await app.request('/relay/auth.example/token'))).code).toBe('RELAY_PATH_NOT_ALLOWED');
    // The defaults: Docker Hub's and GitHub's token services.
    const { app: defaults } = relayApp({ lookup, requestUpstream });
    expect((await defaults.request('/relay/auth.docker.io/token?service=registry.docker.io')).status).toBe(200);
    expect((await defaults.request('/relay/ghcr.io/token?scope=repository:o/r:pull')).status).toBe(200);
    expect((await relayError(await defaults.request('/relay/ghcr.io/login'))).code).toBe('RELAY_PATH_NOT_ALLOWED');
    expect(attempts).toHaveLength(4);
  });
});

/**
 * The names and origins the server answers to (server/site.ts; issue #12, items 1, 4 and 11),
 * through `app.request()`: a Host the server does not serve gets 421 with a readable body on every
 * path of the app and of the embedded registry (DNS rebinding); an Origin is compared whole —
 * scheme, host and port — with the page's origins, never with Host; writes from other sites are
 * refused, and clients that send no Origin (cosign, crane, skopeo) pass; PUBLIC_ORIGINS is parsed
 * strictly.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../server/app.ts';
import { createEmbeddedRegistry } from '../../../server/registry/registry.ts';
import { parsePublicOrigins, Site } from '../../../server/site.ts';
import { CosignWebError } from '../../../shared/errors.ts';
import { testStaticRoot } from './loopback.ts';

const site = new Site({ publicOrigins: parsePublicOrigins('https://cosign.example'), ports: [8080] });
const app = createApp({ staticRoot: testStaticRoot(), site, relay: { localRegistries: ['localhost:5001'] } });
const dataDir = mkdtempSync(join(tmpdir(), 'cosign-web-site-'));
const registry = createEmbeddedRegistry({ dataDir, site });
afterAll(async () => {
  await registry.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const LOCK = { method: 'POST', body: JSON.stringify({ key: 'localhost:5001/a/b:v1' }) };

describe('PUBLIC_ORIGINS', () => {
  it('takes origins and gives them in serialised form', () => {
    expect(parsePublicOrigins(' https://Cosign.Example, http://localhost:8080/ ,https://a.example:443,')).toEqual([
      'https://cosign.example',
      'http://localhost:8080',
      'https://a.example',
    ]);
    expect(parsePublicOrigins(undefined)).toEqual([]);
  });

  it('an invalid PUBLIC_ORIGINS stops the server at start with the sentence', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: { ...process.env, PUBLIC_ORIGINS: 'https://cosign.example/app', PORT: '0', STATIC_ROOT: testStaticRoot() },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('PUBLIC_ORIGINS holds "https://cosign.example/app", which is not an origin like');
  });

  it('refuses anything that is not exactly an origin, with a sentence', () => {
    for (const bad of [
      'cosign.example',
      'ftp://cosign.example',
      'https://cosign.example/path',
      'https://user@cosign.example',
      'https://cosign.example?x',
      'https://*.example',
      'https://2130706433',
      'https://cosign.example:99999',
      '*',
    ]) {
      let err: unknown;
      try {
        parsePublicOrigins(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(CosignWebError);
      expect((err as CosignWebError).code).toBe('CONFIG_INVALID');
      expect((err as Error).message).toMatch(/^PUBLIC_ORIGINS holds .* which is not an origin like https:/);
    }
  });
});

describe('host names (DNS rebinding)', () => {
  it('answers 421 with a readable body to a name it does not serve, on every path', async () => {
    for (const [path, init] of [
      ['/', {}],
      ['/healthz', {}],
      ['/config.json', {}],
      ['/relay/ghcr.io/v2/', {}],
      ['/locks/acquire', LOCK],
      ['/pkcs11/keys', {}],
    ] as const) {
      const res = await app.request(`http://rebind.example:8080${path}`, {
        ...init,
        headers: { Origin: 'http://rebind.example:8080' },
      });
      expect(res.status, path).toBe(421);
      expect(await res.json(), path).toEqual({
        code: 'HOST_NOT_SERVED',
        message:
          'This server does not serve the host name "rebind.example": open it as localhost, or list the name it is served as in PUBLIC_ORIGINS.',
      });
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });

  it('serves the loopback names and the hosts of PUBLIC_ORIGINS', async () => {
    for (const host of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'cosign.example', 'LOCALHOST:8080']) {
      expect((await app.request(`http://${host}/healthz`)).status, host).toBe(200);
    }
  });

  it('the embedded registry answers 421 in the distribution form to a name it does not serve', async () => {
    const res = await registry.app.request('http://rebind.example:5001/v2/samples/hello/tags/list');
    expect(res.status).toBe(421);
    const body = (await res.json()) as { errors: { code: string; message: string }[] };
    expect(body.errors[0]!.code).toBe('DENIED');
    expect(body.errors[0]!.message).toContain('"rebind.example"');
    expect((await registry.app.request('http://127.0.0.1:5001/v2/')).status).toBe(200);
    expect((await registry.app.request('http://localhost:5001/v2/')).status).toBe(200);
  });

  it('HOST, when it names one address, is served too', async () => {
    const lan = new Site({ listenHost: '10.1.2.3', ports: [8080] });
    const a = createApp({ staticRoot: testStaticRoot(), site: lan });
    expect((await a.request('http://10.1.2.3:8080/healthz')).status).toBe(200);
    expect(lan.isPageOrigin('http://10.1.2.3:8080')).toBe(true);
    const any = new Site({ listenHost: '0.0.0.0', ports: [8080] });
    expect(any.servesHost('0.0.0.0')).toBe(false);
    expect(any.origins).toEqual(['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080']);
  });
});

describe('origins (compared whole, never with Host)', () => {
  it('takes the page origins on the listening port, and PUBLIC_ORIGINS with their scheme', async () => {
    for (const origin of [
      'http://localhost:8080',
      'http://127.0.0.1:8080',
      'http://[::1]:8080',
      'https://cosign.example',
    ]) {
      const res = await app.request('http://localhost:8080/locks/acquire', {
        method: 'POST',
        body: JSON.stringify({ key: `localhost:5001/a/b:${origin.length}-${origin.charCodeAt(7)}` }),
        headers: { Origin: origin },
      });
      expect(res.status, origin).toBe(200);
    }
  });

  it('refuses an Origin equal to Host that is not a page origin, and another scheme or port', async () => {
    for (const [url, origin] of [
      ['https://cosign.example/locks/acquire', 'http://cosign.example'],
      ['http://cosign.example/locks/acquire', 'http://cosign.example'],
      ['http://localhost:9999/locks/acquire', 'http://localhost:9999'],
      ['http://localhost:8080/locks/acquire', 'https://localhost:8080'],
    ] as const) {
      const res = await app.request(url, { ...LOCK, headers: { Origin: origin } });
      expect(res.status, `${origin} → ${url}`).toBe(403);
      expect(((await res.json()) as { code: string }).code).toBe('RELAY_ORIGIN_REFUSED');
    }
  });
});

describe('writes from other sites', () => {
  it('are refused on any path of the app, before it is looked at', async () => {
    for (const headers of <Record<string, string>[]>[
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
      { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' },
    ]) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
        const res = await app.request('http://localhost:8080/anything', { method, headers, body: 'x' });
        expect(res.status, `${method} ${JSON.stringify(headers)}`).toBe(403);
        expect(((await res.json()) as { code: string }).code).toBe('ORIGIN_REFUSED');
      }
    }
    expect((await app.request('http://localhost:8080/anything', { method: 'POST', body: 'x' })).status).toBe(404);
  });

  it('are refused by the embedded registry; clients without Origin still push', async () => {
    const blob = new TextEncoder().encode('a blob');
    const digest = 'sha256:' + Buffer.from(await crypto.subtle.digest('SHA-256', blob)).toString('hex');
    const url = `http://127.0.0.1:5001/v2/x/y/blobs/uploads/?digest=${digest}`;
    for (const headers of <Record<string, string>[]>[
      { Origin: 'http://127.0.0.1:9999', 'Content-Type': 'text/plain' },
      { Origin: 'http://localhost:8080', 'Sec-Fetch-Site': 'same-site' },
      { 'Sec-Fetch-Site': 'cross-site' },
    ]) {
      const res = await registry.app.request(url, { method: 'POST', headers, body: blob });
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    }
    expect(
      (await registry.app.request(`http://127.0.0.1:5001/v2/x/y/blobs/${digest}`, { method: 'HEAD' })).status,
    ).toBe(404);
    expect((await registry.app.request(url, { method: 'POST', body: blob })).status).toBe(201);
    // Reads from a browser are not writes: a page may still HEAD (it cannot read the answer).
    const head = await registry.app.request(`http://127.0.0.1:5001/v2/x/y/blobs/${digest}`, {
      method: 'HEAD',
      headers: { Origin: 'https://evil.example' },
    });
    expect(head.status).toBe(200);
  });
});

/**
 * Relay path parsing (server/relay/host.ts, target.ts): hosts and ports in canonical form, and
 * every injection attempt through the path refused with 400 RELAY_BAD_REQUEST before any
 * resolution or connection: CR/LF and other controls (raw or percent-encoded), `..` segments
 * (raw and encoded, seen in the raw request target over a real socket, where URL normalisation
 * would otherwise hide them), `@` userinfo, backslashes, invalid hosts and ports.
 */
import type { ServerType } from '@hono/node-server';
import fc from 'fast-check';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayError } from '../../../../shared/errors.ts';
import { normaliseRelayOptions } from '../../../../server/relay/config.ts';
import { parseAuthority, parseHost } from '../../../../server/relay/host.ts';
import { parseRelayTarget } from '../../../../server/relay/target.ts';
import { serveApp } from '../../../../server/serve.ts';
import { relayApp, scriptedUpstream, startLoopback, stubLookup, type Loopback } from '../loopback.ts';

const config = normaliseRelayOptions({ plainHttpRegistries: ['localhost:5000'] });
const parse = (raw: string): ReturnType<typeof parseRelayTarget> => parseRelayTarget(raw, config.schemeFor);

function badRequest(raw: string): RelayError {
  try {
    parse(raw);
  } catch (e) {
    expect(e, raw).toBeInstanceOf(RelayError);
    expect((e as RelayError).code, raw).toBe('RELAY_BAD_REQUEST');
    expect((e as RelayError).status).toBe(400);
    return e as RelayError;
  }
  throw new Error(`expected ${raw} to be refused`);
}

describe('hosts and authorities', () => {
  it('puts hosts in one canonical form', () => {
    expect(parseAuthority('GHCR.io')).toEqual({ host: 'ghcr.io', kind: 'name', port: undefined });
    expect(parseAuthority('localhost:5000')).toEqual({ host: 'localhost', kind: 'name', port: 5000 });
    expect(parseAuthority('127.0.0.1:443')).toEqual({ host: '127.0.0.1', kind: 'ipv4', port: 443 });
    expect(parseAuthority('[0:0:0:0:0:0:0:1]:5000')).toEqual({ host: '::1', kind: 'ipv6', port: 5000 });
    expect(parseAuthority('[::FFFF:127.0.0.1]')).toEqual({ host: '::ffff:7f00:1', kind: 'ipv6', port: undefined });
  });

  it('refuses anything ambiguous', () => {
    for (const bad of [
      '',
      'ghcr.io.',
      '.ghcr.io',
      'gh cr.io',
      'ghcr_io',
      '-ghcr.io',
      'ghcr-.io',
      'a..b',
      '2130706433',
      '0x7f.1',
      '127.1',
      '1.2.3.04',
      '::1',
      '[::1',
      '[::1]x',
      '[fe80::1%25eth0]',
      'ghcr.io:',
      'ghcr.io:0',
      'ghcr.io:065',
      'ghcr.io:65536',
      'ghcr.io:+1',
      'ghcr.io:1:2',
      'user@ghcr.io',
      'gh%63r.io',
      'ghcr.io\\',
      `${'a'.repeat(64)}.io`,
    ]) {
      expect(parseAuthority(bad), bad).toBeNull();
    }
  });

  it('accepts every well-formed name and refuses names ending in a number', () => {
    const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 4 }),
        fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/),
        (ls, tld) => {
          const name = [...ls, tld].join('.');
          expect(parseHost(name)).toEqual({ host: name, kind: 'name' });
          expect(parseHost(name.toUpperCase())).toEqual({ host: name, kind: 'name' });
          expect(parseHost(`${name}.123`)).toBeNull();
        },
      ),
    );
  });
});

describe('relay paths', () => {
  it('splits host, port, path and query, keeping path and query byte for byte', () => {
    const t = parse('/relay/ghcr.io/v2/a/b/manifests/sha256:abc?n=1&last=x%3Ay');
    expect(t).toMatchObject({
      host: 'ghcr.io',
      scheme: 'https',
      port: 443,
      authority: 'ghcr.io',
      path: '/v2/a/b/manifests/sha256:abc',
      query: '?n=1&last=x%3Ay',
    });
    expect(parse('/relay/localhost:5000/v2/')).toMatchObject({
      scheme: 'http',
      port: 5000,
      authority: 'localhost:5000',
    });
    expect(parse('/relay/localhost:5001/v2/')).toMatchObject({ scheme: 'https', port: 5001 });
    expect(parse('/relay/[::1]:7000/token?scope=repository:a/b:pull,push')).toMatchObject({
      host: '::1',
      authority: '[::1]:7000',
      path: '/token',
      query: '?scope=repository:a/b:pull,push',
    });
    expect(parse('http://app.example/relay/ghcr.io/v2/')).toMatchObject({ host: 'ghcr.io', path: '/v2/' });
  });

  it('refuses injection through the path', () => {
    for (const raw of [
      '/relay',
      '/relay/',
      '/relay//v2/',
      '/relay/ghcr.io',
      '/relay/ghcr.io?x=1',
      '/relay/ghcr.io/v2/%0d%0aSet-Cookie:%20a=b',
      '/relay/ghcr.io/v2/%0D%0A',
      '/relay/ghcr.io/v2/%0a',
      '/relay/ghcr.io/v2/%00',
      '/relay/ghcr.io/v2/%7f',
      '/relay/ghcr.io/v2/\r\nHost: evil',
      '/relay/ghcr.io/v2/?q=%0d%0a',
      '/relay/ghcr.io/v2/?q=\n',
      '/relay/ghcr.io/v2/%zz',
      '/relay/ghcr.io/v2/%4',
      '/relay/ghcr.io/v2/../x',
      '/relay/ghcr.io/v2/./x',
      '/relay/ghcr.io/v2/%2e%2e/x',
      '/relay/ghcr.io/v2/.%2E/x',
      '/relay/ghcr.io/v2/%2E/x',
      '/relay/ghcr.io/..',
      '/relay/ghcr.io/v2/a%2fb',
      '/relay/ghcr.io/v2/a%5Cb',
      '/relay/ghcr.io/v2\\..\\x',
      '/relay/ghcr.io\\v2/',
      '/relay/ghcr.io//v2/',
      '/relay/ghcr.io/v2//x',
      '/relay/ghcr.io/v2/#frag',
      '/relay/ghcr.io/v2/ x',
      '/relay/ghcr.io/v2/é',
      '/relay/user@ghcr.io/v2/',
      '/relay/user:pass@ghcr.io/v2/',
      '/relay/ghcr.io@evil.example/v2/',
      '/relay/ghcr.io:99999/v2/',
      '/relay/ghcr.io:abc/v2/',
      '/relay/gh%63r.io/v2/',
      '/relay/2130706433/v2/',
      '/x/../relay/ghcr.io/v2/',
    ]) {
      badRequest(raw);
    }
  });
});

describe('the relay refuses bad paths before resolving or connecting', () => {
  let upstream: Loopback;
  let server: ServerType;
  let port: number;
  const { lookup, asked } = stubLookup({});
  const { requestUpstream, attempts } = scriptedUpstream();

  beforeAll(async () => {
    upstream = await startLoopback((_req, res) => res.end('reached'));
    const { app } = relayApp({
      allowedRegistries: [upstream.authority],
      privateRegistries: [upstream.authority],
      plainHttpRegistries: [upstream.authority],
    });
    ({ server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' }));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.close();
  });

  /** Sends a raw request line over a socket, so the target reaches the server unnormalised. */
  function raw(target: string): Promise<{ status: number; relayError: string | undefined; text: string }> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let data = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (data += d));
      socket.on('error', reject);
      socket.on('end', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
        const relayError = /\r\nx-relay-error: ([A-Z_]+)/i.exec(data)?.[1];
        resolve({ status, relayError, text: data });
      });
      socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, 'latin1');
    });
  }

  it('sees `..` and encoded tricks in the raw request target', async () => {
    const u = upstream.authority;
    for (const target of [
      `/relay/${u}/v2/../v2/`,
      `/relay/${u}/v2/%2e%2e/v2/`,
      `/relay/${u}/v2/.%2E/v2/`,
      `/relay/${u}/v2/./`,
      `/relay/${u}/v2\\`,
      `/relay/${u}/v2/%5c..%5c`,
      `/relay/${u}/v2/%0d%0aX-Injected:%201`,
      `/relay/evil.example/../${u}/v2/`,
      `/x/../relay/${u}/v2/`,
    ]) {
      const r = await raw(target);
      expect(r.status, target).toBe(400);
      expect(r.relayError, target).toBe('RELAY_BAD_REQUEST');
    }
    expect(upstream.requests).toHaveLength(0);
    // The same upstream is reachable with a clean path: the refusals were about the path.
    const ok = await raw(`/relay/${u}/v2/`);
    expect(ok.status).toBe(200);
    expect(ok.text.endsWith('reached')).toBe(true);
    expect(upstream.requests).toHaveLength(1);
  });

  it('answers 400 through app.request without resolving or connecting', async () => {
    const { app, lines } = relayApp({ allowedRegistries: ['ghcr.io'], lookup, requestUpstream });
    for (const path of [
      '/relay/ghcr.io/v2/%0d%0a',
      '/relay/user@ghcr.io/v2/',
      '/relay/ghcr.io:0/v2/',
      '/relay/ghcr.io/a%2fb',
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(400);
      expect(res.headers.get('x-relay-error')).toBe('RELAY_BAD_REQUEST');
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code).toBe('RELAY_BAD_REQUEST');
      expect(body.message).toMatch(/^The relay path/);
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
    // Refused paths are logged without the path itself.
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(l).toMatch(/^relay GET - - 400 .* RELAY_BAD_REQUEST$/);
  });
});

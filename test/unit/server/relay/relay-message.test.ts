/**
 * The relay's sentence travels in `X-Relay-Message` (percent-encoded UTF-8) on every refusal, so a
 * client that asked with HEAD — a body-less answer — still reads why (issue #13, item 3); and the
 * embedded registry is reachable as `localhost:<port>` as well as `127.0.0.1:<port>`, on loopback
 * only. Traffic goes only to 127.0.0.1; other addresses exist only in stubbed resolver answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RelayError } from '../../../../shared/errors.ts';
import { RegistryClient, relayRouting } from '../../../../shared/registry/client.ts';
import { relayErrorHeaders, relayMessageOf } from '../../../../shared/registry/relay-error.ts';
import { relayApp, scriptedUpstream, startLoopback, stubLookup, type Loopback } from '../loopback.ts';

const servers: Loopback[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('X-Relay-Message', () => {
  it('round-trips any sentence, and a mangled header reads as none', () => {
    const sentence = 'The registry host ünknown.example could not be resolved: 100% sure, "quoted"\n.';
    const headers = new Headers(relayErrorHeaders('RELAY_UPSTREAM_UNREACHABLE', sentence));
    expect(headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_UNREACHABLE');
    expect(headers.get('x-relay-message')).toMatch(/^[\x21-\x7e]+$/);
    expect(relayMessageOf(headers)).toBe(sentence);
    expect(relayMessageOf(new Headers({ 'X-Relay-Message': '%E0%A4%A' }))).toBeNull();
    expect(relayMessageOf(new Headers())).toBeNull();
  });

  it('a HEAD refusal has no body but carries the same sentence as the GET body', async () => {
    const { lookup } = stubLookup({});
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: ['registry.example'], lookup, requestUpstream });
    for (const path of ['/relay/evil.example/v2/x/manifests/v1', '/relay/nowhere.example.invalid/v2/']) {
      const get = await app.request(path);
      const body = (await get.json()) as { code: string; message: string };
      const head = await app.request(path, { method: 'HEAD' });
      expect(head.status).toBe(get.status);
      expect(await head.text()).toBe('');
      expect(head.headers.get('x-relay-error')).toBe(body.code);
      expect(relayMessageOf(head.headers)).toBe(body.message);
      expect(relayMessageOf(get.headers)).toBe(body.message);
    }
    // An allowed host that does not resolve: the relay's own words, "could not be resolved".
    const unresolved = await app.request('/relay/registry.example/v2/', { method: 'HEAD' });
    expect(unresolved.headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_UNREACHABLE');
    expect(relayMessageOf(unresolved.headers)).toBe('The registry host registry.example could not be resolved.');
    expect(attempts).toHaveLength(0);
  });

  it("the registry client's HEAD (a look-up's first request) throws the relay's sentence, the code once", async () => {
    const { app } = relayApp({ allowedRegistries: ['registry.example'], lookup: stubLookup({}).lookup });
    const client = new RegistryClient({
      fetch: async (input, init) => app.request(input instanceof Request ? input : String(input), init),
      ...relayRouting('http://localhost'),
    });
    const refused = await client.resolve({ registry: 'evil.example', repository: 'x' }, 'v1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RelayError);
    expect((refused as RelayError).code).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
    const direct = await app.request('/relay/evil.example/v2/x/manifests/v1');
    expect((refused as RelayError).message).toBe(((await direct.json()) as { message: string }).message);
    expect((refused as RelayError).message).not.toContain('RELAY_UPSTREAM_NOT_ALLOWED');
  });
});

describe('the embedded registry as localhost:<port>', () => {
  it('reaches 127.0.0.1 without asking DNS; a localRegistries name resolving elsewhere is refused', async () => {
    const upstream = await startLoopback((_req, res) =>
      res.writeHead(200, { 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}'),
    );
    servers.push(upstream);
    const { lookup, asked } = stubLookup({ 'registry.test': ['93.184.216.34'], localhost: ['93.184.216.34'] });
    const { app } = relayApp({
      localRegistries: [upstream.authority, `localhost:${upstream.port}`, `registry.test:${upstream.port}`],
      lookup,
    });
    const viaName = await app.request(`/relay/localhost:${upstream.port}/v2/`);
    expect(viaName.status).toBe(200);
    expect(upstream.requests.at(-1)?.headers.host).toBe(`localhost:${upstream.port}`);
    expect(asked).not.toContain('localhost');
    expect((await app.request(`/relay/${upstream.authority}/v2/`)).status).toBe(200);
    const elsewhere = await app.request(`/relay/registry.test:${upstream.port}/v2/`, { method: 'HEAD' });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.headers.get('x-relay-error')).toBe('RELAY_ADDRESS_REFUSED');
    expect(relayMessageOf(elsewhere.headers)).toMatch(/on loopback only/);
    expect(upstream.requests).toHaveLength(2);
    // Another port on localhost stays refused.
    const other = await app.request(`/relay/localhost:${upstream.port + 1}/v2/`);
    expect(other.headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
  });
});

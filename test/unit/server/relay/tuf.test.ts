/**
 * The relay's read-only TUF hosts (server/relay/config.ts DEFAULT_TUF_HOSTS, SIGSTORE_TUF_URL,
 * SIGSTORE_TUF_TARGETS_URL; server/relay/relay.ts): a GET to Sigstore's TUF repository is relayed
 * (with the default allowlist and with an explicit RELAY_ALLOWED_REGISTRIES), every other method is
 * refused before any connection, other hosts stay refused, an operator's repository replaces the
 * default one (loopback allowed, plain http for an http:// URL), and an answer longer than
 * TUF_MAX_RESPONSE_BYTES is not passed on. https://theupdateframework.github.io/specification/latest/
 * Traffic goes only to 127.0.0.1; other addresses exist only in stubbed resolver answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RelayError } from '../../../../shared/errors.ts';
import {
  DEFAULT_TUF_HOSTS,
  describeTufHosts,
  relayOptionsFromEnv,
  TUF_MAX_RESPONSE_BYTES,
  tufRepositoryFromEnv,
} from '../../../../server/relay/config.ts';
import { relayApp, scriptedUpstream, startLoopback, stubLookup, type Loopback } from '../loopback.ts';

const TUF = 'tuf-repo-cdn.sigstore.dev';
/** A public address for the stubbed resolver (never connected to: the upstream hook is scripted). */
const PUBLIC = '151.101.0.1';

const servers: Loopback[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function relayCode(res: Response): Promise<string> {
  const body = (await res.json()) as { code: string };
  expect(res.headers.get('x-relay-error')).toBe(body.code);
  return body.code;
}

describe('the Sigstore TUF repository through the relay', () => {
  it('is on the default allowlist for GET, over https to the name asked', async () => {
    expect(DEFAULT_TUF_HOSTS).toEqual([TUF]);
    const { lookup, asked } = stubLookup({ [TUF]: [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200, body: '{"signed":{}}' }]);
    const { app, lines } = relayApp({ lookup, requestUpstream });
    const res = await app.request(`/relay/${TUF}/timestamp.json`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"signed":{}}');
    expect(asked).toEqual([TUF]);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ method: 'GET', port: 443, path: '/timestamp.json', servername: TUF });
    expect(lines.at(-1)).toMatch(new RegExp(`^relay GET ${TUF} /timestamp.json 200 `));
  });

  it('stays reachable for GET when RELAY_ALLOWED_REGISTRIES replaces the registry defaults', async () => {
    const { lookup } = stubLookup({ [TUF]: [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([{ status: 200, body: 'x' }]);
    const { app } = relayApp({ allowedRegistries: ['registry.example'], lookup, requestUpstream });
    expect((await app.request(`/relay/${TUF}/targets/abc.trusted_root.json`)).status).toBe(200);
    expect(attempts).toHaveLength(1);
  });

  it('refuses every other method with 405 and Allow: GET, before resolving or connecting', async () => {
    const { lookup, asked } = stubLookup({ [TUF]: [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([]);
    const { app } = relayApp({ lookup, requestUpstream });
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']) {
      const res = await app.request(`/relay/${TUF}/timestamp.json`, {
        method,
        ...(method === 'HEAD' || method === 'DELETE' ? {} : { body: '{}' }),
      });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow'), method).toBe('GET');
      if (method !== 'HEAD') expect(await relayCode(res), method).toBe('RELAY_METHOD_NOT_ALLOWED');
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });

  it('refuses other hosts and ports, look-alikes included, without connecting', async () => {
    const { lookup } = stubLookup({ 'evil.example': [PUBLIC], 'sigstore.dev': [PUBLIC] });
    const { requestUpstream, attempts } = scriptedUpstream([]);
    const { app } = relayApp({ lookup, requestUpstream });
    for (const path of [
      '/relay/evil.example/timestamp.json',
      '/relay/sigstore.dev/timestamp.json',
      `/relay/${TUF}.evil.example/timestamp.json`,
      `/relay/x.${TUF}/timestamp.json`,
      `/relay/${TUF}:8443/timestamp.json`,
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(403);
      expect(await relayCode(res), path).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
    }
    expect(attempts).toEqual([]);
  });

  it('must resolve to public addresses (the default host is not operator-vouched)', async () => {
    const { lookup } = stubLookup({ [TUF]: ['127.0.0.1'] });
    const { requestUpstream, attempts } = scriptedUpstream([]);
    const { app } = relayApp({ lookup, requestUpstream });
    const res = await app.request(`/relay/${TUF}/timestamp.json`);
    expect(res.status).toBe(403);
    expect(await relayCode(res)).toBe('RELAY_ADDRESS_REFUSED');
    expect(attempts).toEqual([]);
  });
});

describe('SIGSTORE_TUF_URL', () => {
  type Answer = { headers?: Record<string, string>; data: Buffer };
  async function repo(body: (path: string) => Answer): Promise<Loopback> {
    const s = await startLoopback((req, res) => {
      const { headers, data } = body(req.url);
      res.writeHead(200, headers ?? {});
      res.end(data);
    });
    servers.push(s);
    return s;
  }

  it("replaces the default TUF host: its loopback host is read over plain http, GET only; Sigstore's is refused", async () => {
    const s = await repo((path) => ({ data: Buffer.from(`served ${path}`) }));
    const options = relayOptionsFromEnv({ SIGSTORE_TUF_URL: `http://${s.authority}/metadata` });
    expect(options.tufRepositoryUrls).toEqual([
      `http://${s.authority}/metadata`,
      `http://${s.authority}/metadata/targets`,
    ]);
    expect(describeTufHosts(options)).toContain(s.authority);
    const { app } = relayApp(options);
    const res = await app.request(`/relay/${s.authority}/metadata/2.root.json`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('served /metadata/2.root.json');
    const post = await app.request(`/relay/${s.authority}/metadata/2.root.json`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(s.requests.map((r) => r.method)).toEqual(['GET']);
    expect((await app.request(`/relay/${TUF}/timestamp.json`)).status).toBe(403);
  });

  it('does not pass on an answer longer than TUF_MAX_RESPONSE_BYTES, declared or streamed', async () => {
    const big = Buffer.alloc(TUF_MAX_RESPONSE_BYTES + 1, 0x61);
    const s = await repo((path): Answer =>
      path.endsWith('declared')
        ? { headers: { 'content-length': String(big.length) }, data: big }
        : { headers: { 'transfer-encoding': 'chunked' }, data: big },
    );
    const { app, lines } = relayApp(relayOptionsFromEnv({ SIGSTORE_TUF_URL: `http://${s.authority}` }));
    const declared = await app.request(`/relay/${s.authority}/declared`);
    expect(declared.status).toBe(502);
    expect(await relayCode(declared)).toBe('RELAY_BODY_TOO_LARGE');
    const streamed = await app.request(`/relay/${s.authority}/streamed`);
    expect(streamed.status).toBe(200);
    await expect(streamed.arrayBuffer()).rejects.toThrow();
    expect(lines.at(-1)).toMatch(/ RELAY_BODY_TOO_LARGE$/);
  });

  it('reads SIGSTORE_TUF_TARGETS_URL, and refuses URLs that are not plain http(s) locations', () => {
    expect(tufRepositoryFromEnv({})).toBeNull();
    expect(
      tufRepositoryFromEnv({
        SIGSTORE_TUF_URL: 'https://tuf.example/metadata/',
        SIGSTORE_TUF_TARGETS_URL: 'https://cdn.example:8443/t',
      }),
    ).toEqual({ metadataUrl: 'https://tuf.example/metadata', targetsUrl: 'https://cdn.example:8443/t' });
    for (const env of [
      { SIGSTORE_TUF_URL: 'tuf.example' },
      { SIGSTORE_TUF_URL: 'ftp://tuf.example/' },
      { SIGSTORE_TUF_URL: 'https://user:pw@tuf.example/' },
      { SIGSTORE_TUF_URL: 'https://tuf.example/?x=1' },
      { SIGSTORE_TUF_URL: 'https://tuf.example/#x' },
      { SIGSTORE_TUF_TARGETS_URL: 'https://tuf.example/targets' },
      { SIGSTORE_TUF_URL: 'https://tuf.example', SIGSTORE_TUF_TARGETS_URL: 'javascript:alert(1)' },
    ]) {
      let err: unknown;
      try {
        relayOptionsFromEnv(env);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(env)).toBeInstanceOf(RelayError);
      expect((err as RelayError).code).toBe('RELAY_CONFIG_INVALID');
      expect((err as RelayError).message).toMatch(/SIGSTORE_TUF_(TARGETS_)?URL/);
    }
  });
});

/**
 * The relay's blob transfer (server/relay/transfer.ts, `POST /relay-transfer`) through
 * `app.request()`, between small registries on 127.0.0.1 that serve a blob and take an upload:
 * a blob moves whole with progress lines and each side gets its own Authorization; refusals come
 * before any connection (hosts off the allowlist on either side, private addresses of hosts not in
 * RELAY_PRIVATE_REGISTRIES, the embedded registry's loopback-only rule, bad orders, other methods,
 * other sites, oversized orders); a source that serves other bytes than the digest names is caught
 * on the way and the upload never receives its last bytes, then is deleted; no credential reaches
 * a log line or the other side.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readTransferAnswer } from '../../../../shared/registry/transfer.ts';
import { relayMessageOf } from '../../../../shared/registry/relay-error.ts';
import { relayApp, scriptedUpstream, stubLookup } from '../loopback.ts';

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  /** Bytes of the body that arrived, and whether it ended (an aborted upload never does). */
  bytes: number;
  ended: boolean;
  digest: string;
}

interface Registry {
  authority: string;
  seen: Seen[];
  close(): Promise<void>;
}

const servers: Registry[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/**
 * A registry on 127.0.0.1: serves `blob` under any digest (so it can lie), takes a monolithic
 * upload at /v2/<repo>/blobs/uploads/<id> and records every request as it arrived, bodies hashed.
 */
async function registry(blob: Buffer = Buffer.alloc(0)): Promise<Registry> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const hash = createHash('sha256');
    const s: Seen = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      bytes: 0,
      ended: false,
      digest: '',
    };
    seen.push(s);
    req.on('data', (c: Buffer) => {
      s.bytes += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      s.ended = true;
      s.digest = `sha256:${hash.digest('hex')}`;
      if (req.method === 'GET' && /\/blobs\/sha256:/.test(s.url)) {
        res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
        res.end(blob);
      } else if (req.method === 'PUT') {
        const want = new URL(s.url, 'http://x').searchParams.get('digest');
        res.writeHead(want === s.digest ? 201 : 400, { 'docker-content-digest': s.digest });
        res.end();
      } else {
        res.writeHead(req.method === 'DELETE' ? 204 : 404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const r: Registry = {
    authority: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(r);
  return r;
}

function digestOf(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function order(src: string, dst: string, blob: { digest: string; size: number }, auth = true): string {
  return JSON.stringify({
    from: {
      registry: src,
      repository: 'team/app',
      ...blob,
      ...(auth ? { authorization: 'Bearer source-secret-token' } : {}),
    },
    to: {
      location: `https://${dst}/v2/copy/app/blobs/uploads/abc-123?_state=upload-state-secret`,
      ...(auth ? { authorization: 'Basic ZGVzdDpkZXN0LXNlY3JldA==' } : {}),
    },
  });
}

function post(body: string, headers: Record<string, string> = {}): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body };
}

function allowing(...hosts: string[]): {
  allowedRegistries: string[];
  privateRegistries: string[];
  plainHttpRegistries: string[];
} {
  return { allowedRegistries: hosts, privateRegistries: hosts, plainHttpRegistries: hosts };
}

async function refusal(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { code: string; message: string };
  expect(res.headers.get('x-relay-error')).toBe(body.code);
  expect(relayMessageOf(res.headers)).toBe(body.message);
  return body;
}

describe('a transfer', () => {
  it('moves the blob whole into the upload, closes it with the digest, and reports progress', async () => {
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    const src = await registry(blob);
    const dst = await registry();
    const { app, lines } = relayApp(allowing(src.authority, dst.authority));
    const want = { digest: digestOf(blob), size: blob.length };
    const res = await app.request('/relay-transfer', post(order(src.authority, dst.authority, want)));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(res.headers.get('cache-control')).toBe('no-store');
    let reported = 0;
    await readTransferAnswer(res.body!, (n) => (reported += n));
    expect(reported).toBe(blob.length);

    expect(src.seen).toHaveLength(1);
    expect(src.seen[0]).toMatchObject({ method: 'GET', url: `/v2/team/app/blobs/${want.digest}` });
    const put = dst.seen.find((s) => s.method === 'PUT')!;
    expect(put.url).toBe(`/v2/copy/app/blobs/uploads/abc-123?_state=upload-state-secret&digest=${want.digest}`);
    expect(put).toMatchObject({ bytes: blob.length, ended: true, digest: want.digest });
    // Each side gets its own credentials, never the other's.
    expect(src.seen[0]!.authorization).toBe('Bearer source-secret-token');
    expect(put.authorization).toBe('Basic ZGVzdDpkZXN0LXNlY3JldA==');
    // One log line, without credentials or the upload's query.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^relay TRANSFER ${src.authority} /v2/team/app/blobs/sha256:[0-9a-f]{64} -> ${dst.authority} /v2/copy/app/blobs/uploads/abc-123 200 up=${blob.length}B \\d+ms$`,
      ),
    );
  });

  it('refuses a source that serves other bytes: the upload never gets its last bytes and is deleted', async () => {
    const served = randomBytes(2 * 1024 * 1024);
    const claimed = Buffer.from(served);
    claimed[claimed.length - 1]! ^= 1;
    const src = await registry(served);
    const dst = await registry();
    const { app, lines } = relayApp(allowing(src.authority, dst.authority));
    const res = await app.request(
      '/relay-transfer',
      post(order(src.authority, dst.authority, { digest: digestOf(claimed), size: claimed.length })),
    );
    expect(res.status).toBe(200);
    const failure = await readTransferAnswer(res.body!, () => undefined).then(
      () => null,
      (e: unknown) => e,
    );
    expect(failure).toMatchObject({ code: 'REGISTRY_DIGEST_MISMATCH' });
    expect((failure as Error).message).toContain(`its bytes hash to ${digestOf(served)}`);
    // Wait for the destination to see the upload cut off and the DELETE.
    await expect.poll(() => dst.seen.map((s) => s.method), { timeout: 20_000 }).toContain('DELETE');
    const put = dst.seen.find((s) => s.method === 'PUT')!;
    expect(put.ended, 'the upload was not completed').toBe(false);
    expect(put.bytes).toBeLessThan(served.length);
    expect(dst.seen.find((s) => s.method === 'DELETE')!.url).toBe(
      '/v2/copy/app/blobs/uploads/abc-123?_state=upload-state-secret',
    );
    expect(lines.join('\n')).toContain(' REGISTRY_DIGEST_MISMATCH ');
  });

  it('refuses a source that serves fewer bytes than ordered before anything goes up', async () => {
    const blob = randomBytes(1000);
    const src = await registry(blob);
    const dst = await registry();
    const { app } = relayApp(allowing(src.authority, dst.authority));
    const res = await app.request(
      '/relay-transfer',
      post(order(src.authority, dst.authority, { digest: digestOf(blob), size: 2000 })),
    );
    expect(res.status).toBe(502);
    expect((await refusal(res)).code).toBe('RELAY_TRANSFER_FAILED');
    expect(dst.seen).toHaveLength(0);
  });

  it('never writes a credential or an upload state into the log, whatever the outcome', async () => {
    const blob = randomBytes(1000);
    const src = await registry(blob);
    const dst = await registry();
    const { app, lines } = relayApp(allowing(src.authority, dst.authority));
    const ok = { digest: digestOf(blob), size: blob.length };
    await (await app.request('/relay-transfer', post(order(src.authority, dst.authority, ok)))).text();
    await (await app.request('/relay-transfer', post(order(src.authority, dst.authority, { ...ok, size: 5 })))).text();
    await (await app.request('/relay-transfer', post(order(src.authority, 'evil.example', ok)))).text();
    expect(lines).toHaveLength(3);
    for (const secret of ['source-secret-token', 'ZGVzdDpkZXN0LXNlY3JldA', 'upload-state-secret', 'Bearer', 'Basic']) {
      expect(lines.join('\n')).not.toContain(secret);
    }
  });
});

describe('refusals before any connection', () => {
  const blob = { digest: `sha256:${'ab'.repeat(32)}`, size: 10 };

  it('refuses a source or a destination that is not on the allowlist, without resolving it', async () => {
    const { lookup, asked } = stubLookup({ 'evil.example': ['93.184.216.34'] });
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: ['registry.example'], lookup, requestUpstream });
    for (const [src, dst] of [
      ['evil.example', 'registry.example'],
      ['registry.example', 'evil.example'],
      ['registry.example:8443', 'registry.example'],
      ['tuf-repo-cdn.sigstore.dev', 'registry.example'],
      ['registry.example', 'tuf-repo-cdn.sigstore.dev'],
    ] as const) {
      const res = await app.request('/relay-transfer', post(order(src, dst, blob)));
      expect(res.status, `${src} -> ${dst}`).toBe(403);
      expect((await refusal(res)).code).toBe('RELAY_UPSTREAM_NOT_ALLOWED');
    }
    expect(asked).toEqual([]);
    expect(attempts).toEqual([]);
  });

  it('refuses either side resolving to a private or loopback address unless it is a private registry', async () => {
    const { lookup } = stubLookup({
      'public.example': ['93.184.216.34'],
      'inside.example': ['10.0.0.8'],
      'loop.example': ['127.0.0.1'],
    });
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({
      allowedRegistries: ['public.example', 'inside.example', 'loop.example'],
      lookup,
      requestUpstream,
    });
    for (const [src, dst] of [
      ['inside.example', 'public.example'],
      ['public.example', 'inside.example'],
      ['loop.example', 'public.example'],
      ['public.example', 'loop.example'],
      ['public.example', '169.254.169.254'],
    ] as const) {
      const res = await app.request('/relay-transfer', post(order(src, dst, blob)));
      const body = await refusal(res);
      expect([res.status, body.code], `${src} -> ${dst}`).toEqual(
        dst === '169.254.169.254' ? [403, 'RELAY_UPSTREAM_NOT_ALLOWED'] : [403, 'RELAY_ADDRESS_REFUSED'],
      );
    }
    expect(attempts).toEqual([]);
  });

  it("keeps the embedded registry's loopback-only rule on both sides", async () => {
    const { lookup } = stubLookup({ 'public.example': ['93.184.216.34'], 'embedded.example': ['192.168.1.5'] });
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({
      allowedRegistries: ['public.example'],
      localRegistries: ['embedded.example:5000'],
      lookup,
      requestUpstream,
    });
    for (const [src, dst] of [
      ['embedded.example:5000', 'public.example'],
      ['public.example', 'embedded.example:5000'],
    ] as const) {
      const res = await app.request('/relay-transfer', post(order(src, dst, blob)));
      expect(res.status).toBe(403);
      const body = await refusal(res);
      expect(body.code).toBe('RELAY_ADDRESS_REFUSED');
      expect(body.message).toContain('loopback only');
    }
    expect(attempts).toEqual([]);
  });

  it('refuses malformed orders, other methods, other sites and oversized orders', async () => {
    const { requestUpstream, attempts } = scriptedUpstream();
    const { app } = relayApp({ allowedRegistries: ['registry.example'], requestUpstream });
    const good = JSON.parse(order('registry.example', 'registry.example', blob)) as {
      from: Record<string, unknown>;
      to: Record<string, unknown>;
    };
    const bad: unknown[] = [
      'not json',
      { ...good, from: { ...good.from, digest: 'sha512:00' } },
      { ...good, from: { ...good.from, repository: '../etc' } },
      { ...good, from: { ...good.from, size: -1 } },
      { ...good, from: { ...good.from, authorization: 'Bearer x\r\nX-Injected: 1' } },
      { ...good, from: { ...good.from, registry: 'user@registry.example' } },
      { ...good, from: { ...good.from, registry: 'registry.example/v2/other/blobs/sha256:00#' } },
      { ...good, to: { location: 'https://registry.example/v2/copy/app/manifests/latest' } },
      { ...good, to: { location: 'https://user:pw@registry.example/v2/copy/app/blobs/uploads/x' } },
      { ...good, to: { location: 'https://registry.example/admin/blobs/uploads/x' } },
      { ...good, to: { location: 'file:///etc/passwd' } },
    ];
    for (const b of bad) {
      const res = await app.request('/relay-transfer', post(typeof b === 'string' ? b : JSON.stringify(b)));
      expect(res.status, JSON.stringify(b)).toBe(400);
      expect((await refusal(res)).code).toBe('RELAY_BAD_REQUEST');
    }
    const get = await app.request('/relay-transfer');
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    const cross = await app.request('/relay-transfer', post(JSON.stringify(good), { origin: 'https://evil.example' }));
    expect([cross.status, (await refusal(cross)).code]).toEqual([403, 'RELAY_ORIGIN_REFUSED']);
    const big = await app.request('/relay-transfer', post(JSON.stringify({ ...good, pad: 'x'.repeat(70 * 1024) })));
    expect(big.status).toBe(413);
    expect(attempts).toEqual([]);
  });
});

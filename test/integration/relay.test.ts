/**
 * The relay against the real distribution 2.8 registries of the test rig (test/rig/registries.ts),
 * served over a real socket on 127.0.0.1 and driven with plain fetch calls, as the page drives it:
 * blob and manifest push (POST + monolithic PUT), pull and delete on the TLS registry; basic auth
 * on the plain-HTTP registry; the Bearer token flow by hand (401 → WWW-Authenticate → token
 * endpoint through the relay → retry); the manifest limit; TLS verification with and without the
 * rig's CA, and NODE_EXTRA_CA_CERTS in the real server process. Also the shared registry client
 * through the relay. Every registry listens on loopback.
 */
import type { ServerType } from '@hono/node-server';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import type { RelayOptions } from '../../server/relay/config.ts';
import { serveApp } from '../../server/serve.ts';
import { RegistryClient, relayRouting } from '../../shared/registry/client.ts';
import { MT } from '../../shared/registry/mediatypes.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';

const regs = inject('cosignWebRegistries');
const token = regs.token!;
const realmHost = new URL(token.realm).host;
const allowed = [regs.tls.host, regs.basic.host, token.host, realmHost];

interface Relay {
  base: string;
  lines: string[];
  server: ServerType;
}

async function startRelay(options: RelayOptions): Promise<Relay> {
  const lines: string[] = [];
  const app = createApp({ staticRoot: testStaticRoot(), relay: { log: (l) => lines.push(l), ...options } });
  const { server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
  return { base: `http://127.0.0.1:${port}`, lines, server };
}

function stopRelay(r: Relay): Promise<void> {
  (r.server as http.Server).closeAllConnections();
  return new Promise((resolve) => r.server.close(() => resolve()));
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basicAuth = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

let relay: Relay;
beforeAll(async () => {
  relay = await startRelay({
    allowedRegistries: allowed,
    privateRegistries: allowed,
    plainHttpRegistries: [regs.basic.host],
    ca: readFileSync(regs.tls.caFile, 'utf8'),
  });
});
afterAll(async () => {
  await stopRelay(relay);
});

/** fetch through the relay: `path` is either `/v2/...` on `host`, or a relay path a Location gave. */
function viaRelay(host: string, path: string, init?: RequestInit): Promise<Response> {
  const url = path.startsWith('/relay/') ? `${relay.base}${path}` : `${relay.base}/relay/${host}${path}`;
  return fetch(url, { redirect: 'manual', ...init });
}

/** Pushes a blob with POST + monolithic PUT; returns its digest. */
async function pushBlob(host: string, repo: string, bytes: Uint8Array, auth?: string): Promise<string> {
  const headers: Record<string, string> = auth ? { Authorization: auth } : {};
  const start = await viaRelay(host, `/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  expect(start.status).toBe(202);
  expect(start.headers.get('x-relay-error')).toBeNull();
  const location = start.headers.get('location')!;
  // The registry's absolute upload URL came back as a relay path on the same registry.
  expect(location.startsWith(`/relay/${host}/v2/${repo}/blobs/uploads/`)).toBe(true);
  expect(location).toContain('_state=');
  const digest = sha256(bytes);
  const put = await viaRelay(host, `${location}&digest=${encodeURIComponent(digest)}`, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body: new Uint8Array(bytes),
  });
  expect(put.status).toBe(201);
  expect(put.headers.get('docker-content-digest')).toBe(digest);
  expect(put.headers.get('location')).toBe(`/relay/${host}/v2/${repo}/blobs/${digest}`);
  return digest;
}

describe('TLS registry through the relay', () => {
  const host = regs.tls.host;
  const repo = `relay/tls-${randomBytes(4).toString('hex')}`;

  it('answers the API version check', async () => {
    const res = await viaRelay(host, '/v2/');
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('pushes, pulls and deletes a blob and a manifest', async () => {
    const config = new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: {} }));
    const layer = randomBytes(200_000);
    const configDigest = await pushBlob(host, repo, config);
    const layerDigest = await pushBlob(host, repo, layer);

    const head = await viaRelay(host, `/v2/${repo}/blobs/${layerDigest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.length));
    const got = await viaRelay(host, `/v2/${repo}/blobs/${layerDigest}`);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(layer)).toBe(true);

    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      }),
    );
    const manifestDigest = sha256(manifest);
    const put = await viaRelay(host, `/v2/${repo}/manifests/v1`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(manifestDigest);
    expect(put.headers.get('location')).toBe(`/relay/${host}/v2/${repo}/manifests/${manifestDigest}`);

    const pulled = await viaRelay(host, `/v2/${repo}/manifests/v1`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(pulled.status).toBe(200);
    expect(pulled.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(Buffer.from(await pulled.arrayBuffer()).equals(Buffer.from(manifest))).toBe(true);

    const tags = await viaRelay(host, `/v2/${repo}/tags/list`);
    expect(await tags.json()).toEqual({ name: repo, tags: ['v1'] });

    const del = await viaRelay(host, `/v2/${repo}/manifests/${manifestDigest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const gone = await viaRelay(host, `/v2/${repo}/manifests/${manifestDigest}`);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('x-relay-error')).toBeNull();
    expect(((await gone.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('MANIFEST_UNKNOWN');
    const delBlob = await viaRelay(host, `/v2/${repo}/blobs/${layerDigest}`, { method: 'DELETE' });
    expect(delBlob.status).toBe(202);
  });

  it('refuses an oversized manifest with 413; the registry never gets it', async () => {
    const small = await startRelay({
      allowedRegistries: allowed,
      privateRegistries: allowed,
      ca: readFileSync(regs.tls.caFile, 'utf8'),
      maxManifestBytes: 512,
    });
    try {
      const body = JSON.stringify({ schemaVersion: 2, padding: 'x'.repeat(600) });
      const res = await fetch(`${small.base}/relay/${host}/v2/${repo}/manifests/too-big`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
        body,
      });
      expect(res.status).toBe(413);
      expect(res.headers.get('x-relay-error')).toBe('RELAY_BODY_TOO_LARGE');
      const check = await viaRelay(host, `/v2/${repo}/manifests/too-big`);
      expect(check.status).toBe(404);
    } finally {
      await stopRelay(small);
    }
  });

  it('verifies the certificate: without the rig CA the relay refuses with RELAY_UPSTREAM_TLS', async () => {
    const untrusting = await startRelay({ allowedRegistries: allowed, privateRegistries: allowed });
    try {
      const res = await fetch(`${untrusting.base}/relay/${host}/v2/`);
      expect(res.status).toBe(502);
      expect(res.headers.get('x-relay-error')).toBe('RELAY_UPSTREAM_TLS');
      const body = (await res.json()) as { message: string };
      expect(body.message).toContain(host);
    } finally {
      await stopRelay(untrusting);
    }
  });

  it('trusts NODE_EXTRA_CA_CERTS in the real server process', async () => {
    // Port 0: the server says which port it got (a port picked here could be taken meanwhile).
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: process.env['HOME'] ?? '',
        PORT: '0',
        HOST: '127.0.0.1',
        EMBEDDED_REGISTRY: 'off',
        RELAY_ALLOWED_REGISTRIES: host,
        RELAY_PRIVATE_REGISTRIES: host,
        NODE_EXTRA_CA_CERTS: regs.tls.caFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const deadline = Date.now() + 30_000;
      let port = 0;
      for (;;) {
        const m = /^http:\/\/localhost:(\d+)$/m.exec(output);
        if (m) {
          port = Number(m[1]);
          break;
        }
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const res = await fetch(`http://127.0.0.1:${port}/relay/${host}/v2/?secret-query=1`);
      expect(res.status).toBe(200);
      expect(output).toContain(`relay: reaches ${host}`);
      await new Promise((r) => setTimeout(r, 100));
      expect(output).toMatch(new RegExp(`relay GET ${host} /v2/ 200 up=0B down=\\d+B \\d+ms`));
      expect(output).not.toContain('secret-query');
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('basic-auth registry over plain HTTP through the relay', () => {
  const { host, username, password } = regs.basic;
  const repo = `relay/basic-${randomBytes(4).toString('hex')}`;

  it('passes the challenge through and the credentials on', async () => {
    const anon = await viaRelay(host, '/v2/');
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="cosign-web-basic"');
    expect(anon.headers.get('x-relay-error')).toBeNull();
    const wrong = await viaRelay(host, '/v2/', { headers: { Authorization: basicAuth(username, 'wrong') } });
    expect(wrong.status).toBe(401);
    const ok = await viaRelay(host, '/v2/', { headers: { Authorization: basicAuth(username, password) } });
    expect(ok.status).toBe(200);
  });

  it('pushes and pulls a blob with basic auth', async () => {
    const auth = basicAuth(username, password);
    const bytes = randomBytes(50_000);
    const digest = await pushBlob(host, repo, bytes, auth);
    const got = await viaRelay(host, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: auth } });
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    // Credentials and query strings never reach the log.
    const log = relay.lines.join('\n');
    expect(log).not.toContain(password);
    expect(log).not.toContain(auth.slice(6));
    expect(log).not.toContain('_state');
    expect(log).not.toContain('digest=');
  });
});

describe('token-auth registry: the Bearer flow by hand, the token endpoint through the relay', () => {
  const host = token.host;
  const repo = `relay/token-${randomBytes(4).toString('hex')}`;

  /** Parses `Bearer realm="…",service="…",scope="…"` as a client would. */
  function challenge(header: string): Record<string, string> {
    expect(header.startsWith('Bearer ')).toBe(true);
    const out: Record<string, string> = {};
    for (const m of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) out[m[1]!] = m[2]!;
    return out;
  }

  async function getToken(realm: string, params: Record<string, string>, auth?: string): Promise<string> {
    const u = new URL(realm);
    // The client rewrites https://auth.host/token?x into /relay/auth.host/token?x.
    const path = `/relay/${u.host}${u.pathname}?${new URLSearchParams(params).toString()}`;
    const res = await fetch(`${relay.base}${path}`, auth ? { headers: { Authorization: auth } } : {});
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string };
    return body.token;
  }

  it('401 → WWW-Authenticate → token endpoint through the relay → retry with Bearer', async () => {
    const first = await viaRelay(host, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    expect(first.status).toBe(401);
    const c = challenge(first.headers.get('www-authenticate')!);
    expect(c['realm']).toBe(token.realm);
    expect(c['service']).toBe(token.service);
    // distribution 2.8 lists the actions in either order (Go map iteration): compare as a set.
    const prefix = `repository:${repo}:`;
    expect(c['scope']!.startsWith(prefix)).toBe(true);
    expect(c['scope']!.slice(prefix.length).split(',').sort()).toEqual(['pull', 'push']);

    const anonymous = await getToken(c['realm']!, { service: c['service']!, scope: c['scope']! });
    const denied = await viaRelay(host, `/v2/${repo}/blobs/uploads/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${anonymous}` },
    });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('x-relay-error')).toBeNull();

    const bearer = await getToken(
      c['realm']!,
      { service: c['service']!, scope: c['scope']! },
      basicAuth(token.username, token.password),
    );
    const bytes = randomBytes(10_000);
    const digest = await pushBlob(host, repo, bytes, `Bearer ${bearer}`);
    const got = await viaRelay(host, `/v2/${repo}/blobs/${digest}`, { headers: { Authorization: `Bearer ${bearer}` } });
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    expect(relay.lines.join('\n')).not.toContain(bearer);
  });
});

describe('the shared registry client through the relay', () => {
  it('pushes and reads back through relayRouting, on every rig registry', async () => {
    for (const [registry, creds] of [
      [regs.tls.host, undefined],
      [regs.basic.host, { username: regs.basic.username, password: regs.basic.password }],
      [token.host, { username: token.username, password: token.password }],
    ] as const) {
      const client = new RegistryClient({
        fetch: (input, init) => fetch(input, init),
        ...relayRouting(relay.base),
        credentials: () => creds,
      });
      const repo = { registry, repository: `relay/client-${randomBytes(4).toString('hex')}` };
      const bytes = randomBytes(30_000);
      const d = await client.pushBlob(repo, bytes);
      expect(d.digest).toBe(sha256(bytes));
      expect(Buffer.from(await client.getBlob(repo, d.digest, bytes.length)).equals(bytes)).toBe(true);
      // A manifest: push, resolve, list, pull and delete, all through the relay.
      const config = await client.pushBlob(repo, new TextEncoder().encode('{}'), { mediaType: MT.ociEmpty });
      const manifest = new TextEncoder().encode(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config,
          layers: [{ ...d, mediaType: 'application/octet-stream' }],
        }),
      );
      const digest = await client.putManifest(repo, 'v1', manifest, MT.ociManifest);
      expect((await client.resolve(repo, 'v1')).digest).toBe(digest);
      expect(await client.listTags(repo)).toEqual(['v1']);
      expect(Buffer.from((await client.getManifest(repo, digest)).bytes).equals(Buffer.from(manifest))).toBe(true);
      await client.deleteManifest(repo, digest);
      await expect(client.resolve(repo, digest)).rejects.toMatchObject({ code: 'REGISTRY_NOT_FOUND' });
    }
  });
});

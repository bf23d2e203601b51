/**
 * The embedded registry's protections (issue #12, item 3) against the real clients of the rig:
 * with EMBEDDED_REGISTRY_TOKEN, skopeo (`--dest-creds`), crane (`auth login`) and cosign 2.5
 * (`login`) push, sign and verify with the token as password and are refused without it; the
 * page's client through the relay gets the Basic challenge and gets in only with the token the
 * user typed (the relay adds none). Without a token: a blob is BLOB_UNKNOWN through another
 * repository (crane), REGISTRY_MAX_BYTES refuses a push with a sentence crane prints, `npm run gc`
 * frees what no manifest names and says how much, and the server refuses to start the registry
 * beyond loopback without a token, and takes the token from EMBEDDED_REGISTRY_TOKEN_FILE or the variable
 * without leaving it in /proc/<pid>/environ.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../server/app.ts';
import { createEmbeddedRegistry, type EmbeddedRegistryOptions } from '../../server/registry/registry.ts';
import { RegistryClient } from '../../shared/registry/client.ts';
import { makeTar, pushSampleImage } from '../rig/images.ts';
import {
  CACHE_DIR,
  cosign2SignArgs,
  cosignLogin,
  cosignVerifyArgs,
  run,
  runOk,
  type RunOptions,
} from '../rig/tools.ts';
import { testStaticRoot } from '../unit/server/loopback.ts';
import { useRig } from './rig-context.ts';

const CRANE = join(CACHE_DIR, 'sid', 'usr', 'bin', 'crane');
const ROOT = join(import.meta.dirname, '..', '..');
const TOKEN = 'embedded-registry-token-for-tests';

const rig = useRig({ prefix: 'cosign-web-protect-', password: '', trustTls: false });

/** An embedded registry with `options`, served on loopback until the file's end. */
async function serveRegistry(options: Partial<EmbeddedRegistryOptions> = {}) {
  const dataDir = await rig.tempDir('cosign-web-protect-data-');
  const registry = createEmbeddedRegistry({ dataDir, ...options });
  const served = await rig.serve(registry.app);
  return { ...served, dataDir, registry };
}

function craneOpts(): RunOptions {
  return { cwd: rig.home.dir, env: { HOME: rig.home.home, DOCKER_CONFIG: rig.home.dockerConfig } };
}

/** Starts a command of this project (tsx) with `env`: its pid, its output so far, its exit. */
function startProject(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exited = new Promise<{ code: number; out: string }>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    }),
  );
  return { pid: child.pid!, out: () => out, exited, stop: () => child.kill('SIGTERM') };
}

/** Runs a command of this project (tsx) with `env`; resolves with its exit code and output. */
function runProject(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  return startProject(args, env).exited;
}

/** The embedded registry's address once server/main.ts has printed it (60 s at most). */
async function registryAddress(server: ReturnType<typeof startProject>): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /embedded registry on (127\.0\.0\.1:\d+)/.exec(server.out());
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`server/main.ts printed no registry address:\n${server.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('EMBEDDED_REGISTRY_TOKEN with the real clients', () => {
  it('skopeo, crane and cosign 2.5 get in with the token as password, and not without it', async () => {
    const { host } = await serveRegistry({ token: TOKEN });
    // skopeo: refused without credentials, pushes with them.
    await expect(pushSampleImage({ host }, 'tok/image', 'v1')).rejects.toThrow(
      /401|unauthorized|authentication required/i,
    );
    const image = await pushSampleImage({ host, username: 'anyone', password: TOKEN }, 'tok/image', 'v1');

    const denied = await run(CRANE, ['digest', '--insecure', image.tagRef], craneOpts());
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/UNAUTHORIZED|401/);
    await runOk(CRANE, ['auth', 'login', host, '-u', 'someone', '-p', TOKEN], craneOpts());
    expect((await runOk(CRANE, ['digest', '--insecure', image.tagRef], craneOpts())).stdout.trim()).toBe(image.digest);

    // cosign 2.5 reads the same DOCKER_CONFIG; log in again as cosign does, then sign and verify.
    await cosignLogin('cosign2', rig.home, host, 'signer', TOKEN);
    const { key, pub } = await rig.cosign2KeyPair();
    await runOk('cosign2', cosign2SignArgs(key, image.ref), { env: rig.env() });
    await runOk('cosign2', cosignVerifyArgs(pub, image.ref), { env: rig.env() });
  });

  it("through the relay the page's client gets the challenge and gets in only with the token it was given", async () => {
    const { host } = await serveRegistry({ token: TOKEN });
    await pushSampleImage({ host, username: 'u', password: TOKEN }, 'relay/image', 'v1');
    const app = createApp({ staticRoot: testStaticRoot(), relay: { localRegistries: [host], log: () => {} } });
    const bare = await app.request(`/relay/${host}/v2/relay/image/tags/list`);
    expect(bare.status).toBe(401);
    expect(bare.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const client = (password?: string) =>
      new RegistryClient({
        fetch: async (input, init) => app.request(String(input).replace(/^https?:\/\//, '/relay/'), init),
        scheme: () => 'http',
        credentials: () => (password === undefined ? undefined : { username: 'visitor', password }),
      });
    const repo = { registry: host, repository: 'relay/image' };
    await expect(client().listTags(repo)).rejects.toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
    await expect(client('not-the-token-0000000').listTags(repo)).rejects.toMatchObject({
      code: 'REGISTRY_UNAUTHORIZED',
    });
    expect(await client(TOKEN).listTags(repo)).toEqual(['v1']);
  });
});

describe('the embedded registry without a token', () => {
  it('crane cannot read a blob through a repository that does not hold it', async () => {
    const { host } = await serveRegistry();
    const image = await pushSampleImage({ host }, 'held/image', 'v1');
    const manifest = JSON.parse((await runOk(CRANE, ['manifest', '--insecure', image.tagRef], craneOpts())).stdout) as {
      layers: { digest: string }[];
    };
    const layer = manifest.layers[0]!.digest;
    await runOk(CRANE, ['blob', '--insecure', `${host}/held/image@${layer}`], craneOpts());
    const other = await run(CRANE, ['blob', '--insecure', `${host}/other/name@${layer}`], craneOpts());
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/BLOB_UNKNOWN/);
    const del = await run(CRANE, ['delete', '--insecure', `${host}/other/name@${image.digest}`], craneOpts());
    expect(del.code).not.toBe(0);
    expect((await runOk(CRANE, ['digest', '--insecure', image.tagRef], craneOpts())).stdout.trim()).toBe(image.digest);
  });

  it('REGISTRY_MAX_BYTES refuses a push over the quota with a sentence crane prints', async () => {
    const { host } = await serveRegistry({ limits: { maxBytes: 2000 } });
    const layer = join(rig.home.dir, 'big.tar');
    await writeFile(layer, makeTar([{ name: 'noise', data: randomBytes(8000) }]));
    const out = await run(CRANE, ['append', '--insecure', '-f', layer, '-t', `${host}/q/image:v1`], craneOpts());
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/DENIED: This registry's disk quota \(REGISTRY_MAX_BYTES, 2000 bytes\) is used up/);
  });

  it('npm run gc frees what no manifest names, says how much, and refuses a folder a live server holds', async () => {
    const { host, dataDir, registry } = await serveRegistry();
    const image = await pushSampleImage({ host }, 'gc/image', 'v1');
    const keep = await pushSampleImage({ host }, 'gc/keep', 'v1', { label: 'keep' });
    await runOk(CRANE, ['delete', '--insecure', `${host}/gc/image@${image.digest}`], craneOpts());
    const held = await runProject(['server/gc.ts'], { REGISTRY_DATA: dataDir });
    expect(held.code).toBe(2);
    expect(held.out).toMatch(/is serving .*: stop it first/);
    await registry.close();
    const before = (await readdir(join(dataDir, 'blobs', 'sha256'))).length;
    const gc = await runProject(['server/gc.ts'], { REGISTRY_DATA: dataDir });
    expect(gc.code).toBe(0);
    const after = (await readdir(join(dataDir, 'blobs', 'sha256'))).length;
    expect(before - after).toBeGreaterThan(0);
    expect(gc.out).toMatch(new RegExp(`freed ${before - after} blobs? \\(\\d+ bytes`));
    // What the remaining image names is all there: skopeo copies it out whole.
    const reopened = createEmbeddedRegistry({ dataDir });
    const { host: h2 } = await rig.serve(reopened.app);
    const digest = (await runOk(CRANE, ['digest', '--insecure', `${h2}/gc/keep:v1`], craneOpts())).stdout.trim();
    expect(digest).toBe(keep.digest);
    await runOk(CRANE, ['pull', '--insecure', `${h2}/gc/keep:v1`, join(rig.home.dir, 'keep.tar')], craneOpts());
    await reopened.close();
  });

  it('the server will not start the embedded registry beyond loopback without a token', async () => {
    const r = await runProject(['server/main.ts'], {
      HOST: '0.0.0.0',
      PORT: '0',
      EMBEDDED_REGISTRY_PORT: '0',
      STATIC_ROOT: testStaticRoot(),
      REGISTRY_DATA: await rig.tempDir('cosign-web-protect-main-'),
    });
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/HOST is 0\.0\.0\.0, beyond loopback.*set EMBEDDED_REGISTRY_TOKEN/);
    expect(r.out).not.toMatch(/listening/);
  });

  it.each([
    ['EMBEDDED_REGISTRY_TOKEN_FILE', 'a file'],
    ['EMBEDDED_REGISTRY_TOKEN', 'the variable'],
  ])('server/main.ts takes the token from %s (%s) and leaves it nowhere in /proc/<pid>/environ', async (name) => {
    const dir = await rig.tempDir('cosign-web-protect-token-');
    const file = join(dir, 'registry-token');
    await writeFile(file, `${TOKEN}\n`);
    const server = startProject(['server/main.ts'], {
      PORT: '0',
      EMBEDDED_REGISTRY_PORT: '0',
      STATIC_ROOT: testStaticRoot(),
      REGISTRY_DATA: join(dir, 'data'),
      [name]: name.endsWith('_FILE') ? file : TOKEN,
    });
    try {
      const registry = await registryAddress(server);
      const environ = readFileSync(`/proc/${server.pid}/environ`, 'latin1');
      expect(environ).not.toContain(TOKEN);
      expect(environ).not.toContain('EMBEDDED_REGISTRY_TOKEN=');
      expect(server.out()).not.toMatch(/could not be wiped/);
      expect((await fetch(`http://${registry}/v2/`)).status).toBe(401);
      const asked = await fetch(`http://${registry}/v2/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(asked.status).toBe(200);
    } finally {
      server.stop();
      await server.exited;
    }
  });
});

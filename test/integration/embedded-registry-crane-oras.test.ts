/**
 * The embedded registry (server/registry/) served on 127.0.0.1 and driven by two more real
 * clients from Debian sid (installed by test/rig/install.sh): crane (go-containerregistry) copies,
 * tags, lists and deletes; oras attaches an artifact through the OCI 1.1 referrers API (no
 * `sha256-<hex>` fallback tag), discovers it, pushes and pulls an artifact.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import type { ServerType } from '@hono/node-server';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../server/registry/registry.ts';
import { serveApp } from '../../server/serve.ts';
import { pushSampleImage } from '../rig/images.ts';
import { CACHE_DIR, makeToolHome, runOk, type RunOptions, type ToolHome } from '../rig/tools.ts';

const CRANE = join(CACHE_DIR, 'sid', 'usr', 'bin', 'crane');
const ORAS = join(CACHE_DIR, 'sid', 'usr', 'bin', 'oras');

let dataDir: string;
let registry: EmbeddedRegistry;
let server: ServerType;
let host: string;
let home: ToolHome;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'cosign-web-embedded-co-'));
  registry = createEmbeddedRegistry({ dataDir });
  const served = await serveApp(registry.app, { port: 0, hostname: '127.0.0.1' });
  server = served.server;
  host = `127.0.0.1:${served.port}`;
  home = await makeToolHome('cosign-web-embedded-co-');
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await registry.close();
  await home.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

function opts(): RunOptions {
  return { cwd: home.dir, env: { HOME: home.home, DOCKER_CONFIG: home.dockerConfig } };
}

async function lines(tool: string, args: string[]): Promise<string[]> {
  const r = await runOk(tool, args, opts());
  return r.stdout.split('\n').filter((l) => l !== '');
}

describe('embedded registry with crane and oras', () => {
  it('crane reads digests, copies an index to another repository, tags, lists and deletes', async () => {
    const image = await pushSampleImage({ host }, 'crane/src', 'v1', { index: true });
    expect(await lines(CRANE, ['digest', '--insecure', image.tagRef])).toEqual([image.digest]);
    await runOk(CRANE, ['copy', '--insecure', image.tagRef, `${host}/crane/dst:v2`], opts());
    expect(await lines(CRANE, ['digest', '--insecure', `${host}/crane/dst:v2`])).toEqual([image.digest]);
    const platform = image.platforms[0]!;
    const manifest = (await runOk(CRANE, ['manifest', '--insecure', `${host}/crane/dst@${platform.digest}`], opts()))
      .stdout;
    expect(JSON.parse(manifest)).toMatchObject({ schemaVersion: 2 });
    await runOk(CRANE, ['tag', '--insecure', `${host}/crane/dst:v2`, 'v3'], opts());
    expect(await lines(CRANE, ['ls', '--insecure', `${host}/crane/dst`])).toEqual(['v2', 'v3']);
    await runOk(CRANE, ['delete', '--insecure', `${host}/crane/dst@${image.digest}`], opts());
    expect(await lines(CRANE, ['ls', '--insecure', `${host}/crane/dst`])).toEqual([]);
    expect(await lines(CRANE, ['ls', '--insecure', `${host}/crane/src`])).toEqual(['v1']);
  });

  it('oras attaches through the referrers API, discovers it, pushes and pulls an artifact', async () => {
    const image = await pushSampleImage({ host }, 'oras/image', 'v1');
    await writeFile(join(home.dir, 'sbom.json'), '{"sbom":true}');
    await runOk(
      ORAS,
      [
        'attach',
        '--plain-http',
        '--artifact-type',
        'application/vnd.example.sbom',
        '--annotation',
        'purpose=test',
        image.ref,
        'sbom.json:application/json',
      ],
      opts(),
    );
    const discovered = JSON.parse(
      (await runOk(ORAS, ['discover', '--plain-http', '--format', 'json', image.ref], opts())).stdout,
    ) as { referrers: { artifactType: string; annotations?: Record<string, string> }[] };
    expect(discovered.referrers).toHaveLength(1);
    expect(discovered.referrers[0]?.artifactType).toBe('application/vnd.example.sbom');
    expect(discovered.referrers[0]?.annotations?.['purpose']).toBe('test');
    // The referrers API was used: oras made no `sha256-<hex>` fallback tag.
    expect(await lines(ORAS, ['repo', 'tags', '--plain-http', `${host}/oras/image`])).toEqual(['v1']);

    await runOk(ORAS, ['push', '--plain-http', `${host}/oras/artifact:a1`, 'sbom.json:application/json'], opts());
    const out = join(home.dir, 'pulled');
    await runOk(ORAS, ['pull', '--plain-http', '-o', out, `${host}/oras/artifact:a1`], opts());
    expect(await readFile(join(out, 'sbom.json'), 'utf8')).toBe('{"sbom":true}');
  });
});

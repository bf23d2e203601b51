/**
 * The embedded registry (server/registry/) served on 127.0.0.1 and driven by two more real
 * clients from Debian sid (installed by test/rig/install.sh): crane (go-containerregistry) copies,
 * tags, lists and deletes; oras attaches an artifact through the OCI 1.1 referrers API (no
 * `sha256-<hex>` fallback tag), discovers it, pushes and pulls an artifact.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pushSampleImage } from '../rig/images.ts';
import { CACHE_DIR, runOk, type RunOptions } from '../rig/tools.ts';
import { useRig } from './rig-context.ts';

const CRANE = join(CACHE_DIR, 'sid', 'usr', 'bin', 'crane');
const ORAS = join(CACHE_DIR, 'sid', 'usr', 'bin', 'oras');

const rig = useRig({ prefix: 'cosign-web-embedded-co-' });
let host: string;

beforeAll(async () => {
  ({ host } = await rig.serveEmbeddedRegistry('cosign-web-embedded-co-'));
});

function opts(): RunOptions {
  return { cwd: rig.home.dir, env: { HOME: rig.home.home, DOCKER_CONFIG: rig.home.dockerConfig } };
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
    await writeFile(join(rig.home.dir, 'sbom.json'), '{"sbom":true}');
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
    const out = join(rig.home.dir, 'pulled');
    await runOk(ORAS, ['pull', '--plain-http', '-o', out, `${host}/oras/artifact:a1`], opts());
    expect(await readFile(join(out, 'sbom.json'), 'utf8')).toBe('{"sbom":true}');
  });
});

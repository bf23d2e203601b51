/**
 * The sample images the embedded registry starts with, so the first-run walkthrough has something
 * to sign with nothing else installed: `samples/hello:v1` (one platform) and
 * `samples/hello-multi:v1` (an OCI index for linux/amd64 and linux/arm64). Each layer is a real
 * gzip'd tar holding one text file; configs list the uncompressed layer digests as `diff_ids`.
 * They are pushed through the registry's own HTTP handlers, in process.
 */
import type { Hono } from 'hono';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { RegistryClient, type RepoRef } from '../../shared/registry/client.ts';
import { RegistryError } from '../../shared/errors.ts';
import { MT, type Descriptor, type Platform } from '../../shared/registry/mediatypes.ts';

export const SAMPLE_REPOSITORY = 'samples/hello';
export const SAMPLE_MULTI_REPOSITORY = 'samples/hello-multi';
export const SAMPLE_TAG = 'v1';

/** A one-file POSIX ustar archive (IEEE 1003.1-1988), fixed mtime so the bytes are stable. */
function tar(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const put = (offset: number, length: number, value: string): void =>
    void header.write(value, offset, length, 'ascii');
  const octal = (n: number, width: number): string => n.toString(8).padStart(width - 1, '0') + '\0';
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(data.length, 12));
  put(136, 12, octal(0, 12));
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  put(148, 8, octal(sum, 7) + ' ');
  const padded = Buffer.alloc(Math.ceil(data.length / 512) * 512);
  data.copy(padded);
  return Buffer.concat([header, padded, Buffer.alloc(1024)]);
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const json = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

async function pushImage(
  client: RegistryClient,
  repo: RepoRef,
  platform: Platform,
  text: string,
  tag?: string,
): Promise<Descriptor> {
  const raw = tar('hello.txt', Buffer.from(text));
  const layer = gzipSync(raw, { level: 9 });
  // gzip writes the time into its header: zero it so the sample's digests never change.
  layer.writeUInt32LE(0, 4);
  const layerDesc = await client.pushBlob(repo, layer, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' });
  const config = json({
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Cmd: ['cat', '/hello.txt'] },
    rootfs: { type: 'layers', diff_ids: [sha256(raw)] },
  });
  const configDesc = await client.pushBlob(repo, config, { mediaType: MT.ociConfig });
  const manifest = json({ schemaVersion: 2, mediaType: MT.ociManifest, config: configDesc, layers: [layerDesc] });
  const digest = await client.putManifest(repo, tag ?? digestOf(manifest), manifest, MT.ociManifest);
  return { mediaType: MT.ociManifest, digest, size: manifest.length, platform };
}

function digestOf(bytes: Uint8Array): string {
  return sha256(Buffer.from(bytes));
}

/** Pushes the sample images unless they are there already; `token`: the registry's, if it asks one. */
export async function seedSampleImages(app: Hono, token = ''): Promise<void> {
  const client = new RegistryClient({
    fetch: async (input, init) => {
      const headers = new Headers(init?.headers);
      if (token !== '') headers.set('Authorization', `Bearer ${token}`);
      return app.request(String(input), { ...init, headers });
    },
    scheme: () => 'http',
  });
  // In process, no socket: a name the registry serves (it answers 421 to any other).
  const registry = 'localhost';
  const single: RepoRef = { registry, repository: SAMPLE_REPOSITORY };
  const multi: RepoRef = { registry, repository: SAMPLE_MULTI_REPOSITORY };
  const exists = async (repo: RepoRef): Promise<boolean> =>
    client.resolve(repo, SAMPLE_TAG).then(
      () => true,
      (e: unknown) => {
        if (e instanceof RegistryError && e.code === 'REGISTRY_NOT_FOUND') return false;
        throw e;
      },
    );
  if (!(await exists(single))) {
    await pushImage(
      client,
      single,
      { os: 'linux', architecture: 'amd64' },
      'Hello from the cosign-web sample image.\n',
      SAMPLE_TAG,
    );
  }
  if (!(await exists(multi))) {
    const children: Descriptor[] = [];
    for (const platform of [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]) {
      children.push(await pushImage(client, multi, platform, `Hello from the ${platform.architecture} sample.\n`));
    }
    const index = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: children });
    await client.putManifest(multi, SAMPLE_TAG, index, MT.ociIndex);
  }
}

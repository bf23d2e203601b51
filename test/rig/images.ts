// Makes small, real container images without docker: an OCI image layout (oci-layout, index.json,
// blobs/sha256/…) holding a random gzip'd tar layer, an image config whose rootfs.diff_ids is the
// digest of the uncompressed tar, and a manifest; or a 2-platform index (linux/amd64,
// linux/arm64). Pushes them to a registry with the real skopeo (`skopeo copy --all
// --preserve-digests oci:DIR:TAG docker://HOST/REPO:TAG`) so the registry holds exactly these bytes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeCertDir, runOk, skopeoRegistryFlags, type SkopeoAccess } from './tools.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A blob kept in memory until written into a layout. */
interface Blob {
  digest: string;
  bytes: Buffer;
}

export function sha256Digest(b: Uint8Array): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function blob(bytes: Buffer): Blob {
  return { digest: sha256Digest(bytes), bytes };
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** A POSIX ustar archive of regular files (enough for a real, extractable image layer). */
export function makeTar(files: readonly { name: string; data: Uint8Array; mode?: number }[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    if (Buffer.byteLength(f.name) > 100) throw new Error(`tar name too long: ${f.name}`);
    const h = Buffer.alloc(512, 0);
    h.write(f.name, 0, 100, 'utf8');
    h.write(octal(f.mode ?? 0o644, 8), 100, 8, 'ascii');
    h.write(octal(0, 8), 108, 8, 'ascii');
    h.write(octal(0, 8), 116, 8, 'ascii');
    h.write(octal(f.data.length, 12), 124, 12, 'ascii');
    h.write(octal(mtime, 12), 136, 12, 'ascii');
    h.fill(0x20, 148, 156); // checksum field counts as spaces
    h.write('0', 156, 1, 'ascii'); // regular file
    h.write('ustar\0', 257, 6, 'ascii');
    h.write('00', 263, 2, 'ascii');
    h.write('root', 265, 32, 'ascii');
    h.write('root', 297, 32, 'ascii');
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    parts.push(h, Buffer.from(f.data));
    const pad = (512 - (f.data.length % 512)) % 512;
    if (pad > 0) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(1024, 0)); // end of archive
  return Buffer.concat(parts);
}

function jsonBytes(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v));
}

interface BuiltImage {
  manifest: Blob;
  blobs: Blob[];
}

/** One single-platform image: random layer, config, manifest. */
function buildImage(platform: Platform, label: string): BuiltImage {
  const tar = makeTar([
    { name: 'rig/random.bin', data: randomBytes(256) },
    { name: 'rig/label.txt', data: Buffer.from(`${label}\n${platform.os}/${platform.architecture}\n`) },
  ]);
  const layer = blob(gzipSync(tar));
  const config = blob(
    jsonBytes({
      created: new Date().toISOString(),
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: { Labels: { 'dev.cosign-web.rig': label } },
      rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] },
      history: [{ created_by: 'cosign-web test rig (test/rig/images.ts)' }],
    }),
  );
  const manifest = blob(
    jsonBytes({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: layer.digest, size: layer.bytes.length }],
    }),
  );
  return { manifest, blobs: [layer, config, manifest] };
}

export interface OciLayout {
  dir: string;
  tag: string;
  /** Digest of the top manifest (the image manifest, or the index for a multi-platform image). */
  digest: string;
  mediaType: string;
  /** For an index: each platform's manifest digest. */
  platforms: { platform: Platform; digest: string }[];
}

export const SAMPLE_PLATFORMS: readonly Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

/** Writes an OCI image layout into `dir` (created) holding one tagged image or index. */
export async function writeOciLayout(
  dir: string,
  tag: string,
  opts: { index?: boolean; label?: string } = {},
): Promise<OciLayout> {
  const label = opts.label ?? `rig-${randomBytes(6).toString('hex')}`;
  const blobs: Blob[] = [];
  let top: Blob;
  let mediaType: string;
  const platforms: { platform: Platform; digest: string }[] = [];
  if (opts.index === true) {
    const children: Descriptor[] = [];
    for (const p of SAMPLE_PLATFORMS) {
      const img = buildImage(p, label);
      blobs.push(...img.blobs);
      platforms.push({ platform: p, digest: img.manifest.digest });
      children.push({
        mediaType: OCI_MANIFEST,
        digest: img.manifest.digest,
        size: img.manifest.bytes.length,
        platform: {
          architecture: p.architecture,
          os: p.os,
          ...(p.variant === undefined ? {} : { variant: p.variant }),
        },
      });
    }
    top = blob(jsonBytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }));
    blobs.push(top);
    mediaType = OCI_INDEX;
  } else {
    const img = buildImage(SAMPLE_PLATFORMS[0] ?? { os: 'linux', architecture: 'amd64' }, label);
    blobs.push(...img.blobs);
    top = img.manifest;
    mediaType = OCI_MANIFEST;
  }
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  await Promise.all(blobs.map((b) => writeFile(join(blobDir, b.digest.slice('sha256:'.length)), b.bytes)));
  await writeFile(join(dir, 'oci-layout'), jsonBytes({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    jsonBytes({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType,
          digest: top.digest,
          size: top.bytes.length,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { dir, tag, digest: top.digest, mediaType, platforms };
}

/** Where to push: any of the registries from registries.ts fits (TLS: caFile; auth: username). */
export interface RegistryTarget {
  host: string;
  caFile?: string;
  username?: string;
  password?: string;
}

export interface PushedImage {
  /** Manifest (or index) digest, "sha256:…". */
  digest: string;
  /** HOST/REPO@DIGEST */
  ref: string;
  /** HOST/REPO:TAG */
  tagRef: string;
  /** HOST/REPO */
  repository: string;
  mediaType: string;
  /** For an index: the per-platform manifests. */
  platforms: { platform: Platform; digest: string; ref: string }[];
}

/** skopeo access flags for a registry target; makes a cert dir next to the CA when needed. */
export async function skopeoAccess(target: RegistryTarget, scratch: string): Promise<SkopeoAccess> {
  const access: SkopeoAccess = {};
  if (target.caFile !== undefined) access.certDir = await makeCertDir(target.caFile, join(scratch, 'certs'));
  if (target.username !== undefined && target.password !== undefined) {
    access.creds = `${target.username}:${target.password}`;
  }
  return access;
}

/**
 * Builds a fresh random image (or 2-platform index) and pushes it with the real skopeo to
 * HOST/REPO:TAG, checking that the registry reports the digest computed here.
 */
export async function pushSampleImage(
  registry: RegistryTarget,
  repo: string,
  tag: string,
  opts: { index?: boolean; label?: string } = {},
): Promise<PushedImage> {
  const scratch = await mkdtemp(join(tmpdir(), 'cosign-web-image-'));
  try {
    const layout = await writeOciLayout(join(scratch, 'layout'), tag, opts);
    const access = await skopeoAccess(registry, scratch);
    const digestFile = join(scratch, 'digest');
    const repository = `${registry.host}/${repo}`;
    await runOk(
      'skopeo',
      [
        'copy',
        '--all',
        '--preserve-digests',
        '--retry-times',
        '2',
        ...skopeoRegistryFlags(access, 'dest'),
        '--digestfile',
        digestFile,
        `oci:${layout.dir}:${tag}`,
        `docker://${repository}:${tag}`,
      ],
      { env: { HOME: scratch, XDG_RUNTIME_DIR: scratch } },
    );
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    if (pushed !== layout.digest) {
      throw new Error(`skopeo pushed ${pushed}, expected ${layout.digest}`);
    }
    return {
      digest: layout.digest,
      ref: `${repository}@${layout.digest}`,
      tagRef: `${repository}:${tag}`,
      repository,
      mediaType: layout.mediaType,
      platforms: layout.platforms.map((p) => ({ ...p, ref: `${repository}@${p.digest}` })),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

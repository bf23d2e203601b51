/**
 * A Vite plugin that writes a gzip (`.gz`) and a brotli (`.br`) copy next to every compressible
 * file of the build (scripts, styles, HTML, JSON, WebAssembly, SVG), so the server sends them with
 * `Content-Encoding` chosen by `Accept-Encoding` (server/app.ts) without compressing per request.
 * node:zlib only; files under 1 KiB and copies that would not be smaller are left out.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { Plugin } from 'vite';

const COMPRESSIBLE = /\.(?:js|mjs|css|html|json|wasm|svg|txt)$/;
const MIN_BYTES = 1024;
const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** The two compressed copies of `bytes`, at the highest levels (done once, at build time). */
async function compressedCopies(bytes: Uint8Array): Promise<{ gz: Buffer; br: Buffer }> {
  const [gz, br] = await Promise.all([
    gzipAsync(bytes, { level: 9 }),
    brotliAsync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }),
  ]);
  return { gz, br };
}

/** The plugin: after the bundle is written, `name.gz` and `name.br` beside each compressible file. */
export function precompress(): Plugin {
  return {
    name: 'cosign-web:precompress',
    apply: 'build',
    async writeBundle(options, bundle) {
      const dir = options.dir;
      if (!dir) return;
      const names = Object.keys(bundle).filter((name) => COMPRESSIBLE.test(name));
      await Promise.all(
        names.map(async (name) => {
          const path = join(dir, name);
          const bytes = await readFile(path);
          if (bytes.length < MIN_BYTES) return;
          const { gz, br } = await compressedCopies(bytes);
          if (gz.length < bytes.length) await writeFile(`${path}.gz`, gz);
          if (br.length < bytes.length) await writeFile(`${path}.br`, br);
        }),
      );
    },
  };
}

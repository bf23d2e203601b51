// Real TUF repositories made by python-tuf (test/rig/tuf-repo.py), for the shared/tuf/ client tests,
// and a static HTTP server on 127.0.0.1 that serves one of them, or one of its variants (files an
// attacker or a stale mirror would serve instead). python-tuf is installed, pinned, into the rig's
// cache by install-python-tuf.sh (install.sh calls it; ensurePythonTuf() does when it is missing).
// https://theupdateframework.github.io/specification/latest/
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { CACHE_DIR, runOk } from './tools.ts';

/** The python-tuf release the repositories are built with (pinned in install-python-tuf.sh). */
export const PYTHON_TUF_VERSION = '7.0.1';
/** Where install-python-tuf.sh puts python-tuf and its dependencies (`pip install --target`). */
export const PYTHON_TUF_DIR = join(CACHE_DIR, `python-tuf-${PYTHON_TUF_VERSION}`);

/** What tuf-repo.py wrote into manifest.json. */
export interface TufRepoManifest {
  python_tuf: string;
  root_version: number;
  timestamp_version: number;
  snapshot_version: number;
  targets_version: number;
  expires: string;
  target: { name: string; length: number; sha256: string };
  delegated_target: { name: string; length: number; sha256: string };
  variants: string[];
}

/** A repository on disk: `dir/metadata`, `dir/targets`, `dir/variants/<name>`. */
export interface TufRepo {
  dir: string;
  manifest: TufRepoManifest;
}

/**
 * Installs python-tuf into the cache unless it is there already (with the caller's environment, so
 * pip reaches PyPI through whatever proxy it has). Throws when pip fails.
 */
export async function ensurePythonTuf(): Promise<void> {
  if (existsSync(join(PYTHON_TUF_DIR, '.installed'))) return;
  await promisify(execFile)('/bin/bash', [join(import.meta.dirname, 'install-python-tuf.sh')], {
    env: { ...process.env, COSIGN_WEB_CACHE: CACHE_DIR },
    timeout: 300_000,
  });
}

/**
 * Builds a repository with python-tuf in a fresh temporary folder (left to the caller to remove),
 * with `targetFile`'s bytes as the `trusted_root.json` target. Throws when python fails.
 */
export async function makeTufRepo(targetFile: string, parent = tmpdir()): Promise<TufRepo> {
  await ensurePythonTuf();
  const dir = await mkdtemp(join(parent, 'cosign-web-tuf-'));
  await runOk('python3', [join(import.meta.dirname, 'tuf-repo.py'), dir, targetFile], {
    env: { PYTHONPATH: PYTHON_TUF_DIR },
  });
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as TufRepoManifest;
  return { dir, manifest };
}

/** A repository served over HTTP; `use(variant)` switches what it serves from the next request on. */
export interface ServedTufRepo {
  /** `http://127.0.0.1:<port>/metadata`. */
  metadataBaseUrl: string;
  /** `http://127.0.0.1:<port>/targets`. */
  targetsBaseUrl: string;
  /** Serve the variant's files over the repository's (undefined: the repository alone). */
  use(variant: string | undefined): void;
  /** The paths requested so far, in order. */
  requests: string[];
  close(): Promise<void>;
}

async function readIfFile(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

async function lookup(dir: string, variant: string | undefined, rel: string): Promise<Buffer | undefined> {
  if (variant !== undefined) {
    const vdir = join(dir, 'variants', variant);
    const missing = (await readIfFile(join(vdir, 'missing.txt')))?.toString('utf8').split('\n') ?? [];
    if (missing.includes(rel)) return undefined;
    const over = await readIfFile(join(vdir, rel));
    if (over) return over;
  }
  return readIfFile(join(dir, rel));
}

/** Serves `repo` read-only on a free port of 127.0.0.1 (GET only, 404 for anything else). */
export async function serveTufRepo(repo: TufRepo): Promise<ServedTufRepo> {
  let variant: string | undefined;
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^\/+/, '');
    requests.push(rel);
    const ok = req.method === 'GET' && (rel.startsWith('metadata/') || rel.startsWith('targets/'));
    void (ok ? lookup(repo.dir, variant, rel) : Promise.resolve(undefined)).then((body) => {
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/octet-stream' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const origin = `http://127.0.0.1:${port}`;
  return {
    metadataBaseUrl: `${origin}/metadata`,
    targetsBaseUrl: `${origin}/targets`,
    use: (v) => void (variant = v),
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

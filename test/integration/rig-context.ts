/**
 * The set-up the integration tests against the real tools share, written once (see test/rig/README.md
 * for the tools themselves): the registries the global setup started (`inject`), a RegistryClient
 * that trusts the TLS registry's CA, a private tool home (makeToolHome) with, on request, cosign
 * 3.1's offline signing config and trusted root, the cosign environment for the TLS registry,
 * cosign 2.5 key pairs, apps (the embedded registry among them) served on loopback, and temporary
 * folders, all of which go when the file's tests are done.
 *
 * Call useRig() once at the top of a test file, before the file's own hooks: Vitest runs beforeAll
 * hooks in order and afterAll hooks in reverse, so the home is ready for the file's beforeAll and
 * is removed (with the embedded registries and temporary folders) only after the file's afterAll
 * closed its own servers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type http from 'node:http';
import type { Hono } from 'hono';
import { afterAll, beforeAll, inject } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../server/registry/registry.ts';
import { serveApp } from '../../server/serve.ts';
import { RegistryClient } from '../../shared/registry/client.ts';
import type { RegistriesInfo } from '../rig/registries.ts';
import {
  cosignEnv,
  makeCosign3Offline,
  makeToolHome,
  runOk,
  type Cosign3Offline,
  type ToolHome,
} from '../rig/tools.ts';
import { caFetch } from './ca-fetch.ts';

/** The private keys and public keys made by the real tools (test/vectors/keys, see its README). */
export const VECTORS = join(import.meta.dirname, '..', 'vectors', 'keys');

export interface RigOptions {
  /** Prefix of the tool home's temporary folder (makeToolHome's own default otherwise). */
  prefix?: string;
  /** Also make cosign 3.1's offline signing config and trusted root in the home (`rig.offline`). */
  offlineCosign3?: boolean;
  /** COSIGN_PASSWORD that env() sets; left unset otherwise (cosign then prompts and fails). */
  password?: string;
  /** Whether env() trusts the TLS registry's CA (SSL_CERT_FILE); true unless set to false. */
  trustTls?: boolean;
}

/** A cosign key pair in the tool home: paths of the encrypted private key and of the public key. */
export interface ToolKeyPair {
  key: string;
  pub: string;
}

/** An app served for real on 127.0.0.1, plain HTTP. */
export interface Served {
  /** `127.0.0.1:<port>`. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
}

/** The embedded registry served for real on 127.0.0.1, over its own data folder. */
export interface ServedRegistry extends Served {
  registry: EmbeddedRegistry;
  dataDir: string;
}

/** What useRig gives a test file. `home`, `offline` and the methods work inside hooks and tests only. */
export interface Rig {
  /** The registries of the run (test/rig/registries.ts). */
  readonly regs: RegistriesInfo;
  /** The TLS registry as pushSampleImage and skopeoAccess take it. */
  readonly tls: { host: string; caFile: string };
  /** A client for the TLS registry that trusts the rig's CA; made on first use. */
  readonly client: RegistryClient;
  /** The private tool home. Throws before the rig's beforeAll has made it. */
  readonly home: ToolHome;
  /** cosign 3.1's offline files. Throws unless asked for with `offlineCosign3`, or before beforeAll. */
  readonly offline: Cosign3Offline;
  /** cosign 2.5/3.1 environment: the home, the rig's CA (unless `trustTls: false`), the password if any. */
  env(): Record<string, string>;
  /** A fresh folder under the OS temporary folder, removed after the file's own afterAll. */
  tempDir(prefix: string): Promise<string>;
  /** `cosign2 generate-key-pair` with an empty password, as `<home>/<name>.key` and `.pub`. Throws when cosign fails. */
  cosign2KeyPair(name?: string): Promise<ToolKeyPair>;
  /** Serves `app` on a free port of 127.0.0.1 until the rig's afterAll. */
  serve(app: Hono): Promise<Served>;
  /** An embedded registry on a fresh data folder (tempDir `prefix`), served until the rig's afterAll. */
  serveEmbeddedRegistry(prefix: string): Promise<ServedRegistry>;
}

/**
 * Registers the rig's beforeAll (tool home, offline cosign 3.1 files) and afterAll (closes what it
 * serves and the embedded registries, removes the home and every tempDir) in the calling test file, and returns
 * the handle to use inside its tests.
 * The beforeAll throws when makeToolHome or cosign 3.1 fails; `home`/`offline` throw when read too early.
 */
export function useRig(options: RigOptions = {}): Rig {
  const regs = inject('cosignWebRegistries');
  const dirs: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  let home: ToolHome | undefined;
  let offline: Cosign3Offline | undefined;
  let client: RegistryClient | undefined;

  beforeAll(async () => {
    home = await makeToolHome(options.prefix);
    if (options.offlineCosign3) offline = await makeCosign3Offline(home);
  });
  afterAll(async () => {
    // Tolerates a beforeAll that failed half-way, so its own error is the one reported; the
    // folders go even when a close fails.
    try {
      for (const close of closers.reverse()) await close();
    } finally {
      await home?.cleanup();
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  });

  const ready = (): ToolHome => {
    if (!home) throw new Error('useRig: the tool home is made in beforeAll; use rig.home inside hooks and tests');
    return home;
  };
  const tempDir = async (prefix: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  const serve = async (app: Hono): Promise<Served> => {
    const { server, port } = await serveApp(app, { port: 0, hostname: '127.0.0.1' });
    closers.push(async () => {
      // Idle keep-alive sockets would hold close() open until they time out.
      (server as http.Server).closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` };
  };
  return {
    regs,
    tls: { host: regs.tls.host, caFile: regs.tls.caFile },
    get client() {
      return (client ??= new RegistryClient({ fetch: caFetch(regs.tls.caFile) }));
    },
    get home() {
      return ready();
    },
    get offline() {
      ready();
      if (!offline) throw new Error('useRig: pass { offlineCosign3: true } to have cosign 3.1 offline files');
      return offline;
    },
    env: () =>
      cosignEnv(ready(), {
        ...(options.password !== undefined ? { password: options.password } : {}),
        ...(options.trustTls === false ? {} : { caFile: regs.tls.caFile }),
      }),
    tempDir,
    serve,
    cosign2KeyPair: async (name = 'cosign') => {
      const h = ready();
      await runOk('cosign2', ['generate-key-pair', '--output-key-prefix', join(h.dir, name)], {
        env: cosignEnv(h, { password: '' }),
        cwd: h.dir,
      });
      return { key: join(h.dir, `${name}.key`), pub: join(h.dir, `${name}.pub`) };
    },
    serveEmbeddedRegistry: async (prefix) => {
      const dataDir = await tempDir(prefix);
      const registry = createEmbeddedRegistry({ dataDir });
      // Closed after its server (closers run in reverse).
      closers.push(() => registry.close());
      return { registry, dataDir, ...(await serve(registry.app)) };
    },
  };
}

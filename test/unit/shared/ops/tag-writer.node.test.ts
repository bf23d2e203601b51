/**
 * shared/ops/tag-writer.ts against the embedded registry (server/registry/) served in-process:
 * concurrent writers behind one lock keep every entry, in a `.sig` and in a referrers index, and
 * so do concurrent writers without a lock, through If-Match and the read-backs; a conditional
 * write that loses the race (412 to its If-Match) is read again and wins; a removal is not undone
 * by an append that read the tag before it; a change other writers keep undoing ends in the
 * change's own error.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedRegistry, type EmbeddedRegistry } from '../../../../server/registry/registry.ts';
import { servedAs } from '../../server/served-as.ts';
import { sameSignatureLayer, sigLayer } from '../../../../shared/cosign/manifests.ts';
import { utf8 } from '../../../../shared/encoding/base64.ts';
import { ManageError } from '../../../../shared/errors.ts';
import { RegistryClient, type RepoRef } from '../../../../shared/registry/client.ts';
import { MT, type Descriptor } from '../../../../shared/registry/mediatypes.ts';
import {
  addEntries,
  readList,
  referrersIndexList,
  removeEntries,
  rewriteTag,
  sigList,
  type ListTag,
  type TagLock,
} from '../../../../shared/ops/tag-writer.ts';

const HOST = 'tags.test:5000';
let dir: string;
let registry: EmbeddedRegistry;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cosign-web-tag-writer-'));
  registry = createEmbeddedRegistry({ dataDir: dir, site: servedAs(HOST) });
});
afterAll(async () => {
  await registry.close();
  await rm(dir, { recursive: true, force: true });
});

/** A fetch to the in-process registry; `before` may act on a request first (and answer it). */
function fetchVia(before?: (req: Request) => Promise<Response | void>): typeof fetch {
  return async (input, init) => {
    const req = new Request(input, init);
    if (new URL(req.url).host !== HOST) throw new TypeError(`no registry at ${req.url}`);
    return (await before?.(req)) ?? registry.app.fetch(req);
  };
}
const client = new RegistryClient({ fetch: fetchVia(), scheme: () => 'http' });

/**
 * One lock per key, in memory: each holder waits for the previous one's release. `granted` marks
 * each hold as the relay's lock marks one it got a token for.
 */
function memoryLock(granted = false): TagLock {
  const tails = new Map<string, Promise<void>>();
  return async (key) => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    tails.set(
      key,
      previous.then(() => new Promise<void>((r) => (release = r))),
    );
    await previous;
    return Object.assign(async () => release(), granted ? { held: true } : {});
  };
}

/** A signature layer of its own payload, as a signer appends it, with that payload to push. */
function signature(n: number): { layer: Descriptor; blob: { bytes: Uint8Array; mediaType: string } } {
  const bytes = utf8(`{"payload":${n}}`);
  return { layer: sigLayer(bytes, `c2lnbmF0dXJl${n}`), blob: { bytes, mediaType: MT.cosignSimpleSigning } };
}

const fast = { settleDelay: () => 5 };
const removalLost = (key: string, attempts: number): ManageError =>
  new ManageError('MANAGE_REMOVE_LOST', `${key} kept changing after ${attempts} attempts`);

async function layersOf(list: ListTag): Promise<Descriptor[]> {
  return (await readList(list))?.entries ?? [];
}

/** Writes the `.sig` tag with these signatures, unconditionally. */
async function seed(repo: RepoRef, tag: string, sigs: ReturnType<typeof signature>[]): Promise<void> {
  await sigList(
    client,
    repo,
    tag,
    sigs.map((s) => s.blob),
  ).put(sigs.map((s) => s.layer));
}

describe('rewriteTag', () => {
  it('12 writers at once through one lock: every signature in the .sig, every entry in the index', async () => {
    const repo = { registry: HOST, repository: 'writers/lock' };
    const lock = memoryLock();
    const sigs = Array.from({ length: 12 }, (_, i) => signature(i));
    await Promise.all(
      sigs.map((s) =>
        rewriteTag(sigList(client, repo, 'sha256-aa.sig', [s.blob]), addEntries([s.layer], sameSignatureLayer), {
          ...fast,
          lock,
        }),
      ),
    );
    const layers = await layersOf(sigList(client, repo, 'sha256-aa.sig'));
    expect(layers).toHaveLength(12);
    for (const s of sigs) expect(layers.some((l) => sameSignatureLayer(l, s.layer))).toBe(true);

    // The referrers index: each writer lists a manifest of its own.
    const entries = await Promise.all(
      sigs.map(async (s, i) => {
        await client.pushBlob(repo, s.blob.bytes, { mediaType: s.blob.mediaType });
        const config = await client.pushBlob(repo, utf8('{}'), { mediaType: MT.ociEmpty });
        const m = utf8(
          JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config, layers: [s.layer], n: i }),
        );
        const digest = await client.putManifest(repo, `m${i}`, m, MT.ociManifest);
        return { mediaType: MT.ociManifest, digest, size: m.length };
      }),
    );
    const index = referrersIndexList(client, repo, 'sha256-aa');
    await Promise.all(
      entries.map((e) =>
        rewriteTag(
          index,
          addEntries([e], (a, b) => a.digest === b.digest),
          { ...fast, lock },
        ),
      ),
    );
    expect(new Set((await layersOf(index)).map((d) => d.digest))).toEqual(new Set(entries.map((e) => e.digest)));
  });

  it('12 writers through a granted lock: no settle wait, and every signature stays', async () => {
    const repo = { registry: HOST, repository: 'writers/granted' };
    const lock = memoryLock(true);
    let settles = 0;
    const counted = { settleDelay: () => (settles++, 5) };
    const sigs = Array.from({ length: 12 }, (_, i) => signature(500 + i));
    await Promise.all(
      sigs.map((s) =>
        rewriteTag(
          sigList(new RegistryClient({ fetch: fetchVia(), scheme: () => 'http' }), repo, 'sha256-ff.sig', [s.blob]),
          addEntries([s.layer], sameSignatureLayer),
          { ...counted, lock },
        ),
      ),
    );
    const layers = await layersOf(sigList(client, repo, 'sha256-ff.sig'));
    expect(layers).toHaveLength(12);
    for (const s of sigs) expect(layers.some((l) => sameSignatureLayer(l, s.layer))).toBe(true);
    expect(settles).toBe(0);

    // A lock that only stands in for one (not granted): the settle wait and second read-back stay.
    const one = signature(520);
    await rewriteTag(sigList(client, repo, 'sha256-ff.sig', [one.blob]), addEntries([one.layer], sameSignatureLayer), {
      ...counted,
      lock: memoryLock(),
    });
    expect(settles).toBe(1);
  });

  it('under a granted lock, an overwrite by a writer without it before the read-back is caught and merged back', async () => {
    const repo = { registry: HOST, repository: 'writers/outsider' };
    const tag = 'sha256-ab.sig';
    const [theirs, ours] = [signature(600), signature(601)];
    let overwritten = false;
    // A writer that does not take the lock (cosign) puts its own list right after our write.
    const racing = new RegistryClient({
      scheme: () => 'http',
      fetch: fetchVia(async (req) => {
        const res = await registry.app.fetch(req);
        if (req.method === 'PUT' && new URL(req.url).pathname.endsWith(`/manifests/${tag}`) && !overwritten) {
          overwritten = true;
          await seed(repo, tag, [theirs]);
        }
        return res;
      }),
    });
    await rewriteTag(sigList(racing, repo, tag, [ours.blob]), addEntries([ours.layer], sameSignatureLayer), {
      ...fast,
      lock: memoryLock(true),
    });
    expect(overwritten).toBe(true);
    expect(await layersOf(sigList(client, repo, tag))).toEqual([theirs.layer, ours.layer]);
  });

  it('20 writers at once without a lock: If-Match and the read-backs keep every signature', async () => {
    const repo = { registry: HOST, repository: 'writers/no-lock' };
    const sigs = Array.from({ length: 20 }, (_, i) => signature(400 + i));
    // Each writer with its own client, as signers behind different relays; the default settle delay.
    await Promise.all(
      sigs.map((s) =>
        rewriteTag(
          sigList(new RegistryClient({ fetch: fetchVia(), scheme: () => 'http' }), repo, 'sha256-ee.sig', [s.blob]),
          addEntries([s.layer], sameSignatureLayer),
        ),
      ),
    );
    const layers = await layersOf(sigList(client, repo, 'sha256-ee.sig'));
    expect(layers).toHaveLength(20);
    for (const s of sigs) expect(layers.some((l) => sameSignatureLayer(l, s.layer))).toBe(true);
  });

  it('a conditional write that lost the race is answered 412, read again, and wins', async () => {
    const repo = { registry: HOST, repository: 'writers/if-match' };
    const tag = 'sha256-bb.sig';
    const [first, theirs, ours] = [signature(100), signature(101), signature(102)];
    await seed(repo, tag, [first]);
    const statuses: number[] = [];
    let raced = false;
    const racing = new RegistryClient({
      scheme: () => 'http',
      fetch: fetchVia(async (req) => {
        if (req.method !== 'PUT' || !new URL(req.url).pathname.endsWith(`/manifests/${tag}`)) return;
        expect(req.headers.get('if-match')).toBeTruthy();
        // Another writer lands between our read and our write.
        if (!raced) {
          raced = true;
          await seed(repo, tag, [first, theirs]);
        }
        const res = await registry.app.fetch(req);
        statuses.push(res.status);
        return res;
      }),
    });
    const result = await rewriteTag(
      sigList(racing, repo, tag, [ours.blob]),
      addEntries([ours.layer], sameSignatureLayer),
      fast,
    );
    expect(statuses).toEqual([412, 201]);
    const now = await readList(sigList(client, repo, tag));
    expect(now?.entries).toEqual([first.layer, theirs.layer, ours.layer]);
    expect(result).toEqual({ written: { digest: now?.digest, size: expect.any(Number) }, last: 'put' });
  });

  it('a removal is not undone by an append that read the tag before it', async () => {
    const repo = { registry: HOST, repository: 'writers/remove' };
    const tag = 'sha256-cc.sig';
    const [kept, removed, added] = [signature(200), signature(201), signature(202)];
    await seed(repo, tag, [kept, removed]);
    let removal: Promise<unknown> | null = null;
    // The appender has read [kept, removed]; before its write goes, the removal runs to the end.
    const appender = new RegistryClient({
      scheme: () => 'http',
      fetch: fetchVia(async (req) => {
        if (req.method !== 'PUT' || !new URL(req.url).pathname.endsWith(`/manifests/${tag}`)) return;
        removal ??= rewriteTag(
          sigList(client, repo, tag),
          removeEntries((d) => sameSignatureLayer(d, removed.layer), removalLost),
          { ...fast, retryTransient: false },
        );
        await removal;
      }),
    });
    await rewriteTag(sigList(appender, repo, tag, [added.blob]), addEntries([added.layer], sameSignatureLayer), fast);
    expect(await removal).toMatchObject({ last: 'put' });
    expect(await layersOf(sigList(client, repo, tag))).toEqual([kept.layer, added.layer]);
  });

  it('a change that never stays: the change’s own error after the given rounds', async () => {
    const repo = { registry: HOST, repository: 'writers/lost' };
    const tag = 'sha256-dd.sig';
    const [kept, ours] = [signature(300), signature(301)];
    await seed(repo, tag, [kept]);
    // Every read-back shows the tag as another writer keeps it: without ours.
    const undoing = new RegistryClient({
      scheme: () => 'http',
      fetch: fetchVia(async (req) => {
        if (req.method === 'GET' && new URL(req.url).pathname.endsWith(`/manifests/${tag}`))
          await seed(repo, tag, [kept]);
      }),
    });
    const err = await rewriteTag(
      sigList(undoing, repo, tag, [ours.blob]),
      addEntries([ours.layer], sameSignatureLayer),
      { ...fast, maxAttempts: 3 },
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SIGNATURE_WRITE_LOST' });
    expect((err as Error).message).toContain(`${HOST}/writers/lost:${tag}`);
    expect((err as Error).message).toContain('after 3 attempts');
  });
});

/**
 * The TUF client (shared/tuf/client.ts) against REAL repositories built by python-tuf
 * (test/rig/tuf-repo.py, python-tuf pinned in test/rig/install-python-tuf.sh) and served on
 * 127.0.0.1: it rotates from an expired root v1 to root v2 and fetches trusted_root.json and a
 * delegated target; it refuses an expired timestamp, a tampered target, a root signed by too few
 * keys, a timestamp rollback and a snapshot that is not the one listed, each with its code, and
 * after every refusal the store holds exactly what it held before.
 * https://theupdateframework.github.io/specification/latest/#detailed-client-workflow
 */
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TufError, type TufErrorCode } from '../../shared/errors.ts';
import { refreshTarget, TufClient, type RefreshOptions, type TufStore } from '../../shared/tuf/client.ts';
import { makeTufRepo, PYTHON_TUF_VERSION, serveTufRepo, type ServedTufRepo, type TufRepo } from '../rig/python-tuf.ts';

const TRUSTED_ROOT = resolve(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'shared',
  'conformance',
  'public-good-trusted_root.json',
);

class MapStore implements TufStore {
  readonly map = new Map<string, Uint8Array>();
  get(name: string) {
    return Promise.resolve(this.map.get(name));
  }
  set(name: string, bytes: Uint8Array) {
    this.map.set(name, bytes);
    return Promise.resolve();
  }
  snapshot(): Record<string, string> {
    return Object.fromEntries([...this.map].map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  }
}

let repo: TufRepo;
let served: ServedTufRepo;
let root1: Uint8Array;

beforeAll(async () => {
  repo = await makeTufRepo(TRUSTED_ROOT);
  served = await serveTufRepo(repo);
  root1 = await readFile(join(repo.dir, 'metadata', '1.root.json'));
}, 300_000);
afterAll(async () => {
  await served?.close();
  if (repo) await rm(repo.dir, { recursive: true, force: true });
});

function options(store: TufStore, targetName = 'trusted_root.json'): RefreshOptions {
  return {
    fetch: (url) => fetch(url),
    metadataBaseUrl: served.metadataBaseUrl,
    targetsBaseUrl: served.targetsBaseUrl,
    trustedRootJson: root1,
    store,
    targetName,
    now: new Date(),
  };
}

/** Refreshes with `variant` served; returns the refusal's code and checks the store did not change. */
async function refusal(store: MapStore, variant: string): Promise<TufErrorCode> {
  const before = store.snapshot();
  served.use(variant);
  try {
    await refreshTarget(options(store));
    throw new Error(`variant ${variant} was accepted`);
  } catch (e) {
    if (!(e instanceof TufError)) throw e;
    expect(e.message.length).toBeGreaterThan(20);
    expect(store.snapshot()).toEqual(before);
    return e.code;
  } finally {
    served.use(undefined);
  }
}

async function primed(): Promise<MapStore> {
  const store = new MapStore();
  await refreshTarget(options(store));
  return store;
}

describe(`TUF client against python-tuf ${PYTHON_TUF_VERSION}`, () => {
  it('the repository was built by the pinned python-tuf', () => {
    expect(repo.manifest.python_tuf).toBe(PYTHON_TUF_VERSION);
  });

  it('rotates from the expired root v1 to v2 and fetches trusted_root.json, consistent snapshot paths', async () => {
    const store = new MapStore();
    served.requests.length = 0;
    const r = await refreshTarget(options(store));
    expect(Buffer.from(r.target)).toEqual(await readFile(TRUSTED_ROOT));
    expect(r).toMatchObject({
      rootVersion: 2,
      timestampVersion: 2,
      snapshotVersion: 1,
      targetsVersion: 1,
      downloaded: true,
    });
    expect(r.expires.toISOString()).toBe(repo.manifest.expires.replace('Z', '.000Z'));
    expect(served.requests).toEqual([
      'metadata/2.root.json',
      'metadata/3.root.json',
      'metadata/timestamp.json',
      'metadata/1.snapshot.json',
      'metadata/1.targets.json',
      `targets/${repo.manifest.target.sha256}.trusted_root.json`,
    ]);
    expect([...store.map.keys()].sort()).toEqual([
      'root.json',
      'snapshot.json',
      'targets.json',
      'targets/trusted_root.json',
      'timestamp.json',
    ]);
    // Again: nothing new is downloaded but the timestamp, and the stored target is used.
    served.requests.length = 0;
    const again = await new TufClient(options(store)).refreshTarget('trusted_root.json');
    expect(again.downloaded).toBe(false);
    expect(served.requests).toEqual(['metadata/3.root.json', 'metadata/timestamp.json']);
  });

  it('follows the delegation to the role "extra" for extra/hello.txt', async () => {
    const store = new MapStore();
    const r = await refreshTarget(options(store, 'extra/hello.txt'));
    expect(new TextDecoder().decode(r.target)).toBe('hello from a delegated role\n');
    expect(store.map.has('delegated/extra.json')).toBe(true);
  });

  it('an unlisted target is TUF_TARGET_UNKNOWN', async () => {
    await expect(refreshTarget(options(new MapStore(), 'nope.json'))).rejects.toMatchObject({
      code: 'TUF_TARGET_UNKNOWN',
    });
  });

  it('an expired timestamp is TUF_EXPIRED', async () => {
    expect(await refusal(await primed(), 'expired-timestamp')).toBe('TUF_EXPIRED');
  });

  it('without root v2 the expired root v1 is TUF_EXPIRED', async () => {
    expect(await refusal(new MapStore(), 'no-rotation')).toBe('TUF_EXPIRED');
  });

  it('a tampered target, or one longer than listed, is TUF_TARGET_MISMATCH', async () => {
    expect(await refusal(new MapStore(), 'tampered-target')).toBe('TUF_TARGET_MISMATCH');
    expect(await refusal(new MapStore(), 'longer-target')).toBe('TUF_TARGET_MISMATCH');
  });

  it('a root v2 signed by too few old or new root keys is TUF_THRESHOLD_NOT_MET', async () => {
    expect(await refusal(new MapStore(), 'root-few-old-signatures')).toBe('TUF_THRESHOLD_NOT_MET');
    expect(await refusal(new MapStore(), 'root-few-new-signatures')).toBe('TUF_THRESHOLD_NOT_MET');
  });

  it('a timestamp signed by the key root v2 rotated away is TUF_THRESHOLD_NOT_MET', async () => {
    expect(await refusal(await primed(), 'old-timestamp-key')).toBe('TUF_THRESHOLD_NOT_MET');
  });

  it('a timestamp older than the one stored is TUF_ROLLBACK', async () => {
    expect(await refusal(await primed(), 'timestamp-rollback')).toBe('TUF_ROLLBACK');
  });

  it('a snapshot whose bytes are not the ones the timestamp lists is TUF_METADATA_INVALID', async () => {
    expect(await refusal(new MapStore(), 'tampered-snapshot')).toBe('TUF_METADATA_INVALID');
  });

  it('a repository that does not answer is TUF_UNREACHABLE, the store untouched', async () => {
    const store = await primed();
    const before = store.snapshot();
    const o = { ...options(store), metadataBaseUrl: 'http://127.0.0.1:1/metadata' };
    await expect(refreshTarget(o)).rejects.toMatchObject({ code: 'TUF_UNREACHABLE' });
    expect(store.snapshot()).toEqual(before);
  });
});

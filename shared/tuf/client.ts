/**
 * A TUF client that keeps one target (Sigstore's `trusted_root.json`) fresh: the detailed client
 * workflow of the TUF specification, §5.3 (root rotation) to §5.7 (the target), written against
 * https://theupdateframework.github.io/specification/latest/#detailed-client-workflow as
 * python-tuf's ngclient and sigstore-go follow it, with I/O passed in (a fetch and a store).
 *
 * A refresh is all or nothing: what it verified is staged and written to the store only when the
 * whole refresh succeeded, so a refusal leaves the store exactly as it was. Delegated targets roles
 * are followed (pre-order, terminating, `paths` with `*`/`?` per path segment, and
 * `path_hash_prefixes`); Sigstore's repository lists its targets in the top-level role and needs
 * none. Succinct hash-bin delegations (TAP 15) are not followed.
 */
import { TufError } from '../errors.ts';
import { toHex, utf8 } from '../encoding/base64.ts';
import { digest } from '../crypto/verify-spki.ts';
import type { TufPublicKey } from '../crypto/tuf-keys.ts';
import { download, matches, type FetchLike } from './download.ts';
import {
  parseMetadata,
  verifyThreshold,
  type DelegatedRole,
  type MetaFile,
  type RoleKeys,
  type Root,
  type Signed,
  type Snapshot,
  type TargetFile,
  type Targets,
  type Timestamp,
} from './metadata.ts';

/** Where verified metadata and the target are kept between refreshes (IndexedDB, a folder, a Map). */
export interface TufStore {
  get(name: string): Promise<Uint8Array | undefined>;
  set(name: string, bytes: Uint8Array): Promise<void>;
}

/** Upper bounds on what a refresh downloads and follows. */
export interface TufLimits {
  rootBytes: number;
  timestampBytes: number;
  /** For snapshot.json and targets metadata whose length the metadata above does not list. */
  metadataBytes: number;
  maxRootRotations: number;
  maxDelegations: number;
}

export const DEFAULT_TUF_LIMITS: TufLimits = {
  rootBytes: 512 * 1024,
  timestampBytes: 16 * 1024,
  metadataBytes: 4 * 1024 * 1024,
  maxRootRotations: 256,
  maxDelegations: 32,
};

/** One TUF repository, its trust anchor and the store of what was verified from it. */
export interface TufClientOptions {
  fetch: FetchLike;
  /** Where `<n>.root.json`, `timestamp.json`… are (no trailing slash needed). */
  metadataBaseUrl: string;
  /** Where target files are. */
  targetsBaseUrl: string;
  /** The root.json shipped with the page: the trust anchor when the store holds no newer root. */
  trustedRootJson: string | Uint8Array;
  /** Verified metadata of THIS repository (use one store per repository). */
  store: TufStore;
  limits?: Partial<TufLimits>;
}

export interface RefreshOptions extends TufClientOptions {
  targetName: string;
  /** The time expiry is judged at; now when absent. */
  now?: Date;
}

export interface RefreshResult {
  target: Uint8Array;
  targetName: string;
  rootVersion: number;
  timestampVersion: number;
  snapshotVersion: number;
  targetsVersion: number;
  /** The earliest expiry of the metadata the target was found through: refresh again before it. */
  expires: Date;
  /** False when the stored copy of the target was still the one listed. */
  downloaded: boolean;
}

interface Run {
  o: RefreshOptions;
  limits: TufLimits;
  now: Date;
  writes: Map<string, Uint8Array>;
  expiries: Date[];
}

const ROOT_STORE = 'root.json';

function stored(run: Run, name: string): Promise<Uint8Array | undefined> {
  const staged = run.writes.get(name);
  return staged ? Promise.resolve(staged) : run.o.store.get(name);
}

function url(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** A metadata file's URL: a role name's `/` is escaped too, as python-tuf quotes it. */
function metaUrl(run: Run, file: string): string {
  return `${run.o.metadataBaseUrl.replace(/\/+$/, '')}/${encodeURIComponent(file)}`;
}

function checkFresh(run: Run, expires: Date, what: string): void {
  if (run.now.getTime() >= expires.getTime()) {
    throw new TufError(
      'TUF_EXPIRED',
      `The TUF ${what} expired on ${expires.toISOString()}: the repository was not kept up to date, someone is replaying old metadata, or this computer's clock is wrong.`,
    );
  }
  run.expiries.push(expires);
}

function checkVersion(got: number, want: number, what: string, listedBy: string): void {
  if (got === want) return;
  throw new TufError(
    got < want ? 'TUF_ROLLBACK' : 'TUF_METADATA_INVALID',
    `The TUF ${what} is version ${got}, but ${listedBy} says version ${want}: it is refused.`,
  );
}

async function selfSignedRoot(bytes: Uint8Array, what: string): Promise<Signed<Root>> {
  const md = parseMetadata(bytes, 'root', what);
  await verifyThreshold(md, md.signed.keys, md.signed.roles.root, what);
  return md;
}

/** §5.2: the shipped root, or the stored one when it verifies and is newer. */
async function loadTrustedRoot(run: Run): Promise<Signed<Root>> {
  const shippedJson = run.o.trustedRootJson;
  const shipped = await selfSignedRoot(
    typeof shippedJson === 'string' ? utf8(shippedJson) : shippedJson,
    'shipped root.json',
  );
  const bytes = await run.o.store.get(ROOT_STORE);
  if (!bytes) return shipped;
  try {
    const kept = await selfSignedRoot(bytes, 'stored root.json');
    return kept.signed.version > shipped.signed.version ? kept : shipped;
  } catch (e) {
    if (e instanceof TufError) return shipped;
    throw e;
  }
}

/** §5.3: N+1.root.json while there is one, each signed by the old root's threshold and its own. */
async function updateRoot(run: Run, start: Signed<Root>): Promise<Signed<Root>> {
  let trusted = start;
  for (let i = 0; i < run.limits.maxRootRotations; i++) {
    const n = trusted.signed.version + 1;
    const what = `root.json version ${n}`;
    const bytes = await download(run.o.fetch, metaUrl(run, `${n}.root.json`), run.limits.rootBytes, what);
    if (!bytes) break;
    const next = parseMetadata(bytes, 'root', what);
    await verifyThreshold(
      next,
      trusted.signed.keys,
      trusted.signed.roles.root,
      `${what} (by the keys of version ${n - 1})`,
    );
    await verifyThreshold(next, next.signed.keys, next.signed.roles.root, `${what} (by its own keys)`);
    checkVersion(next.signed.version, n, what, 'its file name');
    trusted = next;
    run.writes.set(ROOT_STORE, bytes);
  }
  checkFresh(run, trusted.signed.expires, `root.json (version ${trusted.signed.version})`);
  return trusted;
}

/** Stored metadata that still verifies under today's keys, or undefined (rotated keys, damage). */
async function loadStored<T>(
  run: Run,
  name: string,
  read: (bytes: Uint8Array) => Promise<Signed<T>>,
): Promise<{ md: Signed<T>; bytes: Uint8Array } | undefined> {
  const bytes = await stored(run, name);
  if (!bytes) return undefined;
  try {
    return { md: await read(bytes), bytes };
  } catch (e) {
    if (e instanceof TufError) return undefined;
    throw e;
  }
}

/** §5.4: timestamp.json, never older than the one held, nor naming an older snapshot. */
async function updateTimestamp(run: Run, root: Root): Promise<Timestamp> {
  const read = (what: string) => async (bytes: Uint8Array) => {
    const md = parseMetadata(bytes, 'timestamp', what);
    await verifyThreshold(md, root.keys, root.roles.timestamp, what);
    return md;
  };
  const old = (await loadStored(run, 'timestamp.json', read('stored timestamp.json')))?.md.signed;
  const bytes = await download(
    run.o.fetch,
    metaUrl(run, 'timestamp.json'),
    run.limits.timestampBytes,
    'timestamp.json',
  );
  if (!bytes)
    throw new TufError('TUF_UNREACHABLE', 'The TUF repository has no timestamp.json: it cannot be refreshed from.');
  let ts = (await read('timestamp.json')(bytes)).signed;
  if (old) {
    const rollback = (what: string, got: number, had: number) =>
      new TufError(
        'TUF_ROLLBACK',
        `The TUF ${what} is version ${got}, older than version ${had} already trusted: someone may be replaying old metadata, so it is refused.`,
      );
    if (ts.version < old.version) throw rollback('timestamp.json', ts.version, old.version);
    if (ts.snapshotMeta.version < old.snapshotMeta.version) {
      throw rollback('snapshot.json the timestamp names', ts.snapshotMeta.version, old.snapshotMeta.version);
    }
    // The same version again: keep the one held (§5.4.3).
    if (ts.version === old.version) ts = old;
  }
  checkFresh(run, ts.expires, `timestamp.json (version ${ts.version})`);
  if (ts !== old) run.writes.set('timestamp.json', bytes);
  return ts;
}

interface Listed {
  /** The role's name; its file is `<role>.json`. */
  role: string;
  storeName: string;
  want: MetaFile;
  keys: Map<string, TufPublicKey>;
  roleKeys: RoleKeys;
  listedBy: string;
}

/** §5.5/§5.6: snapshot or targets metadata as the metadata above lists it (version, length, hashes). */
async function updateListed<K extends 'snapshot' | 'targets'>(
  run: Run,
  root: Root,
  type: K,
  l: Listed,
): Promise<{
  md: Signed<K extends 'snapshot' ? Snapshot : Targets>;
  old: Signed<K extends 'snapshot' ? Snapshot : Targets> | undefined;
}> {
  type T = K extends 'snapshot' ? Snapshot : Targets;
  const what = `${l.role}.json`;
  const read = (label: string) => async (bytes: Uint8Array) => {
    const md = parseMetadata(bytes, type, label) as Signed<T>;
    await verifyThreshold(md, l.keys, l.roleKeys, label);
    return md;
  };
  const old = await loadStored(run, l.storeName, read(`stored ${what}`));
  if (old && old.md.signed.version === l.want.version && (await matches(old.bytes, l.want.length, l.want.hashes)).ok) {
    checkFresh(run, old.md.signed.expires, `${what} (version ${old.md.signed.version})`);
    return { md: old.md, old: undefined };
  }
  const file = root.consistentSnapshot ? `${l.want.version}.${l.role}.json` : `${l.role}.json`;
  const bytes = await download(run.o.fetch, metaUrl(run, file), l.want.length ?? run.limits.metadataBytes, what);
  if (!bytes)
    throw new TufError('TUF_UNREACHABLE', `The TUF repository does not serve ${file}, which ${l.listedBy} lists.`);
  const check = await matches(bytes, l.want.length, l.want.hashes);
  if (!check.ok)
    throw new TufError(
      'TUF_METADATA_INVALID',
      `The TUF ${what} served is not the one ${l.listedBy} lists: ${check.why}.`,
    );
  const md = await read(what)(bytes);
  checkVersion(md.signed.version, l.want.version, what, l.listedBy);
  checkFresh(run, md.signed.expires, `${what} (version ${md.signed.version})`);
  run.writes.set(l.storeName, bytes);
  return { md, old: old?.md };
}

/** §5.5.5: a new snapshot lists every targets file the old one did, none at an older version. */
function checkSnapshotRollback(next: Snapshot, old: Snapshot | undefined): void {
  for (const [name, meta] of old?.meta ?? []) {
    const now = next.meta.get(name);
    if (!now || now.version < meta.version) {
      throw new TufError(
        'TUF_ROLLBACK',
        `The TUF snapshot.json ${now ? `lists ${name} at version ${now.version}, older than version ${meta.version} already trusted` : `no longer lists ${name}`}: it is refused.`,
      );
    }
  }
}

/** Path patterns as python-tuf matches them: segment by segment, `*` and `?` within a segment. */
function pathMatches(pattern: string, path: string): boolean {
  const pp = pattern.split('/');
  const tp = path.split('/');
  if (pp.length !== tp.length) return false;
  return pp.every((p, i) => {
    const re = p
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    return new RegExp(`^${re}$`, 's').test(tp[i]!);
  });
}

async function delegatedTo(d: DelegatedRole, name: string): Promise<boolean> {
  if (d.paths) return d.paths.some((p) => pathMatches(p, name));
  const hash = toHex(await digest('SHA-256', utf8(name)));
  return (d.pathHashPrefixes ?? []).some((p) => hash.startsWith(p));
}

interface Visit {
  role: string;
  keys: Map<string, TufPublicKey>;
  roleKeys: RoleKeys;
}

/** §5.6.7: the target's entry, searching delegations pre-order from the top-level targets. */
async function findTarget(run: Run, root: Root, snapshot: Snapshot, top: Targets, name: string): Promise<TargetFile> {
  const stack: (Visit | 'top')[] = ['top'];
  const seen = new Set<string>();
  while (stack.length > 0 && seen.size <= run.limits.maxDelegations) {
    const visit = stack.pop()!;
    const role = visit === 'top' ? 'targets' : visit.role;
    if (seen.has(role)) continue;
    seen.add(role);
    const md =
      visit === 'top'
        ? top
        : (
            await updateListed(run, root, 'targets', {
              ...visit,
              storeName: `delegated/${encodeURIComponent(visit.role)}.json`,
              want: listed(snapshot, visit.role),
              listedBy: 'snapshot.json',
            })
          ).md.signed;
    const found = md.targets.get(name);
    if (found) return found;
    const children: Visit[] = [];
    for (const d of md.delegations?.roles ?? []) {
      if (!(await delegatedTo(d, name))) continue;
      children.push({ role: d.name, keys: md.delegations!.keys, roleKeys: d });
      if (d.terminating) {
        stack.length = 0;
        break;
      }
    }
    stack.push(...children.reverse());
  }
  throw new TufError('TUF_TARGET_UNKNOWN', `The TUF repository's signed metadata lists no file named ${name}.`);
}

function listed(snapshot: Snapshot, role: string): MetaFile {
  const m = snapshot.meta.get(`${role}.json`);
  if (!m) throw new TufError('TUF_METADATA_INVALID', `The TUF snapshot.json does not list ${role}.json.`);
  return m;
}

/** §5.7: the target's bytes, from the store when still the ones listed, else downloaded and checked. */
async function fetchTarget(
  run: Run,
  root: Root,
  file: TargetFile,
  name: string,
): Promise<{ bytes: Uint8Array; downloaded: boolean }> {
  const storeName = `targets/${name}`;
  const kept = await stored(run, storeName);
  if (kept && (await matches(kept, file.length, file.hashes)).ok) return { bytes: kept, downloaded: false };
  const slash = name.lastIndexOf('/');
  const first = Object.values(file.hashes)[0]!;
  const path = root.consistentSnapshot ? `${name.slice(0, slash + 1)}${first}.${name.slice(slash + 1)}` : name;
  const bytes = await download(
    run.o.fetch,
    url(run.o.targetsBaseUrl, path),
    file.length,
    `target ${name}`,
    'TUF_TARGET_MISMATCH',
  );
  if (!bytes) throw new TufError('TUF_UNREACHABLE', `The TUF repository lists ${name} but does not serve it.`);
  const check = await matches(bytes, file.length, file.hashes);
  if (!check.ok) {
    throw new TufError(
      'TUF_TARGET_MISMATCH',
      `The ${name} the TUF repository served is not the file its signed metadata lists (${check.why}): it is refused.`,
    );
  }
  run.writes.set(storeName, bytes);
  return { bytes, downloaded: true };
}

/**
 * Refreshes the repository's metadata and returns `targetName`'s verified bytes: §5.2 load the
 * trusted root (the shipped one, or the stored one when newer), §5.3 rotate it through every
 * `N+1.root.json`, §5.4 timestamp, §5.5 snapshot, §5.6 targets (and delegations), §5.7 the
 * target, with rollback checks against what the store holds. The store is written only when all
 * of it verified.
 * @throws TufError TUF_METADATA_INVALID (malformed, too large, not the file listed),
 *   TUF_THRESHOLD_NOT_MET, TUF_EXPIRED, TUF_ROLLBACK, TUF_TARGET_MISMATCH, TUF_TARGET_UNKNOWN,
 *   TUF_UNREACHABLE (network failure, HTTP error, a listed file missing). The store's own errors
 *   pass through unchanged.
 */
export async function refreshTarget(options: RefreshOptions): Promise<RefreshResult> {
  const run: Run = {
    o: options,
    limits: { ...DEFAULT_TUF_LIMITS, ...options.limits },
    now: options.now ?? new Date(),
    writes: new Map(),
    expiries: [],
  };
  const root = (await updateRoot(run, await loadTrustedRoot(run))).signed;
  const ts = await updateTimestamp(run, root);
  const snap = await updateListed(run, root, 'snapshot', {
    role: 'snapshot',
    storeName: 'snapshot.json',
    want: ts.snapshotMeta,
    keys: root.keys,
    roleKeys: root.roles.snapshot,
    listedBy: 'timestamp.json',
  });
  checkSnapshotRollback(snap.md.signed, snap.old?.signed);
  const snapshot = snap.md.signed;
  const targets = (
    await updateListed(run, root, 'targets', {
      role: 'targets',
      storeName: 'targets.json',
      want: listed(snapshot, 'targets'),
      keys: root.keys,
      roleKeys: root.roles.targets,
      listedBy: 'snapshot.json',
    })
  ).md.signed;
  const file = await findTarget(run, root, snapshot, targets, options.targetName);
  const { bytes, downloaded } = await fetchTarget(run, root, file, options.targetName);
  for (const [name, b] of run.writes) await options.store.set(name, b);
  return {
    target: bytes,
    targetName: options.targetName,
    rootVersion: root.version,
    timestampVersion: ts.version,
    snapshotVersion: snapshot.version,
    targetsVersion: targets.version,
    expires: new Date(Math.min(...run.expiries.map((d) => d.getTime()))),
    downloaded,
  };
}

/** {@link refreshTarget} with the repository's options given once. */
export class TufClient {
  readonly #options: TufClientOptions;

  constructor(options: TufClientOptions) {
    this.#options = options;
  }

  /**
   * The verified bytes of `targetName` after refreshing the metadata (see {@link refreshTarget}).
   * @throws TufError as {@link refreshTarget}.
   */
  refreshTarget(targetName: string, now?: Date): Promise<RefreshResult> {
    return refreshTarget({ ...this.#options, targetName, ...(now === undefined ? {} : { now }) });
  }
}

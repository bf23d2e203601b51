/**
 * The Sigstore public-good trusted root, kept fresh as Sigstore clients keep it: the
 * `trusted_root.json` target of Sigstore's TUF repository (or of the repository the server names in
 * /config.json, its SIGSTORE_TUF_URL), refreshed through the relay with shared/tuf/client.ts when
 * the copy this browser holds is older than 24 hours or when the person asks. The TUF metadata and
 * the accepted root are kept in IndexedDB (database "cosign-web-sigstore-tuf", one key prefix per
 * repository). When a refresh fails (offline, a TUF_* refusal) the cached root is used, else the one
 * shipped with the page, and the freshness line says which, how old, and why.
 * https://theupdateframework.github.io/specification/latest/#detailed-client-workflow
 */
import { reasonOf, type Reason } from '../../../shared/errors.ts';
import type { FetchLike } from '../../../shared/tuf/download.ts';
import { RELAY_ERROR_HEADER, relayMessageOf } from '../../../shared/registry/relay-error.ts';
import type { TufStore } from '../../../shared/tuf/client.ts';
import { idbStore } from '../lib/idb-store.ts';

/** A root older than this is refreshed before a verification uses it. */
export const MAX_ROOT_AGE_MS = 24 * 60 * 60 * 1000;

/** When the shipped root's source, npm @sigstore/tuf 5.0.1, was published (its seeds.json). */
export const SHIPPED_ON = '2026-11-05';

/** Where the TUF repository is, as /config.json gives it (`sigstoreTuf`); null: Sigstore's own. */
interface TufConfig {
  metadataUrl: string;
  targetsUrl: string;
  rootJson?: string;
}

/** The root a verification uses: its bytes (null: the shipped one) and its name in the result. */
export interface ChosenRoot {
  json: Uint8Array | null;
  name: string;
}

const DB = 'cosign-web-sigstore-tuf';
const STORE = 'files';
const NAME = 'Sigstore public good';

const store = idbStore(DB, STORE, (cause) =>
  cause instanceof Error ? cause : new Error('IndexedDB is not available'),
);
const idb = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => store.run(mode, fn);

/** The TUF store of one repository, in IndexedDB under `<metadata URL>|<name>`. */
function tufStore(prefix: string): TufStore {
  return {
    get: async (name) => {
      const v = (await idb('readonly', (s) => s.get(`${prefix}|${name}`))) as unknown;
      return v instanceof Uint8Array ? v : undefined;
    },
    set: async (name, bytes) => void (await idb('readwrite', (s) => s.put(bytes, `${prefix}|${name}`))),
  };
}

/** The trusted root this browser accepted from a repository, and when. */
interface Accepted {
  json: Uint8Array;
  at: number;
}

async function readAccepted(prefix: string): Promise<Accepted | null> {
  try {
    const v = (await idb('readonly', (s) => s.get(`${prefix}|#accepted`))) as Partial<Accepted> | undefined;
    return v?.json instanceof Uint8Array && typeof v.at === 'number' ? { json: v.json, at: v.at } : null;
  } catch {
    return null;
  }
}

/** A fetch for the TUF client: through the relay, never cached; a relay refusal is a failed request. */
const relayFetch: FetchLike = async (url, init) => {
  const res = await fetch(url, { ...init, cache: 'no-store', credentials: 'same-origin' });
  const code = res.headers.get(RELAY_ERROR_HEADER);
  if (code) {
    void res.body?.cancel().catch(() => undefined);
    throw new Error(`the relay refused it: ${relayMessageOf(res.headers) ?? 'no reason given'} (${code})`);
  }
  return res;
};

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago", "yesterday". */
export function ago(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  const steps: [number, Intl.RelativeTimeFormatUnit][] = [
    [60, 'second'],
    [3600, 'minute'],
    [86400, 'hour'],
    [Infinity, 'day'],
  ];
  let unit: Intl.RelativeTimeFormatUnit = 'second';
  let div = 1;
  for (const [limit, u] of steps) {
    unit = u;
    if (Math.abs(s) < limit) break;
    div = limit;
  }
  return relative.format(Math.round(s / div), unit);
}

function utc(at: number): string {
  return `${new Date(at).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export class SigstoreRoot {
  #accepted = $state.raw<Accepted | null>(null);
  #error = $state.raw<Reason | null>(null);
  #busy = $state(false);
  #loaded = $state(false);
  #now = $state(Date.now());
  #config: Promise<{ repo: TufConfig | null; prefix: string }> | undefined;
  #inflight: Promise<void> | undefined;
  #reading: Promise<void> | undefined;
  #ticking = false;

  /** A refresh is under way. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Why the last refresh failed, or null. */
  get error(): Reason | null {
    return this.#error;
  }

  /** The freshness line: which root a verification uses now, how old, and why it is not fresher. */
  get line(): string {
    const a = this.#accepted;
    const e = this.#error;
    const why = e ? `could not refresh: ${e.message} (${e.code})` : '';
    if (a && !e) return `${NAME} — refreshed through TUF ${ago(a.at, this.#now)}`;
    if (a) return `${NAME} — cached in this browser, refreshed through TUF ${ago(a.at, this.#now)}; ${why}`;
    if (!this.#loaded) return `${NAME} — reading what this browser holds…`;
    return `${NAME} — shipped with the page on ${SHIPPED_ON}; ${why || 'not refreshed through TUF yet'}`;
  }

  #learn(): Promise<{ repo: TufConfig | null; prefix: string }> {
    this.#config ??= (async () => {
      let repo: TufConfig | null = null;
      try {
        const res = await fetch('/config.json', { cache: 'no-store' });
        const c = (await res.json()) as { sigstoreTuf?: Partial<TufConfig> | null };
        const t = c.sigstoreTuf;
        if (t && typeof t.metadataUrl === 'string' && typeof t.targetsUrl === 'string') {
          repo = { metadataUrl: t.metadataUrl, targetsUrl: t.targetsUrl };
          if (typeof t.rootJson === 'string') repo.rootJson = t.rootJson;
        }
      } catch {
        // a server without /config.json: Sigstore's repository
      }
      const { SIGSTORE_TUF_METADATA_URL } = await import('../../../shared/tuf/sigstore-root.ts');
      return { repo, prefix: repo?.metadataUrl ?? SIGSTORE_TUF_METADATA_URL };
    })();
    return this.#config;
  }

  /** Reads what this browser holds (for the freshness line); one read at a time. Never throws. */
  load(): Promise<void> {
    this.#reading ??= this.#load().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #load(): Promise<void> {
    if (!this.#ticking) {
      this.#ticking = true;
      setInterval(() => (this.#now = Date.now()), 30_000);
    }
    const { prefix } = await this.#learn();
    this.#accepted = await readAccepted(prefix);
    this.#now = Date.now();
    this.#loaded = true;
  }

  /**
   * Refreshes the root through TUF now (one refresh at a time). A failure is kept in `error` and
   * leaves the cached root as it was. Never throws.
   */
  refresh(): Promise<void> {
    this.#inflight ??= this.#refresh().finally(() => (this.#inflight = undefined));
    return this.#inflight;
  }

  async #refresh(): Promise<void> {
    this.#busy = true;
    try {
      const { repo, prefix } = await this.#learn();
      const tuf = await import('../../../shared/tuf/sigstore-root.ts');
      const { refreshTarget } = await import('../../../shared/tuf/client.ts');
      const { parseTrustedRoot } = await import('../../../shared/sigstore/trusted-root.ts');
      // The page reaches the repository only through the relay: `https://host/path` → `<origin>/relay/host/path`.
      const { route } = (await import('../../../shared/registry/client.ts')).relayRouting(location.origin);
      // eslint-disable-next-line svelte/prefer-svelte-reactivity -- read once, not state
      const viaRelay = (url: string): string => route!(new URL(url));
      const r = await refreshTarget({
        fetch: relayFetch,
        metadataBaseUrl: viaRelay(repo?.metadataUrl ?? tuf.SIGSTORE_TUF_METADATA_URL),
        targetsBaseUrl: viaRelay(repo?.targetsUrl ?? tuf.SIGSTORE_TUF_TARGETS_URL),
        trustedRootJson: repo?.rootJson ?? tuf.SIGSTORE_TUF_ROOT_JSON,
        store: tufStore(prefix),
        targetName: tuf.SIGSTORE_TRUSTED_ROOT_TARGET,
      });
      // A target TUF vouches for must still be a trusted root this page can use.
      parseTrustedRoot(r.target);
      const accepted: Accepted = { json: r.target, at: Date.now() };
      await idb('readwrite', (s) => s.put(accepted, `${prefix}|#accepted`));
      this.#accepted = accepted;
      this.#error = null;
    } catch (e) {
      this.#error = reasonOf(e);
      if (!this.#loaded) await this.load();
    } finally {
      this.#loaded = true;
      this.#now = Date.now();
      this.#busy = false;
    }
  }

  /**
   * The root a verification should use: the cached TUF root when younger than 24 hours, else a
   * refreshed one, else the cached one, else the shipped one (json null). Never throws.
   */
  async current(): Promise<ChosenRoot> {
    if (!this.#loaded) await this.load();
    const a = this.#accepted;
    if (!a || Date.now() - a.at > MAX_ROOT_AGE_MS) await this.refresh();
    const now = this.#accepted;
    return now
      ? { json: now.json, name: `${NAME}, refreshed through TUF ${utc(now.at)}` }
      : { json: null, name: `${NAME}, shipped with the page on ${SHIPPED_ON}` };
  }
}

/** The one instance the pages share (the trust fields show its line, verification uses its root). */
export const sigstoreRoot = new SigstoreRoot();

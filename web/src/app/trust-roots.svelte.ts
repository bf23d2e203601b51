/**
 * The Sigstore trusted roots this browser holds beside the shipped ones (private Sigstore
 * deployments, a test stack): each stored in IndexedDB (database "cosign-web-trust-roots") under
 * `sha256:<hex>` of its bytes, with a name. A root is checked whole (parseTrustedRoot) before it is
 * stored, so a malformed file changes nothing. Shared by #/verify and #/verify-file.
 */
import { toHex } from '../../../shared/encoding/base64.ts';
import { sha256Bytes } from '../../../shared/crypto/digest.ts';
import { VerificationError } from '../../../shared/errors.ts';
import { idbStore } from '../lib/idb-store.ts';

export interface StoredRoot {
  id: string;
  name: string;
  added: number;
  json: Uint8Array;
}

/** The roots offered before any is loaded. */
export const SHIPPED_CHOICES = [
  { id: 'public-good', name: 'Sigstore public good' },
  { id: 'staging', name: 'Sigstore staging' },
] as const;

const DB = 'cosign-web-trust-roots';
const STORE = 'roots';
/** Largest root accepted (public good is under 8 KiB). */
const MAX_ROOT_BYTES = 1024 * 1024;

function storageError(cause: unknown): VerificationError {
  const e = new VerificationError(
    'VERIFY_TRUSTED_ROOT_INVALID',
    'The browser refused to store the trusted root (is this a private window with storage off?).',
  );
  (e as { cause?: unknown }).cause = cause;
  return e;
}

/** What a choice of root is: its name, the SHA-256 of its bytes, and where the bytes came from. */
export interface RootInfo {
  id: string;
  name: string;
  sha256: string;
  source: string;
}

const store = idbStore(DB, STORE, storageError, { keyPath: 'id' });
const request = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> =>
  store.run(mode, fn);

export class TrustRoots {
  #list = $state.raw<{ id: string; name: string }[]>([]);

  /** The roots loaded before, newest first (without their bytes). */
  get loaded(): { id: string; name: string }[] {
    return this.#list;
  }

  /**
   * What `id` names: a shipped root (its module loaded on demand, as verification loads it) or one
   * held here; null for a root this browser does not hold.
   */
  async info(id: string): Promise<RootInfo | null> {
    if (id === 'public-good' || id === 'staging') {
      const { SHIPPED_ROOTS } = await import('../../../shared/sigstore/shipped-roots.ts');
      const r = SHIPPED_ROOTS.find((x) => x.id === id)!;
      return { id, name: r.name, sha256: r.sha256, source: `shipped with this page: ${r.source}` };
    }
    const held = this.#list.find((r) => r.id === id);
    if (!held) return null;
    return { id, name: held.name, sha256: id.slice(7), source: 'loaded from a file and kept in this browser' };
  }

  /** Reads what is stored; a browser without storage just has none. */
  async refresh(): Promise<void> {
    try {
      const all = await request('readonly', (s) => s.getAll() as IDBRequest<StoredRoot[]>);
      this.#list = all.sort((a, b) => b.added - a.added).map(({ id, name }) => ({ id, name }));
    } catch {
      this.#list = [];
    }
  }

  /**
   * Checks a trusted root file and keeps it under its sha256.
   * @returns its id (`sha256:<hex>`).
   * @throws VerificationError VERIFY_TRUSTED_ROOT_INVALID (and nothing is stored).
   */
  async add(file: File, name = file.name.replace(/\.json$/i, '')): Promise<string> {
    if (file.size > MAX_ROOT_BYTES)
      throw new VerificationError(
        'VERIFY_TRUSTED_ROOT_INVALID',
        'The trusted root is not valid: it is larger than 1 MiB.',
      );
    const json = new Uint8Array(await file.arrayBuffer());
    const { parseTrustedRoot } = await import('../../../shared/sigstore/trusted-root.ts');
    parseTrustedRoot(json);
    const id = `sha256:${toHex(sha256Bytes(json))}`;
    const record: StoredRoot = { id, name: name.trim() || id.slice(0, 19), added: Date.now(), json };
    await request('readwrite', (s) => s.put(record));
    await this.refresh();
    return id;
  }

  /** A stored root's bytes and name, or null. */
  async get(id: string): Promise<{ json: Uint8Array; name: string } | null> {
    try {
      const r = await request('readonly', (s) => s.get(id) as IDBRequest<StoredRoot | undefined>);
      return r ? { json: r.json, name: r.name } : null;
    } catch {
      return null;
    }
  }

  /** Renames a stored root. */
  async rename(id: string, name: string): Promise<void> {
    const r = await request('readonly', (s) => s.get(id) as IDBRequest<StoredRoot | undefined>);
    if (!r || !name.trim()) return;
    await request('readwrite', (s) => s.put({ ...r, name: name.trim() }));
    await this.refresh();
  }
}

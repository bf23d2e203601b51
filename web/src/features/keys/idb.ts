/**
 * The browser's key records in IndexedDB (database "cosign-web", store "keys"). A record holds
 * what is safe to keep: an encrypted cosign key, a non-extractable CryptoKey (stored by structured
 * clone, so its bytes stay inside the browser's key store), or a passkey-wrapped key. Records are
 * written only once a key is complete, so a failed import leaves the store as it was.
 */
import { KeyError } from '../../../../shared/errors.ts';
import type { KeyAlgorithm } from '../../../../shared/crypto/pkcs.ts';
import type { WrappedKey } from '../../../../shared/crypto/wrap.ts';
import { idbStore } from '../../lib/idb-store.ts';

interface RecordBase {
  id: string;
  name: string;
  created: number;
  algorithm: KeyAlgorithm;
  spki: Uint8Array;
}

/** A cosign key: the encrypted PEM; unlocking it needs the password. */
export interface CosignKeyRecord extends RecordBase {
  kind: 'cosign';
  encryptedPem: string;
}
/** A key generated in the browser as a non-extractable CryptoKey. */
interface BrowserKeyRecord extends RecordBase {
  kind: 'browser';
  privateKey: CryptoKey;
}
/** A key wrapped with a passkey's PRF output. */
interface PasskeyRecord extends RecordBase, WrappedKey {
  kind: 'passkey';
  credentialId: Uint8Array;
  rpId: string;
}

export type KeyRecord = CosignKeyRecord | BrowserKeyRecord | PasskeyRecord;

const DB = 'cosign-web';
const STORE = 'keys';

function storageError(cause: unknown): KeyError {
  return new KeyError(
    'KEY_STORAGE_FAILED',
    'The browser refused to store the key (is this a private window with storage off?).',
    {
      cause,
    },
  );
}

const store = idbStore(DB, STORE, storageError, { keyPath: 'id' });
const tx = <T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => store.run(mode, fn);

export function listRecords(): Promise<KeyRecord[]> {
  return tx('readonly', (s) => s.getAll() as IDBRequest<KeyRecord[]>).then((all) =>
    all.sort((a, b) => a.created - b.created),
  );
}

export async function putRecord(record: KeyRecord): Promise<void> {
  await tx('readwrite', (s) => s.put(record));
}

export async function deleteRecord(id: string): Promise<void> {
  await tx('readwrite', (s) => s.delete(id));
}

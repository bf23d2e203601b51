/**
 * One object store in its own IndexedDB database, opened once: the page's keys, its loaded trusted
 * roots and its TUF cache each use one. Requests run in a transaction that resolves when it
 * commits, so a value is stored only once the browser has kept it; failures go through `fail`.
 */
export interface IdbStore {
  run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T>;
}

export function idbStore(
  database: string,
  store: string,
  fail: (cause: unknown) => Error,
  options: IDBObjectStoreParameters = {},
): IdbStore {
  let dbPromise: Promise<IDBDatabase> | undefined;
  const open = (): Promise<IDBDatabase> =>
    (dbPromise ??= new Promise((resolve, reject) => {
      const req = indexedDB.open(database, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(store, options);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(fail(req.error));
    }));
  return {
    async run(mode, fn) {
      const db = await open();
      return new Promise((resolve, reject) => {
        const t = db.transaction(store, mode);
        const req = fn(t.objectStore(store));
        t.oncomplete = () => resolve(req.result);
        t.onerror = () => reject(fail(t.error));
        t.onabort = () => reject(fail(t.error));
      });
    },
  };
}

/**
 * A first-in-first-out lock per key, in memory: `run(key, fn)` starts `fn` once every earlier run
 * under the same key has finished; different keys run in parallel. The PKCS#11 provider keeps one
 * per token (server/pkcs11/module.ts), the embedded registry one per tag it writes
 * (server/registry/routes/manifests.ts). A key's entry is dropped when its queue empties.
 */
export class KeyedLock {
  #tails = new Map<string, Promise<void>>();

  /** Runs `fn` alone among the runs under `key`, after those that came first; its result or error is `run`'s. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.#tails.set(key, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

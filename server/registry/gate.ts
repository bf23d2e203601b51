/**
 * Shared and exclusive turns for the embedded registry: the writes that check blobs and then name
 * them (manifest PUT, mount) take shared turns, gc (gc.ts) an exclusive one.
 */

/**
 * Shared/exclusive turns: many `shared` tasks run together; an `exclusive` task waits for them
 * and runs alone, and shared tasks arriving meanwhile wait for it.
 */
export class Gate {
  #shared = 0;
  #exclusive: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive) await this.#exclusive;
    this.#shared++;
    try {
      return await fn();
    } finally {
      if (--this.#shared === 0) this.#drained?.();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive) await this.#exclusive;
    let release!: () => void;
    this.#exclusive = new Promise<void>((resolve) => (release = resolve));
    try {
      if (this.#shared > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
      this.#drained = undefined;
      return await fn();
    } finally {
      this.#exclusive = undefined;
      release();
    }
  }
}

/**
 * Runs async functions one at a time per key (per-session serialisation). Keys with nothing queued
 * hold no memory.
 * @module
 */

/** One-at-a-time execution per key. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Number of keys with work queued or running (0 when idle; used by leak tests). */
  get size(): number {
    return this.#tails.size;
  }

  /** Runs `fn` after every earlier `fn` for the same key has settled. */
  async run<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    const prev = this.#tails.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = prev ? prev.then(() => mine) : mine;
    this.#tails.set(key, tail);
    try {
      if (prev) await prev;
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

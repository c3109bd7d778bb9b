/**
 * Runs functions one at a time per key (per-session serialisation). Keys with nothing queued
 * hold no memory.
 * @module
 */
import { isThenable } from "./awaitable.ts";

/** Starts one queued call. */
type Start = () => void;

/** The queue of a key that is busy with nothing waiting (shared: allocated on first waiter). */
const NONE: Start[] = [];

/**
 * One-at-a-time execution per key. A call on an idle key starts at once, in the caller's turn;
 * a synchronous function then frees the key before `run` returns, without a promise per step.
 */
export class KeyedQueue {
  /** Busy keys → the calls waiting for them, in order. */
  readonly #busy = new Map<string, Start[]>();

  /** Number of keys with work queued or running (0 when idle; used by leak tests). */
  get size(): number {
    return this.#busy.size;
  }

  /**
   * Runs `fn` after every earlier `fn` for the same key has settled.
   * @returns what `fn` returns or resolves to; rejects with what it throws or rejects with
   */
  run<T>(key: string, fn: () => T | PromiseLike<T>): Promise<T> {
    const waiting = this.#busy.get(key);
    if (waiting === undefined) {
      this.#busy.set(key, NONE);
      return this.#start(key, fn);
    }
    return new Promise<T>((resolve, reject) => {
      const start = () => this.#start(key, fn).then(resolve, reject);
      if (waiting === NONE) this.#busy.set(key, [start]);
      else waiting.push(start);
    });
  }

  /**
   * Runs `fn` on a key this call holds, and hands the key on once it settles. Never throws: what
   * `fn` throws (or a result whose `then` cannot be read) rejects the promise returned.
   */
  #start<T>(key: string, fn: () => T | PromiseLike<T>): Promise<T> {
    let settled: Promise<T>;
    try {
      const result = fn();
      if (!isThenable(result)) {
        this.#next(key);
        return Promise.resolve(result);
      }
      settled = Promise.resolve(result);
    } catch (err) {
      this.#next(key);
      return Promise.reject(err);
    }
    return settled.then(
      (value) => {
        this.#next(key);
        return value;
      },
      (err) => {
        this.#next(key);
        throw err;
      },
    );
  }

  /**
   * Frees the key, or starts the next call waiting for it: in a microtask, so that a long queue
   * of synchronous calls does not start each other recursively.
   */
  #next(key: string): void {
    const waiting = this.#busy.get(key)!;
    const start = waiting.shift();
    if (start === undefined) return void this.#busy.delete(key);
    if (waiting.length === 0) this.#busy.set(key, NONE);
    queueMicrotask(start);
  }
}

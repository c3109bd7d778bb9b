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
  /**
   * The key of the call running synchronously on an idle queue, held here instead of in `#busy`
   * until it returns: a synchronous call (a MapStore session's, most of them) then costs the Map
   * no entry. An entry added and deleted on every call makes V8 reallocate the Map's table each
   * time it goes from one entry to none: about 470 bytes of garbage per socket `withSession`.
   */
  #current: string | undefined;
  /** Whether a call holds `#current` (a key may be any value, `undefined` too). */
  #holding = false;

  /** Number of keys with work queued or running (0 when idle; used by leak tests). */
  get size(): number {
    return this.#busy.size + (this.#holding && !this.#busy.has(this.#current!) ? 1 : 0);
  }

  /**
   * Runs `fn` after every earlier `fn` for the same key has settled.
   * @returns what `fn` returns or resolves to; rejects with what it throws or rejects with
   */
  run<T>(key: string, fn: () => T | PromiseLike<T>): Promise<T> {
    const waiting = this.#busy.get(key);
    if (waiting === undefined && !(this.#holding && key === this.#current)) {
      // Idle: held in #current when no other call is running synchronously (else in the Map).
      if (!this.#holding) return this.#start(key, fn, true);
      this.#busy.set(key, NONE);
      return this.#start(key, fn, false);
    }
    return new Promise<T>((resolve, reject) => {
      const start = () => this.#start(key, fn, false).then(resolve, reject);
      if (waiting === undefined || waiting === NONE) this.#busy.set(key, [start]);
      else waiting.push(start);
    });
  }

  /**
   * Runs `fn` on a key this call holds (in `#current` when `outside`, else in `#busy`), and hands
   * the key on once it settles. Never throws: what `fn` throws (or a result whose `then` cannot
   * be read) rejects the promise returned.
   */
  #start<T>(key: string, fn: () => T | PromiseLike<T>, outside: boolean): Promise<T> {
    let settled: Promise<T>;
    if (outside) {
      this.#current = key;
      this.#holding = true;
    }
    try {
      const result = fn();
      if (!isThenable(result)) {
        this.#release(key, outside);
        return Promise.resolve(result);
      }
      settled = Promise.resolve(result);
    } catch (err) {
      this.#release(key, outside);
      return Promise.reject(err);
    }
    if (outside) {
      // Not done in this turn: the key goes into the Map until it settles (with the calls that
      // queued behind it meanwhile, if any).
      this.#current = undefined;
      this.#holding = false;
      if (!this.#busy.has(key)) this.#busy.set(key, NONE);
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

  /** Frees a key a call held after it returned synchronously (see {@linkcode KeyedQueue.run}). */
  #release(key: string, outside: boolean): void {
    if (outside) {
      this.#current = undefined;
      this.#holding = false;
      if (!this.#busy.has(key)) return; // nothing queued behind it meanwhile
    }
    this.#next(key);
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

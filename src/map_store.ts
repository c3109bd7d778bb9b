/**
 * The embedded default store: an in-process Map with TTLs checked on read.
 * @module
 */
import { SessionSerializationError } from "./errors.ts";
import type { RecordMutator, Store, StoredRecord } from "./store.ts";

/** Options of {@linkcode MapStore}. */
export interface MapStoreOptions {
  /** Upper bound on stored records; the least recently written is evicted first. Default: none. */
  maxEntries?: number;
  /** Clock in epoch ms (for tests). Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  /** Epoch ms after which the entry is gone. */
  e: number;
  /** The record as JSON, so callers never share mutable objects with the store. */
  j: string;
}

/**
 * In-memory store for one process: synchronous (sessions load lazily), TTL checked on read,
 * `list()` for cleanup, atomic `update()`, optional `maxEntries` bound. Records are kept as
 * JSON strings, so nothing outside the store can mutate them and non-JSON data fails loudly.
 *
 * @example Usage
 * ```ts
 * import { createSessions, MapStore } from "unisession";
 * const sessions = createSessions({ store: new MapStore({ maxEntries: 100_000 }), keys: ["a-secret-of-at-least-32-characters!!"] });
 * ```
 */
export class MapStore implements Store {
  /** Reads never return a promise. */
  readonly synchronous = true;
  readonly #map = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;

  /**
   * Creates a MapStore.
   * @param options bounds and clock
   */
  constructor(options: MapStoreOptions = {}) {
    const max = options.maxEntries ?? Infinity;
    if (!(max >= 1)) throw new RangeError("Cannot create MapStore: maxEntries must be ≥ 1");
    this.#max = max;
    this.#now = options.now ?? Date.now;
  }

  /** Number of records held, expired ones included until cleanup (or eviction) removes them. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * Reads a record; an expired one reads as missing. It stays held until `cleanup()` removes it
   * (and reports it with `sessionDestroy`) or a write replaces it.
   */
  get(id: string): StoredRecord | undefined {
    const entry = this.#map.get(id);
    if (entry === undefined || entry.e <= this.#now()) return undefined;
    return JSON.parse(entry.j);
  }

  /** Writes a record for `ttlMs` milliseconds. @throws {SessionSerializationError} */
  set(id: string, record: StoredRecord, ttlMs: number): void {
    let j: string;
    try {
      j = JSON.stringify(record);
    } catch (err) {
      throw new SessionSerializationError({ cause: err });
    }
    this.#map.delete(id); // re-insert at the end: eviction order is least recently written
    this.#map.set(id, { e: this.#now() + ttlMs, j });
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  /** Removes a record. */
  delete(id: string): void {
    this.#map.delete(id);
  }

  /** Atomic read-modify-write (the store is synchronous, so nothing can interleave). */
  update(id: string, mutate: RecordMutator): StoredRecord | undefined {
    const cur = this.get(id);
    if (cur === undefined) return undefined;
    const next = mutate(cur);
    if (next !== undefined) this.set(id, next, next.expiresAt - this.#now());
    return next;
  }

  /** Every record, expired ones included: cleanup decides by `expiresAt` and reports them. */
  *list(): Iterable<[string, StoredRecord]> {
    for (const [id, entry] of this.#map) yield [id, JSON.parse(entry.j)];
  }

  /** Removes every record. */
  clear(): void {
    this.#map.clear();
  }
}

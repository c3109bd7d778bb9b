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
  /** The record's user (indexed in `#users`). */
  u?: string;
}

/**
 * In-memory store for one process: synchronous (sessions load lazily), TTL checked on read,
 * `list()` for cleanup, atomic `update()`, a user index (`listUser`, kept in the same
 * synchronous step as each write), optional `maxEntries` bound. Records are kept as JSON
 * strings, so nothing outside the store can mutate them and non-JSON data fails loudly.
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
  /** User → ids of the records naming that user. */
  readonly #users = new Map<string, Set<string>>();
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
    this.delete(id); // re-insert at the end: eviction order is least recently written
    const entry: Entry = { e: this.#now() + ttlMs, j };
    if (typeof record.user === "string") {
      entry.u = record.user;
      const ids = this.#users.get(record.user);
      if (ids) ids.add(id);
      else this.#users.set(record.user, new Set([id]));
    }
    this.#map.set(id, entry);
    if (this.#map.size > this.#max) this.delete(this.#map.keys().next().value!);
  }

  /** Removes a record (and its entry in the user index). */
  delete(id: string): void {
    const entry = this.#map.get(id);
    if (entry === undefined) return;
    this.#map.delete(id);
    if (entry.u === undefined) return;
    const ids = this.#users.get(entry.u);
    ids?.delete(id);
    if (ids?.size === 0) this.#users.delete(entry.u);
  }

  /**
   * The records of a user's sessions, expired ones included until `cleanup()` removes them (the
   * manager filters them out). O(sessions of the user).
   */
  listUser(userId: string): [string, StoredRecord][] {
    const ids = this.#users.get(userId);
    if (ids === undefined) return [];
    const out: [string, StoredRecord][] = [];
    for (const id of ids) out.push([id, JSON.parse(this.#map.get(id)!.j)]);
    return out;
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
    this.#users.clear();
  }
}

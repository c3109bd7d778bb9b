/**
 * The embedded default store: an in-process Map with TTLs checked on read.
 * @module
 */
import { SessionSerializationError } from "./errors.ts";
import { OldestKey } from "./oldest_key.ts";
import type { RecordMutator, Store, StoredRecord } from "./store.ts";

/** Options of {@linkcode MapStore}. */
export interface MapStoreOptions {
  /** Upper bound on stored records; the least recently written is evicted first. Default: none. */
  maxEntries?: number;
  /** Clock in epoch ms (for tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * A held record: the JSON of `[expiry, record]`, expiry in whole epoch ms. One flat string per
 * session (not an object holding a number and a string, nor a concatenation, which V8 keeps as a
 * rope) keeps the heap small: under 300 bytes beyond the data per session at a million sessions
 * (`bench/mapstore_scale.ts`). The expiry is read from the digits without parsing the record.
 */
type Held = string;

/** The expiry to hold: whole ms, rounded up; never (or NaN) is the largest safe integer. */
function holdExpiry(at: number): number {
  if (Number.isNaN(at) || at >= Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  return at <= 0 ? 0 : Math.ceil(at);
}

function expiryOf(held: Held): number {
  let n = 0;
  for (let i = 1; i < held.length; i++) {
    const digit = held.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  return n;
}

function recordOf(held: Held): StoredRecord {
  return (JSON.parse(held) as [number, StoredRecord])[1];
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
  readonly #map = new Map<string, Held>();
  /** Eviction cursor (least recently written first), for `maxEntries`. */
  readonly #oldest = new OldestKey(this.#map);
  /** User → ids of the records naming that user. */
  readonly #users = new Map<string, Set<string>>();
  /** Id → user, for the records that name one (most sessions of an app without logins do not). */
  readonly #userOf = new Map<string, string>();
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
    const held = this.#map.get(id);
    if (held === undefined || expiryOf(held) <= this.#now()) return undefined;
    return recordOf(held);
  }

  /** Writes a record for `ttlMs` milliseconds. @throws {SessionSerializationError} */
  set(id: string, record: StoredRecord, ttlMs: number): void {
    let held: Held;
    try {
      held = JSON.stringify([holdExpiry(this.#now() + ttlMs), record]);
    } catch (err) {
      throw new SessionSerializationError({ cause: err });
    }
    this.delete(id); // re-insert at the end: eviction order is least recently written
    if (typeof record.user === "string") {
      this.#userOf.set(id, record.user);
      const ids = this.#users.get(record.user);
      if (ids) ids.add(id);
      else this.#users.set(record.user, new Set([id]));
    }
    this.#map.set(id, held);
    if (this.#map.size > this.#max) this.delete(this.#oldest.next()!);
  }

  /** Removes a record (and its entry in the user index). */
  delete(id: string): void {
    if (!this.#map.delete(id)) return;
    const user = this.#userOf.get(id);
    if (user === undefined) return;
    this.#userOf.delete(id);
    const ids = this.#users.get(user);
    ids?.delete(id);
    if (ids?.size === 0) this.#users.delete(user);
  }

  /**
   * The records of a user's sessions, expired ones included until `cleanup()` removes them (the
   * manager filters them out). O(sessions of the user).
   */
  listUser(userId: string): [string, StoredRecord][] {
    const ids = this.#users.get(userId);
    if (ids === undefined) return [];
    const out: [string, StoredRecord][] = [];
    for (const id of ids) out.push([id, recordOf(this.#map.get(id)!)]);
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

  /**
   * Every record, expired ones included: cleanup decides by `expiresAt` and reports them. With
   * `expiredBy` (epoch ms), only the records expired by then: the rest are skipped without being
   * decoded, so a cleanup that finds little to do stays cheap at a million sessions.
   */
  *list(expiredBy?: number): Iterable<[string, StoredRecord]> {
    for (const [id, held] of this.#map) {
      if (expiredBy === undefined || expiryOf(held) <= expiredBy) yield [id, recordOf(held)];
    }
  }

  /** Removes every record. */
  clear(): void {
    this.#map.clear();
    this.#users.clear();
    this.#userOf.clear();
  }
}

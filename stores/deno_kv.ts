/**
 * A Deno KV session store: `Deno.openKv()` on Deno, the `@deno/kv` package on Node and Bun.
 * Records are UTF-8 JSON bytes under a key prefix, with an atomic `update()`
 * (`atomic().check(versionstamp)`), `list()` for cleanup, a user → sessions index written in the
 * same atomic operations, and cross-instance events through an event log in KV (polled, and
 * watched where `watch()` works).
 *
 * @example Usage
 * ```ts ignore
 * import { createSessions } from "unisession";
 * import { DenoKvStore } from "unisession/deno-kv";
 *
 * const store = await DenoKvStore.open("./sessions.db"); // Deno.openKv or @deno/kv's openKv
 * const sessions = createSessions({ store, keys: [Deno.env.get("SESSION_KEY")!] });
 * ```
 *
 * @module
 */
import {
  describeError,
  SessionSerializationError,
  SessionTooLargeError,
  StoreError,
} from "../src/errors.ts";
import { KeyedQueue } from "../src/keyed_queue.ts";
import {
  isStoredRecord,
  type RecordMutator,
  type Store,
  type StoredRecord,
  type StoreEvent,
} from "../src/store.ts";
import { type EventLogOptions, KvEventLog } from "./kv_events.ts";
import { backoff, isKvBusy, retryBusy } from "./retry.ts";

export type { EventLogOptions } from "./kv_events.ts";
export type { Awaitable, RecordMutator, Store, StoredRecord, StoreEvent } from "../src/store.ts";

/** A part of a KV key (the kinds both Deno KV and `@deno/kv` accept). */
export type KvKeyPart = string | number | bigint | boolean | Uint8Array;
/** A KV key. */
export type KvKey = readonly KvKeyPart[];

/** A KV entry as `get`, `list` and `watch` return it. */
export interface KvEntryLike {
  /** The entry's key. */
  readonly key: readonly unknown[];
  /** The value; `null` when the key is missing. */
  readonly value: unknown;
  /** The version of the last write; `null` when the key is missing. */
  readonly versionstamp: string | null;
}

/** The atomic operation API of Deno KV that this store uses. */
export interface KvAtomicLike {
  /** Fails the commit unless each key still has the versionstamp (`null`: still missing). */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): KvAtomicLike;
  /** Sets a key in the commit. */
  set(key: KvKey, value: unknown, options?: { expireIn?: number }): KvAtomicLike;
  /** Deletes a key in the commit. */
  delete(key: KvKey): KvAtomicLike;
  /** Commits; `ok: false` when a check failed. */
  commit(): Promise<{ ok: boolean }>;
}

/**
 * The part of `Deno.Kv` (Deno) and of `@deno/kv`'s `Kv` (Node, Bun) this store uses; both
 * satisfy it.
 */
export interface KvLike {
  /** Reads one entry. */
  get(key: KvKey): Promise<KvEntryLike>;
  /** Writes one entry, optionally expiring (lazily) after `expireIn` ms. */
  set(key: KvKey, value: unknown, options?: { expireIn?: number }): Promise<unknown>;
  /** Deletes one entry. */
  delete(key: KvKey): Promise<void>;
  /** Entries under a prefix, from `start` on. */
  list(selector: { prefix: KvKey; start?: KvKey }): AsyncIterable<KvEntryLike>;
  /** Starts an atomic operation. */
  atomic(): KvAtomicLike;
  /** Streams the entries each time one of the keys changes. */
  watch?(keys: readonly KvKey[]): ReadableStream<readonly KvEntryLike[]>;
  /** Closes the database. */
  close(): void;
}

/** Options of {@linkcode DenoKvStore}. */
export interface DenoKvStoreOptions extends EventLogOptions {
  /** The KV database: a `Deno.Kv`, or an `@deno/kv` `Kv`. Yours unless the store opened it. */
  kv: KvLike;
  /** Key prefix of everything the store writes. Default `["unisession"]`. */
  prefix?: KvKey;
  /** Attempts of one `update()` against concurrent writers in other processes. Default 50. */
  maxAttempts?: number;
  /** Background failures (event polling, watching). Default: `console.warn`. */
  onError?: (error: unknown) => void;
}

/** Deno KV refuses values over 64 KiB. */
export const KV_VALUE_LIMIT = 65_536;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A {@linkcode Store} on Deno KV with every capability:
 * - records are UTF-8 JSON bytes (`Uint8Array`, the same bytes on every runtime, no V8
 *   serialisation) at `[...prefix, "sessions", id]`; a record over KV's 64 KiB value limit is a
 *   {@linkcode SessionTooLargeError}, not a KV exception;
 * - a record counts as gone once its `expiresAt` has passed (checked on read: KV's `expireIn`
 *   is lazy), and `ttlMs` is still passed as `expireIn` so KV reclaims the space;
 * - `update()` reads the entry, runs the mutator and commits with
 *   `atomic().check({ key, versionstamp })`, retrying when another writer won (updates of one id
 *   through one store queue up in-process first, so retries only happen between processes);
 * - `list()` yields every record under the prefix, for `sessions.cleanup()`;
 * - `listUser()` (the manager's `identify` option): one key per session of a user at
 *   `[...prefix, "users", userId, sessionId]`, set and deleted in the same atomic operation as
 *   the record (a record naming a user is never stored without its index entry), expiring with
 *   it; entries whose record is gone or names another user are dropped by `listUser()`;
 * - `subscribe()`/`publish()` carry session events between instances through an event log in
 *   KV, see {@linkcode EventLogOptions}.
 *
 * A value that is not a JSON record (written by something else) is returned as it is: the
 * session manager treats it as "no session".
 *
 * @example Usage
 * ```ts ignore
 * import { createSessions } from "unisession";
 * import { DenoKvStore } from "unisession/deno-kv";
 *
 * const kv = await Deno.openKv(); // or, on Node and Bun: (await import("@deno/kv")).openKv(path)
 * const store = new DenoKvStore({ kv, prefix: ["myapp", "sessions"] });
 * const sessions = createSessions({ store, keys: ["a-secret-of-at-least-32-characters!!"] });
 *
 * sessions.close();
 * store.close(); // stops the event polling; kv stays open (it is yours)
 * kv.close();
 * ```
 */
export class DenoKvStore implements Store {
  /** The key prefix. */
  readonly prefix: KvKey;
  readonly #kv: KvLike;
  readonly #records: KvKey;
  readonly #users: KvKey;
  readonly #maxAttempts: number;
  readonly #queue = new KeyedQueue();
  readonly #events: KvEventLog;
  #ownsKv = false;
  #closed = false;

  /**
   * Creates a store on an open database.
   * @param options the database and the optional settings of {@linkcode DenoKvStoreOptions}
   */
  constructor(options: DenoKvStoreOptions) {
    const { kv } = options;
    if (!kv || typeof kv.get !== "function" || typeof kv.atomic !== "function") {
      throw new TypeError("Cannot create DenoKvStore: options.kv must be a Deno.Kv or @deno/kv Kv");
    }
    this.#kv = kv;
    this.prefix = options.prefix ?? ["unisession"];
    this.#records = [...this.prefix, "sessions"];
    this.#users = [...this.prefix, "users"];
    const attempts = options.maxAttempts ?? 50;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new RangeError("Cannot create DenoKvStore: maxAttempts must be a positive integer");
    }
    this.#maxAttempts = attempts;
    const onError = options.onError ??
      ((err: unknown) => console.warn(`unisession: DenoKvStore: ${describeError(err)}`));
    this.#events = new KvEventLog(kv, [...this.prefix, "events"], options, onError, attempts);
  }

  /**
   * Opens a KV database and a store on it; `close()` then closes the database too. On Deno:
   * `Deno.openKv(path)` (needs `--unstable-kv` or `"unstable": ["kv"]`). On Node and Bun:
   * `openKv(path)` of the `@deno/kv` package (install it), with JSON value encoding on Bun, which
   * lacks V8 serialisation.
   *
   * @param path a file path, `":memory:"`, or a KV Connect URL; omitted: Deno's default
   *   database, or an in-memory one with `@deno/kv`
   * @param options the store options except `kv`
   * @returns the store
   * @throws {StoreError} when the database cannot be opened
   *
   * @example Usage
   * ```ts ignore
   * import { DenoKvStore } from "unisession/deno-kv";
   * const store = await DenoKvStore.open(":memory:");
   * await store.set("id", { data: { a: 1 }, expiresAt: Date.now() + 60_000, createdAt: Date.now() }, 60_000);
   * console.log((await store.get("id"))?.data); // { a: 1 }
   * store.close();
   * ```
   */
  static async open(
    path?: string,
    options: Omit<DenoKvStoreOptions, "kv"> = {},
  ): Promise<DenoKvStore> {
    let kv: KvLike;
    try {
      // Processes opening a new file at once race to create its tables: "database is locked".
      kv = await retryBusy(() => openKv(path), options.maxAttempts ?? 50);
    } catch (err) {
      throw new StoreError("Cannot open Deno KV", { cause: err });
    }
    const store = new DenoKvStore({ ...options, kv });
    store.#ownsKv = true;
    return store;
  }

  /** Reads a record; `undefined` when missing or past its `expiresAt`. */
  async get(id: string): Promise<StoredRecord | undefined> {
    const entry = await this.#retry(() => this.#kv.get([...this.#records, id]));
    return live(decode(entry.value));
  }

  /**
   * Writes a record; KV reclaims it `ttlMs` later (a `ttlMs` ≤ 0 deletes it). A record naming a
   * user is written with its index entry in one atomic operation.
   */
  async set(id: string, record: StoredRecord, ttlMs: number): Promise<void> {
    const key = [...this.#records, id];
    const bytes = encode(record);
    const expireIn = expireInOf(ttlMs);
    const opts = expireIn ? { expireIn } : undefined;
    const user = userOf(record);
    if (user !== undefined) {
      await this.#retry(async () => {
        const op = this.#kv.atomic();
        const index = this.#userKey(user, id);
        if (expireIn === 0) op.delete(key).delete(index);
        else op.set(key, bytes, opts).set(index, record.expiresAt, opts);
        if (!(await op.commit()).ok) throw new StoreError("Cannot write session: commit failed");
      });
      return;
    }
    await this.#retry(() => expireIn === 0 ? this.#kv.delete(key) : this.#kv.set(key, bytes, opts));
  }

  /** Removes a record, and its entry in its user's index in the same atomic operation. */
  async delete(id: string): Promise<void> {
    const key = [...this.#records, id];
    const user = userOf(decode((await this.#retry(() => this.#kv.get(key))).value));
    if (user === undefined) {
      await this.#retry(() => this.#kv.delete(key));
      return;
    }
    await this.#retry(async () => {
      const op = this.#kv.atomic().delete(key).delete(this.#userKey(user, id));
      if (!(await op.commit()).ok) throw new StoreError("Cannot delete session: commit failed");
    });
  }

  /**
   * The records of a user's sessions, expired ones KV has not reclaimed yet included:
   * O(sessions of the user). Entries whose record is gone or names another user are dropped
   * (only if the record did not change meanwhile).
   */
  async listUser(userId: string): Promise<[string, StoredRecord][]> {
    this.#assertOpen();
    const ids: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [...this.#users, userId] })) {
      const id = entry.key[entry.key.length - 1];
      if (typeof id === "string") ids.push(id);
    }
    const entries = await Promise.all(
      ids.map((id) => this.#retry(() => this.#kv.get([...this.#records, id]))),
    );
    const found: [string, StoredRecord][] = [];
    const pruned: Promise<unknown>[] = [];
    ids.forEach((id, i) => {
      const entry = entries[i]!;
      const rec = decode(entry.value);
      if (isStoredRecord(rec) && rec.user === userId) {
        found.push([id, rec]);
        return;
      }
      const op = this.#kv.atomic()
        .check({ key: [...this.#records, id], versionstamp: entry.versionstamp })
        .delete(this.#userKey(userId, id));
      pruned.push(
        op.commit().catch((err) => {
          if (!isKvBusy(err)) throw err;
        }),
      );
    });
    await Promise.all(pruned);
    return found;
  }

  #userKey(userId: string, sessionId: string): KvKey {
    return [...this.#users, userId, sessionId];
  }

  /**
   * Atomic read-modify-write across processes (see the class notes); the written record lives
   * until its `expiresAt`.
   * @throws {StoreError} when other writers won {@linkcode DenoKvStoreOptions.maxAttempts} times
   */
  update(id: string, mutate: RecordMutator): Promise<StoredRecord | undefined> {
    const key = [...this.#records, id];
    return this.#queue.run(id, async () => {
      for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
        const entry = await this.#retry(() => this.#kv.get(key));
        const current = live(decode(entry.value));
        if (!isStoredRecord(current)) return undefined;
        const next = mutate(current);
        if (!next) return undefined;
        const bytes = encode(next);
        const expireIn = expireInOf(next.expiresAt - Date.now());
        const opts = expireIn ? { expireIn } : undefined;
        const op = this.#kv.atomic().check({ key, versionstamp: entry.versionstamp });
        if (expireIn === 0) op.delete(key);
        else op.set(key, bytes, opts);
        // The user index moves with the record, in the same commit.
        const before = userOf(current);
        const after = userOf(next);
        if (before !== undefined && before !== after) op.delete(this.#userKey(before, id));
        if (after !== undefined) {
          if (expireIn === 0) op.delete(this.#userKey(after, id));
          else op.set(this.#userKey(after, id), next.expiresAt, opts);
        }
        // A busy file is one more lost attempt, like a failed check.
        const committed = await op.commit().then((r) => r.ok, (err) => {
          if (isKvBusy(err)) return false;
          throw err;
        });
        if (committed) return decode(bytes) as StoredRecord;
        await backoff(attempt);
      }
      throw new StoreError(
        `Cannot update session: ${this.#maxAttempts} attempts lost to concurrent writers`,
      );
    });
  }

  /** Every record under the prefix, including expired ones KV has not reclaimed yet. */
  async *list(): AsyncIterable<[string, StoredRecord]> {
    this.#assertOpen();
    for await (const entry of this.#kv.list({ prefix: this.#records })) {
      const id = entry.key[entry.key.length - 1];
      if (typeof id === "string") yield [id, decode(entry.value) as StoredRecord];
    }
  }

  async #retry<T>(fn: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    return await retryBusy(fn, this.#maxAttempts);
  }

  /** @throws {StoreError} once `close()` closed the database that {@linkcode DenoKvStore.open} opened */
  #assertOpen(): void {
    if (this.#closed && this.#ownsKv) {
      throw new StoreError("Cannot use the DenoKvStore: it was closed");
    }
  }

  /** Appends an event to the event log, for every subscribed instance (this one included). */
  publish(event: StoreEvent): Promise<void> {
    return this.#events.publish(event);
  }

  /**
   * Calls `onEvent` for every event published from now on. The first subscription starts
   * polling (and watching) the event log; the returned function unsubscribes.
   */
  subscribe(onEvent: (event: StoreEvent) => void): () => void {
    if (this.#closed) throw new StoreError("Cannot subscribe: the DenoKvStore is closed");
    return this.#events.subscribe(onEvent);
  }

  /**
   * Stops the event polling; closes the database when {@linkcode DenoKvStore.open} opened it
   * (then every later call rejects with a {@linkcode StoreError}).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.stop();
    if (this.#ownsKv) this.#kv.close();
  }
}

/** Deno.openKv on Deno, `@deno/kv` elsewhere (JSON "V8" codec on Bun). */
async function openKv(path: string | undefined): Promise<KvLike> {
  const g = globalThis as { Deno?: { openKv?: (path?: string) => Promise<KvLike> }; Bun?: unknown };
  if (g.Deno !== undefined) {
    if (typeof g.Deno.openKv !== "function") {
      throw new TypeError(
        'Deno.openKv is not available: run with --unstable-kv or add "unstable": ["kv"] to deno.json',
      );
    }
    return await g.Deno.openKv(path);
  }
  const { openKv } = await import("@deno/kv");
  const json = {
    encodeV8: (value: unknown) => encoder.encode(JSON.stringify(value)),
    decodeV8: (bytes: Uint8Array) => JSON.parse(decoder.decode(bytes)),
  };
  return await openKv(path, g.Bun !== undefined ? json : {}) as unknown as KvLike;
}

/** The user a stored value names, if it is a record that names one. */
function userOf(value: unknown): string | undefined {
  return isStoredRecord(value) && typeof value.user === "string" ? value.user : undefined;
}

/** UTF-8 JSON bytes of a record, within KV's value limit. */
function encode(record: StoredRecord): Uint8Array {
  let json: string;
  try {
    json = JSON.stringify(record);
  } catch (err) {
    throw new SessionSerializationError({ cause: err });
  }
  const bytes = encoder.encode(json);
  if (bytes.byteLength > KV_VALUE_LIMIT) {
    throw new SessionTooLargeError(bytes.byteLength, KV_VALUE_LIMIT);
  }
  return bytes;
}

/**
 * A stored value back: parsed JSON bytes; bytes that are not JSON as their text; anything else
 * (not written by this store) as it is. The gateway reports non-records as corrupt.
 */
function decode(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (!(value instanceof Uint8Array)) return value;
  const text = decoder.decode(value);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `undefined` for a record past its `expiresAt`; anything else unchanged. */
function live(value: unknown): StoredRecord | undefined {
  if (isStoredRecord(value) && value.expiresAt <= Date.now()) return undefined;
  return value as StoredRecord | undefined;
}

/** KV's `expireIn`: a positive integer, 0 when already expired, undefined for no expiry. */
function expireInOf(ms: number): number | undefined {
  if (Number.isNaN(ms)) throw new RangeError("Cannot write session: ttl is NaN");
  if (ms === Infinity) return undefined;
  return ms > 0 ? Math.ceil(ms) : 0;
}

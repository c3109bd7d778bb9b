/**
 * The store contract, `toStore()` for the store shapes of the libraries unisession replaces,
 * and the gateway the manager talks to (errors, timeouts, atomic updates).
 * @module
 */
import { SessionSerializationError, StoreError } from "./errors.ts";
import { andThen, isThenable, promiseOf } from "./awaitable.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import { RecordUserIndex } from "./user_index.ts";
import { jsonCopy } from "./json_copy.ts";

/** What cleanup reads of an expired record: all of it, except that `data` may be left out. */
export type ExpiredRecord = Omit<StoredRecord, "data"> & { data?: StoredRecord["data"] };

/**
 * A record `Store.takeExpired` removed: its id, the record, and `true` when the record's client
 * mapping was removed along with it.
 */
export type TakenRecord = [id: string, record: ExpiredRecord, mappingTaken?: boolean];

/** What a store keeps per session (and per client mapping). JSON-serialisable. */
export interface StoredRecord {
  /** Session data. */
  data: Record<string, unknown>;
  /** Epoch ms when the idle window ends. */
  expiresAt: number;
  /** Epoch ms of creation (for the absolute timeout). */
  createdAt: number;
  /** The browser (client) that owns the session. */
  clientId?: string;
  /** Keys flashed by the previous request; removed after the next one. */
  flash?: string[];
  /** Per-session idle window in ms (set by `renew(maxAge)` or `session.maxAge = ...`). */
  maxAge?: number;
  /** For a client mapping record (`cid:<clientId>`): the session it points to. */
  sid?: string;
  /**
   * The session's CSRF secret (base64url), kept beside the data rather than in it, so that no
   * API returning session data can expose it.
   */
  csrf?: string;
  /**
   * The user the session belongs to (the manager's `identify` option). Stores with `listUser`
   * index it in the same atomic operation as the record.
   */
  user?: string;
  /** Epoch ms of the last write of a user's session (its "last seen" time). */
  seenAt?: number;
  /** What the manager's `describe` option recorded when the session was created. */
  meta?: Record<string, unknown>;
}

/** A value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** Computes the next record from the current one; `undefined` aborts without writing. */
export type RecordMutator = (current: StoredRecord) => StoredRecord | undefined;

/** An event a store delivers from other instances. */
export type StoreEvent =
  | { type: "sessionSet"; sessionId: string; clientId?: string; isNew: boolean; origin: string }
  | {
    type: "sessionDestroy";
    sessionId: string;
    clientId?: string;
    reason: "destroy" | "regenerate" | "expired";
    origin: string;
  }
  | { type: "cleanup"; count: number; origin: string };

/**
 * The store contract. `get`/`set`/`delete` are required; the rest are optional capabilities
 * detected at runtime. Methods may be sync or async.
 */
export interface Store {
  /** Reads a record; `undefined` when missing. */
  get(id: string, ctx?: unknown): Awaitable<StoredRecord | undefined | null>;
  /** Writes a record that lives `ttlMs` milliseconds. */
  set(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): Awaitable<unknown>;
  /** Removes a record. */
  delete(id: string, ctx?: unknown): Awaitable<unknown>;
  /** All records (for cleanup). */
  list?(): AsyncIterable<[string, StoredRecord]> | Iterable<[string, StoredRecord]>;
  /**
   * Synchronous stores: a cheaper cleanup. Removes the records whose expiry has passed by
   * `expiredBy` (epoch ms) and returns them, with or without their `data` (cleanup does not read
   * it), so cleanup needs one pass and no delete per record. Returns them in batches (any size,
   * empty ones too): cleanup lets other work run between batches when it has run for a few
   * milliseconds, so a store can walk and remove a large collection in slices (MapStore does),
   * as long as a record written between batches is kept as written. Used instead of `list()`
   * when present; cleanup reports each record returned as expired (and skips the client
   * mappings).
   * The manager passes `mappingPrefix` (`"cid:"`): a store may then also remove, for each
   * removed record with a `clientId`, the record `mappingPrefix + clientId` whose `sid` names it
   * (the browser's client mapping), and say so with `true` as the third element of that record's
   * entry instead of returning the mapping, so that cleanup need not read the mapping back
   * (MapStore does). Otherwise cleanup reads the mapping back and removes it.
   */
  takeExpired?(expiredBy: number, mappingPrefix?: string): Iterable<readonly TakenRecord[]>;
  /**
   * Atomic read-modify-write: calls `mutate` with the latest record (possibly more than once,
   * under optimistic concurrency) and writes its result to live until its `expiresAt`; does
   * nothing and resolves `undefined` when the record is missing or `mutate` returns `undefined`.
   */
  update?(id: string, mutate: RecordMutator): Awaitable<StoredRecord | undefined>;
  /** Cross-instance events: calls `onEvent` for events published by other instances. */
  subscribe?(onEvent: (event: StoreEvent) => void): () => void;
  /** Publishes an event to other instances (pairs with `subscribe`). */
  publish?(event: StoreEvent): Awaitable<unknown>;
  /** Called after a cleanup run removed `count` records. */
  afterCleanup?(count: number): Awaitable<unknown>;
  /**
   * The user index (optional capability): the records whose `user` is `userId`, with their ids.
   * A store that has it keeps the index itself, in the same atomic operation as every `set`,
   * `update` and `delete` of a record, so a stored record with a `user` is never missing from
   * its user's list. It may also return records that have expired (the manager filters them);
   * entries whose record is gone or now names another user are dropped. Without it, the manager
   * keeps a best-effort index in records under `uid:<userId>`.
   */
  listUser?(userId: string): Awaitable<[string, StoredRecord][]>;
  /** True when `get` never returns a promise, so sessions can load lazily on first access. */
  readonly synchronous?: boolean;
}

/**
 * A koa-generic-session / koa-redis / koa-session external store. Like koa-generic-session and
 * koa-session-minimal (which run answers through co), each method may answer with a value, a
 * promise (an async function), a thunk (`(cb) => cb(err, value)`) or a generator object
 * (generator methods, yielding promises, thunks, generators, or arrays or objects of them).
 */
export interface KoaStyleStore {
  /** Reads a session by id (koa-session also passes `maxAge` and `{ ctx, rolling }`). */
  get(sid: string, ...rest: unknown[]): unknown;
  /** Writes a session for `ttl` ms. */
  set(sid: string, sess: unknown, ttl?: number, ...rest: unknown[]): unknown;
  /** Removes a session. */
  destroy(sid: string, ...rest: unknown[]): unknown;
}

/** A @randajan/koa-io-session v3 backend store (`{ session, expiresAt, ttl }` states). */
export interface BridgeStyleStore extends KoaStyleStore {
  /** Every `[sid, state]` (for cleanup). */
  list?(): unknown;
  /** Called after a cleanup removed `clearedCount` sessions. */
  optimize?(clearedCount: number): unknown;
}

/** Anything {@linkcode toStore} accepts. */
export type StoreLike =
  | Store
  | Map<string, unknown>
  | KoaStyleStore
  | BridgeStyleStore
  | {
    /** Reads a session (the Hono context last). */
    get(id: string, ctx?: unknown): unknown;
    /** Writes a session. */
    set(id: string, value: unknown, ctx?: unknown): unknown;
    /** Removes a session. */
    delete(id: string, ctx?: unknown): unknown;
  };

/**
 * Adapts an existing store, unchanged, to the {@linkcode Store} contract:
 * a plain `Map`; a Map-like `{get,set,delete}` (hono-session); a koa-generic-session, koa-redis or
 * koa-session external store `{get, set, destroy}`; a @randajan/koa-io-session v3 store (has `list`
 * or `optimize`, keeps `{ session: JSON, expiresAt, ttl }`). A {@linkcode Store} is returned as is.
 *
 * @param store the store to adapt
 * @param shape force a shape instead of detecting it: `"bridge"` for a v3 store without `list`,
 *   `"hono"` for a hono-session store (`set(id, data, c)` gets the context as third argument)
 * @returns a {@linkcode Store}
 * @throws {TypeError} when `store` has none of the shapes
 *
 * @example Usage
 * ```ts
 * import { toStore } from "unisession";
 * const map = new Map();
 * const store = toStore(map);
 * await store.set("id", { data: { a: 1 }, expiresAt: Date.now() + 1000, createdAt: Date.now() }, 1000);
 * console.log(map.has("id")); // true
 * ```
 */
export function toStore(store: StoreLike, shape?: "bridge" | "koa" | "hono"): Store {
  if (store instanceof Map) return new MapAdapter(store);
  if (typeof store !== "object" || store === null || typeof store.get !== "function") {
    throw new TypeError(
      "Cannot use store: expected a Map or an object with get/set/delete or get/set/destroy",
    );
  }
  const s = store as unknown as Record<string, unknown>;
  if (typeof s.set !== "function") throw new TypeError("Cannot use store: set() is missing");
  if (shape === "bridge") return new BridgeStoreAdapter(store as BridgeStyleStore);
  if (shape === "hono") return new HonoStoreAdapter(store as HonoStyleStore);
  if (typeof s.destroy === "function" && typeof s.delete !== "function") {
    if (shape !== "koa" && (typeof s.list === "function" || typeof s.optimize === "function")) {
      return new BridgeStoreAdapter(store as BridgeStyleStore);
    }
    return new KoaStoreAdapter(store as KoaStyleStore);
  }
  if (typeof s.delete !== "function") throw new TypeError("Cannot use store: delete() is missing");
  return store as Store;
}

/** A plain `Map` as a store; records are copied on read so the Map never aliases live data. */
class MapAdapter implements Store {
  readonly synchronous = true;
  readonly #map: Map<string, unknown>;
  constructor(map: Map<string, unknown>) {
    this.#map = map;
  }
  get(id: string): StoredRecord | undefined {
    const v = this.#map.get(id);
    return v === undefined || v === null ? undefined : jsonCopy(v) as StoredRecord;
  }
  set(id: string, record: StoredRecord): void {
    this.#map.set(id, jsonCopy(record));
  }
  delete(id: string): void {
    this.#map.delete(id);
  }
  *list(): Iterable<[string, StoredRecord]> {
    for (const [k, v] of this.#map) yield [k, (v === null ? v : jsonCopy(v)) as StoredRecord];
  }
  update(id: string, mutate: RecordMutator): StoredRecord | undefined {
    const cur = this.get(id);
    const next = cur && mutate(cur);
    if (next) this.set(id, next);
    return next;
  }
}

/** A koa-generic-session / koa-session store; answers go through {@linkcode fromCo}. */
class KoaStoreAdapter implements Store {
  readonly #s: KoaStyleStore;
  constructor(s: KoaStyleStore) {
    this.#s = s;
  }
  get(id: string, ctx?: unknown): Awaitable<StoredRecord | undefined> {
    return fromCo(this.#s.get(id, undefined, { rolling: false, ctx })) as Awaitable<
      StoredRecord | undefined
    >;
  }
  set(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): unknown {
    return fromCo(this.#s.set(id, record, ttlMs, { rolling: false, changed: true, ctx }));
  }
  delete(id: string, ctx?: unknown): unknown {
    return fromCo(this.#s.destroy(id, { ctx }));
  }
}

/**
 * A koa-generic-session store's answer as co (which its middlewares run every answer through)
 * takes it: a thunk or a generator object becomes a promise of its result, so that the gateway
 * awaits it, times it out and wraps its failure; a promise or a plain value is returned as it
 * is. Two `typeof` checks and a property read: promise-returning stores pay next to nothing.
 */
function fromCo(answer: unknown): unknown {
  if (typeof answer === "function") return coPromise(answer);
  return isGenerator(answer) ? runGenerator(answer) : answer;
}

/** A function co calls back or runs. */
type CoFunction = (...args: unknown[]) => unknown;

/**
 * co's `toPromise`: what a generator can yield (a promise, a thunk, a generator or generator
 * function, an array or plain object of those) as a promise; undefined for anything else.
 */
function coPromise(x: unknown): PromiseLike<unknown> | undefined {
  if (x === null || (typeof x !== "object" && typeof x !== "function")) return undefined;
  if (isThenable(x)) return x;
  if (typeof x === "function") {
    return isGeneratorFunction(x)
      ? runGenerator((x as CoFunction)() as Generator)
      : thunkPromise(x as CoFunction);
  }
  if (isGenerator(x)) return runGenerator(x);
  if (Array.isArray(x)) return Promise.all(x.map((v) => coPromise(v) ?? v));
  if (x.constructor === Object) return objectPromise(x as Record<string, unknown>);
  return undefined;
}

/**
 * True for a generator function, by co's test: its constructor is named `GeneratorFunction`
 * (natively, or by `displayName`), or its constructor's prototype is a generator (a transpiled
 * one, as regenerator makes).
 */
function isGeneratorFunction(fn: object): boolean {
  const ctor =
    (fn as { constructor?: { name?: unknown; displayName?: unknown; prototype?: unknown } })
      .constructor;
  if (!ctor) return false;
  if (ctor.name === "GeneratorFunction" || ctor.displayName === "GeneratorFunction") return true;
  return isGenerator(ctor.prototype);
}

/** True for a generator object (co's test: `next` and `throw` are functions). */
function isGenerator(x: unknown): x is Generator {
  return x !== null && typeof x === "object" &&
    typeof (x as Generator).next === "function" && typeof (x as Generator).throw === "function";
}

/**
 * Calls a thunk with a node-style callback. The promise settles once, so a callback called
 * again, or a throw after it, is ignored; a throw before it rejects (the executor catches it).
 */
function thunkPromise(thunk: CoFunction): Promise<unknown> {
  return new Promise((resolve, reject) => {
    thunk((err: unknown, ...values: unknown[]) => {
      if (err) reject(err);
      else resolve(values.length > 1 ? values : values[0]);
    });
  });
}

/**
 * Runs a generator as co does: each yielded value is awaited (see {@linkcode coPromise}) and sent
 * back, a failure is thrown into the generator, and one co cannot await is thrown in as a
 * TypeError; resolves what the generator returns, rejects what escapes it. Every step catches
 * (a step may run in a `then` callback, where a throw would be an unhandled rejection and a hang).
 */
function runGenerator(gen: Generator): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const step = (method: "next" | "throw", arg: unknown): void => {
      try {
        const r = gen[method](arg);
        if (r.done) return resolve(r.value);
        const p = coPromise(r.value);
        if (p) Promise.resolve(p).then((v) => step("next", v), (err) => step("throw", err));
        else step("throw", new TypeError(notYieldable(r.value)));
      } catch (err) {
        reject(err);
      }
    };
    step("next", undefined);
  });
}

/** co's message for a yielded value it cannot wait on. */
function notYieldable(value: unknown): string {
  return "You may only yield a function, promise, generator, array, or object, " +
    `but the following object was passed: "${String(value)}"`;
}

/** co's `objectToPromise`: the object with each of its values awaited, keys in their order. */
function objectPromise(o: Record<string, unknown>): Promise<Record<string, unknown>> {
  const keys = Object.keys(o);
  return Promise.all(keys.map((k) => coPromise(o[k]) ?? o[k])).then((values) =>
    Object.fromEntries(keys.map((k, i) => [k, values[i]]))
  );
}

/** A hono-session store: `get(id, c)`, `set(id, data, c)`, `delete(id, c)`. */
export interface HonoStyleStore {
  /** Reads a session (the Hono context last). */
  get(id: string, ctx?: unknown): unknown;
  /** Writes a session. */
  set(id: string, value: unknown, ctx?: unknown): unknown;
  /** Removes a session. */
  delete(id: string, ctx?: unknown): unknown;
}

class HonoStoreAdapter implements Store {
  readonly #s: HonoStyleStore;
  constructor(s: HonoStyleStore) {
    this.#s = s;
  }
  get(id: string, ctx?: unknown): Awaitable<StoredRecord | undefined> {
    return this.#s.get(id, ctx) as Awaitable<StoredRecord | undefined>;
  }
  set(id: string, record: StoredRecord, _ttlMs: number, ctx?: unknown): unknown {
    return this.#s.set(id, record, ctx);
  }
  delete(id: string, ctx?: unknown): unknown {
    return this.#s.delete(id, ctx);
  }
}

/** koa-io-session v3 state: `{ session: JSON string, expiresAt, ttl }`. */
interface BridgeState {
  session: string;
  expiresAt: number;
  ttl: number;
}

class BridgeStoreAdapter implements Store {
  readonly #s: BridgeStyleStore;
  constructor(s: BridgeStyleStore) {
    this.#s = s;
    if (typeof s.list === "function") this.list = this.#list;
  }
  list?: () => AsyncIterable<[string, StoredRecord]>;
  async get(id: string): Promise<StoredRecord | undefined> {
    return fromBridgeState(await this.#s.get(id));
  }
  set(id: string, record: StoredRecord, ttlMs: number): unknown {
    const state: BridgeState = { session: "", expiresAt: record.expiresAt, ttl: ttlMs };
    try {
      state.session = JSON.stringify(record);
    } catch (err) {
      throw new SessionSerializationError({ cause: err });
    }
    return this.#s.set(id, state);
  }
  delete(id: string): unknown {
    return this.#s.destroy(id);
  }
  afterCleanup(count: number): unknown {
    return typeof this.#s.optimize === "function" ? this.#s.optimize(count) : undefined;
  }
  async *#list(): AsyncIterable<[string, StoredRecord]> {
    const listed = await this.#s.list!();
    const entries: Iterable<unknown> = listed instanceof Map ? listed : Array.isArray(listed) ||
        (listed && typeof (listed as Iterable<unknown>)[Symbol.iterator] === "function")
      ? listed as Iterable<unknown>
      : listed && typeof listed === "object"
      ? Object.entries(listed)
      : [];
    for (const entry of entries) {
      if (typeof entry === "string") {
        const rec = await this.get(entry);
        if (rec) yield [entry, rec];
      } else if (Array.isArray(entry) && typeof entry[0] === "string") {
        const rec = fromBridgeState(entry[1]);
        if (rec) yield [entry[0], rec];
      }
    }
  }
}

/** Reads a v3 state; states written by koa-session itself (no `data` field) are migrated. */
function fromBridgeState(state: unknown): StoredRecord | undefined {
  if (!state || typeof state !== "object") return undefined;
  const { session, expiresAt } = state as Partial<BridgeState>;
  if (typeof session !== "string") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(session);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== "object") return undefined;
  if ("data" in parsed && "expiresAt" in parsed) return parsed as StoredRecord;
  // A koa-session object: drop its internal fields.
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (k !== "_expire" && k !== "_maxAge" && k !== "_session") data[k] = v;
  }
  const exp = typeof expiresAt === "number"
    ? expiresAt
    : Number((parsed as { _expire?: number })._expire);
  return { data, expiresAt: exp, createdAt: Number.isFinite(exp) ? exp - 86_400_000 : 0 };
}

/** True when `x` has the shape of a {@linkcode StoredRecord}. */
export function isStoredRecord(x: unknown): x is StoredRecord {
  if (x === null || typeof x !== "object") return false;
  const r = x as StoredRecord;
  return r.data !== null && typeof r.data === "object" && !Array.isArray(r.data) &&
    Number.isFinite(r.expiresAt) && Number.isFinite(r.createdAt) &&
    (r.flash === undefined || Array.isArray(r.flash)) &&
    (r.user === undefined || typeof r.user === "string");
}

/** Records of a synchronous store's `list()` that cleanup handles between pauses. */
const LIST_BATCH = 1024;

/** True for what cleanup can act on: a record whose `data` may be missing (`takeExpired`). */
function isExpiredRecord(x: unknown): boolean {
  if (x === null || typeof x !== "object") return false;
  const r = x as ExpiredRecord;
  if (r.data !== undefined) return isStoredRecord(r);
  return Number.isFinite(r.expiresAt) && Number.isFinite(r.createdAt) &&
    (r.user === undefined || typeof r.user === "string");
}

/** Options of the {@linkcode StoreGateway}. */
export interface GatewayOptions {
  /** Milliseconds before a pending store call fails with a StoreError (0 = never). */
  timeoutMs: number;
  /** Called with the id's hash-free description when a stored record is corrupt. */
  onCorrupt: (op: string) => void;
  /**
   * Keep a user → sessions index (the manager's `identify` option): the store's own
   * (`listUser`), or else a best-effort one in `uid:<userId>` records. Default false.
   */
  indexUsers?: boolean;
  /** Clock in epoch ms (a record's TTL, the fallback index). Default `Date.now`. */
  now?: () => number;
}

/**
 * Wraps a store: normalises sync/async, turns failures and timeouts into StoreError,
 * validates records, and provides `update` (atomic within this process) for stores without one.
 */
export class StoreGateway {
  readonly store: Store;
  readonly synchronous: boolean;
  readonly #opts: GatewayOptions;
  readonly #queue = new KeyedQueue();
  readonly #now: () => number;
  /** The fallback user index, for stores without `listUser` (only with `indexUsers`). */
  readonly #users: RecordUserIndex | undefined;

  constructor(store: Store, opts: GatewayOptions) {
    this.store = store;
    this.synchronous = store.synchronous === true;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    if (opts.indexUsers && typeof store.listUser !== "function") {
      this.#users = new RecordUserIndex({
        get: (id) => this.get(id),
        set: (id, rec, ttl) => this.#set(id, rec, ttl),
        delete: (id) => this.#delete(id),
      }, this.#now);
    }
  }

  /** Synchronous read for synchronous stores (lazy loading). */
  getSync(id: string, ctx?: unknown): StoredRecord | undefined {
    return this.#readSync(id, ctx, undefined);
  }

  /**
   * {@linkcode getSync} through `read` in place of the store's `get` (a MapStore's read without a
   * copy): the same error when it throws, the same check of what it answers.
   */
  getSyncWith(id: string, read: (id: string) => unknown): StoredRecord | undefined {
    return this.#readSync(id, undefined, read);
  }

  #readSync(
    id: string,
    ctx: unknown,
    read: ((id: string) => unknown) | undefined,
  ): StoredRecord | undefined {
    let rec: unknown;
    try {
      rec = read === undefined ? this.store.get(id, ctx) : read(id);
    } catch (err) {
      throw new StoreError("Cannot read session: store failed", { cause: err });
    }
    if (rec && typeof (rec as Promise<unknown>).then === "function") {
      throw new StoreError("Cannot read session: store declared synchronous returned a promise");
    }
    return this.#check(rec);
  }

  async get(id: string, ctx?: unknown): Promise<StoredRecord | undefined> {
    return this.#check(await this.#call("read", () => this.store.get(id, ctx)));
  }

  set(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): Promise<void> {
    return promiseOf(() => this.setNow(id, record, ttlMs, ctx));
  }

  /**
   * {@linkcode set}, done synchronously when the store's `set` answers synchronously (and no
   * fallback user index is kept); otherwise a promise.
   * @throws {StoreError} (synchronously) when the store throws
   */
  setNow(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): void | Promise<void> {
    const written = this.#callNow("write", () => this.store.set(id, record, ttlMs, ctx));
    const users = this.#users;
    const user = record.user;
    if (users && user !== undefined) {
      return andThen(written, () => users.add(user, id, record.expiresAt));
    }
    return isThenable(written) ? Promise.resolve(written).then(noop) : undefined;
  }

  /**
   * Removes a record. With the fallback user index, `known` (the record, when the caller has
   * it) saves the read that finds the user to unlist it from.
   */
  async delete(id: string, ctx?: unknown, known?: StoredRecord): Promise<void> {
    const users = this.#users;
    const rec = users && (known ?? await this.get(id, ctx));
    await this.#delete(id, ctx);
    if (rec?.user !== undefined) await users!.remove(rec.user, id);
  }

  #set(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): Promise<void> {
    return this.#call("write", () => this.store.set(id, record, ttlMs, ctx)).then(noop);
  }

  #delete(id: string, ctx?: unknown): Promise<void> {
    return this.#call("delete", () => this.store.delete(id, ctx)).then(noop);
  }

  /**
   * The records of a user's sessions (expired ones possibly included): from the store's own
   * index, or from the fallback index. Entries that are not records of `userId` are dropped.
   * @throws {TypeError} when the gateway keeps no user index
   */
  async listUser(userId: string): Promise<[string, StoredRecord][]> {
    const store = this.store;
    if (typeof store.listUser === "function") {
      const listed = await this.#call("read", () => store.listUser!(userId));
      if (!Array.isArray(listed)) throw new StoreError("Cannot list sessions: store failed");
      return listed.filter((e): e is [string, StoredRecord] =>
        Array.isArray(e) && typeof e[0] === "string" && isStoredRecord(e[1]) &&
        e[1].user === userId
      );
    }
    if (!this.#users) throw new TypeError("Cannot list sessions by user: no user index is kept");
    return this.#users.list(userId);
  }

  /** Cleanup of a fallback index record (`uid:<userId>`): deleted once expired. */
  sweepUserIndex(key: string): Promise<void> {
    return this.#users ? this.#users.sweep(key) : this.#delete(key);
  }

  /**
   * Atomic read-modify-write. Uses the store's `update` when it has one; otherwise runs
   * get → mutate → set under a per-id lock (atomic within this process only).
   */
  update(id: string, mutate: RecordMutator, ctx?: unknown): Promise<StoredRecord | undefined> {
    return promiseOf(() => this.updateNow(id, mutate, ctx));
  }

  /**
   * {@linkcode update}, answered synchronously when the store's `update` answers synchronously
   * (MapStore): then no promise is made. Otherwise a promise.
   * @throws {StoreError} (synchronously) when the store throws; what `mutate` throws, as it is
   */
  updateNow(
    id: string,
    mutate: RecordMutator,
    ctx?: unknown,
  ): StoredRecord | undefined | Promise<StoredRecord | undefined> {
    const store = this.store;
    const m: Mutation = { mutate, previous: undefined, failure: undefined };
    const checked = checkedMutator(m);
    if (typeof store.update !== "function") {
      return this.#queue.run(id, async () => {
        const cur = await this.get(id, ctx);
        const rec = cur && checked(cur);
        if (rec) await this.#set(id, rec, rec.expiresAt - this.#now(), ctx);
        return this.#updated(id, m, rec);
      });
    }
    const next = this.#callNow("write", () => store.update!(id, checked));
    return isThenable(next)
      ? next.then((rec) => this.#updated(id, m, rec ?? undefined))
      : this.#updated(id, m, next ?? undefined);
  }

  /** After an update: rethrows what `mutate` threw, keeps the fallback user index. */
  #updated(
    id: string,
    m: Mutation,
    next: StoredRecord | undefined,
  ): StoredRecord | undefined | Promise<StoredRecord | undefined> {
    if (m.failure) throw m.failure.error;
    if (next && this.#users) return this.#users.written(id, m.previous, next).then(() => next);
    return next;
  }

  async *list(): AsyncIterable<[string, StoredRecord]> {
    if (typeof this.store.list !== "function") {
      throw new TypeError("Cannot clean up: the store has no list()");
    }
    let iterable: AsyncIterable<[string, StoredRecord]> | Iterable<[string, StoredRecord]>;
    try {
      iterable = this.store.list();
      for await (const entry of iterable) {
        if (isStoredRecord(entry[1])) yield entry;
        else if (entry[1] !== undefined && entry[1] !== null) this.#opts.onCorrupt("list");
      }
    } catch (err) {
      throw new StoreError("Cannot list sessions: store failed", { cause: err });
    }
  }

  /**
   * Cleanup without a promise per record, when the store is synchronous and keeps no fallback
   * user index (whose updates are asynchronous): the records the store's `takeExpired` removed
   * (`taken: true`), in its batches, else all its records from `list()` in batches of
   * 1,024 (corrupt ones skipped either way). Otherwise undefined: use
   * {@linkcode list}. `mappingPrefix` goes to `takeExpired`.
   * @throws {StoreError} when the store fails (also when iterated)
   */
  listSync(
    expiredBy: number,
    mappingPrefix?: string,
  ): { batches: Iterable<TakenRecord[]>; taken: boolean } | undefined {
    const store = this.store;
    if (!this.synchronous || this.#users) return undefined;
    const taken = typeof store.takeExpired === "function";
    if (!taken && typeof store.list !== "function") return undefined;
    let iterable: unknown;
    try {
      iterable = taken ? store.takeExpired!(expiredBy, mappingPrefix) : store.list!();
    } catch (err) {
      throw new StoreError("Cannot list sessions: store failed", { cause: err });
    }
    const it = iterable as Iterable<unknown>;
    if (typeof it?.[Symbol.iterator] !== "function") return undefined;
    return { batches: this.#validBatches(it, taken), taken };
  }

  /** The valid records of `takeExpired`'s batches, or of `list()`'s records in batches. */
  *#validBatches(iterable: Iterable<unknown>, taken: boolean): Iterable<TakenRecord[]> {
    const valid = taken ? isExpiredRecord : isStoredRecord;
    let out: TakenRecord[] = [];
    const add = (entry: TakenRecord) => {
      if (valid(entry[1])) out.push(entry);
      else if (entry[1] !== undefined && entry[1] !== null) this.#opts.onCorrupt("list");
    };
    try {
      for (const item of iterable) {
        if (!taken) {
          add(item as TakenRecord);
          if (out.length < LIST_BATCH) continue;
        } else {
          if (!Array.isArray(item) || typeof item[0] === "string") {
            throw new TypeError("takeExpired() must return batches (arrays) of [id, record]");
          }
          for (const entry of item as TakenRecord[]) add(entry);
        }
        yield out;
        out = [];
      }
    } catch (err) {
      throw new StoreError("Cannot list sessions: store failed", { cause: err });
    }
    if (out.length > 0) yield out;
  }

  /**
   * Delete for {@linkcode listSync}'s cleanup: synchronous, unless the store returns a promise
   * after all (then that promise, failing with a StoreError, for the caller to await).
   * @throws {StoreError} when the store throws
   */
  deleteSync(id: string): Promise<void> | undefined {
    let result: unknown;
    try {
      result = this.store.delete(id);
    } catch (err) {
      throw wrap("delete", err);
    }
    if (result && typeof (result as Promise<unknown>).then === "function") {
      return (result as Promise<unknown>).then(noop, (err) => Promise.reject(wrap("delete", err)));
    }
    return undefined;
  }

  #check(rec: unknown): StoredRecord | undefined {
    if (rec === undefined || rec === null) return undefined;
    if (isStoredRecord(rec)) return rec;
    this.#opts.onCorrupt("read");
    return undefined;
  }

  #call<T>(op: string, fn: () => Awaitable<T>): Promise<T> {
    return promiseOf(() => this.#callNow(op, fn));
  }

  /**
   * Calls the store: its answer as it is when synchronous, else a promise that fails with a
   * StoreError (or after `timeoutMs`).
   * @throws {StoreError} when the store throws
   */
  #callNow<T>(op: string, fn: () => Awaitable<T>): T | Promise<T> {
    let result: Awaitable<T>;
    try {
      result = fn();
    } catch (err) {
      throw wrap(op, err);
    }
    if (!isThenable(result)) return result;
    const timeoutMs = this.#opts.timeoutMs;
    if (!(timeoutMs > 0)) {
      return Promise.resolve(result).then(undefined, (err) => Promise.reject(wrap(op, err)));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new StoreError(`Cannot ${op} session: store did not answer within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
      const fail = (err: unknown) => {
        clearTimeout(timer);
        reject(wrap(op, err));
      };
      try {
        result.then((v) => {
          clearTimeout(timer);
          resolve(v);
        }, fail);
      } catch (err) {
        fail(err); // a thenable whose then() throws
      }
    });
  }
}

/** What an update's mutator left behind: the user before it, and what `mutate` threw. */
interface Mutation {
  readonly mutate: RecordMutator;
  previous: string | undefined;
  failure: { error: unknown } | undefined;
}

/**
 * `m.mutate` for the store: invalid records are not updated, and what `mutate` throws is the
 * caller's error, not the store's: kept aside (the store sees "no write") and rethrown as it is,
 * never wrapped as a StoreError (which means a 503).
 */
function checkedMutator(m: Mutation): RecordMutator {
  return (cur) => {
    if (!isStoredRecord(cur)) return undefined;
    m.previous = cur.user;
    try {
      return m.mutate(cur);
    } catch (error) {
      m.failure = { error };
      return undefined;
    }
  };
}

function wrap(op: string, err: unknown): Error {
  if (
    err instanceof StoreError ||
    (err instanceof Error && "code" in err &&
      String((err as { code: unknown }).code).startsWith("ERR_SESSION"))
  ) {
    return err;
  }
  return new StoreError(`Cannot ${op} session: store failed`, { cause: err });
}

function noop(): void {}

/**
 * The SessionManager: loads and commits sessions for every adapter, owns the cookies, the
 * client-id mapping and the bridge events.
 * @module
 */
import {
  cookieValue,
  MAX_COOKIE_AGE_MS,
  MAX_COOKIE_HEADER,
  MAX_COOKIE_SIZE,
  resolveCookieOptions,
  type ResolvedCookie,
  serializeCookie,
} from "./cookie.ts";
import {
  CookieTooLargeError,
  describeError,
  ResponseSentError,
  SessionMissingError,
  SessionSerializationError,
} from "./errors.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { isBase64Url, utf8 } from "./encoding.ts";
import { eventStream } from "./event_stream.ts";
import { BoundedMap } from "./sharded_map.ts";
import {
  type BridgeEvent,
  type DestroyReason,
  Emitter,
  type EventFilter,
  type SessionEventMap,
  type SessionListener,
} from "./events.ts";
import { verifyCsrfToken } from "./csrf.ts";
import { generateUid, generateUidEndingAs } from "./id.ts";
import { andThen, isThenable, promiseOf } from "./awaitable.ts";
import { KeyedQueue } from "./keyed_queue.ts";
import {
  ALLOW_SHORT_KEYS,
  type InvalidReason,
  type ResolvedOptions,
  resolveOptions,
  type SessionOptions,
} from "./options.ts";
import { Sealer } from "./sealer.ts";
import {
  copyData,
  hasOwnKeys,
  type Session,
  type SessionData,
  type SessionHost,
  SessionState,
} from "./session.ts";
import { CookieSigner, type IdCodec, Keyring, PlainIds, type Verified } from "./signer.ts";
import { type StoredRecord, type StoreEvent, StoreGateway, type TakenRecord } from "./store.ts";
import { USER_PREFIX } from "./user_index.ts";
import { MapStore, mapStoreSteps } from "./map_store.ts";

/** Store key prefix of client-id → session-id mappings (session ids never contain ':'). */
export const CLIENT_PREFIX = "cid:";
const ATTACHED_LIMIT = 100_000;
/**
 * How long a cleanup on a synchronous store runs before it lets other work run (the event loop's
 * next turn): long enough that the pauses cost little, short enough that requests wait little.
 */
const CLEANUP_SLICE_MS = 10;
/** The longest interval of a timer: 2^31 - 1 ms (a longer one fires at once, over and over). */
export const MAX_TIMER_MS = 2_147_483_647;
const setImmediateOf = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
/**
 * Calls `fn` on a later turn of the event loop, once pending I/O has had its turn: `setImmediate`
 * where there is one (Node, Deno, Bun), else a timer (which Node and browsers delay by 1 ms or
 * more: a tenth of a cleanup's slice).
 */
const nextTurn: (fn: () => void) => unknown = setImmediateOf
  ? (fn) => setImmediateOf(fn)
  : (fn) => setTimeout(fn, 0);
/** How many managers use each MapStore (see `hearsEveryWrite`). */
const mapStoreUsers = new WeakMap<MapStore, number>();
/**
 * How many Cookie headers the manager remembers what it verified in (see
 * `SessionManager.#verifiedHeaders`), and the longest it remembers: 10,000 headers of 512
 * characters kept 7.1 MB alive (Node, measured by a helper's review).
 */
const HEADER_CACHE_LIMIT = 10_000;
const HEADER_CACHE_LENGTH = 512;

/** What a request's Cookie header holds of this manager's cookies. */
interface VerifiedCookies {
  /** The session cookie's value as sent. */
  readonly raw: string | undefined;
  /** What it verified to (store mode), if it did. */
  readonly sid: Verified | undefined;
  /** What the client-id cookie verified to, if it did. */
  readonly cid: Verified | undefined;
  /** The client-id cookie's value as sent. */
  readonly rawCid: string | undefined;
}

/** A Cookie header without this manager's cookies. */
const NO_COOKIES: VerifiedCookies = Object.freeze({
  raw: undefined,
  sid: undefined,
  cid: undefined,
  rawCid: undefined,
});
/** MapStore's own `get` (see `SessionManager.#sharedReads`). */
const MAP_STORE_GET = MapStore.prototype.get;
/** The shape of every id this library issues (sealed records carrying anything else are refused). */
const ID_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

/** What an adapter must send after a request. */
export interface CommitResult {
  /** Set-Cookie header values, in order. */
  cookies: string[];
  /** True when the session cookie is among them and `Cache-Control: no-store` should be sent. */
  noStore: boolean;
}

/** How {@linkcode SessionManager.open} sees the request. */
export interface OpenInit {
  /** The framework context (passed to stores, dynamic cookie options and `onInvalid`). */
  ctx?: unknown;
  /** The request came over https (for `secure: "auto"`). */
  https?: boolean;
}

/** A stateless codec: seals a record into the cookie and back. */
interface Codec {
  seal(value: unknown): Promise<string>;
  unseal(sealed: string): Promise<{ value: unknown; stale: boolean } | undefined>;
}

/** Compact record sealed into the cookie in stateless mode. */
export interface SealedRecord {
  /** The cookie name: a sealed value moved to another cookie (of another manager) is refused. */
  n: string;
  i: string;
  d: SessionData;
  e: number;
  c: number;
  f?: string[];
  m?: number;
  k?: string;
  /** CSRF secret. */
  x?: string;
}

/**
 * Steps of the adapters (a request's commit, the socket adapters' `withSession`), answered
 * synchronously when the store answers synchronously (MapStore), so that they cost no promise
 * per step. Package-internal: not exported from mod.ts.
 */
export interface AdapterSteps {
  /** `commit()`: the result itself when nothing had to be awaited. */
  commit(
    m: SessionManager<object>,
    state: SessionState,
    replacement?: object | null,
  ): CommitResult | Promise<CommitResult>;
  /**
   * A live session's record (the store's answer as it is, or a MapStore's own decoded record:
   * not to be kept or changed), or undefined when it is missing or expired.
   */
  read(
    m: SessionManager<object>,
    sessionId: string,
  ): StoredRecord | undefined | Promise<StoredRecord | undefined>;
  /**
   * `update()`, returning the record's own data (not to be kept or changed). `fn` changes only
   * the draft's top-level keys and keeps no reference to it (the socket adapters' merge), so the
   * draft is written as it is, without a copy.
   */
  update(
    m: SessionManager<object>,
    sessionId: string,
    fn: (draft: SessionData) => void,
  ): object | undefined | Promise<object | undefined>;
  /**
   * True when what {@linkcode read} answers now is exactly what JSON gives back and does not
   * change while it is read (the manager's store is a MapStore, read through its own `get`: its
   * decoded record), so that a reader may keep its values as read without copying them.
   */
  readsExact(m: SessionManager<object>): boolean;
  /**
   * True when activity should renew `rec`'s idle window now (the rolling rule of `touchById`);
   * always for a manager of another copy of this package, whose `touchById` decides.
   */
  touchDue(m: SessionManager<object>, rec: StoredRecord): boolean;
}

/** See {@linkcode AdapterSteps}; filled in by the SessionManager class. */
export const adapterSteps: AdapterSteps = {} as AdapterSteps;

/**
 * Sessions for every adapter: one manager can serve Hono, Koa and socket.io at once.
 * Create it with {@linkcode createSessions}.
 *
 * @typeParam T the shape of the session data
 *
 * @example Usage
 * ```ts
 * import { createSessions, MapStore } from "unisession";
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * sessions.on("sessionSet", ({ sessionId, isNew }) => console.log("saved", isNew));
 * const state = sessions.open(null);
 * state.session.user = "ada";
 * const { cookies } = await sessions.commit(state);
 * console.log(cookies.length); // 2: the session cookie and the client-id cookie
 * ```
 */
export class SessionManager<T extends object = SessionData> {
  readonly #o: ResolvedOptions;
  readonly #gateway: StoreGateway | undefined;
  /** The store, when it is a MapStore (not a subclass): read in place by the sockets. */
  readonly #mapStore: MapStore | undefined;
  /** Its read in place (see {@linkcode AdapterSteps.read}). */
  readonly #sharedRead: ((id: string) => StoredRecord | undefined) | undefined;
  readonly #codec: Codec | undefined;
  readonly #sid: IdCodec | undefined;
  readonly #cid: IdCodec | undefined;
  readonly #emitter: Emitter;
  readonly #attached = new BoundedMap<string, true>(ATTACHED_LIMIT);
  /**
   * Cookie header → what it held of this manager's cookies, for headers whose cookies all
   * verified: a browser sends the same header request after request, which then costs one
   * lookup instead of parsing it for two cookies and looking each up in its signer's cache (4–7 %
   * of a Hono or Koa server's CPU per read, in paired runs). A header seen for the first time
   * costs about 0.5 µs more (hashing it, storing it, evicting the oldest when full): a browser
   * whose cookies change on every request pays that. Bad cookies are not remembered, so each
   * request that sends one reports it.
   */
  readonly #verifiedHeaders = new BoundedMap<string, VerifiedCookies>(HEADER_CACHE_LIMIT);
  readonly #queue = new KeyedQueue();
  readonly #host: SessionHost;
  #cleanupTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * Where #publish puts its promise while the cleanup running emits one of its own events (set
   * around those synchronous calls only: a concurrent request's events are not the cleanup's).
   */
  #collecting: Promise<unknown>[] | undefined;
  /** The cleanup running, if any. */
  #cleaning: Promise<number> | undefined;
  /** This manager's id in cross-instance events (to ignore its own). */
  readonly #origin = generateUid();
  #unsubscribe: (() => void) | undefined;
  #salt: string | undefined;

  static {
    // A manager of another copy of this package (two installs) has none of these private
    // members: its public methods do the same steps, with a promise each.
    const own = (m: object): boolean => #o in m;
    adapterSteps.commit = (m, state, replacement) =>
      own(m) ? m.#commitNow(state, replacement) : m.commit(state, replacement);
    adapterSteps.read = (m, sessionId) =>
      own(m)
        ? m.#readNow(sessionId)
        : m.getById(sessionId).then((data) =>
          data === undefined ? undefined : { data: data as SessionData, expiresAt: 0, createdAt: 0 }
        );
    adapterSteps.update = (m, sessionId, fn) =>
      own(m)
        ? m.#updateNow(sessionId, fn as (draft: object) => void, true)
        : m.update(sessionId, fn as (draft: object) => void);
    adapterSteps.readsExact = (m) => own(m) && m.#sharedReads();
    adapterSteps.touchDue = (m, rec) => !own(m) || m.#renewDue(rec, m.#o.now());
  }

  /**
   * Creates a SessionManager.
   * @param options see {@linkcode SessionOptions}; validated here
   */
  constructor(options: SessionOptions = {}) {
    const o = this.#o = resolveOptions(options);
    this.#emitter = new Emitter((err) =>
      o.logger.warn(`unisession: an event listener threw: ${describeError(err)}`)
    );
    if (o.store) {
      this.#gateway = new StoreGateway(o.store, {
        timeoutMs: o.storeTimeout,
        onCorrupt: () => this.#invalid("corrupt-record", undefined),
        indexUsers: o.identify !== undefined,
        now: o.now,
      });
      if (o.store.subscribe) {
        this.#unsubscribe = o.store.subscribe((event) => this.#onRemote(event));
      }
      if (o.store.constructor === MapStore) {
        const mapStore = this.#mapStore = o.store as MapStore;
        this.#sharedRead = (id) => mapStoreSteps.shared(mapStore, id);
        mapStoreUsers.set(o.store as MapStore, (mapStoreUsers.get(o.store as MapStore) ?? 0) + 1);
      }
      if (o.signed) {
        const ring = new Keyring(o.keys);
        this.#sid = new CookieSigner(ring, o.cookie.name);
        if (o.client) this.#cid = new CookieSigner(ring, o.client.name);
      } else {
        this.#sid = new PlainIds();
        if (o.client) this.#cid = this.#sid;
      }
    } else if (o.encoder) {
      const { encoder } = o;
      const secret = o.keys[0]!;
      this.#codec = {
        // Custom encoders may return any string: URI-encode it for the cookie, as Hono's setCookie
        // does (the cookie parser decodes it again).
        seal: async (v) => encodeURIComponent(await encoder.encode(v, secret)),
        unseal: async (s) => {
          try {
            return { value: await encoder.decode(s, secret), stale: false };
          } catch {
            return undefined;
          }
        },
      };
    } else {
      this.#codec = new Sealer(o.keys);
    }
    if (o.randomKey) {
      o.logger.warn(
        "unisession: no keys given, so a random key was generated: sessions will not survive a restart. " +
          "Pass keys: [...] (≥32 characters each) in production.",
      );
    }
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
      ?.env?.NODE_ENV;
    if (env === "production" && (o.cookie.secure === false || o.client?.secure === false)) {
      o.logger.warn(
        "unisession: NODE_ENV is production but the session cookie has secure: false, so it " +
          'is sent over plain http too. Use secure: "auto" (the default) or true.',
      );
    }
    this.#host = {
      loadSync: (s) => this.#loadSync(s),
      regenerate: (s) => this.#regenerate(s),
      maxAge: o.maxAge,
      renewUnit: o.renewUnit,
    };
  }

  /** `"store"` (signed id cookie, data in the store) or `"sealed"` (data sealed in the cookie). */
  get mode(): "store" | "sealed" {
    return this.#gateway ? "store" : "sealed";
  }

  /** Name of the session cookie. */
  get cookieName(): string {
    return this.#o.cookie.name;
  }

  /** Name of the client-id cookie, or undefined when disabled (always in sealed mode). */
  get clientCookieName(): string | undefined {
    return this.#o.client?.name;
  }

  /** Whether same-session handlers run one at a time (`serialize` option). */
  get serialize(): boolean {
    return this.#o.serialize;
  }

  /** Default idle timeout in ms. */
  get maxAge(): number {
    return this.#o.maxAge;
  }

  /**
   * Whether the store carries session events between instances (it has `subscribe` and
   * `publish`, like RedisStore and DenoKvStore): then every event raised here also reaches the
   * listeners of every other instance, with `remote: true`. False once closed.
   */
  get sharesEvents(): boolean {
    return this.#unsubscribe !== undefined && typeof this.#gateway?.store.publish === "function";
  }

  /**
   * Whether this manager hears of every change of a browser's session (its client-id mapping):
   * the store is a {@linkcode MapStore} (the class itself, not a subclass) that no other manager
   * has been given, and that the app changes only through this manager (or reports changes with
   * `notifyStoreSet`). The socket adapters then trust what the events told them, which session a
   * tracked socket follows, instead of reading the mapping on every `withSession` call. A
   * second manager on the same MapStore turns this off for good.
   */
  get hearsEveryWrite(): boolean {
    const store = this.#gateway?.store;
    return store?.constructor === MapStore && mapStoreUsers.get(store as MapStore) === 1;
  }

  // ---------------------------------------------------------------- events

  /**
   * Adds a listener. Events: `sessionSet`, `sessionDestroy`, `cleanup`.
   * @example Usage
   * ```ts
   * import { createSessions } from "unisession";
   * const sessions = createSessions({ keys: ["a-secret-of-at-least-32-characters!!"] });
   * sessions.on("sessionDestroy", ({ sessionId }) => console.log("logged out"));
   * ```
   */
  on<K extends keyof SessionEventMap>(name: K, listener: SessionListener<K>): this {
    this.#emitter.on(name, listener);
    return this;
  }

  /** Removes a listener added with {@linkcode SessionManager.on}. */
  off<K extends keyof SessionEventMap>(name: K, listener: SessionListener<K>): this {
    this.#emitter.off(name, listener);
    return this;
  }

  /** Adds a listener that runs once. */
  once<K extends keyof SessionEventMap>(name: K, listener: SessionListener<K>): this {
    const wrapper: SessionListener<K> = (payload, origin) => {
      this.#emitter.off(name, wrapper);
      listener(payload, origin);
    };
    this.#emitter.on(name, wrapper);
    return this;
  }

  /**
   * The bridge events as a web `ReadableStream` of objects (`{ type: "sessionSet", ... }`),
   * optionally only one browser's or one session's. Cancel the stream to stop listening. Remote
   * events (from other instances) are included, flagged `remote: true`.
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
   * const reader = sessions.events({ types: ["sessionSet"] }).getReader();
   * const state = sessions.open(null);
   * state.session.user = "ada";
   * await sessions.commit(state);
   * console.log((await reader.read()).value?.type); // "sessionSet"
   * await reader.cancel();
   * ```
   */
  events(filter?: EventFilter): ReadableStream<BridgeEvent> {
    return eventStream(this, filter);
  }

  // ------------------------------------------------------- request lifecycle

  /**
   * Starts a request: verifies the cookies (synchronously, without touching the store).
   * Adapters call this, then {@linkcode SessionManager.prepare}, run the handler, and
   * {@linkcode SessionManager.commit}.
   *
   * @param cookieHeader the request's Cookie header
   * @param init the framework context and whether the request is https
   * @returns the request's session state; its `session` is the session object
   */
  open(cookieHeader: string | null | undefined, init: OpenInit = {}): SessionState {
    const v = this.#verifyCookies(cookieHeader, init.ctx);
    const raw = v.raw;
    const id = v.sid?.value;
    const stale = v.sid?.stale ?? false;
    let clientId: string | undefined;
    let clientFromCookie = false;
    let clientStale = false;
    if (v.cid) {
      clientId = v.cid.value;
      clientFromCookie = true;
      clientStale = v.cid.stale;
    } else if (this.#cid) clientId = generateUid();
    const state = new SessionState(this.#host, {
      ctx: init.ctx,
      https: init.https,
      cookieValue: raw,
      id,
      stale,
      clientId,
      clientFromCookie,
    });
    state.clientStale = clientStale;
    if (v.cid) state.clientRaw = v.rawCid;
    // (Unsigned cookies are their ids: there a client-id cookie must not be a session cookie.)
    else state.clientFree = clientId !== undefined && this.#o.signed;
    if (this.#codec && raw) state.loaded = false; // unsealed in prepare()
    else if (this.#codec && raw === "") this.#invalid("malformed", init.ctx);
    return state;
  }

  /**
   * Loads what cannot load lazily: sealed cookies and records of asynchronous stores.
   * Returns undefined when nothing needs awaiting (no cookie, or a synchronous store).
   */
  prepare(state: SessionState): Promise<void> | undefined {
    if (state.loaded) return undefined;
    if (this.#codec) return this.#unsealInto(state);
    if (this.#gateway!.synchronous) return undefined;
    return this.#loadAsync(state);
  }

  /**
   * Ends a request: writes what changed (nothing when nothing changed) and returns the
   * Set-Cookie values. A failed store read earlier in the request means no write at all.
   *
   * @throws {ResponseSentError} when called twice for one request
   * @throws {CookieTooLargeError} in sealed mode when the cookie would exceed 4096 bytes
   * @throws {StoreError} when the store fails
   */
  commit(state: SessionState, replacement?: object | null): Promise<CommitResult> {
    return promiseOf(() => this.#commitNow(state, replacement));
  }

  /** {@linkcode commit}, answered synchronously when the store answers synchronously. */
  #commitNow(
    state: SessionState,
    replacement: object | null | undefined,
  ): CommitResult | Promise<CommitResult> {
    if (state.closed) throw new ResponseSentError();
    if (state.pending) {
      return state.pending.then(() => {
        if (state.regenerateFailure) throw state.regenerateFailure.error;
        return this.#commitReady(state, replacement);
      });
    }
    return this.#commitReady(state, replacement);
  }

  #commitReady(
    state: SessionState,
    replacement: object | null | undefined,
  ): CommitResult | Promise<CommitResult> {
    if (replacement === null) state.destroyed = true;
    else if (replacement !== undefined) state.replaceData(replacement);
    state.closed = true;
    const out: CommitResult = { cookies: [], noStore: false };
    let saved: void | Promise<void> = undefined;
    if (!state.loadFailed) {
      if (state.destroyed) saved = this.#commitDestroy(state, out);
      else if (state.loaded || state.stale) saved = this.#commitWrite(state, out);
    }
    if (isThenable(saved)) {
      return saved.then(() => {
        this.#clientCookie(state, out);
        return out;
      });
    }
    this.#clientCookie(state, out);
    return out;
  }

  // ---------------------------------------------------------------- by id

  /**
   * Reads a session's data by id.
   * @returns a copy of the data, or undefined when missing or expired
   */
  async getById(sessionId: string): Promise<T | undefined> {
    if (isReservedId(sessionId)) return undefined;
    const rec = await this.#gatewayOrThrow().get(sessionId);
    return rec && !this.#expired(rec, this.#o.now()) ? copyData(rec.data) as T : undefined;
  }

  /**
   * A live session's record, without a promise when the store is synchronous; a MapStore's own
   * decoded record (see {@linkcode AdapterSteps.read}).
   */
  #readNow(sessionId: string): StoredRecord | undefined | Promise<StoredRecord | undefined> {
    if (isReservedId(sessionId)) return undefined;
    const gateway = this.#gatewayOrThrow();
    if (this.#sharedReads()) return this.#live(gateway.getSyncWith(sessionId, this.#sharedRead!));
    if (gateway.synchronous) return this.#live(gateway.getSync(sessionId));
    return gateway.get(sessionId).then((rec) => this.#live(rec));
  }

  /**
   * True when the store is a MapStore whose records can be read in place (see
   * {@linkcode AdapterSteps.read}): not one whose `get` was replaced on the instance (a test's
   * failing store, say), which is then called as any store's.
   */
  #sharedReads(): boolean {
    const store = this.#mapStore;
    return store !== undefined && store.get === MAP_STORE_GET;
  }

  #live(rec: StoredRecord | undefined): StoredRecord | undefined {
    return rec && !this.#expired(rec, this.#o.now()) ? rec : undefined;
  }

  /**
   * Replaces a session's data. Sessions are created over HTTP only, so a missing session throws.
   * The idle window renews with a new `maxAge`, else once less than half of it remains.
   * @param maxAge a new idle window in ms (default: the session's current one)
   * @throws {SessionMissingError} when the session does not exist
   * @throws {TypeError} when `data` is not a plain object (an array included)
   * @throws {RangeError} when `maxAge` is not a positive finite number of ms (over 400 days, it is
   * capped at 400 days, as `session.maxAge` is)
   */
  async setById(sessionId: string, data: T, maxAge?: number): Promise<boolean> {
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      throw new TypeError("Cannot set session: data must be an object");
    }
    if (maxAge !== undefined) {
      if (!(typeof maxAge === "number" && maxAge > 0 && Number.isFinite(maxAge))) {
        throw new RangeError("Cannot set session: maxAge must be a positive finite number of ms");
      }
      // Capped as session.maxAge is: browsers keep a cookie at most 400 days.
      maxAge = Math.min(maxAge, Math.max(MAX_COOKIE_AGE_MS, this.#o.maxAge));
    }
    const now = this.#o.now();
    const rec = !isReservedId(sessionId) &&
      await this.#gatewayOrThrow().update(sessionId, (cur) => {
        if (this.#expired(cur, now)) return undefined;
        const keep = maxAge === undefined && !this.#renewDue(cur, now);
        return this.#nextRecord(cur, copyData(data), now, maxAge ?? cur.maxAge, cur.flash, keep);
      });
    if (!rec) {
      throw new SessionMissingError(
        "Cannot set session: it does not exist (sessions are created over HTTP)",
      );
    }
    this.#emitSet(sessionId, rec.clientId, false);
    return true;
  }

  /**
   * Atomic read-modify-write of a session's data: never loses an increment, across processes when
   * the store has `update()`. `fn` mutates the draft (or returns new data, or `null` to destroy);
   * it must be synchronous and may run more than once under optimistic concurrency. What `fn`
   * throws rejects the call as it is, and nothing is written. Like every write, it renews the
   * idle window only once less than half of it remains (the expiry the browser's cookie states
   * stays right until then).
   *
   * @returns the new data, or undefined when the session is missing (or was destroyed)
   * @throws {TypeError} when `fn` returns a promise, or anything but undefined, null or an object
   * @throws {StoreError} when the store fails
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
   * const state = sessions.open(null);
   * state.session.count = 0;
   * await sessions.commit(state);
   * await sessions.update(state.id!, (data) => { data.count = (data.count as number) + 1; });
   * console.log((await sessions.getById(state.id!))?.count); // 1
   * ```
   */
  update(sessionId: string, fn: (draft: T) => T | void | null): Promise<T | undefined> {
    return promiseOf(() => andThen(this.#updateNow(sessionId, fn), (d) => d && copyData(d) as T));
  }

  /**
   * {@linkcode update}, answered synchronously when the store answers synchronously (MapStore).
   * `merge`: `fn` is the adapters' (see {@linkcode AdapterSteps.update}), its draft written as is.
   * @returns the data written (the record's own object: not to be kept or changed)
   * @throws what `fn` throws, and a StoreError when the store fails
   */
  #updateNow(
    sessionId: string,
    fn: (draft: T) => T | void | null,
    merge = false,
  ): T | undefined | Promise<T | undefined> {
    if (isReservedId(sessionId)) return undefined;
    const now = this.#o.now();
    let destroy = false;
    const rec = this.#gatewayOrThrow().updateNow(sessionId, (cur) => {
      if (this.#expired(cur, now)) return undefined;
      const draft = copyData(cur.data) as T;
      const result = fn(draft);
      if (result === null) {
        destroy = true;
        return undefined;
      }
      if (result && typeof (result as unknown as Promise<unknown>).then === "function") {
        throw new TypeError(
          "Cannot update session: fn must be synchronous (use withSession for async work)",
        );
      }
      if (result !== undefined && (typeof result !== "object" || Array.isArray(result))) {
        throw new TypeError(
          "Cannot update session: fn must change the draft, or return an object or null",
        );
      }
      // A function of the application may keep the draft (or what it returns) and change it later.
      const data = merge && result === undefined ? draft as SessionData : copyData(result ?? draft);
      return this.#nextRecord(cur, data, now, cur.maxAge, cur.flash, !this.#renewDue(cur, now));
    });
    return andThen(rec, (r) => this.#updated(sessionId, r, destroy));
  }

  /** After {@linkcode update}'s write: the destroy `fn` asked for, or the event. */
  #updated(
    sessionId: string,
    rec: StoredRecord | undefined,
    destroy: boolean,
  ): T | undefined | Promise<undefined> {
    if (destroy) return this.destroyById(sessionId).then(() => undefined);
    if (!rec) return undefined;
    this.#emitSet(sessionId, rec.clientId, false);
    return rec.data as T;
  }

  /**
   * Destroys a session by id: its sockets are disconnected (or notified) on every instance.
   * With `options.user` (needs the `identify` option), only when the session belongs to that
   * user: the safe way to let a user revoke one of their devices by an id the client sent.
   * @param options `user`: destroy only a session of this user
   * @returns true when a session was removed
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   *   identify: (data) => data.userId,
   * });
   * const state = sessions.open(null);
   * state.session.userId = "ada";
   * await sessions.commit(state);
   * console.log(await sessions.destroyById(state.id!, { user: "bob" })); // false: not bob's
   * console.log(await sessions.destroyById(state.id!, { user: "ada" })); // true
   * ```
   */
  async destroyById(sessionId: string, options: { user?: string | number } = {}): Promise<boolean> {
    if (isReservedId(sessionId)) return false;
    if (options.user === undefined) {
      return this.#destroy(sessionId, undefined, undefined, undefined, "destroy");
    }
    const user = this.#userArg(options.user);
    const rec = await this.#gatewayOrThrow().get(sessionId);
    if (rec?.user !== user) return false;
    return this.#destroy(sessionId, rec, undefined, undefined, "destroy");
  }

  /**
   * Keeps a session alive without changing its data (for activity that is not an HTTP request,
   * such as socket events). Follows the rolling rule: writes only once less than half of the
   * idle window remains, unless `force` is set.
   * @returns true when the session exists (whether or not a write was needed)
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
   * console.log(await sessions.touchById("no-such-session")); // false
   * ```
   */
  async touchById(sessionId: string, options: { force?: boolean } = {}): Promise<boolean> {
    if (isReservedId(sessionId)) return false;
    const now = this.#o.now();
    let exists = false;
    await this.#gatewayOrThrow().update(sessionId, (cur) => {
      if (this.#expired(cur, now)) return undefined;
      exists = true;
      if (!options.force && !this.#renewDue(cur, now)) return undefined;
      return this.#nextRecord(cur, cur.data, now, cur.maxAge, cur.flash);
    });
    return exists;
  }

  /**
   * Checks a CSRF token against a session's secret, by id (for sockets and other non-HTTP
   * callers; HTTP handlers use `session.verifyCsrf`).
   * @returns false when the session is missing, expired, has no secret, or the token is not its own
   * @throws {StoreError} when the store fails
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
   * const state = sessions.open(null);
   * const token = state.session.csrfToken();
   * await sessions.commit(state);
   * console.log(await sessions.verifyCsrfById(state.id!, token)); // true
   * ```
   */
  async verifyCsrfById(sessionId: string, token: unknown): Promise<boolean> {
    if (typeof sessionId !== "string") return false;
    const rec = await this.#gatewayOrThrow().get(sessionId);
    return rec !== undefined && !this.#expired(rec, this.#o.now()) &&
      verifyCsrfToken(rec.csrf, token);
  }

  /**
   * The browser's current session id, through the client-id mapping kept in the store; without
   * a mapping, the browser's first session, whose id is its client id (while it lives).
   */
  async getSessionId(clientId: string): Promise<string | undefined> {
    if (typeof clientId !== "string" || clientId === "") return undefined; // names no browser
    const gateway = this.#gatewayOrThrow();
    // Both at once: one round trip to a networked store, as with the mapping alone.
    // (Only an id can be a first session's: not a store key of another kind.)
    const [m, first] = await Promise.all([
      gateway.get(CLIENT_PREFIX + clientId),
      ID_SHAPE.test(clientId) ? gateway.get(clientId) : undefined,
    ]);
    const now = this.#o.now();
    if (m) return typeof m.sid === "string" && !this.#expired(m, now) ? m.sid : undefined;
    return first && first.clientId === clientId && !this.#expired(first, now)
      ? clientId
      : undefined;
  }

  /** Data of the browser's current session, or undefined. */
  async getByClientId(clientId: string): Promise<T | undefined> {
    const sid = await this.getSessionId(clientId);
    return sid === undefined ? undefined : this.getById(sid);
  }

  /** Replaces the data of the browser's current session. @throws {SessionMissingError} */
  async setByClientId(clientId: string, data: T, maxAge?: number): Promise<boolean> {
    const sid = await this.getSessionId(clientId);
    if (sid === undefined) {
      throw new SessionMissingError("Cannot set session: no session for this client");
    }
    return this.setById(sid, data, maxAge);
  }

  /** Destroys the browser's current session. @returns true when one was removed */
  async destroyByClientId(clientId: string): Promise<boolean> {
    const sid = await this.getSessionId(clientId);
    return sid === undefined ? false : this.destroyById(sid);
  }

  /**
   * Verifies a Cookie header without creating anything (for socket handshakes).
   * @returns the verified session id and client id, when present and valid
   */
  readCookies(
    cookieHeader: string | null | undefined,
    ctx?: unknown,
  ): { sessionId?: string; clientId?: string } {
    const out: { sessionId?: string; clientId?: string } = {};
    const v = this.#verifyCookies(cookieHeader, ctx);
    if (v.sid) out.sessionId = v.sid.value;
    if (v.cid) out.clientId = v.cid.value;
    return out;
  }

  /**
   * Ends a request without saving anything (the handler failed): no half-written session.
   * Only a missing client-id cookie is still issued.
   */
  abandon(state: SessionState): CommitResult {
    state.closed = true;
    const out: CommitResult = { cookies: [], noStore: false };
    this.#clientCookie(state, out);
    return out;
  }

  /**
   * The browser's client id for a request: its session's own once a session cookie was sent (the
   * record is read first, as the session's first use would), else the client-id cookie's or the
   * one made for this request. Undefined without the client-id cookie option.
   * @throws {StoreError} when that read fails
   *
   * @example
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   *
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   * });
   * const state = sessions.open(null); // a browser's first request
   * await sessions.prepare(state);
   * state.session.visits = 1;
   * console.log(sessions.clientIdOf(state) === sessions.sessionIdOf(state)); // true: its first session
   * ```
   */
  clientIdOf(state: SessionState): string | undefined {
    if (state.id !== undefined && !state.loaded) state.ensureLoaded();
    return state.clientId;
  }

  /**
   * The session id of a request, assigning one now to a new session so that it is known in the
   * very request that creates it. Undefined once the session is destroyed.
   */
  sessionIdOf(state: SessionState): string | undefined {
    if (state.destroyed) return undefined;
    state.ensureLoaded();
    return state.id ??= this.#newId(state);
  }

  /** Runs `fn` after every earlier `fn` for the same key (per-session serialisation). */
  runExclusive<R>(key: string, fn: () => R | PromiseLike<R>): Promise<R> {
    return this.#queue.run(key, fn);
  }

  // ------------------------------------------------------- per-user sessions

  /**
   * The sessions of a user (needs the `identify` option): one entry per live session, oldest
   * first, with what the `describe` option recorded. Costs O(sessions of the user): the store
   * keeps an index user → sessions, updated with every write of a session record.
   *
   * `lastSeenAt` is the time of the session's last write: a change of its data, its creation,
   * or the rolling renewal once less than half of the idle window remains. Reads alone write
   * nothing, so it is exact to within half the idle window (`maxAge / 2`).
   *
   * @param userId the user, as `identify` returns it (a number is compared as its string)
   * @returns the user's sessions; `[]` when there are none
   * @throws {TypeError} when the `identify` option is not set or `userId` is empty
   * @throws {StoreError} when the store fails
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   *   identify: (data) => data.userId,
   *   describe: () => ({ device: "laptop" }),
   * });
   * const state = sessions.open(null);
   * state.session.userId = "ada";
   * await sessions.commit(state);
   * const [first] = await sessions.listByUser("ada");
   * console.log(first.sessionId === state.id, first.meta); // true { device: "laptop" }
   * ```
   */
  async listByUser(userId: string | number): Promise<UserSession[]> {
    const user = this.#userArg(userId);
    const now = this.#o.now();
    const listed = await this.#gatewayOrThrow().listUser(user);
    const out: UserSession[] = [];
    for (const [sessionId, rec] of listed) {
      if (this.#expired(rec, now)) continue;
      const entry: UserSession = {
        sessionId,
        createdAt: rec.createdAt,
        lastSeenAt: rec.seenAt ?? rec.createdAt,
        expiresAt: rec.expiresAt,
      };
      if (rec.clientId !== undefined) entry.clientId = rec.clientId;
      if (rec.meta !== undefined) entry.meta = rec.meta;
      out.push(entry);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }

  /**
   * Destroys every session of a user ("log out everywhere"), or every one but `except` ("log
   * out my other devices"). Each raises `sessionDestroy` (reason `"destroy"`), so the sessions'
   * sockets are disconnected (or notified) on every instance, as on logout. Sessions created
   * after the call started are kept.
   *
   * @param userId the user, as `identify` returns it
   * @param options `except`: the id of a session to keep (usually the caller's own)
   * @returns the number of sessions destroyed
   * @throws {TypeError} when the `identify` option is not set or `userId` is empty
   * @throws {StoreError} when the store fails
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   *   identify: (data) => data.userId,
   * });
   * const ids: string[] = [];
   * for (let device = 0; device < 3; device++) {
   *   const state = sessions.open(null);
   *   state.session.userId = "ada";
   *   await sessions.commit(state);
   *   ids.push(state.id!);
   * }
   * console.log(await sessions.destroyByUser("ada", { except: ids[0] })); // 2
   * console.log((await sessions.listByUser("ada")).length); // 1
   * ```
   */
  async destroyByUser(
    userId: string | number,
    options: { except?: string } = {},
  ): Promise<number> {
    const user = this.#userArg(userId);
    const now = this.#o.now();
    const listed = await this.#gatewayOrThrow().listUser(user);
    const ended = await Promise.all(
      listed.map(([id, rec]) =>
        id === options.except || this.#expired(rec, now)
          ? false
          : this.#destroy(id, rec, undefined, undefined, "destroy")
      ),
    );
    return ended.filter(Boolean).length;
  }

  /** Sets `user` (and `seenAt`) of a record being written, and keeps its `meta`. */
  #stampUser(rec: StoredRecord, cur: StoredRecord | undefined, now: number): void {
    if (cur?.meta !== undefined) rec.meta = cur.meta;
    const identify = this.#o.identify;
    if (!identify) return;
    const user = userIdOf(identify(rec.data));
    if (user === undefined) return;
    rec.user = user;
    rec.seenAt = now;
  }

  /** Records the `describe` option's metadata in a new session's record. */
  #describeInto(rec: StoredRecord, ctx: unknown): void {
    const describe = this.#o.describe;
    if (!describe) return;
    try {
      const meta = describe(ctx);
      if (meta === undefined || meta === null) return;
      if (typeof meta !== "object" || Array.isArray(meta)) {
        throw new TypeError("describe must return an object or undefined");
      }
      rec.meta = copyData(meta);
    } catch (err) {
      this.#o.logger.warn(`unisession: describe failed: ${describeError(err)}`);
    }
  }

  /** A user id argument of the per-user methods, validated. */
  #userArg(userId: string | number): string {
    if (!this.#o.identify) {
      throw new TypeError("Cannot look up sessions by user: the identify option is not set");
    }
    const user = userIdOf(userId);
    if (user === undefined) {
      throw new TypeError("Cannot look up sessions by user: userId must not be empty");
    }
    return user;
  }

  // ------------------------------------------------- direct store writes

  /**
   * Announces a record that was written to the store directly, bypassing the manager, so that
   * `sessionSet` listeners and sockets follow (koa-io-session v3's `notifyStoreSet`). Reads the
   * record for its client id in the background; a failure is logged.
   */
  notifyStoreSet(sessionId: string, isNew = false): void {
    const gateway = this.#gatewayOrThrow();
    Promise.resolve(gateway.get(sessionId)).then((rec) => {
      if (rec) this.#emitSet(sessionId, rec.clientId, isNew);
    }).catch((err) =>
      this.#o.logger.warn(`unisession: notifyStoreSet failed: ${describeError(err)}`)
    );
  }

  /** Announces a record that was removed from the store directly (`sessionDestroy`). */
  notifyStoreDestroy(sessionId: string, clientId?: string): void {
    this.#gatewayOrThrow();
    this.#emitDestroy(sessionId, clientId, "destroy");
  }

  /** Announces a cleanup done on the store directly (`cleanup` with the count). */
  notifyStoreCleanup(clearedCount: number): void {
    this.#emitter.emit("cleanup", clearedCount);
    this.#publish({ type: "cleanup", count: clearedCount, origin: this.#origin });
  }

  // --------------------------------------------------------------- cleanup

  /**
   * Removes expired sessions (and their client mappings), emitting `sessionDestroy` for each and
   * `cleanup` with the count. Needs a store with `list()` (or `takeExpired()`). Requests go on
   * being served meanwhile: on a synchronous store (MapStore) it lets other work run every
   * 10 ms. A call while a cleanup is running gets that cleanup's result.
   * @returns the number of sessions removed
   *
   * @example Usage
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   * });
   * sessions.on("cleanup", (count) => console.log(`${count} expired sessions removed`));
   * const removed = await sessions.cleanup(); // the server keeps answering meanwhile
   * console.log(removed); // 0: nothing has expired yet
   * sessions.startAutoCleanup(); // or let it run every maxAge / 4
   * sessions.stopAutoCleanup();
   * ```
   */
  cleanup(): Promise<number> {
    if (this.#cleaning) return this.#cleaning;
    const published: Promise<unknown>[] = [];
    // Resolves once its events are published too: a store closed right after an awaited cleanup
    // (DenoKvStore) would otherwise refuse them, and other instances would never hear of them.
    const run = this.#cleanup(published).then(async (count) => {
      await settledWithin(published, this.#o.storeTimeout);
      return count;
    }).finally(() => {
      this.#cleaning = undefined;
    });
    this.#cleaning = run;
    return run;
  }

  /** Runs `emit` (a cleanup's own event) with the publish it makes collected in `published`. */
  #collect(published: Promise<unknown>[], emit: () => void): void {
    this.#collecting = published;
    try {
      emit();
    } finally {
      this.#collecting = undefined;
    }
  }

  async #cleanup(published: Promise<unknown>[]): Promise<number> {
    const gateway = this.#gatewayOrThrow();
    const now = this.#o.now();
    const sync = gateway.listSync(now, CLIENT_PREFIX);
    let count = 0;
    if (sync) count = await this.#cleanupSync(gateway, sync.batches, sync.taken, now, published);
    else {
      for await (const [id, rec] of gateway.list()) {
        if (id.startsWith(USER_PREFIX)) {
          // A fallback user index record: it outlives its sessions, whatever their createdAt.
          if (rec.expiresAt <= now) await gateway.sweepUserIndex(id);
          continue;
        }
        if (!this.#expired(rec, now)) continue;
        await gateway.delete(id, undefined, rec);
        if (id.startsWith(CLIENT_PREFIX)) continue;
        count++;
        if (rec.clientId) await this.#unlinkClient(rec.clientId, id);
        this.#collect(published, () => this.#emitDestroy(id, rec.clientId, "expired"));
      }
    }
    this.#emitter.emit("cleanup", count);
    this.#collect(
      published,
      () => this.#publish({ type: "cleanup", count, origin: this.#origin }),
    );
    await gateway.store.afterCleanup?.(count);
    return count;
  }

  /**
   * {@linkcode cleanup} on a synchronous store (MapStore): the same steps without a promise per
   * record, over the batches of records the store took (removed already) or listed. Every
   * CLEANUP_SLICE_MS it lets other work run (the event loop's next turn) before the next batch,
   * so that a cleanup of millions of sessions does not stop the server for seconds.
   */
  async #cleanupSync(
    gateway: StoreGateway,
    batches: Iterable<TakenRecord[]>,
    taken: boolean,
    now: number,
    published: Promise<unknown>[],
  ): Promise<number> {
    let count = 0;
    const pending: Promise<void>[] = [];
    const remove = (id: string) => {
      const p = gateway.deleteSync(id);
      if (p) pending.push(p);
    };
    let loopError: { error: unknown } | undefined;
    let sliceEnd = performance.now() + CLEANUP_SLICE_MS;
    try {
      // The events' publishes are collected while the loop runs (synchronously, between the
      // turns it lets other work have: their publishes are not the cleanup's).
      this.#collecting = published;
      for (const batch of batches) {
        if (performance.now() >= sliceEnd) {
          this.#collecting = undefined;
          await new Promise<void>((resolve) => nextTurn(resolve));
          this.#collecting = published;
          sliceEnd = performance.now() + CLEANUP_SLICE_MS;
        }
        for (const entry of batch) {
          const id = entry[0];
          const rec = entry[1];
          // The id's characters are read only when the record may be one of the manager's own
          // (a user index or a client mapping: neither has a client id, a mapping has a `sid`):
          // in a store of millions each id read is a cache miss (150 ms per 1,000,000 on Bun).
          const own = rec.clientId === undefined || rec.sid !== undefined;
          if (own && id.startsWith(USER_PREFIX)) {
            if (!taken && rec.expiresAt <= now) remove(id);
            continue;
          }
          // Taken records are gone (they read as missing already): the store's clock expired them.
          if (!taken) {
            if (!this.#expired(rec, now)) continue;
            remove(id);
          }
          if (own && id.startsWith(CLIENT_PREFIX)) continue;
          count++;
          const clientId = rec.clientId;
          // The client mapping goes too if it still names this session, unless the store took it
          // along (in a store of 2,000,000 records, reading it back costs about as much as all the
          // rest of the cleanup of a session).
          try {
            if (clientId && !(taken && entry[2] === true) && clientId !== id) {
              const key = CLIENT_PREFIX + clientId;
              if (gateway.getSync(key)?.sid === id) remove(key);
            }
          } finally {
            this.#emitDestroy(id, clientId, "expired"); // gone from the store, whatever failed
          }
        }
      }
    } catch (err) {
      loopError = { error: err };
    } finally {
      this.#collecting = undefined;
    }
    // Settle every delete the store answered with a promise, even when the loop failed.
    const failed = (await Promise.allSettled(pending)).find((r) => r.status === "rejected");
    if (loopError) throw loopError.error;
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return count;
  }

  /**
   * Runs {@linkcode SessionManager.cleanup} every `intervalMs` (default: maxAge / 4, between one
   * minute and one day). The timer does not keep the process alive where the runtime allows.
   * @returns false when auto-cleanup was already running
   * @throws {RangeError} when `intervalMs` is not a positive number of ms up to 2^31 - 1 (about
   * 24.8 days: a longer timer would fire at once, in a loop)
   */
  startAutoCleanup(intervalMs?: number): boolean {
    if (this.#cleanupTimer !== undefined) return false;
    this.#gatewayOrThrow();
    const ms = intervalMs ?? Math.min(86_400_000, Math.max(60_000, this.#o.maxAge / 4));
    if (!(typeof ms === "number" && ms > 0 && ms <= MAX_TIMER_MS)) {
      throw new RangeError(
        "Cannot start auto-cleanup: interval must be a positive number of ms up to 2147483647",
      );
    }
    const timer = setInterval(() => {
      this.cleanup().catch((err) =>
        this.#o.logger.warn(`unisession: auto-cleanup failed: ${describeError(err)}`)
      );
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    this.#cleanupTimer = timer;
    return true;
  }

  /**
   * Stops auto-cleanup and the subscription to other instances' events (the store itself stays
   * open: close it yourself). The manager still serves requests afterwards.
   */
  close(): void {
    this.stopAutoCleanup();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Stops auto-cleanup. @returns false when it was not running */
  stopAutoCleanup(): boolean {
    if (this.#cleanupTimer === undefined) return false;
    clearInterval(this.#cleanupTimer);
    this.#cleanupTimer = undefined;
    return true;
  }

  // -------------------------------------------------------------- internals

  #gatewayOrThrow(): StoreGateway {
    if (!this.#gateway) {
      throw new TypeError(
        "Cannot look up sessions by id: stateless (sealed-cookie) mode has no store",
      );
    }
    return this.#gateway;
  }

  /** Parses and verifies both cookies, reporting what is invalid to `onInvalid`. */
  #verifyCookies(header: string | null | undefined, ctx: unknown): VerifiedCookies {
    if (!header) return NO_COOKIES;
    if (typeof header !== "string") {
      throw new TypeError("Cannot read session cookies: the Cookie header must be a string");
    }
    const cacheable = header.length <= HEADER_CACHE_LENGTH;
    if (cacheable) {
      const seen = this.#verifiedHeaders.get(header);
      if (seen !== undefined) return seen;
    }
    if (header.length > MAX_COOKIE_HEADER) this.#invalid("too-large", ctx);
    const raw = cookieValue(header, this.#o.cookie.name);
    let sid: Verified | undefined;
    let bad = false;
    if (raw !== undefined && this.#sid) {
      sid = this.#sid.verify(raw);
      if (!sid) {
        bad = true;
        this.#invalid(raw === "" ? "malformed" : "signature", ctx);
      }
    }
    let cid: Verified | undefined;
    const rawCid = this.#o.client ? cookieValue(header, this.#o.client.name) : undefined;
    if (rawCid !== undefined) {
      cid = this.#cid!.verify(rawCid);
      if (!cid) {
        bad = true;
        this.#invalid("client-signature", ctx);
      }
    }
    if (raw === undefined && rawCid === undefined) return NO_COOKIES;
    const found: VerifiedCookies = Object.freeze({ raw, sid, cid, rawCid });
    if (cacheable && !bad) this.#verifiedHeaders.set(header, found);
    return found;
  }

  /**
   * A debug line; callers check `this.#o.debug` first, so no message is built when it is off.
   * Ids appear only as a salted hash (`#tag`).
   */
  #debug(message: string): void {
    this.#o.logger.debug?.(`unisession: ${message}`);
  }

  /** A short salted hash of an id, for debug lines: stable within this process, useless outside. */
  #tag(id: string | undefined): string {
    if (id === undefined) return "-";
    this.#salt ??= generateUid();
    return bytesToHex(sha256(utf8(this.#salt + id))).slice(0, 8);
  }

  #invalid(reason: InvalidReason, ctx: unknown): void {
    if (this.#o.debug) this.#debug(`no session (${reason})`);
    if (this.#o.onInvalid) {
      try {
        this.#o.onInvalid(reason, ctx);
      } catch (err) {
        this.#o.logger.warn(`unisession: onInvalid threw: ${describeError(err)}`);
      }
    }
  }

  #expired(rec: Pick<StoredRecord, "expiresAt" | "createdAt">, now: number): boolean {
    return rec.expiresAt <= now || rec.createdAt + this.#o.absoluteMaxAge <= now;
  }

  #accept(state: SessionState, rec: StoredRecord | undefined): void {
    if (rec && this.#expired(rec, this.#o.now())) {
      this.#invalid("expired", state.ctx);
      rec = undefined;
    } else if (!rec) this.#invalid("unknown-id", state.ctx);
    if (rec?.clientId !== undefined && this.#cid && rec.clientId !== state.clientId) {
      // The session keeps its own client id over another one the browser sent (planted from a
      // sibling domain, or re-sent by a request that raced a login that rotated it): moving the
      // session to it would hand it to whoever holds that id. Its cookie is sent again.
      state.replaceClient(rec.clientId, false);
    }
    state.applyRecord(rec);
  }

  #loadSync(state: SessionState): void {
    if (!this.#gateway?.synchronous) {
      throw new Error(
        "Cannot read session: it was not loaded (adapter must await manager.prepare())",
      );
    }
    let rec: StoredRecord | undefined;
    try {
      rec = this.#gateway.getSync(state.id!, state.ctx);
    } catch (err) {
      state.loadFailed = true;
      throw err;
    }
    this.#accept(state, rec);
  }

  async #loadAsync(state: SessionState): Promise<void> {
    let rec: StoredRecord | undefined;
    try {
      rec = await this.#gateway!.get(state.id!, state.ctx);
    } catch (err) {
      state.loadFailed = true;
      throw err;
    }
    this.#accept(state, rec);
  }

  async #unsealInto(state: SessionState): Promise<void> {
    const result = await this.#codec!.unseal(state.cookieValue!);
    const s = result?.value as SealedRecord | undefined;
    if (
      !s || typeof s !== "object" || s.n !== this.#o.cookie.name ||
      typeof s.i !== "string" || !ID_SHAPE.test(s.i) ||
      !s.d || typeof s.d !== "object" ||
      Array.isArray(s.d) || !Number.isFinite(s.e) || !Number.isFinite(s.c)
    ) {
      this.#invalid("sealed", state.ctx);
      state.applyRecord(undefined);
      return;
    }
    state.id = s.i;
    state.stale = result!.stale;
    state.clientId = s.k;
    const rec: StoredRecord = {
      data: s.d,
      expiresAt: s.e,
      createdAt: s.c,
      flash: s.f,
      maxAge: s.m,
    };
    if (typeof s.x === "string") rec.csrf = s.x;
    this.#accept(state, rec);
    if (!state.record) state.id = undefined;
  }

  async #regenerate(state: SessionState): Promise<void> {
    if (state.closed) throw new ResponseSentError();
    if (!state.loaded) await this.prepare(state);
    state.ensureLoaded();
    const old = state.isNew ? undefined : state.id;
    if (old !== undefined && this.#gateway) {
      // Read again: a logout, a revocation (destroyByUser) or an expiry since this request loaded
      // the session ended it, and a new id must not bring its data back. The login goes on from
      // an empty session.
      const current = this.#live(await this.#gateway.get(old, state.ctx));
      if (current === undefined) {
        // What this request wrote stays (a login's user id, set before or while this ran).
        for (const k of Object.keys(state.data)) {
          if (state.dirty?.has(k)) continue;
          delete state.data[k];
          state.flashNew?.delete(k);
        }
        state.flashOld = undefined;
      } else await this.#destroy(old, current, state.clientId, state.ctx, "regenerate");
    } else if (old !== undefined) {
      this.#emitDestroy(old, state.clientId, "regenerate");
    }
    if (state.cookieValue) this.#sid?.forget(state.cookieValue);
    if (this.#o.client?.rotateOnRegenerate && state.clientId !== undefined) {
      // The old client id was unlinked with the old session (#destroy); the new one is linked
      // and its cookie sent with the new session.
      // A new session may take it as its id only when ids are signed (see open()).
      state.replaceClient(generateUid(), this.#o.signed);
    }
    state.id = this.#newId(state);
    state.isNew = true;
    state.record = undefined;
    state.regenerated = true;
    state.destroyed = false;
    // A login rotates the CSRF secret: tokens handed out before it stop working.
    state.csrf = undefined;
    state.csrfChanged = false;
    for (const k of Object.keys(state.data)) state.markDirty(k);
  }

  #cookieFor(state: SessionState): ResolvedCookie {
    const fn = this.#o.cookieFn;
    return fn
      ? resolveCookieOptions(this.#o.cookie.name, { ...this.#o.cookie, ...fn(state.ctx) })
      : this.#o.cookie;
  }

  #pushSessionCookie(
    state: SessionState,
    out: CommitResult,
    value: string,
    maxAgeMs: number,
  ): void {
    const c = this.#cookieFor(state);
    const header = serializeCookie(
      c,
      value,
      // Browsers keep a cookie at most 400 days (a window set longer by setById: capped here).
      c.persistent || maxAgeMs === 0
        ? Math.min(Math.max(0, maxAgeMs), MAX_COOKIE_AGE_MS)
        : undefined,
      state.https,
    );
    if (header.length > MAX_COOKIE_SIZE) throw new CookieTooLargeError(header.length);
    out.cookies.push(header);
    out.noStore = this.#o.noStore;
    state.sessionCookieSent = true;
  }

  #clientCookie(state: SessionState, out: CommitResult): void {
    const c = this.#o.client;
    if (!c || state.clientId === undefined) return;
    const current = state.clientFromCookie && !state.clientStale;
    // Re-sent (rolling its year) with every new session, on every response with alwaysRoll.
    if (current && !c.alwaysRoll && !(state.sessionCookieSent && state.isNew)) return;
    const value = current && state.clientRaw !== undefined
      ? state.clientRaw // the verified cookie as received: no new MAC needed
      : this.#cid!.sign(state.clientId);
    // Without a lifetime of its own it ends with a browser-session cookie (dynamic options too).
    const persistent = c.lifetimeGiven ? c.persistent : this.#cookieFor(state).persistent;
    out.cookies.push(serializeCookie(c, value, persistent ? c.maxAge : undefined, state.https));
  }

  async #commitDestroy(state: SessionState, out: CommitResult): Promise<void> {
    const id = state.id;
    if (id !== undefined && !state.regenerated && !(state.loaded && state.isNew)) {
      if (this.#gateway) {
        const known = state.loaded ? state.record : undefined;
        await this.#destroy(id, known, state.clientId, state.ctx, "destroy");
      } else this.#emitDestroy(id, state.clientId, "destroy");
    }
    if (state.cookieValue !== undefined || state.regenerated) {
      this.#pushSessionCookie(state, out, "", 0);
    }
  }

  #commitWrite(state: SessionState, out: CommitResult): void | Promise<void> {
    if (!state.loaded) {
      // Only a stale key brings us here untouched: load to re-issue the cookie.
      const loading = this.prepare(state) ?? state.ensureLoaded();
      return andThen(loading, () => this.#commitLoaded(state, out));
    }
    return this.#commitLoaded(state, out);
  }

  #commitLoaded(state: SessionState, out: CommitResult): void | Promise<void> {
    const now = this.#o.now();
    const flash = state.ageFlash();
    const keys = state.changedKeys();
    const record = state.record;
    // nothing worth a session (a CSRF secret is: the token handed out must verify next time)
    if (state.isNew && !state.regenerated && !state.csrfChanged && !hasOwnKeys(state.data)) return;
    if (!state.isNew && keys.length > 0 && !hasOwnKeys(state.data)) {
      return this.#commitDestroy(state, out); // cleared
    }
    const flashChanged = (record?.flash?.length ?? 0) > 0 || flash !== undefined;
    // (A new maxAge in this request asks for a renewal itself: `renewRequested`.)
    const halfGone = record !== undefined && this.#renewDue(record, now);
    const clientChanged = record !== undefined && state.clientId !== undefined &&
      record.clientId !== state.clientId && !isDetachedFirst(record, state.id!, state.clientId);
    // The idle window renews (a new expiry, the cookie re-sent with it) once half of it is gone,
    // or on request (`renew()`, `touch()`, a new maxAge). Any other write keeps the expiry the
    // browser's cookie already has, so it needs no Set-Cookie.
    const renew = state.isNew || halfGone || state.renewRequested;
    const write = renew || keys.length > 0 || flashChanged || clientChanged ||
      state.forceSave || state.csrfChanged;
    if (!write) {
      if (this.#o.debug) this.#debug(`session ${this.#tag(state.id)} unchanged: no write`);
      if (state.stale && record) return this.#issue(state, out, record);
      return;
    }
    if (this.#codec || state.isNew) {
      const next = this.#nextRecord(
        record,
        copyData(state.data),
        now,
        state.maxAge ?? record?.maxAge,
        flash,
      );
      if (state.clientId !== undefined) next.clientId = state.clientId;
      if (state.csrf !== undefined) next.csrf = state.csrf;
      if (state.isNew) this.#describeInto(next, state.ctx);
      if (this.#codec) return this.#issue(state, out, next);
      const id = state.id ??= this.#newId(state);
      const written = this.#gateway!.setNow(id, next, next.expiresAt - now, state.ctx);
      return andThen(written, () => this.#created(state, out, id, next, now));
    }
    const id = state.id!;
    const removed = keys.filter((k) => !Object.hasOwn(state.data, k));
    const saved = this.#gateway!.updateNow(id, (cur) => {
      if (this.#expired(cur, now)) return undefined; // destroyed or expired meanwhile: never resurrect
      const data = copyData(cur.data);
      for (const k of keys) if (Object.hasOwn(state.data, k)) data[k] = state.data[k];
      for (const k of removed) delete data[k];
      const merged = this.#nextRecord(cur, data, now, state.maxAge ?? cur.maxAge, flash, !renew);
      if (state.clientId !== undefined && !isDetachedFirst(cur, id, state.clientId)) {
        merged.clientId = state.clientId;
      }
      // A secret saved meanwhile by a concurrent request stays: the first one saved wins.
      if (merged.csrf === undefined && state.csrf !== undefined) merged.csrf = state.csrf;
      return merged;
    }, state.ctx);
    return andThen(saved, (rec) => {
      // Destroyed or regenerated by a concurrent request (which told the browser), or expired:
      // send nothing. A deletion cookie here would log the browser out of the session that
      // a concurrent login has just given it.
      if (!rec) return;
      const linked = clientChanged ? this.#linkClient(state.clientId!, id, now) : undefined;
      return andThen(linked, () => {
        if (this.#o.debug) {
          const renewed = renew ? ", renewed" : "";
          this.#debug(`saved session ${this.#tag(id)}: ${keys.length} changed key(s)${renewed}`);
        }
        // A detached first session is no longer the browser's: its event names no client.
        const detached = state.clientId !== undefined && isDetachedFirst(rec, id, state.clientId);
        this.#emitSet(id, detached ? undefined : state.clientId, false);
        // Without a renewal the browser's cookie is still the right one.
        if (renew || state.stale) return this.#issue(state, out, rec);
      });
    });
  }

  /** A new session's record is written: its client mapping, the event, the cookie. */
  #created(
    state: SessionState,
    out: CommitResult,
    id: string,
    rec: StoredRecord,
    now: number,
  ): void | Promise<void> {
    const linked = state.clientId === undefined
      ? undefined
      : this.#linkClient(state.clientId, id, now);
    return andThen(linked, () => {
      if (this.#o.debug) this.#debug(`created session ${this.#tag(id)}`);
      this.#emitSet(id, state.clientId, true);
      return this.#issue(state, out, rec);
    });
  }

  /**
   * Whether a write to `rec` renews its idle window: once less than half of it remains (the
   * rolling rule of every write and touch, over HTTP, sockets or by id).
   */
  #renewDue(rec: StoredRecord, now: number): boolean {
    return rec.expiresAt - now < (rec.maxAge ?? this.#o.maxAge) / 2;
  }

  /**
   * Builds the record to write: a fresh idle window capped by the absolute timeout, or, with
   * `keepExpiry`, the current record's expiry (a write that is not a renewal).
   */
  #nextRecord(
    cur: StoredRecord | undefined,
    data: SessionData,
    now: number,
    maxAge: number | undefined,
    flash: string[] | undefined,
    keepExpiry = false,
  ): StoredRecord {
    const createdAt = cur?.createdAt ?? now;
    const window = maxAge ?? this.#o.maxAge;
    const rec: StoredRecord = {
      data,
      expiresAt: keepExpiry && cur
        ? cur.expiresAt
        : Math.min(now + window, createdAt + this.#o.absoluteMaxAge),
      createdAt,
    };
    if (cur?.clientId !== undefined) rec.clientId = cur.clientId;
    if (typeof cur?.csrf === "string") rec.csrf = cur.csrf;
    if (flash !== undefined) rec.flash = flash;
    if (maxAge !== undefined && maxAge !== this.#o.maxAge) rec.maxAge = maxAge;
    this.#stampUser(rec, cur, now);
    return rec;
  }

  /** Sends the session cookie for a record (signed id, or the sealed record). */
  #issue(state: SessionState, out: CommitResult, rec: StoredRecord): void | Promise<void> {
    if (this.#codec) return this.#issueSealed(state, out, rec);
    const c = this.#cookieFor(state);
    // A browser-session cookie only needs re-sending when the id or the key changed.
    if (!c.persistent && !state.isNew && !state.stale) return;
    // Same id, current key: the verified cookie as received is the signed value.
    const value = !state.isNew && !state.stale && state.cookieValue !== undefined
      ? state.cookieValue
      : this.#sid!.sign(state.id!);
    this.#pushSessionCookie(state, out, value, rec.expiresAt - this.#o.now());
  }

  /** Seals the record into the session cookie (stateless mode). */
  async #issueSealed(state: SessionState, out: CommitResult, rec: StoredRecord): Promise<void> {
    const id = state.id ??= generateUid();
    const sealed: SealedRecord = {
      n: this.#o.cookie.name,
      i: id,
      d: rec.data,
      e: rec.expiresAt,
      c: rec.createdAt,
    };
    if (rec.flash) sealed.f = rec.flash;
    if (rec.maxAge !== undefined) sealed.m = rec.maxAge;
    if (rec.csrf !== undefined) sealed.x = rec.csrf;
    let value: string;
    try {
      value = await this.#codec!.seal(sealed);
    } catch (err) {
      throw new SessionSerializationError({ cause: err });
    }
    this.#pushSessionCookie(state, out, value, rec.expiresAt - this.#o.now());
    this.#emitSet(id, undefined, state.isNew);
  }

  async #destroy(
    id: string,
    known: StoredRecord | undefined,
    clientHint: string | undefined,
    ctx: unknown,
    reason: DestroyReason,
  ): Promise<boolean> {
    const gateway = this.#gatewayOrThrow();
    const rec = known ?? await gateway.get(id, ctx);
    await gateway.delete(id, ctx, rec);
    this.#attached.delete(id);
    if (!rec) return false;
    const clientId = rec.clientId ?? clientHint;
    if (clientId !== undefined) await this.#unlinkClient(clientId, id);
    this.#emitDestroy(id, clientId, reason);
    return true;
  }

  /**
   * A new session's id: the client id made in this request when it is still free (no other
   * session has it, nobody but this request has seen it: as fresh as a new random id), so that
   * the browser's first session needs no mapping record; else a new random id, which ends with
   * the client id's last two characters when there is one (132 random bits then).
   */
  #newId(state: SessionState): string {
    if (state.clientFree) {
      state.clientFree = false;
      return state.clientId!;
    }
    // Ending as the client id: MapStore then keeps the session and its mapping in one shard.
    return state.clientId === undefined ? generateUid() : generateUidEndingAs(state.clientId);
  }

  /**
   * Points the client id at its session; nothing to write when they are one id. The browser's
   * first session (whose id is this client id), if it still lives, is its current one no more:
   * it loses its client id, so that `getSessionId` cannot fall back to it once this mapping is
   * gone (a logout).
   */
  #linkClient(clientId: string, sessionId: string, now: number): void | Promise<void> {
    if (clientId === sessionId) return;
    const ttl = this.#o.client?.maxAge ?? this.#o.maxAge;
    const linked = this.#gateway!.setNow(CLIENT_PREFIX + clientId, {
      data: {},
      sid: sessionId,
      expiresAt: now + ttl,
      createdAt: now,
    }, ttl);
    return andThen(linked, () => {
      const detached = this.#gateway!.updateNow(clientId, (cur) => {
        if (cur.clientId !== clientId || this.#expired(cur, now)) return undefined;
        const next = { ...cur };
        delete next.clientId;
        return next;
      });
      return andThen(detached, () => {});
    });
  }

  async #unlinkClient(clientId: string, sessionId: string): Promise<void> {
    if (clientId === sessionId) return; // no mapping (see #newId)
    const key = CLIENT_PREFIX + clientId;
    const m = await this.#gateway!.get(key);
    if (m?.sid === sessionId) await this.#gateway!.delete(key);
  }

  #emitSet(sessionId: string, clientId: string | undefined, isNew: boolean): void {
    // Which sessions were attached is kept only while someone listens: without a listener it
    // would be a Map insert per new session that nothing reads (on Bun, microseconds of garbage
    // collection each in a busy server: bench/map_churn.ts).
    if (this.#emitter.has("sessionSet")) {
      let isInit = false;
      if (!this.#attached.has(sessionId)) {
        isInit = true;
        this.#attached.set(sessionId, true);
      }
      this.#emitter.emit("sessionSet", { clientId, sessionId, isNew, isInit, remote: false });
    }
    if (this.#gateway?.store.publish) {
      const event: StoreEvent = { type: "sessionSet", sessionId, isNew, origin: this.#origin };
      if (clientId !== undefined) event.clientId = clientId;
      this.#publish(event);
    }
  }

  #emitDestroy(sessionId: string, clientId: string | undefined, reason: DestroyReason): void {
    if (this.#o.debug) this.#debug(`session ${this.#tag(sessionId)} ended (${reason})`);
    // Empty unless someone listens to sessionSet: then no lookup (in a cleanup of 1,000,000
    // sessions, hashing each id for it cost 150 ms on Bun).
    if (this.#attached.size > 0) this.#attached.delete(sessionId);
    if (this.#emitter.has("sessionDestroy")) {
      this.#emitter.emit("sessionDestroy", { clientId, sessionId, reason, remote: false });
    }
    if (this.#gateway?.store.publish) {
      const event: StoreEvent = { type: "sessionDestroy", sessionId, reason, origin: this.#origin };
      if (clientId !== undefined) event.clientId = clientId;
      this.#publish(event);
    }
  }

  /** Sends a local event to the other instances; a failure is logged, never thrown. */
  #publish(event: StoreEvent): void {
    const publish = this.#gateway?.store.publish;
    if (!publish) return;
    const warn = (err: unknown) =>
      this.#o.logger.warn(`unisession: publishing ${event.type} failed: ${describeError(err)}`);
    try {
      const done = publish.call(this.#gateway!.store, event);
      if (done && typeof (done as Promise<unknown>).then === "function") {
        const settled = (done as Promise<unknown>).then(undefined, warn);
        this.#collecting?.push(settled);
      }
    } catch (err) {
      warn(err);
    }
  }

  /** An event from another instance: re-emitted here with `remote: true`. */
  #onRemote(event: StoreEvent): void {
    if (!event || typeof event !== "object" || event.origin === this.#origin) return;
    const raw = (event as { clientId?: unknown }).clientId;
    // A client id is base64url (generated here, or verified from a cookie): anything else, from a
    // store shared with other writers, is dropped (the socket adapters key links by client id).
    const clientId = typeof raw === "string" && isBase64Url(raw) ? raw : undefined;
    if (event.type === "sessionSet" && typeof event.sessionId === "string") {
      const isInit = !this.#attached.has(event.sessionId);
      if (isInit) this.#attached.set(event.sessionId, true);
      this.#emitter.emit("sessionSet", {
        clientId,
        sessionId: event.sessionId,
        isNew: event.isNew === true,
        isInit,
        remote: true,
      }, true);
    } else if (event.type === "sessionDestroy" && typeof event.sessionId === "string") {
      this.#attached.delete(event.sessionId);
      const reason = event.reason === "regenerate" || event.reason === "expired"
        ? event.reason
        : "destroy";
      this.#emitter.emit("sessionDestroy", {
        clientId,
        sessionId: event.sessionId,
        reason,
        remote: true,
      }, true);
    } else if (event.type === "cleanup" && Number.isInteger(event.count)) {
      this.#emitter.emit("cleanup", event.count, true);
    }
  }
}

/** One session of a user, as {@linkcode SessionManager.listByUser} reports it. */
export interface UserSession {
  /** The session's id (a secret: a bare id is a valid cookie when `signed: false`). */
  sessionId: string;
  /** The browser (client id) holding it, when known. */
  clientId?: string;
  /** Epoch ms of creation (or of the regeneration that gave it this id). */
  createdAt: number;
  /** Epoch ms of the last write: exact to within half the idle window. */
  lastSeenAt: number;
  /** Epoch ms when the idle window (or the absolute timeout) ends. */
  expiresAt: number;
  /** What the `describe` option recorded at creation. */
  meta?: Record<string, unknown>;
}

/** Longest user id accepted (Deno KV keys are limited to 2 KiB). */
const MAX_USER_ID = 256;

/** A user id as stored: a non-empty string, a finite number as its string, else none. */
function userIdOf(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  let user: string;
  if (typeof value === "string") user = value;
  else if (typeof value === "number" && Number.isFinite(value)) user = String(value);
  else throw new TypeError("Cannot identify session: a user id must be a string or a number");
  if (user.length > MAX_USER_ID) {
    throw new RangeError(
      `Cannot identify session: a user id must be at most ${MAX_USER_ID} characters`,
    );
  }
  return user;
}

/**
 * Waits for `promises` (which never reject), at most `ms` (10 s when the store timeout is off): a
 * publish the store holds (a client queueing while Redis is down) must not hold up what awaits
 * it for good.
 */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  if (promises.length === 0) return;
  if (!(ms > 0)) ms = 10_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Not unref'd: a script awaiting cleanup() must get its answer, not exit first.
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([Promise.all(promises), late]);
  clearTimeout(timer);
}

/**
 * True for a browser's first session (its id is its client id, see `#newId`) that a later session
 * of the browser detached (`#linkClient` removed its `clientId`): a request that still sends its
 * cookie with that client id must not attach it again, or `getSessionId()` would answer the old
 * session once the later one ends.
 */
export function isDetachedFirst(record: StoredRecord, id: string, clientId: string): boolean {
  return record.clientId === undefined && clientId === id;
}

/** Ids of the manager's own records (client mappings, user indexes): never a session. */
function isReservedId(id: string): boolean {
  return typeof id === "string" && (id.startsWith(CLIENT_PREFIX) || id.startsWith(USER_PREFIX));
}

/**
 * Creates a {@linkcode SessionManager}. With `store` the cookie holds a signed id and the data
 * lives in the store; without it the data is sealed into the cookie (stateless).
 *
 * @typeParam T the shape of the session data
 * @param options see {@linkcode SessionOptions}
 * @returns the manager to pass to the adapters
 * @throws {TypeError} for options of the wrong type
 * @throws {RangeError} for out-of-range durations or keys shorter than 32 characters
 *
 * @example Usage
 * ```ts
 * import { createSessions, MapStore } from "unisession";
 * const sessions = createSessions<{ userId?: string }>({
 *   store: new MapStore(),
 *   keys: ["current secret of at least 32 chars", "previous secret of at least 32 chars"],
 *   maxAge: 86_400_000,
 * });
 * console.log(sessions.mode); // "store"
 * ```
 */
export function createSessions<T extends object = SessionData>(
  options: SessionOptions = {},
): SessionManager<T> {
  return new SessionManager<T>(options);
}

export { ALLOW_SHORT_KEYS };
export type { Session };

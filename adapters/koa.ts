/**
 * Koa middleware and the @randajan/koa-io-session drop-ins.
 *
 * - {@linkcode koaSession}: `ctx.session` with koa-session / koa-session-minimal semantics, plus
 *   `ctx.sessionId`, `ctx.clientId`, `ctx.sessionHandler.regenerateId()` and
 *   `ctx.regenerateSession()`. Takes a shared {@linkcode SessionManager} or koa-session options.
 * - {@linkcode bridgeSession} (also the default export): koa-io-session v3's
 *   `bridgeSession(app, io, opt)`, returning a {@linkcode SessionBridge}.
 * - {@linkcode attachSession}: koa-io-session v1's `attachSession(app, io, opt)`.
 *
 * @example Usage
 * ```ts
 * import Koa from "koa";
 * import { createSessions, MapStore } from "unisession";
 * import { koaSession } from "unisession/koa";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const app = new Koa();
 * app.use(koaSession(sessions));
 * app.use((ctx) => {
 *   ctx.session.views = (ctx.session.views ?? 0) + 1;
 *   ctx.body = { views: ctx.session.views, sessionId: ctx.sessionId };
 * });
 * ```
 *
 * @module
 */
import { EventEmitter } from "node:events";
import type Koa from "koa";
import type { Context, Middleware, Next } from "koa";
import type { Server as SocketIOServer } from "socket.io";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { CookieOptions } from "../src/cookie.ts";
import { type CsrfOptions, isFormContentType, resolveCsrfOptions } from "../src/csrf.ts";
import { CsrfError, ResponseSentError } from "../src/errors.ts";
import { utf8 } from "../src/encoding.ts";
import type { SessionDestroyEvent, SessionSetEvent } from "../src/events.ts";
import { generateUid } from "../src/id.ts";
import { isThenable, promiseOf } from "../src/awaitable.ts";
import {
  adapterSteps,
  ALLOW_SHORT_KEYS,
  createSessions,
  isDetachedFirst,
  MAX_TIMER_MS,
  SessionManager,
} from "../src/manager.ts";
import { MapStore } from "../src/map_store.ts";
import { BoundedMap } from "../src/sharded_map.ts";
import type { ClientOptions, Logger, SessionOptions } from "../src/options.ts";
import type { SessionData, SessionState } from "../src/session.ts";
import type { StoreLike } from "../src/store.ts";
import { attachSocketIO, type AttachSocketIOOptions, type SocketIOSessions } from "./socket_io.ts";

const DAY = 86_400_000;

/** Cookie attributes koa-session-minimal's `cookie` option may set (statically or per request). */
export interface KoaCookieOptions {
  /** Cookie lifetime and session idle window in ms; 0 makes a browser-session cookie. */
  maxAge?: number;
  /** Cookie path. Default `/`. */
  path?: string;
  /** Cookie domain. Default none (host-only). */
  domain?: string;
  /** `true`, `false` or `"auto"` (Secure on https). */
  secure?: boolean | "auto";
  /** Hide the cookie from page scripts. Default true. */
  httpOnly?: boolean;
  /** SameSite attribute (`true` is `"strict"`). Default `"lax"`. */
  sameSite?: "lax" | "strict" | "none" | boolean;
}

/**
 * koa-session's and koa-session-minimal's options, accepted unchanged, plus unisession extras.
 * koa-session's `autoCommit`, `overwrite`, `renew`, `prefix`, `genid`, `encode`/`decode`,
 * `valid`/`beforeSave`, `externalKey` and `ContextStore` are not supported (rolling renewal at
 * half the window is always on; sessions are committed after the downstream middleware).
 */
export interface KoaSessionOptions {
  /**
   * Cookie name. Default `"koa.sess"` (koa-session's); `"koa:sess"` (koa-session-minimal's) with
   * a `store`, no keys and no app argument.
   */
  key?: string;
  /**
   * Idle timeout in ms, or `"session"` for a browser-session cookie. Default 1 day; with a `store`,
   * no keys and no app argument (koa-session-minimal), a browser-session cookie and a day in the
   * store, unless `cookie.maxAge` is above 0. Any other string is a TypeError.
   */
  maxAge?: number | "session";
  /** Sign the session cookie. Default true when keys are available (`keys` or `app.keys`). */
  signed?: boolean;
  /** Renew the session (store write + Set-Cookie) on every request. Default false. */
  rolling?: boolean;
  /** Hide the cookie from page scripts. Default true. */
  httpOnly?: boolean;
  /** `true`, `false` or `"auto"` (Secure on https). Default `"auto"`. */
  secure?: boolean | "auto";
  /** Default `"lax"`. */
  sameSite?: "lax" | "strict" | "none" | boolean;
  /** Cookie path. Default `/`. */
  path?: string;
  /** Cookie domain. Default none (host-only). */
  domain?: string;
  /** CHIPS `Partitioned` attribute (needs Secure). */
  partitioned?: boolean;
  /** Chrome's cookie `Priority`. */
  priority?: "low" | "medium" | "high";
  /**
   * koa-session-minimal's cookie options: an object, or a function of the context evaluated when
   * a non-empty session is saved (e.g. a longer `maxAge` for signed-in users).
   */
  cookie?: KoaCookieOptions | ((ctx: Context) => KoaCookieOptions);
  /**
   * Where sessions live: koa-session external stores, koa-generic-session / koa-redis stores,
   * a `Map`, or any unisession store. Omitted: the session is sealed into the cookie.
   */
  store?: StoreLike;
  /** Secrets, newest first. Default `app.keys`. */
  keys?: readonly string[];
  /** The client-id cookie that bridges HTTP and sockets. Default off for `koaSession()`. */
  client?: ClientOptions | false;
  /** Absolute timeout in ms from creation. */
  absoluteMaxAge?: number;
  /** Same-session requests (and socket handlers) run one at a time. */
  serialize?: boolean;
  /** Store calls fail with a StoreError after this many ms. Default 10000. */
  storeTimeout?: number;
  /** Send `Cache-Control: no-store` with the session cookie. Default true. */
  noStore?: boolean;
  /** Called with the reason when an incoming cookie is invalid. */
  onInvalid?: SessionOptions["onInvalid"];
  /** Warnings and debug lines. Default `console`. */
  logger?: Logger;
  /** Log session decisions (no secrets). */
  debug?: boolean;
}

/** `ctx.sessionHandler`, as in koa-session-minimal. */
export interface KoaSessionHandler {
  /** Gives the session a new id at the end of the request (call it on login). */
  regenerateId(): void;
}

/** A request's session, as the middleware and the context accessors see it. */
class Entry {
  readonly manager: SessionManager;
  readonly state: SessionState;
  /** What `ctx.session` returns: the session object, or null once set to null. */
  current: object | null;
  /** Dynamic cookie options evaluated for this request. */
  cookie?: CookieOptions;
  #handler: KoaSessionHandler | undefined;

  constructor(manager: SessionManager, state: SessionState) {
    this.manager = manager;
    this.state = state;
    this.current = state.session;
  }

  /** koa-session's `ctx.sessionHandler`, made on first use (most requests never ask). */
  get handler(): KoaSessionHandler {
    return this.#handler ??= {
      regenerateId: () => {
        if (this.current === null) this.current = this.state.session;
        this.state.destroyed = false;
        this.state.session.regenerate().catch(() => {}); // the commit awaits it and reports errors
      },
    };
  }
}

/**
 * Each request's entry, on its context under a symbol (a WeakMap entry per request would cost an
 * ephemeron in every garbage collection: 10–20 µs per request on Node and Deno).
 */
const ENTRY = Symbol("unisession.entry");
type WithEntry = { [ENTRY]?: Entry };
function entryAt(ctx: object): Entry | undefined {
  return (ctx as WithEntry)[ENTRY];
}
const patched = new WeakSet<object>();

function entryOf(ctx: object, what: string): Entry {
  const entry = entryAt(ctx);
  if (!entry) {
    throw new TypeError(`Cannot use ctx.${what}: the unisession middleware did not run first`);
  }
  return entry;
}

/** Installs `session`, `sessionId`, `clientId`, `sessionHandler` once on the app's context. */
function installAccessors(ctx: Context): void {
  const proto = Object.getPrototypeOf(ctx) as object;
  if (patched.has(proto)) return;
  patched.add(proto);
  Object.defineProperties(proto, {
    session: {
      configurable: true,
      get(this: Context) {
        return entryAt(this)?.current;
      },
      set(this: Context, value: unknown) {
        const entry = entryOf(this, "session");
        if (value === null) {
          entry.current = null;
          return;
        }
        if (typeof value !== "object" || Array.isArray(value)) {
          throw new TypeError("Cannot set ctx.session: it can only be set to null or an object");
        }
        if (value === entry.state.session) return;
        entry.state.destroyed = false;
        entry.state.replaceData(value);
        entry.current = entry.state.session;
      },
    },
    sessionId: {
      configurable: true,
      get(this: Context) {
        const entry = entryAt(this);
        if (!entry || entry.current === null) return undefined;
        return entry.manager.sessionIdOf(entry.state);
      },
    },
    clientId: {
      configurable: true,
      get(this: Context) {
        const entry = entryAt(this);
        return entry && entry.manager.clientIdOf(entry.state);
      },
    },
    sessionHandler: {
      configurable: true,
      get(this: Context) {
        return entryAt(this)?.handler;
      },
    },
    regenerateSession: {
      configurable: true,
      writable: true,
      value: function (this: Context): Promise<void> {
        const entry = entryOf(this, "regenerateSession()");
        if (entry.current === null) entry.current = entry.state.session;
        entry.state.destroyed = false;
        return entry.state.session.regenerate();
      },
    },
  });
}

/** Keys from the options or the app; Keygrip instances cannot be read. */
function appKeys(app: Koa | undefined): readonly string[] | undefined {
  const keys = (app as { keys?: unknown } | undefined)?.keys;
  if (keys === undefined) return undefined;
  if (Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === "string")) {
    return keys;
  }
  throw new TypeError(
    "Cannot use app.keys: must be an array of strings (pass keys: [...] for a Keygrip instance)",
  );
}

/** Sealing needs 32+ character secrets: stretch shorter app.keys deterministically. */
function sealingKey(key: string): string {
  return key.length >= 32 ? key : "koa.keys:" + bytesToHex(sha256(utf8(key)));
}

function sameSite(v: KoaCookieOptions["sameSite"]): "lax" | "strict" | "none" | undefined {
  if (v === true) return "strict";
  if (v === false) return undefined;
  return v;
}

/** The checks of options that need no app (made when the middleware is created). */
function checkKoaOptions(o: KoaSessionOptions): void {
  if (o === null || typeof o !== "object") {
    throw new TypeError("Cannot create koa sessions: options must be an object");
  }
  if (o.maxAge !== undefined && o.maxAge !== "session" && typeof o.maxAge !== "number") {
    throw new TypeError(
      'Cannot create koa sessions: maxAge must be a number of milliseconds or "session"',
    );
  }
  if (typeof o.maxAge === "number" && !(o.maxAge > 0 && Number.isFinite(o.maxAge))) {
    throw new RangeError("Cannot create koa sessions: maxAge must be positive and finite");
  }
}

/** Translates koa-session(-minimal) options to core options. */
function fromKoaOptions(
  o: KoaSessionOptions,
  app: Koa | undefined,
  defaults: {
    client: ClientOptions | false;
    /** koa-session-minimal's defaults may apply (it is called without the app, koa-session with). */
    minimal?: boolean;
  },
): SessionOptions & { [ALLOW_SHORT_KEYS]?: boolean } {
  checkKoaOptions(o);
  const staticCookie = typeof o.cookie === "object" && o.cookie !== null ? o.cookie : {};
  let keys = o.keys ?? appKeys(app);
  const store = o.store;
  let signed = o.signed;
  // A store and no keys, without the app: koa-session-minimal's options (koa-session takes the
  // app, and signs with app.keys).
  const minimal = defaults.minimal === true && store !== undefined && keys === undefined &&
    signed === undefined;
  // A store and no keys: the id cookie is unsigned (koa-session-minimal's bare ids).
  if (store !== undefined && keys === undefined && signed === undefined) signed = false;
  if (!store && keys) {
    if (keys.some((k) => k.length < 32)) {
      (o.logger ?? console).warn(
        "unisession/koa: keys shorter than 32 characters seal the cookie session: it is only as " +
          "strong as those keys. Use long random keys.",
      );
    }
    keys = keys.map(sealingKey);
  }
  const cookieMaxAge = staticCookie.maxAge;
  // koa-session-minimal's default is a browser-session cookie (with a day in the store).
  const browserSession = o.maxAge === "session" || cookieMaxAge === 0 ||
    (minimal && o.maxAge === undefined && !(cookieMaxAge !== undefined && cookieMaxAge > 0));
  const maxAge = typeof o.maxAge === "number"
    ? o.maxAge
    : cookieMaxAge !== undefined && cookieMaxAge > 0
    ? cookieMaxAge
    : DAY;
  return {
    store,
    keys,
    signed,
    [ALLOW_SHORT_KEYS]: true,
    cookie: {
      name: o.key ?? (minimal ? "koa:sess" : "koa.sess"),
      httpOnly: staticCookie.httpOnly ?? o.httpOnly,
      secure: staticCookie.secure ?? o.secure,
      sameSite: sameSite(staticCookie.sameSite ?? o.sameSite),
      path: staticCookie.path ?? o.path,
      domain: staticCookie.domain ?? o.domain,
      partitioned: o.partitioned,
      priority: o.priority,
      persistent: !browserSession,
    },
    client: o.client ?? defaults.client,
    maxAge,
    absoluteMaxAge: o.absoluteMaxAge,
    serialize: o.serialize,
    storeTimeout: o.storeTimeout,
    noStore: o.noStore,
    onInvalid: o.onInvalid,
    logger: o.logger,
    debug: o.debug,
  };
}

interface Hooks {
  /**
   * When a request opens a session it carried (before its handler): the bridge watches for that
   * session's destruction until `release` is called, after the request.
   */
  opened?(state: SessionState): { release(): void } | undefined;
  /** After a successful commit (the bridge's mapping cache). */
  committed?(ctx: Context, state: SessionState, manager: SessionManager): void;
}

function middleware(
  getManager: (ctx: Context) => SessionManager,
  settings: {
    rolling: boolean;
    cookieFn: ((ctx: Context) => KoaCookieOptions) | undefined;
  },
  hooks: Hooks = {},
): Middleware {
  const { rolling, cookieFn } = settings;

  function handle(
    ctx: Context,
    next: Next,
    manager: SessionManager,
    state: SessionState,
  ): Promise<void> {
    const watch = hooks.opened?.(state);
    if (!watch) return handleOpened(ctx, next, manager, state);
    return handleOpened(ctx, next, manager, state).finally(() => watch.release());
  }

  async function handleOpened(
    ctx: Context,
    next: Next,
    manager: SessionManager,
    state: SessionState,
  ): Promise<void> {
    const pending = manager.prepare(state);
    if (pending) await pending;
    const entry = new Entry(manager, state);
    (ctx as WithEntry)[ENTRY] = entry;
    try {
      await next();
    } catch (err) {
      // The downstream failed: save nothing, so no half-done change reaches the store.
      manager.abandon(state);
      throw err;
    }
    const destroy = entry.current === null;
    if (!destroy) {
      if (rolling && !state.destroyed) state.session.touch();
      if (cookieFn && state.session.populated) applyCookieFn(entry, cookieFn(ctx));
    }
    const committed = adapterSteps.commit(
      manager as SessionManager<object>,
      state,
      destroy ? null : undefined,
    );
    const result = isThenable(committed) ? await committed : committed;
    if (result.cookies.length > 0) {
      if (ctx.headerSent) {
        ctx.app.emit("error", new ResponseSentError(), ctx);
      } else {
        // One append for all of them: Koa re-validates every value already set on each call.
        const cookies = result.cookies;
        ctx.append("Set-Cookie", cookies.length === 1 ? cookies[0]! : cookies);
        if (result.noStore) ctx.set("Cache-Control", "no-store");
      }
    }
    hooks.committed?.(ctx, state, manager);
  }

  // One async function per request (handle): each layer would cost a promise and a microtask.
  return function unisessionKoa(ctx: Context, next: Next): Promise<void> {
    let manager: SessionManager;
    let state: SessionState;
    try {
      installAccessors(ctx);
      manager = getManager(ctx);
      state = manager.open(ctx.get("cookie"), { ctx, https: ctx.secure });
    } catch (err) {
      return Promise.reject(err);
    }
    if (manager.serialize && state.id !== undefined) {
      return manager.runExclusive(state.id, () => handle(ctx, next, manager, state));
    }
    return handle(ctx, next, manager, state);
  };
}

/** Applies koa-session-minimal's per-request cookie options before the commit. */
function applyCookieFn(entry: Entry, o: KoaCookieOptions): void {
  if (o === null || typeof o !== "object") {
    throw new TypeError("Cannot use the cookie option: the function must return an object");
  }
  const session = entry.state.session;
  if (typeof o.maxAge === "number" && o.maxAge > 0 && session.maxAge !== o.maxAge) {
    session.maxAge = o.maxAge;
  }
  entry.cookie = {
    path: o.path,
    domain: o.domain,
    secure: o.secure,
    httpOnly: o.httpOnly,
    sameSite: sameSite(o.sameSite),
    persistent: o.maxAge === undefined ? undefined : o.maxAge > 0,
  };
  for (const k of Object.keys(entry.cookie) as (keyof CookieOptions)[]) {
    if (entry.cookie[k] === undefined) delete entry.cookie[k];
  }
}

/** Reads the dynamic cookie options the middleware evaluated for this request. */
function dynamicCookie(ctx: unknown): CookieOptions {
  return (ctx && entryAt(ctx as object)?.cookie) ?? {};
}

function isKoaApp(x: unknown): x is Koa {
  return typeof x === "object" && x !== null && typeof (x as Koa).use === "function" &&
    typeof (x as Koa).callback === "function";
}

/**
 * Session middleware for Koa.
 *
 * - `koaSession(manager)`: share a manager made by `createSessions()` with socket.io or Hono.
 * - `koaSession(options, app?)`: koa-session / koa-session-minimal options. Keys come from
 *   `options.keys` or `app.keys` (read at the first request when `app` is omitted). Without a
 *   store the session is sealed into the cookie (koa-session's cookie sessions); with a store and
 *   no keys at all the id cookie is unsigned, as koa-session-minimal's.
 *
 * `ctx.session` is the session object (loaded lazily, nested changes tracked); `ctx.session = null`
 * or `= {}` destroys it (reading it then gives null); assigning an object replaces the data;
 * `ctx.session.maxAge`, `save()`, `regenerate()`, `isNew`, `populated`, `length` behave as in
 * koa-session. `ctx.sessionId` is known in the very request that creates the session;
 * `ctx.clientId` is the browser's id (with the client cookie on). A downstream error commits
 * nothing.
 *
 * @param options a {@linkcode SessionManager} or {@linkcode KoaSessionOptions}
 * @param app the Koa app (for `app.keys`), as koa-session's second argument
 * @returns the middleware
 * @throws {TypeError} for invalid options
 *
 * @example koa-session-minimal style, with a dynamic cookie
 * ```ts
 * import Koa from "koa";
 * import { koaSession } from "unisession/koa";
 *
 * const app = new Koa();
 * app.keys = ["a-secret-of-at-least-32-characters!!"];
 * app.use(koaSession({
 *   store: new Map(),
 *   cookie: (ctx) => ({ maxAge: ctx.session.user ? 30 * 86_400_000 : 0 }),
 * }, app));
 * app.use((ctx) => {
 *   if (ctx.path === "/login") {
 *     ctx.sessionHandler.regenerateId();
 *     ctx.session.user = "ada";
 *   }
 *   ctx.body = ctx.session.user ?? "anonymous";
 * });
 * ```
 */
export function koaSession(
  options: SessionManager | KoaSessionOptions | Koa = {},
  app?: Koa | KoaSessionOptions,
): Middleware {
  if (isKoaApp(options)) [options, app] = [app ?? {}, options]; // koa-session's legacy order
  if (options instanceof SessionManager) {
    const manager = options;
    return middleware(() => manager, { rolling: false, cookieFn: undefined });
  }
  const o = options as KoaSessionOptions;
  checkKoaOptions(o);
  const cookieFn = typeof o.cookie === "function" ? o.cookie : undefined;
  const minimal = !isKoaApp(app); // koa-session-minimal's session(options), not session(options, app)
  const build = (a: Koa | undefined): SessionManager => {
    const core = fromKoaOptions(o, a, { client: false, minimal });
    if (cookieFn) {
      const base = core.cookie as CookieOptions & { name: string };
      core.cookieName = base.name;
      core.cookie = (ctx: unknown) => ({ ...base, ...dynamicCookie(ctx) });
    }
    return createSessions(core);
  };
  let manager = isKoaApp(app) ? build(app) : undefined;
  return middleware(
    (ctx) => (manager ??= build(ctx.app)),
    { rolling: o.rolling === true, cookieFn },
  );
}

// ------------------------------------------------------------------------------ the bridge

/** The most browser ↔ session pairs a bridge keeps for its synchronous lookups (oldest go first). */
const BRIDGE_PAIRS = 1_000_000;

/** Options of {@linkcode bridgeSession} (koa-io-session v3's, accepted unchanged). */
export interface BridgeSessionOptions extends Omit<KoaSessionOptions, "client"> {
  /** Backend store. Default a new {@linkcode LiveStore} (in-memory). */
  store?: StoreLike;
  /** Idle timeout in ms. Default 1 day. */
  maxAge?: number | "session";
  /** Run `cleanup()` on a timer. Default false. */
  autoCleanup?: boolean;
  /** Auto-cleanup interval; default maxAge / 4 between 1 minute and 1 day. */
  autoCleanupMs?: number;
  /** Client-id cookie name. Default `${key}.cid`. */
  clientKey?: string;
  /** Client-id cookie lifetime in ms. Default 1 year. */
  clientMaxAge?: number;
  /** Re-send the client-id cookie on every response. Default true. */
  clientAlwaysRoll?: boolean;
  /**
   * A new client id at `ctx.regenerateSession()`, as the session gets a new id: see
   * `ClientOptions.rotateOnRegenerate` (the client id is a credential for sockets). Default false.
   */
  clientRotateOnRegenerate?: boolean;
  /** socket.io adapter options (what happens to a logged-out session's sockets, ...). */
  socketIO?: AttachSocketIOOptions;
}

/**
 * What {@linkcode bridgeSession} returns: koa-io-session v3's SessionBridge (a Node.js
 * EventEmitter with `sessionSet`, `sessionDestroy` and `cleanup` events and lookups by id),
 * backed by a {@linkcode SessionManager} that other adapters can share (`bridge.sessions`).
 *
 * `getSessionId` / `getClientId` are synchronous, answered from a mapping kept current by the
 * events and by every request that carries a session (also after a restart, and across
 * instances with a store that delivers events). The async lookups read the store.
 *
 * @example Usage
 * ```ts ignore
 * const bridge = bridgeSession(app, io, { key: "app.sid" });
 * bridge.on("sessionDestroy", ({ sessionId }) => console.log("logged out", sessionId));
 * await bridge.destroyByClientId(clientId);
 * ```
 */
export class SessionBridge<T extends object = SessionData> extends EventEmitter {
  /** The manager behind the bridge (share it with `unisession/hono` or other apps). */
  readonly sessions: SessionManager<T>;
  /** The socket.io adapter handle. */
  readonly socketIO: SocketIOSessions;
  /**
   * The browser ↔ session pairs this process saw (for the synchronous lookups), bounded: a store
   * that expires records itself (Redis) raises no event when a session expires, so without a
   * bound a pair would stay for every session that ends without a logout.
   */
  readonly #sidByClient = new BoundedMap<string, string>(BRIDGE_PAIRS, (clientId, sid) => {
    if (this.#clientBySid.get(sid) === clientId) this.#clientBySid.delete(sid); // pairs go together
  });
  readonly #clientBySid = new Map<string, string>();
  /**
   * The sessions carried by requests in flight: how many requests, and whether the session was
   * destroyed meanwhile (then those requests must not attach it again when they end).
   */
  readonly #inFlight = new Map<string, { requests: number; destroyed: boolean }>();

  /**
   * Creates a SessionBridge.
   * @param sessions the manager
   * @param socketIO the attached socket.io adapter
   */
  constructor(sessions: SessionManager<T>, socketIO: SocketIOSessions) {
    super();
    this.sessions = sessions;
    this.socketIO = socketIO;
    sessions.on("sessionSet", (e: SessionSetEvent) => {
      const isInit = e.clientId === undefined ? e.isInit : this.#link(e.clientId, e.sessionId);
      this.emit("sessionSet", { ...e, isInit });
    });
    sessions.on("sessionDestroy", (e: SessionDestroyEvent) => {
      const watched = this.#inFlight.get(e.sessionId);
      if (watched) watched.destroyed = true;
      this.#unlink(e.sessionId);
      this.emit("sessionDestroy", e);
    });
    sessions.on("cleanup", (count: number) => this.emit("cleanup", count));
  }

  /** Records clientId ↔ sessionId; true when the pair is new (the session was attached now). */
  #link(clientId: string, sessionId: string): boolean {
    if (this.#sidByClient.get(clientId) === sessionId) return false;
    const previous = this.#sidByClient.get(clientId);
    if (previous !== undefined) this.#clientBySid.delete(previous);
    this.#sidByClient.set(clientId, sessionId);
    this.#clientBySid.set(sessionId, clientId);
    return true;
  }

  #unlink(sessionId: string): void {
    const clientId = this.#clientBySid.get(sessionId);
    if (clientId === undefined) return;
    this.#clientBySid.delete(sessionId);
    if (this.#sidByClient.get(clientId) === sessionId) this.#sidByClient.delete(clientId);
  }

  /**
   * @internal A request carries session `sessionId`: until `release()`, a destruction of it is
   * remembered, so that the request does not attach it when it ends.
   */
  watch(sessionId: string): { release(): void } {
    let watched = this.#inFlight.get(sessionId);
    if (!watched) this.#inFlight.set(sessionId, watched = { requests: 0, destroyed: false });
    watched.requests++;
    return {
      release: () => {
        if (--watched.requests === 0 && this.#inFlight.get(sessionId) === watched) {
          this.#inFlight.delete(sessionId);
        }
      },
    };
  }

  /**
   * @internal A request carried an existing session: attach it (sessionSet with isInit), unless
   * it was destroyed while the request ran.
   */
  attach(clientId: string, sessionId: string): void {
    if (this.#inFlight.get(sessionId)?.destroyed) return;
    if (this.#link(clientId, sessionId)) {
      this.emit("sessionSet", { clientId, sessionId, isNew: false, isInit: true, remote: false });
    }
  }

  /** The browser's current session id, or undefined (synchronous). */
  getSessionId(clientId: string): string | undefined {
    return this.#sidByClient.get(clientId);
  }

  /** The browser owning a session, or undefined (synchronous). */
  getClientId(sessionId: string): string | undefined {
    return this.#clientBySid.get(sessionId);
  }

  /** A copy of a session's data, or undefined. */
  getById(sessionId: string): Promise<T | undefined> {
    return this.sessions.getById(sessionId);
  }

  /** A copy of the data of the browser's current session, or undefined. */
  async getByClientId(clientId: string): Promise<T | undefined> {
    const sid = this.getSessionId(clientId) ?? await this.sessions.getSessionId(clientId);
    return sid === undefined ? undefined : this.sessions.getById(sid);
  }

  /** Destroys a session (its sockets are disconnected or notified). @returns false when missing */
  destroyById(sessionId: string): Promise<boolean> {
    return this.sessions.destroyById(sessionId);
  }

  /** Destroys the browser's current session. @returns false when there is none */
  async destroyByClientId(clientId: string): Promise<boolean> {
    const sid = this.getSessionId(clientId) ?? await this.sessions.getSessionId(clientId);
    return sid === undefined ? false : this.sessions.destroyById(sid);
  }

  /**
   * Replaces a session's data (never creates one).
   * @throws {SessionMissingError} when the session does not exist
   */
  setById(sessionId: string, session: T, maxAge?: number): Promise<boolean> {
    return this.sessions.setById(sessionId, session, maxAge);
  }

  /**
   * Replaces the data of the browser's current session.
   * @throws {SessionMissingError} when the browser has no session
   */
  setByClientId(clientId: string, session: T, maxAge?: number): Promise<boolean> {
    const sid = this.getSessionId(clientId);
    if (sid === undefined) return this.sessions.setByClientId(clientId, session, maxAge);
    return this.sessions.setById(sid, session, maxAge);
  }

  /** Removes expired sessions; emits `sessionDestroy` for each and `cleanup`. @returns the count */
  cleanup(): Promise<number> {
    return this.sessions.cleanup();
  }

  /** Runs cleanup on a timer. @returns false when already running */
  startAutoCleanup(interval?: number): boolean {
    return this.sessions.startAutoCleanup(interval);
  }

  /** Stops the cleanup timer. @returns false when not running */
  stopAutoCleanup(): boolean {
    return this.sessions.stopAutoCleanup();
  }

  /** After writing the store directly: announces the record (`sessionSet`). */
  notifyStoreSet(sessionId: string, isNew = false): void {
    this.sessions.notifyStoreSet(sessionId, isNew);
  }

  /** After deleting from the store directly: announces it (`sessionDestroy`, sockets follow). */
  notifyStoreDestroy(sessionId: string): void {
    this.sessions.notifyStoreDestroy(sessionId, this.getClientId(sessionId));
  }

  /** After cleaning the store directly: announces the count (`cleanup`). */
  notifyStoreCleanup(clearedCount: number): void {
    this.sessions.notifyStoreCleanup(clearedCount);
  }
}

/**
 * The in-memory store koa-io-session calls LiveStore: unisession's {@linkcode MapStore}.
 *
 * @example Usage
 * ```ts ignore
 * const bridge = bridgeSession(app, io, { store: new LiveStore() });
 * ```
 */
export const LiveStore: typeof MapStore = MapStore;
/** The in-memory store (an alias of {@linkcode MapStore}). */
export type LiveStore = MapStore;

/**
 * Makes middleware registered after `app.callback()` take effect, as the koa-io-session quick
 * start needs (it creates the server before `bridgeSession()` and its routes): since
 * koa-compose 4.2 copies the middleware list, later `app.use()` calls were silently ignored.
 * The composed function Koa passes is replaced by one that walks `app.middleware` as it is now.
 */
function composeLive(app: Koa): void {
  type Handle = (ctx: Context, fn: (ctx: Context) => Promise<unknown>) => Promise<unknown>;
  const target = app as unknown as { handleRequest: Handle; [LIVE]?: true };
  if (target[LIVE]) return;
  target[LIVE] = true;
  const original = target.handleRequest;
  const list = app.middleware as unknown as Middleware[];
  target.handleRequest = function (this: Koa, ctx) {
    return original.call(this, ctx, (c) => dispatch(list, c));
  };
}

const LIVE = Symbol("unisession.koa.live");

/** Runs Koa middleware in order (each `next()` runs the rest, once). */
function dispatch(list: readonly Middleware[], ctx: Context): Promise<unknown> {
  let last = -1;
  const run = (i: number): Promise<unknown> => {
    if (i <= last) return Promise.reject(new Error("next() called multiple times"));
    last = i;
    const fn = list[i];
    if (!fn) return Promise.resolve();
    return promiseOf(() => fn(ctx, () => run(i + 1)));
  };
  return run(0);
}

/**
 * koa-io-session v3's `bridgeSession(app, io, opt)`: installs the Koa session middleware and
 * the socket.io adapter on one session manager and returns the {@linkcode SessionBridge}. Call
 * it before any middleware that uses `ctx.session`.
 *
 * Defaults as documented by koa-io-session v3: `signed: true`, an in-memory store, `app.keys`
 * generated when missing (with a warning), `autoCleanup: false`, client cookie
 * `${key}.cid` for 1 year, re-sent on every response. Deliberate differences: the cookie name
 * defaults to `"koa.sess"` instead of a random name (a random name logs everyone out on restart);
 * the session and `ctx.sessionId` exist in the request that creates them; `sessionSet` fires at
 * once on creation; session data never contains internal fields; socket activity keeps the HTTP
 * session alive; a logged-out session's sockets are disconnected (see `socketIO.onDestroy`);
 * middleware added after `createServer(app.callback())` runs (the quick start's order).
 *
 * @param app the Koa app
 * @param io the socket.io server
 * @param opt koa-io-session v3 options (mostly koa-session's)
 * @returns the bridge
 *
 * @example The koa-io-session v3 quick start
 * ```ts ignore
 * import Koa from "koa";
 * import { createServer } from "node:http";
 * import { Server } from "socket.io";
 * import bridgeSession from "unisession/koa";
 *
 * const app = new Koa();
 * app.keys = ["your-stable-key-1", "your-stable-key-2"];
 * const http = createServer(app.callback());
 * const io = new Server(http);
 * const bridge = bridgeSession(app, io, { key: "app.sid", signed: true, maxAge: 86_400_000 });
 * bridge.on("sessionSet", ({ clientId, sessionId, isNew }) => console.log(sessionId, isNew));
 * io.on("connection", (socket) => {
 *   socket.on("session:get", async (ack) => {
 *     ack(await socket.withSession(({ session }) => session, { error: "missing-session" }));
 *   });
 * });
 * ```
 */
export function bridgeSession<T extends object = SessionData>(
  app: Koa,
  // deno-lint-ignore no-explicit-any
  io: SocketIOServer<any, any, any, any>,
  opt: BridgeSessionOptions = {},
): SessionBridge<T> {
  if (!isKoaApp(app)) throw new TypeError("Cannot bridge sessions: app must be a Koa app");
  if (opt === null || typeof opt !== "object") {
    throw new TypeError("Cannot bridge sessions: opt must be an object");
  }
  // Checked before anything is installed on the app or io (a retry would install twice).
  if (opt.autoCleanup != null && typeof opt.autoCleanup !== "boolean") {
    throw new TypeError("Cannot bridge sessions: autoCleanup must be a boolean");
  }
  const ms = opt.autoCleanupMs; // used only with autoCleanup: true (null: the default)
  if (
    opt.autoCleanup === true && ms != null &&
    !(typeof ms === "number" && ms > 0 && ms <= MAX_TIMER_MS)
  ) {
    throw new RangeError(
      "Cannot bridge sessions: autoCleanupMs must be a positive number of ms up to 2147483647",
    );
  }
  if ((app as { keys?: unknown }).keys === undefined && opt.keys === undefined) {
    app.keys = [generateUid(), generateUid()];
    (opt.logger ?? console).warn(
      "unisession/koa: app.keys was not set, so random keys were generated: sessions will not " +
        "survive a restart. Set app.keys (stable, secret) in production.",
    );
  }
  const key = opt.key ?? "koa.sess";
  const core = fromKoaOptions({ ...opt, key, store: opt.store ?? new MapStore() }, app, {
    client: {
      name: opt.clientKey ?? `${key}.cid`,
      maxAge: opt.clientMaxAge,
      alwaysRoll: opt.clientAlwaysRoll ?? true,
      rotateOnRegenerate: opt.clientRotateOnRegenerate,
    },
  });
  core.signed = opt.signed ?? true;
  const sessions = createSessions<T>(core);
  const socketIO = attachSocketIO(io, sessions, opt.socketIO);
  composeLive(app);
  const bridge = new SessionBridge<T>(sessions, socketIO);
  app.use(middleware(() => sessions as SessionManager, {
    rolling: opt.rolling === true,
    cookieFn: undefined,
  }, {
    opened: (state) => state.id === undefined ? undefined : bridge.watch(state.id),
    committed(_ctx, state, manager) {
      if (state.destroyed || state.clientId === undefined || !state.loaded) return;
      const id = manager.sessionIdOf(state);
      if (id === undefined || state.isNew) return;
      // A browser's first session that a later one detached is not the browser's any more.
      if (state.record && isDetachedFirst(state.record, id, state.clientId)) return;
      bridge.attach(state.clientId, id);
    },
  }));
  if (opt.autoCleanup === true) sessions.startAutoCleanup(opt.autoCleanupMs ?? undefined);
  return bridge;
}

/**
 * koa-io-session v1's `attachSession(app, io, opt)`: the same bridge as {@linkcode bridgeSession}
 * (sockets get `socket.sessionId` and a read-only `socket.session` snapshot; write from a socket
 * with `socket.withSession`).
 *
 * @param app the Koa app
 * @param io the socket.io server
 * @param opt the same options as {@linkcode bridgeSession}
 * @returns the bridge
 *
 * @example Usage
 * ```ts ignore
 * const store = attachSession(app, io, { key: "koa:sess", signed: true, maxAge: 86400000 });
 * io.on("connection", (socket) => console.log(socket.sessionId, socket.session));
 * ```
 */
export function attachSession<T extends object = SessionData>(
  app: Koa,
  // deno-lint-ignore no-explicit-any
  io: SocketIOServer<any, any, any, any>,
  opt: BridgeSessionOptions = {},
): SessionBridge<T> {
  return bridgeSession<T>(app, io, opt);
}

/**
 * CSRF protection for Koa with the session's tokens (the synchronizer-token pattern). Requests
 * whose method is not safe (anything but GET, HEAD and OPTIONS by default) must carry a token
 * from `ctx.session.csrfToken()` in the `x-csrf-token` header or in the `_csrf` field of a form
 * body already parsed into `ctx.request.body` (by a body parser that runs before this
 * middleware; the raw body is never read here); otherwise it throws a {@linkcode CsrfError}
 * (`ERR_CSRF`, `status` 403, `expose` true), which Koa answers with a 403. Register it after
 * {@linkcode koaSession} (or `bridgeSession`).
 *
 * @param options header and field names, safe methods (see {@linkcode CsrfOptions})
 * @returns the middleware
 * @throws {TypeError} for invalid options, or at request time when no session middleware ran
 *
 * @example Usage
 * ```ts
 * import Koa from "koa";
 * import { createSessions, MapStore } from "unisession";
 * import { koaCsrf, koaSession } from "unisession/koa";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const app = new Koa();
 * app.use(koaSession(sessions));
 * app.use(koaCsrf());
 * app.use((ctx) => {
 *   ctx.body = ctx.method === "GET" ? { token: ctx.session.csrfToken() } : "done";
 * });
 * ```
 */
export function koaCsrf(options: CsrfOptions = {}): Middleware {
  const o = resolveCsrfOptions(options);
  return async function unisessionKoaCsrf(ctx: Context, next: Next): Promise<void> {
    if (o.safeMethods.has(ctx.method.toUpperCase())) return next();
    if (entryAt(ctx) === undefined) {
      throw new TypeError("Cannot check CSRF token: the session middleware did not run first");
    }
    let token: unknown = ctx.get(o.header) || undefined;
    if (!token && o.field !== undefined && isFormContentType(ctx.get("content-type"))) {
      const body = (ctx.request as { body?: unknown }).body;
      if (body !== null && typeof body === "object") {
        token = Object.hasOwn(body, o.field)
          ? (body as Record<string, unknown>)[o.field]
          : undefined;
      }
    }
    const current = ctx.session as { verifyCsrf(token: unknown): boolean } | null;
    if (current === null || !current.verifyCsrf(token)) throw new CsrfError();
    await next();
  };
}

export type { CsrfOptions };
export { generateUid };
export default bridgeSession;

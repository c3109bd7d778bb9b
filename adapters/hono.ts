/**
 * Hono middleware: `c.session`, `c.get("session")`, `c.session = null`, `c.sessionId`,
 * `c.clientId`. A drop-in for hono-session (same options, same session API) that can also share
 * a {@linkcode SessionManager} with the socket.io and Koa adapters.
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { session } from "unisession/hono";
 * import "unisession/hono/global";
 *
 * const app = new Hono()
 *   .use(session({ secret: "a-secret-of-at-least-32-characters!!" }))
 *   .post("/login", (c) => {
 *     c.session.userId = "ada";
 *     return c.text("ok");
 *   })
 *   .get("/me", (c) => c.text(c.session.userId ?? "anonymous"));
 * const res = await app.request("/login", { method: "POST" });
 * console.log(res.headers.get("set-cookie")?.startsWith("sid=")); // true
 * ```
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { CsrfError, StoreError } from "../src/errors.ts";
import { type CsrfOptions, isFormContentType, resolveCsrfOptions } from "../src/csrf.ts";
import type { CookieOptions as HonoCookieOptions } from "hono/utils/cookie";
import { adapterSteps, createSessions, SessionManager } from "../src/manager.ts";
import { isThenable } from "../src/awaitable.ts";
import type { ClientOptions, SessionEncoder, SessionOptions } from "../src/options.ts";
import type { Session as CoreSession, SessionApi, SessionState } from "../src/session.ts";
import { type HonoStyleStore, type Store, type StoreLike, toStore } from "../src/store.ts";
import { honoEncoder, HonoRows, type Upgrade, upgradeFor, withCookie } from "./hono_compat.ts";

export { type SessionEventMessage, sessionEvents, type SessionEventsOptions } from "./hono_sse.ts";

/** hono-session's default export: `import session from "unisession/hono"`. */
export { session as default };

/**
 * The session type of `c.session` when no generic is given. `c.session`, `c.sessionId` and
 * `c.clientId` are typed by `import "unisession/hono/global"` (npm; on JSR, where ambient module
 * declarations cannot be published, copy its three-line `declare module "hono"` block). Augment
 * this interface to type sessions globally:
 *
 * ```ts ignore
 * declare module "unisession/hono" {
 *   interface Session {
 *     userId?: string;
 *   }
 * }
 * ```
 */
export interface Session extends SessionApi {
  /** Your data: any JSON value under any key that is not a session method. */
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
}

/** hono-session's options, accepted unchanged, plus unisession extras. */
export interface HonoSessionOptions {
  /** Session expiry in seconds. Default 1 day. */
  maxAge?: number;
  /** Cookie name. Default `"sid"`. */
  cookieName?: string;
  /** Cookie attributes (Hono's cookie options). Default `{ secure: true, httpOnly: true }`. */
  cookieOptions?: HonoCookieOptions;
  /**
   * Encryption (stateless) or signing (store) secret, at least 32 characters. Default: random in
   * stateless mode; with a store, an unsigned id cookie (as hono-session's).
   */
  secret?: string;
  /** Several secrets, newest first (rotation). Takes precedence over `secret`. */
  keys?: readonly string[];
  /**
   * Custom stateless encoder; iron seals by default. `encode(data, secret)` gets the session as
   * hono-session passes it (the data, `_expires`, `_flashKeys`) plus `_unisession` (the session id
   * and creation time); `decode` returns that object, or undefined / throws for an invalid cookie.
   */
  encoder?: SessionEncoder | null;
  /** External store (`Map`, `{ get, set, delete }`, or any store `toStore` accepts). */
  store?: StoreLike | null;
  /** Client-id cookie for the socket bridge. Default off for this drop-in; pass `{}` to enable. */
  client?: ClientOptions | false;
  /** Absolute timeout in seconds. */
  absoluteMaxAge?: number;
  /** Same-session requests run one at a time. */
  serialize?: boolean;
  /** Further core options. */
  onInvalid?: SessionOptions["onInvalid"];
}

/**
 * The request's manager and state, on the context under a symbol (a WeakMap entry per request
 * would cost an ephemeron in every garbage collection).
 */
const STATE = Symbol("unisession.state");
type WithState = { [STATE]?: { manager: SessionManager; state: SessionState } };
const patched = new WeakSet<object>();

/** Accessors installed once on Hono's Context prototype. */
function installAccessors(c: Context): void {
  const proto = Object.getPrototypeOf(c) as object;
  if (patched.has(proto)) return;
  patched.add(proto);
  if (!Object.hasOwn(proto, "session")) {
    Object.defineProperty(proto, "session", {
      configurable: true,
      get(this: Context) {
        return this.get("session");
      },
      set(this: Context, value: object | null) {
        this.set("session", value as Session);
      },
    });
  }
  for (const name of ["sessionId", "clientId"] as const) {
    if (Object.hasOwn(proto, name)) continue;
    Object.defineProperty(proto, name, {
      configurable: true,
      get(this: Context) {
        const entry = (this as WithState)[STATE];
        if (!entry) return undefined;
        return name === "clientId"
          ? entry.manager.clientIdOf(entry.state)
          : entry.manager.sessionIdOf(entry.state);
      },
    });
  }
}

/**
 * A hono-session store (`set(id, data, c)`), as opposed to a Map or a unisession store (which have
 * `update`, `list` or are synchronous): the context goes in as the third argument of `set`.
 */
function isHonoStyleStore(store: StoreLike | undefined): store is HonoStyleStore {
  if (!store || store instanceof Map || typeof store !== "object") return false;
  const s = store as Partial<Store> & { destroy?: unknown };
  return typeof s.delete === "function" && typeof s.update !== "function" &&
    typeof s.list !== "function" && s.synchronous !== true && typeof s.destroy !== "function";
}

/** Translates hono-session options to core options. */
function fromHonoOptions(o: HonoSessionOptions, rows: HonoRows | undefined): SessionOptions {
  const co = { secure: true, httpOnly: true, ...o.cookieOptions } as HonoCookieOptions;
  const secure = co.prefix === "secure" || co.prefix === "host" ? true : co.secure;
  const prefix = co.prefix === "host" ? "__Host-" : co.prefix === "secure" ? "__Secure-" : "";
  const name = prefix + (o.cookieName ?? "sid");
  const maxAge = windowMs(o);
  const keys = keysOf(o);
  const store = o.store ?? undefined; // hono-session takes `store: null` for none
  const encoder = o.encoder ?? undefined;
  return {
    store: rows ?? store,
    keys,
    // hono-session's store mode sends the bare id (a random UUID) and needs no secret: without
    // one the id cookie is unsigned here too (144 random bits), so it verifies after a restart
    // (a random key would not). The client-id cookie follows the session cookie.
    signed: store !== undefined && keys === undefined ? false : undefined,
    encoder: encoder !== undefined && store === undefined
      ? honoEncoder(encoder, name, maxAge)
      : encoder,
    cookie: {
      name,
      path: co.path,
      domain: co.domain,
      secure,
      httpOnly: co.httpOnly,
      sameSite: co.sameSite?.toLowerCase() as "lax" | "strict" | "none" | undefined,
      partitioned: co.partitioned,
      priority: co.priority?.toLowerCase() as "low" | "medium" | "high" | undefined,
    },
    client: o.client ?? false,
    maxAge,
    absoluteMaxAge: o.absoluteMaxAge === undefined ? undefined : o.absoluteMaxAge * 1000,
    serialize: o.serialize,
    onInvalid: o.onInvalid,
    renewUnit: 1000,
  };
}

/** hono-session's `maxAge` (seconds, default a day) in ms. */
function windowMs(o: HonoSessionOptions): number {
  return (o.maxAge ?? 86_400) * 1000;
}

/** The secrets of hono-session options, newest first; undefined when none is given. */
function keysOf(o: HonoSessionOptions): readonly string[] | undefined {
  return o.keys ?? (o.secret === undefined ? undefined : [o.secret]);
}

/**
 * Session middleware for Hono.
 *
 * - `session(options)`: hono-session's options (maxAge in seconds, `cookieName`, `cookieOptions`,
 *   `secret`, `encoder`, `store`); without `store` the session is sealed into the cookie. With a
 *   store and no secret the id cookie is unsigned, as hono-session's. Sessions hono-session itself
 *   saved (its iron cookies under the same secret, its store rows and UUID cookies, a custom
 *   encoder's cookies) are read, and rewritten in this library's format when first used.
 * - `session(manager)`: share a manager made by `createSessions()` with other adapters.
 *
 * @typeParam T the shape of the session data (`c.session` is `T & SessionApi`)
 * @param options hono-session options or a {@linkcode SessionManager}
 * @returns the middleware
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { createSessions, MapStore } from "unisession";
 * import { session } from "unisession/hono";
 * import "unisession/hono/global";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const app = new Hono().use(session<{ count?: number }>(sessions)).get("/", (c) => {
 *   c.session.count = (c.session.count ?? 0) + 1;
 *   return c.json({ count: c.session.count });
 * });
 * const res = await app.request("/");
 * console.log(await res.json()); // { count: 1 }
 * ```
 */
export function session<T extends object = Session>(
  options: HonoSessionOptions | SessionManager = {},
): MiddlewareHandler<{ Variables: { session: CoreSession<T> } }> {
  let manager: SessionManager;
  let rows: HonoRows | undefined;
  let upgrade: Upgrade | undefined;
  if (options instanceof SessionManager) manager = options;
  else {
    const store = options.store ?? undefined;
    if (isHonoStyleStore(store)) {
      rows = new HonoRows(toStore(store, "hono"), windowMs(options));
    }
    manager = createSessions(fromHonoOptions(options, rows));
    upgrade = upgradeFor(
      {
        keys: keysOf(options),
        maxAge: manager.maxAge,
        encoder: (options.encoder ?? undefined) !== undefined,
      },
      manager,
      rows,
    );
  }
  // One async function per request (handle), not one per layer: each costs a promise and a
  // microtask turn.
  return function session(c, next) {
    let header: string | undefined;
    try {
      installAccessors(c);
      header = cookieHeader(c);
      const old = upgrade?.match(header);
      if (old !== undefined) return upgraded(c, next, header!, old);
    } catch (err) {
      return Promise.reject(err);
    }
    return start(c, next, header, false);
  };

  /** Opens the request's session and handles the request. */
  function start(
    c: Context,
    next: () => Promise<void>,
    header: string | undefined,
    migrate: boolean,
  ): Promise<void> {
    let state: SessionState;
    try {
      state = manager.open(header, { ctx: c, https: c.req.url.startsWith("https:") });
    } catch (err) {
      return Promise.reject(err);
    }
    // serialize: load, handle and commit under the session's lock, so `count++` is exact.
    if (manager.serialize && state.id !== undefined) {
      return manager.runExclusive(state.id, () => handle(c, next, state, migrate));
    }
    return handle(c, next, state, migrate);
  }

  /** A request with one of hono-session's cookies: opened with this library's in its place. */
  async function upgraded(
    c: Context,
    next: () => Promise<void>,
    header: string,
    old: string,
  ): Promise<void> {
    let value: string | undefined;
    try {
      value = await upgrade!.replace(old, c);
    } catch (err) {
      throw unavailable(err);
    }
    if (value === undefined) return start(c, next, header, false); // "no session", as it was
    return start(c, next, withCookie(header, manager.cookieName, value), true);
  }

  async function handle(
    c: Context,
    next: () => Promise<void>,
    state: SessionState,
    migrate: boolean,
  ): Promise<void> {
    try {
      const pending = manager.prepare(state);
      if (pending) await pending;
      // A synchronous store loads on first access, in the handler, where Hono's error handler
      // gets the error before this middleware does: the same HTTPException 503 as a load here.
      state.loadError = unavailable;
      // The browser gets this library's cookie in place of hono-session's.
      if (migrate) state.stale = true;
      (c as WithState)[STATE] = { manager, state };
      c.set("session", state.session as CoreSession<T>);
      await next();
      if (c.error) {
        // The handler failed: save nothing, so no half-done change reaches the store.
        writeHeaders(c, manager.abandon(state).cookies, false);
        return;
      }
      if (rows?.isOld(state.record)) {
        // Loaded from a row hono-session wrote: rewrite it in this library's format (the expiry
        // kept), and re-send the cookie (signed, with a secret).
        state.forceSave = true;
        state.stale = true;
      }
      const current = c.get("session") as unknown;
      const committed = adapterSteps.commit(
        manager as SessionManager<object>,
        state,
        current === state.session ? undefined : current as object | null,
      );
      const result = isThenable(committed) ? await committed : committed;
      writeHeaders(c, result.cookies, result.noStore);
    } catch (err) {
      throw unavailable(err);
    }
  }
}

/**
 * A failing store is the service being unavailable, not a bug: an HTTPException 503 (with the
 * StoreError as its cause, for app.onError), whether the session was loaded before the handler,
 * lazily in it (a synchronous store: `state.loadError`) or committed after it. Other errors as
 * they are. (A StoreError the app's own code throws reaches app.onError as itself; Hono's default
 * handler answers it with its `getResponse()`, a 503 too.)
 */
function unavailable(err: unknown): unknown {
  if (err instanceof StoreError) {
    return new HTTPException(503, { message: "Session store unavailable", cause: err });
  }
  return err;
}

/**
 * The request's Cookie header. On @hono/node-server it comes from Node's IncomingMessage
 * (`c.env.incoming`, as Hono's own `getConnInfo` reads it): `c.req.header()` would first build a
 * WHATWG `Headers` of every request header, which costs more than the whole session lookup.
 */
function cookieHeader(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: { headers?: { cookie?: unknown } } } | undefined)
    ?.incoming;
  if (incoming?.headers) {
    const cookie = incoming.headers.cookie;
    return typeof cookie === "string" ? cookie : undefined;
  }
  return c.req.header("cookie");
}

/**
 * Adds the Set-Cookie (and Cache-Control) headers to the response.
 *
 * A finished response gets them without being rebuilt: `c.header()` on a finalized response
 * re-creates it from its body, which on @hono/node-server turns the lightweight Response into a
 * full undici one (about 150 µs per request) and fails there for a `fetch()` result.
 * - @hono/node-server's lightweight Response (its cache holds status, body and headers): a new
 *   lightweight Response from the same body with the headers added. Mutating its headers in place
 *   is not enough: they are lost if anything reads the body before the headers.
 * - Other responses: their headers in place, as Hono's own middleware do (cors, etag).
 * - Immutable headers (a `fetch()` result, `Response.redirect()`): a copy of the response.
 */
function writeHeaders(c: Context, cookies: string[], noStore: boolean): void {
  if (cookies.length === 0 && !noStore) return;
  if (!c.finalized) {
    for (const cookie of cookies) c.header("Set-Cookie", cookie, { append: true });
    if (noStore) c.header("Cache-Control", "no-store");
    return;
  }
  const res = c.res;
  const light = lightweightParts(res);
  if (light) {
    // Array values are Node's: @hono/node-server passes a plain object to writeHead() as is.
    let headers = plainHeaders(light.headers, cookies, noStore) as HeadersInit | undefined;
    if (headers === undefined) {
      headers = new Headers(light.headers ?? { "content-type": "text/plain; charset=UTF-8" });
      addTo(headers, cookies, noStore);
    }
    replaceResponse(c, new Response(light.body, { status: light.status, headers }));
    return;
  }
  try {
    addTo(res.headers, cookies, noStore);
  } catch {
    // Immutable headers (the first append threw, so nothing was added): answer with a copy.
    const headers = new Headers(res.headers);
    addTo(headers, cookies, noStore);
    replaceResponse(
      c,
      new Response(res.body, { status: res.status, statusText: res.statusText, headers }),
    );
  }
}

/**
 * The headers of a lightweight response plus the session's, as the plain object @hono/node-server
 * hands to Node's `writeHead()` as is (`set-cookie` an array: one header line per cookie), or
 * undefined when the response's headers are not a plain object of strings without their own
 * Set-Cookie or Cache-Control. A WHATWG `Headers` instead costs about 1.7 µs per response on
 * Node (undici's validation on the way in, its sorted iteration on the way out).
 *
 * Anything that reads the response's headers later (a middleware outside this one) gets them
 * through the object's iterator, which lists each cookie on its own, as `new Headers()` needs.
 */
function plainHeaders(
  base: HeadersInit | undefined,
  cookies: string[],
  noStore: boolean,
): Record<string, string | string[]> | undefined {
  const out = Object.create(PLAIN_HEADERS) as Record<string, string | string[]>;
  if (base !== undefined) {
    if (typeof base !== "object" || base === null || Array.isArray(base)) return undefined;
    const proto = Object.getPrototypeOf(base);
    if (proto !== Object.prototype && proto !== PLAIN_HEADERS) return undefined; // Headers, Map...
    for (const key in base) {
      const value = (base as Record<string, unknown>)[key];
      // Lower-cased, as Headers would: a name given twice (in two cases) takes the Headers path.
      const name = key.toLowerCase();
      if (
        typeof value !== "string" || name === "set-cookie" || name === "cache-control" ||
        name === "__proto__" || Object.hasOwn(out, name)
      ) {
        return undefined;
      }
      out[name] = value;
    }
  }
  // @hono/node-server adds this default to a Headers, not to a plain object.
  out["content-type"] ??= "text/plain; charset=UTF-8";
  if (cookies.length > 0) out["set-cookie"] = cookies;
  if (noStore) out["cache-control"] = "no-store";
  return out;
}

/**
 * `[name, value]` pairs of a {@linkcode plainHeaders} object, one per cookie. Values may have
 * become numbers by then: @hono/node-server writes `Content-Length` into the object it sends.
 */
function* headerPairs(this: Record<string, unknown>): Generator<[string, string]> {
  for (const key in this) {
    const value = this[key];
    if (Array.isArray(value)) { for (const v of value) yield [key, String(v)]; }
    else yield [key, String(value)];
  }
}

/**
 * The prototype of {@linkcode plainHeaders} objects: Object.prototype plus their iterator
 * (not enumerable, and not an own key: Node's `writeHead()` reads own string keys only).
 * Defining the iterator on each object instead cost 0.4 µs per response in a loop on Node 20.
 */
const PLAIN_HEADERS: object = Object.create(Object.prototype, {
  [Symbol.iterator]: { value: headerPairs },
});

function addTo(headers: Headers, cookies: string[], noStore: boolean): void {
  for (const cookie of cookies) headers.append("Set-Cookie", cookie);
  if (noStore) headers.set("Cache-Control", "no-store");
}

/** Sets `c.res` to `res` as a replacement (the setter would otherwise merge the old headers in). */
function replaceResponse(c: Context, res: Response): void {
  c.res = undefined;
  c.res = res;
}

/** The own symbol under which @hono/node-server's lightweight Response keeps its parts. */
let lightweightKey: symbol | undefined;

/**
 * Per response prototype, whether it is @hono/node-server's lightweight Response class (its
 * prototype has a method under a symbol described "getResponseCache"). Any other response is
 * ruled out without listing its own symbols (a Deno Response has 12: 0.55 µs per response that
 * sets a cookie, against 0.02 for this check, measured in a loop).
 */
const lightweightClass = new WeakMap<object, boolean>();

function isLightweightClass(proto: object | null): boolean {
  if (proto === null) return false;
  let light = lightweightClass.get(proto);
  if (light === undefined) {
    light = Object.getOwnPropertySymbols(proto).some((s) => s.description === "getResponseCache");
    lightweightClass.set(proto, light);
  }
  return light;
}

/**
 * The status, body and headers of an unread @hono/node-server lightweight Response (an own
 * `[status, body, headers]` array under a symbol described "cache"), or undefined for any other
 * response (or once it has turned into a full one).
 */
function lightweightParts(
  res: Response,
): { status: number; body: BodyInit; headers: HeadersInit | undefined } | undefined {
  if (!isLightweightClass(Object.getPrototypeOf(res))) return undefined;
  let key = lightweightKey;
  if (key === undefined) {
    key = Object.getOwnPropertySymbols(res).find((s) => s.description === "cache");
    if (key === undefined) return undefined;
  }
  const parts = (res as unknown as Record<symbol, unknown>)[key];
  if (!Array.isArray(parts) || parts.length !== 3 || typeof parts[0] !== "number") {
    return undefined;
  }
  lightweightKey = key;
  return { status: parts[0], body: parts[1] as BodyInit, headers: parts[2] as HeadersInit };
}

/**
 * CSRF protection for Hono with the session's tokens (the synchronizer-token pattern; it
 * complements `hono/csrf`, which checks the Origin header). Requests whose method is not safe
 * (anything but GET, HEAD and OPTIONS by default) must carry a token from
 * `c.session.csrfToken()` in the `x-csrf-token` header or, for form posts, the `_csrf` field;
 * otherwise the middleware throws an `HTTPException(403)` whose `cause` is a
 * {@linkcode CsrfError} (`ERR_CSRF`). Register it after {@linkcode session}.
 *
 * @param options header and field names, safe methods (see {@linkcode CsrfOptions})
 * @returns the middleware
 * @throws {TypeError} for invalid options, or at request time when `session()` did not run first
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { createSessions, MapStore } from "unisession";
 * import { csrf, session } from "unisession/hono";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const app = new Hono()
 *   .use(session(sessions), csrf())
 *   .get("/form", (c) => c.json({ token: c.session.csrfToken() }))
 *   .post("/transfer", (c) => c.text("done"));
 * const res = await app.request("/transfer", { method: "POST" });
 * console.log(res.status); // 403
 * ```
 */
export function csrf(options: CsrfOptions = {}): MiddlewareHandler {
  const o = resolveCsrfOptions(options);
  return async function csrf(c, next) {
    if (o.safeMethods.has(c.req.method.toUpperCase())) return next();
    const current = c.get("session") as CoreSession | null | undefined;
    if (current === undefined) {
      throw new TypeError("Cannot check CSRF token: the session() middleware did not run first");
    }
    let token: unknown = c.req.header(o.header);
    if (!token && o.field !== undefined && isFormContentType(c.req.header("content-type"))) {
      try {
        token = (await c.req.parseBody())[o.field];
      } catch {
        token = undefined; // an unreadable body carries no token
      }
    }
    if (current === null || !current.verifyCsrf(token)) {
      throw new HTTPException(403, { message: "Invalid CSRF token", cause: new CsrfError() });
    }
    await next();
  };
}

export type { CsrfOptions, SessionApi };

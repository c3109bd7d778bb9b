/**
 * Options of {@linkcode createSessions}, validated once at construction.
 * @module
 */
import {
  type CookieOptions,
  MAX_COOKIE_AGE_MS,
  resolveCookieOptions,
  type ResolvedCookie,
} from "./cookie.ts";
import { type Store, type StoreLike, toStore } from "./store.ts";
import type { SessionData } from "./session.ts";

/** Why an incoming cookie or record was treated as "no session". */
export type InvalidReason =
  | "malformed"
  | "too-large"
  | "signature"
  | "sealed"
  | "expired"
  | "unknown-id"
  | "corrupt-record"
  | "client-signature";

/** Where warnings and debug lines go. Never receives secrets, cookie values or ids. */
export interface Logger {
  /** Warnings (random keys, failing listeners, failed background work). */
  warn(message: string): void;
  /** Session decisions, with the `debug` option. */
  debug?(message: string): void;
}

/** Custom stateless encoder (hono-session's `encoder`): object → string and back. */
export interface SessionEncoder {
  /** Object → cookie-safe string. */
  encode(data: unknown, secret: string): string | Promise<string>;
  /** String → object; throw (or return garbage) for anything invalid. */
  decode(data: string, secret: string): unknown;
}

/** Options of the browser's client-id cookie (the bridge between HTTP and sockets). */
export interface ClientOptions extends CookieOptions {
  /** Cookie name. Default `${cookie name}.cid`. */
  name?: string;
  /**
   * Lifetime in ms. Default 365 days (at most 400); with a browser-session session cookie
   * (`cookie.persistent: false`) and no `maxAge` here, the client-id cookie is a browser-session
   * cookie too.
   */
  maxAge?: number;
  /** Re-send the cookie on every response (rolling). Default false: re-sent with the session cookie. */
  alwaysRoll?: boolean;
  /**
   * Give the browser a new client id at `regenerate()` (login), as its session gets a new id.
   * Default false: the client id stays, so a socket opened before the login follows the new
   * session. The client id then opens the session over sockets as the session id does over
   * HTTP: whoever planted their own client-id cookie in a victim's browser (session fixation by
   * cookie injection) finds the victim's session after the login. With `true` the old client id
   * names no session after a login, and the sockets opened before it lose the session (after
   * the adapter's `destroyGraceMs`) until the page reconnects with its new cookies.
   *
   * @example
   * ```ts
   * import { createSessions, MapStore } from "unisession";
   *
   * const sessions = createSessions({
   *   store: new MapStore(),
   *   keys: ["a-secret-of-at-least-32-characters!!"],
   *   client: { rotateOnRegenerate: true },
   * });
   * console.log(sessions.clientCookieName); // "sid.cid"
   * ```
   */
  rotateOnRegenerate?: boolean;
}

/** Options of {@linkcode createSessions}. */
export interface SessionOptions {
  /**
   * Where sessions live. Omit for the stateless mode (the whole session sealed into the cookie).
   * Accepts a {@linkcode Store}, a plain `Map` and the store shapes of koa-session,
   * koa-generic-session/koa-redis, hono-session and @randajan/koa-io-session (see `toStore`).
   */
  store?: StoreLike;
  /**
   * Secrets, newest first: sign/seal with the first, accept all (rotation). At least 32
   * characters each. Omitted: a random key is generated with a warning (sessions end on restart).
   */
  keys?: readonly string[];
  /** Session cookie: name (default `"sid"`) and attributes, or a function of the request context. */
  cookie?: (CookieOptions & { name?: string }) | ((ctx: unknown) => CookieOptions);
  /** Cookie name when `cookie` is a function. Default `"sid"`. */
  cookieName?: string;
  /**
   * Store mode: sign the id cookies (HMAC-SHA-256 with `keys`). `false` sends the bare 144-bit
   * random id, as koa-session-minimal does: still unguessable, but a leaked store key is then
   * a valid cookie, and key rotation does not apply. Default true.
   */
  signed?: boolean;
  /** The client-id cookie (store mode only); `false` disables it. Default enabled. */
  client?: ClientOptions | false;
  /** Idle timeout in ms; renewed (rolling) once less than half remains. Default 1 day. */
  maxAge?: number;
  /** Absolute timeout in ms from creation, regardless of activity. Default none. */
  absoluteMaxAge?: number;
  /** Run same-session HTTP handlers and socket handlers one at a time. Default false. */
  serialize?: boolean;
  /** A pending store call fails with a StoreError after this many ms (0 = never). Default 10000. */
  storeTimeout?: number;
  /** Send `Cache-Control: no-store` on responses that set the session cookie. Default true. */
  noStore?: boolean;
  /** Called when an incoming cookie or stored record is invalid (it is then "no session"). */
  onInvalid?: (reason: InvalidReason, ctx: unknown) => void;
  /** Warnings and debug lines. Default `console`. */
  logger?: Logger;
  /** Log session decisions through `logger.debug` (no secrets). Default false. */
  debug?: boolean;
  /** Stateless mode only: a custom encoder instead of iron seals. */
  encoder?: SessionEncoder;
  /** Clock in epoch ms (for tests). Default `Date.now`. */
  now?: () => number;
  /** Unit of `session.renew(maxAge)` in ms (1000 for seconds). Default 1. */
  renewUnit?: number;
  /**
   * Who a session belongs to, from its data: a user id (string or number), or `undefined` /
   * `null` / `""` for an anonymous session. Evaluated on every write of the record; the store
   * keeps an index user → sessions for `listByUser` and `destroyByUser`. Store mode only. A
   * user id of more than 256 characters, or of another type, fails the write (a TypeError or
   * RangeError: a 500), as a bug of the function. Default: none (no index, no per-user methods).
   */
  identify?: (data: SessionData) => unknown;
  /**
   * Metadata to record with a session when it is created or regenerated, shown by
   * `listByUser` (e.g. `(c) => ({ userAgent: c.req.header("user-agent") })` with Hono): a
   * JSON object, or `undefined` for none. Gets the framework context. A function that throws is
   * logged and records nothing. Default: none (nothing about the request is stored).
   */
  describe?: (ctx: unknown) => Record<string, unknown> | undefined;
}

/** Internal option for drop-ins whose users bring short keys (koa `app.keys`). */
export const ALLOW_SHORT_KEYS: unique symbol = Symbol("unisession.allowShortKeys");

/** Options after validation. */
export interface ResolvedOptions {
  store: Store | undefined;
  keys: readonly string[];
  randomKey: boolean;
  signed: boolean;
  cookie: ResolvedCookie;
  cookieFn: ((ctx: unknown) => CookieOptions) | undefined;
  client:
    | (ResolvedCookie & {
      maxAge: number;
      alwaysRoll: boolean;
      rotateOnRegenerate: boolean;
      /**
       * `maxAge` or `persistent` was given: `persistent` is the cookie's. Otherwise it ends with a
       * browser-session cookie (the session cookie's persistence, per request): a client id that
       * outlived it would still open the session over sockets after the browser closed, where
       * HTTP has none.
       */
      lifetimeGiven: boolean;
    })
    | undefined;
  maxAge: number;
  absoluteMaxAge: number;
  serialize: boolean;
  storeTimeout: number;
  noStore: boolean;
  onInvalid: ((reason: InvalidReason, ctx: unknown) => void) | undefined;
  logger: Logger;
  debug: boolean;
  encoder: SessionEncoder | undefined;
  now: () => number;
  renewUnit: number;
  identify: ((data: SessionData) => unknown) | undefined;
  describe: ((ctx: unknown) => Record<string, unknown> | undefined) | undefined;
}

const DAY = 86_400_000;

function duration(name: string, value: unknown, fallback: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`Cannot use option ${name}: must be a number of milliseconds`);
  }
  if (!(value > 0) || !Number.isFinite(value) || value > max) {
    throw new RangeError(
      `Cannot use option ${name}: must be positive and finite${
        max < Infinity ? ` and at most ${max} ms` : ""
      }`,
    );
  }
  return value;
}

/** Validates options; throws TypeError/RangeError with the option's name. */
export function resolveOptions(
  options: SessionOptions & { [ALLOW_SHORT_KEYS]?: boolean } = {},
): ResolvedOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot create sessions: options must be an object");
  }
  const logger = options.logger ?? console;
  const store = options.store === undefined ? undefined : toStore(options.store);
  let keys = options.keys;
  let randomKey = false;
  if (options.signed !== undefined && typeof options.signed !== "boolean") {
    throw new TypeError("Cannot use option signed: must be a boolean");
  }
  const signed = !store || options.signed !== false;
  if (keys === undefined && !signed) keys = ["unsigned"];
  else if (keys === undefined) {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    keys = [Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")];
    randomKey = true;
  }
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new TypeError("Cannot use option keys: must be a non-empty array of strings");
  }
  const minLength = store && (options[ALLOW_SHORT_KEYS] || !signed) ? 1 : 32;
  for (const k of keys) {
    if (typeof k !== "string") {
      throw new TypeError("Cannot use option keys: every key must be a string");
    }
    if (k.length < minLength) {
      throw new RangeError(
        `Cannot use option keys: every key must have at least ${minLength} characters`,
      );
    }
  }
  const cookieFn = typeof options.cookie === "function" ? options.cookie : undefined;
  const staticCookie = typeof options.cookie === "object" && options.cookie !== null
    ? options.cookie
    : {};
  const name = (staticCookie as { name?: string }).name ?? options.cookieName ?? "sid";
  const cookie = resolveCookieOptions(name, staticCookie);
  const maxAge = duration(
    "maxAge",
    options.maxAge,
    DAY,
    cookie.persistent ? MAX_COOKIE_AGE_MS : Infinity,
  );
  const absoluteMaxAge = options.absoluteMaxAge === undefined
    ? Infinity
    : duration("absoluteMaxAge", options.absoluteMaxAge, Infinity);
  let client: ResolvedOptions["client"];
  if (store && options.client !== false) {
    const c = options.client ?? {};
    client = {
      ...resolveCookieOptions(c.name ?? `${name}.cid`, {
        path: cookie.path,
        domain: cookie.domain,
        secure: cookie.secure,
        sameSite: cookie.sameSite,
        partitioned: cookie.partitioned,
        ...c,
      }),
      maxAge: duration("client.maxAge", c.maxAge, 365 * DAY, MAX_COOKIE_AGE_MS),
      alwaysRoll: c.alwaysRoll ?? false,
      rotateOnRegenerate: c.rotateOnRegenerate ?? false,
      lifetimeGiven: c.maxAge !== undefined || c.persistent !== undefined,
    };
    if (client.name === cookie.name) {
      throw new TypeError(
        "Cannot use option client.name: must differ from the session cookie name",
      );
    }
  }
  const storeTimeout = options.storeTimeout === undefined
    ? 10_000
    : options.storeTimeout === 0
    ? 0
    : duration("storeTimeout", options.storeTimeout, 10_000);
  if (options.encoder !== undefined) {
    const e = options.encoder;
    if (!e || typeof e.encode !== "function" || typeof e.decode !== "function") {
      throw new TypeError("Cannot use option encoder: must have encode() and decode()");
    }
  }
  for (const fn of ["onInvalid", "now", "identify", "describe"] as const) {
    if (options[fn] !== undefined && typeof options[fn] !== "function") {
      throw new TypeError(`Cannot use option ${fn}: must be a function`);
    }
  }
  if (!store && (options.identify !== undefined || options.describe !== undefined)) {
    throw new TypeError(
      "Cannot use options identify and describe: per-user sessions need a store",
    );
  }
  const renewUnit = options.renewUnit ?? 1;
  if (!(renewUnit > 0)) throw new RangeError("Cannot use option renewUnit: must be positive");
  return {
    store,
    keys: [...keys],
    randomKey,
    signed,
    cookie,
    cookieFn,
    client,
    maxAge,
    absoluteMaxAge,
    serialize: options.serialize ?? false,
    storeTimeout,
    noStore: options.noStore ?? true,
    onInvalid: options.onInvalid,
    logger,
    debug: options.debug ?? false,
    encoder: options.encoder,
    now: options.now ?? Date.now,
    renewUnit,
    identify: options.identify,
    describe: options.describe,
  };
}

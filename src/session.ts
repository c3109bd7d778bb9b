/**
 * The per-request session: a Proxy over the session data that loads lazily, tracks changes
 * (nested mutations included) and carries the session methods (`renew`, `regenerate`, `flash`,
 * ...) without putting them in the data.
 * @module
 */
import { createCsrfSecret, maskCsrfToken, verifyCsrfToken } from "./csrf.ts";
import { MAX_COOKIE_AGE_MS } from "./cookie.ts";
import { CsrfError, ResponseSentError } from "./errors.ts";
import type { StoredRecord } from "./store.ts";
import { defineKey, exactCopy, NOT_EXACT, sameJson } from "./json_copy.ts";

/** Session data: any JSON object. */
export type SessionData = Record<string, unknown>;

/** Methods and flags every session object has, next to its data. */
export interface SessionApi {
  /** True until the session has been saved (no record existed when the request began). */
  readonly isNew: boolean;
  /** True when the data changed since it was loaded (nested mutation included). */
  readonly hasChanged: boolean;
  /** True when the session holds any data. */
  readonly populated: boolean;
  /** Number of top-level keys. */
  readonly length: number;
  /**
   * Idle timeout of this session in ms; assigning renews the session with the new window. A
   * window over 400 days is capped at 400 days (the longest Max-Age browsers keep); a value that
   * is not a positive finite number throws at the assignment (TypeError, RangeError).
   */
  maxAge: number;
  /**
   * Extends the expiry: a fresh idle window from now (optionally a new window length, in the
   * unit of the adapter: seconds for the hono-session drop-in, ms elsewhere; capped and checked
   * as an assignment to `maxAge`).
   */
  renew(maxAge?: number): void;
  /** Extends the expiry without changing data (alias of `renew()`). */
  touch(): void;
  /** New session id (call on login: prevents fixation); the old record is deleted, data kept. */
  regenerate(): Promise<void>;
  /** Marks the session for destruction at the end of the request (same as assigning null). */
  destroy(): void;
  /** Forces a save at the end of the request even when nothing changed. */
  save(): void;
  /** Sets a value that is removed after the next request. */
  flash(key: string, value: unknown): void;
  /** Keeps the values flashed by the previous request for one more request. */
  reflash(): void;
  /** A plain copy of the data. */
  toJSON(): SessionData;
  /**
   * A CSRF token for this session: creates the session's secret on first use (which saves the
   * session, even an empty one) and returns it masked with a fresh random pad, so every call
   * gives a different token (BREACH-safe). `regenerate()` replaces the secret: tokens issued
   * before a login stop working.
   *
   * @example Usage
   * ```ts ignore
   * app.get("/form", (c) => c.html(`<input type="hidden" name="_csrf" value="${c.session.csrfToken()}">`));
   * ```
   */
  csrfToken(): string;
  /** True when `token` is a CSRF token of this session (constant-time; false when malformed). */
  verifyCsrf(token: unknown): boolean;
  /** Throws a `CsrfError` (`ERR_CSRF`, status 403) unless `token` is a CSRF token of this session. */
  assertCsrf(token: unknown): void;
}

/**
 * A session object: your data (typed by `T`) plus {@linkcode SessionApi}.
 * @typeParam T the shape of your session data
 */
export type Session<T extends object = SessionData> = T & SessionApi;

/** What a session state needs from its manager. */
export interface SessionHost {
  /** Loads the record synchronously (lazy mode). */
  loadSync(state: SessionState): void;
  /** Replaces the session id, deleting the old record. */
  regenerate(state: SessionState): Promise<void>;
  /** Default idle window in ms. */
  readonly maxAge: number;
  /** Multiplier from `renew(maxAge)` units to ms. */
  readonly renewUnit: number;
}

/** Symbol under which a session proxy exposes its state (for adapters). */
export const STATE: unique symbol = Symbol("unisession.state");

type Api = { [K in keyof SessionApi]: (s: SessionState) => unknown };
const API: Api = Object.assign(Object.create(null), {
  isNew: (s: SessionState) => (s.ensureLoaded(), s.isNew),
  hasChanged: (s: SessionState) => (s.ensureLoaded(), s.changedKeys().length > 0),
  populated: (s: SessionState) => (s.ensureLoaded(), hasOwnKeys(s.data)),
  length: (s: SessionState) => (s.ensureLoaded(), Object.keys(s.data).length),
  maxAge: (s: SessionState) => (s.ensureLoaded(), s.maxAge ?? s.record?.maxAge ?? s.host.maxAge),
  renew: () => apiRenew,
  touch: () => apiTouch,
  regenerate: () => apiRegenerate,
  destroy: () => apiDestroy,
  save: () => apiSave,
  flash: () => apiFlash,
  reflash: () => apiReflash,
  toJSON: () => apiToJSON,
  csrfToken: () => apiCsrfToken,
  verifyCsrf: () => apiVerifyCsrf,
  assertCsrf: () => apiAssertCsrf,
});

function state(self: unknown): SessionState {
  const s = (self as { [STATE]?: SessionState })?.[STATE];
  if (!s) throw new TypeError("Cannot call session method: not called on a session");
  return s;
}
function apiRenew(this: unknown, maxAge?: number): void {
  const s = state(this);
  s.assertOpen();
  s.ensureLoaded();
  if (maxAge !== undefined) {
    // A non-number goes to setMaxAge as it is, for its TypeError ("x" * 1000 would be NaN).
    s.setMaxAge(typeof maxAge === "number" ? maxAge * s.host.renewUnit : maxAge);
  }
  s.renewRequested = true;
}
function apiTouch(this: unknown): void {
  const s = state(this);
  s.assertOpen();
  s.ensureLoaded();
  s.renewRequested = true;
}
function apiRegenerate(this: unknown): Promise<void> {
  const s = state(this);
  const done = s.host.regenerate(s);
  // The commit waits for it, so a regenerate() that is not awaited still completes in time; and
  // fails if it failed: saving under the old id would be a session fixation.
  s.pending = done.then(() => {
    s.regenerateFailure = undefined;
  }, (error) => {
    s.regenerateFailure = { error };
  });
  return done;
}
function apiDestroy(this: unknown): void {
  const s = state(this);
  s.assertOpen();
  s.destroyed = true;
}
function apiSave(this: unknown): void {
  const s = state(this);
  s.assertOpen();
  s.ensureLoaded();
  s.forceSave = true;
}
function apiFlash(this: unknown, key: string, value: unknown): void {
  const s = state(this);
  if (typeof key !== "string") throw new TypeError("Cannot flash: key must be a string");
  s.ensureLoaded();
  s.writeKey(key, value);
  (s.flashNew ??= new Set()).add(key);
  s.flashOld?.delete(key);
}
function apiReflash(this: unknown): void {
  const s = state(this);
  s.ensureLoaded();
  if (!s.flashOld?.size) return;
  s.flashNew ??= new Set();
  for (const k of s.flashOld) s.flashNew.add(k);
  s.flashOld = undefined;
}
function apiToJSON(this: unknown): SessionData {
  const s = state(this);
  s.ensureLoaded();
  return copyData(s.data);
}
function apiCsrfToken(this: unknown): string {
  const s = state(this);
  s.ensureLoaded();
  if (s.csrf === undefined) {
    s.assertOpen();
    s.csrf = createCsrfSecret();
    s.csrfChanged = true;
  }
  return maskCsrfToken(s.csrf);
}
function apiVerifyCsrf(this: unknown, token: unknown): boolean {
  const s = state(this);
  s.ensureLoaded();
  return verifyCsrfToken(s.csrf, token);
}
function apiAssertCsrf(this: unknown, token: unknown): void {
  if (!apiVerifyCsrf.call(this, token)) throw new CsrfError();
}

/**
 * The state of one request's session; also the Proxy handler of its session object.
 * Adapters reach it through `session[STATE]`; applications use the session object.
 */
export class SessionState implements ProxyHandler<SessionData> {
  /** The manager's side of this state (loading, regenerating); for adapters it is opaque. */
  readonly host: SessionHost;
  /** The framework context (passed to stores and dynamic cookie options). */
  readonly ctx: unknown;
  /** Whether the request came over https (for `secure: "auto"`). */
  readonly https: boolean;
  /** The raw session cookie value as received. */
  readonly cookieValue: string | undefined;
  /** Current session id (verified from the cookie, or assigned on creation/regeneration). */
  id: string | undefined;
  /** The cookie was signed/sealed with an older key: re-issue it. */
  stale: boolean;
  /** The browser's client id, and whether it came from a valid cookie. */
  clientId: string | undefined;
  /** The client id came from a valid client-id cookie (otherwise it is new in this request). */
  clientFromCookie: boolean;
  /** The client-id cookie was signed with an older key: re-issue it. */
  clientStale = false;
  /** The verified client-id cookie value as received (re-sent without a new MAC). */
  clientRaw: string | undefined;
  /**
   * The client id is new in this request and not yet a session's id: a new session takes it as
   * its id (the browser's first session and its client id are one id, so no mapping record).
   */
  clientFree = false;

  /**
   * Takes `clientId` as the browser's client id instead of the one its cookie gave (or was made
   * for it): that cookie is sent again with the commit. `free`: see {@linkcode clientFree}.
   */
  replaceClient(clientId: string, free: boolean): void {
    this.clientId = clientId;
    this.clientFromCookie = false;
    this.clientStale = false;
    this.clientRaw = undefined;
    this.clientFree = free;
  }

  /** The record was read (or there is none to read): data is usable. */
  loaded = false;
  /** A store read failed: this request must never write the session. */
  loadFailed = false;
  /**
   * The adapter's form of an error thrown by a lazy load (a synchronous store read on first
   * access, inside the handler), so the application sees what a load in the middleware gives it
   * (Hono: the HTTPException 503 around the StoreError). Undefined: the error as it is.
   */
  loadError: ((err: unknown) => unknown) | undefined;
  /** The stored (or unsealed) record this request started from, if any. */
  record: StoredRecord | undefined;
  /** No existing session was found: a commit creates one (if there is anything to save). */
  isNew = true;
  /** The session data (the Proxy's target). */
  readonly data: SessionData = {};
  /** The session object handed to the application (a Proxy over `data`). */
  readonly session: Session;

  /**
   * Top-level keys assigned or deleted in this request (made on the first one: most requests
   * only read, and an empty Set costs about 150 bytes of garbage per request).
   */
  dirty: Set<string> | undefined;
  /**
   * Object values as first read, to detect deep changes at commit: a private copy when JSON
   * reads them back exactly (see `exactCopy`), else their JSON (see {@linkcode firstRead}).
   */
  snapshots: Map<string, unknown> | undefined;
  /** `destroy()` was called (or the session was set to null). */
  destroyed = false;
  /** `regenerate()` gave the session a new id in this request. */
  regenerated = false;
  /** `renew()` (or a new maxAge) asks for a fresh expiry even without changes. */
  renewRequested = false;
  /** `save()` asks for a write even without changes. */
  forceSave = false;
  /** This session's own idle timeout in ms, when set (`maxAge`). */
  maxAge: number | undefined;
  /** Flash keys set by the previous request (removed at this commit). */
  flashOld: Set<string> | undefined;
  /** Flash keys set in this request (kept for the next one). */
  flashNew: Set<string> | undefined;
  /** The commit ran: any later change is an error (`ResponseSentError`). */
  closed = false;
  /** A regenerate() in flight; the commit waits for it. */
  pending: Promise<void> | undefined;
  /** The last regenerate() failed (the store): the commit fails too, nothing is saved. */
  regenerateFailure: { error: unknown } | undefined;
  /** The session cookie was added to the response. */
  sessionCookieSent = false;
  /** The session's CSRF secret (from the record, or created by `csrfToken()`). */
  csrf: string | undefined;
  /** `csrfToken()` created the secret in this request: it must be saved. */
  csrfChanged = false;

  /**
   * Created by the manager's `open()` for each request; adapters do not construct it.
   * @param host the manager that loads and commits this session
   * @param init what the request's cookies said: the verified ids, their freshness, the context
   */
  constructor(
    host: SessionHost,
    init: {
      ctx?: unknown;
      https?: boolean;
      cookieValue?: string;
      id?: string;
      stale?: boolean;
      clientId?: string;
      clientFromCookie?: boolean;
    },
  ) {
    this.host = host;
    this.ctx = init.ctx;
    this.https = init.https ?? false;
    this.cookieValue = init.cookieValue;
    this.id = init.id;
    this.stale = init.stale ?? false;
    this.clientId = init.clientId;
    this.clientFromCookie = init.clientFromCookie ?? false;
    if (this.id === undefined) this.loaded = true; // nothing to load: a new session
    this.session = new Proxy(this.data, this) as Session;
  }

  /** Loads the record if that has not happened yet (lazy mode). */
  ensureLoaded(): void {
    if (this.loaded) return;
    try {
      this.host.loadSync(this);
    } catch (err) {
      throw this.loadError ? this.loadError(err) : err;
    }
  }

  /** Installs a loaded record (or none). */
  applyRecord(record: StoredRecord | undefined): void {
    this.loaded = true;
    if (!record) {
      this.id = undefined;
      this.isNew = true;
      return;
    }
    this.record = record;
    this.isNew = false;
    this.csrf = typeof record.csrf === "string" ? record.csrf : undefined;
    assignData(this.data, record.data);
    if (record.flash?.length) this.flashOld = new Set(record.flash);
  }

  /** Throws once the request's session was committed: a later change would be lost silently. */
  assertOpen(): void {
    if (this.closed) throw new ResponseSentError();
  }

  /**
   * Sets this session's idle timeout (ms) and asks for a renewed expiry. Checked here, in the
   * handler, as the `maxAge` option is at setup: a bad value found at the commit would be an
   * HTTP 500 after the record was written, with no cookie sent.
   * @throws {TypeError} not a number (or NaN)
   * @throws {RangeError} not positive and finite
   */
  setMaxAge(ms: unknown): void {
    this.assertOpen();
    if (typeof ms !== "number" || Number.isNaN(ms)) {
      throw new TypeError("Cannot set session maxAge: must be a number");
    }
    if (!(ms > 0) || !Number.isFinite(ms)) {
      throw new RangeError("Cannot set session maxAge: must be positive and finite");
    }
    // The cookie's Max-Age is the time left on the record, and browsers keep a cookie at most
    // 400 days (RFC 6265bis; the serializer refuses more): a longer window is capped there. A
    // configured maxAge over 400 days (only allowed with a browser-session cookie, which has no
    // Max-Age) stays reachable.
    this.maxAge = Math.min(ms, Math.max(MAX_COOKIE_AGE_MS, this.host.maxAge));
    this.renewRequested = true;
  }

  /** Writes one data key, recording the change. */
  writeKey(key: string, value: unknown): void {
    this.assertOpen();
    this.markDirty(key);
    defineKey(this.data, key, value);
  }

  /** Replaces all data (`ctx.session = {...}`). */
  replaceData(next: object): void {
    this.ensureLoaded();
    for (const k of Object.keys(this.data)) {
      this.markDirty(k);
      delete this.data[k];
    }
    for (const k of Object.keys(next)) this.writeKey(k, (next as SessionData)[k]);
    this.forceSave = true;
  }

  /** Records a top-level key as assigned or deleted in this request. */
  markDirty(key: string): void {
    (this.dirty ??= new Set()).add(key);
  }

  /** Top-level keys whose value changed (set, deleted, or mutated in place). */
  changedKeys(): string[] {
    const dirty = this.dirty;
    const keys = dirty === undefined ? [] : [...dirty];
    if (this.snapshots) {
      for (const [k, snap] of this.snapshots) {
        if (!dirty?.has(k) && changedSince(snap, this.data[k])) keys.push(k);
      }
    }
    return keys;
  }

  /** Drops the keys flashed by the previous request; returns the flash list for the record. */
  ageFlash(): string[] | undefined {
    if (this.flashOld) {
      for (const k of this.flashOld) {
        if (Object.hasOwn(this.data, k)) {
          this.markDirty(k);
          delete this.data[k];
        }
      }
    }
    return this.flashNew?.size ? [...this.flashNew] : undefined;
  }

  // ---- Proxy traps ----
  /** Proxy trap: the session API, then the data (loaded on first access). */
  get(target: SessionData, key: string | symbol, receiver: unknown): unknown {
    if (typeof key === "symbol") return key === STATE ? this : Reflect.get(target, key, receiver);
    const api = API[key as keyof SessionApi];
    if (api !== undefined) return api(this);
    this.ensureLoaded();
    const value = target[key];
    if (value !== null && typeof value === "object" && !this.dirty?.has(key)) {
      const snaps = this.snapshots ??= new Map();
      if (!snaps.has(key)) snaps.set(key, firstRead(value));
    }
    return value;
  }

  /** Proxy trap: records the assignment (reserved API names are refused). */
  set(_target: SessionData, key: string | symbol, value: unknown): boolean {
    if (typeof key === "symbol") {
      throw new TypeError("Cannot set session key: symbols are not stored");
    }
    if (key === "maxAge") {
      this.ensureLoaded();
      this.setMaxAge(value);
      return true;
    }
    if (isReservedName(key)) {
      throw new TypeError(`Cannot set session.${key}: the name is reserved by the session API`);
    }
    this.ensureLoaded();
    this.writeKey(key, value);
    return true;
  }

  /** Proxy trap: records the deletion. */
  deleteProperty(target: SessionData, key: string | symbol): boolean {
    if (typeof key === "symbol") return true;
    this.assertOpen();
    this.ensureLoaded();
    if (Object.hasOwn(target, key)) this.markDirty(key);
    return delete target[key];
  }

  /** Proxy trap: data properties only (accessors cannot be stored). */
  defineProperty(_target: SessionData, key: string | symbol, desc: PropertyDescriptor): boolean {
    if (typeof key === "symbol") return false;
    this.ensureLoaded();
    if (!("value" in desc)) return false; // accessors cannot be stored
    this.writeKey(key, desc.value);
    return true;
  }

  /** Proxy trap: `key in session`. */
  has(target: SessionData, key: string | symbol): boolean {
    if (key === STATE) return true;
    this.ensureLoaded();
    return Reflect.has(target, key);
  }

  /** Proxy trap: `Object.keys(session)`. */
  ownKeys(target: SessionData): ArrayLike<string | symbol> {
    this.ensureLoaded();
    return Reflect.ownKeys(target);
  }

  /** Proxy trap: property descriptors of the data. */
  getOwnPropertyDescriptor(
    target: SessionData,
    key: string | symbol,
  ): PropertyDescriptor | undefined {
    this.ensureLoaded();
    return Reflect.getOwnPropertyDescriptor(target, key);
  }
}

/**
 * What an object value was when first read, to tell at commit whether it changed in place: a
 * private copy when it is JSON-exact (compared by a walk, without writing JSON), else its JSON.
 */
function firstRead(value: unknown): unknown {
  const tree = exactCopy(value);
  return tree === NOT_EXACT ? stringify(value) : tree;
}

/** True when `value` does not have the JSON of `before` (what {@linkcode firstRead} kept). */
function changedSince(before: unknown, value: unknown): boolean {
  if (typeof before === "string") return stringify(value) !== before;
  if (sameJson(before, value)) return false;
  // Not JSON-exact (a Date...), or with a key JSON leaves out: compared as JSON.
  const tree = exactCopy(value);
  return tree === NOT_EXACT ? stringify(value) !== JSON.stringify(before) : !sameJson(before, tree);
}

/** JSON of a value, or a marker that never equals a snapshot when it cannot be serialised. */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "undefined";
  } catch {
    return "\0unserialisable" + Math.random();
  }
}

/** True when `data` has an own enumerable key (as `Object.keys(data).length > 0`, without the array). */
export function hasOwnKeys(data: object): boolean {
  for (const k in data) if (Object.hasOwn(data, k)) return true;
  return false;
}

/** Copies own enumerable keys without invoking setters (`__proto__` stays a plain key). */
export function assignData(target: SessionData, source: object): void {
  for (const k of Object.keys(source)) defineKey(target, k, (source as SessionData)[k]);
}

/** True for names the session API reserves (`isNew`, `renew`, `flash`, ...): not data keys. */
export function isReservedName(key: string): boolean {
  return API[key as keyof SessionApi] !== undefined;
}

/** A shallow copy of session data (prototype-safe). */
export function copyData(source: object): SessionData {
  const out: SessionData = {};
  assignData(out, source);
  return out;
}

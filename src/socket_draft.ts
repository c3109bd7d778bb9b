/**
 * The `withSession` steps shared by the socket adapters (socket.io, native WebSockets): a private
 * draft of the session data for the handler, the top-level keys it changed, frozen snapshots and
 * the `onMissing` policy. Runtime-neutral; not part of the public API.
 * @module
 */
import { SessionMissingError, SessionReadOnlyError, SessionSerializationError } from "./errors.ts";
import { andThen, isThenable, promiseOf } from "./awaitable.ts";
import { adapterSteps, type SessionManager } from "./manager.ts";
import type { StoredRecord } from "./store.ts";
import { isReservedName, type SessionData } from "./session.ts";
import {
  copyJson,
  defineKey,
  exactCopy,
  isExactPrimitive,
  jsonCopy,
  NOT_EXACT,
  sameJson,
} from "./json_copy.ts";

/** JSON of a value; undefined for what JSON drops (undefined, functions, symbols). */
function toJson(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new SessionSerializationError({ cause: err });
  }
}

/** Freezes a value and everything reachable from it. */
function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const k of Object.keys(value)) deepFreeze((value as SessionData)[k]);
  }
  return value;
}

/** A private deep copy (as JSON would give it back, prototype-safe), deeply frozen. */
export function snapshot(data: object): Readonly<SessionData> {
  const out: SessionData = {};
  for (const k of Object.keys(data)) {
    const copy = jsonCopy((data as SessionData)[k]);
    if (copy !== undefined) defineKey(out, k, deepFreeze(copy));
  }
  return Object.freeze(out);
}

/**
 * What `withSession` gives back without a session: an Error is thrown, a function is called, any
 * other value is returned; without a policy, a {@linkcode SessionMissingError}.
 */
export function missing<M>(
  onMissing: Error | (() => M | Promise<M>) | M | undefined,
): M | Promise<M> {
  if (onMissing instanceof Error) throw onMissing;
  if (typeof onMissing === "function") return (onMissing as () => M | Promise<M>)();
  if (onMissing !== undefined) return onMissing as M;
  throw new SessionMissingError();
}

/** A private copy of a JSON-exact object or array as read (see {@linkcode exactCopy}). */
class Tree {
  constructor(readonly value: unknown) {}
}

/** The JSON of any other value as read. */
class Serialized {
  constructor(readonly json: string) {}
}

/**
 * What each key held as read, to find its changes: an exact primitive itself (see
 * {@linkcode isExactPrimitive}), a JSON-exact object or array as a {@linkcode Tree}, anything
 * else as its JSON.
 */
type Before = ReadonlyMap<string, unknown>;

/** The handler's copy of the data, and what each key held as read. */
interface Draft {
  readonly draft: SessionData;
  readonly before: Before;
}

/**
 * A deep, prototype-safe copy of `data` for a handler to change freely. `exact`: `data` is
 * exactly what JSON gives back and does not change while the handler runs (a MapStore's own
 * decoded record, or a socket's frozen snapshot), so what each key held as read is kept as it is,
 * not copied.
 */
function openDraft(data: object, exact: boolean): Draft {
  const before = new Map<string, unknown>();
  const draft: SessionData = {};
  for (const k of Object.keys(data)) {
    const value = (data as SessionData)[k];
    if (isExactPrimitive(value)) {
      before.set(k, value);
      defineKey(draft, k, value);
      continue;
    }
    if (exact && typeof value === "object" && value !== null) {
      before.set(k, new Tree(value));
      defineKey(draft, k, copyJson(value));
      continue;
    }
    const tree = exactCopy(value);
    if (tree !== NOT_EXACT) {
      before.set(k, new Tree(tree));
      defineKey(draft, k, copyJson(tree));
      continue;
    }
    const j = toJson(value);
    if (j === undefined) continue;
    before.set(k, new Serialized(j));
    defineKey(draft, k, JSON.parse(j));
  }
  return { draft, before };
}

/** The JSON of what a key held as read (undefined when it held nothing JSON keeps). */
function jsonBefore(before: Before, k: string): string | undefined {
  const was = before.get(k);
  if (was instanceof Serialized) return was.json;
  if (was instanceof Tree) return JSON.stringify(was.value);
  return before.has(k) ? JSON.stringify(was) : undefined;
}

/** The top-level keys a handler set (with private copies of their values) and removed. */
interface DraftChanges {
  readonly set: [string, unknown][];
  readonly removed: string[];
}

/**
 * Compares what the handler left in `ctx.session` (an object; `null` is handled by the caller)
 * with the draft as it was read.
 * @throws {TypeError} when `after` is not a plain object, or sets a name the session API reserves
 * @throws {SessionSerializationError} when a value cannot be serialised
 */
function draftChanges(before: Before, after: unknown): DraftChanges {
  if (after === null || typeof after !== "object" || Array.isArray(after)) {
    throw new TypeError("Cannot save session: ctx.session must be an object or null");
  }
  const set: [string, unknown][] = [];
  const removed: string[] = [];
  for (const k of Object.keys(after)) {
    const value = (after as SessionData)[k];
    if (isExactPrimitive(value)) {
      // Unchanged exactly when it is the value read (an object read is never `===` to it).
      if (before.get(k) !== value) set.push([k, value]);
      continue;
    }
    const was = before.get(k);
    if (was instanceof Tree && sameJson(was.value, value)) continue; // read through, unchanged
    const tree = exactCopy(value);
    if (tree !== NOT_EXACT) {
      // (The same JSON with a key JSON leaves out is unchanged too.)
      if (!(was instanceof Tree && sameJson(was.value, tree))) set.push([k, tree]);
      continue;
    }
    const j = toJson(value);
    if (j === undefined) {
      if (before.has(k)) removed.push(k);
    } else if (jsonBefore(before, k) !== j) set.push([k, JSON.parse(j)]);
  }
  for (const k of before.keys()) if (!Object.hasOwn(after, k)) removed.push(k);
  return { set, removed };
}

/** @throws {TypeError} when a changed key is a name the session API reserves */
function assertStorable(changes: DraftChanges): void {
  for (const [k] of changes.set) {
    if (isReservedName(k)) {
      throw new TypeError(`Cannot set session.${k}: the name is reserved by the session API`);
    }
  }
}

/** Applies the changes to a copy of the stored data (inside `manager.update`). */
function applyChanges(target: SessionData, changes: DraftChanges): void {
  for (const [k, v] of changes.set) defineKey(target, k, v);
  for (const k of changes.removed) delete target[k];
}

/** The part of a `Set<string>` that {@linkcode SocketSessionHost.ownWrites} uses. */
export interface KeyFlags {
  add(key: string): unknown;
  /** Removes a key; true when it was there. */
  delete(key: string): boolean;
}

/**
 * A set of strings that nearly always holds one or none (the sessions with a socket write in
 * flight): the first key in a field, any others in a Set made when needed. A Set that goes from
 * one entry to none on every write makes V8 reallocate its table each time (about 120 bytes of
 * garbage per socket write, measured with V8's sampling heap profiler).
 */
export class FewKeys implements KeyFlags {
  /** The first key, when `#hasOne`. */
  #one: string | undefined;
  #hasOne = false;
  #more: Set<string> | undefined;

  add(key: string): void {
    if ((this.#hasOne && key === this.#one) || this.#more?.has(key)) return;
    if (!this.#hasOne) {
      this.#one = key;
      this.#hasOne = true;
    } else (this.#more ??= new Set()).add(key);
  }

  delete(key: string): boolean {
    if (this.#hasOne && key === this.#one) {
      this.#one = undefined;
      this.#hasOne = false;
      return true;
    }
    return this.#more?.delete(key) ?? false;
  }
}

/** What {@linkcode runWithSession} needs from a socket adapter, for its socket type `B`. */
export interface SocketSessionHost<B> {
  readonly manager: SessionManager<object>;
  /** Sealed-cookie mode: sockets hold a read-only snapshot, writes are refused. */
  readonly sealed: boolean;
  /** Sessions with a write of this adapter in flight (their next local sessionSet is that write). */
  readonly ownWrites: KeyFlags;
  /** Sealed mode: the data the socket holds for `sid`, if it still follows that session. */
  sealedData(b: B, sid: string): object | undefined;
  /** The handler's `ctx` for the socket, with `draft` as `ctx.session`. */
  context(b: B, sid: string, draft: SessionData): { session: SessionData | null };
  /** A read or a write found the socket's session gone. */
  gone(b: B, sid: string): void;
  /** The data a write left (the record's own object: to be copied if kept). */
  written(sid: string, data: object): void;
  /** The session the socket follows now: known from the events, or confirmed in the store. */
  currentId(b: B): string | undefined | PromiseLike<string | undefined>;
  /** A check before the socket may use session `sid` (socket.io's CSRF token); rejects if not. */
  verify?(b: B, sid: string): Promise<void> | undefined;
}

/** What a socket adapter tracks per browser (or per session): the session it follows, its snapshot. */
export interface FollowedLink {
  sessionId: string | undefined;
  data: Readonly<SessionData> | undefined;
  /** Bumped on every event concerning the link (a re-read in flight then reads again). */
  gen: number;
  /** The re-read of the store in flight, if any. */
  running: Promise<void> | undefined;
  /** The client-id mapping must be re-read from the store. */
  remap: boolean;
  /** No longer tracked (its last socket left, or the adapter was detached). */
  dropped: boolean;
}

/** A socket as the adapters track it: its own handshake state, and its link once registered. */
export interface FollowingSocket<L extends FollowedLink> {
  /** The browser's client id from the handshake cookie, if any. */
  clientId: string | undefined;
  sessionId: string | undefined;
  data: Readonly<SessionData> | undefined;
  link: L | undefined;
}

/** The session id the events last gave the socket (its browser's, or its handshake's). */
export function knownId(b: FollowingSocket<FollowedLink>): string | undefined {
  return b.link ? b.link.sessionId : b.sessionId;
}

/**
 * The {@linkcode SocketSessionHost} of an adapter whose sockets follow sessions through links
 * (socket.io, native WebSockets): only the handler's `ctx` and what to do when a session is gone
 * differ between them.
 */
export function linkedHost<B extends FollowingSocket<L>, L extends FollowedLink>(init: {
  manager: SessionManager<object>;
  /** The links following each session. */
  bySession: ReadonlyMap<string, ReadonlySet<L>>;
  context: SocketSessionHost<B>["context"];
  /** A read or a write found the link's session gone. */
  gone(link: L, sid: string): void;
  /** The adapter is attached (a detached one trusts no event and moves no link). */
  active(): boolean;
  /**
   * The store's mapping says the link's browser is now on session `sid`: the link follows it
   * (and its snapshot is read again).
   */
  follow(link: L, sid: string): void;
  /** A socket whose handshake is still being read: what to wait for first. */
  ready?(b: B): PromiseLike<void> | undefined;
  verify?: SocketSessionHost<B>["verify"];
}): SocketSessionHost<B> {
  const { manager } = init;
  const sealed = manager.mode === "sealed";
  /** The socket's session id, confirmed through the client mapping in the store. */
  const mappedId = async (b: B, clientId: string): Promise<string | undefined> => {
    const link = b.link;
    const gen = link?.gen;
    const mapped = await manager.getSessionId(clientId);
    if (link && (link.gen !== gen || link !== b.link)) return knownId(b); // events were newer
    if (mapped === undefined) return knownId(b);
    if (link && link.sessionId !== mapped && !link.dropped) {
      if (init.active()) init.follow(link, mapped);
    } else if (!link) b.sessionId = mapped;
    return mapped;
  };
  /**
   * The socket's session id: the one the events gave it when they can be trusted (see
   * `hearsEveryWrite`), else confirmed through the client mapping in the store.
   */
  const currentId = (b: B): string | undefined | Promise<string | undefined> => {
    if (sealed || b.clientId === undefined) return knownId(b);
    const link = b.link;
    // The events of a MapStore of this manager alone have moved a tracked socket to its browser's
    // session already, unless a re-read of its mapping is pending.
    if (manager.hearsEveryWrite && init.active() && link && !link.dropped && !link.remap) {
      return link.sessionId;
    }
    return mappedId(b, b.clientId);
  };
  return {
    manager,
    sealed,
    ownWrites: new FewKeys(),
    currentId: (b) => {
      const ready = init.ready?.(b);
      return ready ? ready.then(() => currentId(b)) : currentId(b);
    },
    verify: init.verify,
    sealedData: (b, sid) => {
      const current = b.link ?? b;
      return current.sessionId === sid ? current.data : undefined;
    },
    context: init.context,
    gone: (b, sid) => {
      if (b.link) init.gone(b.link, sid);
    },
    written: (sid, data) => {
      const links = init.bySession.get(sid);
      if (!links) return;
      const snap = snapshot(data);
      for (const l of links) {
        l.data = snap;
        // A re-read in flight may have read the store before this write: it reads again.
        if (l.running) l.gen++;
      }
    },
  };
}

/**
 * `socket.withSession(handler, onMissing)`: finds the session the socket follows
 * (`host.currentId`), then `onMissing` without one, else `host.verify` (if any) and
 * {@linkcode runWithSession} under the session's lock (`manager.runExclusive`). Never throws:
 * every failure rejects the promise returned.
 */
export function withSessionOn<B, R, M>(
  host: SocketSessionHost<B>,
  b: B,
  handler: (ctx: never) => R | PromiseLike<R>,
  onMissing: Error | (() => M | Promise<M>) | M | undefined,
): Promise<R | M> {
  if (typeof handler !== "function") {
    return Promise.reject(new TypeError("Cannot run withSession: handler must be a function"));
  }
  let sid: string | undefined | PromiseLike<string | undefined>;
  try {
    sid = host.currentId(b);
  } catch (err) {
    return Promise.reject(err);
  }
  return isThenable(sid)
    ? Promise.resolve(sid).then((id) => withSessionId(host, b, id, handler, onMissing))
    : withSessionId(host, b, sid, handler, onMissing);
}

function withSessionId<B, R, M>(
  host: SocketSessionHost<B>,
  b: B,
  sid: string | undefined,
  handler: (ctx: never) => R | PromiseLike<R>,
  onMissing: Error | (() => M | Promise<M>) | M | undefined,
): Promise<R | M> {
  if (sid === undefined) return promiseOf(() => missing(onMissing));
  const verified = host.verify?.(b, sid);
  if (verified) {
    return verified.then(() =>
      host.manager.runExclusive(sid, () => runWithSession(host, b, sid, handler, onMissing))
    );
  }
  return host.manager.runExclusive(sid, () => runWithSession(host, b, sid, handler, onMissing));
}

/**
 * One `withSession` call on a session the socket follows, under the session's lock: reads the
 * record, runs the handler on a private draft, then destroys the session (`ctx.session = null`),
 * writes the top-level keys the handler changed (atomically, through `manager.update`), or only
 * renews the idle window when the rolling rule asks for it. Synchronous, without a promise per
 * step, while the store and the handler are: the caller turns a throw into a rejection.
 */
export function runWithSession<B, R, M>(
  host: SocketSessionHost<B>,
  b: B,
  sid: string,
  handler: (ctx: never) => R | PromiseLike<R>,
  onMissing: Error | (() => M | Promise<M>) | M | undefined,
): R | M | PromiseLike<R | M> {
  if (host.sealed) {
    // A socket's snapshot: deeply frozen, as JSON gives it back.
    return withData(host, b, sid, host.sealedData(b, sid), undefined, true, handler, onMissing);
  }
  const exact = adapterSteps.readsExact(host.manager);
  return andThen(adapterSteps.read(host.manager, sid), (rec) => {
    if (rec === undefined) host.gone(b, sid);
    return withData(host, b, sid, rec?.data, rec, exact, handler, onMissing);
  });
}

function withData<B, R, M>(
  host: SocketSessionHost<B>,
  b: B,
  sid: string,
  data: object | undefined,
  rec: StoredRecord | undefined,
  exact: boolean,
  handler: (ctx: never) => R | PromiseLike<R>,
  onMissing: Error | (() => M | Promise<M>) | M | undefined,
): R | M | PromiseLike<R | M> {
  if (data === undefined) return missing(onMissing);
  const { draft, before } = openDraft(data, exact);
  const ctx = host.context(b, sid, draft);
  return andThen(handler(ctx as never), (result) => {
    const after = ctx.session as unknown;
    if (after === null) {
      if (host.sealed) throw new SessionReadOnlyError();
      return host.manager.destroyById(sid).then(() => result);
    }
    const changes = draftChanges(before, after);
    if (changes.set.length === 0 && changes.removed.length === 0) {
      // Socket activity keeps the session alive for HTTP too (rolling rule: rarely a write).
      if (rec === undefined || !adapterSteps.touchDue(host.manager, rec)) return result;
      return host.manager.touchById(sid).then(() => result);
    }
    if (host.sealed) throw new SessionReadOnlyError();
    assertStorable(changes);
    return andThen(writeChanges(host, sid, changes), (next): R | M | Promise<M> => {
      if (next === undefined) {
        // Destroyed (or expired) while the handler ran: nothing was written.
        host.gone(b, sid);
        return missing(onMissing);
      }
      host.written(sid, next);
      return result;
    });
  });
}

/**
 * Writes the changes atomically through `manager.update`, with `sid` in `ownWrites` while the
 * write is in flight, so the adapter knows the `sessionSet` it raises is its own.
 * @returns the data written, or undefined when the session was gone
 */
function writeChanges<B>(
  host: SocketSessionHost<B>,
  sid: string,
  changes: DraftChanges,
): object | undefined | Promise<object | undefined> {
  const own = host.ownWrites;
  own.add(sid);
  let next: object | undefined | Promise<object | undefined>;
  try {
    next = adapterSteps.update(host.manager, sid, (d) => applyChanges(d, changes));
  } catch (err) {
    own.delete(sid);
    throw err;
  }
  if (!isThenable(next)) {
    own.delete(sid);
    return next;
  }
  return next.then((data) => {
    own.delete(sid);
    return data;
  }, (err) => {
    own.delete(sid);
    throw err;
  });
}

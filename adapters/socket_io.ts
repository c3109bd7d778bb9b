/**
 * socket.io adapter: one session for HTTP and WebSocket. Every socket of every namespace gets
 * `socket.clientId`, a live `socket.sessionId`, a read-only `socket.session` snapshot and
 * `socket.withSession(handler, onMissing?)` (the rules of @randajan/koa-io-session v3).
 *
 * Sessions are created over HTTP (Hono, Koa, ...) on the same {@linkcode SessionManager}; a socket
 * finds its browser's session through the signed client-id cookie of its handshake, so a socket
 * opened before login follows the session created or regenerated later over HTTP, and loses it on
 * logout. Each socket joins the room `unisession:<sessionId>`; when the session is destroyed its
 * sockets are disconnected (or notified) wherever the socket.io adapter reaches (also across
 * `@socket.io/redis-adapter` clusters).
 *
 * @example Usage
 * ```ts
 * import { createServer } from "node:http";
 * import { Server } from "socket.io";
 * import { createSessions, MapStore } from "unisession";
 * import { attachSocketIO } from "unisession/socket.io";
 * import "unisession/socket.io/global";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const io = new Server(createServer());
 * const bridge = attachSocketIO(io, sessions);
 * io.on("connection", (socket) => {
 *   socket.on("count", async (ack: (n: number) => void) => {
 *     ack(await socket.withSession(({ session }) => (session.count = (session.count ?? 0) + 1), 0));
 *   });
 * });
 * console.log(bridge.stats().sockets); // 0
 * bridge.detach();
 * ```
 *
 * @module
 */
import type { Namespace, Server, Socket } from "socket.io";
import { CsrfError, describeError, SessionMissingError } from "../src/errors.ts";
import type { SessionDestroyEvent } from "../src/events.ts";
import type { SessionManager } from "../src/manager.ts";
import { knownId, snapshot, withSessionOn } from "../src/socket_draft.ts";
import {
  findSession,
  type Link as LinkOf,
  SocketLinks,
  socketOptions,
} from "../src/socket_links.ts";
import type { SessionData } from "../src/session.ts";

/**
 * The shape of session data seen by sockets (`socket.session`, `withSession`'s `ctx.session`).
 * Augment it to type your sessions:
 *
 * @example Typing session data
 * ```ts ignore
 * declare module "unisession/socket.io" {
 *   interface SocketSessionData {
 *     userId?: string;
 *   }
 * }
 * ```
 */
export interface SocketSessionData {
  /** Any JSON value under any key. */
  // deno-lint-ignore no-explicit-any
  [key: string]: any;
}

/**
 * What a {@linkcode SessionHandler} receives. Mutate `session` (nested mutation counts) or assign
 * a new object to replace it; assign `null` to destroy the session.
 *
 * @example Usage
 * ```ts
 * import type { SessionContext } from "unisession/socket.io";
 * const visit = (ctx: SessionContext) => {
 *   ctx.session.visits = (ctx.session.visits ?? 0) + 1;
 * };
 * const logout = (ctx: SessionContext) => {
 *   ctx.session = null;
 * };
 * ```
 */
export interface SessionContext {
  /** The session's id (its store key). */
  readonly sessionId: string;
  /**
   * A private, mutable deep copy of the session data. Assign an object to replace the data, or
   * `null` to destroy the session.
   */
  get session(): SocketSessionData;
  /** Replaces the data (an object) or destroys the session (`null`). */
  set session(value: SocketSessionData | null);
  /** The socket that called `withSession`. */
  readonly socket: Socket;
}

/**
 * The callback of `socket.withSession`.
 *
 * @example Usage
 * ```ts
 * import type { SessionHandler } from "unisession/socket.io";
 * const whoAmI: SessionHandler<string | undefined> = ({ session }) => session?.userId;
 * ```
 */
export type SessionHandler<R> = (ctx: SessionContext) => R | Promise<R>;

/**
 * What `socket.withSession` does when the socket has no session: an `Error` is thrown, a function
 * is called and its value returned, any other value (not `undefined`) is returned. Omitted: a
 * {@linkcode SessionMissingError} is thrown.
 *
 * @example Usage
 * ```ts
 * import type { OnMissing } from "unisession/socket.io";
 * const fallback: OnMissing<{ ok: false }> = { ok: false };
 * const lazy: OnMissing<null> = () => null;
 * const strict: OnMissing<never> = new Error("log in first");
 * ```
 */
export type OnMissing<M> = Error | (() => M | Promise<M>) | M;

/**
 * What {@linkcode attachSocketIO} adds to every socket. `import "unisession/socket.io"` adds these
 * members to socket.io's `Socket` type; {@linkcode SessionSocket} names the combination.
 *
 * @example Usage
 * ```ts
 * import type { SessionSocket } from "unisession/socket.io";
 * async function greet(socket: SessionSocket): Promise<string> {
 *   if (socket.sessionId === undefined) return "hello, stranger";
 *   return await socket.withSession(({ session }) => `hello, ${session.name ?? "friend"}`, "bye");
 * }
 * ```
 */
export interface SessionSocketFields {
  /** The browser's client id from the handshake's signed client-id cookie (store mode). */
  readonly clientId: string | undefined;
  /**
   * The browser's current session id, live: follows logins, regenerations and logouts made
   * over HTTP after the socket connected. Undefined without a session.
   */
  readonly sessionId: string | undefined;
  /**
   * A deeply frozen snapshot of the current session data (undefined without a session),
   * refreshed after every change this process hears of. Use `withSession` to read-modify-write.
   */
  readonly session: Readonly<SocketSessionData> | undefined;
  /**
   * Runs `handler` with the session, one call at a time per session, and commits what it
   * changed (only the changed top-level keys, atomically). `ctx.session = null` destroys the
   * session. Without a session it throws `onMissing` (an Error) or a `SessionMissingError`.
   * Do not nest calls for the same session: the inner one would wait for the outer one.
   */
  withSession<R>(handler: SessionHandler<R>, onMissing?: Error): Promise<R>;
  /** As above; without a session it calls `onMissing` and returns its value. */
  withSession<R, M>(handler: SessionHandler<R>, onMissing: () => M | Promise<M>): Promise<R | M>;
  /** As above; without a session it returns `onMissing`. */
  withSession<R, M>(handler: SessionHandler<R>, onMissing: M): Promise<R | M>;
}

/**
 * A socket.io socket with the session members {@linkcode attachSocketIO} installs.
 *
 * @example Usage
 * ```ts
 * import type { SessionSocket } from "unisession/socket.io";
 * const who = (socket: SessionSocket): string => socket.sessionId ?? "anonymous";
 * ```
 */
export type SessionSocket = Socket & SessionSocketFields;

// Types socket.io's `Socket` for every importer of this module (npm). JSR rejects ambient module
// declarations: to publish there, this block moves to an npm-only `socket_io_global.ts` entry.

/**
 * Options of {@linkcode attachSocketIO}.
 *
 * @example Usage
 * ```ts
 * import type { AttachSocketIOOptions } from "unisession/socket.io";
 * const options: AttachSocketIOOptions = { requireSession: true, onDestroy: "emit" };
 * ```
 */
export interface AttachSocketIOOptions {
  /** Refuse handshakes without a valid session (the client gets a `connect_error`). Default false. */
  requireSession?: boolean;
  /**
   * What happens to a session's sockets when it is destroyed (logout, `destroyById`, expiry
   * cleanup): `"disconnect"` (default) closes them; `"emit"` sends them `destroyEvent` and keeps
   * them connected without a session.
   */
  onDestroy?: "disconnect" | "emit";
  /** Event sent with `onDestroy: "emit"`, without arguments. Default `"session:destroyed"`. */
  destroyEvent?: string;
  /** Prefix of the per-session room names. Default `"unisession:"`. */
  roomPrefix?: string;
  /**
   * After `regenerate()` (login) destroyed a session (`reason: "regenerate"`), how long its
   * sockets wait for the browser's new session before they are disconnected (or notified) as if
   * logged out, in ms. The new session normally arrives with the same request's commit, and the
   * sockets then follow it and stay connected. Default 1000; 0 treats a regenerate as a logout.
   * A logout or an expiry (`reason: "destroy"` / `"expired"`) never waits: the action runs on the
   * next macrotask, so a socket that destroyed its own session still answers its acknowledgement.
   */
  destroyGraceMs?: number;
  /** Receives background errors (a failed snapshot refresh, a failed room join). Default `console.warn`. */
  onError?: (err: unknown) => void;
  /**
   * Opt-in CSRF check against cross-site WebSocket hijacking: the client passes a token from
   * `session.csrfToken()` in the handshake, `io(url, { auth: { csrf: token } })` (`field` names
   * another key of `auth`). A handshake that finds a session but carries no valid token for it
   * is refused (`connect_error` with `data.code` `"ERR_CSRF"`), and every `withSession` call
   * checks the token against the session's current secret and rejects with a `CsrfError`
   * otherwise: after a login (`regenerate()` rotates the secret) the page reconnects with its
   * new token. Default off.
   */
  csrf?: boolean | { field?: string };
}

/**
 * Sizes of the adapter's per-socket state (all 0 once every socket has disconnected).
 *
 * @example Usage
 * ```ts ignore
 * console.log(bridge.stats()); // { sockets: 0, clients: 0, sessions: 0, rooms: 0, pendingDestroys: 0, refreshing: 0 }
 * ```
 */
export interface SocketIOSessionStats {
  /** Connected sockets tracked. */
  sockets: number;
  /** Browsers (client ids, or session ids for sockets without one) tracked. */
  clients: number;
  /** Session ids with tracked sockets. */
  sessions: number;
  /** Per-session rooms joined by tracked sockets. */
  rooms: number;
  /** Destroyed sessions whose disconnect/notification is scheduled but has not run yet. */
  pendingDestroys: number;
  /** Snapshot refreshes in flight. */
  refreshing: number;
}

/**
 * What {@linkcode attachSocketIO} returns.
 *
 * @example Usage
 * ```ts ignore
 * const bridge = attachSocketIO(io, sessions);
 * await bridge.settled(); // every socket.session snapshot is current
 * bridge.detach();
 * ```
 */
export interface SocketIOSessions {
  /**
   * Stops tracking: removes the middleware and listeners, cancels pending notifications and drops
   * all per-socket state. Connected sockets keep their last-known `sessionId` and `session`;
   * `withSession` keeps working.
   */
  detach(): void;
  /** Sizes of the per-socket state (for leak checks and monitoring). */
  stats(): SocketIOSessionStats;
  /** Resolves once no snapshot refresh or late handshake is in flight. */
  settled(): Promise<void>;
  /** The room of a session's sockets, for your own broadcasts (`io.to(bridge.roomOf(id))`). */
  roomOf(sessionId: string): string;
}

// ---------------------------------------------------------------------------------------------

// deno-lint-ignore no-explicit-any
type AnyServer = Server<any, any, any, any>;
// deno-lint-ignore no-explicit-any
type AnyNamespace = Namespace<any, any, any, any>;
type Frozen = Readonly<SocketSessionData>;
type Next = (err?: Error) => void;

/** The resolved session of a handshake. */
interface Resolved {
  clientId: string | undefined;
  sessionId: string | undefined;
  data: Frozen | undefined;
  /** With the csrf option: the session the handshake's token is valid for. */
  csrfFor?: string;
}

/** Per-socket state (held by a WeakMap and the socket's own accessors). */
interface Binding extends Resolved {
  readonly socket: Socket;
  /** The browser this socket belongs to, once registered. */
  link: Link | undefined;
  /** The per-session room this socket is in. */
  room: string | undefined;
  /** Event counter when the handshake began (events after it trigger a re-check). */
  epoch: number;
  registered: boolean;
  /** A late handshake (socket connected without our middleware) in flight. */
  ready: Promise<void> | undefined;
  onDisconnect: () => void;
}

type Link = LinkOf<Binding>;

interface Pending {
  clientId: string | undefined;
  /** Act on this instance's sockets only. */
  local: boolean;
  timer: ReturnType<typeof setTimeout>;
}

const attached = new WeakSet<object>();

/** An Error for `next(err)`: socket.io sends `message` and `data` to the client. */
function refusal(err: unknown): Error {
  const e = err instanceof Error ? err : new Error("Cannot connect: session lookup failed");
  if (!("data" in e)) {
    const code = (e as { code?: unknown }).code;
    Object.assign(e, { data: { code: typeof code === "string" ? code : "ERR_HANDSHAKE" } });
  }
  return e;
}

function settle(result: unknown, onError: (err: unknown) => void): void {
  if (result && typeof (result as Promise<unknown>).then === "function") {
    (result as Promise<unknown>).then(undefined, onError);
  }
}

/** The adapter's state for one `io` server. */
class SocketIOBridge<T extends object> implements SocketIOSessions {
  readonly #io: AnyServer;
  readonly #m: SessionManager<T>;
  readonly #sealed: boolean;
  readonly #requireSession: boolean;
  readonly #emitMode: boolean;
  readonly #event: string;
  readonly #prefix: string;
  readonly #grace: number;
  readonly #onError: (err: unknown) => void;
  /** The handshake `auth` key of the CSRF token; undefined when the check is off. */
  readonly #csrfField: string | undefined;

  readonly #hooked = new WeakSet<object>();
  readonly #bindings = new WeakMap<Socket, Binding>();
  readonly #sockets = new Set<Binding>();
  /** Which session each browser's sockets follow (see `src/socket_links.ts`). */
  readonly #links: SocketLinks<Binding>;
  readonly #byRoom = new Map<string, Set<Binding>>();
  readonly #pending = new Map<string, Pending>();

  constructor(io: AnyServer, manager: SessionManager<T>, options: AttachSocketIOOptions) {
    this.#io = io;
    this.#m = manager;
    this.#sealed = manager.mode === "sealed";
    this.#links = new SocketLinks<Binding>(manager as SessionManager<object>, {
      // The sockets follow the session into its room.
      moved: (link, sid) => {
        const room = this.roomOf(sid);
        for (const b of link.sockets) this.#join(b, room);
      },
      // Acted on here (a session found expired by a read raises no event elsewhere).
      gone: (link, sid) => this.#schedule(sid, link.clientId, true, link.clientId !== undefined),
      created: (clientId) => this.#cancelPending(clientId),
      onError: (err) => this.#onError(err),
      context: (b, sid, draft) => ({ sessionId: sid, session: draft, socket: b.socket }),
      // A socket connected without our middleware: its handshake is read first.
      ready: (b) => b.ready,
      verify: (b, sid) => this.#checkCsrf(b, sid),
    });
    const common = socketOptions(
      "Cannot attach socket.io",
      options,
      (err) => console.warn(`unisession/socket.io: ${describeError(err)}`),
    );
    this.#requireSession = common.requireSession;
    this.#grace = common.grace;
    this.#onError = common.onError;
    const onDestroy = options.onDestroy ?? "disconnect";
    if (onDestroy !== "disconnect" && onDestroy !== "emit") {
      throw new TypeError('Cannot attach socket.io: onDestroy must be "disconnect" or "emit"');
    }
    this.#emitMode = onDestroy === "emit";
    this.#event = options.destroyEvent ?? "session:destroyed";
    this.#prefix = options.roomPrefix ?? "unisession:";
    const csrf = options.csrf;
    if (
      csrf !== undefined && typeof csrf !== "boolean" && (csrf === null || typeof csrf !== "object")
    ) {
      throw new TypeError("Cannot attach socket.io: csrf must be a boolean or { field }");
    }
    const field = csrf === true ? "csrf" : csrf ? csrf.field ?? "csrf" : undefined;
    if (field !== undefined && (typeof field !== "string" || field.length === 0)) {
      throw new TypeError("Cannot attach socket.io: csrf.field must be a non-empty string");
    }
    this.#csrfField = field;
    manager.on("sessionSet", this.#links.onSet);
    manager.on("sessionDestroy", this.#onDestroy);
    io.on("new_namespace", this.#hook);
    for (const nsp of io._nsps.values()) this.#hook(nsp);
  }

  // ------------------------------------------------------------------------- public handle

  detach(): void {
    if (!this.#links.active) return;
    attached.delete(this.#io);
    this.#m.off("sessionSet", this.#links.onSet);
    this.#m.off("sessionDestroy", this.#onDestroy);
    this.#io.off("new_namespace", this.#hook);
    for (const nsp of this.#io._nsps.values()) {
      nsp.off("connection", this.#onConnection);
      // socket.io has no public way to remove a middleware; the middleware also passes through
      // once detached, should this private array ever change.
      const fns = (nsp as unknown as { _fns?: unknown[] })._fns;
      const i = Array.isArray(fns) ? fns.indexOf(this.#middleware) : -1;
      if (i >= 0) fns!.splice(i, 1);
    }
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    for (const b of this.#sockets) {
      b.socket.off("disconnect", b.onDisconnect);
      if (b.room !== undefined) settle(b.socket.leave(b.room), this.#onError);
      this.#links.unbind(b);
    }
    this.#sockets.clear();
    this.#links.detach();
    this.#byRoom.clear();
  }

  stats(): SocketIOSessionStats {
    return {
      sockets: this.#sockets.size,
      clients: this.#links.links.size,
      sessions: this.#links.bySession.size,
      rooms: this.#byRoom.size,
      pendingDestroys: this.#pending.size,
      refreshing: this.#links.running.size,
    };
  }

  async settled(): Promise<void> {
    const running = this.#links.running;
    while (running.size > 0) await Promise.allSettled([...running]);
  }

  roomOf(sessionId: string): string {
    return this.#prefix + sessionId;
  }

  // ------------------------------------------------------------------------- namespaces

  readonly #hook = (nsp: AnyNamespace): void => {
    if (!this.#links.active || this.#hooked.has(nsp)) return;
    this.#hooked.add(nsp);
    nsp.use(this.#middleware);
    nsp.on("connection", this.#onConnection);
    // Sockets connected before attach: bind them now.
    for (const socket of nsp.sockets.values()) this.#late(socket);
  };

  readonly #middleware = (socket: Socket, next: Next): void => {
    if (!this.#links.active || this.#bindings.has(socket)) return next();
    const epoch = this.#links.epoch;
    this.#resolveHandshake(socket).then((resolved) => {
      let err: Error | undefined;
      try {
        this.#bind(socket, resolved, epoch);
        if (this.#requireSession && resolved.sessionId === undefined) {
          err = refusal(
            new SessionMissingError("Cannot connect: no valid session (requireSession)"),
          );
        } else if (this.#csrfField !== undefined && resolved.sessionId !== resolved.csrfFor) {
          err = refusal(new CsrfError());
        }
      } catch (e) {
        err = refusal(e);
      }
      next(err);
    }, (e) => next(refusal(e))).catch(this.#onError); // a later middleware threw
  };

  readonly #onConnection = (socket: Socket): void => {
    const b = this.#bindings.get(socket);
    if (!b) return this.#late(socket);
    if (b.ready === undefined) this.#register(b);
  };

  /** A socket that skipped our middleware (connected before attach, or recovered). */
  #late(socket: Socket): void {
    if (!this.#links.active || this.#bindings.has(socket)) return;
    const epoch = this.#links.epoch;
    const b = this.#bind(
      socket,
      { clientId: undefined, sessionId: undefined, data: undefined },
      epoch,
    );
    const ready = this.#resolveHandshake(socket).then((r) => {
      b.clientId = r.clientId;
      b.sessionId = r.sessionId;
      b.data = r.data;
      b.csrfFor = r.csrfFor;
    }, this.#onError).finally(() => {
      b.ready = undefined;
      this.#links.running.delete(ready);
      try {
        if (socket.connected) this.#register(b);
      } catch (err) {
        this.#onError(err);
      }
    });
    b.ready = ready;
    this.#links.running.add(ready);
  }

  // ------------------------------------------------------------------------- handshake

  /** Verifies the handshake cookies and finds the browser's current session. */
  async #resolveHandshake(socket: Socket): Promise<Resolved> {
    const header = socket.request.headers.cookie;
    if (this.#sealed) {
      // The data is sealed in the cookie: unseal it like a request would (nothing is written).
      const state = this.#m.open(header, { ctx: socket, https: socket.handshake.secure });
      await this.#m.prepare(state);
      const id = state.id;
      const csrfOk = id !== undefined && this.#csrfField !== undefined &&
        state.session.verifyCsrf(this.#csrfToken(socket));
      return {
        clientId: undefined,
        sessionId: id,
        data: id === undefined ? undefined : snapshot(state.data),
        csrfFor: csrfOk ? id : undefined,
      };
    }
    const { clientId, sessionId, data } = await findSession(
      this.#m as SessionManager<object>,
      header,
    );
    const csrfOk = sessionId !== undefined && this.#csrfField !== undefined &&
      await this.#m.verifyCsrfById(sessionId, this.#csrfToken(socket));
    return { clientId, sessionId, data, csrfFor: csrfOk ? sessionId : undefined };
  }

  /** The CSRF token of a socket's handshake (`auth[field]`). */
  #csrfToken(socket: Socket): unknown {
    const auth = socket.handshake.auth as Record<string, unknown> | undefined;
    return auth && typeof auth === "object" && Object.hasOwn(auth, this.#csrfField!)
      ? auth[this.#csrfField!]
      : undefined;
  }

  /**
   * With the csrf option: the socket's token must be valid for the session it is about to use.
   * Undefined when the option is off (nothing to await).
   */
  #checkCsrf(b: Binding, sid: string): Promise<void> | undefined {
    if (this.#csrfField === undefined) return undefined;
    return this.#verifyCsrf(b, sid);
  }

  async #verifyCsrf(b: Binding, sid: string): Promise<void> {
    const ok = this.#sealed
      ? b.csrfFor === sid // a sealed socket's session never changes after its handshake
      : await this.#m.verifyCsrfById(sid, this.#csrfToken(b.socket));
    if (!ok) throw new CsrfError();
  }

  /** Creates the socket's state and its accessors (not yet registered in the indexes). */
  #bind(socket: Socket, resolved: Resolved, epoch: number): Binding {
    const b: Binding = {
      ...resolved,
      socket,
      link: undefined,
      room: undefined,
      epoch,
      registered: false,
      ready: undefined,
      onDisconnect: () => this.#onDisconnect(b),
    };
    this.#bindings.set(socket, b);
    Object.defineProperties(socket, {
      clientId: { configurable: true, get: () => b.clientId },
      sessionId: { configurable: true, get: () => knownId(b) },
      session: { configurable: true, get: () => (b.link ? b.link.data : b.data) },
      withSession: {
        configurable: true,
        writable: true,
        value: <R, M = never>(handler: SessionHandler<R>, onMissing?: OnMissing<M>) =>
          this.#withSession(b, handler, onMissing),
      },
    });
    return b;
  }

  /** Adds a connected socket to the indexes and its session's room. */
  #register(b: Binding): void {
    if (!this.#links.active || b.registered || !b.socket.connected) return;
    b.registered = true;
    this.#sockets.add(b);
    b.socket.on("disconnect", b.onDisconnect);
    const link = this.#links.register(b);
    if (link?.sessionId !== undefined) this.#join(b, this.roomOf(link.sessionId));
  }

  #onDisconnect(b: Binding): void {
    this.#sockets.delete(b);
    b.socket.off("disconnect", b.onDisconnect);
    this.#leave(b, false); // socket.io already left every room
    this.#links.unbind(b);
  }

  // ------------------------------------------------------------------------- rooms

  #join(b: Binding, room: string): void {
    if (b.room === room) return;
    this.#leave(b, true);
    b.room = room;
    let set = this.#byRoom.get(room);
    if (!set) this.#byRoom.set(room, set = new Set());
    set.add(b);
    try {
      settle(b.socket.join(room), this.#onError);
    } catch (err) {
      this.#onError(err);
    }
  }

  #leave(b: Binding, really: boolean): void {
    const room = b.room;
    if (room === undefined) return;
    b.room = undefined;
    const set = this.#byRoom.get(room);
    if (set) {
      set.delete(b);
      if (set.size === 0) this.#byRoom.delete(room);
    }
    if (!really) return;
    try {
      settle(b.socket.leave(room), this.#onError);
    } catch (err) {
      this.#onError(err);
    }
  }

  // ------------------------------------------------------------------------- destroy

  readonly #onDestroy = (e: SessionDestroyEvent): void => {
    const sid = e.sessionId;
    // The sockets lose the session now; they stay in its room until the action below.
    this.#links.destroyed(sid);
    // When the store delivers this event to every instance, each one acts on its own sockets;
    // acting through the cluster adapter as well would reach remote sockets twice (emit mode).
    this.#schedule(sid, e.clientId, e.remote || this.#m.sharesEvents, e.reason === "regenerate");
  };

  /** Acts on a destroyed session's sockets now, or after the grace period when it may be a login. */
  #schedule(sid: string, clientId: string | undefined, local: boolean, wait: boolean): void {
    const pending = this.#pending.get(sid);
    if (pending) {
      // A local event after a local-only read: widen the pending action to the cluster.
      if (!local) pending.local = false;
      return;
    }
    const p: Pending = {
      // Only a regenerated session's sockets may follow the client's next session.
      clientId: wait && this.#grace > 0 ? clientId : undefined,
      local,
      timer: setTimeout(() => {
        this.#pending.delete(sid);
        this.#act(sid, p.local);
      }, wait ? this.#grace : 0),
    };
    (p.timer as { unref?: () => void }).unref?.();
    this.#pending.set(sid, p);
  }

  /** The client got a new session (regenerate): its old session's sockets moved along. */
  #cancelPending(clientId: string): void {
    for (const [sid, p] of this.#pending) {
      if (p.clientId !== clientId) continue;
      clearTimeout(p.timer);
      this.#pending.delete(sid);
      // Sockets of that session that could not follow (no client id) get the action locally.
      const left = this.#byRoom.get(this.roomOf(sid));
      if (left) { for (const b of [...left]) this.#actOn(b); }
    }
  }

  /**
   * Disconnects or notifies a destroyed session's sockets: on this instance only (`local`) when
   * every instance hears the event (delivered from another one, or shared by the store), through
   * the cluster adapter for an event only this instance hears.
   */
  #act(sessionId: string, local: boolean): void {
    if (!this.#links.active) return;
    const room = this.roomOf(sessionId);
    for (const nsp of [...this.#io._nsps.values()]) {
      // A remote event is delivered to every instance: each acts on its own sockets only.
      const op = local ? nsp.local.in(room) : nsp.in(room);
      try {
        if (this.#emitMode) {
          op.emit(this.#event);
          op.socketsLeave(room);
        } else op.disconnectSockets(true);
      } catch (err) {
        this.#onError(err);
      }
    }
    // The room operations above reached the local sockets too: only the bookkeeping is left.
    const left = this.#byRoom.get(room);
    if (left) { for (const b of [...left]) this.#leave(b, false); }
  }

  /** Disconnects or notifies one local socket. */
  #actOn(b: Binding): void {
    if (this.#emitMode) {
      if (b.room !== undefined) b.socket.emit(this.#event);
      this.#leave(b, true);
    } else {
      this.#leave(b, true);
      b.socket.disconnect(true);
    }
  }

  // ------------------------------------------------------------------------- withSession

  #withSession<R, M>(
    b: Binding,
    handler: SessionHandler<R>,
    onMissing: OnMissing<M> | undefined,
  ): Promise<R | M> {
    return withSessionOn(this.#links.host, b, handler, onMissing);
  }
}

/**
 * Shares a {@linkcode SessionManager}'s sessions with socket.io: every namespace (present and
 * future, dynamic ones included) gets `socket.clientId`, `socket.sessionId`, `socket.session`
 * and `socket.withSession()`.
 *
 * - `socket.sessionId` is live: a socket opened before login follows the session created or
 *   regenerated later over HTTP (through the client-id cookie), and is undefined after logout.
 * - `socket.session` is a deeply frozen snapshot of the data, read at the handshake and
 *   re-read after every change this process hears of (also changes made on other instances when
 *   the store delivers events); it may lag one store read behind. In sealed-cookie mode it is
 *   the handshake cookie's data and never changes.
 * - `socket.withSession(handler, onMissing?)` confirms the session id in the store (unless
 *   `manager.hearsEveryWrite` and the bridge's events already did), runs the
 *   handler one call at a time per session (`manager.runExclusive`), then destroys the session
 *   (`ctx.session = null`) or commits only the top-level keys it changed, atomically
 *   (`manager.update`), so concurrent HTTP writes to other keys survive. Returns the handler's
 *   result. Without a session: `onMissing` (see {@linkcode OnMissing}). In sealed-cookie mode
 *   writes reject with a `SessionReadOnlyError` (a socket cannot set a cookie).
 * - A destroyed session's sockets are disconnected (`onDestroy: "disconnect"`, default) or sent
 *   `destroyEvent` (`onDestroy: "emit"`) through the room `unisession:<sessionId>` of every
 *   namespace, on every instance: each instance acts on its own sockets when the store shares
 *   events (RedisStore, DenoKvStore); otherwise the instance that destroyed the session acts
 *   cluster-wide through the socket.io adapter (e.g. `@socket.io/redis-adapter`). They lose the
 *   session at once; the action runs on the next macrotask for a logout or an expiry, while
 *   after a login (`regenerate()`) the sockets follow the browser's new session and stay
 *   connected (waiting at most `destroyGraceMs` for it). A session found expired by a read (no
 *   event) is handled on this instance, like a regenerate.
 * - Socket activity keeps the session alive for HTTP too: every `withSession` call, one that
 *   changes nothing included (`manager.touchById`), renews the idle window once less than half
 *   of it remains, as HTTP requests do.
 * - Tampered, expired or unknown cookies connect without a session (refused with
 *   `requireSession: true`); a failing store refuses the handshake (`connect_error`). Never hangs.
 *
 * @typeParam T the manager's session data type
 * @param io the socket.io server
 * @param manager the manager the HTTP adapters use
 * @param options see {@linkcode AttachSocketIOOptions}
 * @returns a handle to detach, inspect and await the adapter
 * @throws {TypeError} when `io` already has unisession attached, or for invalid options
 *
 * @example Usage
 * ```ts
 * import { createServer } from "node:http";
 * import { Server } from "socket.io";
 * import { createSessions, MapStore } from "unisession";
 * import { attachSocketIO } from "unisession/socket.io";
 * import "unisession/socket.io/global";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const io = new Server(createServer());
 * const bridge = attachSocketIO(io, sessions, { onDestroy: "emit" });
 * io.of("/admin").on("connection", (socket) => {
 *   if (socket.session?.role !== "admin") socket.disconnect(true);
 * });
 * bridge.detach();
 * ```
 */
export function attachSocketIO<T extends object = SessionData>(
  // deno-lint-ignore no-explicit-any
  io: Server<any, any, any, any>,
  manager: SessionManager<T>,
  options: AttachSocketIOOptions = {},
): SocketIOSessions {
  if (!io || typeof io.of !== "function" || !(io._nsps instanceof Map)) {
    throw new TypeError("Cannot attach socket.io: io must be a socket.io 4 Server");
  }
  if (!manager || typeof manager.runExclusive !== "function") {
    throw new TypeError("Cannot attach socket.io: manager must be a SessionManager");
  }
  if (attached.has(io)) {
    throw new TypeError("Cannot attach socket.io: this server is already attached; detach first");
  }
  const bridge = new SocketIOBridge(io, manager, options);
  attached.add(io);
  return bridge;
}

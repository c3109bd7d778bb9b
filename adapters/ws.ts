/**
 * Native WebSockets through Hono's `upgradeWebSocket` (`hono/deno`, `hono/bun`, `@hono/node-ws`,
 * or any helper built with `hono/ws`): one session for HTTP and WebSocket.
 *
 * {@linkcode createWebSocketSessions} wraps the events factory you pass to `upgradeWebSocket`.
 * The socket's session is resolved from the upgrade request's cookies (through the browser's
 * client-id cookie, so a socket opened before login follows the session created or regenerated
 * later over HTTP); its events get a {@linkcode SessionWebSocket} with `clientId`, a live
 * `sessionId`, a `session` snapshot and `withSession()` (the rules of the socket.io adapter);
 * when the session is destroyed the socket is closed with code 4401 (or notified).
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { upgradeWebSocket } from "hono/deno";
 * import { createSessions, MapStore } from "unisession";
 * import { session } from "unisession/hono";
 * import { createWebSocketSessions } from "unisession/ws";
 *
 * const sessions = createSessions<{ count?: number }>({
 *   store: new MapStore(),
 *   keys: ["a-secret-of-at-least-32-characters!!"],
 * });
 * const sockets = createWebSocketSessions(sessions);
 * const app = new Hono()
 *   .use(session(sessions))
 *   .get("/ws", upgradeWebSocket(sockets.events(() => ({
 *     async onMessage(_evt, ws) {
 *       const n = await ws.withSession(({ session }) => (session.count = (session.count ?? 0) + 1), 0);
 *       ws.send(String(n));
 *     },
 *   }))));
 * console.log(sockets.stats().sockets); // 0
 * ```
 *
 * @module
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { WSContext, WSEvents, WSMessageReceive } from "hono/ws";
import { describeError, StoreError } from "../src/errors.ts";
import type { DestroyReason, SessionDestroyEvent } from "../src/events.ts";
import type { SessionManager } from "../src/manager.ts";
import { knownId, snapshot, withSessionOn } from "../src/socket_draft.ts";
import {
  findSession,
  type Link as LinkOf,
  SocketLinks,
  socketOptions,
} from "../src/socket_links.ts";
import type { SessionData } from "../src/session.ts";

/** Session data of an untyped manager, as sockets see it: any JSON value under any key. */
// deno-lint-ignore no-explicit-any
export type AnySessionData = { [key: string]: any };

/**
 * The data type sockets see for a `SessionManager<T>`: `T`, or {@linkcode AnySessionData} when
 * the manager is untyped (its data type has a string index signature).
 *
 * @example Usage
 * ```ts
 * import type { SocketData } from "unisession/ws";
 * const typed: SocketData<{ userId?: string }> = { userId: "ada" };
 * const loose: SocketData<Record<string, unknown>> = { count: 1 };
 * console.log(typed.userId, loose.count + 1);
 * ```
 */
export type SocketData<T> = string extends keyof T ? AnySessionData : T;

/**
 * What a {@linkcode SessionHandler} receives. Mutate `session` (nested mutation counts) or assign
 * a new object to replace it; assign `null` to destroy the session.
 *
 * @example Usage
 * ```ts
 * import type { SessionContext } from "unisession/ws";
 * const visit = (ctx: SessionContext) => {
 *   ctx.session.visits = (ctx.session.visits ?? 0) + 1;
 * };
 * const logout = (ctx: SessionContext) => {
 *   ctx.session = null;
 * };
 * ```
 */
export interface SessionContext<D = AnySessionData> {
  /** The session's id (its store key). */
  readonly sessionId: string;
  /** A private, mutable deep copy of the session data. */
  get session(): D;
  /** Assign an object to replace the data, or `null` to destroy the session. */
  set session(value: D | null);
  /** The socket that called `withSession`. */
  readonly ws: SessionWebSocket<D>;
}

/**
 * The callback of `ws.withSession`.
 *
 * @example Usage
 * ```ts
 * import type { SessionHandler } from "unisession/ws";
 * const whoAmI: SessionHandler<string | undefined> = ({ session }) => session.userId;
 * ```
 */
export type SessionHandler<R, D = AnySessionData> = (ctx: SessionContext<D>) => R | Promise<R>;

/**
 * What `ws.withSession` does when the socket has no session: an `Error` is thrown, a function is
 * called and its value returned, any other value (not `undefined`) is returned. Omitted: a
 * `SessionMissingError` is thrown.
 *
 * @example Usage
 * ```ts
 * import type { OnMissing } from "unisession/ws";
 * const fallback: OnMissing<{ ok: false }> = { ok: false };
 * const lazy: OnMissing<null> = () => null;
 * const strict: OnMissing<never> = new Error("log in first");
 * ```
 */
export type OnMissing<M> = Error | (() => M | Promise<M>) | M;

/**
 * One WebSocket connection with its session: the second argument of your events factory and of
 * every event. It also sends and closes (through Hono's `WSContext`, available as `context` once
 * the socket is open).
 *
 * @example Usage
 * ```ts
 * import type { SessionWebSocket } from "unisession/ws";
 * const greet = (ws: SessionWebSocket) => ws.send(ws.sessionId ? "welcome back" : "hello, stranger");
 * ```
 */
export interface SessionWebSocket<D = AnySessionData> {
  /** The browser's client id from the upgrade request's signed client-id cookie (store mode). */
  readonly clientId: string | undefined;
  /**
   * The browser's current session id, live: follows logins, regenerations and logouts made over
   * HTTP after the socket connected. Undefined without a session.
   */
  readonly sessionId: string | undefined;
  /**
   * A deeply frozen snapshot of the current session data (undefined without a session),
   * refreshed after every change this process hears of. Use `withSession` to read-modify-write.
   */
  readonly session: Readonly<D> | undefined;
  /**
   * Runs `handler` with the session, one call at a time per session, and commits what it changed
   * (only the changed top-level keys, atomically). `ctx.session = null` destroys the session.
   * Without a session it throws `onMissing` (an Error) or a `SessionMissingError`. Do not nest
   * calls for the same session: the inner one would wait for the outer one.
   */
  withSession<R>(handler: SessionHandler<R, D>, onMissing?: Error): Promise<R>;
  /** As above; without a session it calls `onMissing` and returns its value. */
  withSession<R, M>(
    handler: SessionHandler<R, D>,
    onMissing: () => M | Promise<M>,
  ): Promise<R | M>;
  /** As above; without a session it returns `onMissing`. */
  withSession<R, M>(handler: SessionHandler<R, D>, onMissing: M): Promise<R | M>;
  /**
   * Sends a message.
   * @throws {TypeError} before the socket is open (in the events factory)
   */
  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void;
  /**
   * Closes the socket (called before it is open, it closes as soon as it opens).
   * @throws {RangeError} before the socket is open, for a code other than 1000 or 3000–4999 or a
   * reason over 123 bytes (what the runtime would refuse when it opens)
   */
  close(code?: number, reason?: string): void;
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** Hono's `WSContext` of the connection (its `raw` is the runtime's socket); undefined before open. */
  readonly context: WSContext | undefined;
}

/**
 * Your WebSocket events, as for `upgradeWebSocket`, with the {@linkcode SessionWebSocket} as
 * second argument. A handler may be async; what it throws or rejects goes to the `onError` option.
 *
 * @example Usage
 * ```ts
 * import type { SessionWSEvents } from "unisession/ws";
 * const events: SessionWSEvents = {
 *   onOpen: (_evt, ws) => ws.send(JSON.stringify({ user: ws.session?.userId ?? null })),
 * };
 * ```
 */
export interface SessionWSEvents<D = AnySessionData> {
  /** The socket is open: `ws.send` works from here on. */
  onOpen?: (evt: Event, ws: SessionWebSocket<D>) => unknown;
  /** A message arrived. */
  onMessage?: (evt: MessageEvent<WSMessageReceive>, ws: SessionWebSocket<D>) => unknown;
  /** The socket closed (the adapter has already forgotten it). */
  onClose?: (evt: CloseEvent, ws: SessionWebSocket<D>) => unknown;
  /** The runtime reported a socket error. */
  onError?: (evt: Event, ws: SessionWebSocket<D>) => unknown;
}

/**
 * Your events factory: runs once per upgrade request, after the session was resolved and before
 * the upgrade (throw an `HTTPException` to refuse it).
 *
 * @example Usage
 * ```ts
 * import type { SessionWSEventsFactory } from "unisession/ws";
 * const factory: SessionWSEventsFactory = (c, ws) => ({
 *   onOpen: () => ws.send(`hello from ${c.req.path}`),
 * });
 * ```
 */
export type SessionWSEventsFactory<D = AnySessionData> = (
  c: Context,
  ws: SessionWebSocket<D>,
) => SessionWSEvents<D> | Promise<SessionWSEvents<D>>;

/**
 * What happened to the session of a socket acted on by `onDestroy`: its id, and why it went
 * (`"expired"` also covers a session found missing by a read, without any event).
 */
export interface DestroyInfo {
  /** The destroyed session's id. */
  sessionId: string;
  /** `"destroy"` (logout), `"regenerate"` (no new session followed in time) or `"expired"`. */
  reason: DestroyReason;
}

/**
 * Options of {@linkcode createWebSocketSessions}.
 *
 * @example Usage
 * ```ts
 * import type { WebSocketSessionOptions } from "unisession/ws";
 * const options: WebSocketSessionOptions = { requireSession: true, onDestroy: "notify" };
 * ```
 */
export interface WebSocketSessionOptions {
  /**
   * Refuse upgrade requests without a valid session: the events factory throws an
   * `HTTPException(401)` before the upgrade, so the client gets a 401 response. Default false.
   */
  requireSession?: boolean;
  /**
   * What happens to a session's sockets when it is destroyed (logout, `destroyById`, expiry):
   * `"close"` (default) closes them with `closeCode`; `"notify"` sends them the text message
   * `{"type":"session:destroyed","reason":...}` and keeps them open without a session; a
   * function is called with the socket and a {@linkcode DestroyInfo}.
   */
  onDestroy?:
    | "close"
    | "notify"
    // deno-lint-ignore no-explicit-any
    | ((ws: SessionWebSocket<any>, info: DestroyInfo) => unknown);
  /** Close code for `onDestroy: "close"` (1000 or 3000–4999). Default 4401. */
  closeCode?: number;
  /** Close reason for `onDestroy: "close"` (at most 123 bytes). Default `"session destroyed"`. */
  closeReason?: string;
  /**
   * After `regenerate()` (login) destroyed a session, how long its sockets wait for the
   * browser's new session before they are acted on as if logged out, in ms. The new session
   * normally arrives with the same request's commit; the sockets then follow it and stay open.
   * Default 1000; 0 treats a regenerate as a logout. A logout or an expiry never waits: the
   * action runs on the next macrotask (so a socket that destroyed its own session can still
   * answer first).
   */
  destroyGraceMs?: number;
  /**
   * Receives background errors (a failed snapshot refresh) and what your event handlers throw or
   * reject. Default: `console.error`.
   */
  onError?: (err: unknown) => void;
}

/**
 * Sizes of the adapter's per-socket state (all 0 once every socket has closed).
 *
 * @example Usage
 * ```ts ignore
 * console.log(sockets.stats()); // { sockets: 0, clients: 0, sessions: 0, pendingDestroys: 0, refreshing: 0 }
 * ```
 */
export interface WebSocketSessionStats {
  /** Open sockets tracked. */
  sockets: number;
  /** Browsers (client ids, or session ids for sockets without one) tracked. */
  clients: number;
  /** Session ids with tracked sockets. */
  sessions: number;
  /** Destroyed sessions whose close/notification is scheduled but has not run yet. */
  pendingDestroys: number;
  /** Snapshot refreshes in flight. */
  refreshing: number;
}

/**
 * What {@linkcode createWebSocketSessions} returns.
 *
 * @example Usage
 * ```ts ignore
 * app.get("/ws", upgradeWebSocket(sockets.events((c, ws) => ({ onOpen: () => ws.send("hi") }))));
 * await sockets.settled(); // every ws.session snapshot is current
 * sockets.detach();
 * ```
 */
export interface WebSocketSessions<D = AnySessionData> {
  /**
   * Wraps your events factory for `upgradeWebSocket(...)`: resolves the session of the upgrade
   * request, then calls `factory(c, ws)` and returns events that track the socket.
   * @throws {TypeError} when `factory` is not a function
   */
  events(factory: SessionWSEventsFactory<D>): (c: Context) => Promise<WSEvents>;
  /**
   * Stops tracking: removes the manager listeners, cancels pending closes and drops all
   * per-socket state. Open sockets keep their last-known `sessionId` and `session`;
   * `withSession` and new upgrades keep working, untracked.
   */
  detach(): void;
  /** Sizes of the per-socket state (for leak checks and monitoring). */
  stats(): WebSocketSessionStats;
  /** Resolves once no snapshot refresh is in flight. */
  settled(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

type Frozen = Readonly<SessionData>;

/** The resolved session of an upgrade request. */
interface Resolved {
  clientId: string | undefined;
  sessionId: string | undefined;
  data: Frozen | undefined;
}

/** Per-connection state: created by the events factory, tracked from open to close. */
interface Conn extends Resolved {
  readonly ws: SessionWebSocket<AnySessionData>;
  ctx: WSContext | undefined;
  /** The browser this socket belongs to, while open and tracked. */
  link: Link | undefined;
  /** Event counter when the upgrade request was resolved (later events trigger a re-check). */
  readonly epoch: number;
  state: "upgrading" | "open" | "closed";
  /** `close()` called before the socket opened. */
  closeRequest: [code?: number, reason?: string] | undefined;
}

type Link = LinkOf<Conn>;

/** A destroyed session's sockets, waiting for the action (or for a new session to follow). */
interface Pending {
  readonly sessionId: string;
  readonly reason: DestroyReason;
  /** A regenerated session's client: its next session cancels the wait. */
  readonly clientId: string | undefined;
  readonly conns: Set<Conn>;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const OPEN = 1;

function isValidCloseCode(code: unknown): code is number {
  return Number.isInteger(code) &&
    (code === 1000 || ((code as number) >= 3000 && (code as number) <= 4999));
}

/** The adapter's state for one manager. */
class WebSocketBridge<T extends object> implements WebSocketSessions<AnySessionData> {
  readonly #m: SessionManager<T>;
  readonly #sealed: boolean;
  readonly #requireSession: boolean;
  readonly #onDestroy: NonNullable<WebSocketSessionOptions["onDestroy"]>;
  readonly #closeCode: number;
  readonly #closeReason: string;
  readonly #grace: number;
  readonly #onError: (err: unknown) => void;

  readonly #conns = new Set<Conn>();
  /** Which session each browser's sockets follow (see `src/socket_links.ts`). */
  readonly #links: SocketLinks<Conn>;
  readonly #pending = new Map<string, Pending>();

  constructor(manager: SessionManager<T>, options: WebSocketSessionOptions) {
    this.#m = manager;
    this.#sealed = manager.mode === "sealed";
    this.#links = new SocketLinks<Conn>(manager as SessionManager<object>, {
      gone: (link, sid, conns) =>
        this.#schedule(sid, "expired", link.clientId, conns, link.clientId !== undefined),
      created: (clientId) => this.#cancelPending(clientId),
      onError: (err) => this.#onError(err),
      context: (conn, sid, draft) => ({ sessionId: sid, session: draft, ws: conn.ws }),
    });
    const common = socketOptions(
      "Cannot create WebSocket sessions",
      options,
      (err) => console.error(`unisession/ws: ${describeError(err)}`),
    );
    this.#requireSession = common.requireSession;
    this.#grace = common.grace;
    this.#onError = common.onError;
    const onDestroy = options.onDestroy ?? "close";
    if (onDestroy !== "close" && onDestroy !== "notify" && typeof onDestroy !== "function") {
      throw new TypeError(
        'Cannot create WebSocket sessions: onDestroy must be "close", "notify" or a function',
      );
    }
    this.#onDestroy = onDestroy;
    const code = options.closeCode ?? 4401;
    if (!isValidCloseCode(code)) {
      throw new RangeError("Cannot create WebSocket sessions: closeCode must be 1000 or 3000–4999");
    }
    this.#closeCode = code;
    const reason = options.closeReason ?? "session destroyed";
    if (typeof reason !== "string" || new TextEncoder().encode(reason).length > 123) {
      throw new RangeError("Cannot create WebSocket sessions: closeReason must be ≤ 123 bytes");
    }
    this.#closeReason = reason;
    manager.on("sessionSet", this.#links.onSet);
    manager.on("sessionDestroy", this.#onDestroyEvent);
  }

  // ------------------------------------------------------------------------- public handle

  events(factory: SessionWSEventsFactory<AnySessionData>): (c: Context) => Promise<WSEvents> {
    if (typeof factory !== "function") {
      throw new TypeError("Cannot create WebSocket events: factory must be a function");
    }
    const sessionEvents = (c: Context): Promise<WSEvents> => this.#upgrade(c, factory);
    return sessionEvents;
  }

  detach(): void {
    if (!this.#links.active) return;
    this.#m.off("sessionSet", this.#links.onSet);
    this.#m.off("sessionDestroy", this.#onDestroyEvent);
    for (const p of this.#pending.values()) clearTimeout(p.timer);
    this.#pending.clear();
    for (const conn of this.#conns) this.#links.unbind(conn);
    this.#conns.clear();
    this.#links.detach();
  }

  stats(): WebSocketSessionStats {
    return {
      sockets: this.#conns.size,
      clients: this.#links.links.size,
      sessions: this.#links.bySession.size,
      pendingDestroys: this.#pending.size,
      refreshing: this.#links.running.size,
    };
  }

  async settled(): Promise<void> {
    const running = this.#links.running;
    while (running.size > 0) await Promise.allSettled([...running]);
  }

  // ------------------------------------------------------------------------- upgrade

  async #upgrade(c: Context, factory: SessionWSEventsFactory<AnySessionData>): Promise<WSEvents> {
    const epoch = this.#links.epoch;
    let resolved: Resolved;
    try {
      resolved = await this.#resolve(c);
    } catch (err) {
      // A failing store refuses the upgrade as the Hono adapter answers requests: 503.
      if (err instanceof StoreError) {
        throw new HTTPException(503, { message: "Session store unavailable", cause: err });
      }
      throw err;
    }
    if (this.#requireSession && resolved.sessionId === undefined) {
      throw new HTTPException(401, { message: "Unauthorized: no valid session" });
    }
    const conn = this.#newConn(resolved, epoch);
    const events = await factory(c, conn.ws);
    return this.#wrap(conn, events ?? {});
  }

  /** Verifies the upgrade request's cookies and finds the browser's current session. */
  async #resolve(c: Context): Promise<Resolved> {
    // Read now: Deno's request headers are gone once the socket is upgraded.
    const header = c.req.header("cookie");
    if (this.#sealed) {
      // The data is sealed in the cookie: unseal it like a request would (nothing is written).
      const state = this.#m.open(header, { ctx: c });
      await this.#m.prepare(state);
      const id = state.id;
      return {
        clientId: undefined,
        sessionId: id,
        data: id === undefined ? undefined : snapshot(state.data),
      };
    }
    const { clientId, sessionId, data } = await findSession(
      this.#m as SessionManager<object>,
      header,
      c,
    );
    return { clientId, sessionId, data };
  }

  #newConn(resolved: Resolved, epoch: number): Conn {
    // deno-lint-ignore no-this-alias
    const bridge = this;
    const conn: Conn = {
      ...resolved,
      ws: {
        get clientId() {
          return conn.clientId;
        },
        get sessionId() {
          return knownId(conn);
        },
        get session() {
          return conn.link ? conn.link.data : conn.data;
        },
        withSession: <R, M = never>(handler: SessionHandler<R>, onMissing?: OnMissing<M>) =>
          bridge.#withSession(conn, handler, onMissing),
        send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>) {
          if (!conn.ctx) throw new TypeError("Cannot send: the WebSocket is not open yet");
          conn.ctx.send(data);
        },
        close(code?: number, reason?: string) {
          if (conn.ctx) conn.ctx.close(code, reason);
          else if (conn.state === "upgrading") {
            // Checked now: refused when the socket opens, it would stay open (and untracked).
            if (code !== undefined && !isValidCloseCode(code)) {
              throw new RangeError("Cannot close: code must be 1000 or 3000–4999");
            }
            if (reason !== undefined && new TextEncoder().encode(String(reason)).length > 123) {
              throw new RangeError("Cannot close: reason must be ≤ 123 bytes");
            }
            conn.closeRequest = [code, reason];
          }
        },
        get readyState() {
          if (conn.state === "closed") return 3;
          const ctx = conn.ctx;
          if (!ctx) return 0;
          // Bun's WSContext is created per event with a fixed readyState: ask the runtime socket.
          const raw = (ctx.raw as { readyState?: unknown } | undefined)?.readyState;
          return (typeof raw === "number" && raw >= 0 && raw <= 3 ? raw : ctx.readyState) as
            | 0
            | 1
            | 2
            | 3;
        },
        get context() {
          return conn.ctx;
        },
      } as SessionWebSocket<AnySessionData>,
      ctx: undefined,
      link: undefined,
      epoch,
      state: "upgrading",
      closeRequest: undefined,
    };
    return conn;
  }

  /** The events handed to `upgradeWebSocket`: track the socket, then call yours. */
  #wrap(conn: Conn, events: SessionWSEvents<AnySessionData>): WSEvents {
    const call = <E>(fn: ((evt: E, ws: SessionWebSocket) => unknown) | undefined, evt: E) => {
      if (typeof fn !== "function") return;
      try {
        const result = fn.call(events, evt, conn.ws);
        if (result && typeof (result as Promise<unknown>).then === "function") {
          (result as Promise<unknown>).then(undefined, this.#onError);
        }
      } catch (err) {
        this.#onError(err);
      }
    };
    return {
      onOpen: (evt, ctx) => {
        conn.ctx = ctx;
        if (this.#open(conn)) call(events.onOpen, evt);
      },
      onMessage: (evt, ctx) => {
        conn.ctx ??= ctx;
        call(events.onMessage, evt);
      },
      onClose: (evt, ctx) => {
        conn.ctx ??= ctx;
        this.#closed(conn);
        call(events.onClose, evt);
      },
      onError: (evt, ctx) => {
        conn.ctx ??= ctx;
        call(events.onError, evt);
      },
    };
  }

  /** Tracks a socket that opened; false when it was closed before it opened. */
  #open(conn: Conn): boolean {
    if (conn.state !== "upgrading") return false;
    conn.state = "open";
    if (conn.closeRequest) {
      const [code, reason] = conn.closeRequest;
      conn.closeRequest = undefined;
      try {
        conn.ctx!.close(code, reason);
      } catch (err) {
        this.#onError(err);
        try {
          conn.ctx!.close(); // refused anyway: closed all the same, with the default code
        } catch (again) {
          this.#onError(again);
        }
      }
      return false;
    }
    if (this.#links.active) this.#register(conn);
    return true;
  }

  #closed(conn: Conn): void {
    if (conn.state === "closed") return;
    conn.state = "closed";
    if (!this.#conns.delete(conn)) return;
    this.#links.unbind(conn);
    for (const [sid, p] of this.#pending) {
      if (!p.conns.delete(conn) || p.conns.size > 0) continue;
      clearTimeout(p.timer);
      this.#pending.delete(sid);
    }
  }

  /** Adds an open socket to the indexes. */
  #register(conn: Conn): void {
    this.#conns.add(conn);
    this.#links.register(conn);
  }

  // ------------------------------------------------------------------------- destroy

  readonly #onDestroyEvent = (e: SessionDestroyEvent): void => {
    // The sockets lose the session now; the action follows (see #schedule).
    const conns = this.#links.destroyed(e.sessionId);
    this.#schedule(e.sessionId, e.reason, e.clientId, conns, e.reason === "regenerate");
  };

  /** Acts on a destroyed session's sockets now, or after the grace period when it may be a login. */
  #schedule(
    sessionId: string,
    reason: DestroyReason,
    clientId: string | undefined,
    conns: Set<Conn>,
    wait: boolean,
  ): void {
    if (conns.size === 0) return;
    const pending = this.#pending.get(sessionId);
    if (pending) {
      for (const conn of conns) pending.conns.add(conn);
      return;
    }
    const p: Pending = {
      sessionId,
      reason,
      // Only a regenerated session's sockets may follow the client's next session.
      clientId: wait && this.#grace > 0 ? clientId : undefined,
      conns,
      timer: undefined,
    };
    p.timer = setTimeout(() => {
      this.#pending.delete(sessionId);
      this.#act(p);
    }, wait ? this.#grace : 0);
    (p.timer as { unref?: () => void }).unref?.();
    this.#pending.set(sessionId, p);
  }

  /** The client got a new session (regenerate): its sockets followed; the others are acted on. */
  #cancelPending(clientId: string): void {
    for (const [sid, p] of this.#pending) {
      if (p.clientId !== clientId) continue;
      clearTimeout(p.timer);
      this.#pending.delete(sid);
      this.#act(p);
    }
  }

  /** Closes or notifies the sockets of a destroyed session that have not found a new one. */
  #act(p: Pending): void {
    if (!this.#links.active) return;
    for (const conn of p.conns) {
      if (conn.state !== "open" || conn.ws.sessionId !== undefined) continue;
      const mode = this.#onDestroy;
      try {
        if (mode === "close") {
          if (conn.ws.readyState <= OPEN) conn.ctx!.close(this.#closeCode, this.#closeReason);
        } else if (mode === "notify") {
          if (conn.ws.readyState === OPEN) {
            conn.ctx!.send(JSON.stringify({ type: "session:destroyed", reason: p.reason }));
          }
        } else {
          const result = mode(conn.ws, { sessionId: p.sessionId, reason: p.reason });
          if (result && typeof (result as Promise<unknown>).then === "function") {
            (result as Promise<unknown>).then(undefined, this.#onError);
          }
        }
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  // ------------------------------------------------------------------------- withSession

  #withSession<R, M>(
    conn: Conn,
    handler: SessionHandler<R>,
    onMissing: OnMissing<M> | undefined,
  ): Promise<R | M> {
    return withSessionOn(this.#links.host, conn, handler, onMissing);
  }
}

/**
 * Shares a {@linkcode SessionManager}'s sessions with native WebSockets upgraded by Hono's
 * `upgradeWebSocket` (`hono/deno`, `hono/bun`, `@hono/node-ws`, ...). Wrap each events factory
 * with `sockets.events((c, ws) => events)`; the events get a {@linkcode SessionWebSocket} `ws`:
 *
 * - The session comes from the upgrade request's cookies. A tampered, expired or unknown cookie
 *   upgrades without a session (refused with a 401 before the upgrade with
 *   `requireSession: true`); a failing store refuses the upgrade with a 503. Sockets never
 *   create sessions: sessions are created over HTTP on the same manager.
 * - `ws.sessionId` is live: a socket opened before login follows the session created or
 *   regenerated later over HTTP (through the client-id cookie), and is undefined after logout.
 * - `ws.session` is a deeply frozen snapshot of the data, re-read after every change this
 *   process hears of (also changes made on other instances when the store delivers events); it
 *   may lag one store read behind. In sealed-cookie mode it is the upgrade cookie's data.
 * - `ws.withSession(handler, onMissing?)` confirms the session id in the store (unless
 *   `manager.hearsEveryWrite` and the bridge's events already did), runs the handler
 *   one call at a time per session (`manager.runExclusive`, shared with HTTP handlers when the
 *   manager has `serialize: true`), then destroys the session (`ctx.session = null`) or commits
 *   only the top-level keys it changed, atomically (`manager.update`), so concurrent HTTP writes
 *   to other keys survive. A call that changes nothing still keeps the session alive
 *   (`manager.touchById`). Without a session: `onMissing` (see {@linkcode OnMissing}). In
 *   sealed-cookie mode writes reject with a `SessionReadOnlyError`.
 * - When a session is destroyed (logout, `destroyById`, expiry cleanup — locally, or on another
 *   instance when the store has `subscribe`/`publish`), its sockets lose it at once and are closed
 *   with code 4401 (`onDestroy: "close"`, default), sent `{"type":"session:destroyed"}`
 *   (`"notify"`), or passed to your function. After a login (`regenerate()`) they follow the
 *   browser's new session instead and stay open.
 * - One pair of manager listeners per call, not per socket; per-socket state lives from open to
 *   close (see `stats()`).
 *
 * @typeParam T the manager's session data type
 * @param manager the manager the HTTP adapter uses
 * @param options see {@linkcode WebSocketSessionOptions}
 * @returns the handle whose `events()` wraps your events factories
 * @throws {TypeError} when `manager` is not a SessionManager or for invalid options
 * @throws {RangeError} for out-of-range options
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { createNodeWebSocket } from "@hono/node-ws";
 * import { createSessions, MapStore } from "unisession";
 * import { session } from "unisession/hono";
 * import { createWebSocketSessions } from "unisession/ws";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const sockets = createWebSocketSessions(sessions, { requireSession: true, onDestroy: "notify" });
 * const app = new Hono().use(session(sessions));
 * const { upgradeWebSocket } = createNodeWebSocket({ app });
 * app.get("/ws", upgradeWebSocket(sockets.events((_c, ws) => ({
 *   onOpen: () => ws.send(JSON.stringify(ws.session)),
 * }))));
 * ```
 */
export function createWebSocketSessions<T extends object = SessionData>(
  manager: SessionManager<T>,
  options: WebSocketSessionOptions = {},
): WebSocketSessions<SocketData<T>> {
  if (!manager || typeof manager.runExclusive !== "function") {
    throw new TypeError("Cannot create WebSocket sessions: manager must be a SessionManager");
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot create WebSocket sessions: options must be an object");
  }
  return new WebSocketBridge(manager, options) as unknown as WebSocketSessions<SocketData<T>>;
}

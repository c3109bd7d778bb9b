/**
 * The bookkeeping the socket adapters (socket.io, native WebSockets) share: which session each
 * browser's sockets follow, kept current from the manager's events and re-read from the store
 * when an event cannot say. Runtime-neutral; not part of the public API.
 *
 * A socket belongs to a link: its browser's (by client id), or, without a client id, its
 * session's. A link follows one session at a time and holds its frozen snapshot; every socket of
 * the link sees the same. What an adapter does with a socket (rooms, closing it, notifying it)
 * stays in the adapter, behind {@linkcode LinkHooks}.
 * @module
 */
import type { SessionSetEvent } from "./events.ts";
import { adapterSteps, MAX_TIMER_MS, type SessionManager } from "./manager.ts";
import type { SessionData } from "./session.ts";
import {
  type FollowedLink,
  type FollowingSocket,
  linkedHost,
  snapshot,
  type SocketSessionHost,
} from "./socket_draft.ts";

/**
 * The session a socket's handshake cookies lead to: the session cookie's, as HTTP reads it (the
 * socket then follows that session's own client id: a client-id cookie planted next to it must
 * not swap the socket into another browser's session); without one, or when its session has
 * ended (a login regenerated it meanwhile), the browser's current session through its client id.
 * Always reads the store, even when another socket of the browser is tracked: an expiry raises no
 * event, and a handshake must not succeed on a failing store (the read's error is thrown).
 * @param ctx passed to `manager.readCookies`
 */
export async function findSession(
  manager: SessionManager<object>,
  cookieHeader: string | null | undefined,
  ctx?: unknown,
): Promise<{ clientId?: string; sessionId?: string; data?: Readonly<SessionData> }> {
  const { sessionId: cookieSid, clientId } = manager.readCookies(cookieHeader, ctx);
  if (cookieSid !== undefined) {
    const rec = await adapterSteps.read(manager, cookieSid);
    if (rec !== undefined) {
      // A record without its client id (a manager of another copy of this package gives none):
      // the cookie's, only when it leads to this very session.
      const own = rec.clientId ??
        (clientId !== undefined && await manager.getSessionId(clientId) === cookieSid
          ? clientId
          : undefined);
      return { clientId: own, sessionId: cookieSid, data: snapshot(rec.data) };
    }
  }
  const sessionId = clientId === undefined ? undefined : await manager.getSessionId(clientId);
  const data = sessionId === undefined ? undefined : await manager.getById(sessionId);
  if (data === undefined) return { clientId };
  return { clientId, sessionId, data: snapshot(data as SessionData) };
}

/**
 * The options both socket adapters take, checked (`where` opens each error message): a setting
 * of another type would be taken silently for its default (`requireSession: "yes"` for false),
 * or fail later (an `onError` that is not a function, when the first error comes).
 * @throws {TypeError} for a `requireSession` that is not a boolean, an `onError` that is not a
 * function
 * @throws {RangeError} for a `destroyGraceMs` that is not a number of ms from 0 to 2^31 - 1
 */
export function socketOptions(
  where: string,
  o: { requireSession?: unknown; destroyGraceMs?: unknown; onError?: unknown },
  fallbackOnError: (err: unknown) => void,
): { requireSession: boolean; grace: number; onError: (err: unknown) => void } {
  // null is "not set", as `??` took it before these checks.
  const requireSession = o.requireSession ?? false;
  const grace = o.destroyGraceMs ?? 1000;
  const onError = o.onError ?? fallbackOnError;
  if (typeof requireSession !== "boolean") {
    throw new TypeError(`${where}: requireSession must be a boolean`);
  }
  if (typeof grace !== "number" || !(grace >= 0 && grace <= MAX_TIMER_MS)) {
    throw new RangeError(`${where}: destroyGraceMs must be a finite number ≥ 0 (at most 2^31 - 1)`);
  }
  if (typeof onError !== "function") throw new TypeError(`${where}: onError must be a function`);
  return { requireSession, grace, onError: onError as (err: unknown) => void };
}

/** One browser (client id), shared by all its sockets; or one session for sockets without one. */
export interface Link<S> extends FollowedLink {
  /** Its key in {@linkcode SocketLinks.links}. */
  readonly key: string;
  readonly clientId: string | undefined;
  readonly sockets: Set<S>;
}

/** A socket as the links track it: its handshake state, and the event counter it was read at. */
export interface LinkedSocket<S> extends FollowingSocket<Link<S>> {
  /** {@linkcode SocketLinks.epoch} when its handshake began (events after it: a re-check). */
  readonly epoch: number;
}

/** What the adapter does when a link changes, and the parts of `withSession` it owns. */
export interface LinkHooks<S> {
  /** The link now follows session `sid` (a creation, a login, a remap): e.g. move its rooms. */
  moved?(link: Link<S>, sid: string): void;
  /**
   * A read found the link's session `sid` missing (expired, or destroyed where this process did
   * not hear of it): the link has lost it already; `sockets` (a new Set, the hook's to keep) are
   * those that followed it.
   */
  gone(link: Link<S>, sid: string, sockets: Set<S>): void;
  /** A session was created or regenerated for `clientId`: a wait for it is over. */
  created(clientId: string): void;
  /** A store read in the background failed. */
  onError(err: unknown): void;
  /** The `ctx` a `withSession` handler gets for socket `s`. */
  context: SocketSessionHost<S>["context"];
  /** A socket whose handshake is still being read: what `withSession` waits for first. */
  ready?(s: S): PromiseLike<void> | undefined;
  /** A check before the socket may use a session (socket.io's CSRF token). */
  verify?: SocketSessionHost<S>["verify"];
}

/** The links of one adapter (see the module's description). */
export class SocketLinks<S extends LinkedSocket<S>> {
  /** A browser's link by its client id itself (never contains ':'), else by `s:` + session id. */
  readonly links: Map<string, Link<S>> = new Map();
  readonly bySession: Map<string, Set<Link<S>>> = new Map();
  /** The background reads in flight (an adapter may add its own, see `settled`). */
  readonly running: Set<Promise<void>> = new Set();
  /** What `withSession` needs; its `ownWrites` are the sessions with a write in flight. */
  readonly host: SocketSessionHost<S>;
  readonly #m: SessionManager<object>;
  readonly #sealed: boolean;
  readonly #hooks: LinkHooks<S>;
  #epoch = 0;
  #active = true;

  constructor(manager: SessionManager<object>, hooks: LinkHooks<S>) {
    this.#m = manager;
    this.#sealed = manager.mode === "sealed";
    this.#hooks = hooks;
    this.host = linkedHost<S, Link<S>>({
      manager,
      bySession: this.bySession,
      context: hooks.context,
      gone: (link, sid) => this.gone(link, sid),
      active: () => this.#active,
      follow: (link, sid) => {
        this.move(link, sid);
        this.refresh(link);
      },
      ready: hooks.ready,
      verify: hooks.verify,
    });
  }

  /** Counts the manager's events: a handshake read before the latest one is checked again. */
  get epoch(): number {
    return this.#epoch;
  }

  get active(): boolean {
    return this.#active;
  }

  /** Stops following: every link is dropped (its sockets keep what they last knew). */
  detach(): void {
    this.#active = false;
    for (const link of this.links.values()) link.dropped = true;
    this.links.clear();
    this.bySession.clear();
  }

  /** Adds a socket to its link (created with its first socket); undefined with nothing to follow. */
  register(s: S): Link<S> | undefined {
    if (s.clientId === undefined && s.sessionId === undefined) return undefined;
    const key = s.clientId !== undefined ? s.clientId : "s:" + s.sessionId;
    let link = this.links.get(key);
    if (!link) {
      link = {
        key,
        clientId: s.clientId,
        sessionId: undefined,
        data: undefined,
        sockets: new Set(),
        gen: 0,
        remap: false,
        running: undefined,
        dropped: false,
      };
      this.links.set(key, link);
      this.#setSession(link, s.sessionId);
      link.data = s.data;
      // Events arrived while the handshake read the store: read it again.
      if (s.epoch !== this.#epoch) this.refresh(link, true);
    } else if (s.epoch !== this.#epoch) {
      this.refresh(link, true);
    } else if (s.sessionId === undefined) {
      // No event since this handshake read the store: what it found is the freshest state.
      if (link.sessionId !== undefined) this.gone(link, link.sessionId);
    } else {
      this.move(link, s.sessionId);
      link.data = s.data;
    }
    link.sockets.add(s);
    s.link = link;
    return link;
  }

  /** Detaches a socket from its link (dropping the link with its last socket). */
  unbind(s: S): void {
    const link = s.link;
    if (!link) return;
    s.sessionId = link.sessionId;
    s.data = link.data;
    s.link = undefined;
    link.sockets.delete(s);
    if (link.sockets.size === 0 && this.links.get(link.key) === link) {
      link.dropped = true;
      this.links.delete(link.key);
      this.#index(link, undefined);
    }
  }

  /** Points a link at session `sid` (its snapshot is read again by the caller). */
  move(link: Link<S>, sid: string): void {
    if (this.#setSession(link, sid)) this.#hooks.moved?.(link, sid);
  }

  /**
   * Session `sid` was destroyed: its links lose it now (an event, counted).
   * @returns the sockets that followed it
   */
  destroyed(sid: string): Set<S> {
    this.#epoch++;
    const sockets = new Set<S>();
    const links = this.bySession.get(sid);
    if (!links) return sockets;
    for (const l of [...links]) {
      for (const s of l.sockets) sockets.add(s);
      this.#setSession(l, undefined);
    }
    return sockets;
  }

  /**
   * A read found the session missing: the sockets lose it now and are acted on, as for a destroy
   * event. (The read may also fall between a regenerate's delete and its event: the adapter's
   * grace period covers that.)
   */
  gone(link: Link<S>, sid: string): void {
    if (link.sessionId !== sid) return;
    const sockets = new Set(link.sockets);
    this.#setSession(link, undefined);
    this.#hooks.gone(link, sid, sockets);
  }

  /** Re-reads a link's snapshot (and its client mapping when `remap`), coalescing bursts. */
  refresh(link: Link<S>, remap = false): void {
    if (this.#sealed || link.dropped) return; // sealed: nothing to read without the cookie
    link.gen++;
    if (remap) link.remap = true;
    if (link.running) return;
    const running = this.#runRefresh(link).finally(() => {
      link.running = undefined;
      this.running.delete(running);
    });
    link.running = running;
    this.running.add(running);
  }

  /** The manager's `sessionSet` listener. */
  readonly onSet: (e: SessionSetEvent) => void = (e) => {
    this.#epoch++;
    const link = e.clientId === undefined ? undefined : this.links.get(e.clientId);
    if (link && link.sessionId !== e.sessionId) {
      // A creation or regeneration links the client to the new session before this event;
      // anything else (a write to another session of this client) is checked in the store.
      if (e.isNew) {
        this.move(link, e.sessionId);
        this.refresh(link);
      } else this.refresh(link, true);
    }
    if (e.isNew && e.clientId !== undefined) this.#hooks.created(e.clientId);
    // This process's own withSession write: its links get the written data as their snapshot,
    // so re-reading it from the store would only repeat that (one event per registered write).
    if (!e.remote && this.host.ownWrites.delete(e.sessionId)) return;
    const links = this.bySession.get(e.sessionId);
    if (links) { for (const l of [...links]) this.refresh(l); }
  };

  async #runRefresh(link: Link<S>): Promise<void> {
    try {
      while (!link.dropped && this.#active) {
        const gen = link.gen;
        if (link.remap && link.clientId !== undefined) {
          const mapped = await this.#m.getSessionId(link.clientId);
          if (link.gen !== gen || link.dropped) continue; // newer events: read again
          link.remap = false;
          if (mapped !== undefined) this.move(link, mapped);
        }
        const sid = link.sessionId;
        if (sid !== undefined) {
          const data = await this.#m.getById(sid);
          if (link.sessionId === sid && !link.dropped) {
            if (data === undefined) this.gone(link, sid);
            else link.data = snapshot(data as SessionData);
          }
        }
        if (link.gen === gen) return;
      }
    } catch (err) {
      this.#hooks.onError(err);
    }
  }

  /** Points a link at a session (or none), keeping the session index current. */
  #setSession(link: Link<S>, sid: string | undefined): boolean {
    if (link.sessionId === sid) return false;
    this.#index(link, sid);
    link.sessionId = sid;
    link.data = undefined;
    return true;
  }

  #index(link: Link<S>, next: string | undefined): void {
    const prev = link.sessionId;
    if (prev !== undefined) {
      const set = this.bySession.get(prev);
      if (set) {
        set.delete(link);
        if (set.size === 0) this.bySession.delete(prev);
      }
    }
    if (next !== undefined && !link.dropped) {
      let set = this.bySession.get(next);
      if (!set) this.bySession.set(next, set = new Set());
      set.add(link);
    }
  }
}

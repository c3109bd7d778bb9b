/**
 * Typed bridge events (no `node:events` in the core).
 * @module
 */

/** Payload of `sessionSet`: a session record was written. */
export interface SessionSetEvent {
  /** The browser's long-lived id, when known. */
  clientId: string | undefined;
  /** The session's store key. */
  sessionId: string;
  /** The record did not exist before this write (creation or regeneration). */
  isNew: boolean;
  /**
   * This process attached the session now: the first `sessionSet` for this sessionId since the
   * process started, or since the first `sessionSet` listener was added (sessions written while
   * nobody listened are not tracked).
   */
  isInit: boolean;
  /** True when the event was raised on another instance and delivered through the store. */
  remote: boolean;
}

/** Why a session was removed. */
export type DestroyReason = "destroy" | "regenerate" | "expired";

/** Payload of `sessionDestroy`: a session record was removed (destroy, regenerate, expiry). */
export interface SessionDestroyEvent {
  /** The browser's long-lived id, when known. */
  clientId: string | undefined;
  /** The removed session's store key. */
  sessionId: string;
  /**
   * `"destroy"` (logout: `session = null`, `destroy()`, `destroyById`), `"regenerate"` (the id
   * was replaced, typically at login: a `sessionSet` with `isNew: true` for the same client
   * follows) or `"expired"` (removed by cleanup).
   */
  reason: DestroyReason;
  /** True when the event was raised on another instance and delivered through the store. */
  remote: boolean;
}

/** Event names and payloads of a {@linkcode SessionManager}. */
export interface SessionEventMap {
  /** A session record was written. */
  sessionSet: SessionSetEvent;
  /** A session record was removed. */
  sessionDestroy: SessionDestroyEvent;
  /** Number of expired sessions removed by a cleanup run. */
  cleanup: number;
}

/** Where an event was raised (the second argument of every listener). */
export interface EventOrigin {
  /** True when the event was raised on another instance and delivered through the store. */
  remote: boolean;
}

/** Listener of one event. */
export type SessionListener<K extends keyof SessionEventMap> = (
  payload: SessionEventMap[K],
  origin: EventOrigin,
) => void;

const LOCAL: EventOrigin = Object.freeze({ remote: false });
const REMOTE: EventOrigin = Object.freeze({ remote: true });

/** Minimal typed emitter; a throwing listener is reported to `onError`, never to the emitter. */
export class Emitter {
  readonly #listeners: { [K in keyof SessionEventMap]: SessionListener<K>[] } = {
    sessionSet: [],
    sessionDestroy: [],
    cleanup: [],
  };
  readonly #onError: (err: unknown) => void;

  /** @param onError receives errors thrown by listeners */
  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  on<K extends keyof SessionEventMap>(name: K, fn: SessionListener<K>): void {
    this.#checkName(name);
    if (typeof fn !== "function") throw new TypeError("Cannot add listener: not a function");
    // Copy-on-write so emit() can iterate without copying.
    this.#listeners[name] = [...this.#listeners[name], fn] as never;
  }

  off<K extends keyof SessionEventMap>(name: K, fn: SessionListener<K>): void {
    this.#checkName(name);
    const list = this.#listeners[name] as SessionListener<K>[];
    const i = list.lastIndexOf(fn);
    if (i >= 0) this.#listeners[name] = list.filter((_, j) => j !== i) as never;
  }

  has(name: keyof SessionEventMap): boolean {
    return this.#listeners[name].length > 0;
  }

  emit<K extends keyof SessionEventMap>(
    name: K,
    payload: SessionEventMap[K],
    remote = false,
  ): void {
    const list = this.#listeners[name] as SessionListener<K>[];
    const origin = remote ? REMOTE : LOCAL;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(payload, origin);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  #checkName(name: string): void {
    if (!Object.hasOwn(this.#listeners, name)) {
      throw new TypeError(`Cannot add listener: unknown event "${name}"`);
    }
  }
}

/** One bridge event as an object (what {@linkcode SessionManager.events} streams). */
export type BridgeEvent =
  | ({ type: "sessionSet" } & SessionSetEvent)
  | ({ type: "sessionDestroy" } & SessionDestroyEvent)
  | { type: "cleanup"; count: number; remote: boolean };

/** Which events a stream delivers; all given conditions must hold. */
export interface EventFilter {
  /** Only events of this browser (it follows the browser across regenerate and re-login). */
  clientId?: string;
  /** Only events of this session id. */
  sessionId?: string;
  /** Only these event types. Default all. */
  types?: readonly BridgeEvent["type"][];
}

/**
 * Server-Sent Events of one browser's session changes, for Hono: real-time sync between tabs
 * and instances on runtimes without socket.io (Deno Deploy, Bun, workers). Exported from
 * `unisession/hono`.
 * @module
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { BridgeEvent } from "../src/events.ts";
import { MAX_TIMER_MS, type SessionManager } from "../src/manager.ts";
import { type SessionState, STATE } from "../src/session.ts";

/** Options of {@linkcode sessionEvents}. */
export interface SessionEventsOptions {
  /** Send the session's data with each `sessionSet` (one store read per event). Default true. */
  includeData?: boolean;
  /** Interval of keep-alive comments, in ms (0 = none). Default 15000. */
  heartbeatMs?: number;
}

/** The JSON `data` of each event sent to the browser. */
export interface SessionEventMessage {
  /** `"sessionSet"` or `"sessionDestroy"` (also the SSE `event:` name). */
  type: "sessionSet" | "sessionDestroy";
  /** `sessionSet`: a new session (login, regenerate). */
  isNew?: boolean;
  /** `sessionDestroy`: `"destroy"`, `"regenerate"` or `"expired"`. */
  reason?: string;
  /** `sessionSet` with `includeData`: the session's data after the change. */
  data?: Record<string, unknown> | null;
}

/**
 * A Hono handler that streams the requesting browser's session events as Server-Sent Events
 * (`event: sessionSet` / `sessionDestroy`, JSON data: {@linkcode SessionEventMessage}). It follows
 * the browser (client id) across login and logout when the client-id cookie is on, else the
 * current session. Events from other instances arrive too with a store that delivers them
 * (RedisStore, DenoKvStore). Session ids are never sent (page scripts must not learn them).
 * Mount it after `session(manager)`; without a session or client id it answers 401.
 *
 * @param manager the manager the `session()` middleware uses
 * @param options data and keep-alive settings
 * @returns the route handler
 *
 * @example Usage
 * ```ts
 * import { Hono } from "hono";
 * import { createSessions, MapStore } from "unisession";
 * import { session, sessionEvents } from "unisession/hono";
 *
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * const app = new Hono().use(session(sessions)).get("/session/events", sessionEvents(sessions));
 * // In the page: new EventSource("/session/events").addEventListener("sessionSet", (e) => ...)
 * ```
 */
export function sessionEvents(
  manager: SessionManager,
  options: SessionEventsOptions = {},
): (c: Context) => Response {
  if (!manager || typeof manager.runExclusive !== "function") {
    throw new TypeError("Cannot stream session events: manager must be a SessionManager");
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot stream session events: options must be an object");
  }
  const includeData = options.includeData ?? true;
  if (typeof includeData !== "boolean") {
    throw new TypeError("Cannot stream session events: includeData must be a boolean");
  }
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  // A timer cannot wait longer than 2^31 - 1 ms: it would fire at once, over and over.
  if (!(typeof heartbeatMs === "number" && heartbeatMs >= 0 && heartbeatMs <= MAX_TIMER_MS)) {
    throw new RangeError(
      "Cannot stream session events: heartbeatMs must be a number of ms from 0 to 2147483647",
    );
  }
  return (c) => {
    const proxy = c.get("session" as never) as { [STATE]?: SessionState } | undefined;
    const state = proxy?.[STATE];
    if (!state) {
      throw new TypeError("Cannot stream session events: mount session(manager) before it");
    }
    let filter: { clientId?: string; sessionId?: string } | undefined;
    const clientId = manager.clientIdOf(state);
    if (clientId !== undefined) filter = { clientId };
    else {
      state.ensureLoaded();
      if (state.id !== undefined && !state.isNew) filter = { sessionId: state.id };
    }
    if (!filter) return c.text("No session", 401);
    const events = manager.events({ ...filter, types: ["sessionSet", "sessionDestroy"] });
    return streamSSE(c, async (stream) => {
      const reader = events.getReader();
      const timer = heartbeatMs > 0
        ? setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), heartbeatMs)
        : undefined;
      stream.onAbort(() => {
        if (timer !== undefined) clearInterval(timer);
        void reader.cancel().catch(() => {});
      });
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stream.aborted) break;
          await stream.writeSSE({
            event: value.type,
            data: JSON.stringify(await message(manager, value, includeData)),
          });
        }
      } finally {
        if (timer !== undefined) clearInterval(timer);
        void reader.cancel().catch(() => {});
      }
    });
  };
}

async function message(
  manager: SessionManager,
  e: BridgeEvent,
  includeData: boolean,
): Promise<SessionEventMessage> {
  if (e.type === "sessionDestroy") return { type: e.type, reason: e.reason };
  if (e.type !== "sessionSet") return { type: "sessionSet" };
  const out: SessionEventMessage = { type: e.type, isNew: e.isNew };
  if (includeData) {
    out.data = (await manager.getById(e.sessionId) as Record<string, unknown>) ?? null;
  }
  return out;
}

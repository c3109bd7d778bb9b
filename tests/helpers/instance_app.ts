/**
 * The HTTP app of one instance in the multi-process tests: a Hono app on a session manager,
 * shared by the Node/Bun instance (Redis, socket.io) and the Deno instance (Deno KV), so every
 * store is driven through the same routes. Runtime-neutral (no `node:` import, no `Deno.`).
 *
 * Routes without the session middleware (they never touch the store):
 * - `GET /health`: `{ pid, unhandled, ... }`: the unhandled rejections/exceptions the process
 *   recorded, and whatever else its `health()` reports;
 * - `GET /events`: every `sessionSet` / `sessionDestroy` this manager emitted, in order.
 *
 * Routes with it:
 * - `POST /login`: `regenerate()`, then `user = "ada"`; `{ sessionId }`;
 * - `GET /me`: `{ user, sessionId, clientId }` (`sessionId` null while the session is unsaved);
 * - `POST /logout`: destroys the session;
 * - `POST /incr`: `manager.update(sessionId, count + 1)`, the cross-process atomic increment;
 *   `{ count }` (401 without a session);
 * - `PUT /keys/:key`: sets `session[key] = key` through the request's own patch commit;
 * - `GET /data`: the session's data as the store has it now (`manager.getById`).
 *
 * A failing store answers 503 `{ error: "ERR_STORE", message }`: the Hono adapter raises an
 * HTTPException(503) with the StoreError as cause, and a StoreError thrown by a handler (its own
 * `manager.update`) is mapped here the same way. Anything else is a 500 `{ error, message }`.
 * @module
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { type SessionManager, StoreError } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";

/** The session data of the instances. */
export interface InstanceData {
  user?: string;
  count?: number;
  [key: string]: unknown;
}

/** A session event as `GET /events` reports it. */
export interface SeenEvent {
  name: "sessionSet" | "sessionDestroy";
  sessionId: string;
  remote: boolean;
  reason?: string;
}

/** Records the manager's events for `GET /events`. */
export function recordEvents(sessions: SessionManager<InstanceData>): SeenEvent[] {
  const events: SeenEvent[] = [];
  sessions.on("sessionSet", ({ sessionId, remote }) => {
    events.push({ name: "sessionSet", sessionId, remote });
  });
  sessions.on("sessionDestroy", ({ sessionId, remote, reason }) => {
    events.push({ name: "sessionDestroy", sessionId, remote, reason });
  });
  return events;
}

/** The StoreError behind `err`, if any (directly or as an HTTPException's cause). */
function storeErrorOf(err: unknown): StoreError | undefined {
  if (err instanceof StoreError) return err;
  const cause = err instanceof HTTPException ? err.cause : undefined;
  return cause instanceof StoreError ? cause : undefined;
}

/**
 * Builds the app.
 * @param sessions the instance's manager
 * @param health the process's record: unhandled rejections and exceptions, and more
 */
export function instanceApp(
  sessions: SessionManager<InstanceData>,
  health: () => { unhandled: readonly string[]; [key: string]: unknown },
): Hono {
  const events = recordEvents(sessions);
  const app = new Hono();
  // Registered before the session middleware: these answer without it.
  app.get("/health", (c) => c.json({ pid: pid(), ...health() }));
  app.get("/events", (c) => c.json(events));

  app.use(session(sessions));
  app.post("/login", async (c) => {
    await c.session.regenerate();
    c.session.user = "ada";
    return c.json({ sessionId: c.sessionId });
  });
  app.get("/me", (c) =>
    c.json({
      user: c.session.user ?? null,
      sessionId: c.session.isNew ? null : c.sessionId ?? null,
      clientId: c.clientId ?? null,
    }));
  app.post("/logout", (c) => {
    c.session = null;
    return c.text("bye");
  });
  app.post("/incr", async (c) => {
    const sid = c.sessionId;
    if (sid === undefined) return c.json({ error: "no session" }, 401);
    const next = await sessions.update(sid, (d) => {
      d.count = (d.count ?? 0) + 1;
    });
    if (next === undefined) return c.json({ error: "no session" }, 401);
    return c.json({ count: next.count });
  });
  app.put("/keys/:key", (c) => {
    const key = c.req.param("key");
    c.session[key] = key;
    return c.body(null, 204);
  });
  app.get("/data", async (c) => {
    const sid = c.sessionId;
    return c.json(sid === undefined ? null : (await sessions.getById(sid)) ?? null);
  });

  app.onError((err, c) => {
    const storeError = storeErrorOf(err);
    if (storeError) return c.json({ error: storeError.code, message: storeError.message }, 503);
    if (err instanceof HTTPException) return err.getResponse();
    return c.json({ error: err.name, message: err.message }, 500);
  });
  return app;
}

function pid(): number | undefined {
  const g = globalThis as { process?: { pid?: number }; Deno?: { pid?: number } };
  return g.Deno?.pid ?? g.process?.pid;
}

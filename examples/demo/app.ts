/**
 * The demo's HTTP side: a Hono app on the shared session manager. Log in with a name
 * (`regenerate()` first: a new session id on login), count over HTTP, log out (destroy).
 * @module
 */
import { Hono } from "hono";
import { createSessions, MapStore, type SessionManager } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import { renderPage } from "./page.ts";

/** The demo's session data. */
export interface DemoSession {
  name?: string;
  count?: number;
}

/** Demo only: a real app reads its keys (32+ random characters) from the environment. */
const DEMO_KEY = "unisession demo key: replace me with 32+ random characters";

/**
 * The demo's one manager, shared by Hono and socket.io: sessions in the embedded MapStore
 * (in memory), `serialize: true` so that HTTP requests and socket events of one session take
 * turns and the shared counter never loses an increment.
 */
export function createDemoSessions(): SessionManager<DemoSession> {
  return createSessions<DemoSession>({
    store: new MapStore(),
    keys: [DEMO_KEY],
    serialize: true,
  });
}

/** The longest name kept; longer ones are cut. */
const MAX_NAME = 40;

/** The HTTP routes of the demo, on the given manager. */
export function createDemoApp(sessions: SessionManager<DemoSession>) {
  return new Hono()
    .use(session<DemoSession>(sessions))
    .get("/", (c) => {
      const name = c.session.name;
      return c.html(
        renderPage(
          name === undefined ? undefined : {
            name,
            count: c.session.count ?? 0,
            session: shortId(c.sessionId),
          },
        ),
      );
    })
    .post("/login", async (c) => {
      const form = await c.req.parseBody();
      const raw = typeof form.name === "string" ? form.name : "";
      const name = raw.trim().slice(0, MAX_NAME) || "guest";
      await c.session.regenerate(); // a fresh id on login: no session fixation
      c.session.name = name;
      return c.redirect("/", 303);
    })
    .post("/count", (c) => {
      if (c.session.name === undefined) return c.json({ error: "not logged in" }, 401);
      c.session.count = (c.session.count ?? 0) + 1;
      return c.json({ count: c.session.count });
    })
    .post("/logout", (c) => {
      c.session = null;
      return c.redirect("/", 303);
    })
    .get("/api/session", (c) =>
      c.json({
        name: c.session.name ?? null,
        count: c.session.count ?? 0,
        session: c.session.name === undefined ? null : shortId(c.sessionId),
      }));
}

/** The first characters of a session id: enough to tell sessions apart on the page. */
export function shortId(sessionId: string | undefined): string {
  return sessionId === undefined ? "none" : sessionId.slice(0, 6);
}

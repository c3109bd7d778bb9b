/**
 * The demo app: a Hono counter on the embedded MapStore. (The socket.io bridge demo replaces
 * this page once the socket.io adapter lands.)
 */
import { Hono } from "hono";
import { createSessions, MapStore, type SessionManager } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";

export interface DemoSession {
  name?: string;
  count?: number;
}

/** Builds the demo app around a session manager (tests pass their own). */
export function createDemoApp(
  sessions: SessionManager<DemoSession> = createSessions<DemoSession>({
    store: new MapStore(),
    keys: ["demo key: replace me with 32+ random characters"],
  }),
) {
  return new Hono()
    .use(session<DemoSession>(sessions))
    .get("/", (c) => c.html(page(c.session.name, c.session.count ?? 0)))
    .post("/login", async (c) => {
      const form = await c.req.parseBody();
      const name = String(form.name ?? "").trim().slice(0, 40) || "guest";
      await c.session.regenerate();
      c.session.name = name;
      return c.redirect("/");
    })
    .post("/count", (c) => {
      c.session.count = (c.session.count ?? 0) + 1;
      return c.redirect("/");
    })
    .post("/logout", (c) => {
      c.session = null;
      return c.redirect("/");
    })
    .get(
      "/api/session",
      (c) =>
        c.json({
          sessionId: c.sessionId,
          name: c.session.name ?? null,
          count: c.session.count ?? 0,
        }),
    );
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(name: string | undefined, count: number): string {
  const body = name
    ? `<p>Hello, <b id="name">${escape(name)}</b>. Counter: <b id="count">${count}</b></p>
       <form method="post" action="/count"><button id="inc">+1</button></form>
       <form method="post" action="/logout"><button id="logout">Log out</button></form>`
    : `<form method="post" action="/login"><input name="name" placeholder="your name" autofocus>
       <button id="login">Log in</button></form>`;
  return `<!doctype html><meta charset="utf-8"><title>unisession demo</title>
<h1>unisession demo</h1>${body}`;
}

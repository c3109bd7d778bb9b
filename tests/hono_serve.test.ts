/**
 * The Hono adapter's response headers over a real server of each runtime (Deno.serve, Bun.serve,
 * and @hono/node-server with its default lightweight global Response on Node): the session's
 * Set-Cookie and Cache-Control reach every kind of response a handler can return — Hono helpers,
 * hand-built Responses, streams, bodiless responses, responses with immutable headers
 * (`Response.redirect()`, a `fetch()` result) and responses that already set cookies — and the
 * body arrives intact. Plus, through `app.request()`: headers read after the body (which turns a
 * lightweight Response into a full one) still carry the session's.
 *
 * Runs unchanged on Deno, Bun and Node (node:test + node:assert/strict, hooks only).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Context, Hono } from "hono";
import { setCookie } from "hono/cookie";
import { createSessions, MapStore } from "../mod.ts";
import { session } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import {
  type Listening,
  RUNTIME,
  runtimeServer,
  useRuntimeResponse,
} from "./helpers/ws_harness.ts";
import { httpClient } from "./helpers/demo_process.ts";

const KEY = "a-secret-of-at-least-32-characters!!";

describe("session headers on every kind of response, over a real server", () => {
  let server: Listening;
  let app: Hono;
  let kept: Response | undefined;
  // Node keeps @hono/node-server's lightweight global Response (its default, and the case this
  // file is about); Deno.serve and Bun.serve need the runtime's own.
  let restoreResponse: () => void = () => {};
  before(async () => {
    if (RUNTIME !== "node") restoreResponse = useRuntimeResponse();
    const sessions = createSessions({ store: new MapStore(), keys: [KEY], logger: { warn() {} } });
    app = new Hono();
    // A middleware outside the session's that reads the finished response's headers (on Node
    // that turns the session's plain header object into a WHATWG Headers) and adds its own.
    app.use("/outer-read", async (c, next) => {
      await next();
      c.res.headers.set("x-cookies-seen", String(c.res.headers.getSetCookie().length));
    });
    // Keeps the response it passes on, to read its headers after the server has sent it.
    app.use("/kept", async (c, next) => {
      await next();
      kept = c.res;
    });
    app.use(session(sessions));
    // Each route stores `n` and answers in its own way; GET /n reads it back.
    app.get("/n", (c) => c.text(String(c.session.n ?? "none")));
    app.get("/plain", (c) => c.text("plain body"));
    const routes: Record<string, (c: Context) => Response | Promise<Response>> = {
      text: (c) => c.text("text body"),
      json: (c) => c.json({ body: "json" }),
      "hono-redirect": (c) => c.redirect("/n"),
      "immutable-redirect": () => Response.redirect(`${server.url}/n`, 302),
      fetched: () => fetch(`${server.url}/plain`),
      stream: () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode("streamed "));
              controller.enqueue(new TextEncoder().encode("body"));
              controller.close();
            },
          }),
        ),
      "plain-headers": () => new Response("own headers", { headers: { "x-own": "1" } }),
      "plain-set-cookie": () =>
        new Response("own cookie", { headers: { "Set-Cookie": "own=1; Path=/", "x-own": "1" } }),
      "outer-read": (c) => c.text("outer body"),
      kept: (c) => c.text("kept body"),
      empty: (c) => c.body(null, 204),
      "with-cookie": (c) => {
        setCookie(c, "other", "v");
        return c.text("two cookies");
      },
    };
    for (const [name, answer] of Object.entries(routes)) {
      app.post(`/${name}`, (c) => {
        c.session.n = Number(c.req.query("n"));
        return answer(c);
      });
    }
    server = await (await runtimeServer(app)).listen();
  });
  after(async () => {
    await server.close();
    restoreResponse();
  });

  test("app.request(): headers read after the body still carry the session's", async () => {
    for (const route of ["text", "json", "plain-headers", "outer-read"]) {
      const res = await app.request(`/${route}?n=1`, { method: "POST" });
      await res.text(); // on Node this turns a lightweight Response into a full one
      assert.ok(res.headers.getSetCookie().some((c) => c.startsWith("sid=")), route);
      assert.equal(res.headers.get("cache-control"), "no-store", route);
    }
  });

  const cases: [route: string, status: number, body: string | null][] = [
    ["text", 200, "text body"],
    ["json", 200, '{"body":"json"}'],
    ["hono-redirect", 302, null],
    ["immutable-redirect", 302, null],
    ["fetched", 200, "plain body"],
    ["stream", 200, "streamed body"],
    ["plain-headers", 200, "own headers"],
    ["empty", 204, ""],
    ["with-cookie", 200, "two cookies"],
    ["plain-set-cookie", 200, "own cookie"],
    ["outer-read", 200, "outer body"],
    ["kept", 200, "kept body"],
  ];
  for (const [route, status, body] of cases) {
    test(`${route}: new session cookie and no-store sent, body intact, session kept`, async () => {
      const browser = httpClient(server.url);
      const r = await browser.post(`/${route}?n=7`);
      assert.equal(r.status, status);
      if (body !== null) assert.equal(r.body, body);
      assert.ok(r.setCookies.some((c) => c.name === "sid"), `sid cookie on ${route}`);
      assert.equal(r.res.headers.get("cache-control"), "no-store");
      // A new session sets two cookies (the session's and the client id's), each on its own
      // (a fetched response also carries the client-id cookie its own request was given).
      const names = r.setCookies.map((c) => c.name).filter((n) => n.startsWith("sid"));
      if (route !== "fetched") assert.deepEqual(names, ["sid", "sid.cid"]);
      if (route === "plain-headers" || route === "plain-set-cookie") {
        assert.equal(r.res.headers.get("x-own"), "1");
      }
      if (route === "plain-set-cookie") {
        assert.deepEqual(r.setCookies.filter((c) => c.name === "own").map((c) => c.value), ["1"]);
      }
      if (route === "outer-read") assert.equal(r.res.headers.get("x-cookies-seen"), "2");
      // A response with headers of its own but no Content-Type still gets the default one.
      if (route === "plain-headers" || route === "text" || route === "kept") {
        assert.match(r.res.headers.get("content-type") ?? "", /^text\/plain/);
      }
      if (route === "kept") {
        // Its headers read after it was sent (on Node, after @hono/node-server wrote into them).
        const names = kept!.headers.getSetCookie().map((c) => c.slice(0, c.indexOf("=")));
        assert.deepEqual(names, ["sid", "sid.cid"]);
      }
      if (route === "with-cookie") {
        assert.deepEqual(r.setCookies.filter((c) => c.name === "other").map((c) => c.value), ["v"]);
      }
      assert.equal((await browser.get("/n")).body, "7");
      // A change to an existing session is saved too (no new cookie needed for that).
      await browser.post(`/${route}?n=8`);
      assert.equal((await browser.get("/n")).body, "8");
    });
  }
});

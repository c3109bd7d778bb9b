/**
 * Output safety (issue 5, part 2): what the library sends can never be turned into a header
 * injection or a cookie the browser drops or misplaces, the application's own Set-Cookie headers
 * survive, responses that set the session cookie are `Cache-Control: no-store` (unless
 * `noStore: false`), and a session change after the response was sent is a `ResponseSentError`.
 * Completes tests/core.test.ts ("attribute injection", "__Host-", "Max-Age above 400 days",
 * "committing twice") and tests/hono.test.ts ("Cache-Control: no-store", "Set-Cookie headers
 * set by the handler are preserved").
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import { setCookie } from "hono/cookie";
import Koa from "koa";
import {
  type CookieOptions,
  createSessions,
  MapStore,
  ResponseSentError,
  type SessionManager,
  type SessionOptions,
} from "../mod.ts";
import { session } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import { koaSession } from "../adapters/koa.ts";
import { KEY } from "./helpers/security_env.ts";

const quiet = { warn() {} };
const INJECTIONS = ["/;x", "/\r\nSet-Cookie: evil=1", "/\nx", "/\rx", "a;b"];

function sessions(extra: SessionOptions = {}): SessionManager {
  return createSessions({ store: new MapStore(), keys: [KEY], logger: quiet, ...extra });
}

/** Serves a Koa app on 127.0.0.1:0 for one callback. */
async function withKoa(app: Koa, fn: (url: string) => Promise<void>): Promise<void> {
  const http = createServer(app.callback());
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  try {
    await fn(`http://127.0.0.1:${(http.address() as AddressInfo).port}`);
  } finally {
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections?.();
    });
  }
}

/** A Hono app and a Koa app on `manager` whose "/" writes the session after `extra` runs. */
function apps(manager: SessionManager) {
  const errors: unknown[] = [];
  const hono = new Hono();
  hono.onError((err, c) => (errors.push(err), c.text("error", 500)));
  hono.use(session(manager));
  hono.post("/", (c) => {
    setCookie(c, "theme", "dark");
    c.header("Set-Cookie", "lang=en; Path=/", { append: true });
    c.session.user = "ada";
    return c.text("ok");
  });
  hono.get("/read", (c) => c.text(String(c.session.user ?? "")));
  const koa = new Koa();
  koa.silent = true;
  koa.on("error", (err) => errors.push(err));
  koa.use(koaSession(manager));
  koa.use((ctx) => {
    if (ctx.method === "POST") {
      ctx.cookies.set("theme", "dark", { signed: false });
      ctx.append("Set-Cookie", "lang=en; Path=/");
      ctx.session.user = "ada";
    } else void ctx.session.user;
    ctx.body = "ok";
  });
  return { hono, koa, errors };
}

function names(res: Response): string[] {
  return res.headers.getSetCookie().map((c) => c.slice(0, c.indexOf("=")));
}

describe("output safety: cookie attributes", () => {
  test("';', CR or LF in any attribute of the session or client cookie throws TypeError at setup", () => {
    const attrs: (keyof CookieOptions)[] = ["path", "domain"];
    for (const bad of INJECTIONS) {
      for (const a of attrs) {
        assert.throws(() => sessions({ cookie: { [a]: bad } }), TypeError, `cookie.${a}`);
        assert.throws(() => sessions({ client: { [a]: bad } }), TypeError, `client.${a}`);
      }
      assert.throws(() => sessions({ cookie: { name: bad } }), TypeError, "cookie.name");
      assert.throws(() => sessions({ client: { name: bad } }), TypeError, "client.name");
      assert.throws(() => sessions({ cookieName: bad, cookie: () => ({}) }), TypeError);
      assert.throws(
        () => sessions({ cookie: { priority: bad as "high" } }),
        TypeError,
        "cookie.priority",
      );
      assert.throws(
        () => sessions({ cookie: { sameSite: bad as "lax" } }),
        TypeError,
        "cookie.sameSite",
      );
    }
  });

  test("a dynamic cookie function returning ';', CR or LF fails the request; nothing is injected (Hono and Koa)", async () => {
    for (const bad of INJECTIONS.slice(0, 3)) {
      const m = sessions({ cookie: () => ({ path: bad }) });
      const { hono, koa, errors } = apps(m);
      const h = await hono.request("/", { method: "POST" });
      assert.equal(h.status, 500);
      assert.ok(!names(h).includes("evil"));
      assert.ok(errors.pop() instanceof TypeError);
      await withKoa(koa, async (url) => {
        const k = await fetch(url, { method: "POST" });
        assert.equal(k.status, 500);
        assert.ok(!names(k).includes("evil"));
      });
      assert.ok(errors.pop() instanceof TypeError);
    }
  });

  test("__Host- with a Domain or a Path other than / is refused: static options, the client cookie, a dynamic function", async () => {
    assert.throws(
      () => sessions({ cookie: { name: "__Host-sid", domain: "a.example" } }),
      TypeError,
    );
    assert.throws(() => sessions({ cookie: { name: "__Host-sid", path: "/app" } }), TypeError);
    assert.throws(
      () => sessions({ cookie: { name: "__Host-sid" }, client: { name: "__Host-c", path: "/x" } }),
      TypeError,
    );
    const m = sessions({ cookieName: "__Host-sid", cookie: () => ({ domain: "a.example" }) });
    const { hono, errors } = apps(m);
    assert.equal((await hono.request("/", { method: "POST" })).status, 500);
    assert.ok(errors[0] instanceof TypeError);
    const ok = sessions({ cookie: { name: "__Host-sid" } });
    const res = await apps(ok).hono.request("/", { method: "POST" });
    const sid = res.headers.getSetCookie().find((c) => c.startsWith("__Host-sid="))!;
    assert.match(sid, /; Path=\/;/);
    assert.match(sid, /; Secure/);
    assert.doesNotMatch(sid, /Domain=/i);
  });

  test('Partitioned or SameSite=None without Secure is refused; with secure: "auto" they force Secure', async () => {
    for (const o of [{ partitioned: true }, { sameSite: "none" as const }]) {
      assert.throws(() => sessions({ cookie: { ...o, secure: false } }), TypeError);
      assert.throws(() => sessions({ client: { ...o, secure: false } }), TypeError);
      const res = await apps(sessions({ cookie: o })).hono.request("/", { method: "POST" });
      const sid = res.headers.getSetCookie().find((c) => c.startsWith("sid="))!;
      assert.match(sid, /; Secure/, "Secure even over plain http");
    }
  });

  test("Max-Age above 400 days is refused: maxAge and client.maxAge (RangeError)", () => {
    const over = 401 * 86_400_000;
    assert.throws(() => sessions({ maxAge: over }), RangeError);
    assert.throws(() => sessions({ client: { maxAge: over } }), RangeError);
    assert.doesNotThrow(() => sessions({ maxAge: 400 * 86_400_000 }));
    // A browser-session cookie has no Max-Age: its idle window may be longer.
    assert.doesNotThrow(() => sessions({ maxAge: over, cookie: { persistent: false } }));
  });
});

describe("output safety: responses", () => {
  test("Koa: Set-Cookie headers set by the handler are preserved next to the session cookie", async () => {
    await withKoa(apps(sessions()).koa, async (url) => {
      const res = await fetch(url, { method: "POST" });
      for (const n of ["theme", "lang", "sid", "sid.cid"]) {
        assert.ok(names(res).includes(n), `${n} in ${names(res)}`);
      }
    });
  });

  test("Koa: responses that set the session cookie carry Cache-Control: no-store; others do not", async () => {
    await withKoa(apps(sessions()).koa, async (url) => {
      const set = await fetch(url, { method: "POST" });
      assert.equal(set.headers.get("cache-control"), "no-store");
      const cookie = set.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
      const read = await fetch(url, { headers: { cookie } });
      assert.deepEqual(read.headers.getSetCookie(), []);
      assert.equal(read.headers.get("cache-control"), null);
    });
  });

  test("noStore: false leaves Cache-Control alone (Hono and Koa)", async () => {
    const { hono, koa } = apps(sessions({ noStore: false }));
    const h = await hono.request("/", { method: "POST" });
    assert.ok(names(h).includes("sid"));
    assert.equal(h.headers.get("cache-control"), null);
    await withKoa(koa, async (url) => {
      const k = await fetch(url, { method: "POST" });
      assert.ok(names(k).includes("sid"));
      assert.equal(k.headers.get("cache-control"), null);
    });
  });
});

describe("output safety: saving after the response was sent", () => {
  test("core: any change to a committed session throws ResponseSentError (ERR_RESPONSE_SENT)", async () => {
    const m = sessions();
    const state = m.open(null);
    state.session.user = "ada";
    await m.commit(state);
    const s = state.session;
    const changes: [string, () => unknown][] = [
      ["set", () => (s.late = 1)],
      ["delete", () => delete s.user],
      ["save()", () => s.save()],
      ["touch()", () => s.touch()],
      ["renew()", () => s.renew()],
      ["destroy()", () => s.destroy()],
      ["flash()", () => s.flash("k", 1)],
      ["maxAge", () => (s.maxAge = 1000)],
    ];
    for (const [name, change] of changes) {
      assert.throws(change, ResponseSentError, name);
    }
    await assert.rejects(s.regenerate(), { code: "ERR_RESPONSE_SENT" });
    await assert.rejects(m.commit(state), { code: "ERR_RESPONSE_SENT" });
    assert.equal(s.user, "ada", "reads still work");
  });

  test("Hono: a change after the response (a late timer) throws ResponseSentError instead of being lost", async () => {
    const m = sessions();
    let late: Promise<unknown> = Promise.resolve();
    const app = new Hono().use(session(m)).post("/", (c) => {
      c.session.user = "ada";
      late = new Promise((resolve) =>
        setTimeout(() => {
          try {
            c.session.user = "mallory";
            resolve(undefined);
          } catch (err) {
            resolve(err);
          }
        }, 10)
      );
      return c.text("ok");
    });
    assert.equal((await app.request("/", { method: "POST" })).status, 200);
    const err = await late;
    assert.ok(err instanceof ResponseSentError, String(err));
  });

  test("Koa: a session cookie that cannot be sent (headers already sent) is reported as ResponseSentError", async () => {
    const m = sessions();
    const app = new Koa();
    const errors: unknown[] = [];
    app.on("error", (err) => errors.push(err));
    app.use(koaSession(m));
    app.use((ctx) => {
      ctx.session.user = "ada";
      ctx.respond = false;
      ctx.res.writeHead(200, { "content-type": "text/plain" });
      ctx.res.end("streamed");
    });
    await withKoa(app, async (url) => {
      const res = await fetch(url);
      assert.equal(await res.text(), "streamed");
      for (let i = 0; i < 50 && errors.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    assert.ok(errors[0] instanceof ResponseSentError, String(errors[0]));
  });
});

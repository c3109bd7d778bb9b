/**
 * CSRF tokens (issue 5, part 6): `session.csrfToken()` / `verifyCsrf()` / `assertCsrf()` in the
 * core (store and sealed mode), the Hono `csrf()` and Koa `koaCsrf()` middleware, and the opt-in
 * check of the socket.io adapter — with stolen (another session's), stale (from before a login),
 * missing, malformed and cross-session tokens.
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import Koa from "koa";
import {
  createSessions,
  CsrfError,
  MapStore,
  type SessionManager,
  type SessionOptions,
  type SessionState,
  UnisessionError,
} from "../mod.ts";
import { csrf, session } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import { koaCsrf } from "../adapters/koa.ts";
import { CSRF_TOKEN_LENGTH } from "../src/csrf.ts";
import { cookieHeader, type Env, KEY, type Mode, startEnv } from "./helpers/security_env.ts";
import { flipBit } from "./helpers/hostile_cookies.ts";

const quiet = { warn() {} };

function manager(mode: Mode, extra: SessionOptions = {}): SessionManager {
  return createSessions({
    keys: [KEY],
    logger: quiet,
    ...(mode === "store" ? { store: new MapStore() } : {}),
    ...extra,
  });
}

/** One request: open, prepare, handler, commit; returns the next request's Cookie header. */
async function request<R>(
  m: SessionManager,
  cookie: string | undefined,
  fn: (s: SessionState) => R | Promise<R>,
): Promise<{ result: R; cookie: string | undefined; state: SessionState }> {
  const state = m.open(cookie);
  await m.prepare(state);
  const result = await fn(state);
  const { cookies } = await m.commit(state);
  return { result, cookie: applySetCookies(cookie, cookies), state };
}

/** The Cookie header a browser sends after applying `setCookies` (Max-Age=0 deletes). */
function applySetCookies(cookie: string | undefined, setCookies: string[]): string | undefined {
  const jar = new Map<string, string>();
  for (const pair of (cookie ?? "").split("; ").filter(Boolean)) {
    const eq = pair.indexOf("=");
    jar.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  for (const c of setCookies) {
    const pair = c.split(";")[0]!;
    const eq = pair.indexOf("=");
    if (/Max-Age=0/.test(c)) jar.delete(pair.slice(0, eq));
    else jar.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return jar.size ? [...jar].map(([k, v]) => `${k}=${v}`).join("; ") : undefined;
}

/** Malformed tokens: none of them may verify, and none may throw. */
function malformed(token: string): unknown[] {
  return [
    undefined,
    null,
    "",
    0,
    {},
    [token],
    { toString: () => token },
    token.slice(0, -1),
    token + "A",
    token.slice(0, 43), // the mask alone
    token.slice(43), // the masked half alone
    flipBit(token, 10), // one bit of the mask
    flipBit(token, 60), // one bit of the masked secret
    token.slice(0, 5) + "+" + token.slice(6), // standard base64, not base64url
    "x".repeat(CSRF_TOKEN_LENGTH),
    "A".repeat(CSRF_TOKEN_LENGTH),
    token + "=".repeat(2),
    "\u0000".repeat(CSRF_TOKEN_LENGTH),
  ];
}

for (const mode of ["store", "sealed"] as const) {
  describe(`csrf tokens, core (${mode} mode)`, () => {
    test("every call returns a different masked token, and every one verifies", async () => {
      const m = manager(mode);
      const r = await request(m, undefined, (s) => {
        s.session.user = "ada";
        return [s.session.csrfToken(), s.session.csrfToken(), s.session.csrfToken()];
      });
      const tokens = r.result;
      assert.equal(new Set(tokens).size, 3, "masked: no two tokens alike");
      for (const t of tokens) assert.match(t, /^[A-Za-z0-9_-]{86}$/);
      await request(m, r.cookie, (s) => {
        for (const t of tokens) assert.equal(s.session.verifyCsrf(t), true);
        assert.doesNotThrow(() => s.session.assertCsrf(tokens[0]));
      });
    });

    test("a token for an empty new session saves the session, so the next request verifies it", async () => {
      const m = manager(mode);
      const r = await request(m, undefined, (s) => s.session.csrfToken());
      assert.ok(r.cookie, "the session cookie was set");
      await request(m, r.cookie, (s) => {
        assert.equal(s.session.isNew, false);
        assert.equal(s.session.verifyCsrf(r.result), true);
      });
    });

    test("the secret is not a data key: keys, toJSON, length and getById never show it", async () => {
      const m = manager(mode);
      const r = await request(m, undefined, (s) => {
        s.session.user = "ada";
        return s.session.csrfToken();
      });
      await request(m, r.cookie, (s) => {
        assert.deepEqual(Object.keys(s.session), ["user"]);
        assert.deepEqual(s.session.toJSON(), { user: "ada" });
        assert.equal(s.session.length, 1);
        assert.equal(JSON.stringify(s.session), '{"user":"ada"}');
      });
      if (mode === "store") assert.deepEqual(await m.getById(r.state.id!), { user: "ada" });
    });

    test("missing and malformed tokens are false (never an exception); assertCsrf throws CsrfError", async () => {
      const m = manager(mode);
      const r = await request(m, undefined, (s) => {
        s.session.user = "ada";
        return s.session.csrfToken();
      });
      await request(m, r.cookie, (s) => {
        for (const bad of malformed(r.result)) {
          assert.equal(s.session.verifyCsrf(bad), false, `accepted ${String(bad).slice(0, 20)}`);
        }
        const err = (() => {
          try {
            s.session.assertCsrf(undefined);
          } catch (e) {
            return e;
          }
        })();
        assert.ok(err instanceof CsrfError && err instanceof UnisessionError);
        assert.equal(err.code, "ERR_CSRF");
        assert.equal(err.status, 403);
        assert.equal(err.message, "Invalid CSRF token");
      });
    });

    test("a session without a secret accepts no token (verifying creates none)", async () => {
      const m = manager(mode);
      const other = await request(m, undefined, (s) => s.session.csrfToken());
      const r = await request(m, undefined, (s) => {
        s.session.user = "ada";
        assert.equal(s.session.verifyCsrf(other.result), false);
      });
      await request(m, r.cookie, (s) => assert.equal(s.session.verifyCsrf(other.result), false));
    });

    test("stolen: another session's token is refused (cross-session)", async () => {
      const m = manager(mode);
      const alice = await request(m, undefined, (s) => s.session.csrfToken());
      const bob = await request(m, undefined, (s) => s.session.csrfToken());
      await request(m, bob.cookie, (s) => {
        assert.equal(s.session.verifyCsrf(alice.result), false);
        assert.equal(s.session.verifyCsrf(bob.result), true);
      });
    });

    test("stale: regenerate() (login) rotates the secret; the old token is refused, the new one works", async () => {
      const m = manager(mode);
      const before = await request(m, undefined, (s) => s.session.csrfToken());
      const login = await request(m, before.cookie, async (s) => {
        await s.session.regenerate();
        s.session.user = "ada";
        assert.equal(s.session.verifyCsrf(before.result), false, "rotated at once");
        return s.session.csrfToken();
      });
      await request(m, login.cookie, (s) => {
        assert.equal(s.session.verifyCsrf(before.result), false);
        assert.equal(s.session.verifyCsrf(login.result), true);
      });
    });

    test("destroy ends the secret: the next session's secret is new", async () => {
      const m = manager(mode);
      const r = await request(m, undefined, (s) => s.session.csrfToken());
      const out = await request(m, r.cookie, (s) => void (s.destroyed = true));
      await request(m, out.cookie, (s) => {
        assert.equal(s.session.verifyCsrf(r.result), false);
      });
    });

    if (mode === "store") {
      test("the secret survives data writes by id: update, setById, touchById, socket-style patches", async () => {
        const m = manager(mode);
        const r = await request(m, undefined, (s) => {
          s.session.n = 0;
          return s.session.csrfToken();
        });
        const id = r.state.id!;
        await m.update(id, (d) => void (d.n = 1));
        await m.setById(id, { n: 2 });
        await m.touchById(id, { force: true });
        assert.equal(await m.verifyCsrfById(id, r.result), true);
        await request(m, r.cookie, (s) => {
          s.session.n = 3;
          s.session.user = "ada";
        });
        assert.equal(await m.verifyCsrfById(id, r.result), true);
        assert.equal(await m.verifyCsrfById(id, flipBit(r.result, 50)), false);
        assert.equal(await m.verifyCsrfById("no-such-session", r.result), false);
      });

      test("two first requests asking for a token at once: the first secret saved stays", async () => {
        const m = manager(mode);
        const r = await request(m, undefined, (s) => void (s.session.user = "ada"));
        const a = m.open(r.cookie);
        const b = m.open(r.cookie);
        const ta = a.session.csrfToken();
        const tb = b.session.csrfToken();
        await m.commit(a);
        await m.commit(b);
        assert.equal(await m.verifyCsrfById(r.state.id!, ta), true, "the first saved wins");
        assert.equal(await m.verifyCsrfById(r.state.id!, tb), false);
      });
    }
  });
}

// ----------------------------------------------------------------------------- HTTP middleware

for (const mode of ["store", "sealed"] as const) {
  describe(`csrf middleware: Hono csrf() and Koa koaCsrf() (${mode} mode)`, () => {
    let env: Env;
    before(async () => {
      env = await startEnv(mode);
    });
    after(() => env.close());

    /** A browser that has a session and a token. */
    async function browser(path: "hono" | "koa"): Promise<{ cookie: string; token: string }> {
      const res = await env.request(path, "/token");
      const { token } = await res.json() as { token: string };
      return { cookie: cookieHeader(res.headers.getSetCookie()), token };
    }

    function post(path: "hono" | "koa", cookie: string | undefined, init: RequestInit = {}) {
      return env.request(path, "/guarded/write", { method: "POST", cookie, ...init });
    }

    for (const path of ["hono", "koa"] as const) {
      test(`${path}: the token in the x-csrf-token header passes; safe methods are never checked`, async () => {
        const b = await browser(path);
        const ok = await post(path, b.cookie, { headers: { "x-csrf-token": b.token } });
        assert.equal(ok.status, 200, await ok.clone().text());
        assert.equal((await ok.json()).n, 1);
        for (const method of ["GET", "HEAD", "OPTIONS"]) {
          const res = await env.request(path, "/guarded/write", { method, cookie: b.cookie });
          assert.notEqual(res.status, 403, method);
        }
      });

      test(`${path}: missing token → 403 (CsrfError, ERR_CSRF), and the handler did not run`, async () => {
        const b = await browser(path);
        env.errors.length = 0;
        const res = await post(path, b.cookie);
        assert.equal(res.status, 403);
        const err = env.errors.at(-1) as { cause?: unknown; code?: string };
        const csrfError = path === "hono" ? err.cause : err;
        assert.ok(csrfError instanceof CsrfError, String(csrfError));
        const after = await post(path, b.cookie, { headers: { "x-csrf-token": b.token } });
        assert.equal((await after.json()).n, 1, "the refused request changed nothing");
      });

      test(`${path}: stolen (another session's) and malformed tokens → 403`, async () => {
        const victim = await browser(path);
        const attacker = await browser(path);
        const stolen = await post(path, attacker.cookie, {
          headers: { "x-csrf-token": victim.token },
        });
        assert.equal(stolen.status, 403);
        for (const bad of malformed(victim.token)) {
          if (typeof bad !== "string" || bad.length === 0 || bad.includes("\u0000")) continue;
          const res = await post(path, victim.cookie, { headers: { "x-csrf-token": bad } });
          assert.equal(res.status, 403, bad);
        }
      });

      test(`${path}: a token without its session cookie (cross-session: no session) → 403`, async () => {
        const b = await browser(path);
        const res = await post(path, undefined, { headers: { "x-csrf-token": b.token } });
        assert.equal(res.status, 403);
      });

      test(`${path}: stale: the token from before login is refused after it, the login's token works`, async () => {
        const b = await browser(path);
        const login = await env.request(path, "/login", {
          method: "POST",
          cookie: b.cookie,
          headers: { "x-csrf-token": b.token },
        });
        assert.equal(login.status, 200);
        const { token } = await login.json() as { token: string };
        const cookie = cookieHeader(login.headers.getSetCookie());
        const stale = await post(path, cookie, { headers: { "x-csrf-token": b.token } });
        assert.equal(stale.status, 403);
        const fresh = await post(path, cookie, { headers: { "x-csrf-token": token } });
        assert.equal(fresh.status, 200);
      });
    }

    test("hono: the _csrf field of a urlencoded or multipart form passes, and the handler can still read the body", async () => {
      const b = await browser("hono");
      const app = new Hono()
        .use(session(env.manager), csrf())
        .post("/form", async (c) => c.json(await c.req.parseBody()));
      const urlencoded = await app.request("/form", {
        method: "POST",
        headers: { cookie: b.cookie, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ _csrf: b.token, amount: "10" }).toString(),
      });
      assert.equal(urlencoded.status, 200);
      assert.deepEqual(await urlencoded.json(), { _csrf: b.token, amount: "10" });
      const form = new FormData();
      form.set("_csrf", b.token);
      const multipart = await app.request("/form", {
        method: "POST",
        headers: { cookie: b.cookie },
        body: form,
      });
      assert.equal(multipart.status, 200);
      const wrong = await app.request("/form", {
        method: "POST",
        headers: { cookie: b.cookie, "content-type": "application/x-www-form-urlencoded" },
        body: "_csrf=nope",
      });
      assert.equal(wrong.status, 403);
      const json = await app.request("/form", {
        method: "POST",
        headers: { cookie: b.cookie, "content-type": "application/json" },
        body: JSON.stringify({ _csrf: b.token }),
      });
      assert.equal(json.status, 403, "JSON bodies must use the header");
    });

    test("hono: header, field and safe methods are configurable; without session() it is a 500", async () => {
      const b = await browser("hono");
      const app = new Hono()
        .use(session(env.manager), csrf({ header: "X-XSRF", field: false, safeMethods: ["GET"] }))
        .all("/x", (c) => c.text("ok"));
      const h = (extra: Record<string, string>) => ({ cookie: b.cookie, ...extra });
      assert.equal(
        (await app.request("/x", { method: "PUT", headers: h({ "x-xsrf": b.token }) })).status,
        200,
      );
      assert.equal(
        (await app.request("/x", { method: "PUT", headers: h({ "x-csrf-token": b.token }) }))
          .status,
        403,
      );
      assert.equal((await app.request("/x", { method: "OPTIONS", headers: h({}) })).status, 403);
      assert.throws(() => csrf({ header: "bad header" }), TypeError);
      assert.throws(() => csrf({ field: "" }), TypeError);
      const errors: unknown[] = [];
      const bare = new Hono().use(csrf()).post("/x", (c) => c.text("ok"));
      bare.onError((err, c) => (errors.push(err), c.text("error", 500)));
      assert.equal((await bare.request("/x", { method: "POST" })).status, 500);
      assert.ok(errors[0] instanceof TypeError);
    });

    test("koa: the _csrf field of a body parsed before koaCsrf passes; 403 responses expose only a fixed message", async () => {
      const b = await browser("koa");
      const app = new Koa();
      app.silent = true;
      const { koaSession } = await import("../adapters/koa.ts");
      app.use(koaSession(env.manager));
      app.use(async (ctx, next) => {
        // A body parser's result (koa-bodyparser sets ctx.request.body).
        const raw = await new Promise<string>((resolve) => {
          let s = "";
          ctx.req.on("data", (c) => (s += c));
          ctx.req.on("end", () => resolve(s));
        });
        (ctx.request as { body?: unknown }).body = Object.fromEntries(new URLSearchParams(raw));
        await next();
      });
      app.use(koaCsrf());
      app.use((ctx) => {
        ctx.body = "ok";
      });
      const { createServer } = await import("node:http");
      const http = createServer(app.callback());
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/`;
      try {
        const send = (body: string) =>
          fetch(url, {
            method: "POST",
            headers: { cookie: b.cookie, "content-type": "application/x-www-form-urlencoded" },
            body,
          });
        const ok = await send(new URLSearchParams({ _csrf: b.token }).toString());
        assert.equal(ok.status, 200);
        const bad = await send("_csrf=x");
        assert.equal(bad.status, 403);
        assert.equal(await bad.text(), "Invalid CSRF token");
      } finally {
        await new Promise<void>((r) => {
          http.close(() => r());
          http.closeAllConnections?.();
        });
      }
    });
  });
}

// ------------------------------------------------------------------------------ socket.io

for (const mode of ["store", "sealed"] as const) {
  describe(`csrf: socket.io opt-in check (attachSocketIO(io, m, { csrf: true }), ${mode} mode)`, () => {
    let env: Env;
    before(async () => {
      env = await startEnv(mode, {}, { csrf: true });
    });
    after(() => env.close());

    async function loggedIn(): Promise<{ cookie: string; token: string }> {
      const res = await env.request("hono", "/login", { method: "POST" });
      const { token } = await res.json() as { token: string };
      return { cookie: cookieHeader(res.headers.getSetCookie()), token };
    }

    async function refusal(p: Promise<unknown>): Promise<string | undefined> {
      try {
        await p;
      } catch (err) {
        return (err as { data?: { code?: string } }).data?.code;
      }
      return undefined;
    }

    test("a handshake with the session's token connects, and withSession works", async () => {
      const b = await loggedIn();
      const socket = await env.connect(b.cookie, { csrf: b.token });
      assert.deepEqual(await socket.timeout(3000).emitWithAck("read"), { ok: "ada" });
      socket.close();
    });

    test("missing, malformed and stolen tokens: the handshake is refused with ERR_CSRF", async () => {
      const victim = await loggedIn();
      const attacker = await loggedIn();
      assert.equal(await refusal(env.connect(victim.cookie)), "ERR_CSRF", "missing");
      assert.equal(await refusal(env.connect(victim.cookie, { csrf: "x" })), "ERR_CSRF");
      assert.equal(
        await refusal(env.connect(victim.cookie, { csrf: flipBit(victim.token, 60) })),
        "ERR_CSRF",
      );
      assert.equal(
        await refusal(env.connect(attacker.cookie, { csrf: victim.token })),
        "ERR_CSRF",
        "stolen",
      );
    });

    test("a socket without a session connects (nothing to protect yet)", async () => {
      const socket = await env.connect(undefined);
      const me = await socket.timeout(3000).emitWithAck("whoami") as { sessionId: unknown };
      assert.equal(me.sessionId, null);
      socket.close();
    });

    if (mode === "store") {
      test("stale: after a login over HTTP the socket follows the new session, but withSession refuses its old token until it reconnects with the new one", async () => {
        const b = await loggedIn();
        const socket = await env.connect(b.cookie, { csrf: b.token });
        const login = await env.request("hono", "/login", {
          method: "POST",
          cookie: b.cookie,
        });
        const { token } = await login.json() as { token: string };
        const cookie = cookieHeader(login.headers.getSetCookie());
        assert.deepEqual(await socket.timeout(3000).emitWithAck("incr"), { error: "ERR_CSRF" });
        socket.close();
        const again = await env.connect(cookie, { csrf: token });
        assert.deepEqual(await again.timeout(3000).emitWithAck("incr"), { ok: 1 });
        again.close();
      });

      test("a socket opened before the browser had a session cannot use the session created later", async () => {
        const visit = await env.request("hono", "/whoami");
        const cid = cookieHeader(visit.headers.getSetCookie());
        const socket = await env.connect(cid);
        const login = await env.request("hono", "/login", { method: "POST", cookie: cid });
        assert.equal(login.status, 200);
        assert.deepEqual(await socket.timeout(3000).emitWithAck("incr"), { error: "ERR_CSRF" });
        socket.close();
      });
    }

    test("invalid csrf options are a TypeError", async () => {
      const { Server } = await import("socket.io");
      const { attachSocketIO } = await import("../adapters/socket_io.ts");
      const io = new Server();
      assert.throws(() => attachSocketIO(io, env.manager, { csrf: { field: "" } }), TypeError);
      assert.throws(
        () => attachSocketIO(io, env.manager, { csrf: "yes" as unknown as boolean }),
        TypeError,
      );
    });
  });
}

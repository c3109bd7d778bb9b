/**
 * The Hono adapter (`adapters/hono.ts`), end to end through `app.request()`:
 *
 * 1. every example of hono-session's README works with only the import line changed;
 * 2. the session guarantees, in both modes (sealed cookie, and MapStore through
 *    `createSessions()` + `session(manager)`).
 *
 * Runs unchanged on Deno, Bun and Node (node:test + node:assert/strict, hooks only).
 */
import { beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Context, Hono } from "hono";
import { setCookie } from "hono/cookie";
import {
  CookieTooLargeError,
  createSessions,
  type InvalidReason,
  MapStore,
  type SessionManager,
  type SessionOptions,
  type StoredRecord,
} from "../mod.ts";
import { type Session as HonoSession, session } from "../adapters/hono.ts";
// hono-session's `import 'hono-session/global'`: types c.session, c.sessionId, c.clientId.
import "../adapters/hono_global.ts";
import { Client, CookieJar, type JarResponse, type SetCookie } from "./helpers/cookie_jar.ts";

const SECRET = "a-secret-of-at-least-32-characters!!";
const OLD_KEY = "the-old-key-of-at-least-32-characters";
const NEW_KEY = "the-new-key-of-at-least-32-characters";
const OTHER_KEY = "somebody-elses-key-of-32-characters!!";

/** The Set-Cookie of `name` in a response, if any. */
function cookieOf(r: JarResponse, name = "sid"): SetCookie | undefined {
  return r.setCookies.find((c) => c.name === name);
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Replaces the base64url character at `i` (negative: from the end) with one whose top bit
 * differs. Flipping a low bit is not enough: the last character of a base64url digest carries
 * unused padding bits, so e.g. `A` → `B` there can decode to the very same bytes.
 */
function flipAt(s: string, i: number): string {
  const at = i < 0 ? s.length + i : i;
  const index = B64URL.indexOf(s[at]!);
  assert.ok(index >= 0, `not a base64url character at ${at}`);
  return s.slice(0, at) + B64URL[index ^ 32] + s.slice(at + 1);
}

/** Runs `fn` with console.warn captured; returns the warnings. */
function captureWarnings(fn: () => void): string[] {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

// ====================================================================================
// 1. hono-session's README, as written
// ====================================================================================

/**
 * The README's login/logout/me app. Only change: the README's `/login` and `/logout` handlers
 * return nothing (the README elides the response), which Hono itself answers with a 500
 * ("Context is not finalized") whatever the session library; here they return a 204.
 * `async` is dropped where nothing is awaited (deno lint's require-await); behaviour is the same.
 */
function readmeApp(options: Parameters<typeof session>[0]) {
  return new Hono()
    .use(session(options))
    .post("/login", (c) => {
      c.session.userId = "ada";
      return c.body(null, 204);
    })
    .post("/login-get", (c) => {
      // "or"
      const session = c.get("session");
      session.userId = "grace";
      return c.body(null, 204);
    })
    .post("/logout", (c) => {
      c.session = null;
      return c.body(null, 204);
    })
    .post("/logout-set", (c) => {
      // "or" — README is JavaScript; in TypeScript the Variables type of `session` is the session
      // object, so `null` needs a cast (hono-session types it the same way).
      c.set("session", null as never);
      return c.body(null, 204);
    })
    .get("/me", (c) => {
      const userId = c.session.userId;
      if (!userId) return c.text("Unauthorised", 401);
      return c.text(userId);
    });
}

describe("hono-session README examples work as written (import line changed only)", () => {
  const setups = {
    "stateless (secret)": () => ({ secret: SECRET }),
    "new Map() store": () => ({ secret: SECRET, store: new Map() }),
  };
  const logins = {
    "c.session.userId = ...": "/login",
    "c.get('session').userId = ...": "/login-get",
  };
  const logouts = { "c.session = null": "/logout", "c.set('session', null)": "/logout-set" };
  for (const [setupName, options] of Object.entries(setups)) {
    for (const [loginName, loginPath] of Object.entries(logins)) {
      for (const [logoutName, logoutPath] of Object.entries(logouts)) {
        test(`${setupName}: /me is 401 before login, the id after \`${loginName}\`, 401 after \`${logoutName}\``, async () => {
          const client = new Client(readmeApp(options()));
          const anon = await client.get("/me");
          assert.equal(anon.status, 401);
          assert.equal(anon.setCookies.length, 0, "an anonymous request sets no cookie");

          const login = await client.post(loginPath);
          assert.equal(login.status, 204);
          assert.ok(cookieOf(login)?.value, "login sets the sid cookie");

          const me = await client.get("/me");
          assert.equal(me.status, 200);
          assert.equal(me.body, loginPath === "/login" ? "ada" : "grace");

          const logout = await client.post(logoutPath);
          assert.equal(logout.status, 204);
          assert.equal(cookieOf(logout)?.attributes["max-age"], "0", "logout expires the cookie");

          const after = await client.get("/me");
          assert.equal(after.status, 401);
        });
      }
    }
  }

  test("stateless by default: no store, data sealed in the cookie (not readable as plain text)", async () => {
    const client = new Client(readmeApp({ secret: SECRET }));
    const login = await client.post("/login");
    const value = cookieOf(login)!.value;
    assert.match(value, /^Fe26\.2\*/, "an iron seal by default");
    assert.ok(!value.includes("userId"), "the data is encrypted"); // ("ada" alone can occur in random base64url)
    assert.equal((await client.get("/me")).body, "ada");
  });

  test("no secret: a random one is generated with a warning, and sessions still work", async () => {
    let middleware: ReturnType<typeof session<HonoSession>> | undefined;
    const warnings = captureWarnings(() => {
      middleware = session();
    });
    assert.ok(
      warnings.some((w) => /random key/i.test(w)),
      `expected a random-key warning, got ${JSON.stringify(warnings)}`,
    );
    const app = new Hono().use(middleware!).get("/login", (c) => {
      c.session.userId = "ada";
      return c.text("ok");
    }).get("/me", (c) => c.text(c.session.userId ?? "anonymous"));
    const client = new Client(app);
    await client.get("/login");
    assert.equal((await client.get("/me")).body, "ada");

    // "sessions will only be valid until the server restarts": another instance has another key.
    let restarted: ReturnType<typeof session<HonoSession>> | undefined;
    captureWarnings(() => {
      restarted = session();
    });
    const app2 = new Hono().use(restarted!).get(
      "/me",
      (c) => c.text(c.session.userId ?? "anonymous"),
    );
    assert.equal((await new Client(app2, client.jar.clone()).get("/me")).body, "anonymous");
  });

  test("secret shorter than 32 characters is refused at setup", () => {
    assert.throws(() => session({ secret: "too-short" }), RangeError);
  });

  test("a custom encoder { encode, decode } is used for the cookie, with the secret", async () => {
    const calls = { encode: 0, decode: 0, secrets: new Set<string>() };
    const encoder = {
      encode(data: unknown, secret: string) {
        calls.encode++;
        calls.secrets.add(secret);
        return "b64." + btoa(JSON.stringify(data)).replaceAll("+", "-").replaceAll("/", "_")
          .replaceAll("=", "");
      },
      decode(data: string, secret: string) {
        calls.decode++;
        calls.secrets.add(secret);
        if (!data.startsWith("b64.")) throw new Error("not ours");
        const b64 = data.slice(4).replaceAll("-", "+").replaceAll("_", "/");
        return JSON.parse(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)));
      },
    };
    const client = new Client(readmeApp({ secret: SECRET, encoder }));
    const login = await client.post("/login");
    assert.equal(calls.encode, 1);
    assert.match(cookieOf(login)!.value, /^b64\./, "the cookie is the encoder's output");
    assert.equal((await client.get("/me")).body, "ada");
    assert.ok(calls.decode >= 1, "decode reads the cookie back");
    assert.deepEqual([...calls.secrets], [SECRET]);
    // A value the encoder cannot decode is no session, not an error.
    client.jar.set("sid", "garbage");
    assert.equal((await client.get("/me")).status, 401);
  });

  test("a custom encoder may return any string (plain JSON with spaces, ';', non-ASCII): it is URI-encoded for the cookie like hono-session's setCookie does", async () => {
    // hono-session writes the encoder's output with Hono's setCookie(), which URI-encodes it (and
    // getCookie decodes it), so any string works there. A drop-in must accept the same encoders.
    const encoder = {
      encode: (data: unknown) => JSON.stringify(data),
      decode: (data: string) => JSON.parse(data),
    };
    const app = readmeApp({ secret: SECRET, encoder }).post("/login-name", (c) => {
      c.session.userId = "Ada Lovelace; née Byron";
      return c.body(null, 204);
    });
    const client = new Client(app);
    const login = await client.post("/login");
    assert.equal(login.status, 204);
    assert.equal((await client.get("/me")).body, "ada");
    const named = await client.post("/login-name");
    assert.equal(named.status, 204, "the encoder's output is made cookie-safe, not a 500");
    assert.equal((await client.get("/me")).body, "Ada Lovelace; née Byron");
  });

  test("an async { get(id, c), set(id, data, c), delete(id, c) } database store receives the Hono context as the last argument", async () => {
    const db = new Map<string, unknown>();
    let current: Context | undefined; // the context of the request being handled
    const calls: { op: string; argc: number; last: unknown; isContext: boolean }[] = [];
    const note = (op: string, args: unknown[]) => {
      const last = args[args.length - 1];
      calls.push({
        op,
        argc: args.length,
        last,
        isContext: last === current && last instanceof Context,
      });
    };
    // The README's databaseStore, with a Map standing in for `db.query`.
    const databaseStore = {
      async get(id: string, c: unknown) {
        note("get", [id, c]);
        return await Promise.resolve(db.get(id));
      },
      async set(id: string, data: unknown, c: unknown) {
        note("set", [id, data, c]);
        await Promise.resolve(db.set(id, JSON.parse(JSON.stringify(data))));
      },
      async delete(id: string, c: unknown) {
        note("delete", [id, c]);
        await Promise.resolve(db.delete(id));
      },
    };
    const app = new Hono()
      .use(async (c, next) => {
        current = c;
        await next();
      })
      .use(session({ secret: SECRET, store: databaseStore }))
      .post("/login", (c) => {
        c.session.userId = "ada";
        return c.body(null, 204);
      })
      .post("/logout", (c) => {
        c.session = null;
        return c.body(null, 204);
      })
      .get("/me", (c) => c.session.userId ? c.text(c.session.userId) : c.text("Unauthorised", 401));
    const client = new Client(app);

    await client.post("/login");
    assert.equal(db.size, 1, "the session was saved to the database");
    assert.equal((await client.get("/me")).body, "ada");
    await client.post("/logout");
    assert.equal(db.size, 0, "logout deleted the row");
    assert.equal((await client.get("/me")).status, 401);

    for (const op of ["get", "set", "delete"]) {
      assert.ok(calls.some((call) => call.op === op), `store.${op} was called`);
    }
    const wrong = calls.filter((call) => !call.isContext).map((call) =>
      `${call.op} got ${typeof call.last === "object" ? "another object" : String(call.last)} as c`
    );
    assert.deepEqual(wrong, [], "every store call gets the request's Hono context as `c`");
  });

  test("new Map() as store: the cookie holds an id, the Map holds the session", async () => {
    const memoryStore = new Map();
    const client = new Client(readmeApp({ secret: SECRET, store: memoryStore }));
    const login = await client.post("/login");
    assert.equal(memoryStore.size, 1);
    const [id] = memoryStore.keys();
    assert.ok(cookieOf(login)!.value.startsWith(`${id}.`), "cookie = id.signature");
    assert.equal((await client.get("/me")).body, "ada");
    await client.post("/logout");
    assert.equal(memoryStore.size, 0);
  });

  for (const [name, extra] of [["stateless", {}], ["Map store", { store: new Map() }]] as const) {
    test(`${name}: maxAge is in seconds and becomes the cookie's Max-Age`, async () => {
      const client = new Client(readmeApp({ secret: SECRET, maxAge: 3600, ...extra }));
      const login = await client.post("/login");
      assert.equal(cookieOf(login)?.attributes["max-age"], "3600");
    });
  }

  test("default maxAge is one day", async () => {
    const login = await new Client(readmeApp({ secret: SECRET })).post("/login");
    assert.equal(cookieOf(login)?.attributes["max-age"], "86400");
  });

  test("cookieName names the session cookie", async () => {
    const client = new Client(readmeApp({ secret: SECRET, cookieName: "my_session" }));
    const login = await client.post("/login");
    assert.ok(cookieOf(login, "my_session")?.value);
    assert.equal(cookieOf(login, "sid"), undefined);
    assert.equal((await client.get("/me")).body, "ada");
  });

  test("cookieOptions default to secure and httpOnly", async () => {
    const login = await new Client(readmeApp({ secret: SECRET })).post("/login");
    const c = cookieOf(login)!;
    assert.equal(c.attributes["secure"], true);
    assert.equal(c.attributes["httponly"], true);
    assert.equal(c.attributes["path"], "/");
  });

  test("cookieOptions: sameSite 'Strict' (capitalised, Hono's spelling) is accepted; defaults stay", async () => {
    const login = await new Client(
      readmeApp({ secret: SECRET, cookieOptions: { sameSite: "Strict" } }),
    )
      .post("/login");
    const c = cookieOf(login)!;
    assert.equal(String(c.attributes["samesite"]).toLowerCase(), "strict");
    assert.equal(c.attributes["secure"], true);
    assert.equal(c.attributes["httponly"], true);
  });

  test("cookieOptions override the defaults (httpOnly: false, secure: false, path)", async () => {
    const options = {
      secret: SECRET,
      cookieOptions: { httpOnly: false, secure: false, path: "/app" },
    };
    const login = await new Client(readmeApp(options)).post("/login");
    const c = cookieOf(login)!;
    assert.equal(c.attributes["httponly"], undefined);
    assert.equal(c.attributes["secure"], undefined);
    assert.equal(c.attributes["path"], "/app");
  });

  for (const [name, extra] of [["stateless", {}], ["Map store", { store: new Map() }]] as const) {
    test(`${name}: renew(maxAge?) (seconds) re-sends the cookie; with an argument, with the new Max-Age`, async () => {
      const app = readmeApp({ secret: SECRET, ...extra })
        .post("/renew", (c) => {
          const s = c.req.query("s");
          if (s === undefined) c.session.renew();
          else c.session.renew(Number(s));
          return c.body(null, 204);
        });
      const client = new Client(app);
      await client.post("/login");
      const read = await client.get("/me");
      assert.equal(cookieOf(read), undefined, "a plain read does not re-send the cookie");

      const renewed = await client.post("/renew");
      assert.equal(
        cookieOf(renewed)?.attributes["max-age"],
        "86400",
        "renew() re-sends the cookie",
      );

      const longer = await client.post("/renew?s=7200");
      assert.equal(cookieOf(longer)?.attributes["max-age"], "7200");
      assert.equal((await client.get("/me")).body, "ada", "data kept");
    });
  }

  test("regenerate() (Map store): new cookie and id, data kept, the old entry deleted and the old cookie gives no session", async () => {
    const memoryStore = new Map();
    const app = readmeApp({ secret: SECRET, store: memoryStore })
      .post("/regenerate", async (c) => {
        await c.session.regenerate();
        return c.body(null, 204);
      });
    const client = new Client(app);
    await client.post("/login");
    const before = client.jar.get("sid")!;
    const oldJar = client.jar.clone();
    const [oldId] = memoryStore.keys();

    const res = await client.post("/regenerate");
    const after = cookieOf(res)?.value;
    assert.ok(after && after !== before, "a new cookie is sent");
    assert.equal(memoryStore.size, 1, "the old entry was deleted, not kept next to the new one");
    assert.ok(!memoryStore.has(oldId), "the old id is gone");
    assert.equal((await client.get("/me")).body, "ada", "data kept");
    assert.equal((await new Client(app, oldJar).get("/me")).status, 401, "old cookie: no session");
  });

  test("regenerate() (stateless): new cookie and session id, data kept", async () => {
    const app = readmeApp({ secret: SECRET })
      .get("/id", (c) => c.text(c.sessionId ?? ""))
      .post("/regenerate", async (c) => {
        await c.session.regenerate();
        return c.text(c.sessionId ?? "");
      });
    const client = new Client(app);
    await client.post("/login");
    const before = client.jar.get("sid");
    const oldId = (await client.get("/id")).body;
    const res = await client.post("/regenerate");
    assert.notEqual(cookieOf(res)?.value, before);
    assert.ok(res.body && res.body !== oldId, "the session id changed");
    assert.equal((await client.get("/id")).body, res.body);
    assert.equal((await client.get("/me")).body, "ada", "data kept");
  });

  test("regenerate() not awaited (as hono-session's own test suite calls it) still completes before the response (Map store)", async () => {
    const memoryStore = new Map();
    const app = readmeApp({ secret: SECRET, store: memoryStore })
      .post("/regenerate", (c) => {
        c.session.regenerate(); // no await
        return c.body(null, 204);
      });
    const client = new Client(app);
    await client.post("/login");
    const before = client.jar.get("sid");
    const res = await client.post("/regenerate");
    assert.ok(cookieOf(res)?.value && cookieOf(res)?.value !== before, "a new cookie is sent");
    assert.equal(memoryStore.size, 1, "exactly one session entry remains");
    assert.equal((await client.get("/me")).body, "ada", "still logged in with the data kept");
  });

  for (const [name, extra] of [["stateless", {}], ["Map store", { store: new Map() }]] as const) {
    const flashApp = () =>
      new Hono()
        .use(session({ secret: SECRET, ...extra }))
        .get("/flash", (c) => {
          c.session.flash("foo", "bar");
          return c.body(null, 204);
        })
        .get("/reflash", (c) => {
          c.session.reflash();
          return c.body(null, 204);
        })
        .get("/read-flash", (c) => c.text(c.session.foo ?? ""));

    test(`${name}: flash(key, value) is visible on the next request, then gone`, async () => {
      const client = new Client(flashApp());
      await client.get("/flash");
      assert.equal((await client.get("/read-flash")).body, "bar");
      assert.equal((await client.get("/read-flash")).body, "");
    });

    test(`${name}: reflash() keeps flashed values one more request`, async () => {
      const client = new Client(flashApp());
      await client.get("/flash");
      await client.get("/reflash");
      assert.equal((await client.get("/read-flash")).body, "bar");
      assert.equal((await client.get("/read-flash")).body, "");
    });
  }

  test("hasChanged: false after a read, true after a set or a nested mutation", async () => {
    const app = new Hono()
      .use(session({ secret: SECRET }))
      .post("/login", (c) => {
        const before = c.session.hasChanged;
        c.session.userId = "ada";
        c.session.prefs = { theme: "light" };
        return c.json({ before, after: c.session.hasChanged });
      })
      .get("/read", (c) => {
        void c.session.userId;
        void c.session.prefs.theme;
        return c.json({ hasChanged: c.session.hasChanged });
      })
      .post("/theme", (c) => {
        c.session.prefs.theme = "dark";
        return c.json({ hasChanged: c.session.hasChanged });
      });
    const client = new Client(app);
    assert.deepEqual(JSON.parse((await client.post("/login")).body), {
      before: false,
      after: true,
    });
    assert.deepEqual(JSON.parse((await client.get("/read")).body), { hasChanged: false });
    assert.deepEqual(JSON.parse((await client.post("/theme")).body), { hasChanged: true });
  });

  test("isNew: true on the first request, false once saved", async () => {
    const app = new Hono()
      .use(session({ secret: SECRET }))
      .post("/login", (c) => {
        const before = c.session.isNew;
        c.session.userId = "ada";
        return c.json({ before, after: c.session.isNew });
      })
      .get("/is-new", (c) => c.json({ isNew: c.session.isNew }));
    const client = new Client(app);
    assert.deepEqual(JSON.parse((await client.get("/is-new")).body), { isNew: true });
    assert.deepEqual(JSON.parse((await client.post("/login")).body), { before: true, after: true });
    assert.deepEqual(JSON.parse((await client.get("/is-new")).body), { isNew: false });
  });

  test("assigning an object to c.session replaces the data", async () => {
    const app = readmeApp({ secret: SECRET, store: new Map() })
      .post("/replace", (c) => {
        c.session = { userId: "grace" };
        return c.body(null, 204);
      })
      .get("/keys", (c) => c.json(Object.keys(c.session)));
    const client = new Client(app);
    await client.post("/login");
    await client.post("/replace");
    assert.equal((await client.get("/me")).body, "grace");
    assert.deepEqual(JSON.parse((await client.get("/keys")).body), ["userId"]);
  });
});

// ====================================================================================
// 2. Guarantees in both modes (createSessions + session(manager))
// ====================================================================================

/** A MapStore that counts calls (MapStore is synchronous, so sessions load lazily). */
class CountingStore extends MapStore {
  counts = { get: 0, set: 0, delete: 0, update: 0 };
  reset(): void {
    this.counts = { get: 0, set: 0, delete: 0, update: 0 };
  }
  override get(id: string): StoredRecord | undefined {
    this.counts.get++;
    return super.get(id);
  }
  override set(id: string, record: StoredRecord, ttlMs: number): void {
    this.counts.set++;
    super.set(id, record, ttlMs);
  }
  override delete(id: string): void {
    this.counts.delete++;
    super.delete(id);
  }
  override update(
    id: string,
    mutate: (r: StoredRecord) => StoredRecord | undefined,
  ): StoredRecord | undefined {
    this.counts.update++;
    return super.update(id, mutate);
  }
  /** Reads without counting. */
  peek(id: string): StoredRecord | undefined {
    return super.get(id);
  }
  get writes(): number {
    return this.counts.set + this.counts.update;
  }
}

type Mode = "sealed" | "store";

interface Setup {
  manager: SessionManager;
  store: CountingStore | undefined;
  app: Hono;
  errors: unknown[];
  reasons: { reason: InvalidReason; isContext: boolean }[];
  client(jar?: CookieJar): Client;
}

/** The test app of section 2. */
function makeApp(manager: SessionManager): { app: Hono; errors: unknown[] } {
  const errors: unknown[] = [];
  const app = new Hono();
  app.onError((err, c) => {
    errors.push(err);
    return c.text("Internal Server Error", 500);
  });
  app.use(session(manager));
  app.get("/", (c) => c.text("untouched"));
  app.get("/read", (c) => c.json({ user: c.session.user ?? null, cart: c.session.cart ?? null }));
  app.post("/login", (c) => {
    const id = c.sessionId; // before any data: the id must be known already
    c.session.user = "ada";
    return c.json({ id, after: c.sessionId });
  });
  app.get("/id", (c) => c.json({ id: c.sessionId ?? null, clientId: c.clientId ?? null }));
  app.get("/client", (c) => c.json({ clientId: c.clientId ?? null }));
  app.post("/cart/init", (c) => {
    c.session.cart = { items: [] };
    return c.body(null, 204);
  });
  app.post("/cart/add", (c) => {
    c.session.cart.items.push(c.req.query("item"));
    return c.body(null, 204);
  });
  app.post("/logout", (c) => {
    c.session = null;
    return c.body(null, 204);
  });
  app.post("/regenerate", async (c) => {
    await c.session.regenerate();
    return c.json({ id: c.sessionId });
  });
  app.post("/cookies", (c) => {
    setCookie(c, "theme", "dark");
    c.header("Set-Cookie", "lang=en; Path=/", { append: true });
    c.header("Cache-Control", "public, max-age=60");
    c.session.user = "ada";
    return c.text("ok");
  });
  app.post("/raw", (c) => {
    c.session.user = "ada";
    return new Response("raw", { headers: { "set-cookie": "raw=1; Path=/" } });
  });
  app.post("/redirect", (c) => {
    c.session.user = "ada";
    return c.redirect("/read");
  });
  app.post("/boom", (c) => {
    c.session.user = "mallory";
    c.session.cart = { items: ["half"] };
    throw new Error("boom");
  });
  app.post("/big", (c) => {
    const bytes = crypto.getRandomValues(new Uint8Array(4000));
    c.session.blob = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return c.text("ok");
  });
  return { app, errors };
}

function setup(mode: Mode, options: SessionOptions = {}, shared?: CountingStore): Setup {
  const reasons: Setup["reasons"] = [];
  const store = mode === "store" ? shared ?? new CountingStore() : undefined;
  const manager = createSessions({
    keys: [SECRET],
    ...options,
    ...(store ? { store } : {}),
    onInvalid: (reason, ctx) => reasons.push({ reason, isContext: ctx instanceof Context }),
  });
  const { app, errors } = makeApp(manager);
  return { manager, store, app, errors, reasons, client: (jar) => new Client(app, jar) };
}

async function json(p: Promise<JarResponse>): Promise<Record<string, unknown>> {
  const r = await p;
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.body}`);
  return JSON.parse(r.body);
}

for (const mode of ["sealed", "store"] as const) {
  describe(`${mode} mode (createSessions${mode === "store" ? "({ store: MapStore })" : "()"} + session(manager))`, () => {
    let now = Date.UTC(2030, 0, 1);
    const clock = () => now;
    beforeEach(() => {
      now = Date.UTC(2030, 0, 1);
    });

    test("nested mutation persists (c.session.cart.items.push(x))", async () => {
      const s = setup(mode);
      const client = s.client();
      await client.post("/cart/init");
      await client.post("/cart/add?item=apple");
      await client.post("/cart/add?item=pear");
      assert.deepEqual((await json(client.get("/read"))).cart, { items: ["apple", "pear"] });
    });

    test(`a request that only reads sends no session Set-Cookie${mode === "store" ? " and writes nothing to the store" : ""}`, async () => {
      const s = setup(mode);
      const client = s.client();
      await client.post("/login");
      await client.post("/cart/init");
      s.store?.reset();
      const r = await client.get("/read");
      assert.equal((JSON.parse(r.body) as { user: string }).user, "ada");
      assert.deepEqual(r.setCookies, [], "no Set-Cookie at all");
      if (s.store) {
        assert.equal(s.store.counts.get, 1, "one store read");
        assert.equal(s.store.writes, 0, "no store write");
      }
    });

    test(`a request that does not touch the session ${mode === "store" ? "reads nothing from the store" : "sends no Set-Cookie"}`, async () => {
      const s = setup(mode);
      const client = s.client();
      await client.post("/login");
      s.store?.reset();
      const r = await client.get("/");
      assert.equal(r.body, "untouched");
      assert.deepEqual(r.setCookies, []);
      if (s.store) assert.deepEqual(s.store.counts, { get: 0, set: 0, delete: 0, update: 0 });
    });

    test("key rotation: a cookie signed with an old key is accepted and re-signed with the new key", async () => {
      const store = mode === "store" ? new CountingStore() : undefined;
      const old = setup(mode, { keys: [OLD_KEY] }, store);
      const rotated = setup(mode, { keys: [NEW_KEY, OLD_KEY] }, store);
      const onlyNew = setup(mode, { keys: [NEW_KEY] }, store);
      const jar = new CookieJar();
      await old.client(jar).post("/login");
      const oldCookie = jar.get("sid")!;
      const setsAfterLogin = store?.counts.set ?? 0; // the session and its client mapping

      const r = await rotated.client(jar).get("/read");
      assert.equal(JSON.parse(r.body).user, "ada", "old-key session accepted");
      const resigned = cookieOf(r, "sid");
      assert.ok(resigned?.value && resigned.value !== oldCookie, "re-signed with the new key");
      assert.equal(r.res.headers.get("cache-control"), "no-store");
      assert.equal(
        (await json(onlyNew.client(jar).get("/read"))).user,
        "ada",
        "new-key cookie valid without the old key",
      );
      if (store) {
        assert.equal(store.counts.set, setsAfterLogin, "re-signing does not rewrite the record");
      }
    });

    test("key rotation: a cookie signed with a removed key gives no session", async () => {
      const store = mode === "store" ? new CountingStore() : undefined;
      const old = setup(mode, { keys: [OLD_KEY] }, store);
      const onlyNew = setup(mode, { keys: [NEW_KEY] }, store);
      const jar = new CookieJar();
      await old.client(jar).post("/login");
      assert.equal((await json(onlyNew.client(jar).get("/read"))).user, null);
      // (the client-id cookie, signed with the same removed key, is reported as "client-signature")
      assert.deepEqual(
        onlyNew.reasons.map((r) => r.reason).filter((r) => r !== "client-signature"),
        [mode === "store" ? "signature" : "sealed"],
      );
    });

    /** Invalid session cookies, built from a valid one. */
    const invalidCases: Record<string, (valid: string, s: Setup) => Promise<string> | string> = {
      // store mode: `id.signature`; sealed mode: iron's `Fe26.2*…*encrypted*…*hmac`.
      "tampered id / payload": (v) =>
        mode === "store" ? flipAt(v, 0) : flipAt(v, v.split("*").slice(0, 4).join("*").length + 3),
      // (not the last char: its low bits are base64url padding, so a flip there can decode to the same MAC)
      "tampered signature": (v) => flipAt(v, -5),
      "truncated": (v) => v.slice(0, -5),
      "empty": () => "",
      "wrong key": async (_v, s) => {
        const other = setup(mode, { keys: [OTHER_KEY] }, s.store);
        const jar = new CookieJar();
        await other.client(jar).post("/login");
        return jar.get("sid")!;
      },
      "100 KB value": () => "a".repeat(100 * 1024),
    };

    for (const [name, make] of Object.entries(invalidCases)) {
      test(`invalid cookie (${name}) → no session, status 200, never a 500`, async () => {
        const s = setup(mode);
        const jar = new CookieJar();
        await s.client(jar).post("/login");
        jar.set("sid", await make(jar.get("sid")!, s));
        const r = await s.client(jar).get("/read");
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body).user, null);
        assert.equal(s.errors.length, 0);
        // and a write on top of it starts a fresh session
        const login = await s.client(jar).post("/login");
        assert.equal(login.status, 200);
        assert.equal((await json(s.client(jar).get("/read"))).user, "ada");
      });
    }

    test("onInvalid receives a reason (and the Hono context) for every invalid cookie", async () => {
      const missing: string[] = [];
      for (const [name, make] of Object.entries(invalidCases)) {
        const s = setup(mode);
        const jar = new CookieJar();
        await s.client(jar).post("/login");
        jar.set("sid", await make(jar.get("sid")!, s));
        await s.client(jar).get("/read");
        if (s.reasons.length === 0) missing.push(name);
        for (const r of s.reasons) assert.ok(r.isContext, `${name}: ctx is the Hono context`);
      }
      assert.deepEqual(missing, [], "cases where onInvalid was not called");
    });

    test("duplicated cookie names: the first one wins", async () => {
      const s = setup(mode);
      const jar = new CookieJar();
      await s.client(jar).post("/login");
      const valid = jar.get("sid")!;
      const bogus = flipAt(valid, -1);
      const first = await s.app.request("/read", {
        headers: { cookie: `sid=${bogus}; sid=${valid}` },
      });
      assert.equal(first.status, 200);
      assert.equal((await first.json()).user, null, "invalid first → no session");
      const second = await s.app.request("/read", {
        headers: { cookie: `sid=${valid}; sid=${bogus}` },
      });
      assert.equal((await second.json()).user, "ada", "valid first → the session");
    });

    test("idle timeout (injectable clock): activity keeps the session alive, idleness expires it", async () => {
      const s = setup(mode, { now: clock, maxAge: 60_000 });
      const client = s.client();
      await client.post("/login");
      now += 40_000; // less than half of the window remains: the read renews it
      const renewed = await client.get("/read");
      assert.equal(JSON.parse(renewed.body).user, "ada");
      assert.equal(
        cookieOf(renewed)?.attributes["max-age"],
        "60",
        "rolling renewal re-sends the cookie",
      );
      now += 40_000; // 80 s after login, 40 s after the last activity
      assert.equal((await json(client.get("/read"))).user, "ada");
      now += 61_000;
      assert.equal((await json(client.get("/read"))).user, null);
      assert.deepEqual(s.reasons.map((r) => r.reason), ["expired"]);
    });

    test("absoluteMaxAge (injectable clock) ends a session however active it is", async () => {
      const s = setup(mode, { now: clock, maxAge: 60_000, absoluteMaxAge: 100_000 });
      const client = s.client();
      await client.post("/login");
      now += 40_000;
      assert.equal((await json(client.get("/read"))).user, "ada");
      now += 40_000;
      assert.equal((await json(client.get("/read"))).user, "ada");
      now += 21_000; // 101 s after creation
      assert.equal((await json(client.get("/read"))).user, null);
      assert.deepEqual(s.reasons.map((r) => r.reason), ["expired"]);
    });

    test(`destroy (c.session = null) ${mode === "store" ? "removes the store record and " : ""}sends an expiring cookie (Max-Age=0)`, async () => {
      const s = setup(mode);
      const client = s.client();
      const { id } = await json(client.post("/login"));
      if (s.store) assert.ok(s.store.peek(id as string));
      const r = await client.post("/logout");
      const c = cookieOf(r);
      assert.equal(c?.value, "");
      assert.equal(c?.attributes["max-age"], "0");
      assert.equal(r.res.headers.get("cache-control"), "no-store");
      if (s.store) assert.equal(s.store.peek(id as string), undefined, "record removed");
      assert.equal((await json(client.get("/read"))).user, null);
    });

    if (mode === "store") {
      test("replaying the old cookie after destroy gives no session", async () => {
        const s = setup(mode);
        const client = s.client();
        await client.post("/login");
        const stolen = client.jar.clone();
        await client.post("/logout");
        assert.equal((await json(s.client(stolen).get("/read"))).user, null);
        assert.deepEqual(s.reasons.map((r) => r.reason), ["unknown-id"]);
      });
    } else {
      test("replaying the old cookie after destroy still works until it expires (stateless limitation, use a store to revoke)", async () => {
        const s = setup(mode);
        const client = s.client();
        await client.post("/login");
        const stolen = client.jar.clone();
        await client.post("/logout");
        assert.equal((await json(s.client(stolen).get("/read"))).user, "ada");
      });
    }

    test(`regenerate changes the id and keeps the data${mode === "store" ? "; the old record is deleted and the old cookie gives no session" : ""}`, async () => {
      const s = setup(mode);
      const client = s.client();
      const { id: oldId } = await json(client.post("/login"));
      const old = client.jar.clone();
      const { id: newId } = await json(client.post("/regenerate"));
      assert.ok(newId && newId !== oldId);
      assert.equal((await json(client.get("/id"))).id, newId);
      assert.equal((await json(client.get("/read"))).user, "ada");
      if (s.store) {
        assert.equal(s.store.peek(oldId as string), undefined, "old record deleted");
        assert.equal(s.store.peek(newId as string)?.data.user, "ada");
        assert.equal((await json(s.client(old).get("/read"))).user, null, "old cookie: no session");
      }
    });

    test("c.sessionId is defined in the very request that creates the session and is the stored id", async () => {
      const s = setup(mode);
      const client = s.client();
      const { id, after } = await json(client.post("/login"));
      assert.equal(typeof id, "string");
      assert.equal(after, id);
      if (s.store) assert.equal(s.store.peek(id as string)?.data.user, "ada");
      assert.equal((await json(client.get("/id"))).id, id, "the next request sees the same id");
      if (mode === "store") assert.ok(client.jar.get("sid")!.startsWith(`${id}.`));
    });

    if (mode === "store") {
      test("c.clientId is stable across requests (client cookie enabled), across login and logout", async () => {
        const s = setup(mode);
        const client = s.client();
        const first = (await json(client.get("/client"))).clientId;
        assert.equal(typeof first, "string");
        assert.ok(client.jar.has("sid.cid"), "the client cookie is set on the first response");
        assert.equal((await json(client.get("/client"))).clientId, first);
        await client.post("/login");
        assert.equal((await json(client.get("/id"))).clientId, first);
        await client.post("/logout");
        assert.equal((await json(client.get("/client"))).clientId, first);
      });

      test("c.clientId is the session's own, not another client-id cookie sent with its session cookie", async () => {
        const s = setup(mode);
        const victim = s.client();
        await victim.post("/login");
        const own = (await json(victim.get("/client"))).clientId;
        const attacker = s.client();
        await attacker.get("/client");
        victim.jar.set("sid.cid", attacker.jar.get("sid.cid")!); // planted
        // /client reads c.clientId only: the session is read for it.
        assert.equal((await json(victim.get("/client"))).clientId, own);
        assert.notEqual(victim.jar.get("sid.cid"), attacker.jar.get("sid.cid"), "its cookie again");
      });

      test("c.clientId through hono-session options: client: {} enables it", async () => {
        const app = new Hono().use(session({ secret: SECRET, store: new Map(), client: {} }))
          .get("/client", (c) => c.json({ clientId: c.clientId ?? null }));
        const client = new Client(app);
        const first = (await json(client.get("/client"))).clientId;
        assert.equal(typeof first, "string");
        assert.equal((await json(client.get("/client"))).clientId, first);
      });
    }

    test("responses that set the session cookie carry Cache-Control: no-store (even over the handler's own); others do not", async () => {
      const s = setup(mode);
      const client = s.client();
      const login = await client.post("/login");
      assert.equal(login.res.headers.get("cache-control"), "no-store");
      const withOwn = await s.client().post("/cookies"); // creates a session: sends its cookie
      assert.ok(cookieOf(withOwn));
      assert.equal(withOwn.res.headers.get("cache-control"), "no-store");
      const read = await client.get("/read");
      assert.equal(read.res.headers.get("cache-control"), null);
    });

    test("Set-Cookie headers set by the handler are preserved next to the session cookie", async () => {
      const s = setup(mode);
      const r = await s.client().post("/cookies");
      const names = r.setCookies.map((c) => c.name);
      for (const name of ["theme", "lang", "sid"]) {
        assert.ok(names.includes(name), `${name} in ${names}`);
      }
    });

    test("a handler returning a raw Response keeps its Set-Cookie and gets the session cookie", async () => {
      const s = setup(mode);
      const client = s.client();
      const r = await client.post("/raw");
      assert.equal(r.body, "raw");
      const names = r.setCookies.map((c) => c.name);
      assert.ok(names.includes("raw") && names.includes("sid"), String(names));
      assert.equal((await json(client.get("/read"))).user, "ada");
    });

    test("c.redirect() after a login carries the session cookie", async () => {
      const s = setup(mode);
      const client = s.client();
      const r = await client.post("/redirect");
      assert.equal(r.status, 302);
      assert.ok(cookieOf(r)?.value);
      assert.equal((await json(client.get("/read"))).user, "ada");
    });

    // Decision: a handler that throws gets the framework's 500 and the session is NOT committed —
    // neither the changes made before the throw (no half-written session) nor a new session.
    // The request failed, so its session effects are discarded (koa-session behaves the same way,
    // because its commit is skipped when `await next()` throws).
    test(`a handler that throws gives the framework's 500 and commits nothing (no half session${mode === "store" ? ", no store write" : ""})`, async () => {
      const s = setup(mode);
      const client = s.client();
      await client.post("/login");
      s.store?.reset();
      const r = await client.post("/boom");
      assert.equal(r.status, 500);
      assert.equal((s.errors[0] as Error)?.message, "boom");
      assert.equal(cookieOf(r), undefined, "no session Set-Cookie on the 500");
      if (s.store) assert.equal(s.store.writes, 0, "no store write");
      assert.deepEqual(await json(client.get("/read")), { user: "ada", cart: null });

      // a brand-new session is not created by a failing request either
      const fresh = setup(mode);
      const r2 = await fresh.client().post("/boom");
      assert.equal(r2.status, 500);
      assert.equal(cookieOf(r2), undefined);
      if (fresh.store) assert.equal(fresh.store.size, 0);
    });

    if (mode === "sealed") {
      test("a sealed cookie over 4096 bytes fails the request with a 500: CookieTooLargeError (ERR_COOKIE_TOO_LARGE) via app.onError", async () => {
        const s = setup(mode);
        const r = await s.client().post("/big");
        assert.equal(r.status, 500);
        assert.equal(cookieOf(r), undefined, "no (silently dropped) oversized cookie");
        assert.equal(s.errors.length, 1);
        const err = s.errors[0];
        assert.ok(err instanceof CookieTooLargeError, `got ${err}`);
        assert.equal(err.code, "ERR_COOKIE_TOO_LARGE");
        assert.ok(err.size > 4096);
      });
    } else {
      test("a large session is fine in store mode (only the id is in the cookie)", async () => {
        const s = setup(mode);
        const r = await s.client().post("/big");
        assert.equal(r.status, 200);
        assert.ok(cookieOf(r)!.value.length < 100);
      });
    }
  });
}

describe("a failing store", () => {
  test("answers 503 with the StoreError as the cause, commits nothing, and recovers", async () => {
    let down = false;
    const backing = new Map<string, unknown>();
    const store = {
      get: (id: string) =>
        down ? Promise.reject(new Error("ECONNREFUSED")) : Promise.resolve(backing.get(id)),
      set: (id: string, v: unknown) =>
        down ? Promise.reject(new Error("ECONNREFUSED")) : Promise.resolve(void backing.set(id, v)),
      delete: (id: string) => Promise.resolve(void backing.delete(id)),
    };
    const causes: unknown[] = [];
    const app = new Hono();
    app.use(session({ store, secret: "a-secret-of-at-least-32-characters!!" }));
    app.get("/", (c) => {
      c.session.n = (c.session.n ?? 0) + 1;
      return c.text(String(c.session.n));
    });
    const plain = new Hono();
    plain.onError((err, c) => {
      causes.push((err as { cause?: unknown }).cause);
      return c.text("down", (err as { status?: 503 }).status ?? 500);
    });
    plain.route("/", app);
    const client = new Client(app);
    assert.equal((await client.get("/")).body, "1");
    down = true;
    const failed = await client.get("/");
    assert.equal(failed.status, 503);
    down = false;
    assert.equal((await client.get("/")).body, "2");
    down = true;
    const viaOnError = await new Client(plain, client.jar).get("/");
    assert.equal(viaOnError.status, 503);
    assert.equal((causes[0] as { code?: string }).code, "ERR_STORE");
  });
});

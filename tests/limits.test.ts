/**
 * Limits a handler can run into, answered as the README promises rather than as an HTTP 500:
 *
 * 1. a session `maxAge` (or `renew(n)`) over 400 days: the cookie's Max-Age is capped at 400 days
 *    (RFC 6265bis; the serializer refuses more), so the commit neither throws nor leaves a record
 *    behind without a cookie; a value that is not a positive finite number throws at the
 *    assignment, in the handler, before anything is written;
 * 2. a failing store is a 503 in Hono whichever way the session is loaded: before the handler
 *    (an asynchronous store) or lazily in it (a synchronous store), and app.onError gets the same
 *    error for both; a StoreError the app's own code throws answers 503 too.
 *
 * Runs unchanged on Deno, Bun and Node (node:test + node:assert/strict).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  createSessions,
  MapStore,
  type SessionManager,
  type Store,
  type StoredRecord,
  StoreError,
} from "../mod.ts";
import { session } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import { Client, type JarResponse, type SetCookie } from "./helpers/cookie_jar.ts";

const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };
const DAY = 86_400_000;
/** 400 days in seconds: the Max-Age every capped cookie carries. */
const CAP_S = "34560000";
/** The client-id cookie's default year, in seconds. */
const YEAR_S = "31536000";
/** What the store's error says: it must never reach the client. */
const SECRET_DETAIL = "ECONNREFUSED 10.0.0.7:6379";

function cookieOf(r: JarResponse, name = "sid"): SetCookie | undefined {
  return r.setCookies.find((c) => c.name === name);
}

/** A MapStore that fails every call while `down`, synchronous (lazy loading) or not. */
class FlakyStore implements Store {
  readonly synchronous: boolean;
  readonly inner: MapStore = new MapStore();
  down = false;
  writes = 0;
  constructor(synchronous: boolean) {
    this.synchronous = synchronous;
  }
  #call<T>(fn: () => T): T | Promise<T> {
    if (this.down) {
      const err = new Error(SECRET_DETAIL);
      if (this.synchronous) throw err;
      return Promise.reject(err);
    }
    return this.synchronous ? fn() : Promise.resolve(fn());
  }
  get(id: string): StoredRecord | undefined | Promise<StoredRecord | undefined> {
    return this.#call(() => this.inner.get(id));
  }
  set(id: string, record: StoredRecord, ttlMs: number): void | Promise<void> {
    return this.#call(() => {
      this.writes++;
      this.inner.set(id, record, ttlMs);
    });
  }
  delete(id: string): void | Promise<void> {
    return this.#call(() => this.inner.delete(id));
  }
}

describe("a session maxAge over 400 days", () => {
  for (const mode of ["store", "sealed"] as const) {
    test(`${mode}: 500 days commits with Max-Age=${CAP_S} (400 days), the record stored and readable`, async () => {
      const store = mode === "store" ? new MapStore() : undefined;
      const m = createSessions({ store, keys: [KEY], logger: quiet });
      const state = m.open(null);
      state.session.user = "ada";
      state.session.maxAge = 500 * DAY;
      assert.equal(state.session.maxAge, 400 * DAY, "reads back as what applies");
      const result = await m.commit(state);
      const sid = result.cookies.find((c) => c.startsWith("sid="));
      assert.match(sid ?? "", new RegExp(`; Max-Age=${CAP_S};`));
      if (store) {
        // The client-id cookie keeps its own year.
        const cid = result.cookies.find((c) => c.startsWith("sid.cid="));
        assert.match(cid ?? "", new RegExp(`; Max-Age=${YEAR_S};`));
        const rec = store.get(state.id!)!;
        assert.equal(rec.maxAge, 400 * DAY);
        assert.ok(Math.abs(rec.expiresAt - (Date.now() + 400 * DAY)) < 60_000);
        assert.deepEqual(await m.getById(state.id!), { user: "ada" });
      }
      // The next request reads it back with the cookie.
      const next = m.open(result.cookies.map((c) => c.split(";")[0]).join("; "));
      await m.prepare(next);
      assert.equal(next.session.user, "ada");
      assert.equal(next.session.maxAge, 400 * DAY);
    });
  }

  test("setById(id, data, 500 days): the next renewing commit sends Max-Age capped at 400 days", async () => {
    const m = createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
    const first = m.open(null);
    first.session.user = "ada";
    const cookies = (await m.commit(first)).cookies.map((c) => c.split(";")[0]).join("; ");
    assert.equal(await m.setById(first.id!, { user: "ada", n: 1 }, 500 * DAY), true);
    const next = m.open(cookies);
    next.session.touch(); // a renewing request: the cookie is sent again
    const sid = (await m.commit(next)).cookies.find((c) => c.startsWith("sid="));
    assert.match(sid ?? "", new RegExp(`; Max-Age=${CAP_S};`), "no RangeError at the commit");
    assert.deepEqual(await m.getById(first.id!), { user: "ada", n: 1 });
  });

  test("renew(n) over 400 days is capped the same way (the hono-session drop-in: seconds)", async () => {
    const app = new Hono()
      .use(session({ secret: KEY, store: new MapStore() }))
      .get("/", (c) => {
        c.session.user = "ada";
        c.session.renew(500 * 86_400);
        return c.text(String(c.session.maxAge));
      });
    const r = await new Client(app).get("/");
    assert.equal(r.status, 200);
    assert.equal(r.body, String(400 * DAY));
    assert.equal(cookieOf(r)?.attributes["max-age"], CAP_S);
  });

  test("Hono (app.request): 200 with the capped cookie; the next request reads the session", async () => {
    const store = new MapStore();
    const m = createSessions({ store, keys: [KEY], logger: quiet });
    const app = new Hono()
      .use(session(m))
      .post("/login", (c) => {
        c.session.user = "ada";
        c.session.maxAge = 500 * DAY;
        return c.text("ok");
      })
      .get("/me", (c) => c.text(String(c.session.user)));
    const client = new Client(app);
    const login = await client.post("/login");
    assert.equal(login.status, 200);
    assert.equal(cookieOf(login)?.attributes["max-age"], CAP_S);
    assert.equal(cookieOf(login, "sid.cid")?.attributes["max-age"], YEAR_S);
    assert.equal(store.size, 1, "the record (its id is the client id: no mapping)");
    assert.equal((await client.get("/me")).body, "ada");
  });
});

describe("an invalid session maxAge throws at the assignment, before anything is written", () => {
  const bad: [string, unknown, ErrorConstructor][] = [
    ["NaN", NaN, TypeError],
    ['"x"', "x", TypeError],
    ['"1000" (a string, not a number)', "1000", TypeError],
    ["true", true, TypeError],
    ["null", null, TypeError],
    ["-1", -1, RangeError],
    ["0", 0, RangeError],
    ["Infinity", Infinity, RangeError],
  ];

  test("core: session.maxAge = x and renew(x)", () => {
    const store = new MapStore();
    const m = createSessions({ store, keys: [KEY], logger: quiet });
    const state = m.open(null);
    state.session.user = "ada";
    for (const [name, value, type] of bad) {
      assert.throws(() => (state.session.maxAge = value as number), type, `maxAge = ${name}`);
      assert.throws(() => state.session.renew(value as number), type, `renew(${name})`);
    }
    assert.equal(store.size, 0, "nothing written");
    assert.equal(state.session.maxAge, DAY, "the window unchanged");
  });

  test("Hono: the error is thrown in the handler (app.onError gets it); no record, no session cookie", async () => {
    for (const [name, value, type] of bad) {
      const store = new MapStore();
      const m = createSessions({ store, keys: [KEY], logger: quiet });
      const errors: unknown[] = [];
      const app = new Hono()
        .use(session(m))
        .get("/", (c) => {
          c.session.user = "ada";
          c.session.maxAge = value as number;
          return c.text("ok");
        })
        .onError((err, c) => {
          errors.push(err);
          return c.text("error", 500);
        });
      const r = await new Client(app).get("/");
      assert.equal(r.status, 500, name);
      assert.ok(errors[0] instanceof type, `${name}: got ${errors[0]}`);
      assert.equal(cookieOf(r), undefined, name);
      assert.equal(store.size, 0, `${name}: nothing written`);
    }
  });
});

describe("Hono: a failing store is a 503", () => {
  /** An app over a store that is up for the login and down afterwards. */
  async function setup(synchronous: boolean, onError?: (err: Error) => void) {
    const store = new FlakyStore(synchronous);
    const m: SessionManager = createSessions({ store, keys: [KEY], logger: quiet });
    const app = new Hono()
      .use(session(m))
      .post("/login", (c) => {
        c.session.user = "ada";
        return c.text("ok");
      })
      .get("/read", (c) => c.text(String(c.session.user)))
      .post("/write", (c) => {
        c.session.n = 1;
        return c.text("w");
      })
      .get("/by-id", async (c) => c.json(await m.getById("x".repeat(24))));
    if (onError) {
      app.onError((err, c) => {
        onError(err);
        return c.text("handled", 599 as never);
      });
    }
    const client = new Client(app);
    assert.equal((await client.post("/login")).status, 200);
    store.down = true;
    return { app, client, store };
  }

  // The asynchronous store (loaded in the middleware) is the reference the synchronous one
  // (loaded on first access, in the handler) must match.
  const kinds = [[true, "synchronous"], [false, "asynchronous"]] as const;

  test("Hono's default error handler answers 503 without the store's message, a synchronous store as an asynchronous one", async () => {
    for (const [synchronous, kind] of kinds) {
      const { client, store } = await setup(synchronous);
      const writes = store.writes;
      for (const [method, path] of [["GET", "/read"], ["POST", "/write"]] as const) {
        const r = await client.fetch(path, { method });
        assert.equal(r.status, 503, `${kind} ${path}`);
        assert.equal(r.body, "Session store unavailable", `${kind} ${path}`);
        assert.equal(cookieOf(r), undefined, `${kind} ${path}`);
      }
      assert.equal(store.writes, writes, `${kind}: nothing written`);
    }
  });

  test("app.onError gets HTTPException(503) with the StoreError as its cause, a synchronous store as an asynchronous one", async () => {
    for (const [synchronous, kind] of kinds) {
      const errors: Error[] = [];
      const { client } = await setup(synchronous, (err) => errors.push(err));
      assert.equal((await client.get("/read")).status, 599, kind);
      const err = errors[0];
      assert.ok(err instanceof HTTPException, `${kind}: got ${err}`);
      assert.equal(err.status, 503, kind);
      assert.ok(err.cause instanceof StoreError, kind);
      assert.equal(err.cause.code, "ERR_STORE", kind);
    }
  });

  test("a StoreError the app's own code throws (sessions.getById) answers 503 too; onError gets it as it is", async () => {
    // Without a session cookie the middleware reads nothing: the handler's own call fails.
    const plain = await setup(false);
    const r = await new Client(plain.app).get("/by-id");
    assert.equal(r.status, 503);
    assert.equal(r.body, "Session store unavailable");
    assert.doesNotMatch(r.body, /ECONNREFUSED|10\.0\.0\.7/);
    const errors: Error[] = [];
    const handled = await setup(false, (err) => errors.push(err));
    assert.equal((await new Client(handled.app).get("/by-id")).status, 599);
    assert.ok(errors[0] instanceof StoreError, `got ${errors[0]}`);
  });

  test("StoreError.getResponse(): a fixed 503 body, never the message or the cause", async () => {
    const err = new StoreError(`Cannot read session: ${SECRET_DETAIL}`, {
      cause: new Error(SECRET_DETAIL),
    });
    const res = err.getResponse();
    assert.equal(res.status, 503);
    assert.equal(await res.text(), "Session store unavailable");
    assert.equal(err.status, 503, "Koa's status unchanged");
    assert.equal(err.expose, false);
  });
});

/**
 * Lifecycle races and store faults (issue 5, part 3), through the core, the Hono adapter, the
 * Koa adapter and the socket.io adapter on one manager: a slow request or socket handler that
 * saves after a concurrent destroy or regenerate never resurrects the old session; a failing
 * store read never becomes an empty session saved over real data; a corrupt record is "no
 * session", reported to `onInvalid` and logged; a hanging store is a `StoreError` after
 * `storeTimeout`, never a hung request.
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Store, StoredRecord } from "../mod.ts";
import { cookieHeader, type Env, setCookieValue, startEnv } from "./helpers/security_env.ts";
import { signer } from "./helpers/hostile_cookies.ts";
import { generateUid } from "../src/id.ts";

/** An async store whose reads (and writes) can fail or hang on demand. Records are copied. */
class FaultyStore implements Store {
  readonly map: Map<string, unknown> = new Map();
  fault: "none" | "throw" | "hang" = "none";
  writes = 0;

  #gate<T>(fn: () => T): Promise<T> {
    if (this.fault === "throw") return Promise.reject(new Error("ECONNRESET 10.0.0.7:6379"));
    if (this.fault === "hang") return new Promise<T>(() => {});
    return Promise.resolve(fn());
  }
  get(id: string): Promise<StoredRecord | undefined> {
    return this.#gate(() => {
      const v = this.map.get(id);
      return v === undefined ? undefined : structuredClone(v) as StoredRecord;
    });
  }
  set(id: string, record: StoredRecord): Promise<void> {
    return this.#gate(() => {
      this.writes++;
      this.map.set(id, structuredClone(record));
    });
  }
  delete(id: string): Promise<void> {
    return this.#gate(() => void this.map.delete(id));
  }
  data(id: string): unknown {
    return (this.map.get(id) as StoredRecord | undefined)?.data;
  }
}

describe("lifecycle races: a slow save after a concurrent destroy or regenerate", () => {
  let env: Env;
  before(async () => {
    env = await startEnv("store", {}, { onDestroy: "emit" });
  });
  after(() => env.close());

  for (const path of ["hono", "koa"] as const) {
    test(`${path}: a slow request saving after a concurrent logout does not resurrect the session`, async () => {
      const v = await env.login();
      const gate = env.hold();
      const slow = env.request(path, "/slow", { method: "POST", cookie: v.header });
      await gate.arrived; // it has read the session
      const logout = await env.request("hono", "/logout", { method: "POST", cookie: v.header });
      assert.equal(logout.status, 200);
      gate.release();
      const res = await slow;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { user: "ada" });
      assert.equal(await env.manager.getById(v.sessionId), undefined, "not resurrected");
      assert.equal(setCookieValue(res.headers.getSetCookie(), "sid"), undefined);
    });

    test(`${path}: a slow request saving after a concurrent login (regenerate) does not resurrect the old session nor log the browser out of the new one`, async () => {
      const v = await env.login();
      const gate = env.hold();
      const slow = env.request(path, "/slow", { method: "POST", cookie: v.header });
      await gate.arrived;
      const login = await env.request("hono", "/login", { method: "POST", cookie: v.header });
      const { sessionId } = await login.json() as { sessionId: string };
      gate.release();
      const res = await slow;
      assert.equal(res.status, 200);
      assert.equal(await env.manager.getById(v.sessionId), undefined, "old id not resurrected");
      assert.deepEqual(await env.manager.getById(sessionId), { user: "ada" }, "no stale write");
      // The stale response sends no session cookie: the browser keeps the login's new one.
      assert.equal(setCookieValue(res.headers.getSetCookie(), "sid"), undefined);
    });
  }

  test("core: a slow request saving after a concurrent regenerate does not resurrect the old id", async () => {
    const v = await env.login();
    const slow = env.manager.open(v.header);
    await env.manager.prepare(slow);
    assert.equal(slow.session.user, "ada");
    const login = env.manager.open(v.header);
    await login.session.regenerate();
    const { cookies } = await env.manager.commit(login);
    slow.session.late = true;
    const out = await env.manager.commit(slow);
    assert.equal(await env.manager.getById(v.sessionId), undefined);
    assert.equal(setCookieValue(out.cookies, "sid"), undefined);
    const next = env.manager.open(cookieHeader(cookies));
    assert.deepEqual(next.session.toJSON(), { user: "ada" });
  });

  for (const race of ["logout", "login"] as const) {
    test(`socket.io: a slow withSession handler finishing after a concurrent ${race} writes nothing and reports the session missing`, async () => {
      const v = await env.login();
      const socket = await env.connect(v.header);
      const gate = env.hold();
      const slow = socket.timeout(5000).emitWithAck("slow");
      await gate.arrived;
      const res = await env.request("hono", race === "logout" ? "/logout" : "/login", {
        method: "POST",
        cookie: v.header,
      });
      const after = race === "login" ? (await res.json() as { sessionId: string }) : undefined;
      gate.release();
      assert.deepEqual(await slow, { error: "ERR_SESSION_MISSING" });
      assert.equal(await env.manager.getById(v.sessionId), undefined, "not resurrected");
      if (after) assert.deepEqual(await env.manager.getById(after.sessionId), { user: "ada" });
      socket.close();
    });
  }
});

describe("store faults", () => {
  let env: Env;
  const store = new FaultyStore();
  before(async () => {
    env = await startEnv("store", { store, storeTimeout: 200 });
  });
  after(() => {
    store.fault = "none";
    return env.close();
  });

  test("a store read that fails never becomes an empty session saved over real data (core, Hono, Koa, socket.io)", async () => {
    const v = await env.login();
    const socket = await env.connect(v.header);
    store.fault = "throw";
    const writes = store.writes;
    // core: the read fails; a caller that goes on and commits anyway writes nothing
    const state = env.manager.open(v.header);
    await assert.rejects(env.manager.prepare(state) ?? Promise.resolve(), { code: "ERR_STORE" });
    assert.throws(() => (state.session.user = "mallory"));
    await env.manager.commit(state);
    for (const path of ["hono", "koa"] as const) {
      const res = await env.request(path, "/write", { method: "POST", cookie: v.header });
      assert.equal(res.status, 503, path);
      assert.equal(setCookieValue(res.headers.getSetCookie(), "sid"), undefined, path);
    }
    assert.deepEqual(await socket.timeout(3000).emitWithAck("incr"), { error: "ERR_STORE" });
    store.fault = "none";
    assert.equal(store.writes, writes, "no write while the store was failing");
    assert.deepEqual(store.data(v.sessionId), { user: "ada" }, "the real data is intact");
    const r = await env.request("hono", "/whoami", { cookie: v.header });
    assert.equal((await r.json()).user, "ada", "and readable again");
    socket.close();
  });

  test("a hanging store gives a StoreError after storeTimeout, never a hung request (core, Hono, Koa, socket.io handshake and withSession)", async () => {
    const v = await env.login();
    const socket = await env.connect(v.header);
    store.fault = "hang";
    const state = env.manager.open(v.header);
    await assert.rejects(env.manager.prepare(state) ?? Promise.resolve(), {
      code: "ERR_STORE",
      message: /did not answer within 200 ms/,
    });
    for (const path of ["hono", "koa"] as const) {
      const res = await env.request(path, "/write", { method: "POST", cookie: v.header });
      assert.equal(res.status, 503, path);
    }
    assert.deepEqual(await socket.timeout(3000).emitWithAck("incr"), { error: "ERR_STORE" });
    await assert.rejects(env.connect(v.header), (err: { data?: { code?: string } }) => {
      assert.equal(err.data?.code, "ERR_STORE");
      return true;
    });
    store.fault = "none";
    assert.deepEqual(store.data(v.sessionId), { user: "ada" });
    socket.close();
  });

  test("a corrupt stored record is no session: reported to onInvalid (corrupt-record) and logged, never a crash (core, Hono, Koa, socket.io)", async () => {
    const id = generateUid();
    const header = `sid=${signer.sign(id)}`;
    const errorsBefore = env.errors.length;
    for (const corrupt of [{ data: "nope", expiresAt: "soon" }, [1, 2], "garbage", 42]) {
      store.map.set(id, corrupt);
      for (const path of ["core", "hono", "koa", "socket.io"] as const) {
        env.logs.length = 0;
        const p = await env.probe(path, header);
        assert.equal(p.status, 200, path);
        assert.equal(p.user, null, path);
        assert.ok(p.reasons.includes("corrupt-record"), `${path}: ${p.reasons}`);
        assert.ok(
          env.logs.some((l) => l.includes("corrupt-record")),
          `${path}: logged through the logger (debug)`,
        );
      }
      // A write on top starts a fresh session; the corrupt record is not "repaired" into data.
      const w = await env.write("hono", header);
      assert.equal(w.status, 200);
      assert.notEqual(w.sessionId, id);
    }
    assert.deepEqual(env.errors.slice(errorsBefore), []);
  });
});

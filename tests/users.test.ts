// Per-user sessions on the manager: the `identify` and `describe` options, listByUser,
// destroyByUser, destroyById({ user }), regenerate/logout/expiry keeping the index right, on the
// MapStore (its own atomic index) and on a plain Map through toStore (the best-effort fallback
// index in `uid:` records). The O(sessions of the user) cost at 10,000 users is shown by counting
// store calls, not by timing (timings: bench/users_scale.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createSessions,
  MapStore,
  type SessionDestroyEvent,
  type SessionManager,
  type SessionOptions,
  type SessionState,
  type Store,
  toStore,
} from "../mod.ts";

const KEY = "a-secret-of-at-least-32-characters!!";
const HOUR = 3_600_000;

interface Setup {
  m: SessionManager;
  store: Store;
  /** The fake clock (ms), shared by the manager and the store. */
  clock: { t: number };
  warnings: string[];
}

/** The stores under test: MapStore's own index, and the fallback index over a plain Map. */
const STORES: { name: string; make(now: () => number): { store: Store; raw: unknown } }[] = [
  {
    name: "MapStore",
    make: (now) => {
      const store = new MapStore({ now });
      return { store, raw: store };
    },
  },
  {
    name: "toStore(new Map()) (fallback index)",
    make: () => {
      const map = new Map<string, unknown>();
      return { store: toStore(map), raw: map };
    },
  },
];

function setup(
  make: (now: () => number) => { store: Store; raw: unknown },
  extra: SessionOptions = {},
): Setup & { raw: unknown } {
  const clock = { t: 1_700_000_000_000 };
  const now = () => clock.t;
  const { store, raw } = make(now);
  const warnings: string[] = [];
  const m = createSessions({
    store,
    keys: [KEY],
    now,
    maxAge: HOUR,
    logger: { warn: (w) => warnings.push(w) },
    identify: (data) => data.userId,
    describe: (ctx) => ({ userAgent: (ctx as { ua?: string } | undefined)?.ua }),
    ...extra,
  });
  return { m, store, clock, warnings, raw };
}

/** One request with a framework context `{ ua }`; returns the browser's cookies afterwards. */
async function request(
  m: SessionManager,
  cookie: string | null,
  handler: (s: SessionState) => unknown,
  ua = "test-agent",
): Promise<{ cookie: string; state: SessionState }> {
  const state = m.open(cookie, { ctx: { ua } });
  await m.prepare(state);
  await handler(state);
  const { cookies } = await m.commit(state);
  const next = new Map<string, string>();
  for (const pair of (cookie ?? "").split("; ").filter(Boolean)) {
    const i = pair.indexOf("=");
    next.set(pair.slice(0, i), pair.slice(i + 1));
  }
  for (const c of cookies) {
    const [pair] = c.split(";");
    const i = pair!.indexOf("=");
    const value = pair!.slice(i + 1);
    if (value === "") next.delete(pair!.slice(0, i));
    else next.set(pair!.slice(0, i), value);
  }
  return { cookie: [...next].map(([k, v]) => `${k}=${v}`).join("; "), state };
}

/** A device logging in as `user`: regenerate, then the user id is set. */
async function login(m: SessionManager, user: string | number, ua: string) {
  return await request(m, null, async (s) => {
    await s.session.regenerate();
    s.session.userId = user;
  }, ua);
}

const ids = async (m: SessionManager, user: string | number) =>
  (await m.listByUser(user)).map((s) => s.sessionId).sort();

for (const { name, make } of STORES) {
  describe(`per-user sessions on ${name}`, () => {
    test("listByUser lists each session of the user with its times, client and metadata", async () => {
      const { m, clock } = setup(make);
      const t0 = clock.t;
      const laptop = await login(m, "ada", "laptop");
      clock.t += 1000;
      const phone = await login(m, "ada", "phone");
      await login(m, "bob", "bob's phone");
      await request(m, null, (s) => void (s.session.anonymous = true));

      const listed = await m.listByUser("ada");
      assert.deepEqual(listed, [
        {
          sessionId: laptop.state.id,
          clientId: laptop.state.clientId,
          createdAt: t0,
          lastSeenAt: t0,
          expiresAt: t0 + HOUR,
          meta: { userAgent: "laptop" },
        },
        {
          sessionId: phone.state.id,
          clientId: phone.state.clientId,
          createdAt: t0 + 1000,
          lastSeenAt: t0 + 1000,
          expiresAt: t0 + 1000 + HOUR,
          meta: { userAgent: "phone" },
        },
      ]);
      assert.equal((await m.listByUser("bob")).length, 1);
      assert.deepEqual(await m.listByUser("carol"), []);
    });

    test("a regenerate in a request that loaded a session revoked meanwhile starts empty: the revoked data never comes back", async () => {
      const { m } = setup(make);
      const ada = await login(m, "ada", "laptop");
      await request(m, ada.cookie, (s) => void (s.session.cart = [1]));
      // Request X loads ada's session; meanwhile every session of ada is revoked.
      const x = m.open(ada.cookie, { ctx: { ua: "laptop" } });
      await m.prepare(x);
      assert.equal(x.session.userId, "ada");
      assert.equal(await m.destroyByUser("ada"), 1);
      await x.session.regenerate(); // X goes on with a login
      assert.deepEqual(x.session.toJSON(), {}, "nothing of the revoked session");
      x.session.userId = "bob";
      await m.commit(x);
      assert.deepEqual(await m.getById(x.id!), { userId: "bob" });
      assert.deepEqual(await ids(m, "ada"), [], "ada stays revoked");
      assert.deepEqual(await ids(m, "bob"), [x.id]);
      // What the request writes itself stays: before the regenerate, or while it runs (not
      // awaited, as koa-session-minimal's regenerateId() is).
      const again = await login(m, "ada", "laptop");
      const y = m.open(again.cookie, { ctx: { ua: "laptop" } });
      await m.prepare(y);
      y.session.theme = "dark";
      await m.destroyByUser("ada");
      void y.session.regenerate();
      y.session.userId = "ada";
      await m.commit(y);
      assert.deepEqual(await m.getById(y.id!), { theme: "dark", userId: "ada" });
      // A regenerate with nothing revoked keeps the data (a login keeps the cart).
      const carol = await login(m, "carol", "phone");
      await request(m, carol.cookie, (s) => void (s.session.cart = [2]));
      const kept = await request(m, carol.cookie, async (s) => void await s.session.regenerate());
      assert.deepEqual(await m.getById(kept.state.id!), { userId: "carol", cart: [2] });
    });

    test("lastSeenAt moves when the record is written: a change, or the renewal at half the window", async () => {
      const { m, clock } = setup(make);
      const t0 = clock.t;
      const dev = await login(m, "ada", "laptop");
      const seen = async () => (await m.listByUser("ada"))[0]!.lastSeenAt;

      clock.t += 10 * 60_000; // a read with 50 of 60 minutes left: no write
      await request(m, dev.cookie, (s) => assert.equal(s.session.userId, "ada"));
      assert.equal(await seen(), t0, "a plain read wrote the record");

      clock.t += 10 * 60_000; // a change writes
      await request(m, dev.cookie, (s) => void (s.session.theme = "dark"));
      assert.equal(await seen(), t0 + 20 * 60_000);

      clock.t += 35 * 60_000; // less than half left: the read renews, and lastSeenAt follows
      await request(m, dev.cookie, (s) => assert.equal(s.session.theme, "dark"));
      assert.equal(await seen(), t0 + 55 * 60_000);
      const [entry] = await m.listByUser("ada");
      assert.deepEqual(entry!.meta, { userAgent: "laptop" }, "metadata kept across writes");
      assert.equal(entry!.createdAt, t0);
    });

    test("regenerate moves the session in the index: the old id leaves, the new id is listed", async () => {
      const { m } = setup(make);
      const dev = await login(m, "ada", "laptop");
      const oldId = dev.state.id!;
      const again = await request(m, dev.cookie, async (s) => {
        await s.session.regenerate();
      }, "laptop, later");
      const newId = again.state.id!;
      assert.notEqual(newId, oldId);
      assert.deepEqual(await ids(m, "ada"), [newId]);
      const [entry] = await m.listByUser("ada");
      assert.deepEqual(
        entry!.meta,
        { userAgent: "laptop, later" },
        "described again on regenerate",
      );
      assert.equal(await m.getById(oldId), undefined);
    });

    test("a user switching accounts moves the session from one user's list to the other's", async () => {
      const { m } = setup(make);
      const dev = await login(m, "ada", "laptop");
      await request(m, dev.cookie, (s) => void (s.session.userId = "bob"));
      assert.deepEqual(await ids(m, "ada"), []);
      assert.deepEqual(await ids(m, "bob"), [dev.state.id]);
      await m.update(dev.state.id!, (d) => void delete d.userId);
      assert.deepEqual(await ids(m, "bob"), [], "an anonymous session is listed");
      await m.setById(dev.state.id!, { userId: "carol" });
      assert.deepEqual(await ids(m, "carol"), [dev.state.id]);
    });

    test("logout (session = null) takes the session out of the index", async () => {
      const { m } = setup(make);
      const a = await login(m, "ada", "laptop");
      const b = await login(m, "ada", "phone");
      const state = m.open(a.cookie);
      await m.prepare(state);
      await m.commit(state, null); // what the adapters do for `session = null`
      assert.deepEqual(await ids(m, "ada"), [b.state.id]);
    });

    test("destroyById with { user } revokes only a session of that user", async () => {
      const { m } = setup(make);
      const ada = await login(m, "ada", "laptop");
      const bob = await login(m, "bob", "phone");
      assert.equal(await m.destroyById(bob.state.id!, { user: "ada" }), false, "bob's session");
      assert.equal(await m.destroyById("no-such-session", { user: "ada" }), false);
      assert.deepEqual(await ids(m, "bob"), [bob.state.id]);
      assert.equal(await m.destroyById(ada.state.id!, { user: "ada" }), true);
      assert.deepEqual(await ids(m, "ada"), []);
      await request(m, ada.cookie, (s) => assert.equal(s.session.userId, undefined));
    });

    test("destroyByUser ends every session of the user but `except`, each with sessionDestroy", async () => {
      const { m } = setup(make);
      const devices = [];
      for (const ua of ["laptop", "phone", "tablet"]) devices.push(await login(m, "ada", ua));
      const bob = await login(m, "bob", "bob");
      const events: SessionDestroyEvent[] = [];
      m.on("sessionDestroy", (e) => events.push(e));

      const keep = devices[0]!.state.id!;
      assert.equal(await m.destroyByUser("ada", { except: keep }), 2);
      assert.deepEqual(await ids(m, "ada"), [keep]);
      assert.deepEqual(
        events.map((e) => [e.sessionId, e.reason, e.clientId, e.remote]).sort(),
        devices.slice(1).map((d) => [d.state.id, "destroy", d.state.clientId, false]).sort(),
      );
      // The revoked devices are logged out; the kept one and bob are not.
      for (const d of devices.slice(1)) {
        await request(m, d.cookie, (s) => assert.equal(s.session.userId, undefined));
        assert.equal(await m.getSessionId(d.state.clientId!), undefined, "client mapping kept");
      }
      await request(m, devices[0]!.cookie, (s) => assert.equal(s.session.userId, "ada"));
      assert.deepEqual(await ids(m, "bob"), [bob.state.id]);

      assert.equal(await m.destroyByUser("ada"), 1);
      assert.deepEqual(await ids(m, "ada"), []);
      assert.equal(await m.destroyByUser("ada"), 0);
    });

    test("a numeric user id lists the same sessions as its string", async () => {
      const { m } = setup(make);
      const dev = await login(m, 42, "laptop");
      assert.deepEqual(await ids(m, 42), [dev.state.id]);
      assert.deepEqual(await ids(m, "42"), [dev.state.id]);
    });

    test("expired sessions are not listed, and cleanup removes them from the index", async () => {
      const { m, clock, store } = setup(make);
      const old = await login(m, "ada", "laptop");
      clock.t += HOUR / 2;
      const fresh = await login(m, "ada", "phone");
      clock.t += HOUR / 2 + 1; // the first has expired, the second has not
      assert.deepEqual(await ids(m, "ada"), [fresh.state.id]);
      const destroyed: string[] = [];
      m.on("sessionDestroy", (e) => destroyed.push(`${e.sessionId}:${e.reason}`));
      assert.equal(await m.cleanup(), 1);
      assert.deepEqual(destroyed, [`${old.state.id}:expired`]);
      assert.deepEqual(await ids(m, "ada"), [fresh.state.id]);
      // The index itself no longer holds the expired session.
      const indexed = store.listUser
        ? (await store.listUser("ada")).map(([id]) => id)
        : Object.keys((await store.get("uid:ada"))?.data ?? {});
      assert.deepEqual(indexed, [fresh.state.id]);

      clock.t += 2 * HOUR; // everything expired: the index is gone too
      assert.equal(await m.cleanup(), 1);
      assert.deepEqual(await ids(m, "ada"), []);
      if (store.listUser) assert.deepEqual(await store.listUser("ada"), []);
      else assert.equal(await store.get("uid:ada"), undefined, "fallback index record left");
    });

    test("reserved ids (uid:, cid:) are never sessions for the by-id methods", async () => {
      const { m } = setup(make);
      const dev = await login(m, "ada", "laptop");
      for (const id of ["uid:ada", `cid:${dev.state.clientId}`]) {
        assert.equal(await m.getById(id), undefined);
        assert.equal(await m.update(id, (d) => void (d.x = 1)), undefined);
        assert.equal(await m.touchById(id, { force: true }), false);
        assert.equal(await m.destroyById(id), false);
        await assert.rejects(m.setById(id, { userId: "eve" }), { code: "ERR_SESSION_MISSING" });
      }
      assert.deepEqual(await ids(m, "ada"), [dev.state.id], "the index was touched");
      assert.equal(await m.getSessionId(dev.state.clientId!), dev.state.id, "mapping touched");
    });

    test("a describe that throws is logged and records nothing; the login still works", async () => {
      const { m, warnings } = setup(make, {
        describe: () => {
          throw new Error("no user agent here");
        },
      });
      const dev = await login(m, "ada", "laptop");
      const [entry] = await m.listByUser("ada");
      assert.equal(entry!.sessionId, dev.state.id);
      assert.equal(entry!.meta, undefined);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /describe failed/);
    });
  });
}

describe("per-user sessions: options and bad input", () => {
  test("identify and describe need a store", () => {
    assert.throws(() => createSessions({ keys: [KEY], identify: (d) => d.userId }), TypeError);
    assert.throws(() => createSessions({ keys: [KEY], describe: () => ({}) }), TypeError);
    assert.throws(
      () => createSessions({ store: new MapStore(), keys: [KEY], identify: "userId" as never }),
      TypeError,
    );
  });

  test("the per-user methods need identify, and a user id that is not empty", async () => {
    const plain = createSessions({ store: new MapStore(), keys: [KEY] });
    await assert.rejects(plain.listByUser("ada"), TypeError);
    await assert.rejects(plain.destroyByUser("ada"), TypeError);
    await assert.rejects(plain.destroyById("x", { user: "ada" }), TypeError);
    const m = createSessions({ store: new MapStore(), keys: [KEY], identify: (d) => d.userId });
    await assert.rejects(m.listByUser(""), TypeError);
    await assert.rejects(m.listByUser(null as never), TypeError);
    await assert.rejects(m.destroyByUser(Number.NaN), TypeError);
  });

  test("an identify result that is not a user id fails the write, never indexes garbage", async () => {
    const store = new MapStore();
    const m = createSessions({ store, keys: [KEY], identify: (d) => d.userId });
    const state = m.open(null);
    state.session.userId = { id: 1 };
    await assert.rejects(m.commit(state), TypeError);
    assert.equal(store.size, 0, "a session was stored");

    const existing = m.open(null);
    existing.session.userId = "ada";
    await m.commit(existing);
    // Inside an atomic update too, the error reaches the caller as it is: not a StoreError,
    // which would say the store is down (a 503).
    await assert.rejects(
      m.update(existing.id!, (d) => void (d.userId = "x".repeat(300))),
      (err: unknown) => err instanceof RangeError,
    );
    assert.deepEqual(await m.getById(existing.id!), { userId: "ada" }, "the failed update wrote");
  });

  test("anonymous sessions (identify gives undefined, null or '') are in no list", async () => {
    const store = new MapStore();
    let value: unknown;
    const m = createSessions({ store, keys: [KEY], identify: () => value });
    for (value of [undefined, null, ""]) {
      const s = m.open(null);
      s.session.x = 1;
      await m.commit(s);
      assert.equal((await store.get(s.id!))?.user, undefined);
    }
  });
});

/** A store wrapper that counts calls by method. */
function counting(inner: Store): { store: Store; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const store: Store = {
    synchronous: inner.synchronous,
    get: (id) => (count("get"), inner.get(id)),
    set: (id, rec, ttl) => (count("set"), inner.set(id, rec, ttl)),
    delete: (id) => (count("delete"), inner.delete(id)),
    list: () => (count("list"), inner.list!()),
  };
  if (inner.update) store.update = (id, fn) => (count("update"), inner.update!(id, fn));
  if (inner.listUser) store.listUser = (user) => (count("listUser"), inner.listUser!(user));
  return { store, calls };
}

describe("per-user sessions at 10,000 users × 3 sessions", () => {
  for (const { name, make } of STORES) {
    test(`${name}: listByUser and destroyByUser touch only the user's own sessions`, {
      timeout: 120_000,
    }, async () => {
      const { store, calls } = counting(make(Date.now).store);
      const m = createSessions({ store, keys: [KEY], identify: (d) => d.userId, client: false });
      const USERS = 10_000;
      const last: string[] = [];
      for (let u = 0; u < USERS; u++) {
        for (let d = 0; d < 3; d++) {
          const s = m.open(null);
          s.session.userId = `user-${u}`;
          await m.commit(s);
          if (u === USERS - 1) last.push(s.id!);
        }
      }
      const user = `user-${USERS - 1}`;
      calls.clear();
      assert.deepEqual(await ids(m, user), [...last].sort());
      const reads = Object.fromEntries(calls);
      // MapStore: one listUser call. Fallback: the index record plus each of the 3 sessions.
      assert.deepEqual(reads, store.listUser ? { listUser: 1 } : { get: 4 });

      calls.clear();
      assert.equal(await m.destroyByUser(user, { except: last[0] }), 2);
      const writes = Object.fromEntries(calls);
      assert.equal(writes.list, undefined, "destroyByUser scanned the store");
      const total = [...calls.values()].reduce((a, b) => a + b, 0);
      assert.ok(total <= 10, `destroyByUser made ${total} store calls: ${JSON.stringify(writes)}`);
      assert.deepEqual(await ids(m, user), [last[0]]);
      assert.equal((await m.listByUser("user-0")).length, 3, "another user's sessions changed");
    });
  }
});

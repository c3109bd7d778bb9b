// Bad input to the manager's server-side API gets a clear, typed error (or reads as "no
// session"), and nothing is written: setById's maxAge and data, update's return value,
// startAutoCleanup's interval, a Cookie header that is not a string, lookups by ids that are not
// strings, a store answering with a thenable whose then() throws. And a remote sessionSet is
// isInit only the first time this process hears of the session.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import Koa from "koa";
import { createSessions, MapStore, type SessionManager, StoreError } from "../mod.ts";
import type { StoredRecord, StoreEvent } from "../src/store.ts";
import { koaSession } from "../adapters/koa.ts";
import { remoteEvents } from "./helpers/store_scenarios.ts";

const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };

/** A manager over a MapStore, with one saved session `{ a: 1 }` and the sessionSet events seen. */
async function withSession(): Promise<
  { m: SessionManager; store: MapStore; id: string; sets: string[] }
> {
  const store = new MapStore();
  const m = createSessions({ store, keys: [KEY], logger: quiet });
  const state = m.open(null);
  state.session.a = 1;
  await m.commit(state);
  const sets: string[] = [];
  m.on("sessionSet", (e) => sets.push(e.sessionId));
  return { m, store, id: state.id!, sets };
}

describe("manager: bad input is a typed error, and nothing is written", () => {
  test("setById with a maxAge that is not a positive finite number of ms: RangeError", async () => {
    const { m, store, id, sets } = await withSession();
    for (const maxAge of [NaN, -5, 0, Infinity, "x"]) {
      await assert.rejects(
        m.setById(id, { a: 2 }, maxAge as number),
        RangeError,
        String(maxAge),
      );
    }
    assert.deepEqual(await m.getById(id), { a: 1 }, "the session is as it was");
    assert.deepEqual(sets, [], "no sessionSet for a write that did not happen");
    assert.equal(await m.setById(id, { a: 3 }, 60_000), true, "a valid maxAge still works");
    assert.deepEqual(await m.getById(id), { a: 3 });
    // Over 400 days (the longest a browser keeps a cookie): capped, as session.maxAge is.
    assert.equal(await m.setById(id, { a: 4 }, 1e300), true);
    assert.equal(store.get(id)?.maxAge, 400 * 86_400_000);
  });

  test("setById with an array, or update(fn) returning anything but an object, undefined or null: TypeError", async () => {
    const { m, id, sets } = await withSession();
    await assert.rejects(m.setById(id, [9] as unknown as { a: number }), TypeError);
    for (const result of [42, "str", false, [9], 0n]) {
      await assert.rejects(
        m.update(id, () => result as unknown as { a: number }),
        (err: Error) => err instanceof TypeError && /return an object or null/.test(err.message),
        String(result),
      );
    }
    assert.deepEqual(await m.getById(id), { a: 1 }, "the data was not replaced");
    assert.deepEqual(sets, []);
    // What update accepts: a change of the draft, a new object, null (destroys).
    assert.deepEqual(await m.update(id, (d) => void (d.a = 2)), { a: 2 });
    assert.deepEqual(await m.update(id, () => ({ b: 1 })), { b: 1 });
    assert.equal(await m.update(id, () => null), undefined);
    assert.equal(await m.getById(id), undefined);
  });

  test("startAutoCleanup beyond 2^31 - 1 ms (a timer that would fire in a loop): RangeError", () => {
    const m = createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
    for (const ms of [30 * 86_400_000, 2 ** 31, NaN, 0, -1, "60000"]) {
      assert.throws(() => m.startAutoCleanup(ms as number), RangeError, String(ms));
    }
    assert.equal(m.startAutoCleanup(2 ** 31 - 1), true, "the longest timer is accepted");
    assert.equal(m.stopAutoCleanup(), true);
  });

  test("a Cookie header that is not a string: a TypeError naming it; ids that are not strings read as no session", async () => {
    const { m } = await withSession();
    for (const header of [123, {}, ["sid=x"]]) {
      assert.throws(
        () => m.open(header as unknown as string),
        (err: Error) =>
          err instanceof TypeError && /Cookie header must be a string/.test(err.message),
      );
      assert.throws(() => m.readCookies(header as unknown as string), TypeError);
    }
    assert.equal(m.open(undefined).id, undefined, "no header: a new session");
    for (
      const clientId of [Symbol("x"), 42, "", {
        toString: () => {
          throw new Error("no");
        },
      }]
    ) {
      assert.equal(await m.getSessionId(clientId as unknown as string), undefined);
    }
  });

  test("a store answering with a thenable whose then() throws: a StoreError, not the raw error", async () => {
    const broken = {
      then: () => {
        throw new Error("then exploded");
      },
    };
    const store = {
      get: () => broken,
      set: () => broken,
      delete: () => broken,
    };
    for (const storeTimeout of [1000, 0]) {
      const m = createSessions({ store, keys: [KEY], logger: quiet, storeTimeout });
      const err = await m.getById("x".repeat(24)).then(() => undefined, (e) => e);
      assert.ok(err instanceof StoreError, `storeTimeout ${storeTimeout}: ${err}`);
      assert.match(String((err as StoreError).cause), /then exploded/);
    }
  });

  test("koaSession({ maxAge: NaN | -1 | Infinity }): a RangeError when the middleware is made", () => {
    for (const maxAge of [NaN, -1, 0, Infinity]) {
      assert.throws(() => koaSession({ store: new Map(), maxAge }), RangeError, String(maxAge));
      assert.throws(() => koaSession({ maxAge }, new Koa()), RangeError, String(maxAge));
    }
  });
});

describe("manager: a regenerate that fails", () => {
  test("a failing store during an unawaited regenerate fails the commit: nothing is saved under the old id", async () => {
    const inner = new MapStore();
    let down = false;
    const store = {
      get: (id: string) => down ? Promise.reject(new Error("store down")) : inner.get(id),
      set: (id: string, rec: StoredRecord, ttl: number) => inner.set(id, rec, ttl),
      delete: (id: string) => inner.delete(id),
    };
    const m = createSessions({ store, keys: [KEY], logger: quiet, client: false });
    const first = m.open(null);
    first.session.user = "ada";
    const cookie = (await m.commit(first)).cookies[0]!.split(";")[0]!;
    const x = m.open(cookie);
    await m.prepare(x);
    down = true;
    void x.session.regenerate().catch(() => {}); // not awaited, as regenerateId() calls it
    x.session.user = "bob";
    await assert.rejects(m.commit(x), StoreError);
    down = false;
    assert.deepEqual(await m.getById(first.id!), { user: "ada" }, "not saved under the old id");
  });
});

describe("manager: remote events", () => {
  test("an awaited cleanup() resolves once its events are published (a store closed right after loses none)", async () => {
    const delivered: string[] = [];
    let now = 1_767_225_600_000;
    class SlowBus extends MapStore {
      subscribe(): () => void {
        return () => {};
      }
      publish(e: StoreEvent): Promise<void> {
        // A publish that takes a while (a network round trip, Deno KV's enqueue).
        return new Promise((resolve) =>
          setTimeout(() => {
            delivered.push(e.type);
            resolve();
          }, 20)
        );
      }
    }
    const m = createSessions({
      store: new SlowBus({ now: () => now }),
      keys: [KEY],
      logger: quiet,
      now: () => now,
    });
    const state = m.open(null);
    state.session.a = 1;
    await m.commit(state);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the commit's sessionSet
    assert.deepEqual(delivered, ["sessionSet"]);
    now += m.maxAge + 1;
    delivered.length = 0;
    assert.equal(await m.cleanup(), 1);
    assert.deepEqual(delivered, ["sessionDestroy", "cleanup"]);
  });

  test("a publish that never settles holds cleanup() up for storeTimeout at most", async () => {
    let now = 1_767_225_600_000;
    class StuckBus extends MapStore {
      subscribe(): () => void {
        return () => {};
      }
      publish(): Promise<void> {
        return new Promise(() => {}); // a client queueing while its server is down
      }
    }
    const m = createSessions({
      store: new StuckBus({ now: () => now }),
      keys: [KEY],
      logger: quiet,
      now: () => now,
      storeTimeout: 100,
    });
    const state = m.open(null);
    state.session.a = 1;
    await m.commit(state);
    now += m.maxAge + 1;
    const t0 = performance.now();
    assert.equal(await m.cleanup(), 1);
    const waited = performance.now() - t0;
    assert.ok(waited >= 90 && waited < 2000, `waited ${waited} ms`);
  });

  test("a remote sessionSet is isInit the first time this process hears of the session only", () => {
    const { store, deliver } = remoteEvents();
    const m = createSessions({ store, keys: [KEY], logger: quiet });
    const seen: string[] = [];
    m.on("sessionSet", (e) => seen.push(`${e.sessionId} init=${e.isInit}`));
    const set = (sessionId: string) =>
      deliver({ type: "sessionSet", sessionId, isNew: false, origin: "elsewhere" });
    set("s1");
    set("s1");
    set("s2");
    deliver({ type: "sessionDestroy", sessionId: "s1", reason: "destroy", origin: "elsewhere" });
    set("s1"); // heard of anew after its destroy
    assert.deepEqual(seen, [
      "s1 init=true",
      "s1 init=false",
      "s2 init=true",
      "s1 init=true",
    ]);
  });
});

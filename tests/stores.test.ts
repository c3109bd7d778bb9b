// Stores: the conformance suite against MapStore and every store shape toStore() adapts, plus
// MapStore specifics and the StoreGateway (timeouts, failures, corrupt records, atomic updates).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { testStoreConformance } from "../testing/store_conformance.ts";
import { MapStore, mapStoreSteps } from "../src/map_store.ts";
import { generateUid } from "../src/id.ts";
import {
  isStoredRecord,
  type Store,
  type StoredRecord,
  StoreGateway,
  type StoreLike,
  toStore,
} from "../src/store.ts";
import { SessionSerializationError, StoreError, UnisessionError } from "../src/errors.ts";
import { wrappedMapStore } from "./helpers/wrapped_map_store.ts";
import { rejectsWithStoreError } from "./helpers/store_scenarios.ts";

// ------------------------------------------------------------------------------------ helpers

function record(data: Record<string, unknown>, ttlMs = 60_000): StoredRecord {
  const now = Date.now();
  return { data, expiresAt: now + ttlMs, createdAt: now };
}

/** Yields to the event loop, like a network round trip would. */
function delay(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function gateway(store: Store, onCorrupt: (op: string) => void = () => {}): StoreGateway {
  return new StoreGateway(store, { timeoutMs: 1000, onCorrupt });
}

/** 200 concurrent increments of `data.n` through the gateway; resolves the final `n`. */
async function concurrentIncrements(store: Store, times = 200): Promise<unknown> {
  const gw = gateway(store);
  await gw.set("counter", record({ n: 0 }), 60_000);
  const results = await Promise.all(
    Array.from(
      { length: times },
      () =>
        gw.update("counter", (cur) => ({
          ...cur,
          data: { ...cur.data, n: (cur.data.n as number) + 1 },
        })),
    ),
  );
  assert.ok(results.every((r) => r !== undefined), "an update of an existing record aborted");
  return (await gw.get("counter"))?.data.n;
}

// ------------------------------------------------------------------------ fake foreign stores

interface Call {
  op: string;
  args: unknown[];
}

/** A hono-session external store (`{ get(id, c), set(id, data, c), delete(id, c) }`) over a
 * "database" that keeps JSON text, like the SQL example in hono-session's README. */
function honoStore() {
  const rows = new Map<string, string>();
  const calls: Call[] = [];
  return {
    rows,
    calls,
    async get(id: string, c?: unknown): Promise<unknown> {
      calls.push({ op: "get", args: [id, c] });
      await delay();
      const row = rows.get(id);
      return row === undefined ? null : JSON.parse(row);
    },
    async set(id: string, data: unknown, c?: unknown): Promise<void> {
      calls.push({ op: "set", args: [id, data, c] });
      await delay();
      rows.set(id, JSON.stringify(data));
    },
    async delete(id: string, c?: unknown): Promise<void> {
      calls.push({ op: "delete", args: [id, c] });
      await delay();
      rows.delete(id);
    },
  };
}

/** A koa-generic-session / koa-redis store: `get(sid)`, `set(sid, sess, ttl)` (ttl in ms, like
 * koa-redis's `PX`), `destroy(sid)`; values are JSON, missing reads as null. */
function koaRedisStore() {
  const keys = new Map<string, { json: string; exp: number }>();
  const ttls: unknown[] = [];
  return {
    keys,
    ttls,
    async get(sid: string): Promise<unknown> {
      await delay();
      const e = keys.get(sid);
      if (e === undefined) return null;
      if (e.exp <= Date.now()) {
        keys.delete(sid);
        return null;
      }
      return JSON.parse(e.json);
    },
    async set(sid: string, sess: unknown, ttl?: number): Promise<void> {
      ttls.push(ttl);
      await delay();
      const exp = typeof ttl === "number" ? Date.now() + ttl : Infinity;
      keys.set(sid, { json: JSON.stringify(sess), exp });
    },
    async destroy(sid: string): Promise<void> {
      await delay();
      keys.delete(sid);
    },
  };
}

/** A koa-session external store: `get(key, maxAge, { rolling, ctx })`,
 * `set(key, sess, maxAge, { rolling, changed, ctx })`, `destroy(key, { ctx })`. */
function koaSessionStore() {
  const keys = new Map<string, { json: string; exp: number }>();
  const calls: Call[] = [];
  return {
    keys,
    calls,
    async get(key: string, maxAge: unknown, opts: { rolling: boolean; ctx: unknown }) {
      calls.push({ op: "get", args: [key, maxAge, opts] });
      await delay();
      const e = keys.get(key);
      if (e === undefined || e.exp <= Date.now()) return undefined;
      return JSON.parse(e.json);
    },
    async set(
      key: string,
      sess: unknown,
      maxAge: number,
      opts: { rolling: boolean; changed: boolean; ctx: unknown },
    ) {
      calls.push({ op: "set", args: [key, sess, maxAge, opts] });
      await delay();
      keys.set(key, { json: JSON.stringify(sess), exp: Date.now() + maxAge });
    },
    async destroy(key: string, opts: { ctx: unknown }) {
      calls.push({ op: "destroy", args: [key, opts] });
      await delay();
      keys.delete(key);
    },
  };
}

interface V3State {
  session: string;
  expiresAt: number;
  ttl: number;
}

/** A @randajan/koa-io-session v3 backend store (synchronous, like its LiveStore) holding
 * `{ session: <JSON>, expiresAt, ttl }` states; `list()` returns the ids. */
function v3Store() {
  const states = new Map<string, V3State>();
  const optimized: number[] = [];
  return {
    states,
    optimized,
    get(sid: string): V3State | undefined {
      const s = states.get(sid);
      return s && { ...s };
    },
    set(sid: string, state: V3State): boolean {
      states.set(sid, { ...state });
      return true;
    },
    destroy(sid: string): boolean {
      return states.delete(sid);
    },
    list(): string[] {
      return [...states.keys()];
    },
    optimize(clearedCount: number): void {
      optimized.push(clearedCount);
    },
  };
}

// --------------------------------------------------------------------------- conformance runs

testStoreConformance("MapStore", () => new MapStore(), {
  supportsList: true,
  supportsUpdate: true,
});

testStoreConformance("toStore(new Map())", () => toStore(new Map()), {
  supportsList: true,
  supportsUpdate: true,
  ttl: false, // a plain Map keeps records until deleted; the manager checks expiresAt
});

testStoreConformance("toStore(hono-session store)", () => toStore(honoStore()), {
  supportsList: false,
  supportsUpdate: false,
  ttl: false,
});

testStoreConformance(
  "toStore(koa-generic-session/koa-redis store)",
  () => toStore(koaRedisStore()),
  {
    supportsList: false,
    supportsUpdate: false,
  },
);

testStoreConformance("toStore(koa-session external store)", () => toStore(koaSessionStore()), {
  supportsList: false,
  supportsUpdate: false,
});

testStoreConformance("toStore(koa-io-session v3 store)", () => toStore(v3Store()), {
  supportsList: true,
  supportsUpdate: false,
  ttl: false, // v3 stores keep states until destroyed; expiresAt is checked on read
});

// ------------------------------------------------------------------ foreign store specifics

describe("toStore: foreign store shapes", () => {
  test("a Store is returned as is", () => {
    const store = new MapStore();
    assert.equal(toStore(store), store);
  });

  test("throws TypeError for null, {}, and objects missing set/delete", () => {
    const bad: unknown[] = [
      null,
      undefined,
      42,
      "store",
      {},
      { get() {} },
      { get() {}, delete() {} },
      { get() {}, destroy() {} },
      { get() {}, set() {} },
      { set() {}, delete() {} },
      { get: 1, set() {}, delete() {} },
    ];
    for (const x of bad) {
      assert.throws(() => toStore(x as StoreLike), TypeError, `accepted ${String(x)}`);
    }
  });

  test("a plain Map store keeps a copy: the Map never aliases what was set or read", async () => {
    const map = new Map<string, unknown>();
    const store = toStore(map);
    const rec = record({ list: [1], o: { deep: { k: "v" } } });
    await store.set("a", rec, 1000);
    assert.notEqual(map.get("a"), rec);
    assert.deepEqual(map.get("a"), rec);
    ((rec.data.o as Record<string, Record<string, string>>).deep!).k = "changed after set";
    const read = (await store.get("a"))!;
    assert.deepEqual(read.data, { list: [1], o: { deep: { k: "v" } } });
    (read.data.list as number[]).push(2); // changed by its reader
    assert.deepEqual((await store.get("a"))!.data, { list: [1], o: { deep: { k: "v" } } });
  });

  test("a plain Map store holds what JSON makes of the data, and refuses what JSON cannot hold", async () => {
    const map = new Map<string, unknown>();
    const store = toStore(map);
    const data = { at: new Date(0), nan: NaN, neg: -0, u: undefined, list: [undefined, 1] };
    await store.set("a", record(data), 1000);
    assert.deepEqual((await store.get("a"))!.data, JSON.parse(JSON.stringify(data)));
    // Set directly in the Map (a store shared with older code): read as JSON gives it back.
    map.set("b", { ...record({}), data: { at: new Date(0) } });
    assert.deepEqual((await store.get("b"))!.data, { at: "1970-01-01T00:00:00.000Z" });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => store.set("c", record(cyclic), 1000), SessionSerializationError);
  });

  test("hono-session store: get/delete receive the context as their second argument", async () => {
    const hono = honoStore();
    const store = toStore(hono);
    const c = { req: "hono context" };
    await store.get("a", c);
    await store.delete("a", c);
    assert.deepEqual(hono.calls.map((x) => x.args), [["a", c], ["a", c]]);
  });

  // hono-session calls `store.set(id, data, c)`; the shape cannot be told from a native Store's
  // `set(id, record, ttlMs, ctx)`, so the hono adapter asks for it: toStore(x, "hono").
  test("hono-session store: set(id, data, c) receives the Hono context as c", async () => {
    const hono = honoStore();
    const store = toStore(hono, "hono");
    const c = { req: "hono context" };
    const rec = record({ a: 1 });
    await store.set("a", rec, 60_000, c);
    const set = hono.calls.find((x) => x.op === "set")!;
    assert.deepEqual(set.args[1], rec);
    assert.equal(set.args[2], c, `set()'s third argument was ${String(set.args[2])}, not the ctx`);
  });

  test("koa-generic-session/koa-redis store: set receives the ttl in ms", async () => {
    const redis = koaRedisStore();
    const store = toStore(redis);
    assert.equal(typeof store.list, "undefined");
    await store.set("a", record({ a: 1 }, 1234), 1234);
    await store.set("b", record({ b: 1 }, 86_400_000), 86_400_000);
    assert.deepEqual(redis.ttls, [1234, 86_400_000]);
    assert.deepEqual(JSON.parse(redis.keys.get("a")!.json).data, { a: 1 });
    await store.delete("a");
    assert.equal(redis.keys.has("a"), false);
  });

  test("koa-session external store: maxAge in ms and { rolling, changed, ctx } options", async () => {
    const ks = koaSessionStore();
    const store = toStore(ks);
    const ctx = { koa: "context" };
    const rec = record({ a: 1 }, 5000);
    await store.set("k", rec, 5000, ctx);
    assert.deepEqual(plainRecord(await store.get("k", ctx)), rec);
    await store.delete("k", ctx);
    const [set, get, destroy] = ks.calls;
    assert.equal(set!.op, "set");
    assert.deepEqual(set!.args[1], rec);
    assert.equal(set!.args[2], 5000);
    const setOpts = set!.args[3] as { rolling: unknown; changed: unknown; ctx: unknown };
    assert.equal(typeof setOpts.rolling, "boolean");
    assert.equal(setOpts.changed, true);
    assert.equal(setOpts.ctx, ctx);
    assert.equal(get!.op, "get");
    const getOpts = get!.args[2] as { rolling: unknown; ctx: unknown };
    assert.equal(typeof getOpts.rolling, "boolean");
    assert.equal(getOpts.ctx, ctx);
    assert.equal(destroy!.op, "destroy");
    assert.equal((destroy!.args[1] as { ctx: unknown }).ctx, ctx);
  });

  test("koa-io-session v3 store: states are exactly { session: <JSON string>, expiresAt, ttl }", async () => {
    const v3 = v3Store();
    const store = toStore(v3);
    const rec: StoredRecord = { ...record({ user: "ada", n: [1, 2] }, 4321), clientId: "c1" };
    await store.set("s1", rec, 4321);
    const state = v3.states.get("s1")!;
    assert.deepEqual(Object.keys(state).sort(), ["expiresAt", "session", "ttl"]);
    assert.equal(typeof state.session, "string");
    assert.deepEqual(JSON.parse(state.session), rec);
    assert.equal(state.expiresAt, rec.expiresAt);
    assert.equal(state.ttl, 4321);
    assert.deepEqual(await store.get("s1"), rec);
  });

  test("koa-io-session v3 store: afterCleanup(count) calls optimize(count)", async () => {
    const v3 = v3Store();
    const store = toStore(v3);
    await store.afterCleanup?.(3);
    assert.deepEqual(v3.optimized, [3]);
  });

  test("koa-io-session v3 store: a state written by koa-session (no data field) migrates", async () => {
    const v3 = v3Store();
    const expiresAt = Date.now() + 10_000;
    v3.states.set("old", {
      session: JSON.stringify({ user: "ada", _expire: expiresAt, _maxAge: 10_000 }),
      expiresAt,
      ttl: 10_000,
    });
    const rec = await toStore(v3).get("old");
    assert.ok(isStoredRecord(rec));
    assert.deepEqual(rec.data, { user: "ada" });
    assert.equal(rec.expiresAt, expiresAt);
  });

  test("koa-io-session v3 store: list() returning a Map, an object or entries", async () => {
    const state = (n: number): V3State => ({
      session: JSON.stringify(record({ n })),
      expiresAt: Date.now() + 60_000,
      ttl: 60_000,
    });
    const shapes: unknown[] = [
      new Map([["a", state(1)], ["b", state(2)]]),
      { a: state(1), b: state(2) },
      [["a", state(1)], ["b", state(2)]],
    ];
    for (const listed of shapes) {
      const store = toStore({
        get: () => undefined,
        set: () => true,
        destroy: () => true,
        list: () => Promise.resolve(listed),
      });
      const got: [string, unknown][] = [];
      for await (const [id, rec] of store.list!()) got.push([id, rec.data.n]);
      assert.deepEqual(got, [["a", 1], ["b", 2]]);
    }
  });

  test('koa-io-session v3 store without list/optimize: toStore(x, "bridge") keeps v3 states', async () => {
    const { get, set, destroy, states } = v3Store();
    const bare = { get, set, destroy };
    await toStore(bare, "bridge").set("s", record({ a: 1 }), 1000);
    assert.equal(typeof states.get("s")!.session, "string");
  });

  // The v3 adapter serialises records itself (JSON.stringify), so a BigInt or a cycle is a
  // serialisation problem, not a store failure: it should fail like MapStore does.
  test("koa-io-session v3 store: non-JSON data fails with SessionSerializationError", async () => {
    const gw = gateway(toStore(v3Store()));
    let caught: unknown;
    await gw.set("s", record({ big: 1n }), 1000).catch((err) => (caught = err));
    assert.ok(caught instanceof SessionSerializationError, `got ${String(caught)}`);
    assert.equal(caught.code, "ERR_SESSION_SERIALIZATION");
  });

  for (
    const [name, make] of [
      ["hono-session", honoStore],
      ["koa-generic-session/koa-redis", koaRedisStore],
      ["koa-session external", koaSessionStore],
      ["koa-io-session v3", v3Store],
    ] as const
  ) {
    test(`${name} store (no update()): 200 concurrent gateway updates end at exactly 200`, async () => {
      const store = toStore(make());
      assert.equal(typeof store.update, "undefined");
      assert.equal(await concurrentIncrements(store), 200);
    });
  }

  test("sanity: without the gateway, naive get/set increments on such a store lose updates", async () => {
    // Shows the gateway test above is meaningful: the fake stores really interleave.
    const store = toStore(koaRedisStore());
    await store.set("counter", record({ n: 0 }), 60_000);
    await Promise.all(Array.from({ length: 50 }, async () => {
      const cur = (await store.get("counter"))!;
      await store.set("counter", { ...cur, data: { n: (cur.data.n as number) + 1 } }, 60_000);
    }));
    assert.ok(((await store.get("counter"))!.data.n as number) < 50);
  });
});

function plainRecord(rec: StoredRecord | undefined | null): StoredRecord | undefined {
  return rec ?? undefined;
}

// ------------------------------------------------------------------------ MapStore specifics

describe("MapStore", () => {
  test("maxEntries evicts the least recently written record", () => {
    const store = new MapStore({ maxEntries: 3 });
    store.set("a", record({ v: "a" }), 60_000);
    store.set("b", record({ v: "b" }), 60_000);
    store.set("c", record({ v: "c" }), 60_000);
    store.set("a", record({ v: "a2" }), 60_000); // rewrite: a is now the most recent
    assert.equal(store.size, 3);
    store.set("d", record({ v: "d" }), 60_000);
    assert.equal(store.size, 3);
    assert.equal(store.get("b"), undefined, "b was the least recently written");
    assert.deepEqual(
      ["a", "c", "d"].map((id) => store.get(id)?.data.v),
      ["a2", "c", "d"],
    );
  });

  test("maxEntries: a record written again outlives every one not written since (second chance)", () => {
    const store = new MapStore({ maxEntries: 4 });
    for (const id of ["a", "b", "c", "d"]) store.set(id, record({ v: id }), 60_000);
    for (let i = 0; i < 1000; i++) store.set("a", record({ v: i }), 60_000); // a hot session
    store.set("e", record({}), 60_000); // evicts b (a is passed over once)
    store.set("f", record({}), 60_000); // evicts c
    store.set("g", record({}), 60_000); // evicts d
    assert.deepEqual(["a", "b", "c", "d", "e", "f", "g"].map((id) => store.get(id) !== undefined), [
      true,
      false,
      false,
      false,
      true,
      true,
      true,
    ]);
    assert.equal(store.get("a")?.data.v, 999);
    store.set("h", record({}), 60_000); // evicts e: a moved behind it with its second chance
    assert.equal(store.get("e"), undefined);
    store.set("i", record({}), 60_000); // a, not written since then, goes now
    assert.equal(store.get("a"), undefined);
    assert.equal(store.size, 4);
  });

  test("maxEntries beyond 32,768 (in shards on Bun, one Map elsewhere): about the oldest go, a rewritten one gets its second chance", () => {
    const store = new MapStore({ maxEntries: 40_000 });
    const ids = Array.from({ length: 50_000 }, () => generateUid());
    for (const id of ids.slice(0, 40_000)) store.set(id, record({}), 60_000);
    store.set(ids[0]!, record({ hot: true }), 60_000); // the oldest, written again
    for (const id of ids.slice(40_000)) store.set(id, record({}), 60_000);
    assert.equal(store.size, 40_000);
    const gone = ids.flatMap((id, i) => store.get(id) === undefined ? [i] : []);
    assert.equal(gone.length, 10_000);
    assert.ok(Math.max(...gone) < 20_000, `evicted up to #${Math.max(...gone)}`);
    assert.deepEqual(store.get(ids[0]!)?.data, { hot: true }, "passed over once");
  });

  test("maxEntries: the record just written is never the one evicted, even when all others were written again", () => {
    const store = new MapStore({ maxEntries: 2 });
    store.set("a", record({}), 60_000);
    store.set("b", record({}), 60_000);
    store.set("a", record({ n: 2 }), 60_000);
    store.set("b", record({ n: 2 }), 60_000);
    store.set("c", record({ v: "c" }), 60_000); // a and b are passed over once; c stays
    assert.deepEqual(["a", "b", "c"].map((id) => store.get(id) !== undefined), [false, true, true]);
    assert.equal(store.get("c")?.data.v, "c");
  });

  test("times written in turn (more distinct ones than the store remembers in base 36) read back exactly", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const ttls = [1_000, 86_400_000, 31_536_000_000, 5, 60_000, 1_000];
    for (let round = 0; round < 3; round++) {
      for (const [i, ttl] of ttls.entries()) {
        const createdAt = now - i * 37;
        store.set(`r${round}-${i}`, { data: { i }, expiresAt: now + ttl, createdAt }, ttl);
        const back = store.get(`r${round}-${i}`)!;
        assert.deepEqual([back.expiresAt, back.createdAt], [now + ttl, createdAt]);
      }
      now += 1;
    }
    now -= 3;
    for (let round = 0; round < 3; round++, now++) {
      for (const [i, ttl] of ttls.entries()) {
        const back = store.get(`r${round}-${i}`)!;
        assert.deepEqual(
          [back.expiresAt, back.createdAt],
          [now + ttl, now - i * 37],
          `r${round}-${i}`,
        );
      }
    }
  });

  test("any creation time and expiry the compact shape holds reads back exactly (base 36 by hand)", () => {
    const below47 = fc.tuple(
      fc.integer({ min: 0, max: 2 ** 23 - 1 }),
      fc.integer({ min: 0, max: 2 ** 24 - 1 }),
    )
      .map(([high, low]) => high * 2 ** 24 + low);
    const edges = [36 ** 7 - 1, 36 ** 7, 36 ** 8 - 1, 36 ** 8, 36 ** 9 - 1, 36 ** 9, 2 ** 47 - 1];
    const time = fc.oneof(below47, fc.constantFrom(...edges, ...edges.map((e) => e + 1)));
    fc.assert(
      fc.property(time, time, (createdAt, expiry) => {
        const store = new MapStore({ now: () => 0 });
        const at = Math.min(expiry, 2 ** 47 - 1);
        store.set("id", { data: { a: 1 }, expiresAt: at, createdAt }, at);
        const back = store.get("id");
        if (at === 0) return assert.equal(back, undefined, "expired at once");
        assert.deepEqual([back?.createdAt, back?.expiresAt], [createdAt, at]);
      }),
      { numRuns: 3000 },
    );
  });

  test("maxEntries: reads do not protect a record from eviction (written, not read, order)", () => {
    const store = new MapStore({ maxEntries: 2 });
    store.set("a", record({}), 60_000);
    store.set("b", record({}), 60_000);
    store.get("a");
    store.set("c", record({}), 60_000);
    assert.equal(store.get("a"), undefined);
    assert.ok(store.get("b"));
    assert.ok(store.get("c"));
  });

  test("maxEntries: update() counts as a write", () => {
    const store = new MapStore({ maxEntries: 2 });
    store.set("a", record({ n: 1 }), 60_000);
    store.set("b", record({}), 60_000);
    store.update("a", (cur) => ({ ...cur, data: { n: 2 } }));
    store.set("c", record({}), 60_000);
    assert.equal(store.get("b"), undefined);
    assert.equal(store.get("a")?.data.n, 2);
  });

  test("expiry: exact to the millisecond; an endless or NaN TTL never expires, a negative one at once", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    store.set("exact", record({ v: 1 }), 1000);
    store.set("endless", record({ v: 2 }), Infinity);
    store.set("nan", record({ v: 3 }), Number.NaN);
    store.set("past", record({ v: 4 }), -5);
    assert.equal(store.get("past"), undefined);
    now += 999;
    assert.equal(store.get("exact")?.data.v, 1);
    now += 1;
    assert.equal(store.get("exact"), undefined, "gone at now + ttl");
    now += 100 * 365 * 86_400_000;
    assert.equal(store.get("endless")?.data.v, 2);
    assert.equal(store.get("nan")?.data.v, 3);
    assert.equal(store.size, 4, "expired records stay until cleanup");
  });

  test("every record reads back as written, whichever shape the store holds it in", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const ttl = 60_000;
    const at = now + ttl;
    const cases: [string, StoredRecord, number][] = [
      // Compact shape: the manager's sessions and client mappings.
      ["session", { data: { n: 1 }, expiresAt: at, createdAt: now }, ttl],
      [
        "with client",
        { data: { a: "x y" }, expiresAt: at, createdAt: now - 5, clientId: "c1" },
        ttl,
      ],
      ["mapping", { data: {}, expiresAt: at, createdAt: now, sid: "s1" }, ttl],
      // A browser's first session: its client id is its own id (held once).
      ["own", { data: { n: 3 }, expiresAt: at, createdAt: now, clientId: "own" }, ttl],
      ["spaces in data", {
        data: { " k ": " v ", deep: [{ x: " " }] },
        expiresAt: at,
        createdAt: 0,
      }, ttl],
      ["unicode", { data: { "é": "\u2028 ☃ \ud83d\ude00" }, expiresAt: at, createdAt: now }, ttl],
      // Generic shape: anything else.
      ["space in client", { data: {}, expiresAt: at, createdAt: now, clientId: "a b" }, ttl],
      ["empty client", { data: {}, expiresAt: at, createdAt: now, clientId: "" }, ttl],
      // What the compact shape writes for a client id that is the record's own.
      ["marker client", { data: {}, expiresAt: at, createdAt: now, clientId: "=" }, ttl],
      ["=", { data: {}, expiresAt: at, createdAt: now, clientId: "=", sid: "=" }, ttl],
      ["fractional createdAt", { data: {}, expiresAt: at, createdAt: now + 0.5 }, ttl],
      ["negative createdAt", { data: {}, expiresAt: at, createdAt: -1 }, ttl],
      ["far future", { data: {}, expiresAt: now + 2 ** 48, createdAt: now }, 2 ** 48],
      ["other clock", { data: { n: 2 }, expiresAt: at + 7, createdAt: now }, ttl],
      [
        "csrf",
        { data: {}, expiresAt: at, createdAt: now, csrf: "t", user: "u", flash: ["f"] },
        ttl,
      ],
      ["maxAge", { data: {}, expiresAt: at, createdAt: now, maxAge: 5 }, ttl],
    ];
    for (const [id, rec, ttlMs] of cases) store.set(id, rec, ttlMs);
    for (const [id, rec] of cases) assert.deepEqual(store.get(id), rec, id);
    const listed = new Map(store.list());
    for (const [id, rec] of cases) assert.deepEqual(listed.get(id), rec, `list: ${id}`);
    // update() and takeExpired() decode them the same way.
    for (const [id, rec] of cases) {
      assert.deepEqual(store.update(id, (cur) => cur), rec, `update: ${id}`);
      assert.deepEqual(store.get(id), rec, `after update: ${id}`);
    }
    const taken = new Map([...store.takeExpired(at, "cid:")].flat().map(([id, rec]) => [id, rec]));
    for (const [id, rec] of cases) {
      if (rec.expiresAt > at) assert.equal(taken.get(id), undefined, `not taken: ${id}`);
      else if (taken.get(id)?.data === undefined) {
        const { data: _, ...withoutData } = rec; // a compact record: taken without its data
        assert.deepEqual(taken.get(id), withoutData, `taken: ${id}`);
      } else assert.deepEqual(taken.get(id), rec, `taken: ${id}`);
    }
    assert.ok(taken.has("own") && taken.has("=") && taken.get("own")!.data === undefined);
  });

  test("reads are copies: no read, and no record given to set(), aliases what the store holds", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const rec: StoredRecord = {
      data: { n: 1, s: "x", b: true, z: null, o: { list: [1, { x: 1 }] } },
      expiresAt: now + 60_000,
      createdAt: now,
      clientId: "c1",
    };
    const expected = structuredClone(rec);
    store.set("s1", rec, 60_000);
    (rec.data as Record<string, unknown>).n = 99; // the caller's object, changed after set()
    rec.data.extra = 1;
    rec.clientId = "other";
    const list = (rec.data.o as { list: unknown[] }).list;
    list.push(2); // and its nested objects
    (list[1] as { x: number }).x = 2;
    assert.deepEqual(store.get("s1"), expected);
    for (let i = 0; i < 3; i++) {
      const read = store.get("s1")!;
      assert.deepEqual(read, expected, `read ${i}`);
      read.data.n = i + 100; // a read changed by its reader (as a session changes its data)
      delete read.data.s;
      const readList = (read.data.o as { list: unknown[] }).list;
      readList.push(i);
      (readList[1] as { x: number }).x = i + 100;
      read.expiresAt = 0;
      read.clientId = "changed";
    }
    // update() hands its mutator a copy too, and stores what the mutator returns.
    store.update("s1", (cur) => {
      assert.deepEqual(cur, expected);
      cur.data.n = 2;
      return cur;
    });
    assert.deepEqual(store.get("s1")!.data, {
      n: 2,
      s: "x",
      b: true,
      z: null,
      o: { list: [1, { x: 1 }] },
    });
  });

  test("the manager's shared read: the store's own decoded record, read in place, while get() and update() still hand out copies", () => {
    let now = 1_767_225_600_000;
    for (const extra of [{}, { user: "ada", csrf: "secret" }]) { // compact and JSON-shaped records
      const store = new MapStore({ now: () => now });
      const rec: StoredRecord = {
        data: { n: 1, o: { list: [1, { x: 1 }] } },
        expiresAt: now + 60_000,
        createdAt: now,
        ...extra,
      };
      const expected = structuredClone(rec);
      store.set("s1", rec, 60_000);
      const shared = mapStoreSteps.shared(store, "s1")!;
      assert.deepEqual(shared, expected);
      assert.equal(mapStoreSteps.shared(store, "s1"), shared, "the same record, not a copy");
      // Readers that change what they got change neither the shared record nor the next read.
      const read = store.get("s1")!;
      ((read.data.o as { list: unknown[] }).list[1] as { x: number }).x = 2;
      store.update("s1", (cur) => {
        (cur.data.o as { list: unknown[] }).list.push(3);
        return undefined; // nothing written
      });
      assert.deepEqual(shared, expected);
      assert.deepEqual(store.get("s1"), expected);
      // A fresh store finds the record by decoding it (a miss): the same rules.
      const other = new MapStore({ now: () => now });
      other.set("s1", rec, 60_000);
      other.set("s2", { ...rec, data: { n: 2 } }, 60_000); // (another slot of the cache)
      const decoded = mapStoreSteps.shared(other, "s1")!;
      assert.deepEqual(decoded, expected);
      (other.get("s1")!.data.o as { list: unknown[] }).list.length = 0;
      assert.deepEqual(decoded, expected);
      assert.equal(mapStoreSteps.shared(other, "s1"), decoded);
      // A write replaces it; an expired or missing record reads as missing.
      store.set("s1", { ...expected, data: { n: 2 } }, 60_000);
      assert.deepEqual(mapStoreSteps.shared(store, "s1")!.data, { n: 2 });
      assert.deepEqual(shared, expected, "the record read before the write is unchanged");
      assert.equal(mapStoreSteps.shared(store, "nope"), undefined);
      now += 60_000;
      assert.equal(mapStoreSteps.shared(store, "s1"), undefined);
      now -= 60_000;
    }
  });

  test("the manager's writes on a MapStore's own record (no copy) leave what later reads get intact", async () => {
    const { createSessions } = await import("../mod.ts");
    const store = new MapStore();
    const m = createSessions({ store, keys: ["k".repeat(32)], identify: (d) => d.userId });
    const state = m.open(null);
    Object.assign(state.session, {
      userId: "ada",
      user: { name: "ada", roles: ["admin"] },
      cart: [{ sku: "A-1", qty: 2 }],
      n: 0,
    });
    const { cookies } = await m.commit(state);
    const jar = cookies.map((c) => c.split(";")[0]).join("; ");
    const expected = {
      userId: "ada",
      user: { name: "ada", roles: ["admin"] },
      cart: [{ sku: "A-1", qty: 2 }],
    };
    for (let i = 1; i <= 3; i++) {
      // A request that changes only `n` (the other keys are the store's own objects in the write).
      const req = m.open(jar);
      req.session.n = i;
      await m.commit(req);
      // A request that reads the nested data, changes it in place and fails: nothing is saved.
      const failing = m.open(jar);
      (failing.session.user as { roles: string[] }).roles.push("intruder");
      (failing.session.cart as { qty: number }[])[0]!.qty = 99;
      m.abandon(failing);
      // The application's update(fn) changing nested values and throwing: nothing is saved.
      await assert.rejects(
        m.update(state.id!, (d) => {
          (d.user as { name: string }).name = "mallory";
          throw new Error("no");
        }),
        /no/,
      );
      assert.deepEqual(await m.getById(state.id!), { ...expected, n: i }, `round ${i}`);
      assert.deepEqual(m.open(jar).session.user, expected.user);
    }
    // A nested change saved by a request is read back, and the user index still names the session.
    const req = m.open(jar);
    (req.session.user as { roles: string[] }).roles.push("editor");
    await m.commit(req);
    assert.deepEqual((await m.getById(state.id!))!.user, {
      name: "ada",
      roles: ["admin", "editor"],
    });
    assert.deepEqual((await m.listByUser("ada")).map((s) => s.sessionId), [state.id]);
  });

  test("update(): a mutator that changes the record itself (not only its data) is written whole", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const fresh = () => ({
      data: { n: 1 },
      expiresAt: now + 60_000,
      createdAt: now,
      clientId: "c1",
    });
    // Each field the compact record's start states, changed in place on the record handed over
    // (an update that changes only the data keeps that start as it is).
    const changes: [string, (cur: StoredRecord) => void][] = [
      ["createdAt", (cur) => (cur.createdAt -= 5_000)],
      ["clientId", (cur) => (cur.clientId = "c2")],
      ["clientId removed", (cur) => delete cur.clientId],
      ["sid", (cur) => (cur.sid = "s9")],
      ["expiresAt", (cur) => (cur.expiresAt += 30_000)],
      ["only the data", () => {}],
    ];
    for (const [name, change] of changes) {
      store.set(name, fresh(), 60_000);
      const written = store.update(name, (cur) => {
        change(cur);
        cur.data.n = (cur.data.n as number) + 1;
        return cur;
      })!;
      const read = store.get(name)!;
      assert.deepEqual(read, written, name);
      assert.equal(read.data.n, 2, name);
      // What is held, decoded again (list() does not go through the cache of decoded records).
      const held = new Map(store.list()).get(name)!;
      assert.deepEqual(held, written, `${name}, as held`);
    }
    // The expiry written is the one the record states: it ends 30 s later than the others.
    now += 60_000;
    assert.equal(store.get("only the data"), undefined);
    assert.equal(store.get("expiresAt")?.data.n, 2);
    // Updated many times, a record keeps reading back as written.
    store.set("many", fresh(), 60_000);
    for (let i = 0; i < 50; i++) {
      store.update("many", (cur) => ({ ...cur, data: { n: i, s: "a b ".repeat(i % 3) } }));
    }
    assert.deepEqual(store.get("many")!.data, { n: 49, s: "a b " });
  });

  test("data read back is what JSON makes of it, also for values JSON changes", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    class Point {
      x = 1;
    }
    const proto = JSON.parse('{"__proto__": 1, "k": "v"}') as Record<string, unknown>;
    const cases: Record<string, unknown>[] = [
      { u: undefined, nan: NaN, inf: -Infinity, neg: -0, d: new Date(0) },
      Object.assign({ [Symbol("s")]: 1 }, { k: "v" }),
      proto,
      new Point() as unknown as Record<string, unknown>,
      { 10: "ten", 2: "two", a: "a" },
      // Nested values: JSON-exact trees are copied (and cached), anything else goes through JSON.
      { o: { date: new Date(0), k: "v" } },
      { o: { neg: -0, nan: NaN, big: Infinity } },
      { o: { u: undefined, f: () => 1, k: [null, true, "s", 1.5] } },
      { a: [1, undefined, () => 1] },
      { a: [1, , 3] }, // a hole
      { a: Object.assign([1, 2], { extra: 1 }) },
      { o: { toJSON: () => "T" } },
      { o: { p: new Point() } },
      { o: Object.assign(Object.create(null) as object, { k: "v" }) },
      { o: JSON.parse('{"__proto__": {"x": 1}, "y": [{"__proto__": 2}]}') },
      { deep: Array.from({ length: 40 }).reduce<unknown>((inner) => ({ inner }), "bottom") },
    ];
    cases.forEach((data, i) => {
      const id = `d${i}`;
      store.set(id, { data, expiresAt: now + 1000, createdAt: now }, 1000);
      const json = JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
      for (let read = 0; read < 2; read++) {
        const got = store.get(id)!.data;
        assert.deepEqual(got, json, `${id} read ${read}`);
        assert.deepEqual(Object.keys(got), Object.keys(json), `${id} key order`);
        assert.equal(Object.getOwnPropertySymbols(got).length, 0, id);
        assert.equal(JSON.stringify(got), JSON.stringify(json), `${id} nested key order`);
      }
    });
    assert.ok(Object.is(store.get("d0")!.data.neg, 0));
    assert.ok(Object.hasOwn(store.get("d2")!.data, "__proto__"));
    const nestedProto = store.get("d14")!.data.o as Record<string, unknown>;
    assert.ok(Object.hasOwn(nestedProto, "__proto__"), "a nested __proto__ key stays a key");
    assert.equal(Object.getPrototypeOf(nestedProto), Object.prototype);
  });

  test("set() reads each value of the data once, and reads give back what it held", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const at = now + 1000;
    // A non-enumerable toJSON: JSON (and so the store) holds what it returns.
    const withToJSON = { n: 1 };
    Object.defineProperty(withToJSON, "toJSON", { value: () => ({ n: 2 }) });
    store.set("t", { data: withToJSON, expiresAt: at, createdAt: now }, 1000);
    assert.deepEqual(store.get("t")!.data, { n: 2 });
    assert.deepEqual(new Map(store.list()).get("t")!.data, { n: 2 });
    // A getter is called once per set(), and every read gives the value it returned then.
    let calls = 0;
    const counting = {
      get n() {
        return ++calls;
      },
    };
    store.set("g", { data: counting, expiresAt: at, createdAt: now }, 1000);
    assert.equal(calls, 1);
    assert.deepEqual(store.get("g")!.data, { n: 1 });
    assert.deepEqual(new Map(store.list()).get("g")!.data, { n: 1 });
    // A getter that throws on its second call does not make set() throw.
    let first = true;
    const once = {
      get a() {
        if (!first) throw new Error("read twice");
        first = false;
        return "x";
      },
    };
    store.set("o", { data: once, expiresAt: at, createdAt: now }, 1000);
    assert.deepEqual(store.get("o")!.data, { a: "x" });
    // A getter that throws: SessionSerializationError, as for any data JSON cannot hold.
    const throwing = {
      get a(): string {
        throw new Error("no");
      },
    };
    assert.throws(
      () => store.set("x", { data: throwing, expiresAt: at, createdAt: now }, 1000),
      SessionSerializationError,
    );
    // A Proxy answers once per key too.
    let gets = 0;
    const proxy = new Proxy({ a: 1 }, {
      get: (t, k) => (gets++, k === "a" ? gets : Reflect.get(t, k)),
    });
    store.set("p", { data: proxy, expiresAt: at, createdAt: now }, 1000);
    const held = store.get("p")!.data;
    assert.deepEqual(held, new Map(store.list()).get("p")!.data);
    // A createdAt of -0 reads back as the 0 it is held as.
    store.set("z", { data: { n: 1 }, expiresAt: at, createdAt: -0 }, 1000);
    assert.ok(Object.is(store.get("z")!.createdAt, 0));
  });

  test("a session the compact shape cannot hold (user, CSRF secret, meta, flash): every read is its own copy of what was written", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const at = now + 1000;
    let uaReads = 0;
    const meta = {
      get ua() {
        return `browser ${++uaReads}`; // read once per set(): held and read back as "browser 1"
      },
      ip: "203.0.113.7",
    };
    const written: StoredRecord = {
      data: { n: 1, profile: { name: "ada", roles: ["admin"] } },
      expiresAt: at,
      createdAt: now,
      clientId: "c1",
      user: "u1",
      seenAt: now,
      csrf: "secret",
      flash: ["notice"],
      meta,
    };
    store.set("s", written, 1000);
    assert.equal(uaReads, 1, "each value is read once");
    const expected = {
      ...written,
      data: { n: 1, profile: { name: "ada", roles: ["admin"] } },
      meta: { ua: "browser 1", ip: "203.0.113.7" },
      flash: ["notice"],
    };
    for (let read = 0; read < 3; read++) {
      const got = store.get("s")!;
      assert.deepEqual(got, expected, `read ${read}`);
      // What a read gets is its own: changing it changes nothing held.
      (got.data.profile as { roles: string[] }).roles.push("root");
      got.data.n = 99;
      got.meta!.ip = "x";
      got.flash!.push("other");
      got.user = "someone else";
    }
    assert.deepEqual(new Map(store.list()).get("s"), expected);
    // The user index names the user as held, even when a getter answers differently each time.
    let userReads = 0;
    store.set("g", {
      ...expected,
      get user() {
        return `getter ${++userReads}`;
      },
    }, 1000);
    const heldUser = store.get("g")!.user!;
    assert.deepEqual(store.listUser(heldUser).map(([id]) => id), ["g"]);
    for (let n = 1; n <= userReads; n++) {
      if (`getter ${n}` !== heldUser) assert.deepEqual(store.listUser(`getter ${n}`), []);
    }
    // A write replaces what reads get at once (a new held string is never served from the cache).
    store.set("s", { ...expected, data: { n: 2 }, user: "u2" }, 1000);
    assert.deepEqual(store.get("s"), { ...expected, data: { n: 2 }, user: "u2" });
    assert.deepEqual(store.listUser("u2").map(([id]) => id), ["s"]);
    assert.deepEqual(store.listUser("u1"), []);
  });

  test("many sessions read and written in turn each read back their own data", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const ids = Array.from({ length: 5000 }, () => generateUid());
    ids.forEach((id, i) =>
      store.set(id, { data: { i }, expiresAt: now + 1000, createdAt: now }, 1000)
    );
    for (let round = 0; round < 3; round++) {
      ids.forEach((id, i) => {
        assert.deepEqual(store.get(id)!.data, { i: i + round }, id);
        store.update(id, (cur) => ({ ...cur, data: { i: (cur.data.i as number) + 1 } }));
      });
    }
  });

  test("first sessions written alike (same times and data, each its own client id) each read back their own client id", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    // Same last two characters: the same slot of the store's cache of decoded records, and
    // equal held strings (each record's client id is its own id, not held twice).
    const ids = ["aaaa01", "bbbb01", "cccc01"];
    const rec = (id: string) => ({
      data: {},
      expiresAt: now + 60_000,
      createdAt: now,
      clientId: id,
    });
    for (const id of ids) store.set(id, rec(id), 60_000);
    for (const id of ids) assert.equal(store.get(id)!.clientId, id, `get ${id}`);
    assert.equal(store.get("cccc01")!.clientId, "cccc01", "read twice");
    now += 1000;
    const start = now - 1000;
    // An update renewing the expiry writes the client id it read.
    store.update("aaaa01", (cur) => ({ ...cur, expiresAt: now + 60_000 }));
    assert.deepEqual(new Map(store.list()).get("aaaa01"), {
      ...rec("aaaa01"),
      createdAt: start,
      expiresAt: now + 60_000,
    });
    for (const id of ids) assert.equal(store.get(id)!.clientId, id, `after the update: ${id}`);
  });

  test("any JSON record reads back as written (property: 2,000 random records)", () => {
    const now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    // "r" is the id the records are written under, "=" what the compact shape holds for it.
    const id = fc.oneof(
      fc.string(),
      fc.constantFrom("a b", " ", "", "c1", "x".repeat(24), "r", "="),
    );
    const time = fc.oneof(
      fc.integer({ min: -1e3, max: 2 ** 50 }),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e15, max: 1e15 }),
      fc.constant(now),
    );
    const data = fc.dictionary(fc.string(), fc.jsonValue()) as fc.Arbitrary<
      Record<string, unknown>
    >;
    const record = fc.record(
      {
        data,
        ttl: fc.oneof(fc.constant(60_000), fc.integer({ min: 1, max: 2 ** 40 })),
        createdAt: time,
        clientId: id,
        sid: id,
        user: fc.string(),
        csrf: fc.string(),
        maxAge: fc.integer({ min: 1, max: 1e9 }),
        // expiresAt: now + ttl; a ms before (a TTL computed just before the clock ticked: held
        // as its expiry); or further off (held apart from the expiry, in the JSON shape)
        offset: fc.constantFrom(0, -1, -11, 11),
      },
      { requiredKeys: ["data", "ttl", "createdAt", "offset"] },
    );
    fc.assert(
      fc.property(record, ({ ttl, offset, ...fields }) => {
        const rec = { ...fields, expiresAt: now + ttl + offset } as StoredRecord;
        const expected = JSON.parse(JSON.stringify(rec)) as StoredRecord;
        store.set("r", rec, ttl);
        assert.deepEqual(store.get("r"), expected);
        assert.deepEqual(new Map(store.list()).get("r"), expected);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });

  test("expiry holds in both shapes: read as missing once due, listed as expired", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    store.set("compact", { data: {}, expiresAt: now + 1000, createdAt: now }, 1000);
    store.set("generic", { data: {}, expiresAt: now + 1000, createdAt: now, csrf: "t" }, 1000);
    store.set("forever", { data: {}, expiresAt: Infinity, createdAt: now }, Infinity);
    now += 999;
    assert.deepEqual([...store.takeExpired(now)].flat().map(([id]) => id), []);
    assert.ok(store.get("compact") && store.get("generic"));
    now += 1;
    assert.equal(store.get("compact"), undefined);
    assert.equal(store.get("generic"), undefined);
    assert.deepEqual([...store.takeExpired(now)].flat().map(([id]) => id).sort(), [
      "compact",
      "generic",
    ]);
    now += 1e15;
    assert.ok(store.get("forever"), "a record without expiry never expires");
  });

  test("data that JSON cannot hold is a SessionSerializationError, in either shape", () => {
    const store = new MapStore();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const now = Date.now();
    assert.throws(
      () => store.set("a", { data: cyclic, expiresAt: now + 1000, createdAt: now }, 1000),
      SessionSerializationError,
    );
    assert.throws(
      () =>
        store.set("b", { data: { n: 1n }, expiresAt: now + 7, createdAt: now, csrf: "t" }, 1000),
      SessionSerializationError,
    );
    assert.equal(store.size, 0);
  });

  test("takeExpired(by) removes and returns the records expired by then, compact ones without data", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const rec = (v: number, ttl: number): StoredRecord => ({
      data: { v },
      expiresAt: now + ttl,
      createdAt: now,
    });
    store.set("short", rec(1, 1000), 1000);
    store.set("long", rec(2, 60_000), 60_000);
    store.set("gone", rec(3, -1), -1);
    store.set("other", { ...rec(4, -1), csrf: "t" }, -1);
    const start = now;
    const taken = new Map([...store.takeExpired(now)].flat().map(([id, rec]) => [id, rec]));
    assert.deepEqual([...taken.keys()].sort(), ["gone", "other"]);
    assert.deepEqual(taken.get("gone"), { expiresAt: start - 1, createdAt: start }, "no data");
    assert.deepEqual(taken.get("other"), { ...rec(4, -1), csrf: "t" }, "generic shape: whole");
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), ["long", "short"]);
    now += 1000;
    assert.deepEqual([...store.takeExpired(now)].flat().map(([id]) => id), ["short"]);
    assert.deepEqual([...store.takeExpired(now)].flat(), [], "nothing is taken twice");
    assert.equal(store.size, 1);
    assert.deepEqual(store.get("long"), {
      data: { v: 2 },
      expiresAt: start + 60_000,
      createdAt: start,
    });
  });

  /**
   * The ids `takeExpired(by, prefix)` returned, each client mapping it took along (its session's
   * entry says `true`) listed right after its session: such a mapping is gone from the store once
   * the iteration ends, and no record is returned twice.
   */
  function takenIds(store: MapStore, by: number, prefix: string): string[] {
    const out: string[] = [];
    const mappings: string[] = [];
    for (const [id, rec, mappingTaken] of [...store.takeExpired(by, prefix)].flat()) {
      out.push(id);
      if (mappingTaken === true) {
        assert.equal(typeof rec.clientId, "string");
        out.push(prefix + rec.clientId);
        mappings.push(prefix + rec.clientId);
      }
    }
    for (const key of mappings) assert.equal(store.get(key), undefined, `${key} gone`);
    assert.equal(new Set(out).size, out.length, "no record returned twice");
    return out;
  }

  test("takeExpired(by, prefix) takes along each taken record's client mapping that names it", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const session = (ttl: number, clientId?: string, extra: object = {}): StoredRecord => ({
      data: { n: 1 },
      expiresAt: now + ttl,
      createdAt: now,
      ...(clientId === undefined ? {} : { clientId }),
      ...extra,
    });
    const mapping = (sid: string, ttl = 1e9): StoredRecord => ({
      data: {},
      sid,
      expiresAt: now + ttl,
      createdAt: now,
    });
    store.set("cid:a", mapping("s1"), 1e9); // before its session in the Map
    store.set("s1", session(10, "a"), 10);
    store.set("s2", session(10, "b", { meta: { x: 1 } }), 10); // generic (JSON) shape
    store.set("cid:b", mapping("s2"), 1e9);
    store.set("s3", session(10, "c"), 10);
    store.set("cid:c", mapping("newer"), 1e9); // the browser moved on to another session: kept
    store.set("s4", session(10, "d"), 10);
    store.set("cid:d", mapping("s4", 5), 5); // expired itself: taken once, not twice
    store.set("s5", session(10), 10); // no client id
    store.set("alive", session(1e6, "e"), 1e6);
    store.set("cid:e", mapping("alive"), 1e9);
    now += 10;
    const taken = takenIds(store, now, "cid:").sort();
    assert.deepEqual(taken, ["cid:a", "cid:b", "cid:d", "s1", "s2", "s3", "s4", "s5"]);
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), ["alive", "cid:c", "cid:e"]);
    assert.equal(store.get("cid:c")?.sid, "newer");
    // Without the prefix, only what expired is taken.
    store.set("s6", session(10, "f"), 10);
    store.set("cid:f", mapping("s6"), 1e9);
    now += 10;
    assert.deepEqual([...store.takeExpired(now)].flat().map(([id]) => id), ["s6"]);
    assert.ok(store.get("cid:f"));
    // A client id that is not a non-empty string names no mapping.
    store.set("s8", { ...session(10), clientId: 5 as unknown as string }, 10);
    store.set("cid:5", mapping("s8"), 1e9);
    now += 10;
    assert.deepEqual(takenIds(store, now, "cid:"), ["s8"]);
    store.delete("cid:5");
    // A record that cannot be decoded fails the taking when it is returned, after the removal:
    // the store stays consistent (no mapping left half-taken).
    store.set("s9", session(10, "h"), 10);
    store.set("cid:h", mapping("s9"), 1e9);
    const broken = { toJSON: () => 1, expiresAt: now + 10, createdAt: now };
    store.set("bad", broken as unknown as StoredRecord, 10);
    now += 10;
    assert.throws(() => [...store.takeExpired(now, "cid:")].flat());
    assert.equal(store.get("cid:h"), undefined);
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), [
      "alive",
      "cid:c",
      "cid:e",
      "cid:f",
    ]);
    // A few taken among many kept (deleted one by one instead of the Map being rebuilt).
    store.set("s7", session(10, "g"), 10);
    store.set("cid:g", mapping("s7"), 1e9);
    now += 10;
    // The session's entry says its mapping went too; the mapping is not returned itself.
    assert.deepEqual([...store.takeExpired(now, "cid:")].flat(), [
      ["s7", { expiresAt: now, createdAt: now - 10, clientId: "g" }, true],
    ]);
    assert.equal(store.get("cid:g"), undefined);
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), [
      "alive",
      "cid:c",
      "cid:e",
      "cid:f",
    ]);
  });

  test("takeExpired(by, prefix): a mapping far from its session (rewritten, regenerated) is found by lookup, on both paths", () => {
    for (const most of [true, false]) {
      let now = 1_767_225_600_000;
      const store = new MapStore({ now: () => now });
      const session = (ttl: number, clientId: string): StoredRecord => ({
        data: { n: 1 },
        expiresAt: now + ttl,
        createdAt: now,
        clientId,
      });
      const mapping = (sid: string): StoredRecord => ({
        data: {},
        sid,
        expiresAt: now + 1e9,
        createdAt: now,
      });
      store.set("cid:x", mapping("old"), 1e9); // its place in the Map stays when rewritten
      store.set("old", session(10, "x"), 10);
      for (let i = 0; i < (most ? 2 : 20); i++) store.set(`live${i}`, session(1e6, `l${i}`), 1e6);
      store.set("cid:x", mapping("regenerated"), 1e9);
      store.set("s-y", session(10, "y"), 10);
      store.set("between", session(1e6, "z"), 1e6);
      store.set("cid:y", mapping("s-y"), 1e9); // after its session, with another record between
      store.set("regenerated", session(10, "x"), 10); // far after its mapping
      store.set("s-w", session(10, "w"), 10); // its mapping is the next record but one
      store.set("s-v", session(10, "v"), 10);
      store.set("cid:w", mapping("s-w"), 1e9);
      store.set("cid:v", mapping("s-v"), 1e9);
      now += 10;
      const taken = takenIds(store, now, "cid:");
      // Each mapping right after its session (the sessions in the Map's order, which on Bun
      // goes shard by shard); the one naming another session stays.
      const after = (id: string) => taken[taken.indexOf(id) + 1];
      assert.equal(taken.length, 9);
      assert.deepEqual(
        ["s-y", "regenerated", "s-w", "s-v"].map(after),
        ["cid:y", "cid:x", "cid:w", "cid:v"],
      );
      assert.ok(taken.includes("old") && !after("old")?.startsWith("cid:"));
      const left = [...store.list()].map(([id]) => id);
      assert.deepEqual(left.filter((id) => !id.startsWith("live")), ["between"]);
      assert.equal(store.size, left.length);
      assert.deepEqual([...store.takeExpired(now, "cid:")].flat(), [], "nothing is taken twice");
    }
  });

  test("takeExpired(by, prefix): most records taken after half were kept (mappings by lookup) leaves exactly the others", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now });
    const mapping = (sid: string): StoredRecord => ({
      data: {},
      sid,
      expiresAt: now + 1e9,
      createdAt: now,
    });
    const session = (ttl: number, clientId: string): StoredRecord => ({
      data: {},
      expiresAt: now + ttl,
      createdAt: now,
      clientId,
    });
    for (let i = 1; i <= 5; i++) store.set(`cid:${i}`, mapping(`s${i}`), 1e9);
    store.set("live", session(1e6, "9"), 1e6); // half the records kept so far
    for (let i = 1; i <= 4; i++) store.set(`s${i}`, session(10, `${i}`), 10);
    now += 10;
    const taken = takenIds(store, now, "cid:").sort();
    assert.deepEqual(taken, ["cid:1", "cid:2", "cid:3", "cid:4", "s1", "s2", "s3", "s4"]);
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), ["cid:5", "live"]);
    assert.equal(store.size, 2);
  });

  test("takeExpired() that removes most records keeps the survivors, their order and user index", () => {
    let now = 1_767_225_600_000;
    const store = new MapStore({ now: () => now, maxEntries: 10 });
    for (let i = 0; i < 8; i++) {
      store.set(`old${i}`, { data: {}, expiresAt: now + 10, createdAt: now, user: "u1" }, 10);
    }
    store.set("keep1", { data: { k: 1 }, expiresAt: now + 1e6, createdAt: now, user: "u2" }, 1e6);
    store.set("keep2", { data: { k: 2 }, expiresAt: now + 1e6, createdAt: now }, 1e6);
    now += 10;
    assert.equal([...store.takeExpired(now)].flat().length, 8);
    assert.deepEqual([...store.list()].map(([id]) => id), ["keep1", "keep2"]);
    assert.deepEqual(store.listUser("u1"), []);
    assert.deepEqual(store.listUser("u2").map(([id]) => id), ["keep1"]);
    // Eviction still takes the least recently written survivor first.
    for (let i = 0; i < 9; i++) {
      store.set(`new${i}`, { data: {}, expiresAt: now + 1e6, createdAt: now }, 1e6);
    }
    assert.equal(store.size, 10);
    assert.equal(store.get("keep1"), undefined);
    assert.ok(store.get("keep2"));
  });

  test("maxEntries below 1 is a RangeError", () => {
    assert.throws(() => new MapStore({ maxEntries: 0 }), RangeError);
    assert.throws(() => new MapStore({ maxEntries: Number.NaN }), RangeError);
  });

  test("non-JSON data (cyclic object, BigInt) throws SessionSerializationError", () => {
    const store = new MapStore();
    store.set("s", record({ ok: true }), 60_000);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const data of [{ cyclic }, { big: 10n }]) {
      let caught: unknown;
      try {
        store.set("s", record(data), 60_000);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof SessionSerializationError, `got ${String(caught)}`);
      assert.ok(caught instanceof UnisessionError);
      assert.equal(caught.code, "ERR_SESSION_SERIALIZATION");
      assert.ok(caught.cause instanceof TypeError, "the JSON error is the cause");
      assert.deepEqual(
        store.get("s")?.data,
        { ok: true },
        "a failed set must not change the store",
      );
    }
  });

  test("non-JSON data through the gateway stays a SessionSerializationError (not StoreError)", async () => {
    let caught: unknown;
    await gateway(new MapStore()).set("s", record({ big: 1n }), 1000).catch((e) => (caught = e));
    assert.ok(caught instanceof SessionSerializationError, `got ${String(caught)}`);
  });

  test("an injected now() clock expires records on read", () => {
    let now = 1_000_000;
    const store = new MapStore({ now: () => now });
    store.set("a", { data: { v: 1 }, expiresAt: now + 100, createdAt: now }, 100);
    now += 99;
    assert.deepEqual(store.get("a")?.data, { v: 1 });
    assert.equal(store.size, 1);
    now += 1;
    assert.equal(store.get("a"), undefined, "expired at exactly ttl ms");
    assert.equal(store.size, 1, "held until cleanup, which reports it");
  });

  test("a TTL computed from expiresAt just before the clock ticked: the record expires at its expiresAt", () => {
    // The manager reads the clock, computes expiresAt and ttl = expiresAt - now, and the store
    // reads the clock again: a millisecond may have turned in between.
    const start = 1_767_225_600_000;
    let now = start;
    const store = new MapStore({ now: () => now });
    const expiresAt = start + 1000;
    now += 3; // the clock ticked on before set()
    store.set("late", { data: { v: 1 }, expiresAt, createdAt: start }, expiresAt - start);
    store.set(
      "user",
      { data: { v: 2 }, expiresAt, createdAt: start, user: "u" },
      expiresAt - start,
    );
    // Beyond 10 ms the TTL is not about this expiresAt: it rules; so it does for a record that
    // states it is due already.
    store.set("ttl", { data: { v: 3 }, expiresAt: start + 500, createdAt: start }, 1000);
    store.set("due", { data: { v: 4 }, expiresAt: now, createdAt: start }, 1);
    assert.equal(store.get("due")?.data.v, 4, "due by its expiresAt, not by its TTL");
    now = expiresAt - 1;
    assert.deepEqual(store.get("late"), { data: { v: 1 }, expiresAt, createdAt: start });
    assert.equal(store.get("user")?.data.v, 2);
    now = expiresAt;
    assert.equal(store.get("late"), undefined, "expired at the expiresAt it states");
    assert.equal(store.get("user"), undefined, "the JSON shape too");
    assert.equal(store.get("ttl")?.expiresAt, start + 500, "read back as written");
    now = start + 3 + 1000;
    assert.equal(store.get("ttl"), undefined, "expired at now + ttl");
  });

  test("list() also yields expired records (cleanup decides by expiresAt)", () => {
    let now = 1_000_000;
    const store = new MapStore({ now: () => now });
    store.set("old", record({}), 10);
    store.set("new", record({}), 60_000);
    now += 1000;
    assert.deepEqual([...store.list()].map(([id]) => id).sort(), ["new", "old"]);
  });

  /**
   * MapStore against a Map of JSON copies, over random sequences of set, update, delete, get,
   * list and takeExpired. Ids ending alike share a slot of the store's cache of decoded records;
   * "=" is what the compact shape holds for a client id that is the record's own; "SELF" stands
   * for that id. `narrow` draws from fewer values, so that records held as equal strings come up.
   */
  function agreesWithModel(narrow: boolean) {
    const IDS = narrow ? ["xa1", "ya1"] : ["xa1", "ya1", "=", "cid:xa1", "cid:ya1"];
    type Rec = Omit<StoredRecord, "data"> & { data: unknown };
    const own = narrow
      ? fc.constantFrom(undefined, "SELF")
      : fc.constantFrom(undefined, "SELF", "=", "", "xa1", "cid:ya1");
    const data = narrow
      ? fc.constant<unknown>({})
      : fc.constantFrom<unknown>({}, { n: 1 }, { a: { b: 1 } }, [1]);
    const ttl = narrow ? fc.constant(1000) : fc.constantFrom(1, 5, 1000, 2 ** 48);
    const created = narrow
      ? fc.constant<number | "now">("now")
      : fc.constantFrom<number | "now">("now", 0, 2 ** 47 - 1, 2 ** 47, -1, 1.5);
    const op = fc.oneof(
      fc.record({
        op: fc.constant("set" as const),
        id: fc.constantFrom(...IDS),
        fields: fc.record({ data, ttl, created, clientId: own, sid: own }),
      }),
      fc.record({
        op: fc.constant("update" as const),
        id: fc.constantFrom(...IDS),
        change: fc.oneof(
          fc.record({ data }),
          fc.record({ clientId: own }),
          fc.record({ renew: ttl }),
          fc.constant({ skip: true }),
        ),
      }),
      fc.record({
        op: fc.constantFrom("delete" as const, "get" as const),
        id: fc.constantFrom(...IDS),
      }),
      fc.record({ op: fc.constant("list" as const) }),
      fc.record({ op: fc.constant("advance" as const), ms: fc.constantFrom(1, 10, 2000) }),
      fc.record({
        op: fc.constant("take" as const),
        prefix: fc.constantFrom(undefined, "cid:"),
        by: fc.constantFrom(0, 5, 1000),
      }),
    );
    const copy = <T>(x: T): T => JSON.parse(JSON.stringify(x));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let now = 1_767_225_600_000;
        const store = new MapStore({ now: () => now });
        const model = new Map<string, Rec>();
        const live = (id: string) => {
          const r = model.get(id);
          return r && r.expiresAt > now ? r : undefined;
        };
        const self = (v: string | undefined, id: string) => v === "SELF" ? id : v;
        for (const o of ops) {
          if (o.op === "set") {
            const { data, ttl, created, clientId, sid } = o.fields;
            const r = {
              data: copy(data),
              expiresAt: now + ttl,
              createdAt: created === "now" ? now : created,
            } as Rec;
            if (self(clientId, o.id) !== undefined) r.clientId = self(clientId, o.id);
            if (self(sid, o.id) !== undefined) r.sid = self(sid, o.id);
            store.set(o.id, copy(r) as StoredRecord, ttl);
            model.set(o.id, r);
          } else if (o.op === "update") {
            const c = o.change as {
              data?: unknown;
              clientId?: string;
              renew?: number;
              skip?: true;
            };
            const mutate = (cur: Rec): Rec | undefined => {
              if (c.skip) return undefined;
              if ("data" in c) cur.data = copy(c.data);
              if ("clientId" in c) {
                const v = self(c.clientId, o.id);
                if (v === undefined) delete cur.clientId;
                else cur.clientId = v;
              }
              if (c.renew !== undefined) cur.expiresAt = now + c.renew;
              return cur;
            };
            const before = live(o.id);
            const want = before && mutate(copy(before));
            const got = store.update(o.id, mutate as never);
            assert.deepEqual(got && copy(got), want, `update ${o.id} ${JSON.stringify(c)}`);
            if (want) model.set(o.id, want);
          } else if (o.op === "delete") {
            store.delete(o.id);
            model.delete(o.id);
          } else if (o.op === "get") assert.deepEqual(store.get(o.id), live(o.id), `get ${o.id}`);
          else if (o.op === "advance") now += o.ms;
          else if (o.op === "list") {
            assert.deepEqual(new Map(store.list()), model, "list");
          } else if (o.op === "take") {
            const by = now + o.by;
            const gone = new Set([...model].filter(([, r]) => r.expiresAt <= by).map(([id]) => id));
            for (const id of [...gone]) {
              const clientId = model.get(id)!.clientId;
              if (o.prefix && clientId && clientId !== id) {
                const m = model.get(o.prefix + clientId);
                if (m && m.expiresAt > by && m.sid === id) gone.add(o.prefix + clientId);
              }
            }
            for (const [id, r] of [...store.takeExpired(by, o.prefix)].flat()) {
              const { data: _, ...withoutData } = model.get(id)!;
              assert.deepEqual(
                r,
                r.data === undefined ? withoutData : model.get(id),
                `taken ${id}`,
              );
            }
            for (const id of gone) model.delete(id);
            assert.deepEqual(new Map(store.list()), model, "after takeExpired");
          }
        }
        for (const id of IDS) assert.deepEqual(store.get(id), live(id), `at the end: ${id}`);
      }),
      { numRuns: 2000, seed: 28 },
    );
  }

  test("agrees with a Map of JSON copies (property: 2,000 random sequences of operations)", () => {
    agreesWithModel(false);
  });

  test("agrees with a Map of JSON copies when records are held as equal strings (property)", () => {
    agreesWithModel(true);
  });

  test("clear() removes every record", () => {
    const store = new MapStore();
    store.set("a", record({}), 60_000);
    store.clear();
    assert.equal(store.size, 0);
    assert.equal(store.get("a"), undefined);
  });
});

// ----------------------------------------------------------------------------- StoreGateway

describe("StoreGateway", () => {
  /** A store whose methods never settle (a promise that never resolves: no timer left behind). */
  const hanging = (): Store => ({
    get: () => new Promise<never>(() => {}),
    set: () => new Promise<never>(() => {}),
    delete: () => new Promise<never>(() => {}),
  });

  test("a store call that never settles fails with StoreError after timeoutMs", async () => {
    const gw = new StoreGateway(hanging(), { timeoutMs: 50, onCorrupt() {} });
    const started = Date.now();
    const err = await rejectsWithStoreError(gw.get("secret-session-id"));
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 40, `timed out too early (${elapsed} ms)`);
    assert.ok(elapsed < 5000, `timed out too late (${elapsed} ms)`);
    assert.match(err.message, /50 ms/);
    assert.ok(!err.message.includes("secret-session-id"), "error messages never contain ids");
    await rejectsWithStoreError(gw.set("id", record({}), 1000));
    await rejectsWithStoreError(gw.delete("id"));
    await rejectsWithStoreError(gw.update("id", (cur) => cur));
  });

  test("a synchronous store's get: its record, its throw as StoreError, its corrupt record as none, a promise it returns after all awaited with the timeout", async () => {
    const rec = record({ n: 1 });
    let answer: unknown = rec;
    let corrupt = 0;
    const store: Store = {
      synchronous: true,
      get: () => {
        if (answer instanceof Error) throw answer;
        return answer as StoredRecord;
      },
      set() {},
      delete() {},
    };
    const gw = new StoreGateway(store, { timeoutMs: 50, onCorrupt: () => corrupt++ });
    assert.deepEqual(await gw.get("a"), rec);
    answer = undefined;
    assert.equal(await gw.get("a"), undefined);
    answer = { data: "not an object", expiresAt: 1, createdAt: 1 };
    assert.equal(await gw.get("a"), undefined);
    assert.equal(corrupt, 1);
    answer = new Error("disk gone");
    const err = await rejectsWithStoreError(gw.get("a"));
    assert.equal((err.cause as Error).message, "disk gone");
    answer = Promise.resolve(rec); // declared synchronous, answered a promise: still read
    assert.deepEqual(await gw.get("a"), rec);
    answer = new Promise<never>(() => {}); // ... and one that never settles times out
    assert.match((await rejectsWithStoreError(gw.get("a"))).message, /50 ms/);
  });

  test("a store get that throws synchronously fails with StoreError and the cause", async () => {
    const boom = new Error("ECONNREFUSED");
    const gw = gateway({
      get() {
        throw boom;
      },
      set() {},
      delete() {},
    });
    const err = await rejectsWithStoreError(gw.get("id"));
    assert.equal(err.cause, boom);
  });

  test("a store get that rejects fails with StoreError and the cause", async () => {
    const boom = new Error("ETIMEDOUT");
    const gw = gateway({ get: () => Promise.reject(boom), set() {}, delete() {} });
    const err = await rejectsWithStoreError(gw.get("id"));
    assert.equal(err.cause, boom);
  });

  test("update() on a store without update(): the TTL it writes is by the gateway's clock", async () => {
    const now = 1_767_225_600_000; // not the wall clock
    const ttls: number[] = [];
    const map = new Map<string, StoredRecord>();
    const store: Store = {
      get: (id) => map.get(id),
      set(id, rec, ttl) {
        map.set(id, rec);
        ttls.push(ttl);
      },
      delete: (id) => void map.delete(id),
    };
    map.set("s", { data: { n: 1 }, expiresAt: now + 5000, createdAt: now });
    const gw = new StoreGateway(store, { timeoutMs: 1000, onCorrupt() {}, now: () => now });
    await gw.update("s", (cur) => ({ ...cur, data: { n: 2 }, expiresAt: now + 60_000 }));
    assert.deepEqual(ttls, [60_000]);
    assert.equal(map.get("s")?.data.n, 2);
  });

  test("a store set/delete that fails is a StoreError with the cause", async () => {
    const boom = new Error("READONLY");
    const gw = gateway({
      get: () => undefined,
      set: () => Promise.reject(boom),
      delete() {
        throw boom;
      },
    });
    assert.equal((await rejectsWithStoreError(gw.set("id", record({}), 1000))).cause, boom);
    assert.equal((await rejectsWithStoreError(gw.delete("id"))).cause, boom);
  });

  test("corrupt records read as undefined and call onCorrupt", async () => {
    const now = Date.now();
    const corrupt: unknown[] = [
      { data: "x", expiresAt: now + 1000, createdAt: now },
      { data: null, expiresAt: now + 1000, createdAt: now },
      { data: [1, 2], expiresAt: now + 1000, createdAt: now },
      { data: {}, createdAt: now },
      { data: {}, expiresAt: "soon", createdAt: now },
      { data: {}, expiresAt: now + 1000 },
      { data: {}, expiresAt: now + 1000, createdAt: now, flash: "notice" },
      "a string",
      42,
      true,
    ];
    for (const value of corrupt) {
      const reports: string[] = [];
      const gw = gateway({ get: () => value as StoredRecord, set() {}, delete() {} }, (op) => {
        reports.push(op);
      });
      assert.equal(await gw.get("id"), undefined, `accepted ${JSON.stringify(value)}`);
      assert.equal(reports.length, 1, `onCorrupt not called for ${JSON.stringify(value)}`);
    }
  });

  test("a missing record (undefined or null) is not reported as corrupt", async () => {
    for (const value of [undefined, null]) {
      let reports = 0;
      const gw = gateway(
        { get: () => Promise.resolve(value), set() {}, delete() {} },
        () => reports++,
      );
      assert.equal(await gw.get("id"), undefined);
      assert.equal(reports, 0);
    }
  });

  test("update() of a corrupt record does not call mutate and writes nothing", async () => {
    for (const withUpdate of [false, true]) {
      const map = new Map<string, unknown>([["id", { data: "x", expiresAt: 1, createdAt: 1 }]]);
      const store = toStore(map);
      // Without update(): the gateway's own get → mutate → set under its per-id lock.
      const base: Store = withUpdate ? store : {
        get: (id) => store.get(id),
        set: (id, r, ttl) => store.set(id, r, ttl),
        delete: (id) => store.delete(id),
      };
      let calls = 0;
      const result = await gateway(base).update("id", (cur) => {
        calls++;
        return cur;
      });
      assert.equal(result, undefined);
      assert.equal(calls, 0);
      assert.deepEqual(map.get("id"), { data: "x", expiresAt: 1, createdAt: 1 });
    }
  });

  test("update() uses the store's own update() when it has one", async () => {
    const store = new MapStore();
    store.set("id", record({ n: 1 }), 60_000);
    let used = 0;
    const own = store.update.bind(store);
    const wrapped: Store = {
      get: (id) => store.get(id),
      set: (id, r, ttl) => store.set(id, r, ttl),
      delete: (id) => store.delete(id),
      update: (id, mutate) => {
        used++;
        return own(id, mutate);
      },
    };
    const next = await gateway(wrapped).update("id", (cur) => ({ ...cur, data: { n: 2 } }));
    assert.equal(used, 1);
    assert.equal(next?.data.n, 2);
  });

  // cleanup() reads records through gateway.list(); get() validates records, list() does not,
  // so a corrupt stored value (here `null` in a shared Map) reaches the manager's expiry check.
  test("list() never yields a record that is not a StoredRecord", async () => {
    const map = new Map<string, unknown>([
      ["good", record({})],
      ["null", null],
      ["bad", { data: "x" }],
    ]);
    const yielded: [string, unknown][] = [];
    for await (const entry of gateway(toStore(map)).list()) yielded.push(entry);
    const invalid = yielded.filter(([, rec]) => !isStoredRecord(rec)).map(([id]) => id);
    assert.deepEqual(invalid, [], `list() yielded corrupt records: ${invalid.join(", ")}`);
    assert.ok(yielded.some(([id]) => id === "good"));
  });

  test("listSync() (cleanup of synchronous stores) skips corrupt records too; async stores get none", () => {
    const map = new Map<string, unknown>([["good", record({})], ["null", null], ["bad", {}]]);
    const sync = gateway({
      synchronous: true,
      get: (id: string) => map.get(id),
      set() {},
      delete() {},
      list: () => map.entries(),
    } as unknown as Store).listSync(Date.now());
    assert.equal(sync!.taken, false);
    assert.deepEqual([...sync!.batches].flat().map(([id]) => id), ["good"]);
    assert.equal(gateway(toStore(koaRedisStore())).listSync(Date.now()), undefined);
  });

  test("listSync() through takeExpired(): records without data pass, corrupt ones are skipped", () => {
    const now = Date.now();
    const entries: [string, unknown][] = [
      ["header", { expiresAt: now, createdAt: now, clientId: "c" }],
      ["whole", record({ a: 1 })],
      ["bad data", { data: "x", expiresAt: now, createdAt: now }],
      ["bad time", { expiresAt: "soon", createdAt: now }],
      ["bad user", { expiresAt: now, createdAt: now, user: 7 }],
      ["null", null],
    ];
    let asked: number | undefined;
    const listed = gateway({
      synchronous: true,
      get: () => undefined,
      set() {},
      delete() {},
      list: () => {
        throw new Error("list() must not be used when takeExpired() exists");
      },
      takeExpired: (by: number) => {
        asked = by;
        return [entries.slice(0, 2), [], entries.slice(2)];
      },
    } as unknown as Store).listSync(now);
    assert.equal(listed!.taken, true);
    assert.deepEqual([...listed!.batches].flat().map(([id]) => id), ["header", "whole"]);
    assert.equal(asked, now);
  });

  test("listSync() through a takeExpired() that returns records, not batches of them: a StoreError naming the shape", () => {
    const now = Date.now();
    const listed = gateway({
      synchronous: true,
      get: () => undefined,
      set() {},
      delete() {},
      takeExpired: () => [["s", { expiresAt: now, createdAt: now }]],
    } as unknown as Store).listSync(now);
    let caught: unknown;
    try {
      for (const _ of listed!.batches) { /* nothing */ }
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof StoreError, "a StoreError");
    assert.ok(caught.cause instanceof TypeError);
    assert.match((caught.cause as Error).message, /batches/);
  });

  test("cleanup() on a synchronous store whose delete throws or rejects: a StoreError, no unhandled rejection", async () => {
    for (const failure of ["throws", "rejects"] as const) {
      const { m } = await expiredThrough((inner) => ({
        list: () => inner.list(),
        delete(id: string) {
          if (failure === "throws") throw new Error("disk on fire");
          inner.delete(id);
          return Promise.reject(new Error("disk on fire"));
        },
      }), 3);
      await assert.rejects(m.cleanup(), StoreError, failure);
    }
  });

  /**
   * A manager over a MapStore seen through a synchronous store whose other methods `methods`
   * adds or replaces (it gets the inner store), with `sessions` sessions created (each with its
   * client mapping) and a clock past their expiry.
   */
  async function expiredThrough(methods: (inner: MapStore) => Partial<Store>, sessions: number) {
    // Browsers that visited before their session was made: each has a client mapping.
    const made = await wrappedMapStore(methods, sessions, { visited: true });
    assert.equal(made.inner.size, 2 * sessions, "each session and its client mapping");
    made.tick(made.m.maxAge + 1);
    return made;
  }

  test("cleanup() through a takeExpired() that does not take the client mappings: it removes them itself", async () => {
    // No mapping prefix passed on: the store takes the sessions only.
    const { m, inner, ids, destroyed } = await expiredThrough((inner) => ({
      takeExpired: (by) => inner.takeExpired(by),
    }), 3);
    assert.equal(await m.cleanup(), 3);
    assert.deepEqual(destroyed.sort(), ids.sort());
    assert.equal(inner.size, 0, "each client mapping read back and removed");
  });

  test("cleanup() does not read back the client mappings the store took along with their sessions", async () => {
    const reads: string[] = [];
    const { m, inner, ids, destroyed } = await expiredThrough((inner) => ({
      get: (id: string) => {
        reads.push(id);
        return inner.get(id);
      },
      takeExpired: (by, prefix) => inner.takeExpired(by, prefix),
    }), 3);
    reads.length = 0;
    assert.equal(await m.cleanup(), 3);
    assert.deepEqual(destroyed.sort(), ids.sort());
    assert.equal(inner.size, 0, "sessions and mappings gone");
    assert.deepEqual(reads, [], "no mapping read back");
  });

  test("cleanup() whose taken records fail after a session: that session is still reported and its mapping removed", async () => {
    const { m, inner, ids, destroyed } = await expiredThrough((inner) => ({
      *takeExpired(by: number) {
        for (const batch of inner.takeExpired(by)) { // sessions only: mappings stay
          yield batch;
          if (batch.length > 0) throw new Error("disk on fire"); // after the session's batch
        }
      },
    }), 1);
    await assert.rejects(m.cleanup(), StoreError);
    assert.deepEqual(destroyed, ids);
    assert.equal(inner.size, 0, "the session taken, its mapping removed");
  });

  test("list() without store.list() is a TypeError", async () => {
    const gw = gateway({ get() {}, set() {}, delete() {} } as unknown as Store);
    await assert.rejects(async () => {
      for await (const _ of gw.list()) { /* nothing */ }
    }, TypeError);
  });

  test("synchronous stores are detected", () => {
    assert.equal(gateway(new MapStore()).synchronous, true);
    assert.equal(gateway(toStore(koaRedisStore())).synchronous, false);
  });
});

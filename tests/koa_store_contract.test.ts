// The koa-generic-session / koa-session-minimal store contract: `get`, `set` and `destroy` may
// answer with a promise, a thunk (`(cb) => cb(err, value)`), a generator object, or be async
// functions (the originals run every answer through co). Each shape is used through the real
// manager; failures of every shape are StoreErrors with the store's error as cause.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSessions, type SessionManager } from "../mod.ts";
import type { KoaStyleStore } from "../src/store.ts";
import { rejectsWithStoreError, request } from "./helpers/store_scenarios.ts";

const KEY = "k".repeat(32);
const quiet = { warn() {} };

/** A node-style callback, as thunks receive it. */
type Callback = (err: unknown, value?: unknown) => void;
/** A thunk: calls back once with `(err, value)`. */
type Thunk = (cb: Callback) => void;

/** A promise that resolves `value` after a turn of the event loop, like a network round trip. */
function later<T>(value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), 0));
}

/** A thunk that calls back `value` after a turn of the event loop. */
function laterThunk(value: unknown): Thunk {
  return (cb) => void setTimeout(() => cb(null, value), 0);
}

function manager(store: KoaStyleStore, storeTimeout?: number): SessionManager {
  return createSessions({ store, keys: [KEY], logger: quiet, client: false, storeTimeout });
}

/**
 * Through the manager: a session written (`n: 1`) is in the map, read back and rewritten
 * (`n: 2`), read by id, then destroyed (gone from the map).
 */
async function roundTrip(store: KoaStyleStore, map: Map<string, unknown>): Promise<void> {
  const m = manager(store);
  let r = await request(m, null, (s) => void (s.session.n = 1));
  const id = r.state.id!;
  assert.deepEqual((map.get(id) as { data: unknown } | undefined)?.data, { n: 1 });
  r = await request(m, r.cookie, (s) => {
    assert.equal(s.session.n, 1);
    s.session.n = 2;
  });
  assert.equal(r.state.id, id);
  assert.deepEqual(await m.getById(id), { n: 2 });
  await request(m, r.cookie, (s) => void (s.destroyed = true));
  assert.equal(map.has(id), false);
  assert.equal(await m.getById(id), undefined);
}

/** A store over `map` whose methods return thunks (koa-generic-session's first stores). */
function thunkStore(map: Map<string, unknown>) {
  return {
    get: (sid: string): Thunk => (cb) => void setTimeout(() => cb(null, map.get(sid)), 0),
    set: (sid: string, sess: unknown, _ttl: number): Thunk => (cb) => {
      map.set(sid, sess);
      cb(null);
    },
    destroy: (sid: string): Thunk => (cb) => {
      map.delete(sid);
      cb(null);
    },
  };
}

describe("koa-generic-session store contract: every answer co accepts", () => {
  test("thunk store: set → get → destroy through the manager", async () => {
    const map = new Map<string, unknown>();
    await roundTrip(thunkStore(map), map);
  });

  test("generator store (yielding a promise and a thunk): set → get → destroy through the manager", async () => {
    const map = new Map<string, unknown>();
    const store = {
      *get(sid: string): Generator<unknown, unknown, unknown> {
        const found = yield later(map.has(sid));
        return found ? yield laterThunk(map.get(sid)) : undefined;
      },
      *set(sid: string, sess: unknown, _ttl: number): Generator<unknown, void, unknown> {
        yield later(null);
        map.set(sid, yield laterThunk(sess));
      },
      *destroy(sid: string): Generator<unknown, void, unknown> {
        yield laterThunk(null);
        map.delete(sid);
      },
    };
    await roundTrip(store, map);
  });

  test("async function store: set → get → destroy through the manager", async () => {
    const map = new Map<string, unknown>();
    const store = {
      async get(sid: string) {
        return await later(map.get(sid));
      },
      async set(sid: string, sess: unknown, _ttl: number) {
        map.set(sid, await later(sess));
      },
      async destroy(sid: string) {
        await later(null);
        map.delete(sid);
      },
    };
    await roundTrip(store, map);
  });

  test("generator yielding nested generators, arrays and objects of promises and thunks", async () => {
    const map = new Map<string, unknown>();
    const store = {
      ...thunkStore(map),
      *get(sid: string): Generator<unknown, unknown, unknown> {
        function* inner(): Generator<unknown, unknown, unknown> {
          return yield laterThunk(map.get(sid));
        }
        const [a, b, c] = (yield [later(1), laterThunk(2), inner()]) as unknown[];
        const o = (yield { d: later(4), e: laterThunk(5), f: 6 }) as Record<string, number>;
        assert.deepEqual([a, b, o.d, o.e, o.f], [1, 2, 4, 5, 6]);
        return c;
      },
    };
    await roundTrip(store, map);
  });
});

describe("koa-generic-session store contract: generator functions", () => {
  test("a yielded generator function, native or transpiled (as regenerator marks it), is run, not called as a thunk", async () => {
    const map = new Map<string, unknown>();
    function* native(): Generator<unknown, unknown, unknown> {
      return yield later("n");
    }
    // regenerator's mark(): the function's constructor stands in for GeneratorFunction.
    const transpiled = function () {
      return native();
    };
    function GeneratorFunctionStandIn() {}
    GeneratorFunctionStandIn.displayName = "GeneratorFunction";
    Object.setPrototypeOf(transpiled, { constructor: GeneratorFunctionStandIn });
    const store = {
      ...thunkStore(map),
      *get(sid: string): Generator<unknown, unknown, unknown> {
        assert.deepEqual(yield [native, transpiled], ["n", "n"]);
        return map.get(sid);
      },
    };
    await roundTrip(store, map);
  });
});

describe("koa-generic-session store contract: failures are StoreErrors", () => {
  test("a thunk calling back an error: the read and the write reject with it as cause", async () => {
    const map = new Map<string, unknown>();
    const boom = new Error("connection lost");
    const store = { ...thunkStore(map) };
    const m = manager(store);
    const r = await request(m, null, (s) => void (s.session.n = 1));
    store.get = () => (cb) => cb(boom);
    store.set = () => (cb) => cb(boom);
    const readErr = await rejectsWithStoreError(m.getById(r.state.id!));
    assert.equal(readErr.cause, boom);
    const state = m.open(null);
    state.session.n = 2;
    const writeErr = await rejectsWithStoreError(m.commit(state));
    assert.equal(writeErr.cause, boom);
  });

  test("a thunk that throws synchronously rejects with what it threw", async () => {
    const boom = new Error("thrown in the thunk");
    const store = {
      ...thunkStore(new Map()),
      get: (): Thunk => () => {
        throw boom;
      },
    };
    const err = await rejectsWithStoreError(manager(store).getById("a".repeat(24)));
    assert.equal(err.cause, boom);
  });

  test("a generator that throws (also after a yield) rejects with what it threw", async () => {
    const boom = new Error("thrown in the generator");
    const store = {
      ...thunkStore(new Map()),
      // deno-lint-ignore require-yield
      *get(): Generator<unknown, unknown, unknown> {
        throw boom;
      },
      *set(): Generator<unknown, void, unknown> {
        yield later(null);
        throw boom;
      },
    };
    const m = manager(store);
    assert.equal((await rejectsWithStoreError(m.getById("a".repeat(24)))).cause, boom);
    const state = m.open(null);
    state.session.n = 1;
    assert.equal((await rejectsWithStoreError(m.commit(state))).cause, boom);
  });

  test("a yielded promise or thunk that fails is thrown into the generator, which may catch it", async () => {
    const map = new Map<string, unknown>();
    const caught: unknown[] = [];
    const store = {
      ...thunkStore(map),
      *get(sid: string): Generator<unknown, unknown, unknown> {
        try {
          yield Promise.reject(new Error("first replica down"));
        } catch (err) {
          caught.push((err as Error).message);
        }
        try {
          yield (cb: Callback) => cb(new Error("second replica down"));
        } catch (err) {
          caught.push((err as Error).message);
        }
        return map.get(sid);
      },
    };
    await roundTrip(store, map);
    assert.deepEqual(caught.slice(0, 2), ["first replica down", "second replica down"]);
  });

  test("a thunk calling back twice: the first answer wins, nothing crashes", async () => {
    const map = new Map<string, unknown>();
    const store = {
      get: (sid: string): Thunk => (cb) => {
        cb(null, map.get(sid));
        cb(null, undefined);
        cb(new Error("late failure"));
      },
      set: (sid: string, sess: unknown): Thunk => (cb) => {
        map.set(sid, sess);
        cb(null);
        cb(new Error("late failure"));
        throw new Error("thrown after calling back");
      },
      destroy: (sid: string): Thunk => (cb) => {
        map.delete(sid);
        cb(null);
        setTimeout(() => cb(new Error("late failure")), 0);
      },
    };
    await roundTrip(store, map);
    // A failure first wins too: the later success is ignored.
    const boom = new Error("first");
    store.get = () => (cb) => {
      cb(boom);
      cb(null, { data: {}, expiresAt: Date.now() + 60_000, createdAt: Date.now() });
    };
    const err = await rejectsWithStoreError(manager(store).getById("a".repeat(24)));
    assert.equal(err.cause, boom);
  });

  test("a generator yielding an unsupported value (a number, null) rejects with co's TypeError", async () => {
    for (const [value, first] of [[42, true], [null, true], [42, false], [null, false]]) {
      const store = {
        ...thunkStore(new Map()),
        *get(): Generator<unknown, unknown, unknown> {
          if (!first) yield later(null); // then the bad value arrives in a `then` callback
          yield value;
          return undefined;
        },
      };
      const err = await rejectsWithStoreError(manager(store).getById("a".repeat(24)));
      assert.ok(err.cause instanceof TypeError, `cause: ${String(err.cause)}`);
      assert.match(
        (err.cause as TypeError).message,
        new RegExp(`may only yield a function, promise, generator, array, or object.*"${value}"`),
      );
    }
  });

  test("a yielded value that cannot even be named (no prototype) rejects, without hanging", async () => {
    const store = {
      ...thunkStore(new Map()),
      *get(): Generator<unknown, unknown, unknown> {
        yield later(null);
        yield Object.create(null);
        return undefined;
      },
    };
    const err = await rejectsWithStoreError(manager(store, 5_000).getById("a".repeat(24)));
    assert.ok(err.cause instanceof TypeError, `cause: ${String(err.cause)}`);
  });

  test("a thunk that never calls back fails after storeTimeout instead of hanging", async () => {
    const store = { ...thunkStore(new Map()), get: (): Thunk => () => {} };
    const started = Date.now();
    const err = await rejectsWithStoreError(manager(store, 50).getById("a".repeat(24)));
    assert.match(err.message, /did not answer within 50 ms/);
    assert.ok(Date.now() - started < 5_000);
  });

  test("plain values, null and undefined answers are taken as they are", async () => {
    const map = new Map<string, unknown>();
    const store = {
      get: (sid: string) => map.get(sid) ?? null,
      set: (sid: string, sess: unknown) => void map.set(sid, sess),
      destroy: (sid: string) => map.delete(sid),
    };
    await roundTrip(store, map);
  });
});

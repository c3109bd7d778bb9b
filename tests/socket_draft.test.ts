/**
 * The `withSession` steps the socket adapters share (src/socket_draft.ts), on a real manager and
 * MapStore: which top-level keys a handler's draft changed, for every kind of value.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSessions, MapStore, StoreError } from "../mod.ts";
import { adapterSteps } from "../src/manager.ts";
import { FewKeys, snapshot, type SocketSessionHost, withSessionOn } from "../src/socket_draft.ts";

type Data = Record<string, unknown>;

/**
 * A socket host on manager `m` whose socket follows session `sid`, its handler's `ctx.session`
 * the draft; `on` overrides what a test watches (`gone`, `written`).
 */
function hostFor(
  m: unknown,
  sid: () => string,
  on: Partial<Pick<SocketSessionHost<object>, "gone" | "written">> = {},
): SocketSessionHost<object> {
  return {
    manager: m as never,
    sealed: false,
    ownWrites: new Set(),
    sealedData: () => undefined,
    context: (_b, _sid, draft) => ({ session: draft }),
    gone: on.gone ?? (() => {}),
    written: on.written ?? (() => {}),
    currentId: sid,
  };
}

/**
 * A manager on a MapStore with one session, and a socket host on it. `copies`: the store's `get`
 * is replaced on the instance, so the manager reads through it and copies what it reads, as for
 * any other store (a MapStore's own decoded record is read in place).
 */
async function withSessionHost(copies = false) {
  const store = new MapStore();
  const m = createSessions({ store, keys: ["k".repeat(32)] });
  const state = m.open(null);
  Object.assign(state.session, {
    same: "a",
    n: 1,
    untouched: true,
    nul: null,
    obj: { x: 1 },
    arr: [1, 2],
    zero: 0,
    toPrimitive: { y: 1 },
    deleted: "x",
    toUndefined: 1,
    deep: { a: { b: [1, { c: 2 }] } },
    deepChanged: { a: { b: [1, { c: 2 }] } },
    withUndefined: { k: 1 },
    toDate: "x",
    holdsDate: { d: "1970-01-01T00:00:00.000Z" },
    reordered: { a: 1, b: 2 },
  });
  await m.commit(state);
  const sid = state.id!;
  const written: object[] = [];
  assert.equal(adapterSteps.readsExact(m as never), true, "a MapStore's records are read in place");
  if (copies) {
    const get = store.get.bind(store);
    store.get = (id) => get(id);
    assert.equal(adapterSteps.readsExact(m as never), false, "read through the instance's get");
  }
  const host = hostFor(m, () => sid, { written: (_sid, data) => void written.push(data) });
  return { m, sid, host, written };
}

/** The tests of both ways a host reads the store. */
function sharedTests(copies: boolean): void {
  test("only the top-level keys the handler changed are written, whatever their values", async () => {
    const { m, sid, host, written } = await withSessionHost(copies);
    await withSessionOn(host, {}, async ({ session }: { session: Data }) => {
      // Another writer (an HTTP request) changes every key while the handler runs.
      await m.update(sid, (d: Data) => {
        for (const k of Object.keys(d)) d[k] = "http";
      });
      session.same = "a"; // the value read: unchanged
      session.n = 2;
      session.nul = {}; // null → object
      (session.obj as Data).x = 1; // the value read: unchanged
      (session.arr as number[]).push(3); // a nested change
      session.zero = -0; // JSON writes 0: unchanged
      session.added = NaN; // JSON writes null
      session.toPrimitive = 5; // object → number
      delete session.deleted;
      session.toUndefined = undefined; // JSON drops it: removed
      ((session.deep as Data).a as { b: Data[] }).b[1]!.c = 2; // the value read: unchanged
      ((session.deepChanged as Data).a as { b: Data[] }).b[1]!.c = 3;
      (session.withUndefined as Data).extra = undefined; // JSON drops it: unchanged
      session.toDate = new Date(0); // JSON writes its string
      (session.holdsDate as Data).d = new Date(0); // the same JSON: unchanged
      session.reordered = { b: 2, a: 1 }; // other JSON: changed
    }, undefined);
    assert.deepEqual(await m.getById(sid), {
      same: "http",
      n: 2,
      untouched: "http",
      nul: {},
      obj: "http",
      arr: [1, 2, 3],
      zero: "http",
      toPrimitive: 5,
      added: null,
      deep: "http",
      deepChanged: { a: { b: [1, { c: 3 }] } },
      withUndefined: "http",
      toDate: "1970-01-01T00:00:00.000Z",
      holdsDate: "http",
      reordered: { b: 2, a: 1 },
    });
    assert.equal(written.length, 1);
  });

  test("a handler that changes nothing writes nothing", async () => {
    const { m, host, written } = await withSessionHost(copies);
    let events = 0;
    m.on("sessionSet", () => events++);
    await withSessionOn(host, {}, ({ session }: { session: Data }) => {
      session.same = "a";
      session.zero = 0;
      session.obj = { x: 1 }; // a new object with the same JSON
      session.toUndefined = 1;
      session.deep = { a: { b: [1, { c: 2 }] } };
      session.withUndefined = { k: 1, u: undefined, f: () => 1 };
    }, undefined);
    assert.equal(events, 0);
    assert.equal(written.length, 0);
  });

  test("the draft is the handler's own: what it changes and throws, or changes later, is not read again", async () => {
    const { m, sid, host, written } = await withSessionHost(copies);
    const original = await m.getById(sid);
    await assert.rejects(
      withSessionOn(host, {}, ({ session }: { session: Data }) => {
        (session.obj as Data).x = 99;
        (session.arr as number[]).push(9);
        ((session.deep as Data).a as { b: Data[] }).b[1]!.c = 7;
        throw new Error("boom");
      }, undefined),
      /boom/,
    );
    let kept: Data | undefined;
    await withSessionOn(host, {}, ({ session }: { session: Data }) => {
      assert.deepEqual(session.obj, { x: 1 });
      assert.deepEqual(session.arr, [1, 2]);
      kept = session.deep as Data;
    }, undefined);
    // Changed after the handler returned: not a change of the session.
    ((kept!.a as { b: Data[] }).b[1]!).c = 8;
    (kept!.a as Data).added = true;
    await withSessionOn(host, {}, ({ session }: { session: Data }) => {
      assert.deepEqual(session.deep, { a: { b: [1, { c: 2 }] } });
      (session.arr as number[]).push(3); // a write, compared with what was read
    }, undefined);
    assert.deepEqual(await m.getById(sid), { ...original, arr: [1, 2, 3] });
    assert.equal(written.length, 1);
  });
}

for (const copies of [false, true]) {
  const reads = copies ? "copying what it reads" : "reading the MapStore's record in place";
  describe(`withSession drafts, ${reads}`, () => {
    sharedTests(copies);
  });
}

describe("withSession on a MapStore holding a record that is not a session's", () => {
  for (const copies of [false, true]) {
    const reads = copies ? "copying what it reads" : "reading the record in place";
    test(`reads it as missing and reports it, ${reads}`, async () => {
      const bad: object[] = [
        { data: null },
        { data: ["a", "b"] },
        { data: "xy" },
        { data: { n: 1 }, flash: "nope" },
      ];
      for (const fields of bad) {
        const store = new MapStore();
        const reasons: string[] = [];
        const m = createSessions({
          store,
          keys: ["k".repeat(32)],
          onInvalid: (reason) => reasons.push(reason),
        });
        const state = m.open(null);
        state.session.n = 1;
        await m.commit(state);
        const sid = state.id!;
        const now = Date.now();
        // Written by the app itself, past the manager.
        store.set(sid, { expiresAt: now + 60_000, createdAt: now, ...fields } as never, 60_000);
        if (copies) {
          const get = store.get.bind(store);
          store.get = (id) => get(id);
        }
        let gone = 0;
        let ran = false;
        const host = hostFor(m, () => sid, { gone: () => void gone++ });
        const answer = await withSessionOn(host, {}, () => {
          ran = true;
        }, "missing");
        const what = JSON.stringify(fields);
        assert.equal(answer, "missing", what);
        assert.equal(ran, false, what);
        assert.equal(gone, 1, what);
        assert.deepEqual(reasons, ["corrupt-record"], what);
      }
    });
  }
});

test("withSession on a MapStore whose read throws: a StoreError, on either path", async () => {
  for (const copies of [false, true]) {
    let broken = false;
    const store = new MapStore({
      now: () => {
        if (broken) throw new Error("clock failed");
        return Date.now();
      },
    });
    const m = createSessions({ store, keys: ["k".repeat(32)] });
    const state = m.open(null);
    state.session.n = 1;
    await m.commit(state);
    if (copies) {
      const get = store.get.bind(store);
      store.get = (id) => get(id);
    }
    const host = hostFor(m, () => state.id!);
    broken = true;
    await assert.rejects(withSessionOn(host, {}, () => 1, undefined), (err: Error) => {
      assert.ok(err instanceof StoreError, `copies: ${copies}: ${err}`);
      assert.equal((err.cause as Error).message, "clock failed");
      return true;
    });
  }
});

test("an identify option that changes the nested data it is given changes nothing the store holds or a handler read", async () => {
  const store = new MapStore();
  const m = createSessions({
    store,
    keys: ["k".repeat(32)],
    // Counts how often it was asked, in the data it is given (not what it is for, but allowed).
    identify: (d) => {
      const profile = d.profile as { id: string; checks?: number } | undefined;
      if (profile) profile.checks = (profile.checks ?? 0) + 1;
      return profile?.id;
    },
  });
  const state = m.open(null);
  Object.assign(state.session, { profile: { id: "ada" }, n: 0 });
  const { cookies } = await m.commit(state);
  const jar = cookies.map((c) => c.split(";")[0]).join("; ");
  const sid = state.id!;
  /** What reads give, against what the store holds (its records decoded afresh by list()). */
  const held = () => new Map([...store.list()]).get(sid)?.data;
  assert.deepEqual(store.get(sid)?.data, held());
  // A request whose write fails after identify ran: what reads give is what is held.
  const failing = m.open(jar);
  failing.session.big = 1n;
  await assert.rejects(m.commit(failing));
  assert.deepEqual(store.get(sid)?.data, held());
  assert.deepEqual(held(), { profile: { id: "ada", checks: 1 }, n: 0 });
  // A socket handler that sets only `t` while a request writes `n`: both writes count.
  const host = hostFor(m, () => sid);
  await withSessionOn(host, {}, async ({ session }: { session: Data }) => {
    const req = m.open(jar);
    req.session.n = 1;
    await m.commit(req);
    session.t = 1;
  }, undefined);
  assert.deepEqual(await m.getById(sid), { profile: { id: "ada", checks: 3 }, n: 1, t: 1 });
  assert.deepEqual(store.get(sid)?.data, held());
});

describe("socket snapshots", () => {
  test("a deeply frozen private copy, as JSON would give it back", () => {
    const source: Data = {
      n: 1,
      o: { list: [1, { x: "y" }], nested: { deep: true } },
      d: new Date(0),
      withDate: { at: new Date(0) },
      u: undefined,
      nan: NaN,
    };
    const snap = snapshot(source);
    assert.deepEqual(snap, JSON.parse(JSON.stringify(source)));
    assert.ok(Object.isFrozen(snap));
    const o = snap.o as { list: [number, Data]; nested: Data };
    assert.ok(Object.isFrozen(o) && Object.isFrozen(o.list) && Object.isFrozen(o.list[1]));
    assert.ok(Object.isFrozen(o.nested) && Object.isFrozen(snap.withDate));
    ((source.o as Data).list as unknown[]).push(2); // the source changed afterwards
    assert.deepEqual(o.list, [1, { x: "y" }]);
  });
});

describe("FewKeys (the sessions with a socket write in flight)", () => {
  test("answers add and delete as a Set of strings does, however many keys it holds", () => {
    const keys = new FewKeys();
    const set = new Set<string>();
    const ops: [string, string][] = [];
    // Every sequence of 12 random operations over three keys, 2,000 times, against a Set.
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let run = 0; run < 2000; run++) {
      for (let i = 0; i < 12; i++) {
        const key = ["a", "b", "c"][rand(3)]!;
        const op = rand(2) === 0 ? "add" : "delete";
        ops.push([op, key]);
        if (op === "add") {
          keys.add(key);
          set.add(key);
        } else assert.equal(keys.delete(key), set.delete(key), JSON.stringify(ops.slice(-12)));
      }
      for (const key of ["a", "b", "c"]) {
        assert.equal(
          keys.delete(key),
          set.delete(key),
          `${key} after ${JSON.stringify(ops.slice(-12))}`,
        );
      }
    }
  });
});

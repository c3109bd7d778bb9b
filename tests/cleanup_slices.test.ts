// Cleanup in slices: MapStore's takeExpired walks and removes in batches while the store stays in
// use (writes between batches are kept as written), and the manager's cleanup() lets other work
// run between batches and shares one run between concurrent calls.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { MapStore } from "../src/map_store.ts";
import type { StoredRecord, TakenRecord } from "../src/store.ts";
import { createSessions } from "../src/manager.ts";
import { wrappedMapStore } from "./helpers/wrapped_map_store.ts";

const T0 = 1_767_225_600_000;

/** A store of `n` sessions `s<i>` (expired when `expired(i)`), each followed by its mapping. */
function filled(n: number, expired: (i: number) => boolean) {
  let now = T0;
  const store = new MapStore({ now: () => now });
  const initial = new Map<string, StoredRecord>();
  for (let i = 0; i < n; i++) {
    const ttl = expired(i) ? 10 : 1e6;
    const session: StoredRecord = {
      data: { n: i },
      expiresAt: now + ttl,
      createdAt: now,
      clientId: `c${i}`,
      ...(i % 5 === 0 ? { user: `u${i % 3}` } : {}),
    };
    const mapping: StoredRecord = { data: {}, sid: `s${i}`, expiresAt: now + 1e9, createdAt: now };
    store.set(`s${i}`, session, ttl);
    store.set(`cid:c${i}`, mapping, 1e9);
    initial.set(`s${i}`, session).set(`cid:c${i}`, mapping);
  }
  now += 10;
  return { store, initial, clock: () => now };
}

/** What a record looks like once held and read back, for comparing. */
function shape(r: StoredRecord | undefined) {
  return r && { data: r.data, sid: r.sid, clientId: r.clientId, user: r.user };
}

/** Every record the store holds (expired ones included), as `list()` gives them. */
function contents(store: MapStore): Map<string, StoredRecord> {
  return new Map([...store.list()]);
}

type Op = { key: string; record: StoredRecord | null };

describe("takeExpired in slices", () => {
  test("writes and deletes between batches are kept as written; what was taken is gone (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2600 }),
        // Expired share in the first and the second half (a takeExpired that starts by keeping
        // and stops, and the other way round), and where to stop early (never: -1).
        fc.constantFrom(0, 0.1, 0.5, 0.9, 1),
        fc.constantFrom(0, 0.1, 0.5, 0.9, 1),
        fc.integer({ min: -1, max: 3 }),
        fc.array(
          fc.tuple(
            fc.nat(8), // the batch after which it runs
            fc.constantFrom("session", "mapping", "new"),
            fc.nat(2600),
            fc.constantFrom("set", "delete"),
            fc.nat(),
          ),
          { maxLength: 40 },
        ),
        (n, first, second, stopAfter, rawOps) => {
          const pick = (i: number) => (i < n / 2 ? first : second);
          // Deterministic "random" per index: which sessions expired.
          const expired = (i: number) => ((i * 2654435761) >>> 0) / 2 ** 32 < pick(i);
          const { store, initial, clock } = filled(n, expired);
          const ops = new Map<number, Op[]>();
          for (const [after, kind, index, action, salt] of rawOps) {
            const i = n === 0 ? 0 : index % n;
            const key = kind === "session" ? `s${i}` : kind === "mapping" ? `cid:c${i}` : `new${i}`;
            const record: StoredRecord | null = action === "delete" ? null : {
              data: { w: salt },
              expiresAt: clock() + 1e6,
              createdAt: clock(),
              ...(kind === "mapping" ? { sid: `s${salt % (n + 1)}` } : { user: `u${salt % 3}` }),
            };
            ops.set(after, [...(ops.get(after) ?? []), { key, record }]);
          }
          const touched = new Map<string, StoredRecord | null>();
          const reported: TakenRecord[] = [];
          let batches = 0;
          for (const batch of store.takeExpired(clock(), "cid:")) {
            reported.push(...batch);
            // A taken session reads as missing at once.
            for (const [id] of batch) assert.equal(store.get(id), undefined);
            for (const { key, record } of ops.get(batches) ?? []) {
              if (record) store.set(key, record, 1e6);
              else store.delete(key);
              touched.set(key, record);
            }
            if (batches++ === stopAfter) break;
          }
          // A second, whole run after one stopped early: it may take along a mapping written
          // during the first (when it names a session that expired).
          const later: TakenRecord[] = [];
          if (stopAfter !== -1) {
            for (const batch of store.takeExpired(clock(), "cid:")) later.push(...batch);
          }
          reported.push(...later);
          const takenAlongLater = new Set(
            later.filter((e) => e[2] === true).map(([, rec]) => `cid:${rec.clientId}`),
          );
          const ids = reported.map(([id]) => id);
          assert.equal(new Set(ids).size, ids.length, "no record reported twice");
          const takenAlong = new Set(
            reported.filter((e) => e[2] === true).map(([, rec]) => `cid:${rec.clientId}`),
          );
          const held = contents(store);
          for (const key of new Set([...initial.keys(), ...touched.keys()])) {
            const now = held.get(key);
            if (touched.has(key)) {
              if (takenAlongLater.has(key)) assert.ok(!now, `${key}: taken along by the next run`);
              else {assert.deepEqual(
                  shape(now),
                  shape(touched.get(key) ?? undefined),
                  `${key}: written`,
                );}
            } else if (key.startsWith("cid:")) {
              const session = initial.get(key)!.sid!;
              const taken = ids.includes(session) && !touched.has(session);
              // A mapping goes with its session, unless the session was written first.
              if (taken) assert.ok(takenAlong.has(key) && !now, `${key}: taken along`);
              else if (!takenAlong.has(key)) assert.deepEqual(shape(now), shape(initial.get(key)));
            } else if (expired(Number(key.slice(1)))) {
              assert.ok(ids.includes(key) && !now, `${key}: expired, taken`);
            } else {
              assert.ok(!ids.includes(key), `${key}: live, not taken`);
              assert.deepEqual(shape(now), shape(initial.get(key)), `${key}: kept`);
            }
          }
          assert.equal(store.size, held.size);
          for (const key of held.keys()) {
            assert.ok(initial.has(key) || touched.has(key), `${key}: nothing else is held`);
          }
          for (const user of ["u0", "u1", "u2"]) {
            const indexed = store.listUser(user).map(([id]) => id).sort();
            const holding = [...held].filter(([, r]) => r.user === user).map(([id]) => id).sort();
            assert.deepEqual(indexed, holding, `user index of ${user}`);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test("walks in batches of about a thousand records, empty ones when a slice takes none", () => {
    const live = filled(3000, () => false);
    const empty = [...live.store.takeExpired(live.clock(), "cid:")].map((batch) => batch.length);
    assert.ok(empty.length >= 6 && empty.every((n) => n === 0), `${empty.length} empty batches`);
    const some = filled(3000, (i) => i >= 2000);
    const sizes = [...some.store.takeExpired(some.clock(), "cid:")].map((batch) => batch.length);
    assert.ok(sizes.length >= 6, `6000 records in ${sizes.length} batches`);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 1000);
    assert.equal(some.store.size, 4000);
  });

  test("a second takeExpired while one runs takes nothing; the first still takes all", () => {
    const { store, clock } = filled(3000, () => true);
    const first = store.takeExpired(clock(), "cid:")[Symbol.iterator]();
    let count = first.next().value!.length;
    assert.deepEqual([...store.takeExpired(clock(), "cid:")], []);
    for (let r = first.next(); !r.done; r = first.next()) count += r.value.length;
    assert.equal(count, 3000);
    assert.equal(store.size, 0);
    assert.equal([...store.takeExpired(clock(), "cid:")].flat().length, 0, "and a later one runs");
  });

  test("clear() during a takeExpired ends it: nothing comes back, later writes stay", () => {
    for (const share of [1, 0.2]) {
      const { store, clock } = filled(3000, (i) => i / 3000 < share);
      const it = store.takeExpired(clock(), "cid:")[Symbol.iterator]();
      it.next();
      store.clear();
      store.set("after", { data: { a: 1 }, expiresAt: clock() + 1e6, createdAt: clock() }, 1e6);
      assert.equal(it.next().done, true);
      assert.deepEqual([...contents(store).keys()], ["after"]);
      assert.equal(store.size, 1);
    }
  });

  test("a session written expired during a takeExpired is taken once: reported and gone", () => {
    const { store, clock } = filled(3000, () => true);
    const reported: string[] = [];
    let first = true;
    for (const batch of store.takeExpired(clock(), "cid:")) {
      reported.push(...batch.map(([id]) => id));
      if (first) {
        store.set("late", { data: {}, expiresAt: clock() - 1, createdAt: clock() }, -1);
        first = false;
      }
    }
    assert.ok(reported.includes("late"));
    assert.equal(new Set(reported).size, reported.length);
    assert.equal(store.size, 0);
  });
});

describe("cleanup() in slices", () => {
  /** A manager over a MapStore whose takeExpired takes `busyMs` of CPU per batch. */
  function slowCleanup(sessions: number, busyMs: number) {
    return wrappedMapStore((inner) => ({
      *takeExpired(by: number, prefix?: string) {
        for (const batch of inner.takeExpired(by, prefix)) {
          const end = performance.now() + busyMs;
          while (performance.now() < end) { /* a slice of a large store */ }
          yield batch;
        }
      },
    }), sessions);
  }

  test("other work runs during a long cleanup, and sessions used meanwhile are kept", async () => {
    // Each batch takes 11 ms, more than cleanup's 10 ms slice: a pause before every batch but the
    // first, and a timer's turn in each.
    const { m, inner, ids, cookies, destroyed, tick } = await slowCleanup(3000, 11);
    // Half the sessions were used once less than half their time was left: renewed, they live on.
    tick(m.maxAge / 2 + 1000);
    for (let i = 0; i < 1500; i++) {
      const s = m.open(cookies[i]!);
      await m.prepare(s);
      s.session.used = true;
      await m.commit(s);
    }
    tick(m.maxAge / 2);
    let ran = 0;
    let during: { id: string | undefined; n: unknown } | undefined;
    const timer = setInterval(() => ran++, 1);
    const job = (async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      // A request while the cleanup runs: a live session read and written, and a new one for a
      // browser whose session expired.
      const live = m.open(cookies[10]!);
      await m.prepare(live);
      live.session.n = "written during cleanup";
      await m.commit(live);
      const back = m.open(cookies[2000]!);
      await m.prepare(back);
      back.session.n = "back";
      await m.commit(back);
      during = { id: back.id, n: back.session.n };
    })();
    const count = await m.cleanup().finally(() => clearInterval(timer));
    await job;
    assert.ok(ran >= 2, `timers ran ${ran} times during the cleanup`);
    assert.equal(count, 1500);
    assert.deepEqual(destroyed.sort(), ids.slice(1500).sort());
    assert.equal(inner.get(ids[10]!)?.data.n, "written during cleanup");
    assert.ok(during?.id && inner.get(during.id)?.data.n === "back", "the new session is kept");
    // 1500 live sessions (each its browser's first, whose id is the client id: no mapping), the
    // new session and its browser's mapping naming it.
    assert.equal(inner.size, 1502);
    const mapping = [...inner.list()].find(([, r]) => r.sid === during!.id);
    assert.ok(mapping, "the browser's mapping names its new session");
  });

  test("a synchronous store with list() only: cleanup() also lets other work run, and removes all", async () => {
    const { m, inner, ids, destroyed, tick } = await wrappedMapStore(
      (inner) => ({
        *list() {
          for (const entry of inner.list()) {
            const end = performance.now() + 0.01;
            while (performance.now() < end) { /* a record of a slow store */ }
            yield entry;
          }
        },
      }),
      1500,
      { visited: true },
    ); // each with its client mapping: 3,000 records
    tick(m.maxAge + 1);
    let ran = 0;
    const timer = setInterval(() => ran++, 1);
    assert.equal(await m.cleanup().finally(() => clearInterval(timer)), 1500);
    assert.ok(ran >= 1, `timers ran ${ran} times during the cleanup`);
    assert.deepEqual(destroyed.sort(), ids.sort());
    assert.equal(inner.size, 0, "sessions and their mappings");
  });

  test("cleanup() in stateless (sealed-cookie) mode: a rejected promise with a TypeError, not a throw", async () => {
    const m = createSessions({ keys: ["k".repeat(32)], logger: { warn() {} } });
    let promise: Promise<number> | undefined;
    assert.doesNotThrow(() => {
      promise = m.cleanup();
    });
    await assert.rejects(promise!, TypeError);
  });

  test("concurrent cleanup() calls share one run: one count, one event per session", async () => {
    const { m, ids, destroyed, tick } = await slowCleanup(1200, 1);
    tick(m.maxAge + 1);
    const cleanups: number[] = [];
    m.on("cleanup", (n) => cleanups.push(n));
    const [a, b] = await Promise.all([m.cleanup(), m.cleanup()]);
    assert.equal(a, 1200);
    assert.equal(b, 1200);
    assert.deepEqual(cleanups, [1200]);
    assert.deepEqual(destroyed.sort(), ids.sort());
    assert.equal(await m.cleanup(), 0, "a later call runs again");
  });
});

// DenoKvStore on real KV databases: Deno.openKv on Deno, @deno/kv (native SQLite) on Node and
// Bun. The conformance suite, atomicity across two handles on one file, two SessionManagers
// sharing the file, events between instances, the 64 KiB value limit, corrupt values.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createSessions,
  SessionTooLargeError,
  type StoredRecord,
  StoreError,
  type StoreEvent,
} from "../mod.ts";
import { DenoKvStore, KV_VALUE_LIMIT, type KvLike } from "../stores/deno_kv.ts";
import { testStoreConformance } from "../testing/store_conformance.ts";
import { KEY, nextEvent, testSessionsOverStore } from "./helpers/store_scenarios.ts";

const quiet = { warn() {} };
const isDeno = "Deno" in globalThis;

function record(data: Record<string, unknown>, ttlMs = 60_000): StoredRecord {
  const now = Date.now();
  return { data, expiresAt: now + ttlMs, createdAt: now };
}

/** A KV handle as users open one themselves: Deno.openKv, or @deno/kv's openKv. */
async function openRawKv(path: string): Promise<KvLike> {
  if (isDeno) return await Deno.openKv(path);
  const { openKv } = await import("@deno/kv");
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const json = {
    encodeV8: (v: unknown) => enc.encode(JSON.stringify(v)),
    decodeV8: (b: Uint8Array) => JSON.parse(dec.decode(b)),
  };
  return await openKv(path, "Bun" in globalThis ? json : {});
}

describe("DenoKvStore", () => {
  const dir = mkdtempSync(join(tmpdir(), "unisession-kv-"));
  let files = 0;
  const tempDb = () => join(dir, `db-${files++}.sqlite`);
  const toClose: { close(): void }[] = [];
  after(() => {
    for (const c of toClose) c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  testStoreConformance("DenoKvStore (:memory:)", async () => {
    const kv = await openRawKv(":memory:");
    toClose.push(kv);
    return new DenoKvStore({ kv });
  }, {
    supportsList: true,
    supportsUpdate: true,
    ttl: true,
    cleanup: (store) => (store as DenoKvStore).close(),
  });

  test("200 concurrent update() increments through two handles on one file end at 200", async () => {
    const path = tempDb();
    const one = await DenoKvStore.open(path);
    const two = await DenoKvStore.open(path);
    try {
      await one.set("counter", record({ n: 0 }), 60_000);
      const bump = (cur: StoredRecord): StoredRecord => ({
        ...cur,
        data: { n: (cur.data.n as number) + 1 },
      });
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 ? one : two).update("counter", bump)),
      );
      assert.equal((await two.get("counter"))?.data.n, 200);
      assert.equal(new Set(results.map((r) => r?.data.n)).size, 200, "two updates saw one value");
    } finally {
      one.close();
      two.close();
    }
  });

  test("update() that loses every attempt to another writer: a StoreError naming them, its own write never made", async () => {
    const raw = await openRawKv(":memory:");
    toClose.push(raw);
    const other = new DenoKvStore({ kv: raw });
    let lost = 0;
    // The KV as the store sees it: before each of its commits, another writer changes the
    // record, so the commit's versionstamp check fails (an optimistic write lost).
    const kv = new Proxy(raw, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop !== "atomic") return typeof value === "function" ? value.bind(target) : value;
        return () => {
          const op = target.atomic();
          const commit = op.commit.bind(op);
          op.commit = async () => {
            lost++;
            await other.set("s", record({ by: `other ${lost}` }), 60_000);
            return commit();
          };
          return op;
        };
      },
    });
    const store = new DenoKvStore({ kv, maxAttempts: 3 });
    try {
      await other.set("s", record({ by: "other 0" }), 60_000);
      await assert.rejects(
        store.update("s", (cur) => ({ ...cur, data: { by: "update" } })),
        (err: unknown) =>
          err instanceof StoreError && err.code === "ERR_STORE" &&
          /3 attempts lost to concurrent writers/.test(err.message),
      );
      assert.equal(lost, 3);
      assert.deepEqual((await other.get("s"))?.data, { by: "other 3" }, "the last write stands");
      assert.throws(() => new DenoKvStore({ kv, maxAttempts: 0 }), RangeError);
    } finally {
      store.close();
      other.close();
    }
  });

  testSessionsOverStore("DenoKvStore (two handles on one file)", async () => {
    const path = tempDb();
    const a = await DenoKvStore.open(path, { prefix: ["pair"] });
    const b = await DenoKvStore.open(path, { prefix: ["pair"] });
    return {
      a,
      b,
      close: () => {
        a.close();
        b.close();
        return Promise.resolve();
      },
    };
  });

  test("a record over KV's 64 KiB limit is a SessionTooLargeError; one at the limit is kept", async () => {
    const store = await DenoKvStore.open(":memory:");
    try {
      const rec = record({ blob: "" });
      const overhead = new TextEncoder().encode(JSON.stringify(rec)).byteLength;
      rec.data.blob = "x".repeat(KV_VALUE_LIMIT - overhead);
      await store.set("at-limit", rec, 60_000);
      assert.equal((await store.get("at-limit"))?.data.blob, rec.data.blob);

      rec.data.blob += "x";
      await assert.rejects(store.set("over", rec, 60_000), (err: unknown) => {
        assert.ok(err instanceof SessionTooLargeError);
        assert.equal(err.code, "ERR_SESSION_TOO_LARGE");
        return true;
      });
      const m = createSessions({ store, keys: [KEY], logger: quiet });
      const state = m.open(null);
      state.session.blob = "é".repeat(40_000); // 80 000 bytes of UTF-8
      await assert.rejects(m.commit(state), SessionTooLargeError);
      m.close();
    } finally {
      store.close();
    }
  });

  test("a record past its expiresAt reads as missing although KV still holds it", async () => {
    const store = await DenoKvStore.open(":memory:");
    try {
      const past: StoredRecord = { data: { a: 1 }, expiresAt: Date.now() - 1, createdAt: 0 };
      await store.set("expired", past, 60_000); // KV would keep it a minute
      assert.equal(await store.get("expired"), undefined);
      assert.equal(await store.update("expired", (cur) => cur), undefined);
      const ids = async () => {
        const listed = [];
        for await (const [id] of store.list()) listed.push(id);
        return listed;
      };
      assert.deepEqual(await ids(), ["expired"], "cleanup must still find it");
      const m = createSessions({ store, keys: [KEY], logger: quiet });
      assert.equal(await m.cleanup(), 1);
      m.close();
      assert.deepEqual(await ids(), []);
    } finally {
      store.close();
    }
  });

  test("corrupt values (not JSON, wrong shape, foreign type) are 'no session', never a crash", async () => {
    const kv = await openRawKv(":memory:");
    const store = new DenoKvStore({ kv, prefix: ["app"] });
    const invalid: string[] = [];
    const m = createSessions({
      store,
      keys: [KEY],
      logger: quiet,
      onInvalid: (reason) => invalid.push(reason),
    });
    try {
      const enc = new TextEncoder();
      await kv.set(["app", "sessions", "notjson"], enc.encode("{not json"));
      await kv.set(["app", "sessions", "shape"], enc.encode('{"data":"x","expiresAt":"soon"}'));
      await kv.set(["app", "sessions", "foreign"], 42);
      for (const id of ["notjson", "shape", "foreign"]) {
        assert.equal(await m.getById(id), undefined, id);
        assert.equal(await m.update(id, () => ({ n: 1 })), undefined, id);
      }
      assert.deepEqual(invalid, ["corrupt-record", "corrupt-record", "corrupt-record"]);
      assert.equal(await m.cleanup(), 0);
      const raw = await kv.get(["app", "sessions", "notjson"]);
      assert.equal(new TextDecoder().decode(raw.value as Uint8Array), "{not json");
    } finally {
      m.close();
      store.close();
      kv.close();
    }
  });

  test("unsubscribe stops delivery; close() stops polling", async () => {
    const path = tempDb();
    const pub = await DenoKvStore.open(path, { pollIntervalMs: 50 });
    const sub = await DenoKvStore.open(path, { pollIntervalMs: 50 });
    try {
      const seen: StoreEvent[] = [];
      const stop = sub.subscribe((e) => seen.push(e));
      const cleanup = (n: number): StoreEvent => ({ type: "cleanup", count: n, origin: "o" });
      const first = nextEvent<StoreEvent>((fn) => sub.subscribe(fn), (e) => e.type === "cleanup");
      await pub.publish(cleanup(1));
      await first;
      stop();
      await pub.publish(cleanup(2));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(seen, [cleanup(1)]);
    } finally {
      pub.close();
      sub.close();
    }
  });

  if (isDeno) {
    test("on Deno, watch() delivers an event at once, without polling", async () => {
      const kv = await Deno.openKv(":memory:");
      const pub = new DenoKvStore({ kv });
      const sub = new DenoKvStore({ kv, pollIntervalMs: 0, watch: true });
      try {
        const event: StoreEvent = { type: "sessionSet", sessionId: "s", isNew: true, origin: "a" };
        const got = nextEvent<StoreEvent>((fn) => sub.subscribe(fn), () => true, 2000);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await pub.publish(event);
        assert.deepEqual(await got, event);
      } finally {
        sub.close();
        pub.close();
        kv.close();
      }
    });
  }

  test("DenoKvStore.open(): close() closes the database it opened", async () => {
    const store = await DenoKvStore.open(tempDb());
    await store.set("a", record({ a: 1 }), 60_000);
    store.close();
    // Every call after it is a StoreError, not the runtime's own "closed" error.
    const closed = (err: unknown) => err instanceof StoreError && /closed/.test(err.message);
    await assert.rejects(store.get("a"), closed);
    await assert.rejects(store.set("b", record({ b: 1 }), 60_000), closed);
    await assert.rejects(store.delete("a"), closed);
    await assert.rejects(store.update("a", (cur) => cur), closed);
    await assert.rejects(store.listUser("u"), closed);
    await assert.rejects(async () => {
      for await (const _ of store.list()) { /* nothing */ }
    }, closed);
  });

  test("a DenoKvStore on your own kv: close() stops its polling only, and the store still works", async () => {
    const kv = await openRawKv(tempDb());
    toClose.push(kv);
    const store = new DenoKvStore({ kv });
    store.close();
    await store.set("a", record({ a: 1 }), 60_000);
    assert.deepEqual((await store.get("a"))?.data, { a: 1 });
  });
});

// RedisStore against a real redis-server that this file starts on a free port and stops by PID:
// the conformance suite, cross-client atomicity, two SessionManagers sharing Redis, pub/sub
// events, corrupt values, Redis going down, and koa-redis stores through toStore().
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import koaRedis from "koa-redis";
import {
  createSessions,
  type KoaStyleStore,
  type StoredRecord,
  StoreError,
  type StoreEvent,
  toStore,
} from "../mod.ts";
import { RedisStore } from "../stores/redis.ts";
import { testStoreConformance } from "../testing/store_conformance.ts";
import {
  freePort,
  type RedisServer,
  redisSkipReason,
  startRedisServer,
  waitForSubscribers,
} from "./helpers/redis_server.ts";
import { KEY, nextEvent, request, testSessionsOverStore } from "./helpers/store_scenarios.ts";

const quiet = { warn() {} };

/** The parts of koa-redis (untyped JavaScript) this file uses. */
type KoaRedis = (options: { host: string; port: number }) => KoaStyleStore & {
  client: { get(key: string): Promise<string | null>; ttl(key: string): Promise<number> };
  quit(): Promise<unknown>;
};
const skip = redisSkipReason();
const uniquePrefix = (label: string) => `t:${label}:${crypto.randomUUID()}:`;

function record(data: Record<string, unknown>, ttlMs = 60_000): StoredRecord {
  const now = Date.now();
  return { data, expiresAt: now + ttlMs, createdAt: now };
}

/** A client that fails fast instead of queueing forever while Redis is down. */
function client(port: number): Redis {
  return new Redis({ port, host: "127.0.0.1", lazyConnect: false, maxRetriesPerRequest: 1 });
}

if (skip) {
  test(`RedisStore: ${skip}`, { skip }, () => {});
} else {
  describe("RedisStore on a real redis-server", () => {
    let server: RedisServer;
    const clients: Redis[] = [];
    const connect = (): Redis => {
      const c = client(server.port);
      clients.push(c);
      return c;
    };

    before(async () => {
      server = await startRedisServer();
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await server?.stop();
    });

    testStoreConformance(
      "RedisStore",
      () => new RedisStore({ client: connect(), prefix: uniquePrefix("conf") }),
      {
        supportsList: true,
        supportsUpdate: true,
        ttl: true,
        cleanup: (store) => (store as RedisStore).close(),
      },
    );

    test("200 concurrent update() increments through two clients end at exactly 200", async () => {
      const prefix = uniquePrefix("cas");
      const one = new RedisStore({ client: connect(), prefix });
      const two = new RedisStore({ client: connect(), prefix });
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
    });

    test("update() keeps the record until its new expiresAt (Redis PTTL)", async () => {
      const c = connect();
      const store = new RedisStore({ client: c, prefix: uniquePrefix("pttl") });
      await store.set("s", record({ n: 1 }), 60_000);
      await store.update("s", (cur) => ({ ...cur, expiresAt: Date.now() + 5_000 }));
      const pttl = await c.pttl(`${store.prefix}s`);
      assert.ok(pttl > 3_000 && pttl <= 5_000, `PTTL ${pttl}`);
      await store.set("gone", record({}), 0);
      assert.equal(await store.get("gone"), undefined, "a ttl of 0 must not keep the record");
    });

    testSessionsOverStore("RedisStore", () => {
      const prefix = uniquePrefix("pair");
      const a = new RedisStore({ client: connect(), prefix });
      const b = new RedisStore({ client: connect(), prefix });
      return Promise.resolve({
        a,
        b,
        close: async () => void await Promise.all([a.close(), b.close()]),
      });
    });

    test("enableOfflineQueue: false (as the README recommends): the subscription is made once connected, and after a reconnect", async () => {
      const prefix = uniquePrefix("offline");
      const noQueue = () => {
        const c = new Redis({
          port: server.port,
          host: "127.0.0.1",
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
        });
        clients.push(c);
        return c;
      };
      const store = new RedisStore({ client: noQueue(), prefix, onError: () => {} });
      const other = new RedisStore({ client: noQueue(), prefix, onError: () => {} });
      try {
        const seen: StoreEvent[] = [];
        store.subscribe((e) => seen.push(e)); // its subscriber connection is still connecting
        await waitForSubscribers(connect(), store.channel, 1);
        const cleanup = (n: number): StoreEvent => ({ type: "cleanup", count: n, origin: "o" });
        const received = async (n: number) => {
          const deadline = Date.now() + 3000;
          while (seen.length < n && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        };
        await other.publish(cleanup(1));
        await received(1);
        // The subscriber connection drops (CLIENT KILL of every pub/sub connection) and comes back.
        await connect().call("CLIENT", "KILL", "TYPE", "pubsub");
        await waitForSubscribers(connect(), store.channel, 1);
        await other.publish(cleanup(2));
        await received(2);
        assert.deepEqual(seen, [cleanup(1), cleanup(2)]);
      } finally {
        await store.close();
        await other.close();
      }
    });

    test("a client made with lazyConnect: the subscriber connects by itself, events arrive", async () => {
      const prefix = uniquePrefix("lazy");
      const lazy = new Redis({ port: server.port, host: "127.0.0.1", lazyConnect: true });
      clients.push(lazy);
      const store = new RedisStore({ client: lazy, prefix, onError: () => {} });
      const other = new RedisStore({ client: connect(), prefix });
      try {
        const seen: StoreEvent[] = [];
        store.subscribe((e) => seen.push(e));
        await waitForSubscribers(connect(), store.channel, 1);
        await other.publish({ type: "cleanup", count: 1, origin: "o" });
        const deadline = Date.now() + 3000;
        while (seen.length < 1 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.deepEqual(seen, [{ type: "cleanup", count: 1, origin: "o" }]);
      } finally {
        await store.close();
        await other.close();
      }
    });

    test("unsubscribe stops delivery; close() quits the subscriber connection it opened", async () => {
      const prefix = uniquePrefix("sub");
      const store = new RedisStore({ client: connect(), prefix });
      const other = new RedisStore({ client: connect(), prefix });
      const seen: StoreEvent[] = [];
      const stop = store.subscribe((e) => seen.push(e));
      const cleanup = (n: number): StoreEvent => ({ type: "cleanup", count: n, origin: "o" });
      const first = nextEvent<StoreEvent>((fn) => store.subscribe(fn), (e) => e.type === "cleanup");
      await waitForSubscribers(connect(), store.channel, 1);
      await other.publish(cleanup(1));
      await first;
      stop();
      await other.publish(cleanup(2));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(seen, [cleanup(1)]);
      const observer = connect();
      const connections = async () =>
        String(await observer.client("LIST")).split("\n").filter((l) => l.trim()).length;
      const open = await connections();
      await store.close();
      await other.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(await connections(), open - 1, "the subscriber connection is still open");
    });

    test("corrupt values (not JSON, wrong shape, wrong type) are 'no session', never a crash", async () => {
      const c = connect();
      const prefix = uniquePrefix("corrupt");
      const store = new RedisStore({ client: c, prefix });
      const invalid: string[] = [];
      const m = createSessions({
        store,
        keys: [KEY],
        logger: quiet,
        onInvalid: (reason) => invalid.push(reason),
      });
      await c.set(`${prefix}notjson`, "{not json");
      await c.set(`${prefix}shape`, JSON.stringify({ data: "x", expiresAt: "soon" }));
      await c.hset(`${prefix}hash`, "data", "{}");
      assert.equal(await m.getById("notjson"), undefined);
      assert.equal(await m.getById("shape"), undefined);
      await assert.rejects(m.getById("hash"), StoreError); // WRONGTYPE is a store failure
      assert.deepEqual(invalid, ["corrupt-record", "corrupt-record"]);
      assert.equal(await m.update("notjson", () => ({ n: 1 })), undefined);
      assert.equal(
        await c.get(`${prefix}notjson`),
        "{not json",
        "update overwrote a corrupt value",
      );
      assert.equal(await m.cleanup(), 0);
      m.close();
      await store.close();
    });

    test("Redis going down: calls fail with StoreError within storeTimeout, never hang", async () => {
      const own = await startRedisServer();
      const c = new Redis({ port: own.port, host: "127.0.0.1" }); // default: queues while down
      c.on("error", () => {});
      const errors: unknown[] = [];
      const store = new RedisStore({
        client: c,
        prefix: uniquePrefix("down"),
        onError: (err) => errors.push(err),
      });
      const m = createSessions({ store, keys: [KEY], logger: quiet, storeTimeout: 500 });
      try {
        const r = await request(m, null, (s) => {
          s.session.user = "ada";
        });
        await own.stop();
        const started = Date.now();
        await assert.rejects(m.getById(r.state.id!), StoreError);
        await assert.rejects(m.update(r.state.id!, () => {}), StoreError);
        await assert.rejects(request(m, r.cookie, (s) => void s.session.user), StoreError);
        const state = m.open(null);
        state.session.x = 1;
        await assert.rejects(m.commit(state), StoreError);
        assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
        assert.ok(errors.length > 0, "the subscriber's lost connection was not reported");
      } finally {
        m.close();
        await store.close().catch(() => {});
        c.disconnect();
        await own.stop();
      }
    });

    test("connection refused from the start is a StoreError, not a hang", async () => {
      const port = await freePort(); // nothing listens there
      const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
      c.on("error", () => {});
      const store = new RedisStore({ client: c, onError: () => {} });
      const m = createSessions({ store, keys: [KEY], logger: quiet, storeTimeout: 2_000 });
      try {
        await assert.rejects(m.getById("any"), StoreError);
      } finally {
        m.close();
        await store.close();
        c.disconnect();
      }
    });

    test("an existing koa-redis store works unchanged through toStore()", async () => {
      const koa = (koaRedis as unknown as KoaRedis)({ host: "127.0.0.1", port: server.port });
      const m = createSessions({ store: toStore(koa), keys: [KEY], logger: quiet });
      try {
        const r = await request(m, null, (s) => {
          s.session.cart = ["apple"];
        });
        const id = r.state.id!;
        // koa-redis keeps JSON under the bare id, with a TTL in seconds.
        const raw = JSON.parse(String(await koa.client.get(id)));
        assert.deepEqual(raw.data, { cart: ["apple"] });
        assert.ok((await koa.client.ttl(id)) > 86_000);
        await request(m, r.cookie, (s) => {
          (s.session.cart as string[]).push("pear");
        });
        assert.deepEqual(await m.getById(id), { cart: ["apple", "pear"] });
        assert.equal(await m.destroyById(id), true);
        assert.equal(await koa.client.get(id), null);
        await request(m, r.cookie, (s) => assert.equal(s.session.cart, undefined));
      } finally {
        m.close();
        await koa.quit();
      }
    });
  });
}

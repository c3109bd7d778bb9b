// The user index of every bundled store: the conformance cases behind `supportsUserIndex`
// (MapStore, DenoKvStore on real KV, RedisStore on a real redis-server), and expiry removing
// sessions from the index of each.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { createSessions, MapStore, type SessionManager, type Store } from "../mod.ts";
import { DenoKvStore } from "../stores/deno_kv.ts";
import { RedisStore } from "../stores/redis.ts";
import { testStoreConformance } from "../testing/store_conformance.ts";
import { type RedisServer, redisSkipReason, startRedisServer } from "./helpers/redis_server.ts";
import { KEY, request } from "./helpers/store_scenarios.ts";

const quiet = { warn() {} };
const HOUR = 3_600_000;
const skip = redisSkipReason();

testStoreConformance("MapStore (user index)", () => new MapStore(), {
  supportsList: true,
  supportsUpdate: true,
  supportsUserIndex: true,
});

testStoreConformance("DenoKvStore (user index)", () => DenoKvStore.open(":memory:"), {
  supportsList: true,
  supportsUpdate: true,
  supportsUserIndex: true,
  cleanup: (store) => (store as DenoKvStore).close(),
});

/** A manager on `store` with per-user sessions, optionally with its clock `ahead` ms. */
function manager(store: Store, maxAge = HOUR, ahead = 0): SessionManager {
  return createSessions({
    store,
    keys: [KEY],
    logger: quiet,
    maxAge,
    identify: (data) => data.userId,
    now: () => Date.now() + ahead,
  });
}

async function login(m: SessionManager, user: string): Promise<string> {
  const { state } = await request(m, null, (s) => void (s.session.userId = user));
  return state.id!;
}

test("Deno KV: cleanup of expired sessions removes them from the index in the same commit", async () => {
  const store = await DenoKvStore.open(":memory:");
  const m = manager(store);
  try {
    const old = await login(m, "ada");
    const later = manager(store, HOUR, HOUR / 2); // half an hour on: a second device logs in
    const fresh = await login(later, "ada");
    const after = manager(store, HOUR, HOUR + 1000); // the first one has expired
    assert.deepEqual((await after.listByUser("ada")).map((s) => s.sessionId), [fresh]);
    // KV has not reclaimed it yet (its expireIn is lazy): still indexed, until cleanup.
    assert.deepEqual((await store.listUser("ada")).map(([id]) => id).sort(), [old, fresh].sort());
    assert.equal(await after.cleanup(), 1);
    assert.deepEqual((await store.listUser("ada")).map(([id]) => id), [fresh]);
    for (const x of [m, later, after]) x.close();
  } finally {
    store.close();
  }
});

if (skip) {
  test(`RedisStore user index: ${skip}`, { skip }, () => {});
} else {
  describe("RedisStore user index on a real redis-server", () => {
    let server: RedisServer;
    const clients: Redis[] = [];
    before(async () => {
      server = await startRedisServer();
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await server?.stop();
    });
    const connect = () => {
      const c = new Redis({ host: "127.0.0.1", port: server.port, maxRetriesPerRequest: 1 });
      clients.push(c);
      return c;
    };
    testStoreConformance(
      "RedisStore (user index)",
      () => new RedisStore({ client: connect(), prefix: `users:${crypto.randomUUID()}:` }),
      {
        supportsList: true,
        supportsUpdate: true,
        supportsUserIndex: true,
        cleanup: (store) => (store as RedisStore).close(),
      },
    );

    test("sessions expired by Redis leave the index: listByUser prunes them", async () => {
      const store = new RedisStore({ client: connect(), prefix: `users:${crypto.randomUUID()}:` });
      const short = manager(store, 300);
      const long = manager(store);
      try {
        const gone = await login(short, "ada");
        const kept = await login(long, "ada");
        const index = `${store.prefix}user:ada`;
        assert.equal(await connect().zcard(index), 2);
        await new Promise((resolve) => setTimeout(resolve, 700));
        assert.equal(await connect().exists(store.prefix + gone), 0, "Redis kept the record");
        assert.deepEqual((await long.listByUser("ada")).map((s) => s.sessionId), [kept]);
        assert.deepEqual(await connect().zrange(index, "0", "-1"), [kept], "not pruned");
        assert.ok(
          (await connect().pttl(index)) > 3_000_000,
          "the index expires before its session",
        );
      } finally {
        short.close();
        long.close();
        await store.close();
      }
    });
  });
}

// Per-user sessions at scale: N users × 3 sessions each (created through the manager, as logins
// would), then the time of listByUser and of destroyByUser(user, { except }) on sampled users,
// at two store sizes: the time per call stays flat as the store grows (O(sessions of the user)).
//
//   node --import tsx bench/users_scale.ts [users=10000]     (also: deno run -A, bun run)
//
// Stores: MapStore (its own index), a plain Map through toStore (the fallback index in `uid:`
// records), Deno KV (:memory:), and Redis when redis-server is installed (a throw-away server).
import process from "node:process";
import { Redis } from "ioredis";
import { createSessions, MapStore, type Store, toStore } from "../mod.ts";
import { DenoKvStore } from "../stores/deno_kv.ts";
import { RedisStore } from "../stores/redis.ts";
import { redisSkipReason, startRedisServer } from "../tests/helpers/redis_server.ts";

const USERS = Number(process.argv[2] ?? 10_000);
const SAMPLES = 200;
const KEY = "a-secret-of-at-least-32-characters!!";

interface Result {
  store: string;
  users: number;
  fill: number;
  list: number;
  destroy: number;
}

async function measure(name: string, store: Store, users: number): Promise<Result> {
  const m = createSessions({
    store,
    keys: [KEY],
    identify: (d) => d.userId,
    client: false,
    logger: { warn() {} },
  });
  const t0 = performance.now();
  const BATCH = 100;
  for (let u = 0; u < users; u += BATCH) {
    const logins: Promise<unknown>[] = [];
    for (let v = u; v < Math.min(users, u + BATCH); v++) {
      for (let d = 0; d < 3; d++) {
        const s = m.open(null);
        s.session.userId = `user-${v}`;
        logins.push(m.commit(s));
      }
    }
    await Promise.all(logins);
  }
  const fill = performance.now() - t0;
  // Distinct users: the timed sample, and a warm-up set (JIT, the store's caches).
  const picked = Array.from({ length: 2 * SAMPLES }, (_, i) => `user-${(i * 7919) % users}`);
  const sample = picked.slice(0, SAMPLES);
  for (const user of picked.slice(SAMPLES)) {
    await m.listByUser(user);
    await m.destroyByUser(user, { except: (await m.listByUser(user))[0]!.sessionId });
  }
  for (const user of sample) await m.listByUser(user);

  let t = performance.now();
  for (const user of sample) {
    if ((await m.listByUser(user)).length !== 3) throw new Error(`${name}: ${user} lost sessions`);
  }
  const list = (performance.now() - t) / SAMPLES;

  const keep = await Promise.all(sample.map(async (u) => (await m.listByUser(u))[0]!.sessionId));
  t = performance.now();
  for (const [i, user] of sample.entries()) {
    const ended = await m.destroyByUser(user, { except: keep[i] });
    if (ended !== 2) throw new Error(`${name}: destroyByUser ended ${ended}, not 2`);
  }
  const destroy = (performance.now() - t) / SAMPLES;
  m.close();
  return { store: name, users, fill, list, destroy };
}

const stores: { name: string; open(): Promise<{ store: Store; close(): Promise<void> }> }[] = [
  {
    name: "MapStore",
    open: () => Promise.resolve({ store: new MapStore(), close: async () => {} }),
  },
  {
    name: "toStore(Map) fallback",
    open: () => Promise.resolve({ store: toStore(new Map()), close: async () => {} }),
  },
  {
    name: "DenoKvStore :memory:",
    open: async () => {
      const store = await DenoKvStore.open(":memory:");
      return { store, close: () => Promise.resolve(store.close()) };
    },
  },
];
if (!redisSkipReason()) {
  stores.push({
    name: "RedisStore",
    open: async () => {
      const server = await startRedisServer();
      const client = new Redis({ host: "127.0.0.1", port: server.port });
      const store = new RedisStore({ client });
      return {
        store,
        close: async () => {
          await store.close();
          client.disconnect();
          await server.stop();
        },
      };
    },
  });
} else console.log(`RedisStore skipped: ${redisSkipReason()}`);

const rows: Result[] = [];
for (const { name, open } of stores) {
  for (const users of [Math.max(2 * SAMPLES, Math.round(USERS / 10)), USERS]) {
    const { store, close } = await open();
    try {
      rows.push(await measure(name, store, users));
    } finally {
      await close();
    }
  }
}
const ms = (n: number) => n.toFixed(3).padStart(9);
console.log(
  `\n${"store".padEnd(24)}${"users".padStart(8)}${"sessions".padStart(10)}  fill (s)` +
    `  listByUser (ms)  destroyByUser except 1 (ms)`,
);
for (const r of rows) {
  console.log(
    `${r.store.padEnd(24)}${String(r.users).padStart(8)}${String(r.users * 3).padStart(10)}` +
      `${(r.fill / 1000).toFixed(1).padStart(10)}${ms(r.list)}        ${ms(r.destroy)}`,
  );
}

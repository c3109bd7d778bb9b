// Two real app processes sharing one real redis-server, each with Hono over HTTP, socket.io
// clustered through @socket.io/redis-adapter, and unisession's socket.io adapter on a RedisStore
// (tests/helpers/instance_server.ts). The test talks to them like a browser behind a load
// balancer: one cookie jar, requests and sockets to either instance. Run twice: Node + Node with
// onDestroy "disconnect", and Node + Bun with onDestroy "emit".
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Socket as ClientSocket } from "socket.io-client";
import type { Client } from "./helpers/cookie_jar.ts";
import { connectSocket, waitForEvent } from "./helpers/demo_process.ts";
import { ask, browser, getJson, type Instance, until } from "./helpers/instance_process.ts";
import type { SeenEvent } from "./helpers/instance_app.ts";
import { type PairOptions, startPair } from "./helpers/redis_instances.ts";
import { type RedisServer, redisSkipReason, startRedisServer } from "./helpers/redis_server.ts";

const skip = redisSkipReason();

interface WhoAmI {
  clientId: string | null;
  sessionId: string | null;
  session: Record<string, unknown> | null;
}
type Reply<V = unknown> = { ok: V } | { missing: true } | { error: string };

/** A browser logged in over HTTP on `at`, plus a socket on each instance opened after login. */
async function loggedIn(at: Instance, a: Instance, b: Instance) {
  const tab = browser();
  const login = await tab.post(`${at.url}/login`);
  assert.equal(login.status, 200, login.body);
  const { sessionId } = JSON.parse(login.body) as { sessionId: string };
  const sockets = await Promise.all([a, b].map((i) => connectSocket(i.url, tab.jar.header())));
  return { tab, sessionId, sockets: sockets as [ClientSocket, ClientSocket] };
}

/** Resolves with the event's name and reason once `socket` disconnects (5 s at most). */
function disconnected(socket: ClientSocket): Promise<string> {
  if (!socket.connected) return Promise.resolve("already disconnected");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("socket not disconnected within 5 s")), 5000);
    socket.once("disconnect", (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

/** Counts `event` on `socket` from now on. */
function counter(socket: ClientSocket, event: string): () => number {
  let n = 0;
  socket.on(event, () => n++);
  return () => n;
}

async function lastEvent(i: Instance, match: (e: SeenEvent) => boolean): Promise<SeenEvent> {
  return await until(`event on ${i.runtime} instance`, async () => {
    return (await getJson<SeenEvent[]>(`${i.url}/events`)).findLast(match);
  });
}

function describePair(title: string, options: PairOptions): void {
  describe(title, () => {
    let redis: RedisServer | undefined;
    let a: Instance;
    let b: Instance;
    const sockets: ClientSocket[] = [];
    const open = (s: ClientSocket[]) => (sockets.push(...s), s);

    before(async () => {
      redis = await startRedisServer();
      ({ a, b } = await startPair(redis.port, options));
    }, { timeout: 60_000 });

    after(async () => {
      for (const s of sockets) s.close();
      const health = await Promise.all(
        [a, b].filter(Boolean).map(async (i) => {
          const h = await getJson<{ unhandled: string[] }>(`${i.url}/health`).catch((e) => e);
          await i.stop();
          return h;
        }),
      );
      await redis?.stop();
      // Reported here too: a test may have passed while a process recorded a stray rejection.
      for (const h of health) assert.deepEqual(h.unhandled, []);
    });

    test(
      "login over HTTP on A: a socket connected to B before it sees the session and gets the event (remote); logout over HTTP on B reaches the socket on A",
      {
        timeout: 30_000,
      },
      async () => {
        const tab = browser();
        // First visit: the browser gets its client-id cookie; no session yet.
        const first = await tab.get(`${a.url}/me`);
        assert.equal(first.status, 200);
        assert.equal(JSON.parse(first.body).sessionId, null);
        assert.ok(tab.jar.header(), "no client-id cookie on the first visit");
        const [onA, onB] = open(
          await Promise.all([a, b].map((i) => connectSocket(i.url, tab.jar.header()))),
        ) as [ClientSocket, ClientSocket];
        const before = await ask<Reply<WhoAmI>>(onB, "whoami");
        assert.ok("ok" in before);
        assert.equal(before.ok.sessionId, null);
        assert.ok(before.ok.clientId, "the socket on B has no client id");
        assert.deepEqual(await ask(onB, "user"), { missing: true });

        const setOnB = waitForEvent<{ sessionId: string; remote: boolean; isNew: boolean }>(
          onB,
          "session:set",
        );
        const setOnA = waitForEvent<{ sessionId: string; remote: boolean }>(onA, "session:set");
        const t0 = performance.now();
        const login = await tab.post(`${a.url}/login`);
        assert.equal(login.status, 200);
        const { sessionId } = JSON.parse(login.body) as { sessionId: string };

        assert.deepEqual(await setOnB, { sessionId, remote: true, isNew: true });
        const eventMs = performance.now() - t0;
        assert.equal((await setOnA).remote, false);
        // B's socket follows the session created on A: id, snapshot and withSession.
        const seen = await until("socket.session on B", async () => {
          const r = await ask<Reply<WhoAmI>>(onB, "whoami");
          return "ok" in r && r.ok.session?.user === "ada" ? r.ok : undefined;
        });
        assert.equal(seen.sessionId, sessionId);
        assert.equal(seen.clientId, before.ok.clientId);
        assert.deepEqual(await ask(onB, "user"), { ok: "ada" });
        assert.deepEqual(JSON.parse((await tab.get(`${b.url}/me`)).body).user, "ada");
        assert.equal((await lastEvent(b, (e) => e.sessionId === sessionId)).remote, true);

        // Logout over HTTP on B.
        const emitMode = options.onDestroy === "emit";
        const notified = [counter(onA, "session:destroyed"), counter(onB, "session:destroyed")];
        const gone = emitMode
          ? Promise.all([onA, onB].map((s) => waitForEvent(s, "session:destroyed")))
          : Promise.all([onA, onB].map(disconnected));
        const t1 = performance.now();
        assert.equal((await tab.post(`${b.url}/logout`)).status, 200);
        const reasons = await gone;
        const logoutMs = performance.now() - t1;
        if (emitMode) {
          // Notified once (the socket.io adapter's broadcast and the store event do not double
          // up), still connected, without a session.
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.deepEqual(notified.map((n) => n()), [1, 1]);
          assert.ok(onA.connected && onB.connected);
          const after = await ask<Reply<WhoAmI>>(onA, "whoami");
          assert.ok("ok" in after);
          assert.equal(after.ok.sessionId, null);
          assert.deepEqual(await ask(onA, "user"), { missing: true });
        } else {
          assert.deepEqual(reasons, ["io server disconnect", "io server disconnect"]);
        }
        const destroyed = await lastEvent(a, (e) => e.name === "sessionDestroy");
        assert.deepEqual(destroyed, {
          name: "sessionDestroy",
          sessionId,
          remote: true,
          reason: "destroy",
        });
        assert.equal(JSON.parse((await tab.get(`${a.url}/me`)).body).user, null);
        console.log(
          `cross-instance (${title}): login on A -> event on B's socket ${
            eventMs.toFixed(0)
          } ms; ` +
            `logout on B -> A's socket ${emitMode ? "notified" : "disconnected"} ${
              logoutMs.toFixed(0)
            } ms`,
        );
      },
    );

    test(
      "logouts over HTTP on B: every socket of those sessions, on A and on B, is acted on exactly once",
      {
        timeout: 30_000,
      },
      async () => {
        const users = await Promise.all(Array.from({ length: 20 }, () => loggedIn(a, a, b)));
        const sockets = open(users.flatMap((u) => u.sockets));
        const notified = sockets.map((s) => counter(s, "session:destroyed"));
        const disconnects = sockets.map((s) => counter(s, "disconnect"));
        await Promise.all(users.map(async ({ tab }) => {
          assert.equal((await tab.post(`${b.url}/logout`)).status, 200);
        }));
        const acted = options.onDestroy === "emit" ? notified : disconnects;
        await until("every socket acted on", () => acted.every((n) => n() > 0) || undefined);
        // Late duplicates (the cluster broadcast and the store event racing) would arrive by now.
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(acted.map((n) => n()).join(""), sockets.map(() => 1).join(""));
        if (options.onDestroy === "emit") assert.ok(sockets.every((s) => s.connected));
      },
    );

    test(
      "2,000 concurrent manager.update increments, over HTTP and socket events on both instances, end exact",
      {
        timeout: 60_000,
      },
      async () => {
        const { tab, sessionId, sockets: [onA, onB] } = await loggedIn(a, a, b);
        open([onA, onB]);
        const overHttp = (i: Instance) => async () => {
          const res = await tab.post(`${i.url}/incr`);
          assert.equal(res.status, 200, res.body);
          return JSON.parse(res.body).count as number;
        };
        const overSocket = (s: ClientSocket) => async () => {
          const r = await ask<Reply<number>>(s, "incr", 30_000);
          assert.ok("ok" in r, JSON.stringify(r));
          return r.ok;
        };
        // 500 each: POST /incr on A, POST /incr on B, socket "incr" on A, socket "incr" on B.
        const sources = [overHttp(a), overHttp(b), overSocket(onA), overSocket(onB)];
        const t0 = performance.now();
        const counts = await Promise.all(
          Array.from({ length: 2000 }, (_, n) => sources[n % 4]!()),
        );
        const ms = performance.now() - t0;
        // Every increment saw a distinct value: none was lost or applied twice.
        assert.deepEqual(
          counts.sort((x, y) => x - y),
          Array.from({ length: 2000 }, (_, n) => n + 1),
        );
        for (const i of [a, b]) {
          const data = JSON.parse((await tab.get(`${i.url}/data`)).body);
          assert.equal(data.count, 2000);
          assert.equal(data.user, "ada");
        }
        console.log(
          `cross-instance (${title}): 2000 increments (session ${sessionId.slice(0, 6)}…) ` +
            `in ${ms.toFixed(0)} ms, final count 2000`,
        );
      },
    );

    test(
      "500 concurrent requests setting distinct keys through both instances leave all 500 keys",
      {
        timeout: 60_000,
      },
      async () => {
        const tab: Client = browser();
        assert.equal((await tab.post(`${b.url}/login`)).status, 200);
        const t0 = performance.now();
        const statuses = await Promise.all(Array.from({ length: 500 }, async (_, n) => {
          const at = n % 2 === 0 ? a : b;
          return (await tab.fetch(`${at.url}/keys/k${n}`, { method: "PUT" })).status;
        }));
        const ms = performance.now() - t0;
        assert.deepEqual(new Set(statuses), new Set([204]));
        for (const i of [a, b]) {
          const data = JSON.parse((await tab.get(`${i.url}/data`)).body) as Record<string, unknown>;
          const keys = Object.keys(data).filter((k) => /^k\d+$/.test(k));
          assert.equal(keys.length, 500);
          for (let n = 0; n < 500; n++) assert.equal(data[`k${n}`], `k${n}`);
          assert.equal(data.user, "ada");
        }
        console.log(
          `cross-instance (${title}): 500 distinct keys in ${ms.toFixed(0)} ms, 500 kept`,
        );
      },
    );
  });
}

if (skip) {
  test(`cross-instance Redis + socket.io: ${skip}`, { skip }, () => {});
} else {
  describe("two Node instances whose store shares no events: @socket.io/redis-adapter alone", () => {
    test("logout over HTTP on B disconnects the session's socket on A", {
      timeout: 60_000,
    }, async () => {
      const redis = await startRedisServer();
      const pair = await startPair(redis.port, {
        runtimes: ["node", "node"],
        onDestroy: "disconnect",
        noStoreEvents: true,
      }).catch(async (err) => {
        await redis.stop();
        throw err;
      });
      const { a, b } = pair;
      let sockets: ClientSocket[] = [];
      try {
        const user = await loggedIn(a, a, b);
        sockets = user.sockets;
        const [onA] = user.sockets;
        const who = await ask<Reply<WhoAmI>>(onA, "whoami");
        assert.ok("ok" in who && who.ok.sessionId === user.sessionId);
        const gone = disconnected(onA);
        assert.equal((await user.tab.post(`${b.url}/logout`)).status, 200);
        assert.equal(await gone, "io server disconnect");
        // A heard no event: nothing reached it but the socket.io adapter's broadcast.
        assert.deepEqual(await getJson(`${a.url}/events`), [
          { name: "sessionSet", sessionId: user.sessionId, remote: false },
        ]);
      } finally {
        for (const s of sockets) s.close();
        await Promise.all([a.stop(), b.stop()]);
        await redis.stop();
      }
    });
  });

  describePair("Node + Node instances, onDestroy: disconnect", {
    runtimes: ["node", "node"],
    onDestroy: "disconnect",
  });
  describePair("Node + Bun instances, onDestroy: emit", {
    runtimes: ["node", "bun"],
    onDestroy: "emit",
  });
}

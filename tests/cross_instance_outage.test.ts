// Redis stopped in the middle of load and started again on the same port (with its data: an
// append-only file), under two app processes (Node A, Bun B: Hono + socket.io +
// @socket.io/redis-adapter + unisession, storeTimeout 1000 ms). While Redis is down every request
// fails within the store timeout with a StoreError (HTTP 503, ERR_STORE), socket calls get a
// StoreError reply, nothing crashes; once Redis is back everything works again, events across
// instances included, without restarting the app.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket as ClientSocket } from "socket.io-client";
import { connectSocket, waitForEvent } from "./helpers/demo_process.ts";
import { ask, browser, getJson, type Instance, sleep, until } from "./helpers/instance_process.ts";
import { startPair, waitForInstances } from "./helpers/redis_instances.ts";
import { type RedisServer, redisSkipReason, startRedisServer } from "./helpers/redis_server.ts";

const skip = redisSkipReason();
const STORE_TIMEOUT = 1000;
const OUTAGE_MS = 2500;

/** One call of the load: where it went, when it started, how long it took, what came back. */
interface Outcome {
  via: string;
  start: number;
  ms: number;
  /** "ok", "ERR_STORE" (503 / StoreError reply), or anything else (a failure of the test). */
  result: string;
}

type Reply = { ok: unknown } | { missing: true } | { error: string };

const now = () => performance.now();

if (skip) {
  test(`Redis outage under load: ${skip}`, { skip }, () => {});
} else {
  describe("Redis stopped in the middle of load, restarted on the same port", () => {
    test(
      "requests fail fast with a StoreError (503), sockets get StoreError replies, nothing crashes, everything works again after the restart",
      {
        timeout: 90_000,
      },
      async () => {
        const dir = mkdtempSync(join(tmpdir(), "unisession-outage-"));
        let redis: RedisServer | undefined = await startRedisServer({ dir });
        const port = redis.port;
        const sockets: ClientSocket[] = [];
        let pair: { a: Instance; b: Instance; prefix: string } | undefined;
        try {
          pair = await startPair(port, {
            runtimes: ["node", "bun"],
            onDestroy: "disconnect",
            storeTimeout: STORE_TIMEOUT,
          });
          const { a, b, prefix } = pair;
          const tab = browser();
          assert.equal((await tab.post(`${a.url}/login`)).status, 200);
          const [onA, onB] = await Promise.all(
            [a, b].map((i) => connectSocket(i.url, tab.jar.header())),
          );
          sockets.push(onA!, onB!);
          const dropped: string[] = [];
          for (const s of sockets) s.on("disconnect", (reason) => dropped.push(reason));

          // The load: POST /incr on each instance (3 loops each), socket "incr" and "user" on each.
          const log: Outcome[] = [];
          let running = true;
          const loop = (via: string, call: () => Promise<string>) => async () => {
            while (running) {
              const start = now();
              let result: string;
              try {
                result = await call();
              } catch (err) {
                result = `threw ${String(err)}`;
              }
              log.push({ via, start, ms: now() - start, result });
              await sleep(5);
            }
          };
          const http = (i: Instance) => async () => {
            const res = await tab.post(`${i.url}/incr`);
            if (res.status === 200) return "ok";
            const error = res.status === 503 ? JSON.parse(res.body).error : undefined;
            return error === "ERR_STORE" ? error : `HTTP ${res.status} ${res.body}`;
          };
          const socket = (s: ClientSocket, event: string) => async () => {
            const r = await ask<Reply>(s, event, 5000);
            return "ok" in r ? "ok" : "error" in r ? r.error : JSON.stringify(r);
          };
          const sources: [string, () => Promise<string>][] = [
            ["http A", http(a)],
            ["http B", http(b)],
            ["socket incr A", socket(onA!, "incr")],
            ["socket incr B", socket(onB!, "incr")],
            ["socket user A", socket(onA!, "user")],
            ["socket user B", socket(onB!, "user")],
          ];
          const loops = [
            ...sources,
            ...sources.filter(([via]) => via.startsWith("http")),
            ...sources.filter(([via]) => via.startsWith("http")),
          ].map(([via, call]) => loop(via, call)());

          await sleep(400);
          const tStop = now();
          await redis.stop();
          redis = undefined;
          await sleep(OUTAGE_MS);
          redis = await startRedisServer({ port, dir });
          const tUp = now();
          // Recovered: every source had a success that started after Redis was back.
          const firstOk = new Map<string, number>();
          await until("every source succeeds again", () => {
            for (const o of log) {
              if (o.result === "ok" && o.start >= tUp && !firstOk.has(o.via)) {
                firstOk.set(o.via, o.start + o.ms - tUp);
              }
            }
            return firstOk.size === sources.length || undefined;
          }, 20_000);
          running = false;
          await Promise.all(loops);

          const during = log.filter((o) => o.start >= tStop && o.start < tUp);
          const unexpected = log.filter((o) => o.result !== "ok" && o.result !== "ERR_STORE");
          assert.deepEqual(unexpected, [], "only successes and StoreErrors");
          for (const [via] of sources) {
            assert.ok(
              during.some((o) => o.via === via && o.result === "ERR_STORE"),
              `${via}: no StoreError while Redis was down`,
            );
          }
          const slowest = Math.max(...log.map((o) => o.ms));
          // A call does at most two store operations before it fails (a read, then the update).
          assert.ok(slowest < 2 * STORE_TIMEOUT + 1000, `a call took ${slowest.toFixed(0)} ms`);
          assert.deepEqual(dropped, [], "a socket was disconnected during the outage");
          for (const i of [a, b]) {
            assert.ok(i.alive(), `the ${i.runtime} instance died:\n${i.output()}`);
            assert.deepEqual(
              (await getJson<{ unhandled: string[] }>(`${i.url}/health`)).unhandled,
              [],
            );
          }

          // Every acknowledged increment is in the count; a timed-out one may have been applied
          // later (ioredis queued it while offline) but none is invented.
          const incr = log.filter((o) =>
            o.via.startsWith("http") || o.via.startsWith("socket incr")
          );
          const acked = incr.filter((o) => o.result === "ok").length;
          const count = JSON.parse((await tab.get(`${b.url}/data`)).body).count as number;
          assert.ok(count >= acked && count <= incr.length, `count ${count}, acked ${acked}`);

          // Everything works again: pub/sub resubscribed, a new login on A reaches a socket on B,
          // and a logout on B disconnects the first browser's socket on A.
          const tSub = now();
          await waitForInstances(port, prefix);
          const resubscribedMs = now() - tSub;
          const tab2 = browser();
          await tab2.get(`${a.url}/me`);
          const onB2 = await connectSocket(b.url, tab2.jar.header());
          sockets.push(onB2);
          const set = waitForEvent<{ remote: boolean }>(onB2, "session:set");
          assert.equal((await tab2.post(`${a.url}/login`)).status, 200);
          assert.equal((await set).remote, true);
          assert.deepEqual(await ask(onB2, "user"), { ok: "ada" });
          const gone = new Promise((resolve) => onA!.once("disconnect", resolve));
          assert.equal((await tab.post(`${b.url}/logout`)).status, 200);
          assert.equal(await gone, "io server disconnect");
          for (const i of [a, b]) {
            assert.deepEqual(
              (await getJson<{ unhandled: string[] }>(`${i.url}/health`)).unhandled,
              [],
            );
          }

          const per = (via: string) =>
            during.filter((o) => o.via === via && o.result === "ERR_STORE");
          console.log(
            `Redis outage: down ${(tUp - tStop).toFixed(0)} ms; StoreErrors while down: ` +
              sources.map(([via]) => `${via} ${per(via).length}`).join(", ") +
              `; slowest call ${
                slowest.toFixed(0)
              } ms (storeTimeout ${STORE_TIMEOUT}); recovered ` +
              `(first success after restart): ${
                [...firstOk].map(([via, ms]) => `${via} ${ms.toFixed(0)} ms`).join(", ")
              }; pub/sub resubscribed ${resubscribedMs.toFixed(0)} ms later; increments: ` +
              `${incr.length} attempted, ${acked} acknowledged, final count ${count}`,
          );
        } finally {
          for (const s of sockets) s.close();
          if (pair) await Promise.all([pair.a.stop(), pair.b.stop()]);
          await redis?.stop();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
}

// Two real `deno run` processes (Hono on Deno.serve, tests/helpers/kv_instance_server.ts) sharing
// one Deno KV file through DenoKvStore: a login on A is a session on B, the events of one reach
// the other with remote: true (the store's polled event log), concurrent increments through both
// end exact (versionstamp check, "database is locked" retried), and concurrent patch commits of
// distinct keys through both keep every key. Spawned with ./node_modules/.bin/deno whichever
// runtime runs this file.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  browser,
  getJson,
  type Instance,
  spawnInstance,
  until,
} from "./helpers/instance_process.ts";
import type { SeenEvent } from "./helpers/instance_app.ts";

async function eventOn(i: Instance, match: (e: SeenEvent) => boolean): Promise<SeenEvent> {
  return await until(`event on ${i.url}`, async () => {
    return (await getJson<SeenEvent[]>(`${i.url}/events`)).findLast(match);
  });
}

describe("two Deno processes sharing one Deno KV file", () => {
  let dir: string;
  let a: Instance;
  let b: Instance;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "unisession-kv-"));
    // The 2,000 increments below queue behind each other in each process (one update of a
    // session at a time) and against the other process (versionstamp check): on a loaded CI
    // machine the last ones waited more than the library's 10 s store timeout and answered 503.
    // The test is about exactness under contention, so the instances wait up to 60 s.
    const args = [
      "--kv",
      join(dir, "sessions.db"),
      "--prefix",
      "multi",
      "--store-timeout",
      "60000",
    ];
    const started = await Promise.allSettled([
      spawnInstance("deno", "tests/helpers/kv_instance_server.ts", args),
      spawnInstance("deno", "tests/helpers/kv_instance_server.ts", args),
    ]);
    const up = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      await Promise.all(up.map((i) => i.stop()));
      throw failed.reason;
    }
    [a, b] = up as [Instance, Instance];
  }, { timeout: 60_000 });

  after(async () => {
    const health = await Promise.all(
      [a, b].filter(Boolean).map(async (i) => {
        const h = await getJson<{ unhandled: string[] }>(`${i.url}/health`).catch((e) => e);
        await i.stop();
        return h;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
    for (const h of health) assert.deepEqual(h.unhandled, []);
  });

  test(
    "a login on A is a session on B; events cross with remote: true; a logout on B ends it on A",
    {
      timeout: 30_000,
    },
    async () => {
      const tab = browser();
      const t0 = performance.now();
      const login = await tab.post(`${a.url}/login`);
      assert.equal(login.status, 200);
      const { sessionId } = JSON.parse(login.body) as { sessionId: string };
      const me = JSON.parse((await tab.get(`${b.url}/me`)).body);
      assert.equal(me.user, "ada");
      assert.equal(me.sessionId, sessionId);

      const set = await eventOn(b, (e) => e.name === "sessionSet" && e.sessionId === sessionId);
      const setMs = performance.now() - t0;
      assert.equal(set.remote, true);
      const local = await eventOn(a, (e) => e.name === "sessionSet" && e.sessionId === sessionId);
      assert.equal(local.remote, false);

      const t1 = performance.now();
      assert.equal((await tab.post(`${b.url}/logout`)).status, 200);
      const destroyed = await eventOn(a, (e) => e.name === "sessionDestroy");
      const destroyMs = performance.now() - t1;
      assert.deepEqual(destroyed, {
        name: "sessionDestroy",
        sessionId,
        remote: true,
        reason: "destroy",
      });
      assert.equal(JSON.parse((await tab.get(`${a.url}/me`)).body).user, null);
      console.log(
        `cross-instance Deno KV: login event on B after ${
          setMs.toFixed(0)
        } ms, logout event on A ` +
          `after ${destroyMs.toFixed(0)} ms (event log polled every 500 ms)`,
      );
    },
  );

  test(
    "2,000 concurrent manager.update increments over HTTP, split across both processes, end exact",
    {
      timeout: 120_000,
    },
    async () => {
      const tab = browser();
      assert.equal((await tab.post(`${a.url}/login`)).status, 200);
      const t0 = performance.now();
      const counts = await Promise.all(Array.from({ length: 2000 }, async (_, n) => {
        const res = await tab.post(`${(n % 2 === 0 ? a : b).url}/incr`);
        assert.equal(res.status, 200, res.body);
        return JSON.parse(res.body).count as number;
      }));
      const ms = performance.now() - t0;
      assert.deepEqual(counts.sort((x, y) => x - y), Array.from({ length: 2000 }, (_, n) => n + 1));
      for (const i of [a, b]) {
        assert.equal(JSON.parse((await tab.get(`${i.url}/data`)).body).count, 2000);
      }
      console.log(
        `cross-instance Deno KV: 2000 increments in ${ms.toFixed(0)} ms, final count 2000`,
      );
    },
  );

  test("500 concurrent requests setting distinct keys through both processes leave all 500 keys", {
    timeout: 60_000,
  }, async () => {
    const tab = browser();
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
      assert.equal(Object.keys(data).filter((k) => /^k\d+$/.test(k)).length, 500);
      for (let n = 0; n < 500; n++) assert.equal(data[`k${n}`], `k${n}`);
      assert.equal(data.user, "ada");
    }
    console.log(`cross-instance Deno KV: 500 distinct keys in ${ms.toFixed(0)} ms, 500 kept`);
  });
});

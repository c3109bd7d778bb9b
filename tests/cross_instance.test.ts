// Two real app processes (Node, spawned) sharing one real redis-server: a login over HTTP on
// instance A is a session on instance B, and the events raised on A reach B with remote: true.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { CookieJar } from "./helpers/cookie_jar.ts";
import { redisSkipReason, startRedisServer, waitForSubscribers } from "./helpers/redis_server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const skip = redisSkipReason();
/** Node itself when this suite runs on Node; the `node` on PATH under Deno and Bun. */
const nodeBin = "Deno" in globalThis || "Bun" in globalThis ? "node" : process.execPath;

interface Instance {
  url: string;
  stop(): Promise<void>;
}

/** Spawns tests/helpers/instance_server.ts and waits for its `listening <port>` line. */
function startInstance(redisPort: number, prefix: string): Promise<Instance> {
  const child: ChildProcess = spawn(
    nodeBin,
    ["--import", "tsx", "tests/helpers/instance_server.ts", String(redisPort), prefix],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    child.stdout!.destroy();
    child.stderr!.destroy();
  };
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error("no 'listening' line within 30 s")), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`${err.message}\n${output}`)));
    };
    child.once("error", fail);
    const early = (code: number | null) => fail(new Error(`instance exited early (code ${code})`));
    child.once("exit", early);
    child.stderr!.on("data", (chunk) => (output += chunk));
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.off("exit", early);
      resolve({ url: `http://127.0.0.1:${match[1]}`, stop });
    });
  });
}

interface SeenEvent {
  name: string;
  sessionId: string;
  remote: boolean;
  reason?: string;
}

/** Polls an instance's recorded events until one matches (5 s at most). */
async function waitForEvent(url: string, match: (e: SeenEvent) => boolean): Promise<SeenEvent> {
  const deadline = Date.now() + 5000;
  let events: SeenEvent[] = [];
  while (Date.now() < deadline) {
    events = await (await fetch(`${url}/events`)).json();
    const found = events.find(match);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`event not seen within 5 s; seen: ${JSON.stringify(events)}`);
}

if (skip) {
  test(`cross-instance events: ${skip}`, { skip }, () => {});
} else {
  describe("two app processes sharing one Redis", () => {
    test("a login on A is a session on B; A's events reach B with remote: true", {
      timeout: 90_000,
    }, async () => {
      const redis = await startRedisServer();
      const prefix = `multi:${crypto.randomUUID()}:`;
      const started: Instance[] = [];
      try {
        const [a, b] = await Promise.all([
          startInstance(redis.port, prefix),
          startInstance(redis.port, prefix),
        ]);
        started.push(a!, b!);
        // Pub/sub does not queue: wait until both instances have subscribed to the channel.
        const probe = new Redis({ host: "127.0.0.1", port: redis.port });
        await waitForSubscribers(probe, `${prefix}events`, 2).finally(() => probe.disconnect());
        const jar = new CookieJar();
        const send = async (url: string, method = "GET") => {
          const headers: Record<string, string> = {};
          const cookie = jar.header();
          if (cookie) headers.cookie = cookie;
          const res = await fetch(url, { method, headers });
          jar.apply(res);
          return res;
        };

        const login = await send(`${a!.url}/login`, "POST");
        assert.equal(login.status, 200);
        const { sessionId } = await login.json() as { sessionId: string };

        const me = await (await send(`${b!.url}/me`)).json();
        assert.deepEqual(me, { user: "ada", sessionId }, "B does not see A's session");

        const set = await waitForEvent(
          b!.url,
          (e) => e.name === "sessionSet" && e.sessionId === sessionId,
        );
        assert.equal(set.remote, true);
        const local = await waitForEvent(
          a!.url,
          (e) => e.name === "sessionSet" && e.sessionId === sessionId,
        );
        assert.equal(local.remote, false);

        assert.equal((await send(`${a!.url}/logout`, "POST")).status, 200);
        const destroyed = await waitForEvent(
          b!.url,
          (e) => e.name === "sessionDestroy" && e.sessionId === sessionId,
        );
        assert.deepEqual(destroyed, {
          name: "sessionDestroy",
          sessionId,
          remote: true,
          reason: "destroy",
        });
        const after = await (await send(`${b!.url}/me`)).json();
        assert.equal(after.user, null, "B still sees the logged-out session");
      } finally {
        await Promise.all(started.map((i) => i.stop()));
        await redis.stop();
      }
    });
  });
}

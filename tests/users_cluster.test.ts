// Per-user revocation across two real app processes (Node, spawned) sharing one real
// redis-server: three devices of one user, each with a socket.io socket on BOTH instances.
// Revoking one device on A disconnects its sockets on A and B and ends its HTTP session on both;
// "log out everywhere except this one" on B does the same for every other device.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
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

/** Spawns tests/helpers/users_instance.ts and waits for its `listening <port>` line. */
function startInstance(redisPort: number, prefix: string): Promise<Instance> {
  const child: ChildProcess = spawn(
    nodeBin,
    ["--import", "tsx", "tests/helpers/users_instance.ts", String(redisPort), prefix],
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

interface Who {
  sessionId: string | null;
  user: string | null;
}

/** A browser: a cookie jar, its session id, and a socket on each instance. */
class Device {
  readonly jar = new CookieJar();
  sessionId = "";
  readonly sockets: { socket: ClientSocket; dropped: Promise<string> }[] = [];
  constructor(readonly name: string) {}

  async send(url: string, method = "GET"): Promise<Response> {
    const headers: Record<string, string> = { "user-agent": this.name };
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { method, headers });
    this.jar.apply(res);
    return res;
  }

  async json<T>(url: string, method = "GET"): Promise<T> {
    const res = await this.send(url, method);
    assert.equal(res.status, 200, `${this.name}: ${method} ${url} → ${res.status}`);
    return await res.json() as T;
  }

  async connect(url: string): Promise<void> {
    const socket = ioc(url, {
      transports: ["websocket"],
      extraHeaders: { cookie: this.jar.header()! },
      forceNew: true,
      reconnection: false,
      timeout: 5000,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    });
    const dropped = new Promise<string>((resolve) => socket.once("disconnect", resolve));
    this.sockets.push({ socket, dropped });
    const who = await socket.timeout(3000).emitWithAck("whoami") as Who;
    assert.equal(who.sessionId, this.sessionId, `${this.name}'s socket on ${url}`);
  }

  close(): void {
    for (const { socket } of this.sockets) socket.close();
  }
}

if (skip) {
  test(`per-user revocation across two processes: ${skip}`, { skip }, () => {});
} else {
  describe("per-user revocation across two app processes sharing one Redis", () => {
    test("revoke one device, then all but this one: sockets on both instances follow", {
      timeout: 90_000,
    }, async () => {
      const redis = await startRedisServer();
      const prefix = `users-multi:${crypto.randomUUID()}:`;
      const started: Instance[] = [];
      const devices = ["laptop", "phone", "tablet"].map((n) => new Device(n));
      try {
        const [A, B] = await Promise.all([
          startInstance(redis.port, prefix),
          startInstance(redis.port, prefix),
        ]);
        started.push(A!, B!);
        const probe = new Redis({ host: "127.0.0.1", port: redis.port });
        await waitForSubscribers(probe, `${prefix}events`, 2).finally(() => probe.disconnect());

        // Each device logs in on one instance and opens a socket on both.
        for (const [i, d] of devices.entries()) {
          const { sessionId } = await d.json<{ sessionId: string }>(
            `${(i % 2 ? B : A)!.url}/login?user=ada`,
            "POST",
          );
          d.sessionId = sessionId;
          await d.connect(A!.url);
          await d.connect(B!.url);
        }
        const [laptop, phone, tablet] = devices as [Device, Device, Device];

        const listed = await laptop.json<{ sessionId: string; current: boolean; meta: unknown }[]>(
          `${B!.url}/devices`,
        );
        assert.deepEqual(
          listed.map((s) => [s.sessionId, s.current, s.meta]),
          devices.map((d) => [d.sessionId, d === laptop, { userAgent: d.name }]),
        );

        const signedIn = async (d: Device) => {
          for (const url of [A!.url, B!.url]) {
            const me = await d.json<Who>(`${url}/me`);
            assert.deepEqual(me, { user: "ada", sessionId: d.sessionId }, `${d.name} on ${url}`);
          }
          for (const { socket } of d.sockets) {
            assert.equal(socket.connected, true, `${d.name}'s socket was disconnected`);
            const who = await socket.timeout(3000).emitWithAck("whoami") as Who;
            assert.deepEqual(who, { sessionId: d.sessionId, user: "ada" });
          }
        };
        const signedOut = async (d: Device) => {
          for (const { dropped } of d.sockets) assert.equal(await dropped, "io server disconnect");
          for (const url of [A!.url, B!.url]) {
            assert.equal((await d.json<Who>(`${url}/me`)).user, null, `${d.name} on ${url}`);
          }
        };

        // The laptop revokes the phone, on A. Someone else's id is refused.
        const refused = await tablet.json<{ revoked: boolean }>(
          `${A!.url}/revoke?id=not-a-session-of-ada`,
          "POST",
        );
        assert.equal(refused.revoked, false);
        const revoked = await laptop.json<{ revoked: boolean }>(
          `${A!.url}/revoke?id=${phone.sessionId}`,
          "POST",
        );
        assert.equal(revoked.revoked, true);
        await signedOut(phone);
        await signedIn(laptop);
        await signedIn(tablet);

        // The tablet logs out everywhere else, on B.
        const { ended } = await tablet.json<{ ended: number }>(`${B!.url}/logout-others`, "POST");
        assert.equal(ended, 1);
        await signedOut(laptop);
        await signedIn(tablet);
        const left = await tablet.json<{ sessionId: string }[]>(`${A!.url}/devices`);
        assert.deepEqual(left.map((s) => s.sessionId), [tablet.sessionId]);
      } finally {
        for (const d of devices) d.close();
        await Promise.all(started.map((i) => i.stop()));
        await redis.stop();
      }
    });
  });
}

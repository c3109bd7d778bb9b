// Three devices of one user (three cookie jars over real HTTP, each with a real socket.io socket)
// on MapStore, Deno KV and a real redis-server: listByUser shows the three; revoking one ends
// that device's HTTP session and disconnects its socket only; "log out everywhere except this
// one" ends the others. Native WebSockets: tests/users_ws.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Context } from "hono";
import { Redis } from "ioredis";
import type { Socket as ClientSocket } from "socket.io-client";
import { MapStore, type Store } from "../mod.ts";
import { DenoKvStore } from "../stores/deno_kv.ts";
import { RedisStore } from "../stores/redis.ts";
import type { Client } from "./helpers/cookie_jar.ts";
import { type RedisServer, redisSkipReason, startRedisServer } from "./helpers/redis_server.ts";
import { ask, type Harness, startHarness, type WhoAmI } from "./helpers/socket_io_harness.ts";

interface Device {
  name: string;
  browser: Client;
  sessionId: string;
  socket: ClientSocket;
  /** Resolves with the disconnect reason once the server disconnects the socket. */
  dropped: Promise<string>;
}

/** Logs a device in as `user` over HTTP, then opens its socket with the browser's cookies. */
async function device(h: Harness, name: string, user: string): Promise<Device> {
  const browser = h.browser();
  const res = await browser.post(`/login?user=${user}`, { headers: { "user-agent": name } });
  assert.equal(res.status, 200);
  const { sessionId } = JSON.parse(res.body) as { sessionId: string };
  const socket = await h.connect(browser.jar.header());
  const dropped = new Promise<string>((resolve) => socket.once("disconnect", resolve));
  const who = await ask<WhoAmI>(socket, "whoami");
  assert.equal(who.sessionId, sessionId, `${name}'s socket is not on its session`);
  return { name, browser, sessionId, socket, dropped };
}

/** What the device's next HTTP request sees. */
async function httpSession(d: Device): Promise<{ sessionId: string | null; user?: string }> {
  const res = await d.browser.get("/session");
  const body = JSON.parse(res.body) as { sessionId: string | null; data: { user?: string } };
  return { sessionId: body.sessionId, user: body.data.user };
}

/** The device still has its session over HTTP and over its (connected) socket. */
async function assertSignedIn(d: Device): Promise<void> {
  assert.deepEqual(await httpSession(d), { sessionId: d.sessionId, user: "ada" }, d.name);
  assert.equal(d.socket.connected, true, `${d.name}'s socket was disconnected`);
  const who = await ask<WhoAmI>(d.socket, "whoami");
  assert.equal(who.sessionId, d.sessionId, `${d.name}'s socket lost its session`);
}

/** The device lost its session over HTTP, and the server disconnected its socket. */
async function assertSignedOut(d: Device): Promise<void> {
  assert.equal(await d.dropped, "io server disconnect", `${d.name}'s socket`);
  assert.deepEqual(await httpSession(d), { sessionId: null, user: undefined }, d.name);
}

function threeDevices(name: string, open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  describe(`three devices of one user on ${name}`, () => {
    let h: Harness;
    let close: () => Promise<void>;
    before(async () => {
      const opened = await open();
      close = opened.close;
      h = await startHarness({
        manager: {
          store: opened.store,
          identify: (data) => data.user,
          describe: (c) => ({ userAgent: (c as Context).req.header("user-agent") }),
        },
      });
    });
    after(async () => {
      await h?.close();
      await close?.();
    });

    test("list shows three; revoke one → only it is out; all but this one → the others are out", {
      timeout: 30_000,
    }, async () => {
      const laptop = await device(h, "laptop", "ada");
      const phone = await device(h, "phone", "ada");
      const tablet = await device(h, "tablet", "ada");
      const bob = await device(h, "bob's laptop", "bob");

      const listed = await h.manager.listByUser("ada");
      assert.deepEqual(
        listed.map((s) => [s.sessionId, s.meta?.userAgent]),
        [laptop, phone, tablet].map((d) => [d.sessionId, d.name]),
      );

      // Revoke the phone (from the laptop's "devices" page: the id must be one of ada's).
      assert.equal(await h.manager.destroyById(phone.sessionId, { user: "ada" }), true);
      await assertSignedOut(phone);
      await assertSignedIn(laptop);
      await assertSignedIn(tablet);
      assert.deepEqual(
        (await h.manager.listByUser("ada")).map((s) => s.sessionId),
        [laptop.sessionId, tablet.sessionId],
      );

      // "Log out everywhere except this one", from the laptop.
      assert.equal(await h.manager.destroyByUser("ada", { except: laptop.sessionId }), 1);
      await assertSignedOut(tablet);
      await assertSignedIn(laptop);
      assert.deepEqual(
        (await h.manager.listByUser("ada")).map((s) => s.sessionId),
        [laptop.sessionId],
      );
      // Another user is untouched throughout.
      assert.deepEqual(await httpSession(bob), { sessionId: bob.sessionId, user: "bob" });
      assert.equal(bob.socket.connected, true);
    });
  });
}

threeDevices("MapStore", () => Promise.resolve({ store: new MapStore(), close: async () => {} }));

threeDevices("Deno KV", async () => {
  const store = await DenoKvStore.open(":memory:");
  return { store, close: () => Promise.resolve(store.close()) };
});

const skip = redisSkipReason();
if (skip) {
  test(`three devices of one user on Redis: ${skip}`, { skip }, () => {});
} else {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  threeDevices("a real redis-server", async () => {
    server = await startRedisServer();
    client = new Redis({ host: "127.0.0.1", port: server.port, maxRetriesPerRequest: 1 });
    const store = new RedisStore({ client, prefix: `devices:${crypto.randomUUID()}:` });
    return {
      store,
      close: async () => {
        await store.close();
        client?.disconnect();
        await server?.stop();
      },
    };
  });
}

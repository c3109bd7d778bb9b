/**
 * The demo (`npm run demo`, `deno task demo`, `bun run demo`): spawned as a user starts it, on the
 * runtime running this suite, and driven over real HTTP and real socket.io sockets. The edge cases
 * run against an in-process demo server.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Socket as ClientSocket } from "socket.io-client";
import { type BridgeMessage, type DemoServer, startDemo } from "../examples/demo/server.ts";
import {
  connectSocket,
  type DemoProcess,
  httpClient,
  RUNTIME,
  spawnDemo,
  waitForEvent,
} from "./helpers/demo_process.ts";
import { ask } from "./helpers/socket_io_harness.ts";
import type { Client } from "./helpers/cookie_jar.ts";

/** Increments per side in the concurrent counting check. */
const N = 10;

interface ApiSession {
  name: string | null;
  count: number;
  session: string | null;
}

async function apiSession(tab: Client): Promise<ApiSession> {
  const r = await tab.get("/api/session");
  assert.equal(r.status, 200);
  return JSON.parse(r.body);
}

async function login(tab: Client, name: string): Promise<void> {
  const r = await tab.post("/login", { body: new URLSearchParams({ name }) });
  assert.equal(r.status, 303);
  assert.equal(r.res.headers.get("location"), "/");
}

async function countOverHttp(tab: Client): Promise<number> {
  const r = await tab.post("/count");
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).count;
}

describe(`demo, spawned as \`${RUNTIME === "Node" ? "npm run" : RUNTIME === "Deno" ? "deno task" : "bun run"} demo\``, () => {
  test(
    `runs on ${RUNTIME}: login over HTTP, one counter for HTTP and socket, bridge events, logout in another tab disconnects the socket, Ctrl-C exits cleanly`,
    { timeout: 60_000 },
    async () => {
      const demo: DemoProcess = await spawnDemo();
      const sockets: ClientSocket[] = [];
      try {
        const out = demo.output();
        assert.match(out, new RegExp(`unisession demo on ${RUNTIME} `));
        assert.match(out, /store: +MapStore/);
        assert.match(out, /cookies: sid \(.*\), sid\.cid \(.*\), both HttpOnly/);

        const tab = httpClient(demo.url);
        assert.match((await tab.get("/")).body, /<form method="post" action="\/login"/);
        const r = await tab.post("/login", { body: new URLSearchParams({ name: "ada" }) });
        assert.equal(r.status, 303);
        const set = new Map(r.setCookies.map((c) => [c.name, c.attributes]));
        assert.equal(set.get("sid")?.httponly, true);
        assert.equal(set.get("sid.cid")?.httponly, true);
        const page = (await tab.get("/")).body;
        assert.match(page, /Hello, <b id="name">ada<\/b>/);
        assert.match(page, /<script src="\/socket\.io\/socket\.io\.js"><\/script>/);
        assert.equal((await tab.get("/socket.io/socket.io.js")).status, 200);

        const socket = await connectSocket(demo.url, tab.jar.header());
        sockets.push(socket);
        const events: BridgeMessage[] = [];
        socket.on("bridge", (e: BridgeMessage) => events.push(e));

        const sixth = waitForEvent<BridgeMessage>(
          socket,
          "bridge",
          (e) => e.event === "sessionSet" && e.count === 2 * N,
        );
        // N increments over HTTP and N over the socket, all at once: each one sees its own value
        // (none lost) and both sides agree on the total.
        const counts = await Promise.all(
          Array.from(
            { length: 2 * N },
            (_, i) =>
              i % 2 === 0
                ? countOverHttp(tab)
                : ask<{ count: number }>(socket, "count").then((a) => a.count),
          ),
        );
        assert.deepEqual(
          counts.toSorted((a, b) => a - b),
          Array.from({ length: 2 * N }, (_, i) => i + 1),
        );
        assert.equal((await apiSession(tab)).count, 2 * N);
        assert.deepEqual(await ask(socket, "session"), { name: "ada", count: 2 * N });
        // Every write reached the socket as a sessionSet event of its session.
        await sixth.catch(() =>
          assert.fail(`no sessionSet with count ${2 * N} in ${JSON.stringify(events)}`)
        );
        const session = (await apiSession(tab)).session;
        assert.ok(events.every((e) => e.session === session && e.event === "sessionSet"));

        // A second tab of the same browser logs out: the first tab's socket is told, then
        // disconnected by the server.
        const tab2 = httpClient(demo.url, tab);
        const disconnected = waitForEvent<string>(socket, "disconnect");
        const out2 = await tab2.post("/logout");
        assert.equal(out2.status, 303);
        assert.equal(await disconnected, "io server disconnect");
        assert.deepEqual(events.at(-1), {
          event: "sessionDestroy",
          session,
          reason: "destroy",
        });
        assert.deepEqual(await apiSession(tab), { name: null, count: 0, session: null });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- demo output ---\n${demo.output()}`, {
          cause: err,
        });
      } finally {
        for (const s of sockets) s.close();
        const exit = await demo.stop("SIGINT").finally(() => demo.kill());
        assert.deepEqual(exit, { code: 0, signal: null }, demo.output());
        assert.match(demo.output(), /demo stopped/);
      }
    },
  );
});

describe("demo server, in process", () => {
  let demo: DemoServer;
  const errors: unknown[] = [];
  const sockets: ClientSocket[] = [];
  const connect = async (cookie?: string): Promise<ClientSocket> => {
    const s = await connectSocket(demo.url, cookie);
    sockets.push(s);
    return s;
  };

  before(async () => {
    demo = await startDemo({ port: 0, onError: (e) => errors.push(e) });
  });
  after(async () => {
    for (const s of sockets) s.close();
    await demo.close();
    assert.deepEqual(errors, []);
  });

  test("the login form takes any name: blank becomes guest, markup is escaped, long names are cut", async () => {
    const tab = httpClient(demo.url);
    await login(tab, "   ");
    assert.equal((await apiSession(tab)).name, "guest");
    await login(tab, `<img src=x onerror="alert(1)">`);
    const page = (await tab.get("/")).body;
    assert.ok(!page.includes("<img"), "the name reached the page unescaped");
    assert.match(page, /&#60;img src=x onerror=&#34;alert\(1\)&#34;&#62;/);
    await login(tab, "x".repeat(500));
    assert.equal((await apiSession(tab)).name, "x".repeat(40));
    // A multipart upload in place of the name is no name at all.
    const form = new FormData();
    form.append("name", new Blob(["file"]), "name.txt");
    const r = await tab.post("/login", { body: form });
    assert.equal(r.status, 303);
    assert.equal((await apiSession(tab)).name, "guest");
  });

  test("without a login there is nothing to count: HTTP says 401, the socket says no session", async () => {
    const tab = httpClient(demo.url);
    const r = await tab.post("/count");
    assert.equal(r.status, 401);
    assert.deepEqual(JSON.parse(r.body), { error: "not logged in" });
    assert.match((await tab.get("/")).body, /action="\/login"/);
    const socket = await connect(tab.jar.header());
    assert.deepEqual(await ask(socket, "count"), { error: "no session" });
    assert.deepEqual(await ask(socket, "session"), { error: "no session" });
    assert.deepEqual(await apiSession(tab), { name: null, count: 0, session: null });
  });

  test("socket events without an acknowledgement or with junk arguments are ignored", async () => {
    const tab = httpClient(demo.url);
    await login(tab, "ada");
    const socket = await connect(tab.jar.header());
    socket.emit("count");
    socket.emit("count", "not a callback");
    socket.emit("session", { ack: true });
    socket.emit("no such event", 1, 2, 3);
    assert.deepEqual(await ask(socket, "count"), { count: 1 });
    assert.equal((await apiSession(tab)).count, 1);
  });

  test("logging in again in another tab (regenerate) moves the open socket to the new session", async () => {
    const tab = httpClient(demo.url);
    await login(tab, "ada");
    const before = (await apiSession(tab)).session;
    const socket = await connect(tab.jar.header());
    // The bridge message of this write may reach the socket before or after the acknowledgement.
    const counted = waitForEvent<BridgeMessage>(
      socket,
      "bridge",
      (e) => e.event === "sessionSet" && e.count === 1,
    );
    assert.deepEqual(await ask(socket, "count"), { count: 1 });
    await counted;
    const events: BridgeMessage[] = [];
    socket.on("bridge", (e: BridgeMessage) => events.push(e));

    const tab2 = httpClient(demo.url, tab);
    const moved = waitForEvent<BridgeMessage>(
      socket,
      "bridge",
      (e) => e.event === "sessionSet" && e.isNew,
    );
    await login(tab2, "bob");
    const after = (await apiSession(tab2)).session;
    assert.notEqual(after, before);
    assert.deepEqual(await moved, {
      event: "sessionSet",
      session: after,
      isNew: true,
      name: "bob",
      count: 1,
    });
    assert.deepEqual(events[0], { event: "sessionDestroy", session: before, reason: "regenerate" });
    // The socket counts on the new session, which HTTP (with the new cookie) sees too.
    assert.deepEqual(await ask(socket, "count"), { count: 2 });
    assert.deepEqual(await apiSession(tab2), { name: "bob", count: 2, session: after });
    assert.ok(socket.connected);
  });

  test("close() disconnects the sockets and frees the port", async () => {
    const own = await startDemo({ port: 0, onError: (e) => errors.push(e) });
    const tab = httpClient(own.url);
    await login(tab, "ada");
    const socket = await connectSocket(own.url, tab.jar.header());
    const gone = waitForEvent<string>(socket, "disconnect");
    await own.close();
    assert.match(await gone, /transport close|io server disconnect/);
    await assert.rejects(fetch(own.url + "/"));
    // The same port can be bound again.
    const again = await startDemo({ port: own.port });
    await again.close();
  });
});

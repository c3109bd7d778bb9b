/**
 * The native WebSocket adapter (`adapters/ws.ts`, `unisession/ws`) end to end, with real
 * WebSocket clients over real sockets, on the server of the runtime that runs the file:
 * Deno → `Deno.serve` + `hono/deno`, Bun → `Bun.serve` + `hono/bun`, Node → `@hono/node-server`
 * + `@hono/node-ws` (see tests/helpers/ws_harness.ts). Every runtime runs its own variant.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Hono } from "hono";
import { MapStore, type StoreEvent } from "../mod.ts";
import { createSessions } from "../src/manager.ts";
import { createWebSocketSessions } from "../adapters/ws.ts";
import { Client } from "./helpers/cookie_jar.ts";
import {
  KEY,
  openSocket,
  type Reply,
  RUNTIME,
  startWsHarness,
  type TestSocket,
  type WhoAmI,
  within,
  type WsHarness,
} from "./helpers/ws_harness.ts";

const ok = <V>(r: Reply<V>): V => {
  assert.ok("ok" in r, `expected a value, got ${JSON.stringify(r)}`);
  return r.ok;
};

/**
 * Changes one base64url character in the last quarter of a cookie value (never the last one:
 * its low bits may be padding that decoders ignore).
 */
function tamper(value: string): string {
  let i = Math.floor(value.length * 0.75);
  while (!/[A-Za-z0-9_-]/.test(value[i]!)) i++;
  assert.ok(i < value.length - 1);
  return value.slice(0, i) + (value[i] === "A" ? "B" : "A") + value.slice(i + 1);
}

/** A browser that has visited once (it holds the client-id cookie, no session yet). */
async function visitor(h: WsHarness): Promise<Client> {
  const b = h.browser();
  await b.get("/visit");
  assert.ok(b.jar.has("sid.cid"), "the first response sets the client-id cookie");
  return b;
}

async function sessionOf(
  b: Client,
): Promise<{ sessionId: string | null; data: Record<string, unknown> }> {
  return JSON.parse((await b.get("/session")).body);
}

async function login(b: Client, user = "ada"): Promise<string> {
  return (JSON.parse((await b.post(`/login?user=${user}`)).body) as { sessionId: string })
    .sessionId;
}

describe(`ws (${RUNTIME}): one session for HTTP and a native WebSocket`, () => {
  let h: WsHarness;
  before(async () => {
    h = await startWsHarness({ manager: { store: new MapStore() } });
  });
  after(() => h.close());

  test("a socket opened before login sees the login, follows a regenerate, and HTTP logout closes it with 4401", async () => {
    const b = await visitor(h);
    const socket = await h.connect(b.jar.header());
    const anon = ok(await socket.ask<WhoAmI>("whoami"));
    assert.equal(typeof anon.clientId, "string");
    assert.equal(anon.sessionId, null);
    assert.equal(anon.session, null);
    assert.deepEqual(await socket.ask("get"), { error: "ERR_SESSION_MISSING" });

    const first = await login(b);
    const me = ok(await socket.ask<WhoAmI>("whoami"));
    assert.equal(me.sessionId, first);
    assert.deepEqual(me.session, { user: "ada" });
    assert.equal(me.clientId, anon.clientId);

    const second = await login(b, "grace");
    assert.notEqual(second, first);
    const again = ok(await socket.ask<WhoAmI>("whoami"));
    assert.equal(again.sessionId, second, "the socket followed the regenerated session");
    assert.deepEqual(again.session, { user: "grace" });
    assert.equal(h.sockets.stats().pendingDestroys, 0, "the regenerate cancelled the close");
    assert.equal(socket.isClosed, false);

    await b.post("/logout");
    const closed = await within(socket.closed, 3000, "close after logout");
    assert.equal(closed.code, 4401);
    assert.equal(closed.reason, "session destroyed");
  });

  test("ws.session keeps a socket write made while it re-reads another write", async () => {
    const b = await visitor(h);
    const sid = await login(b);
    const socket = await h.connect(b.jar.header());
    assert.equal(ok(await socket.ask("racedWrite")), "written");
    const me = ok(await socket.ask<WhoAmI>("whoami"));
    assert.deepEqual(me.session, { user: "ada", other: 1, own: 2 });
    assert.deepEqual(await sessionOf(b), {
      sessionId: sid,
      data: { user: "ada", other: 1, own: 2 },
    });
    socket.close();
  });

  test("socket writes are seen by HTTP, HTTP writes by the socket", async () => {
    const b = await visitor(h);
    const sid = await login(b);
    const socket = await h.connect(b.jar.header());
    assert.equal(ok(await socket.ask("set", { key: "theme", value: "dark" })), "theme");
    assert.equal(ok(await socket.ask("nested")), 1, "nested mutation counts as a change");
    assert.deepEqual(await sessionOf(b), {
      sessionId: sid,
      data: { user: "ada", theme: "dark", list: [0] },
    });
    await b.post("/set?key=lang&value=fr");
    const me = ok(await socket.ask<WhoAmI>("whoami"));
    assert.deepEqual(me.session, { user: "ada", theme: "dark", list: [0], lang: "fr" });
    const got = ok(await socket.ask<{ sessionId: string; session: object }>("get"));
    assert.equal(got.sessionId, sid);
    assert.deepEqual(got.session, me.session);
    socket.close();
  });

  test("withSession rules: replace, reserved names, a failing handler commits nothing, onMissing", async () => {
    const b = await visitor(h);
    await login(b);
    const socket = await h.connect(b.jar.header());
    assert.deepEqual(await socket.ask("reserved"), {
      error: "Cannot set session.regenerate: the name is reserved by the session API",
    });
    assert.deepEqual(await socket.ask("fail"), { error: "handler failed" });
    assert.deepEqual((await sessionOf(b)).data, { user: "ada" }, "nothing partial was written");
    ok(await socket.ask("replace", { value: { user: "ada", plan: "pro" } }));
    assert.deepEqual((await sessionOf(b)).data, { user: "ada", plan: "pro" });
    assert.deepEqual(await socket.ask("missing", { variant: "default" }), { ok: "had-session" });

    const anon = await h.connect((await visitor(h)).jar.header());
    assert.deepEqual(await anon.ask("missing", { variant: "default" }), {
      error: "ERR_SESSION_MISSING",
    });
    assert.deepEqual(await anon.ask("missing", { variant: "error" }), { error: "custom missing" });
    assert.deepEqual(await anon.ask("missing", { variant: "fn" }), { ok: "from-fn" });
    assert.deepEqual(await anon.ask("missing", { variant: "value" }), { ok: { ok: false } });
    socket.close();
    anon.close();
  });

  test("a socket that destroys its own session gets its reply, then is closed; HTTP sees no session", async () => {
    const b = await visitor(h);
    await login(b);
    const socket = await h.connect(b.jar.header());
    assert.deepEqual(await socket.ask("destroy"), { ok: "destroyed" });
    assert.equal((await within(socket.closed, 3000, "close after destroy")).code, 4401);
    assert.equal((await sessionOf(b)).sessionId, null);
  });

  test("a tampered cookie upgrades without a session, never a failed upgrade", async () => {
    const b = await visitor(h);
    await login(b);
    const good = b.jar.clone();
    b.jar.set("sid", tamper(b.jar.get("sid")!)).set("sid.cid", tamper(b.jar.get("sid.cid")!));
    const socket = await h.connect(b.jar.header());
    const me = ok(await socket.ask<WhoAmI>("whoami"));
    assert.deepEqual(me, { clientId: null, sessionId: null, session: null });
    // Garbage that is not even a cookie header is "no session" too.
    const junk = await h.connect("sid=%%%; sid.cid=; =;;");
    assert.equal(ok(await junk.ask<WhoAmI>("whoami")).sessionId, null);
    // The untampered cookies still work.
    const real = await h.connect(good.header());
    assert.equal(typeof ok(await real.ask<WhoAmI>("whoami")).sessionId, "string");
    socket.close();
    junk.close();
    real.close();
  });

  test("200 socket writes and 200 HTTP writes of different keys, all at once, lose nothing", async () => {
    const b = await visitor(h);
    await login(b);
    const socket = await h.connect(b.jar.header());
    const n = 200;
    const cookie = b.jar.header()!;
    const results = await Promise.all([
      ...Array.from({ length: n }, (_, i) => socket.ask("setAsync", { key: `ws${i}`, value: i })),
      ...Array.from(
        { length: n },
        (_, i) =>
          fetch(`${h.url}/set?key=http${i}&value=${i}`, { method: "POST", headers: { cookie } })
            .then((r) => r.text()),
      ),
    ]);
    assert.equal(results.filter((r) => typeof r === "object" && "error" in r).length, 0);
    const { data } = await sessionOf(b);
    for (let i = 0; i < n; i++) {
      assert.equal(data[`ws${i}`], i, `socket key ws${i}`);
      assert.equal(data[`http${i}`], String(i), `HTTP key http${i}`);
    }
    assert.equal(Object.keys(data).length, 2 * n + 1);
    socket.close();
  });

  test("a withSession that changes nothing keeps the session alive for HTTP (rolling renewal)", async () => {
    let clock = Date.now();
    const store = new MapStore();
    const t = await startWsHarness({ manager: { store, maxAge: 10_000, now: () => clock } });
    try {
      const b = await visitor(t);
      const sid = await login(b);
      const socket = await t.connect(b.jar.header());
      const before = (await store.get(sid))!.expiresAt;
      clock += 6_000; // less than half of the idle window is left
      ok(await socket.ask("get"));
      const after = (await store.get(sid))!.expiresAt;
      assert.equal(after, clock + 10_000, "the idle window was renewed");
      assert.ok(after > before);
      clock += 8_000; // past the original expiry: HTTP still finds the session
      assert.equal((await sessionOf(b)).sessionId, sid);
    } finally {
      await t.close();
    }
  });

  test("no per-socket state is left after 50 connect/close cycles", async () => {
    await h.closes(0);
    const start = h.serverCloses;
    const b = await visitor(h);
    await login(b);
    const anon = await visitor(h);
    for (let i = 0; i < 50; i++) {
      const socket = await h.connect((i % 2 ? anon : b).jar.header());
      if (i % 10 === 0) ok(await socket.ask("incr"));
      else if (i % 2 === 0) await socket.ask("whoami");
      socket.close();
      await socket.closed;
    }
    await h.closes(start + 50);
    await h.sockets.settled();
    // Sockets of the earlier tests closed too: nothing is tracked any more.
    assert.deepEqual(h.sockets.stats(), {
      sockets: 0,
      clients: 0,
      sessions: 0,
      pendingDestroys: 0,
      refreshing: 0,
    });
    assert.deepEqual(h.errors, []);
  });
});

describe(`ws (${RUNTIME}): options and edge cases`, () => {
  test("onDestroy: notify sends session:destroyed and keeps the socket open; it follows the next login", async () => {
    const h = await startWsHarness({
      manager: { store: new MapStore() },
      sockets: { onDestroy: "notify" },
    });
    try {
      const b = await visitor(h);
      await login(b);
      const socket = await h.connect(b.jar.header());
      await b.post("/logout");
      assert.deepEqual(await socket.nextPush(), { type: "session:destroyed", reason: "destroy" });
      const me = ok(await socket.ask<WhoAmI>("whoami"));
      assert.equal(me.sessionId, null);
      assert.equal(socket.isClosed, false);
      const sid = await login(b, "grace");
      assert.equal(ok(await socket.ask<WhoAmI>("whoami")).sessionId, sid);
    } finally {
      await h.close();
    }
  });

  test("onDestroy: a function gets the socket and why", async () => {
    const seen: unknown[] = [];
    const h = await startWsHarness({
      manager: { store: new MapStore() },
      sockets: {
        onDestroy: (ws, info) => {
          seen.push({ ...info, open: ws.readyState === 1 });
          ws.send(JSON.stringify({ bye: info.reason }));
        },
      },
    });
    try {
      const b = await visitor(h);
      const sid = await login(b);
      const socket = await h.connect(b.jar.header());
      await h.manager.destroyById(sid);
      assert.deepEqual(await socket.nextPush(), { bye: "destroy" });
      assert.deepEqual(seen, [{ sessionId: sid, reason: "destroy", open: true }]);
    } finally {
      await h.close();
    }
  });

  test("an event handler that throws or rejects goes to onError; the socket keeps working", async () => {
    const h = await startWsHarness({ manager: { store: new MapStore() } });
    try {
      const b = await visitor(h);
      await login(b);
      const socket = await h.connect(b.jar.header());
      socket.send(JSON.stringify({ op: "throw" }));
      socket.send(JSON.stringify({ op: "reject" }));
      assert.equal(typeof ok(await socket.ask<WhoAmI>("whoami")).sessionId, "string");
      await within(
        (async () => {
          while (h.errors.length < 2) await new Promise((r) => setTimeout(r, 5));
        })(),
        3000,
        "two reported errors",
      );
      assert.deepEqual(
        h.errors.map((e) => (e as Error).message).sort(),
        ["rejected by onMessage", "thrown by onMessage"],
      );
    } finally {
      await h.close();
    }
  });

  test("requireSession: no valid session is a 401 before the upgrade", async () => {
    const h = await startWsHarness({
      manager: { store: new MapStore() },
      sockets: { requireSession: true },
    });
    try {
      const b = await visitor(h);
      await assert.rejects(h.connect(b.jar.header()), /WebSocket/);
      const upgrade = { upgrade: "websocket", connection: "Upgrade" };
      const res = await h.app.request("/ws", { headers: { ...upgrade, cookie: b.jar.header()! } });
      assert.equal(res.status, 401);
      await login(b);
      const socket = await h.connect(b.jar.header());
      assert.equal(typeof ok(await socket.ask<WhoAmI>("whoami")).sessionId, "string");
      b.jar.set("sid", tamper(b.jar.get("sid")!)).delete("sid.cid");
      await assert.rejects(h.connect(b.jar.header()), /WebSocket/);
    } finally {
      await h.close();
    }
  });

  test("a failing store refuses the upgrade with 503, never a hang", async () => {
    const store = new MapStore();
    const h = await startWsHarness({ manager: { store } });
    try {
      const b = await visitor(h);
      await login(b);
      store.get = () => {
        throw new Error("store down");
      };
      const upgrade = { upgrade: "websocket", connection: "Upgrade" };
      const res = await h.app.request("/ws", { headers: { ...upgrade, cookie: b.jar.header()! } });
      assert.equal(res.status, 503);
      await assert.rejects(h.connect(b.jar.header()), /WebSocket/);
    } finally {
      await h.close();
    }
  });

  test("serialize: true makes 200 socket and 200 HTTP count++ exact (400)", async () => {
    const h = await startWsHarness({ manager: { store: new MapStore(), serialize: true } });
    try {
      const b = await visitor(h);
      await login(b);
      const socket = await h.connect(b.jar.header());
      const cookie = b.jar.header()!;
      const n = 200;
      await Promise.all([
        ...Array.from({ length: n }, () => socket.ask("incr").then(ok)),
        ...Array.from(
          { length: n },
          () =>
            fetch(`${h.url}/incr`, { method: "POST", headers: { cookie } }).then((r) => r.text()),
        ),
      ]);
      assert.equal((await sessionOf(b)).data.count, 2 * n);
    } finally {
      await h.close();
    }
  });

  test("a destroy on another instance reaches this one's sockets through the store's events", async () => {
    // Two managers ("instances") on one store whose publish reaches the other subscriber.
    const subscribers = new Set<(e: StoreEvent) => void>();
    const store = Object.assign(new MapStore(), {
      subscribe(fn: (e: StoreEvent) => void): () => void {
        subscribers.add(fn);
        return () => subscribers.delete(fn);
      },
      publish(e: StoreEvent): void {
        for (const fn of subscribers) fn(structuredClone(e));
      },
    });
    const h = await startWsHarness({ manager: { store } });
    const other = createSessions({ store, keys: [KEY], logger: { warn() {} } });
    try {
      const b = await visitor(h);
      const sid = await login(b);
      const socket = await h.connect(b.jar.header());
      await other.update(sid, (d) => {
        d.plan = "pro";
      });
      const me = ok(await socket.ask<WhoAmI>("whoami"));
      assert.deepEqual(me.session, { user: "ada", plan: "pro" }, "a remote write refreshes");
      await other.destroyById(sid);
      assert.equal((await within(socket.closed, 3000, "close after remote destroy")).code, 4401);
    } finally {
      other.close();
      h.manager.close();
      await h.close();
    }
  });

  test("sealed-cookie mode: the socket sees the cookie's data read-only; logout still closes it", async () => {
    const h = await startWsHarness();
    try {
      assert.equal(h.manager.mode, "sealed");
      const b = h.browser();
      await b.post("/set?key=theme&value=dark");
      const socket = await h.connect(b.jar.header());
      const me = ok(await socket.ask<WhoAmI>("whoami"));
      assert.deepEqual(me.session, { theme: "dark" });
      assert.deepEqual(ok(await socket.ask<{ session: object }>("get")).session, {
        theme: "dark",
      });
      assert.deepEqual(await socket.ask("set", { key: "x", value: 1 }), {
        error: "ERR_SESSION_READ_ONLY",
      });
      await b.post("/logout"); // no store, but the destroy event still reaches the socket
      assert.equal((await within(socket.closed, 3000, "close after logout")).code, 4401);
    } finally {
      await h.close();
    }
  });

  test("one pair of manager listeners per adapter, however many sockets; detach removes them", async () => {
    const manager = createSessions({ store: new MapStore(), keys: [KEY], logger: { warn() {} } });
    let added = 0;
    let removed = 0;
    const on = manager.on.bind(manager);
    const off = manager.off.bind(manager);
    manager.on = ((name, fn) => (added++, on(name, fn))) as typeof manager.on;
    manager.off = ((name, fn) => (removed++, off(name, fn))) as typeof manager.off;
    const h = await startWsHarness({ use: manager });
    try {
      assert.equal(added, 2);
      const b = await visitor(h);
      await login(b);
      for (let i = 0; i < 10; i++) await h.connect(b.jar.header());
      assert.equal(added, 2, "sockets add no listeners");
      assert.equal(h.sockets.stats().sockets, 10);
    } finally {
      await h.close();
    }
    assert.equal(removed, 2, "detach() removed both");
  });

  test("types: a typed manager types ws.session and ctx.session; an untyped one takes any key", () => {
    // Checked by Deno's type-check of this file (`deno test`); the bodies never run.
    const typed = createWebSocketSessions(
      createSessions<{ user?: string; n?: number }>({ store: new MapStore(), keys: [KEY] }),
    );
    const loose = createWebSocketSessions(createSessions({ store: new MapStore(), keys: [KEY] }));
    const never = () => assert.fail("not called");
    typed.events((_c, ws) => ({
      onOpen() {
        const user: string | undefined = ws.session?.user;
        // @ts-expect-error: not a key of the typed session
        ws.session?.nope;
        void ws.withSession(({ session }) => (session.n = (session.n ?? 0) + user!.length), 0);
        never();
      },
    }));
    loose.events((_c, ws) => ({
      onOpen() {
        void ws.withSession(({ session }) => (session.anything = session.count + 1));
        never();
      },
    }));
    typed.detach();
    loose.detach();
  });

  test("ws.close() before the socket opens: a code or reason the runtime would refuse throws at once", async () => {
    const m = createSessions({ store: new MapStore(), keys: [KEY], logger: { warn() {} } });
    const sockets = createWebSocketSessions(m);
    const closeEarly = (code?: number, reason?: string) =>
      sockets.events((_c, ws) => {
        ws.close(code, reason); // in the events factory: the socket is not open yet
        return {};
      });
    // The factory runs in a real Hono request (the upgrade itself is the runtime's).
    const app = new Hono().get("/", async (c) => {
      const [code, reason] = JSON.parse(c.req.query("args")!) as [number?, string?];
      try {
        await closeEarly(code ?? undefined, reason ?? undefined)(c);
        return c.text("deferred");
      } catch (err) {
        return c.text((err as Error).name);
      }
    });
    const attempt = async (...args: unknown[]) =>
      (await app.request(`/?args=${encodeURIComponent(JSON.stringify(args))}`)).text();
    // Refused when the socket opens, these left it open and untracked (Node): now they throw.
    assert.equal(await attempt(1006), "RangeError", "a reserved code");
    assert.equal(await attempt(2000), "RangeError");
    assert.equal(await attempt(4000, "x".repeat(124)), "RangeError", "a reason over 123 bytes");
    assert.equal(await attempt(4000, "bye"), "deferred");
    assert.equal(await attempt(), "deferred");
    sockets.detach();
  });

  test("invalid options are refused up front", () => {
    const m = createSessions({ store: new MapStore(), keys: [KEY], logger: { warn() {} } });
    assert.throws(() => createWebSocketSessions(m, { closeCode: 1006 }), RangeError);
    assert.throws(() => createWebSocketSessions(m, { destroyGraceMs: -1 }), RangeError);
    // A timer cannot wait longer than 2^31 - 1 ms: it would fire at once.
    assert.throws(() => createWebSocketSessions(m, { destroyGraceMs: 2 ** 31 }), RangeError);
    // Another type would be taken for the default silently, or fail when first used.
    assert.throws(
      () => createWebSocketSessions(m, { requireSession: "yes" as unknown as boolean }),
      TypeError,
    );
    assert.throws(
      () => createWebSocketSessions(m, { onError: "x" as unknown as () => void }),
      TypeError,
    );
    assert.throws(
      () => createWebSocketSessions(m, { onDestroy: "emit" as "close" }),
      TypeError,
    );
    assert.throws(() => createWebSocketSessions({} as typeof m), TypeError);
    const sockets = createWebSocketSessions(m);
    assert.throws(() => sockets.events(undefined as never), TypeError);
    sockets.detach();
  });
});

// The README's "Native WebSockets" example is a Deno app (`hono/deno`, `Deno.env`), in a
// `typescript` block that tests/readme.test.ts leaves alone: it runs here, verbatim, on Deno only
// (Bun and Node run their own server variants above).
if (RUNTIME === "deno") {
  describe("ws (deno): the README's Native WebSockets example", () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    const tmp = `${root}tests/.ws-readme-tmp/`;
    after(() => rmSync(tmp, { recursive: true, force: true }));

    test("type-checks, and HTTP and its socket share one session", async () => {
      const readme = readFileSync(`${root}README.md`, "utf8");
      const section = readme.slice(readme.indexOf("## Native WebSockets (Hono upgradeWebSocket)"));
      const block = section.match(/```typescript\n([\s\S]*?)```/)?.[1];
      assert.ok(block, "the section has a typescript block");
      const code = block
        .replaceAll('from "unisession/hono"', `from "${pathToFileURL(`${root}adapters/hono.ts`)}"`)
        .replaceAll('from "unisession/ws"', `from "${pathToFileURL(`${root}adapters/ws.ts`)}"`)
        .replaceAll(
          'from "unisession/deno-kv"',
          `from "${pathToFileURL(`${root}stores/deno_kv.ts`)}"`,
        )
        .replaceAll('from "unisession"', `from "${pathToFileURL(`${root}mod.ts`)}"`);
      mkdirSync(tmp, { recursive: true });
      const file = `${tmp}main.ts`;
      writeFileSync(file, code);
      const check = await new Deno.Command(Deno.execPath(), {
        args: ["check", "--quiet", file],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));

      Deno.env.set("KV_PATH", `${tmp}sessions.kv`);
      const { default: app, sessions, store } = await import(pathToFileURL(file).href);
      const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
      const url = `http://127.0.0.1:${server.addr.port}`;
      const b = new Client({ request: (path, init) => fetch(url + path, init) });
      let socket: TestSocket | undefined;
      try {
        assert.equal((await b.get("/visits")).body, '{"visits":0}');
        socket = await openSocket(url, b.jar.header());
        assert.deepEqual(await socket.nextPush(), { user: null });
        socket.send("visit");
        assert.deepEqual(await socket.nextPush(), { user: null, visits: null }, "no session yet");
        await b.post("/login?name=grace");
        socket.send("visit");
        assert.deepEqual(await socket.nextPush(), { user: "grace", visits: 1 }, "followed login");
        assert.equal((await b.get("/visits")).body, '{"visits":1}', "HTTP sees the socket's write");
        await b.post("/logout");
        assert.equal((await within(socket.closed, 3000, "close after logout")).code, 4401);
      } finally {
        socket?.close();
        await server.shutdown();
        sessions.close();
        store.close();
        Deno.env.delete("KV_PATH");
      }
    });
  });
}

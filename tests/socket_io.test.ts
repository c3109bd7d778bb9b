/**
 * The socket.io adapter (`adapters/socket_io.ts`) end to end: a Hono app and socket.io on one
 * real `node:http` server on 127.0.0.1, real `socket.io-client` sockets (websocket, and polling
 * once), HTTP through `fetch` with a cookie jar. One session seen by both sides.
 *
 * Runs unchanged on Deno, Bun and Node (node:test + node:assert/strict, hooks only).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Server } from "socket.io";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  createSessions,
  MapStore,
  type RecordMutator,
  type Store,
  type StoredRecord,
} from "../mod.ts";
import { attachSocketIO } from "../adapters/socket_io.ts";
import "../adapters/socket_io_global.ts";
import type { Client } from "./helpers/cookie_jar.ts";
import {
  ask,
  type Harness,
  KEY,
  next,
  quiet,
  type Reply,
  startHarness,
  type WhoAmI,
} from "./helpers/socket_io_harness.ts";

type H = Awaited<ReturnType<typeof startHarness>>;

/**
 * Changes one base64url character in the last quarter of a cookie value (never the last one:
 * its low bits may be padding that decoders ignore, so flipping it can leave the bytes intact).
 */
function tamper(value: string): string {
  let i = Math.floor(value.length * 0.75);
  while (!/[A-Za-z0-9_-]/.test(value[i]!)) i++;
  assert.ok(i < value.length - 1);
  return value.slice(0, i) + (value[i] === "A" ? "B" : "A") + value.slice(i + 1);
}

/** A browser that has visited once (it holds the client-id cookie, no session yet). */
async function visitor(h: Harness): Promise<Client> {
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

describe("socket.io: a socket follows the browser's session over HTTP", () => {
  let h: H;
  before(async () => {
    h = await startHarness({ manager: { store: new MapStore() } });
  });
  after(() => h.close());

  test("connected before login: sees login, regenerate and logout; logout disconnects it", async () => {
    const b = await visitor(h);
    const socket = await h.connect(b.jar.header());
    const anon = await ask<WhoAmI>(socket, "whoami");
    assert.equal(typeof anon.clientId, "string");
    assert.equal(anon.sessionId, null);
    assert.equal(anon.session, null);

    const login = JSON.parse((await b.post("/login")).body) as { sessionId: string };
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.sessionId, login.sessionId);
    assert.deepEqual(me.session, { user: "ada" });
    assert.equal(me.clientId, anon.clientId);
    const inRoom = await h.io.in(h.bridge.roomOf(login.sessionId)).fetchSockets();
    assert.deepEqual(inRoom.map((s) => s.id), [socket.id]);

    // Regenerate (a second login): the old session is destroyed, the socket follows the new one.
    const again = JSON.parse((await b.post("/login?user=grace")).body) as { sessionId: string };
    assert.notEqual(again.sessionId, login.sessionId);
    assert.equal(h.bridge.stats().pendingDestroys, 0, "the regenerate cancelled the disconnect");
    const regenerated = await ask<WhoAmI>(socket, "whoami");
    assert.equal(regenerated.sessionId, again.sessionId);
    assert.deepEqual(regenerated.session, { user: "grace" });
    assert.equal((await h.io.in(h.bridge.roomOf(login.sessionId)).fetchSockets()).length, 0);
    assert.equal((await h.io.in(h.bridge.roomOf(again.sessionId)).fetchSockets()).length, 1);
    assert.ok(socket.connected);

    // Logout over HTTP: the socket loses the session at once and is disconnected.
    const serverSocket = h.serverSockets.get(socket.id!)!;
    const disconnected = next<string>(socket, "disconnect");
    await b.post("/logout");
    assert.equal(serverSocket.sessionId, undefined);
    assert.equal(serverSocket.session, undefined);
    assert.equal(await disconnected, "io server disconnect");
  });

  test("socket.session keeps a socket write made while it re-reads another write", async () => {
    const b = await visitor(h);
    await b.post("/login");
    const socket = await h.connect(b.jar.header());
    assert.deepEqual(await ask<Reply>(socket, "racedWrite"), { ok: "written" });
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.deepEqual(me.session, { user: "ada", other: 1, own: 2 });
    assert.deepEqual((await sessionOf(b)).data, { user: "ada", other: 1, own: 2 });
  });

  test("HTTP sees what the socket wrote; the socket sees what HTTP wrote", async () => {
    const b = await visitor(h);
    await b.post("/login");
    const socket = await h.connect(b.jar.header());
    assert.deepEqual(await ask<Reply>(socket, "set", "fromSocket", { n: 1 }), { ok: "fromSocket" });
    assert.deepEqual(await ask<Reply>(socket, "nested"), { ok: 1 });
    assert.deepEqual(await ask<Reply>(socket, "nested"), { ok: 2 });
    const seen = await sessionOf(b);
    assert.deepEqual(seen.data, { user: "ada", fromSocket: { n: 1 }, list: [0, 1] });

    await b.post("/set?key=fromHttp&value=yes");
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.deepEqual(me.session, {
      user: "ada",
      fromSocket: { n: 1 },
      list: [0, 1],
      fromHttp: "yes",
    });
    // The snapshot is frozen: it cannot be mistaken for a writable session.
    const server = h.serverSockets.get(socket.id!)!;
    assert.ok(Object.isFrozen(server.session));
    assert.ok(Object.isFrozen(server.session!.fromSocket));

    // A throwing handler commits nothing and rejects with its error; reserved names are refused.
    assert.deepEqual(await ask<Reply>(socket, "fail"), { error: "handler failed" });
    assert.equal((await sessionOf(b)).data.partial, undefined);
    assert.deepEqual(await ask<Reply>(socket, "reserved"), {
      error: "Cannot set session.maxAge: the name is reserved by the session API",
    });

    // Replacing the whole object removes the keys it lacks.
    assert.deepEqual(await ask<Reply>(socket, "replace", { only: 1 }), { ok: null });
    assert.deepEqual((await sessionOf(b)).data, { only: 1 });
  });

  test("withSession without a session: onMissing Error, function, value, default", async () => {
    const socket = await h.connect((await visitor(h)).jar.header());
    assert.deepEqual(await ask<Reply>(socket, "missing", "default"), {
      error: "ERR_SESSION_MISSING",
    });
    assert.deepEqual(await ask<Reply>(socket, "missing", "error"), { error: "custom missing" });
    assert.deepEqual(await ask<Reply>(socket, "missing", "fn"), { ok: "from-fn" });
    assert.deepEqual(await ask<Reply>(socket, "missing", "asyncFn"), { ok: "from-async-fn" });
    assert.deepEqual(await ask<Reply>(socket, "missing", "value"), { ok: { ok: false } });
    assert.deepEqual(await ask<Reply>(socket, "missing", "null"), { ok: null });
    // With a session, onMissing is not used.
    const socketWith = await h.connect((await loggedIn(h)).jar.header());
    assert.deepEqual(await ask<Reply>(socketWith, "missing", "error"), { ok: "had-session" });
  });

  test("ctx.session = null destroys the session for HTTP too, and disconnects its sockets", async () => {
    const b = await loggedIn(h);
    const { sessionId } = await sessionOf(b);
    const socket = await h.connect(b.jar.header());
    const other = await h.connect(b.jar.header(), { nsp: "/admin" });
    const gone = [next(socket, "disconnect"), next(other, "disconnect")];
    assert.deepEqual(await ask<Reply>(socket, "destroy"), { ok: "destroyed" });
    assert.equal(await h.manager.getById(sessionId!), undefined);
    assert.equal((await sessionOf(b)).sessionId, null);
    await Promise.all(gone);
  });

  test("tampered or unknown cookies connect without a session; a valid client id is enough", async () => {
    const b = await loggedIn(h);
    const sid = b.jar.get("sid")!;
    const cid = b.jar.get("sid.cid")!;
    const tampered = await h.connect(`sid=${tamper(sid)}; sid.cid=${tamper(cid)}`);
    assert.deepEqual(await ask<WhoAmI>(tampered, "whoami"), {
      clientId: null,
      sessionId: null,
      session: null,
    });
    const garbage = await h.connect("sid=%%%; sid.cid=; other=1");
    assert.equal((await ask<WhoAmI>(garbage, "whoami")).sessionId, null);
    // The session cookie alone (tampered client id) still finds the session, and the socket
    // follows the session's own client id.
    const bySid = await h.connect(`sid=${sid}; sid.cid=${tamper(cid)}`);
    const me = await ask<WhoAmI>(bySid, "whoami");
    assert.equal(me.clientId, h.manager.readCookies(`sid.cid=${cid}`).clientId);
    assert.equal(me.sessionId, (await sessionOf(b)).sessionId);
    // The client id alone (tampered session cookie) finds it through the mapping.
    const byCid = await h.connect(`sid=${tamper(sid)}; sid.cid=${cid}`);
    assert.equal((await ask<WhoAmI>(byCid, "whoami")).sessionId, me.sessionId);
  });

  test("a client-id cookie planted next to the session cookie does not swap the socket into its session", async () => {
    const victim = await loggedIn(h, "ada");
    const attacker = await loggedIn(h, "mallory");
    const own = h.manager.readCookies(`sid.cid=${victim.jar.get("sid.cid")}`).clientId;
    const sessionId = (await sessionOf(victim)).sessionId;
    const socket = await h.connect(
      `sid=${victim.jar.get("sid")}; sid.cid=${attacker.jar.get("sid.cid")}`,
    );
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.sessionId, sessionId, "the session cookie's session, as over HTTP");
    assert.deepEqual(me.session, { user: "ada" });
    assert.equal(me.clientId, own, "following the session's own client id");
    // The attacker's next login (a session for the planted client id) does not move the socket.
    await attacker.post("/login?user=mallory");
    const after = await ask<WhoAmI>(socket, "whoami");
    assert.equal(after.sessionId, sessionId);
    assert.deepEqual(after.session, { user: "ada" });
    socket.disconnect();
  });

  test("a second namespace (/admin) gets sessions, and the polling transport works", async () => {
    const b = await loggedIn(h);
    const { sessionId } = await sessionOf(b);
    const admin = await h.connect(b.jar.header(), { nsp: "/admin" });
    assert.equal((await ask<WhoAmI>(admin, "whoami")).sessionId, sessionId);
    assert.deepEqual(await ask<Reply>(admin, "set", "admin", true), { ok: "admin" });
    const polling = await h.connect(b.jar.header(), { transports: ["polling"] });
    assert.equal(polling.io.engine.transport.name, "polling");
    const me = await ask<WhoAmI>(polling, "whoami");
    assert.equal(me.sessionId, sessionId);
    assert.equal(me.session?.admin, true);
    assert.deepEqual(await ask<Reply>(polling, "incr"), { ok: 1 });
    assert.equal((await sessionOf(b)).data.count, 1);
    const inAdminRoom = await h.io.of("/admin").in(h.bridge.roomOf(sessionId!)).fetchSockets();
    assert.equal(inAdminRoom.length, 1);
    // Dynamic namespaces (created on demand from a parent namespace) too.
    h.io.of(/^\/dyn-\d+$/).on("connection", (socket) => {
      socket.on("who", (ack: (id: string | null) => void) => ack(socket.sessionId ?? null));
    });
    const dynamic = await h.connect(b.jar.header(), { nsp: "/dyn-1" });
    assert.equal(await ask(dynamic, "who"), sessionId);
  });

  test("no lost updates: 200 HTTP writes of k<i> interleaved with 200 withSession writes of w<i>", async () => {
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      jobs.push(b.post(`/set?key=k${i}&value=${i}`));
      jobs.push(ask<Reply>(socket, "set", `w${i}`, i));
    }
    const results = await Promise.all(jobs);
    for (let i = 1; i < results.length; i += 2) {
      assert.deepEqual(results[i], { ok: `w${(i - 1) / 2}` });
    }
    const { data } = await sessionOf(b);
    for (let i = 0; i < 200; i++) {
      assert.equal(data[`k${i}`], String(i), `k${i}`);
      assert.equal(data[`w${i}`], i, `w${i}`);
    }
    assert.equal(Object.keys(data).length, 401); // + user
    await h.bridge.settled();
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(Object.keys(me.session!).length, 401, "the snapshot caught up");
  });

  test("manager.update from HTTP and from sockets concurrently ends exact", async () => {
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      jobs.push(b.post("/update"));
      jobs.push(ask(socket, "update"));
    }
    await Promise.all(jobs);
    assert.equal((await sessionOf(b)).data.count, 400);
  });

  test("withSession calls of one session run one at a time (count++ is exact)", async () => {
    const b = await loggedIn(h);
    const sockets = await Promise.all([h.connect(b.jar.header()), h.connect(b.jar.header())]);
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 100; i++) for (const s of sockets) jobs.push(ask(s, "incr"));
    const counts = (await Promise.all(jobs) as { ok: number }[]).map((r) => r.ok).sort((a, b) =>
      a - b
    );
    assert.deepEqual(counts, Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal((await sessionOf(b)).data.count, 200);
  });

  test("50 sockets connect and disconnect: no per-socket state is left", async () => {
    const b = await loggedIn(h);
    const anon = await visitor(h);
    await h.disconnects(0);
    const connectedBefore = [...h.serverSockets.values()].filter((s) => s.connected).length;
    const baseline = h.bridge.stats();
    const sockets = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        h.connect(
          i % 3 === 0 ? anon.jar.header() : i % 3 === 1 ? b.jar.header() : undefined,
          { nsp: i % 2 ? "/admin" : "/" },
        )),
    );
    await Promise.all(sockets.map((s) => ask(s, "whoami")));
    assert.equal(h.bridge.stats().sockets, baseline.sockets + 50);
    const disconnectedSoFar = countDisconnects(h);
    for (const s of sockets) s.disconnect();
    await h.disconnects(disconnectedSoFar + 50);
    await h.bridge.settled();
    assert.deepEqual(h.bridge.stats(), baseline);
    assert.equal([...h.serverSockets.values()].filter((s) => s.connected).length, connectedBefore);
  });
});

/** Disconnects seen so far by the harness (sockets it tracks that are no longer connected). */
function countDisconnects(h: Harness): number {
  return [...h.serverSockets.values()].filter((s) => s.disconnected).length;
}

/** A browser that visited and logged in. */
async function loggedIn(h: Harness, user = "ada"): Promise<Client> {
  const b = await visitor(h);
  await b.post(`/login?user=${user}`);
  return b;
}

describe("socket.io: client.rotateOnRegenerate (the client id is a credential for sockets)", () => {
  let h: H;
  before(async () => {
    h = await startHarness({
      manager: { store: new MapStore(), client: { rotateOnRegenerate: true } },
    });
  });
  after(() => h.close());

  test("a client-id cookie planted before the login opens nothing after it", async () => {
    // The attacker visits, and plants their client-id cookie in the victim's browser.
    const attacker = await visitor(h);
    const planted = attacker.jar.get("sid.cid")!;
    const plantedId = h.manager.readCookies(`sid.cid=${planted}`).clientId!;
    const spy = await h.connect(attacker.jar.header());
    const victim = h.browser();
    victim.jar.set("sid.cid", planted);

    const login = JSON.parse((await victim.post("/login")).body) as { sessionId: string };
    const issued = victim.jar.get("sid.cid")!;
    assert.notEqual(issued, planted, "the login sent a new client-id cookie");
    const issuedId = h.manager.readCookies(`sid.cid=${issued}`).clientId!;
    assert.equal(await h.manager.getSessionId(issuedId), login.sessionId);
    assert.equal(await h.manager.getSessionId(plantedId), undefined);
    assert.equal(await h.manager.getByClientId(plantedId), undefined);

    // Neither the attacker's live socket nor a new one with their cookies sees the session.
    assert.equal((await ask<WhoAmI>(spy, "whoami")).session, null);
    const late = await h.connect(attacker.jar.header());
    assert.equal((await ask<WhoAmI>(late, "whoami")).session, null);
    // The victim's own new socket does.
    const own = await h.connect(victim.jar.header());
    const me = await ask<WhoAmI>(own, "whoami");
    assert.equal(me.sessionId, login.sessionId);
    assert.deepEqual(me.session, { user: "ada" });
    assert.equal(me.clientId, issuedId);
    for (const s of [spy, late, own]) s.disconnect();
  });

  test("a socket of the old client id loses the session at a second login; reconnected it has the new one", async () => {
    const b = h.browser();
    const first = JSON.parse((await b.post("/login")).body) as { sessionId: string };
    const socket = await h.connect(b.jar.header());
    const before = await ask<WhoAmI>(socket, "whoami");
    assert.equal(before.sessionId, first.sessionId);

    const disconnected = next<string>(socket, "disconnect");
    const again = JSON.parse((await b.post("/login?user=grace")).body) as { sessionId: string };
    assert.notEqual(again.sessionId, first.sessionId);
    assert.equal(await disconnected, "io server disconnect", "after destroyGraceMs, as a logout");

    const fresh = await h.connect(b.jar.header());
    const after = await ask<WhoAmI>(fresh, "whoami");
    assert.equal(after.sessionId, again.sessionId);
    assert.deepEqual(after.session, { user: "grace" });
    assert.notEqual(after.clientId, before.clientId);
    assert.equal(await h.manager.getSessionId(before.clientId!), undefined);
    fresh.disconnect();
  });

  test("without a regenerate the client id stays: requests, rolling and a new session keep it", async () => {
    const b = await visitor(h);
    const cid = b.jar.get("sid.cid");
    await b.post("/set?key=a&value=1");
    await b.post("/incr");
    assert.equal(b.jar.get("sid.cid"), cid);
  });
});

describe("socket.io: a MapStore shared by two managers", () => {
  let h: H;
  const store = new MapStore();
  before(async () => {
    h = await startHarness({ manager: { store } });
  });
  after(() => h.close());

  test("a login through the other manager (no event here) is found in the store by withSession", async () => {
    const other = createSessions({ keys: [KEY], store, logger: quiet });
    assert.equal(h.manager.hearsEveryWrite, false, "another manager writes to the store too");
    assert.equal(createSessions({ keys: [KEY], store: new MapStore() }).hearsEveryWrite, true);

    const b = await visitor(h);
    const first = JSON.parse((await b.post("/login")).body) as { sessionId: string };
    const socket = await h.connect(b.jar.header());
    assert.deepEqual(await ask<Reply>(socket, "get"), {
      ok: { sessionId: first.sessionId, session: { user: "ada" } },
    });

    // The other app logs the same browser in again: only the store knows the new session.
    const state = other.open(b.jar.header());
    await state.session.regenerate();
    state.session.user = "grace";
    await other.commit(state);
    assert.notEqual(state.id, first.sessionId);

    assert.deepEqual(await ask<Reply>(socket, "set", "seen", true), { ok: "seen" });
    assert.deepEqual(await other.getById(state.id!), { user: "grace", seen: true });
    assert.equal(await other.getById(first.sessionId), undefined);
  });
});

describe('socket.io: onDestroy: "emit"', () => {
  let h: H;
  before(async () => {
    h = await startHarness({ manager: { store: new MapStore() }, attach: { onDestroy: "emit" } });
  });
  after(() => h.close());

  test("logout notifies the socket, which stays connected without a session and follows the next login", async () => {
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    const admin = await h.connect(b.jar.header(), { nsp: "/admin" });
    assert.equal(typeof (await ask<WhoAmI>(socket, "whoami")).sessionId, "string");
    const notified = [next(socket, "session:destroyed"), next(admin, "session:destroyed")];
    await b.post("/logout");
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.sessionId, null);
    assert.equal(me.session, null);
    assert.deepEqual(await ask<Reply>(socket, "missing", "default"), {
      error: "ERR_SESSION_MISSING",
    });
    await Promise.all(notified);
    assert.ok(socket.connected && admin.connected);
    assert.equal(h.bridge.stats().rooms, 0);
    assert.equal(h.bridge.stats().pendingDestroys, 0);

    const login = JSON.parse((await b.post("/login?user=again")).body) as { sessionId: string };
    const back = await ask<WhoAmI>(socket, "whoami");
    assert.equal(back.sessionId, login.sessionId);
    assert.deepEqual(back.session, { user: "again" });
  });

  test("manager.destroyById notifies every socket of the session at once-only", async () => {
    const b = await loggedIn(h);
    const { sessionId } = await sessionOf(b);
    const socket = await h.connect(b.jar.header());
    let count = 0;
    socket.on("session:destroyed", () => count++);
    const notified = next(socket, "session:destroyed");
    assert.equal(await h.manager.destroyById(sessionId!), true);
    await notified;
    // A round trip after the notification: a duplicate would have arrived before this ack.
    await ask(socket, "whoami");
    assert.equal(count, 1);
  });
});

describe("socket.io: handshakes", () => {
  const harnesses: H[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  test("requireSession: true refuses sockets without a valid session with a connect_error", async () => {
    const h = await startHarness({
      manager: { store: new MapStore() },
      attach: { requireSession: true },
    });
    harnesses.push(h);
    const b = await loggedIn(h);
    const sid = b.jar.get("sid")!;
    await assert.rejects(
      h.connect(`sid=${tamper(sid)}`),
      (err: Error & { data?: { code?: string } }) => {
        assert.match(err.message, /no valid session/);
        assert.equal(err.data?.code, "ERR_SESSION_MISSING");
        return true;
      },
    );
    await assert.rejects(h.connect(undefined, { nsp: "/admin" }), /no valid session/);
    const ok = await h.connect(b.jar.header());
    assert.equal(typeof (await ask<WhoAmI>(ok, "whoami")).sessionId, "string");
    assert.equal(h.bridge.stats().sockets, 1, "refused handshakes leave no state");
  });

  test("an expired session connects without one", async () => {
    let now = 1_000_000;
    const clock = () => now;
    const h = await startHarness({
      manager: { store: new MapStore({ now: clock }), now: clock, maxAge: 60_000 },
    });
    harnesses.push(h);
    const b = await loggedIn(h);
    const fresh = await h.connect(b.jar.header());
    assert.equal(typeof (await ask<WhoAmI>(fresh, "whoami")).sessionId, "string");
    now += 120_000;
    const late = await h.connect(b.jar.header());
    assert.deepEqual(await ask<WhoAmI>(late, "whoami"), {
      clientId: (await ask<WhoAmI>(fresh, "whoami")).clientId,
      sessionId: null,
      session: null,
    });
    // The socket that connected before the expiry finds out on its next withSession, and is
    // disconnected as for a logout.
    const gone = next(fresh, "disconnect");
    assert.deepEqual(await ask<Reply>(fresh, "get"), { error: "ERR_SESSION_MISSING" });
    await gone;
    assert.equal(h.bridge.stats().pendingDestroys, 0);
  });

  test("a failing store rejects withSession with a StoreError and refuses handshakes; nothing crashes", async () => {
    class FlakyStore extends MapStore {
      failing = false;
      override get(id: string): StoredRecord | undefined {
        if (this.failing) throw new Error("store down");
        return super.get(id);
      }
      override update(id: string, mutate: (cur: StoredRecord) => StoredRecord | undefined) {
        if (this.failing) throw new Error("store down");
        return super.update(id, mutate);
      }
    }
    const store = new FlakyStore();
    const h = await startHarness({ manager: { store } });
    harnesses.push(h);
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    store.failing = true;
    assert.deepEqual(await ask<Reply>(socket, "get"), { error: "ERR_STORE" });
    assert.deepEqual(await ask<Reply>(socket, "set", "x", 1), { error: "ERR_STORE" });
    await assert.rejects(h.connect(b.jar.header()), (err: Error & { data?: { code?: string } }) => {
      assert.equal(err.data?.code, "ERR_STORE");
      return true;
    });
    store.failing = false;
    assert.deepEqual(await ask<Reply>(socket, "set", "x", 1), { ok: "x" });
    assert.equal((await sessionOf(b)).data.x, 1);
  });

  test("a login that lands while the handshake reads the store is not missed", async () => {
    /** An asynchronous store that can hold one client-mapping read, answering it later. */
    class HoldingStore implements Store {
      readonly inner = new MapStore();
      hold = false;
      held: Promise<() => void>;
      #heldResolve!: (release: () => void) => void;
      constructor() {
        this.held = new Promise((resolve) => (this.#heldResolve = resolve));
      }
      get(id: string): Promise<StoredRecord | undefined> {
        const value = this.inner.get(id); // read now ...
        if (!this.hold || !id.startsWith("cid:")) return Promise.resolve(value);
        this.hold = false;
        // ... answer when released: the answer is stale by then.
        return new Promise((resolve) => this.#heldResolve(() => resolve(value)));
      }
      set(id: string, record: StoredRecord, ttlMs: number): void {
        this.inner.set(id, record, ttlMs);
      }
      delete(id: string): void {
        this.inner.delete(id);
      }
      update(id: string, mutate: RecordMutator): StoredRecord | undefined {
        return this.inner.update(id, mutate);
      }
    }
    const store = new HoldingStore();
    const h = await startHarness({ manager: { store } });
    harnesses.push(h);
    const b = await visitor(h);
    store.hold = true;
    const connecting = h.connect(b.jar.header());
    const release = await store.held; // the handshake has read "no session" ...
    const login = JSON.parse((await b.post("/login")).body) as { sessionId: string };
    release(); // ... and learns it only after the login's sessionSet event
    const socket = await connecting;
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.sessionId, login.sessionId);
    assert.deepEqual(me.session, { user: "ada" });
  });

  test("sockets connected before attachSocketIO are bound when it attaches", async () => {
    const h = await startHarness({ manager: { store: new MapStore() }, lateAttach: true });
    harnesses.push(h);
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    h.attach();
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.sessionId, (await sessionOf(b)).sessionId);
    assert.deepEqual(me.session, { user: "ada" });
    assert.deepEqual(await ask<Reply>(socket, "set", "late", 1), { ok: "late" });
  });

  test("options of another type or out of range are refused up front, and nothing is attached", () => {
    const io = new Server();
    const manager = createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
    const bad: [object, ErrorConstructor][] = [
      [{ requireSession: "yes" }, TypeError],
      [{ onError: "x" }, TypeError],
      [{ destroyGraceMs: -1 }, RangeError],
      [{ destroyGraceMs: 2 ** 31 }, RangeError], // a timer cannot wait longer: it fires at once
      [{ onDestroy: "close" }, TypeError],
    ];
    for (const [options, type] of bad) {
      assert.throws(() => attachSocketIO(io, manager, options), type, JSON.stringify(options));
    }
    // null is "not set", as before these checks.
    attachSocketIO(
      io,
      manager,
      { requireSession: null, onError: null, destroyGraceMs: null } as object,
    )
      .detach();
    const bridge = attachSocketIO(io, manager, { requireSession: true }); // not attached before
    bridge.detach(); // (io never listened: nothing to close)
  });

  test("detach removes the middleware and listeners and drops all state", async () => {
    const h = await startHarness({ manager: { store: new MapStore() } });
    harnesses.push(h);
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    const { sessionId } = await ask<WhoAmI>(socket, "whoami");
    assert.throws(() => attachSocketIO(h.io, h.manager), /already attached/);
    h.bridge.detach();
    assert.deepEqual(h.bridge.stats(), {
      sockets: 0,
      clients: 0,
      sessions: 0,
      rooms: 0,
      pendingDestroys: 0,
      refreshing: 0,
    });
    const fns = (h.io.of("/") as unknown as { _fns: unknown[] })._fns;
    assert.equal(fns.length, 0);
    // The socket keeps its last-known session; withSession still works through the manager.
    assert.equal((await ask<WhoAmI>(socket, "whoami")).sessionId, sessionId);
    assert.deepEqual(await ask<Reply>(socket, "set", "after", 1), { ok: "after" });
    // A new attachment works again.
    const again = attachSocketIO(h.io, h.manager);
    again.detach();
  });

  test("after detach, withSession still finds the browser's session through the store", async () => {
    const h = await startHarness({ manager: { store: new MapStore() } });
    harnesses.push(h);
    assert.equal(h.manager.hearsEveryWrite, true);
    const b = await visitor(h);
    const socket = await h.connect(b.jar.header()); // only the client-id cookie
    h.bridge.detach(); // no events reach the socket any more: the login is only in the store
    const login = JSON.parse((await b.post("/login")).body) as { sessionId: string };
    assert.deepEqual(await ask<Reply>(socket, "get"), {
      ok: { sessionId: login.sessionId, session: { user: "ada" } },
    });
  });
});

describe("socket.io: sealed-cookie (stateless) mode", () => {
  let h: H;
  let socket: ClientSocket;
  let b: Client;
  before(async () => {
    h = await startHarness();
    b = h.browser();
    await b.post("/login");
    socket = await h.connect(b.jar.header());
  });
  after(() => h.close());

  test("socket.session is the handshake cookie's data; sessionId is the sealed id", async () => {
    assert.equal(h.manager.mode, "sealed");
    const me = await ask<WhoAmI>(socket, "whoami");
    assert.equal(me.clientId, null);
    assert.equal(typeof me.sessionId, "string");
    assert.deepEqual(me.session, { user: "ada" });
    assert.deepEqual(await ask<Reply>(socket, "get"), {
      ok: { sessionId: me.sessionId, session: { user: "ada" } },
    });
  });

  test("writes and destroy from a socket reject with SessionReadOnlyError", async () => {
    assert.deepEqual(await ask<Reply>(socket, "set", "x", 1), { error: "ERR_SESSION_READ_ONLY" });
    assert.deepEqual(await ask<Reply>(socket, "destroy"), { error: "ERR_SESSION_READ_ONLY" });
    assert.deepEqual((await sessionOf(b)).data, { user: "ada" });
  });

  test("a tampered sealed cookie connects without a session", async () => {
    const tampered = await h.connect(`sid=${tamper(b.jar.get("sid")!)}`);
    assert.equal((await ask<WhoAmI>(tampered, "whoami")).sessionId, null);
    assert.deepEqual(await ask<Reply>(tampered, "missing", "value"), { ok: { ok: false } });
  });

  test("HTTP logout disconnects the socket", async () => {
    const gone = next(socket, "disconnect");
    await b.post("/logout");
    await gone;
  });
});

describe("socket.io: serialize: true (PHP-style session locking)", () => {
  let h: H;
  before(async () => {
    h = await startHarness({ manager: { store: new MapStore(), serialize: true } });
  });
  after(() => h.close());

  // serialize: true runs load, handler and commit under the session's lock (PHP-style locking).
  test("200 HTTP count++ plus 200 socket count++ end at exactly 400", async () => {
    const b = await loggedIn(h);
    const socket = await h.connect(b.jar.header());
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      jobs.push(b.post("/incr"));
      jobs.push(ask(socket, "incr"));
    }
    await Promise.all(jobs);
    assert.equal((await sessionOf(b)).data.count, 400);
  });
});

describe("socket.io with a manager from another copy of unisession (two installs)", () => {
  test("withSession reads, writes and touches through the manager's public methods", async () => {
    // A second copy of src/ inside the repository (so that its imports resolve as the original's):
    // its SessionManager is another class, as with two installs of the package.
    const { cpSync, mkdirSync } = await import("node:fs");
    const dir = new URL("./artifacts/second-copy/", import.meta.url);
    mkdirSync(dir, { recursive: true });
    cpSync(new URL("../src/", import.meta.url), new URL("src/", dir), { recursive: true });
    const copy: typeof import("../src/manager.ts") = await import(
      new URL("src/manager.ts", dir).href
    );
    const stores: typeof import("../src/map_store.ts") = await import(
      new URL("src/map_store.ts", dir).href
    );
    const manager = copy.createSessions({
      store: new stores.MapStore(),
      keys: [KEY],
      logger: quiet,
    });
    const { SessionManager } = await import("../src/manager.ts");
    assert.equal(manager instanceof SessionManager, false, "another class");
    const state = manager.open(null);
    state.session.n = 1;
    const { cookies } = await manager.commit(state);
    const header = cookies.map((c) => c.split(";")[0]).join("; ");

    const { createServer } = await import("node:http");
    const { Server } = await import("socket.io");
    const { io: connect } = await import("socket.io-client");
    const http = createServer();
    const io = new Server(http);
    attachSocketIO(io, manager as never, { onError: (e) => assert.fail(String(e)) });
    io.on("connection", (socket) => {
      socket.on("incr", (ack: (r: unknown) => void) => {
        socket.withSession(({ session }) => (session.n = session.n + 1)).then(
          ack,
          (e) => ack(`failed: ${(e as Error).message}`),
        );
      });
      socket.on("read", (ack: (r: unknown) => void) => {
        socket.withSession(({ session }) => session.n).then(
          ack,
          (e) => ack(`failed: ${(e as Error).message}`),
        );
      });
      socket.on("cid", (ack: (r: unknown) => void) => ack(socket.clientId ?? null));
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const { port } = http.address() as { port: number };
    const client = connect(`http://127.0.0.1:${port}`, {
      transports: ["websocket"],
      extraHeaders: { cookie: header },
    });
    try {
      assert.equal(await client.emitWithAck("incr"), 2);
      assert.equal(await client.emitWithAck("read"), 2);
      assert.deepEqual(await manager.getById(state.id!), { n: 2 });

      // A client-id cookie planted next to the session cookie: the socket stays on the session
      // cookie's session, also after the planter's next login (the other copy's records reach
      // the adapter without their client id).
      const attacker = manager.open(null);
      attacker.session.n = 100;
      const attackerCookies = (await manager.commit(attacker)).cookies.map((c) => c.split(";")[0]);
      const planted = attackerCookies.find((c) => c.startsWith("sid.cid="))!;
      const sid = header.split("; ").find((c) => c.startsWith("sid="))!;
      const victim = connect(`http://127.0.0.1:${port}`, {
        transports: ["websocket"],
        extraHeaders: { cookie: `${sid}; ${planted}` },
      });
      try {
        assert.equal(await victim.emitWithAck("read"), 2);
        assert.notEqual(await victim.emitWithAck("cid"), attacker.clientId);
        const again = manager.open(attackerCookies.join("; "));
        await manager.prepare(again);
        await again.session.regenerate();
        again.session.n = 200;
        await manager.commit(again);
        assert.equal(await victim.emitWithAck("read"), 2);
      } finally {
        victim.close();
      }
    } finally {
      client.close();
      io.close();
      await new Promise((resolve) => http.close(resolve));
    }
  });
});

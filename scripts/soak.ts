/**
 * `npm run soak`: load and soak checks (a script, not a timed test; Node with --expose-gc).
 *
 * 1. Concurrent increments of one session over HTTP (Hono on node:http) and socket.io at once:
 *    through `manager.update` and through `serialize: true` with plain `count++` handlers.
 *    Reports expected, counted and lost (must be 0).
 * 2. 50,000 sessions created and expired on a MapStore, then `cleanup()`: reports the store
 *    size and the heap after GC at the baseline, after creation and after cleanup (must come
 *    back to the baseline).
 * 3. 1,000 socket.io clients connecting and disconnecting: reports `bridge.stats()` (all 0).
 *
 * Sizes: SOAK_INCREMENTS (per transport, default 10000), SOAK_SESSIONS (50000),
 * SOAK_SOCKETS (1000). Exits non-zero when a check fails.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { Server } from "socket.io";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
import { createSessions, MapStore, type SessionManager } from "../mod.ts";
import { session } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import { attachSocketIO, type SocketIOSessions } from "../adapters/socket_io.ts";
import "../adapters/socket_io_global.ts";

const KEY = "the-soak-test-key-of-at-least-32-characters";
const INCREMENTS = Number(process.env.SOAK_INCREMENTS ?? 10_000);
const SESSIONS = Number(process.env.SOAK_SESSIONS ?? 50_000);
const SOCKETS = Number(process.env.SOAK_SOCKETS ?? 1_000);
const quiet = { warn() {} };
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc (npm run soak)");

let failures = 0;
function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

interface Served {
  url: string;
  http: HttpServer;
  io: Server;
  bridge: SocketIOSessions;
  close(): Promise<void>;
}

/** Hono + socket.io on one node:http server on 127.0.0.1:0. */
async function serve(manager: SessionManager): Promise<Served> {
  const app = new Hono()
    .use(session(manager))
    .post("/login", (c) => {
      c.session.count = 0;
      return c.text("ok");
    })
    .post("/incr", (c) => {
      c.session.count = (c.session.count as number) + 1;
      return c.text("ok");
    })
    .post("/update", async (c) => {
      await manager.update(c.sessionId!, (d) => void (d.count = (d.count as number) + 1));
      return c.text("ok");
    })
    .get("/count", (c) => c.text(String(c.session.count)));
  const http = createServer(getRequestListener(app.fetch));
  const io = new Server(http);
  const bridge = attachSocketIO(io, manager);
  io.on("connection", (socket) => {
    socket.on("incr", (ack: (r: unknown) => void) => {
      socket.withSession(({ session }) => (session.count = (session.count as number) + 1))
        .then(() => ack(true), (e) => ack(String(e)));
    });
    socket.on("update", (ack: (r: unknown) => void) => {
      manager.update(socket.sessionId!, (d) => void (d.count = (d.count as number) + 1))
        .then(() => ack(true), (e) => ack(String(e)));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    http,
    io,
    bridge,
    close: () =>
      new Promise((resolve) => {
        bridge.detach();
        io.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

function connect(url: string, cookie?: string): Promise<ClientSocket> {
  const socket = ioc(url, {
    transports: ["websocket"],
    extraHeaders: cookie ? { cookie } : {},
    forceNew: true,
    reconnection: false,
    timeout: 20_000,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

/** Runs `total` async jobs with at most `limit` in flight. */
async function pool(total: number, limit: number, job: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, total) }, async () => {
    while (next < total) await job(next++);
  }));
}

async function increments(mode: "update" | "serialize"): Promise<void> {
  const manager = createSessions({
    store: new MapStore(),
    keys: [KEY],
    logger: quiet,
    serialize: mode === "serialize",
  });
  const s = await serve(manager);
  const login = await fetch(s.url + "/login", { method: "POST" });
  const cookie = login.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  const sockets = await Promise.all(Array.from({ length: 20 }, () => connect(s.url, cookie)));
  const route = mode === "update" ? "/update" : "/incr";
  const event = mode === "update" ? "update" : "incr";
  const started = performance.now();
  let failed = 0;
  await Promise.all([
    pool(INCREMENTS, 256, async () => {
      const r = await fetch(s.url + route, { method: "POST", headers: { cookie } });
      if (r.status !== 200) failed++;
      await r.arrayBuffer();
    }),
    Promise.all(sockets.map(async (socket, k) => {
      const mine = Math.floor(INCREMENTS / sockets.length) +
        (k < INCREMENTS % sockets.length ? 1 : 0);
      const acks = await Promise.all(
        Array.from({ length: mine }, () => socket.timeout(120_000).emitWithAck(event)),
      );
      failed += acks.filter((a) => a !== true).length;
    })),
  ]);
  const seconds = (performance.now() - started) / 1000;
  const counted = Number(await (await fetch(s.url + "/count", { headers: { cookie } })).text());
  const expected = 2 * INCREMENTS;
  console.log(
    `\n[increments, ${mode === "update" ? "manager.update" : "serialize: true, count++"}] ` +
      `${INCREMENTS} HTTP + ${INCREMENTS} socket, all in flight at once, ${seconds.toFixed(1)} s`,
  );
  console.log(`  expected ${expected}, counted ${counted}, lost ${expected - counted}`);
  check(failed === 0, `every request and event succeeded (${failed} failed)`);
  check(counted === expected, `lost = ${expected - counted}`);
  for (const socket of sockets) socket.close();
  await s.close();
}

function heapMb(): number {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

async function createAndExpire(): Promise<void> {
  let now = Date.now();
  const store = new MapStore({ now: () => now });
  const manager = createSessions({
    store,
    keys: [KEY],
    logger: quiet,
    maxAge: 60_000,
    now: () => now,
  });
  let destroyed = 0;
  manager.on("sessionDestroy", () => void destroyed++);
  const create = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const state = manager.open(null);
      state.session.user = `user-${i}`;
      state.session.cart = { items: [i, i + 1, i + 2] };
      await manager.commit(state);
    }
  };
  // Warm-up (JIT, first allocations), then the baseline.
  await create(1_000);
  now += 120_000;
  await manager.cleanup();
  const baseline = heapMb();
  const sizeBefore = store.size;
  await create(SESSIONS);
  const peak = heapMb();
  const sizePeak = store.size;
  now += 120_000;
  destroyed = 0;
  const cleared = await manager.cleanup();
  const after = heapMb();
  console.log(`\n[${SESSIONS} sessions created and expired on MapStore, then cleanup()]`);
  console.log(
    `  store records: ${sizeBefore} before, ${sizePeak} after creation ` +
      `(sessions + client mappings), ${store.size} after cleanup; ${cleared} cleared, ` +
      `${destroyed} sessionDestroy events`,
  );
  console.log(
    `  heap used after GC: baseline ${baseline.toFixed(1)} MB, after creation ` +
      `${peak.toFixed(1)} MB, after cleanup ${after.toFixed(1)} MB`,
  );
  check(cleared === SESSIONS && destroyed === SESSIONS, "every session cleared and announced");
  check(store.size === sizeBefore, "the store is back to its baseline size");
  check(
    after - baseline < Math.max(2, 0.05 * (peak - baseline)),
    `heap back to baseline (+${(after - baseline).toFixed(2)} MB of ` +
      `${(peak - baseline).toFixed(1)} MB grown)`,
  );
}

async function socketChurn(): Promise<void> {
  const manager = createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
  const s = await serve(manager);
  // Each client is its own browser: a third logged in, a third with only a client id (visited,
  // no session), a third with no cookie at all.
  const cookies: (string | undefined)[] = [];
  await pool(SOCKETS, 50, async (i) => {
    if (i % 3 === 2) return void (cookies[i] = undefined);
    const r = await fetch(s.url + (i % 3 === 0 ? "/login" : "/count"), {
      method: i % 3 === 0 ? "POST" : "GET",
    });
    cookies[i] = r.headers.getSetCookie().map((x) => x.split(";")[0]).join("; ");
    await r.arrayBuffer();
  });
  let disconnected = 0;
  s.io.on("connection", (socket) => socket.on("disconnect", () => void disconnected++));
  const started = performance.now();
  const clients: ClientSocket[] = [];
  await pool(SOCKETS, 100, async (i) => {
    clients.push(await connect(s.url, cookies[i]));
  });
  const connected = s.bridge.stats();
  for (const c of clients) c.close();
  while (disconnected < SOCKETS) await new Promise((r) => setTimeout(r, 20));
  await s.bridge.settled();
  const stats = s.bridge.stats();
  const seconds = (performance.now() - started) / 1000;
  console.log(`\n[${SOCKETS} sockets connect, then disconnect] ${seconds.toFixed(1)} s`);
  console.log(`  while connected: ${JSON.stringify(connected)}`);
  console.log(`  after:           ${JSON.stringify(stats)}`);
  console.log(`  io sockets left: ${s.io.of("/").sockets.size}`);
  check(connected.sockets === SOCKETS, `${connected.sockets} sockets tracked while connected`);
  check(Object.values(stats).every((v) => v === 0), "no per-socket state left behind");
  check(s.io.of("/").sockets.size === 0, "socket.io holds no socket");
  await s.close();
}

console.log(
  `soak: ${process.version}, increments ${INCREMENTS} per transport, ` +
    `${SESSIONS} sessions, ${SOCKETS} sockets`,
);
await increments("update");
await increments("serialize");
await createAndExpire();
await socketChurn();
console.log(failures === 0 ? "\nsoak: all checks passed" : `\nsoak: ${failures} check(s) FAILED`);
process.exit(failures === 0 ? 0 : 1);

// The Koa adapter (koa-session / koa-session-minimal semantics) and the koa-io-session drop-ins
// (bridgeSession, attachSession), on real node:http servers with real socket.io clients.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import Koa from "koa";
import { Server } from "socket.io";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
import {
  createSessions,
  MapStore,
  type SessionDestroyEvent,
  type SessionManager,
  SessionMissingError,
  type SessionSetEvent,
} from "../mod.ts";
import bridgeDefault, {
  attachSession,
  bridgeSession,
  type BridgeSessionOptions,
  koaSession,
  LiveStore,
  type SessionBridge,
} from "../adapters/koa.ts";
import "../adapters/socket_io_global.ts";
import { Client } from "./helpers/cookie_jar.ts";

const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };

interface Running {
  url: string;
  http: HttpServer;
  io?: Server;
  browser(): Client;
  connect(cookie?: string): Promise<ClientSocket>;
  close(): Promise<void>;
}

/** Serves a Koa app (and optionally socket.io) on 127.0.0.1:0. */
async function serve(app: Koa, withIo?: (http: HttpServer) => Server): Promise<Running> {
  const http = createServer(app.callback());
  const io = withIo?.(http);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sockets: ClientSocket[] = [];
  return {
    url,
    http,
    io,
    browser: () => new Client({ request: (path, init) => fetch(url + path, init) }),
    connect(cookie) {
      const socket = ioc(url, {
        transports: ["websocket"],
        extraHeaders: cookie ? { cookie } : {},
        forceNew: true,
        reconnection: false,
      });
      sockets.push(socket);
      return new Promise((resolve, reject) => {
        socket.once("connect", () => resolve(socket));
        socket.once("connect_error", reject);
      });
    },
    async close() {
      for (const s of sockets) s.close();
      await new Promise<void>((resolve) => {
        if (io) io.close(() => resolve());
        else http.close(() => resolve());
        http.closeAllConnections?.();
      });
    },
  };
}

/** Routes for the koaSession tests: each path exercises one piece of ctx.session. */
function routes(app: Koa, seen: { ids: (string | undefined)[] } = { ids: [] }): Koa {
  app.use(async (ctx) => {
    const q = ctx.query as Record<string, string | undefined>;
    switch (ctx.path) {
      case "/set":
        ctx.session[q.key!] = q.value;
        seen.ids.push(ctx.sessionId);
        break;
      case "/nested":
        (ctx.session.list ??= []).push(1);
        break;
      case "/null":
        ctx.session = null;
        ctx.body = { after: ctx.session, sessionId: ctx.sessionId ?? null };
        return;
      case "/empty":
        ctx.session = {};
        break;
      case "/replace":
        ctx.session = { replaced: true };
        break;
      case "/bad":
        ctx.session = "nope";
        break;
      case "/regenerate-id":
        ctx.sessionHandler.regenerateId();
        ctx.session.user = "ada";
        break;
      case "/regenerate-session":
        await ctx.regenerateSession();
        ctx.session.user = "bob";
        break;
      case "/max-age":
        ctx.session.maxAge = Number(q.ms);
        break;
      case "/save":
        ctx.session.save();
        break;
      case "/fail":
        ctx.session.partial = true;
        throw new Error("handler failed");
    }
    ctx.body = {
      sessionId: ctx.session?.isNew ? null : ctx.sessionId ?? null,
      clientId: ctx.clientId ?? null,
      data: ctx.session,
    };
  });
  return app;
}

function shared(): { sessions: SessionManager; store: MapStore } {
  const store = new MapStore();
  return { sessions: createSessions({ store, keys: [KEY], logger: quiet }), store };
}

describe("koaSession(manager): koa-session semantics", () => {
  let r: Running;
  let sessions: SessionManager;
  const seen = { ids: [] as (string | undefined)[] };
  before(async () => {
    ({ sessions } = shared());
    const app = new Koa();
    app.silent = true;
    app.use(koaSession(sessions));
    r = await serve(routes(app, seen));
  });
  after(() => r.close());

  test("the session and ctx.sessionId exist in the request that creates them", async () => {
    const b = r.browser();
    const res = await b.get("/set?key=a&value=1");
    const id = seen.ids.at(-1);
    assert.ok(id, "ctx.sessionId is set in the creating request");
    assert.deepEqual(JSON.parse(res.body).data, { a: "1" });
    assert.equal(JSON.parse((await b.get("/")).body).sessionId, id);
    assert.deepEqual(await sessions.getById(id!), { a: "1" }, "no internal fields in the data");
  });

  test("nested mutation is saved; unchanged reads send no Set-Cookie", async () => {
    const b = r.browser();
    await b.get("/nested");
    await b.get("/nested");
    assert.deepEqual(JSON.parse((await b.get("/")).body).data, { list: [1, 1] });
    assert.equal((await b.get("/")).setCookies.length, 0);
  });

  test("ctx.session = null destroys; ctx.session then reads null", async () => {
    const b = r.browser();
    await b.get("/set?key=a&value=1");
    const id = JSON.parse((await b.get("/")).body).sessionId;
    const res = await b.get("/null");
    assert.deepEqual(JSON.parse(res.body), { after: null, sessionId: null });
    assert.equal(await sessions.getById(id), undefined);
    assert.equal(b.jar.get("sid"), undefined, "the cookie is cleared");
  });

  test("ctx.session = {} destroys (koa-session-minimal); assigning an object replaces", async () => {
    const b = r.browser();
    await b.get("/set?key=a&value=1");
    await b.get("/replace");
    assert.deepEqual(JSON.parse((await b.get("/")).body).data, { replaced: true });
    const id = JSON.parse((await b.get("/")).body).sessionId;
    await b.get("/empty");
    assert.equal(await sessions.getById(id), undefined);
  });

  test("assigning anything else is a TypeError (500), and nothing is saved", async () => {
    const b = r.browser();
    assert.equal((await b.get("/bad")).status, 500);
    assert.equal((await b.get("/fail")).status, 500);
    assert.equal(b.jar.get("sid"), undefined, "a failed request creates no session");
  });

  test("sessionHandler.regenerateId() and ctx.regenerateSession() give a new id, keep data", async () => {
    const b = r.browser();
    await b.get("/set?key=a&value=1");
    const first = JSON.parse((await b.get("/")).body).sessionId;
    await b.get("/regenerate-id");
    const second = JSON.parse((await b.get("/")).body);
    assert.notEqual(second.sessionId, first);
    assert.deepEqual(second.data, { a: "1", user: "ada" });
    assert.equal(await sessions.getById(first), undefined, "the old record is deleted");
    await b.get("/regenerate-session");
    const third = JSON.parse((await b.get("/")).body);
    assert.notEqual(third.sessionId, second.sessionId);
    assert.equal(third.data.user, "bob");
  });

  test("ctx.session.maxAge sets the session's idle window and the cookie's Max-Age", async () => {
    const b = r.browser();
    await b.get("/set?key=a&value=1");
    const res = await b.get("/max-age?ms=60000");
    const sid = res.setCookies.find((c) => c.name === "sid")!;
    assert.equal(sid.attributes["max-age"], "60");
  });
});

describe("koaSession(options, app): koa-session and koa-session-minimal options", () => {
  test("no store: a sealed cookie session under short app.keys that survives a restart", async () => {
    const make = () => {
      const app = new Koa();
      app.keys = ["short-key-1", "short-key-2"];
      app.silent = true;
      app.use(koaSession({ key: "koa.sess", maxAge: "session", logger: quiet }, app));
      return routes(app);
    };
    const one = await serve(make());
    const b = one.browser();
    const res = await b.get("/set?key=a&value=1");
    const cookie = res.setCookies.find((c) => c.name === "koa.sess")!;
    assert.equal(
      cookie.attributes["max-age"],
      undefined,
      'maxAge: "session" is a browser-session cookie',
    );
    assert.ok(cookie.attributes.httponly !== undefined);
    await one.close();
    const two = await serve(make()); // a restart: same keys, new process state
    const again = new Client(two.browser().app, b.jar);
    assert.deepEqual(JSON.parse((await again.get("/")).body).data, { a: "1" });
    await two.close();
  });

  test("koa-session external store {get(key, maxAge, opts), set(key, sess, maxAge, opts), destroy}", async () => {
    const backing = new Map<string, unknown>();
    const calls: string[] = [];
    const store = {
      get(key: string) {
        calls.push("get");
        return backing.get(key);
      },
      set(key: string, sess: unknown, maxAge: number) {
        calls.push(`set ${typeof maxAge}`);
        backing.set(key, sess);
      },
      destroy(key: string) {
        calls.push("destroy");
        backing.delete(key);
      },
    };
    const app = new Koa();
    app.keys = ["koa-keys-can-be-short"];
    app.silent = true;
    app.use(koaSession({ store, maxAge: 60_000 }, app));
    const r = await serve(routes(app));
    const b = r.browser();
    await b.get("/set?key=a&value=1");
    assert.deepEqual(JSON.parse((await b.get("/")).body).data, { a: "1" });
    await b.get("/null");
    assert.deepEqual(calls.filter((c) => c !== "get"), ["set number", "destroy"]);
    assert.equal([...backing.keys()].filter((k) => !k.startsWith("cid:")).length, 0);
    await r.close();
  });

  test("koa-session-minimal: a koa-generic-session store and no keys → unsigned ids that survive a restart", async () => {
    const backing = new Map<string, unknown>();
    const store = {
      get: (sid: string) => Promise.resolve(backing.get(sid)),
      set: (sid: string, sess: unknown, _ttl: number) =>
        Promise.resolve(void backing.set(sid, sess)),
      destroy: (sid: string) => Promise.resolve(void backing.delete(sid)),
    };
    const make = () => {
      const app = new Koa();
      app.silent = true;
      app.use(koaSession({ store, key: "koa:sess" }));
      return routes(app);
    };
    const one = await serve(make());
    const b = one.browser();
    await b.get("/set?key=a&value=1");
    const id = b.jar.get("koa:sess")!;
    assert.match(id, /^[A-Za-z0-9_-]{24}$/, "the cookie is the bare id");
    assert.ok(backing.has(id));
    await one.close();
    const two = await serve(make());
    const again = new Client(two.browser().app, b.jar);
    assert.deepEqual(JSON.parse((await again.get("/")).body).data, { a: "1" });
    // A forged id of the right shape is never adopted: a fresh one is issued.
    const forged = new Client(two.browser().app);
    forged.jar.set("koa:sess", "A".repeat(24));
    await forged.get("/set?key=b&value=2");
    assert.notEqual(forged.jar.get("koa:sess"), "A".repeat(24));
    await two.close();
  });

  test("koa-session-minimal's defaults: cookie koa:sess, a browser-session cookie, a day in the store", async () => {
    const ttls: number[] = [];
    const backing = new Map<string, unknown>();
    const store = {
      get: (sid: string) => Promise.resolve(backing.get(sid)),
      set: (sid: string, sess: unknown, ttl: number) => {
        if (!sid.startsWith("cid:")) ttls.push(ttl);
        return Promise.resolve(void backing.set(sid, sess));
      },
      destroy: (sid: string) => Promise.resolve(void backing.delete(sid)),
    };
    const serveWith = (options: Parameters<typeof koaSession>[0]) => {
      const app = new Koa();
      app.silent = true;
      app.use(koaSession(options));
      return serve(routes(app));
    };
    const r = await serveWith({ store }); // koa-session-minimal's README: session({ store })
    const set = (await r.browser().get("/set?key=a&value=1")).setCookies;
    const cookie = set.find((c) => c.name === "koa:sess");
    assert.ok(cookie, `koa:sess is set (got ${set.map((c) => c.name)})`);
    assert.equal(cookie.attributes["max-age"], undefined, "a browser-session cookie");
    assert.equal(cookie.attributes.expires, undefined);
    assert.deepEqual(ttls, [86_400_000], "the store keeps it a day");
    await r.close();
    // cookie.maxAge > 0: the cookie lasts that long, and so does the record.
    ttls.length = 0;
    const month = await serveWith({ store, cookie: { maxAge: 30 * 86_400_000 } });
    const persistent = (await month.browser().get("/set?key=a&value=1")).setCookies
      .find((c) => c.name === "koa:sess")!;
    assert.equal(persistent.attributes["max-age"], String(30 * 86_400));
    assert.deepEqual(ttls, [30 * 86_400_000]);
    await month.close();
    // koa-session's session(options, app) keeps koa-session's defaults, even before app.keys.
    const app = new Koa();
    app.silent = true;
    app.use(koaSession({ store }, app));
    const withApp = await serve(routes(app));
    const koaSessionStyle = (await withApp.browser().get("/set?key=a&value=1")).setCookies;
    assert.equal(
      koaSessionStyle.find((c) => c.name === "koa.sess")?.attributes["max-age"],
      "86400",
    );
    await withApp.close();
  });

  test("maxAge other than a number or \"session\" (koa-atomic-session's '1 month') is a TypeError", () => {
    for (const maxAge of ["1 month", "14d", null, {}]) {
      assert.throws(
        () => koaSession({ store: new Map(), maxAge: maxAge as unknown as number }),
        (err: Error) => err instanceof TypeError && /maxAge/.test(err.message),
        String(maxAge),
      );
    }
  });

  test("dynamic cookie options: a function of ctx, evaluated when a non-empty session is saved", async () => {
    const MONTH = 30 * 86_400_000;
    const app = new Koa();
    app.keys = [KEY];
    app.silent = true;
    app.use(koaSession({
      store: new Map(),
      cookie: (ctx) => ({ maxAge: ctx.session.user ? MONTH : 0, path: "/" }),
    }));
    app.use((ctx) => {
      if (ctx.path === "/login") {
        ctx.sessionHandler.regenerateId();
        ctx.session.user = "ada";
      } else ctx.session.guest = true;
      ctx.body = "ok";
    });
    const r = await serve(app);
    const b = r.browser();
    const guest = (await b.get("/")).setCookies.find((c) => c.name === "koa.sess")!;
    assert.equal(guest.attributes["max-age"], undefined, "guest: a browser-session cookie");
    const user = (await b.get("/login")).setCookies.find((c) => c.name === "koa.sess")!;
    assert.equal(user.attributes["max-age"], String(MONTH / 1000), "user: a month");
    await r.close();
  });

  test("serialize: true runs same-session requests one at a time (200 count++ → 200)", async () => {
    const exclusive = createSessions({
      store: new MapStore(),
      keys: [KEY],
      serialize: true,
      logger: quiet,
    });
    const app = new Koa();
    app.use(koaSession(exclusive));
    app.use(async (ctx) => {
      const n = ctx.session.count ?? 0;
      await new Promise((resolve) => setTimeout(resolve, 0));
      ctx.session.count = n + 1;
      ctx.body = String(ctx.session.count);
    });
    const r = await serve(app);
    const b = r.browser();
    await b.get("/");
    await Promise.all(Array.from({ length: 199 }, () => b.get("/")));
    assert.equal((await b.get("/")).body, "201");
    await r.close();
  });

  test("koa-atomic-session's $inc, as the README writes it: exact from the first request on", async () => {
    const backing = new Map<string, unknown>();
    const store = { // an asynchronous store, as koa-atomic-session's MongoDB
      get: (sid: string) => Promise.resolve(backing.get(sid)),
      set: (sid: string, sess: unknown) => Promise.resolve(void backing.set(sid, sess)),
      destroy: (sid: string) => Promise.resolve(void backing.delete(sid)),
    };
    for (const s of [store, new MapStore()]) {
      const sessions = createSessions({ store: s, keys: [KEY], logger: quiet });
      const app = new Koa();
      app.use(koaSession(sessions));
      app.use(async (ctx) => {
        if (ctx.path === "/inc") {
          const inc = (d: { count?: number }) => {
            d.count = (d.count ?? 0) + 1;
          };
          // A new session is not in the store yet: the change goes into it, saved at the end.
          if (!(await sessions.update(ctx.sessionId!, inc))) inc(ctx.session);
        }
        ctx.body = String(ctx.session.count);
      });
      const r = await serve(app);
      try {
        const b = r.browser();
        await b.get("/inc"); // a new session: saved by this request
        await Promise.all(Array.from({ length: 49 }, () => b.get("/inc")));
        assert.equal((await b.get("/")).body, "50");
      } finally {
        await r.close();
      }
    }
  });
});

describe("koaSession: a failing store", () => {
  test("answers 503 (StoreError.status) without the message, commits nothing, recovers", async () => {
    let down = false;
    const backing = new Map<string, unknown>();
    const store = {
      get: (sid: string) =>
        down
          ? Promise.reject(new Error("ECONNREFUSED secret-host"))
          : Promise.resolve(backing.get(sid)),
      set: (sid: string, sess: unknown) =>
        down
          ? Promise.reject(new Error("ECONNREFUSED"))
          : Promise.resolve(void backing.set(sid, sess)),
      destroy: (sid: string) => Promise.resolve(void backing.delete(sid)),
    };
    const errors: unknown[] = [];
    const app = new Koa();
    app.keys = [KEY];
    app.on("error", (err) => errors.push(err));
    app.use(koaSession({ store }, app));
    app.use((ctx) => {
      ctx.session.n = (ctx.session.n ?? 0) + 1;
      ctx.body = String(ctx.session.n);
    });
    const r = await serve(app);
    const b = r.browser();
    assert.equal((await b.get("/")).body, "1");
    down = true;
    const failed = await b.get("/");
    assert.equal(failed.status, 503);
    assert.doesNotMatch(failed.body, /ECONNREFUSED|secret-host/);
    assert.equal((errors[0] as { code?: string }).code, "ERR_STORE");
    down = false;
    assert.equal((await b.get("/")).body, "2", "works again once the store is back");
    await r.close();
  });
});

// ------------------------------------------------------------------ koa-io-session v3

interface Bridged extends Running {
  bridge: SessionBridge;
  events: string[];
}

async function startBridge(opt: BridgeSessionOptions = {}): Promise<Bridged> {
  const app = new Koa();
  app.keys = ["your-stable-key-1", "your-stable-key-2"];
  app.silent = true;
  let bridge!: SessionBridge;
  const events: string[] = [];
  const r = await serve(app, (http) => {
    const io = new Server(http);
    bridge = bridgeSession(app, io, { key: "app.sid", logger: quiet, ...opt });
    bridge.on(
      "sessionSet",
      (e: SessionSetEvent) => events.push(`set new=${e.isNew} init=${e.isInit}`),
    );
    bridge.on("sessionDestroy", (e: SessionDestroyEvent) => events.push(`destroy ${e.reason}`));
    bridge.on("cleanup", (n: number) => events.push(`cleanup ${n}`));
    app.use(async (ctx, next) => {
      if (ctx.path !== "/api/session") return next();
      if (ctx.query.reset === "1") {
        ctx.session = null;
        ctx.body = { ok: true };
        return;
      }
      if (ctx.query.destroyOwn) {
        const loaded = ctx.session.httpCount; // the session is loaded, then destroyed by id
        ctx.body = { loaded, destroyed: await bridge.destroyById(ctx.sessionId!) };
        return;
      }
      if (ctx.query.login) {
        await ctx.regenerateSession();
        ctx.session.user = ctx.query.login;
      }
      if (ctx.query.incr) {
        const n = ctx.session.count ?? 0;
        await new Promise((resolve) => setTimeout(resolve, 0)); // widen the race window
        ctx.session.count = n + 1;
      } else ctx.session.httpCount = (ctx.session.httpCount ?? 0) + 1;
      if (ctx.query.key) ctx.session[String(ctx.query.key)] = true;
      ctx.body = { clientId: ctx.clientId, sessionId: ctx.sessionId, session: ctx.session };
    });
    io.on("connection", (socket) => {
      socket.on("session:get", async (ack) => {
        ack(
          await socket.withSession(
            ({ sessionId, session }) => ({ ok: true, sessionId, session }),
            { ok: false, error: "missing-session" },
          ),
        );
      });
      socket.on("session:set", async (key: string, ack) => {
        ack(await socket.withSession(({ session }) => void (session[key] = true), "missing"));
      });
      socket.on("session:incr", async (ack) => {
        ack(
          await socket.withSession(({ session }) => {
            session.count = (session.count ?? 0) + 1;
          }, "missing"),
        );
      });
      socket.on("whoami", (ack) => ack({ sessionId: socket.sessionId ?? null }));
    });
    return io;
  });
  return { ...r, bridge, events };
}

function ask<V>(socket: ClientSocket, event: string, ...args: unknown[]): Promise<V> {
  return socket.timeout(3000).emitWithAck(event, ...args) as Promise<V>;
}

describe("bridgeSession (koa-io-session v3 drop-in)", () => {
  test("bad autoCleanup options are refused before anything is installed on the app or io", () => {
    const app = new Koa();
    app.keys = [KEY];
    const io = new Server();
    const bad: [BridgeSessionOptions, ErrorConstructor][] = [
      [{ autoCleanup: "true" as unknown as boolean }, TypeError],
      [{ autoCleanup: true, autoCleanupMs: 0 }, RangeError],
      [{ autoCleanup: true, autoCleanupMs: 2 ** 31 }, RangeError],
      [{ autoCleanup: true, autoCleanupMs: "1000" as unknown as number }, RangeError],
    ];
    for (const [opt, type] of bad) {
      assert.throws(() => bridgeSession(app, io, { ...opt, logger: quiet }), type);
    }
    assert.equal(app.middleware.length, 0, "no middleware installed by a refused call");
    // null is "not set"; autoCleanupMs is read only with autoCleanup: true (an unset env var).
    const unset = { autoCleanup: null, autoCleanupMs: NaN } as unknown as BridgeSessionOptions;
    bridgeSession(new Koa(), new Server(), { ...unset, logger: quiet }).socketIO.detach();
    const bridge = bridgeSession(app, io, { logger: quiet }); // socket.io was not attached either
    bridge.socketIO.detach(); // (io never listened: nothing to close)
  });

  test("the default export is bridgeSession; LiveStore is the in-memory store", () => {
    assert.equal(bridgeDefault, bridgeSession);
    assert.ok(new LiveStore() instanceof MapStore);
  });

  test("a socket connected before login follows login and logout; events in exact order", async () => {
    const r = await startBridge();
    const b = r.browser();
    await b.get("/"); // the client-id cookie only
    assert.ok(b.jar.get("app.sid.cid"));
    assert.equal(b.jar.get("app.sid"), undefined);
    const socket = await r.connect(b.jar.header());
    assert.deepEqual(await ask(socket, "session:get"), { ok: false, error: "missing-session" });
    const created = JSON.parse((await b.get("/api/session")).body);
    assert.equal(created.session.httpCount, 1, "visible in the creating request");
    assert.ok(created.sessionId);
    assert.equal(r.bridge.getSessionId(created.clientId), created.sessionId);
    assert.equal(r.bridge.getClientId(created.sessionId), created.clientId);
    const seen = await ask<{ ok: boolean; session: Record<string, unknown> }>(
      socket,
      "session:get",
    );
    assert.deepEqual(seen.session, { httpCount: 1 }, "no internal fields");
    await ask(socket, "session:set", "fromSocket");
    const http = JSON.parse((await b.get("/api/session?login=ada")).body);
    assert.equal(http.session.fromSocket, true, "HTTP sees what the socket wrote");
    assert.notEqual(http.sessionId, created.sessionId, "login regenerated the id");
    const after = await ask<{ sessionId: string }>(socket, "session:get");
    assert.equal(after.sessionId, http.sessionId, "the socket follows the new session");
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    await b.get("/api/session?reset=1");
    await gone;
    assert.equal(r.bridge.getSessionId(created.clientId), undefined);
    assert.deepEqual(r.events, [
      "set new=true init=true", // creation
      "set new=false init=false", // the socket's write
      "destroy regenerate", // login
      "set new=true init=true",
      "destroy destroy", // logout
    ]);
    await r.close();
  });

  test("a first session a later one detached is not the browser's when its cookie comes back", async () => {
    const r = await startBridge();
    try {
      const b = r.browser();
      const first = JSON.parse((await b.get("/api/session")).body);
      assert.equal(first.sessionId, first.clientId, "the browser's first session");
      const oldSid = b.jar.get("app.sid")!;
      b.jar.delete("app.sid"); // the session cookie is lost; the client-id cookie stays
      const next = JSON.parse((await b.get("/api/session")).body);
      assert.notEqual(next.sessionId, first.sessionId);
      assert.equal(r.bridge.getSessionId(first.clientId), next.sessionId);
      // A request still carrying the first session's cookie (sent before the loss, say).
      const replay = b.jar.clone().set("app.sid", oldSid);
      const old = await r.browser().get("/api/session", replay.init());
      assert.equal(JSON.parse(old.body).sessionId, first.sessionId, "it uses that session");
      assert.equal(
        r.bridge.getSessionId(first.clientId),
        next.sessionId,
        "the browser's is the later one",
      );
      assert.equal(await r.bridge.sessions.getSessionId(first.clientId), next.sessionId);
      assert.equal(await r.bridge.destroyByClientId(first.clientId), true);
      assert.equal(
        await r.bridge.getById(next.sessionId),
        undefined,
        "the later one was destroyed",
      );
      assert.notEqual(await r.bridge.getById(first.sessionId), undefined, "not the detached one");
    } finally {
      await r.close(); // also when an assertion failed: no server left open
    }
  });

  test("clientRotateOnRegenerate: the login gives the browser a new client id; the old one maps to nothing", async () => {
    const r = await startBridge({ clientRotateOnRegenerate: true });
    const b = r.browser();
    const created = JSON.parse((await b.get("/api/session")).body);
    const cookie = b.jar.get("app.sid.cid");
    const login = JSON.parse((await b.get("/api/session?login=ada")).body);
    assert.notEqual(login.clientId, created.clientId, "ctx.clientId is the new one");
    assert.notEqual(b.jar.get("app.sid.cid"), cookie, "and its cookie was sent");
    assert.equal(r.bridge.getSessionId(login.clientId), login.sessionId);
    assert.equal(r.bridge.getSessionId(created.clientId), undefined);
    assert.equal(await r.bridge.getByClientId(created.clientId), undefined);
    const socket = await r.connect(b.jar.header());
    const seen = await ask<{ sessionId: string }>(socket, "session:get");
    assert.equal(seen.sessionId, login.sessionId);
    socket.disconnect();
    await r.close();
  });

  test("lookups: getById, getByClientId, setById, setByClientId (throws without mapping), destroyByClientId", async () => {
    const r = await startBridge();
    const b = r.browser();
    const { clientId, sessionId } = JSON.parse((await b.get("/api/session")).body);
    assert.deepEqual(await r.bridge.getById(sessionId), { httpCount: 1 });
    assert.deepEqual(await r.bridge.getByClientId(clientId), { httpCount: 1 });
    assert.equal(await r.bridge.setById(sessionId, { httpCount: 10 }), true);
    assert.equal(await r.bridge.setByClientId(clientId, { httpCount: 20 }), true);
    assert.equal(JSON.parse((await b.get("/api/session")).body).session.httpCount, 21);
    await assert.rejects(r.bridge.setByClientId("nobody", {}), SessionMissingError);
    await assert.rejects(r.bridge.setById("no-such-session", {}), SessionMissingError);
    assert.equal(await r.bridge.getByClientId("nobody"), undefined);
    assert.equal(await r.bridge.destroyByClientId("nobody"), false);
    assert.equal(await r.bridge.destroyByClientId(clientId), true);
    assert.equal(await r.bridge.getById(sessionId), undefined);
    assert.equal(await r.bridge.destroyById(sessionId), false);
    await r.close();
  });

  test("a request that destroys its own session by id leaves no mapping and no sessionSet behind", async () => {
    const backing = new Map<string, unknown>();
    const asyncStore = {
      get: (sid: string) => Promise.resolve(backing.get(sid)),
      set: (sid: string, sess: unknown) => Promise.resolve(void backing.set(sid, sess)),
      destroy: (sid: string) => Promise.resolve(void backing.delete(sid)),
    };
    for (const store of [undefined, asyncStore]) {
      const r = await startBridge({ store });
      try {
        await destroyOwn(r, store ? "async store" : "LiveStore");
      } finally {
        await r.close();
      }
    }
    async function destroyOwn(r: Bridged, what: string) {
      const b = r.browser();
      const { clientId, sessionId } = JSON.parse((await b.get("/api/session")).body);
      assert.equal(r.bridge.getSessionId(clientId), sessionId);
      r.events.length = 0;
      const res = JSON.parse((await b.get("/api/session?destroyOwn=1")).body);
      assert.deepEqual(res, { loaded: 1, destroyed: true });
      assert.deepEqual(r.events, ["destroy destroy"], `${what}: no sessionSet after the destroy`);
      assert.equal(r.bridge.getSessionId(clientId), undefined, what);
      assert.equal(r.bridge.getClientId(sessionId), undefined, what);
      assert.equal(await r.bridge.getById(sessionId), undefined, what);
      // The browser's next request starts a new session, attached as usual.
      const next = JSON.parse((await b.get("/api/session")).body);
      assert.notEqual(next.sessionId, sessionId);
      assert.equal(r.bridge.getSessionId(clientId), next.sessionId, what);
    }
  });

  test("cleanup, auto-cleanup and the notifyStore* methods emit the events", async () => {
    const store = new MapStore();
    const r = await startBridge({ store, maxAge: 200 });
    const b = r.browser();
    const { sessionId } = JSON.parse((await b.get("/api/session")).body);
    const socket = await r.connect(b.jar.header());
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    await new Promise((resolve) => setTimeout(resolve, 300));
    r.events.length = 0;
    assert.equal(await r.bridge.cleanup(), 1);
    await gone; // an expired session's sockets are disconnected too
    assert.deepEqual(r.events, ["destroy expired", "cleanup 1"]);
    assert.equal(r.bridge.startAutoCleanup(60_000), true);
    assert.equal(r.bridge.stopAutoCleanup(), true);
    assert.equal(r.bridge.stopAutoCleanup(), false);
    r.events.length = 0;
    r.bridge.notifyStoreDestroy(sessionId);
    r.bridge.notifyStoreCleanup(3);
    assert.deepEqual(r.events, ["destroy destroy", "cleanup 3"]);
    await r.close();
  });

  test("socket activity keeps the session alive for HTTP (withSession renews the idle window)", async () => {
    const r = await startBridge({ maxAge: 600 });
    const b = r.browser();
    await b.get("/api/session");
    const socket = await r.connect(b.jar.header());
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal((await ask<{ ok: boolean }>(socket, "session:get")).ok, true);
    }
    // 1 s after the last HTTP request, with a 600 ms idle window: alive through the socket.
    const again = JSON.parse((await b.get("/api/session")).body);
    assert.equal(again.session.httpCount, 2);
    await r.close();
  });

  test("no lost updates: 200 HTTP k<i> interleaved with 200 withSession w<i> leave all 400 keys", async () => {
    const r = await startBridge();
    const b = r.browser();
    const { sessionId } = JSON.parse((await b.get("/api/session")).body);
    const socket = await r.connect(b.jar.header());
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => [
        b.get(`/api/session?key=k${i}`),
        ask(socket, "session:set", `w${i}`),
      ]).flat(),
    );
    const data = (await r.bridge.getById(sessionId))!;
    for (let i = 0; i < 200; i++) {
      assert.equal(data[`k${i}`], true, `k${i}`);
      assert.equal(data[`w${i}`], true, `w${i}`);
    }
    await r.close();
  });

  test("serialize: true: 200 HTTP count++ plus 200 socket count++ end at exactly 400", async () => {
    const r = await startBridge({ serialize: true });
    const b = r.browser();
    const { sessionId } = JSON.parse((await b.get("/api/session")).body);
    await r.bridge.setById(sessionId, {});
    const socket = await r.connect(b.jar.header());
    await Promise.all(
      Array.from({ length: 200 }, () => [
        b.get("/api/session?incr=1"),
        ask(socket, "session:incr"),
      ]).flat(),
    );
    const data = (await r.bridge.getById(sessionId))!;
    assert.equal(data.count, 400);
    await r.close();
  });

  test("attachSession (v1): socket.sessionId and socket.session from the cookies", async () => {
    const app = new Koa();
    app.keys = ["k1"];
    app.silent = true;
    const seen: unknown[] = [];
    const r = await serve(app, (http) => {
      const io = new Server(http);
      attachSession(app, io, { key: "koa:sess", signed: true, maxAge: 86400000, logger: quiet });
      app.use((ctx) => {
        ctx.session.user = "ada";
        ctx.body = "ok";
      });
      io.on("connection", (socket) => seen.push([socket.sessionId, socket.session]));
      return io;
    });
    const b = r.browser();
    await b.get("/");
    await r.connect(b.jar.header());
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(typeof (seen[0] as unknown[])[0], "string");
    assert.deepEqual((seen[0] as unknown[])[1], { user: "ada" });
    await r.close();
  });
});

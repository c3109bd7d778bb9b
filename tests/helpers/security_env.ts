/**
 * One session manager behind every path a request can take, for the security tests: the core
 * (`manager.open` → `prepare` → `commit`), the Hono adapter (`app.request`), the Koa adapter and
 * the socket.io handshake on one real `node:http` server on 127.0.0.1:0 (real `fetch`, real
 * `socket.io-client` sockets). Every `onInvalid` reason, log line and reported error is captured.
 * Runs on Deno, Bun and Node.
 * @module
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Hono } from "hono";
import Koa from "koa";
import { Server } from "socket.io";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
import {
  createSessions,
  type InvalidReason,
  MapStore,
  type SessionManager,
  type SessionOptions,
} from "../../mod.ts";
import { csrf, session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import { koaCsrf, koaSession } from "../../adapters/koa.ts";
import { attachSocketIO, type AttachSocketIOOptions } from "../../adapters/socket_io.ts";
import "../../adapters/socket_io_global.ts";

export const KEY = "the-real-key-of-at-least-32-characters!";
export const OTHER_KEY = "somebody-elses-key-of-32-characters!!";
export type Mode = "store" | "sealed";
export const PATHS = ["core", "hono", "koa", "socket.io"] as const;
export type Path = typeof PATHS[number];
export const HTTP_PATHS = ["core", "hono", "koa"] as const;

/** What one path saw for one Cookie header. */
export interface Probe {
  /** HTTP status (200 for core and socket.io paths that answered). */
  status: number;
  /** `session.user`, or null without a session. */
  user: unknown;
  /** The session id the path works with (null without a session). */
  sessionId: string | null;
  /** `onInvalid` reasons reported while serving it. */
  reasons: InvalidReason[];
  /** Set-Cookie headers (HTTP paths). */
  setCookies: string[];
}

export interface Env {
  mode: Mode;
  manager: SessionManager;
  store: MapStore | undefined;
  url: string;
  http: HttpServer;
  hono: Hono;
  /** Every warn/debug line of the manager's logger and the adapters' background errors. */
  logs: string[];
  /** Errors that reached the frameworks' error handlers or the socket adapter's onError. */
  errors: unknown[];
  /** The `onInvalid` reasons since the last `reasons.length = 0`. */
  reasons: InvalidReason[];
  /** Logs in (creates a session with `user: "ada"`) and returns its cookie values. */
  login(): Promise<Valid>;
  /** Reads the session through `path` with this Cookie header. */
  probe(path: Path, cookie: string | undefined): Promise<Probe>;
  /** Writes the session through an HTTP path (`n++`); returns the id that was written. */
  write(path: typeof HTTP_PATHS[number], cookie: string | undefined): Promise<Probe>;
  /** An HTTP request through the Hono or Koa adapter. */
  request(
    path: "hono" | "koa",
    url: string,
    init?: RequestInit & { cookie?: string },
  ): Promise<Response>;
  /**
   * Holds the `/slow` routes (Hono, Koa) and the `slow` socket event between their session
   * read and their write until the returned function is called.
   */
  hold(): { arrived: Promise<void>; release(): void };
  /** Connects a socket.io client (rejects with the connect_error). */
  connect(cookie: string | undefined, auth?: Record<string, unknown>): Promise<ClientSocket>;
  close(): Promise<void>;
}

/** A logged-in browser's cookies. */
export interface Valid {
  /** The session cookie's value. */
  sid: string;
  /** The client-id cookie's value (store mode). */
  cid: string | undefined;
  sessionId: string;
  /** The `Cookie` header a browser would send. */
  header: string;
}

/** The `name=value` pairs of Set-Cookie headers, as a Cookie header. */
export function cookieHeader(setCookies: readonly string[]): string {
  return setCookies.map((c) => c.split(";")[0]!).filter((p) => !p.endsWith("=")).join("; ");
}

/** The value of cookie `name` among Set-Cookie headers. */
export function setCookieValue(setCookies: readonly string[], name: string): string | undefined {
  for (const c of setCookies) {
    const pair = c.split(";")[0]!;
    const eq = pair.indexOf("=");
    if (pair.slice(0, eq) === name) return pair.slice(eq + 1);
  }
  return undefined;
}

/** Starts every path on one manager. */
export async function startEnv(
  mode: Mode,
  options: SessionOptions = {},
  attach: AttachSocketIOOptions = {},
): Promise<Env> {
  const logs: string[] = [];
  const errors: unknown[] = [];
  const reasons: InvalidReason[] = [];
  const store = mode === "store" ? new MapStore() : undefined;
  let gate: Promise<void> = Promise.resolve();
  let arrive = (): void => {};
  const atGate = (): Promise<void> => {
    arrive();
    return gate;
  };
  const manager = createSessions({
    keys: [KEY],
    ...(store ? { store } : {}),
    logger: { warn: (m) => logs.push(m), debug: (m) => logs.push(m) },
    debug: true,
    onInvalid: (reason) => reasons.push(reason),
    ...options,
  });

  const hono = new Hono();
  hono.onError((err, c) => {
    errors.push(err);
    const status = (err as { status?: number }).status;
    return c.text("error", status === 403 || status === 503 ? status : 500);
  });
  hono.use(session(manager));
  hono.use("/guarded/*", csrf());
  hono.get("/whoami", (c) =>
    c.json({
      user: c.session.user ?? null,
      sessionId: c.session.isNew ? null : c.sessionId ?? null,
    }));
  hono.post("/write", (c) => {
    c.session.n = ((c.session.n as number | undefined) ?? 0) + 1;
    return c.json({ user: c.session.user ?? null, sessionId: c.sessionId ?? null });
  });
  hono.post("/guarded/write", (c) => {
    c.session.n = ((c.session.n as number | undefined) ?? 0) + 1;
    return c.json({ n: c.session.n });
  });
  hono.post("/slow", async (c) => {
    const user = c.session.user ?? null;
    await atGate();
    c.session.late = true;
    return c.json({ user });
  });
  hono.get("/token", (c) => c.json({ token: c.session.csrfToken(), sessionId: c.sessionId }));
  hono.post("/login", async (c) => {
    await c.session.regenerate();
    c.session.user = "ada";
    return c.json({ sessionId: c.sessionId, token: c.session.csrfToken() });
  });
  hono.post("/logout", (c) => {
    c.session = null;
    return c.text("bye");
  });

  const koa = new Koa();
  koa.on("error", (err) => errors.push(err));
  koa.use(koaSession(manager));
  const guard = koaCsrf();
  koa.use((ctx, next) => (ctx.path.startsWith("/guarded/") ? guard(ctx, next) : next()));
  koa.use(async (ctx) => {
    const s = ctx.session;
    if (ctx.path === "/whoami") {
      ctx.body = { user: s.user ?? null, sessionId: s.isNew ? null : ctx.sessionId ?? null };
    } else if (ctx.path === "/write" || ctx.path === "/guarded/write") {
      s.n = (s.n ?? 0) + 1;
      ctx.body = { user: s.user ?? null, sessionId: ctx.sessionId ?? null, n: s.n };
    } else if (ctx.path === "/slow") {
      const user = s.user ?? null;
      await atGate();
      s.late = true;
      ctx.body = { user };
    } else if (ctx.path === "/token") {
      ctx.body = { token: s.csrfToken(), sessionId: ctx.sessionId };
    } else if (ctx.path === "/login") {
      await s.regenerate();
      s.user = "ada";
      ctx.body = { sessionId: ctx.sessionId, token: s.csrfToken() };
    } else ctx.status = 404;
  });

  // Larger headers than Node's 16 KiB default reach the adapters: the library's own length
  // check is what these tests exercise.
  const http = createServer({ maxHeaderSize: 256 * 1024 }, koa.callback());
  const io = new Server(http);
  const bridge = attachSocketIO(io, manager, {
    destroyGraceMs: 0,
    onError: (e) => {
      errors.push(e);
      logs.push(String(e));
    },
    ...attach,
  });
  io.on("connection", (socket) => {
    socket.on("whoami", async (ack: (w: unknown) => void) => {
      await bridge.settled();
      ack({
        sessionId: socket.sessionId ?? null,
        user: socket.session?.user ?? null,
        clientId: socket.clientId ?? null,
      });
    });
    socket.on("read", (ack: (r: unknown) => void) => {
      socket.withSession(({ session }) => session.user ?? null).then(
        (user) => ack({ ok: user }),
        (e: { code?: string; message?: string }) => ack({ error: e.code ?? String(e.message) }),
      );
    });
    socket.on("slow", (ack: (r: unknown) => void) => {
      socket.withSession(async ({ session }) => {
        await atGate();
        session.late = true;
        return session.user ?? null;
      }).then(
        (user) => ack({ ok: user }),
        (e: { code?: string; message?: string }) => ack({ error: e.code ?? String(e.message) }),
      );
    });
    socket.on("incr", (ack: (r: unknown) => void) => {
      socket.withSession(({ session }) => (session.n = (session.n ?? 0) + 1)).then(
        (n) => ack({ ok: n }),
        (e: { code?: string; message?: string }) => {
          errors.push(e);
          ack({ error: e.code ?? String(e.message) });
        },
      );
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sockets: ClientSocket[] = [];

  const request: Env["request"] = async (path, target, init = {}) => {
    const headers = new Headers(init.headers);
    if (init.cookie !== undefined) headers.set("cookie", init.cookie);
    const { cookie: _cookie, ...rest } = init;
    return path === "hono"
      ? await hono.request(target, { ...rest, headers })
      : await fetch(url + target, { ...rest, headers });
  };

  const connect: Env["connect"] = (cookie, auth) => {
    const socket = ioc(url, {
      transports: ["websocket"],
      extraHeaders: cookie === undefined ? {} : { cookie },
      auth: auth ?? {},
      forceNew: true,
      reconnection: false,
      timeout: 5000,
    });
    sockets.push(socket);
    return new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(socket));
      socket.once("connect_error", (err) => {
        socket.close();
        reject(err);
      });
    });
  };

  async function viaCore(cookie: string | undefined, write: boolean): Promise<Probe> {
    const state = manager.open(cookie, { ctx: "core" });
    await manager.prepare(state);
    const user = state.session.user ?? null;
    if (write) state.session.n = ((state.session.n as number | undefined) ?? 0) + 1;
    const sessionId = write || !state.session.isNew ? manager.sessionIdOf(state) ?? null : null;
    const { cookies } = await manager.commit(state);
    return { status: 200, user, sessionId, reasons: [...reasons], setCookies: cookies };
  }

  async function viaHttp(path: "hono" | "koa", cookie: string | undefined, write: boolean) {
    const res = await request(path, write ? "/write" : "/whoami", {
      method: write ? "POST" : "GET",
      cookie,
    });
    const text = await res.text();
    const body = res.status === 200 ? JSON.parse(text) : { user: undefined, sessionId: null };
    return {
      status: res.status,
      user: body.user,
      sessionId: body.sessionId,
      reasons: [...reasons],
      setCookies: res.headers.getSetCookie(),
    };
  }

  async function viaSocket(cookie: string | undefined): Promise<Probe> {
    const socket = await connect(cookie);
    try {
      const me = await socket.timeout(3000).emitWithAck("whoami") as {
        sessionId: string | null;
        user: unknown;
      };
      return { status: 200, ...me, reasons: [...reasons], setCookies: [] };
    } finally {
      socket.close();
    }
  }

  return {
    mode,
    manager,
    store,
    url,
    http,
    hono,
    logs,
    errors,
    reasons,
    async login() {
      reasons.length = 0;
      const res = await hono.request("/login", { method: "POST" });
      const setCookies = res.headers.getSetCookie();
      const { sessionId } = await res.json() as { sessionId: string };
      const sid = setCookieValue(setCookies, manager.cookieName)!;
      const cidName = manager.clientCookieName;
      const cid = cidName === undefined ? undefined : setCookieValue(setCookies, cidName);
      return { sid, cid, sessionId, header: cookieHeader(setCookies) };
    },
    async probe(path, cookie) {
      reasons.length = 0;
      if (path === "core") return await viaCore(cookie, false);
      if (path === "socket.io") return await viaSocket(cookie);
      return await viaHttp(path, cookie, false);
    },
    async write(path, cookie) {
      reasons.length = 0;
      return path === "core" ? await viaCore(cookie, true) : await viaHttp(path, cookie, true);
    },
    request,
    connect,
    hold() {
      let open!: () => void;
      gate = new Promise((resolve) => (open = resolve));
      const arrived = new Promise<void>((resolve) => (arrive = resolve));
      return {
        arrived,
        release() {
          open();
          gate = Promise.resolve();
          arrive = () => {};
        },
      };
    },
    async close() {
      for (const s of sockets) s.close();
      bridge.detach();
      manager.close();
      await new Promise<void>((resolve) => {
        io.close(() => resolve());
        http.closeAllConnections?.();
      });
    },
  };
}

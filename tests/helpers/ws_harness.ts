/**
 * A real test server for the native WebSocket adapter (`adapters/ws.ts`), on the runtime that
 * runs the test: Deno → `Deno.serve` + `hono/deno`'s `upgradeWebSocket`; Bun → `Bun.serve` +
 * `hono/bun` (`upgradeWebSocket` and `websocket`); Node → `@hono/node-server` + `@hono/node-ws`.
 * One Hono app serves the HTTP routes (session middleware) and `/ws`, on 127.0.0.1 and a free port.
 * Clients are real WebSocket clients: the runtime's own `WebSocket` on Deno and Bun (both accept
 * a non-standard `{ headers }` option for the Cookie header), the `ws` package's client on Node 20.
 * @module
 */
import { Hono } from "hono";
import type { UpgradeWebSocket } from "hono/ws";
import { createSessions, type SessionManager, type SessionOptions } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import {
  createWebSocketSessions,
  type OnMissing,
  type SessionWebSocket,
  type WebSocketSessionOptions,
  type WebSocketSessions,
} from "../../adapters/ws.ts";
import { Client } from "./cookie_jar.ts";

export const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };

/** The runtime running this test file. */
export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/**
 * Puts the runtime's own Response class back as the global one until the returned function is
 * called. @hono/node-server's `getRequestListener` installs its lightweight Response globally,
 * and Deno.serve and Bun.serve refuse those (Bun runs every test file in one process). Its
 * replacement has the runtime's class as its prototype.
 */
export function useRuntimeResponse(): () => void {
  const installed = globalThis.Response;
  const parent = Object.getPrototypeOf(installed) as unknown;
  if (typeof parent === "function" && parent.name === "Response") {
    globalThis.Response = parent as typeof Response;
  }
  return () => {
    globalThis.Response = installed;
  };
}

/** A listening server of the current runtime. */
export interface Listening {
  url: string;
  close(): Promise<void>;
}

/** The current runtime's `upgradeWebSocket` for `app`, and how to serve `app`. */
export interface RuntimeServer {
  // deno-lint-ignore no-explicit-any
  upgradeWebSocket: UpgradeWebSocket<any, any>;
  listen(): Promise<Listening>;
}

/** Sets up the runtime's WebSocket support for `app` (routes may be added afterwards). */
// deno-lint-ignore no-explicit-any
export async function runtimeServer(app: Hono<any, any, any>): Promise<RuntimeServer> {
  if (RUNTIME === "deno") {
    const { upgradeWebSocket } = await import("hono/deno");
    return {
      upgradeWebSocket,
      listen() {
        return new Promise((resolve) => {
          const server = Deno.serve({
            port: 0,
            hostname: "127.0.0.1",
            onListen: ({ port }) =>
              resolve({
                url: `http://127.0.0.1:${port}`,
                close: () => server.shutdown(),
              }),
          }, app.fetch);
        });
      },
    };
  }
  if (RUNTIME === "bun") {
    const { upgradeWebSocket, websocket } = await import("hono/bun");
    return {
      upgradeWebSocket,
      listen() {
        // deno-lint-ignore no-explicit-any
        const bun = (globalThis as any).Bun;
        const server = bun.serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, websocket });
        return Promise.resolve({
          url: `http://127.0.0.1:${server.port}`,
          close: () => server.stop(true),
        });
      },
    };
  }
  const { createNodeWebSocket } = await import("@hono/node-ws");
  const { serve } = await import("@hono/node-server");
  const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app });
  return {
    upgradeWebSocket,
    listen() {
      return new Promise((resolve) => {
        const server = serve(
          { fetch: app.fetch, port: 0, hostname: "127.0.0.1" },
          (info) =>
            resolve({
              url: `http://127.0.0.1:${info.port}`,
              close: () =>
                new Promise<void>((done) => {
                  for (const client of wss.clients) client.terminate();
                  server.close(() => done());
                  (server as { closeAllConnections?: () => void }).closeAllConnections?.();
                }),
            }),
        );
        injectWebSocket(server);
      });
    },
  };
}

/** A minimal view of a client WebSocket (native or the `ws` package's). */
interface RawClient {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: unknown) => void) | null;
}

/** A reply to a request (`{ id, op }`): the handler's value, or the error's code (or message). */
export type Reply<V = unknown> = { ok: V } | { error: string };

/** What a socket reports about itself (`whoami`). */
export interface WhoAmI {
  clientId: string | null;
  sessionId: string | null;
  session: Record<string, unknown> | null;
}

/** A connected test client: request/reply over JSON messages, plus pushed messages. */
export interface TestSocket {
  /** Sends `{ id, op, ...args }` and resolves with the server's reply (5 s timeout). */
  ask<V = unknown>(op: string, args?: Record<string, unknown>): Promise<Reply<V>>;
  /** Sends a raw text message. */
  send(text: string): void;
  /** Resolves with the next message the server pushed on its own (5 s timeout). */
  nextPush(): Promise<Record<string, unknown>>;
  /** Resolves with the close code and reason once the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly isClosed: boolean;
  close(): void;
}

/** Opens a real WebSocket client with an optional Cookie header; rejects if it cannot open. */
export async function openSocket(url: string, cookie?: string): Promise<TestSocket> {
  const wsUrl = url.replace(/^http/, "ws") + "/ws";
  const headers = cookie ? { cookie } : {};
  let raw: RawClient;
  if (RUNTIME === "node") {
    const { default: WebSocket } = await import("ws");
    raw = new WebSocket(wsUrl, { headers }) as unknown as RawClient;
  } else {
    // Deno and Bun: `new WebSocket(url, { headers })` (non-standard options object).
    const Native = globalThis.WebSocket as unknown as new (url: string, opts: unknown) => RawClient;
    raw = new Native(wsUrl, { headers });
  }
  let seq = 0;
  let isClosed = false;
  const replies = new Map<number, (r: Reply) => void>();
  const pushes: Record<string, unknown>[] = [];
  const pushWaiters: ((m: Record<string, unknown>) => void)[] = [];
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  raw.onmessage = (e) => {
    const msg = JSON.parse(String(e.data)) as Record<string, unknown>;
    if (typeof msg.id === "number" && replies.has(msg.id)) {
      const done = replies.get(msg.id)!;
      replies.delete(msg.id);
      const { id: _, ...reply } = msg;
      done(reply as Reply);
    } else if (pushWaiters.length) pushWaiters.shift()!(msg);
    else pushes.push(msg);
  };
  await new Promise<void>((resolve, reject) => {
    raw.onopen = () => resolve();
    raw.onerror = () => reject(new Error("WebSocket failed to open"));
    raw.onclose = (e) => {
      isClosed = true;
      resolveClosed({ code: e.code, reason: e.reason });
      reject(new Error(`WebSocket closed before it opened (${e.code})`));
    };
  });
  raw.onerror = () => {};
  return {
    ask<V>(op: string, args: Record<string, unknown> = {}): Promise<Reply<V>> {
      const id = ++seq;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          replies.delete(id);
          reject(new Error(`timeout waiting for the reply to ${op}`));
        }, 5000);
        replies.set(id, (r) => {
          clearTimeout(timer);
          resolve(r as Reply<V>);
        });
        raw.send(JSON.stringify({ id, op, ...args }));
      });
    },
    send(text) {
      raw.send(text);
    },
    nextPush() {
      if (pushes.length) return Promise.resolve(pushes.shift()!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("timeout waiting for a push")), 5000);
        pushWaiters.push((m) => {
          clearTimeout(timer);
          resolve(m);
        });
      });
    },
    closed,
    get isClosed() {
      return isClosed;
    },
    close() {
      if (raw.readyState <= 1) raw.close(1000);
    },
  };
}

/** Waits for `p`, failing after `ms`. */
export function within<V>(p: Promise<V>, ms: number, what: string): Promise<V> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
    }),
  ]);
}

/** The `onMissing` variants a socket can ask for. */
const VARIANTS: Record<string, () => OnMissing<unknown> | undefined> = {
  default: () => undefined,
  error: () => new Error("custom missing"),
  fn: () => () => "from-fn",
  value: () => ({ ok: false }),
};

export interface WsHarness {
  url: string;
  manager: SessionManager;
  sockets: WebSocketSessions;
  /** Errors the adapter reported (`onError`). */
  errors: unknown[];
  /** Server-side `onClose` calls so far. */
  readonly serverCloses: number;
  /** Resolves once the server has seen `n` closes in total (5 s timeout). */
  closes(n: number): Promise<void>;
  /** A browser: an HTTP client with its own cookie jar. */
  browser(): Client;
  /** Opens a WebSocket client with the given Cookie header. */
  connect(cookie?: string): Promise<TestSocket>;
  /** The app, for in-process requests. */
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>;
  close(): Promise<void>;
}

export interface WsHarnessOptions {
  manager?: SessionOptions;
  sockets?: WebSocketSessionOptions;
  /** Use this manager instead of creating one. */
  use?: SessionManager;
}

/** Answers one request message of a test client. */
function handle(
  ws: SessionWebSocket,
  sockets: WebSocketSessions,
  manager: SessionManager,
  msg: Record<string, unknown>,
) {
  const key = msg.key as string;
  switch (msg.op) {
    case "whoami":
      return sockets.settled().then((): WhoAmI => ({
        clientId: ws.clientId ?? null,
        sessionId: ws.sessionId ?? null,
        session: ws.session ?? null,
      }));
    case "set":
      return ws.withSession((ctx) => {
        ctx.session[key] = msg.value;
        return key;
      });
    case "setAsync":
      // A handler that awaits I/O: HTTP writes land while it runs.
      return ws.withSession(async (ctx) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        ctx.session[key] = msg.value;
        return key;
      });
    case "get":
      return ws.withSession(({ session, sessionId }) => ({ sessionId, session }));
    case "racedWrite":
      // Another write to the session (it makes the adapter re-read it for the socket's
      // snapshot) and a socket write, in the same turn: ws.session must end up with both.
      void manager.update(ws.sessionId!, (d) => {
        d.other = 1;
      });
      return ws.withSession((ctx) => {
        ctx.session.own = 2;
        return "written";
      });
    case "incr":
      return ws.withSession(({ session }) => (session.count = (session.count ?? 0) + 1));
    case "nested":
      return ws.withSession(({ session }) => {
        (session.list ??= []).push(session.list.length);
        return session.list.length;
      });
    case "replace":
      return ws.withSession((ctx) => {
        ctx.session = msg.value as Record<string, unknown>;
      });
    case "reserved":
      return ws.withSession((ctx) => {
        ctx.session.regenerate = 1;
      });
    case "fail":
      return ws.withSession((ctx) => {
        ctx.session.partial = true;
        throw new Error("handler failed");
      });
    case "destroy":
      return ws.withSession((ctx) => {
        ctx.session = null;
        return "destroyed";
      });
    case "missing":
      return ws.withSession(() => "had-session", VARIANTS[msg.variant as string]!());
    default:
      return Promise.reject(new Error(`unknown op ${String(msg.op)}`));
  }
}

/** Starts the app with the HTTP routes and `/ws` on the current runtime. */
export async function startWsHarness(options: WsHarnessOptions = {}): Promise<WsHarness> {
  const manager = options.use ??
    createSessions({ keys: [KEY], logger: quiet, ...options.manager });
  const errors: unknown[] = [];
  const sockets = createWebSocketSessions(manager, {
    destroyGraceMs: 50,
    onError: (e) => errors.push(e),
    ...options.sockets,
  });
  const app = new Hono()
    .use(session(manager))
    .get("/visit", (c) => c.text("ok"))
    .post("/login", async (c) => {
      await c.session.regenerate();
      c.session.user = c.req.query("user") ?? "ada";
      return c.json({ sessionId: c.sessionId });
    })
    .post("/logout", (c) => {
      c.session = null;
      return c.text("bye");
    })
    .get("/session", (c) =>
      c.json({
        sessionId: c.session.isNew ? null : c.sessionId ?? null,
        data: c.session.toJSON(),
      }))
    .post("/set", (c) => {
      c.session[c.req.query("key")!] = c.req.query("value");
      return c.text("ok");
    })
    .post("/incr", (c) => {
      c.session.count = (c.session.count ?? 0) + 1;
      return c.text("ok");
    });
  const runtime = await runtimeServer(app);
  let serverCloses = 0;
  const closeWaiters: { n: number; resolve: () => void }[] = [];
  app.get(
    "/ws",
    runtime.upgradeWebSocket(sockets.events((_c, ws) => ({
      onMessage(evt) {
        const msg = JSON.parse(String(evt.data)) as Record<string, unknown>;
        // Faulty app handlers: the adapter must report these to `onError`, never crash.
        if (msg.op === "throw") throw new Error("thrown by onMessage");
        if (msg.op === "reject") return Promise.reject(new Error("rejected by onMessage"));
        const reply = (r: Reply) => {
          if (ws.readyState === 1) ws.send(JSON.stringify({ id: msg.id, ...r }));
        };
        Promise.resolve().then(() => handle(ws, sockets, manager, msg)).then(
          (v) => reply({ ok: v ?? null }),
          (e: { code?: string; message?: string }) => reply({ error: e.code ?? String(e.message) }),
        );
      },
      onClose() {
        serverCloses++;
        for (const w of [...closeWaiters]) {
          if (serverCloses >= w.n) {
            closeWaiters.splice(closeWaiters.indexOf(w), 1);
            w.resolve();
          }
        }
      },
    }))),
  );
  const server = await runtime.listen();
  const clients: TestSocket[] = [];
  return {
    url: server.url,
    manager,
    sockets,
    errors,
    app,
    get serverCloses() {
      return serverCloses;
    },
    closes(n) {
      if (serverCloses >= n) return Promise.resolve();
      return within(
        new Promise<void>((resolve) => closeWaiters.push({ n, resolve })),
        5000,
        `${n} server-side closes (saw ${serverCloses})`,
      );
    },
    browser: () => new Client({ request: (path, init) => fetch(server.url + path, init) }),
    async connect(cookie) {
      const socket = await openSocket(server.url, cookie);
      clients.push(socket);
      return socket;
    },
    async close() {
      for (const c of clients) c.close();
      await Promise.race([
        Promise.all(clients.map((c) => c.closed)),
        new Promise((r) => setTimeout(r, 1000)),
      ]);
      sockets.detach();
      await server.close();
    },
  };
}

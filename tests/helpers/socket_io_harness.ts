/**
 * A real test server for the socket.io adapter: a Hono app (through `@hono/node-server`'s
 * `getRequestListener`) and a socket.io server on one `node:http` server on 127.0.0.1:0, plus
 * real `socket.io-client` sockets and a cookie-jar HTTP client. Runs on Deno, Bun and Node.
 * @module
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { Hono } from "hono";
import { Server, type Socket } from "socket.io";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
import { createSessions, type SessionManager, type SessionOptions } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import {
  attachSocketIO,
  type AttachSocketIOOptions,
  type OnMissing,
  type SocketIOSessions,
} from "../../adapters/socket_io.ts";
import "../../adapters/socket_io_global.ts";
import { Client } from "./cookie_jar.ts";

export const KEY = "a-secret-of-at-least-32-characters!!";
export const quiet = { warn() {} };

/** What a socket reports about itself (`whoami`). */
export interface WhoAmI {
  clientId: string | null;
  sessionId: string | null;
  session: Record<string, unknown> | null;
}

/** An ack reply: the handler's value, or the error's code (or message). */
export type Reply<V = unknown> = { ok: V } | { error: string };

export interface Harness {
  url: string;
  manager: SessionManager;
  io: Server;
  http: HttpServer;
  bridge: SocketIOSessions;
  /** Errors the bridge reported in the background. */
  errors: unknown[];
  /** Server-side sockets by id (also after they disconnect). */
  serverSockets: Map<string, Socket>;
  /** A browser: an HTTP client with its own cookie jar. */
  browser(): Client;
  /** Connects a socket.io client with the given Cookie header. */
  connect(cookie?: string, opts?: ConnectOptions): Promise<ClientSocket>;
  /** Resolves once the server has seen `n` disconnects in total. */
  disconnects(n: number): Promise<void>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  nsp?: string;
  transports?: ("websocket" | "polling")[];
}

export interface HarnessOptions {
  manager?: SessionOptions;
  attach?: AttachSocketIOOptions;
  /** Attach only when the test says so (`h.attach()`), to test sockets connected before. */
  lateAttach?: boolean;
}

/** The `onMissing` variants a socket can ask for. */
const VARIANTS: Record<string, () => OnMissing<unknown> | undefined> = {
  default: () => undefined,
  error: () => new Error("custom missing"),
  fn: () => () => "from-fn",
  asyncFn: () => () => Promise.resolve("from-async-fn"),
  value: () => ({ ok: false }),
  null: () => null,
};

function reply(ack: (r: Reply) => void, p: Promise<unknown>): void {
  p.then(
    (v) => ack({ ok: v ?? null }),
    (e: { code?: string; message?: string }) => ack({ error: e.code ?? String(e.message) }),
  );
}

/** Starts the app, the socket.io server and the bridge. */
export async function startHarness(
  options: HarnessOptions = {},
): Promise<Harness & { attach(): SocketIOSessions }> {
  const manager = createSessions({ keys: [KEY], logger: quiet, ...options.manager });
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
    })
    .post("/update", async (c) => {
      const data = await manager.update(c.sessionId!, (d) => {
        d.count = ((d.count as number | undefined) ?? 0) + 1;
      });
      return c.json({ count: data?.count ?? null });
    });

  // overrideGlobalObjects: false keeps the runtime's own Response (Bun runs every test file in one
  // process, and Bun.serve refuses @hono/node-server's lightweight Response).
  const http = createServer(getRequestListener(app.fetch, { overrideGlobalObjects: false }));
  const io = new Server(http);
  const errors: unknown[] = [];
  const serverSockets = new Map<string, Socket>();
  let disconnectCount = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  let bridge: SocketIOSessions | undefined;
  const attach = (): SocketIOSessions =>
    bridge = attachSocketIO(io, manager, {
      destroyGraceMs: 50,
      onError: (e) => errors.push(e),
      ...options.attach,
    });
  if (!options.lateAttach) attach();

  const onConnection = (socket: Socket): void => {
    serverSockets.set(socket.id, socket);
    socket.on("disconnect", () => {
      disconnectCount++;
      for (const w of [...waiters]) {
        if (disconnectCount >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    socket.on("whoami", async (ack: (w: WhoAmI) => void) => {
      await bridge?.settled();
      ack({
        clientId: socket.clientId ?? null,
        sessionId: socket.sessionId ?? null,
        session: socket.session ?? null,
      });
    });
    socket.on("set", (key: string, value: unknown, ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session[key] = value;
          return key;
        }),
      ));
    socket.on("replace", (data: Record<string, unknown>, ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session = data;
        }),
      ));
    socket.on("nested", (ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession(({ session }) => {
          (session.list ??= []).push(session.list.length);
          return session.list.length;
        }),
      ));
    socket.on(
      "get",
      (ack: (r: Reply) => void) =>
        reply(ack, socket.withSession(({ session, sessionId }) => ({ sessionId, session }))),
    );
    socket.on("incr", (ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession(({ session }) => (session.count = (session.count ?? 0) + 1)),
      ));
    // Another write to the session (it makes the bridge re-read it for the socket's snapshot)
    // and a socket write, in the same turn: socket.session must end up with both.
    socket.on("racedWrite", (ack: (r: Reply) => void) => {
      void manager.update(socket.sessionId!, (d) => {
        d.other = 1;
      });
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session.own = 2;
          return "written";
        }),
      );
    });
    socket.on("update", (ack: (r: Reply) => void) =>
      reply(
        ack,
        manager.update(socket.sessionId!, (d) => {
          d.count = ((d.count as number | undefined) ?? 0) + 1;
        }).then((d) => d?.count),
      ));
    socket.on("fail", (ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session.partial = true;
          throw new Error("handler failed");
        }),
      ));
    socket.on("reserved", (ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session.maxAge = 1;
        }),
      ));
    socket.on("destroy", (ack: (r: Reply) => void) =>
      reply(
        ack,
        socket.withSession((ctx) => {
          ctx.session = null;
          return "destroyed";
        }),
      ));
    socket.on(
      "missing",
      (variant: string, ack: (r: Reply) => void) =>
        reply(ack, socket.withSession(() => "had-session", VARIANTS[variant]!())),
    );
  };
  io.on("connection", onConnection);
  io.of("/admin").on("connection", onConnection);

  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: ClientSocket[] = [];

  return {
    url,
    manager,
    io,
    http,
    get bridge(): SocketIOSessions {
      return bridge!;
    },
    errors,
    serverSockets,
    attach,
    browser: () => new Client({ request: (path, init) => fetch(url + path, init) }),
    connect(cookie, opts = {}) {
      const socket = ioc(url + (opts.nsp ?? "/"), {
        transports: opts.transports ?? ["websocket"],
        extraHeaders: cookie ? { cookie } : {},
        forceNew: true,
        reconnection: false,
        timeout: 5000,
      });
      clients.push(socket);
      return new Promise((resolve, reject) => {
        socket.once("connect", () => resolve(socket));
        socket.once("connect_error", (err) => {
          socket.close();
          reject(err);
        });
      });
    },
    disconnects(n) {
      if (disconnectCount >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      for (const c of clients) c.close();
      bridge?.detach();
      await new Promise<void>((resolve) => {
        io.close(() => resolve());
        (http as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}

/** Emits with an acknowledgement (3 s timeout). */
export function ask<V>(socket: ClientSocket, event: string, ...args: unknown[]): Promise<V> {
  return socket.timeout(3000).emitWithAck(event, ...args) as Promise<V>;
}

/** Resolves with the first arguments of `event` on a client socket (5 s timeout). */
export function next<V = unknown>(socket: ClientSocket, event: string): Promise<V> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), 5000);
    socket.once(event, (value: V) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

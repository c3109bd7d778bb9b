/**
 * socket.io benchmark server (Node): an HTTP app that creates sessions (`POST /new?n=K`) and a
 * socket.io server on the same `node:http` server whose `incr` event does a session
 * read-modify-write and acknowledges the new `n`. Variants:
 * - `bare`: no session; each socket counts its own `incr` events from 0
 * - `floor`, `floor-json`: no library, what any session layer costs at least (see `floor`)
 * - `express-session`: express + express-session, shared with socket.io through
 *   `io.engine.use()`, `reload()` / `save()` per event (socket.io's documented pattern)
 * - `unisession`: a Hono app and `attachSocketIO` on one manager, `socket.withSession` per event
 * - `unisession-koa`: the same with a Koa app (`koaSession`)
 *
 * Usage: `node --import tsx bench/servers/socket_io.ts <variant>`.
 * @module
 */
import { createServer, type IncomingMessage, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import express, { type RequestHandler } from "express";
import expressSession from "express-session";
import { Hono } from "hono";
import Koa from "koa";
import { Server, type Socket } from "socket.io";
import { createSessions, MapStore } from "../../mod.ts";
import { session as honoSession } from "../../adapters/hono.ts";
import { koaSession } from "../../adapters/koa.ts";
import { attachSocketIO, type SessionSocket } from "../../adapters/socket_io.ts";
import { KEY, ready, unknownVariant, variantArg } from "./common.ts";

type Ack = (n: number | string) => void;

interface Variant {
  /** The HTTP app. */
  http: RequestListener;
  /** Sets up the socket.io server once it exists. */
  attach(io: Server): void;
  /** The `incr` handler of one socket. */
  onIncr(socket: Socket): (ack: Ack) => void;
}

function bare(): Variant {
  return {
    http: (req, res) => {
      const n = new URL(req.url ?? "/", "http://x").searchParams.get("n");
      res.end(String(Number(n)));
    },
    attach() {},
    onIncr() {
      let n = 0;
      return (ack) => ack(++n);
    },
  };
}

/**
 * The floor under withSession, not a library: an unsigned random id in a cookie (made by `POST
 * /new`), read from the handshake's Cookie header once per socket; per event, one Map lookup and
 * the increment, acknowledged at once. `json`: what a store of strings and a promise-returning
 * API (as `withSession` is) add at least: the session held as JSON (parsed and written again per
 * event) and the acknowledgement sent from a promise reaction.
 */
function floor(json: boolean): Variant {
  const sessions = new Map<string, { n: number }>();
  const held = new Map<string, string>();
  return {
    http: (req, res) => {
      const n = Number(new URL(req.url ?? "/", "http://x").searchParams.get("n"));
      const id = crypto.randomUUID();
      if (json) held.set(id, JSON.stringify({ n }));
      else sessions.set(id, { n });
      res.setHeader("Set-Cookie", `sid=${id}; Path=/; HttpOnly; SameSite=Lax`);
      res.end(String(n));
    },
    attach() {},
    onIncr(socket) {
      const header = socket.request.headers.cookie;
      const id = header === undefined ? "" : /(?:^|; )sid=([^;]*)/.exec(header)?.[1] ?? "";
      if (!json) {
        return (ack) => {
          const session = sessions.get(id);
          ack(session === undefined ? "no session" : ++session.n);
        };
      }
      const increment = (ack: Ack) => {
        const value = held.get(id);
        if (value === undefined) return ack("no session");
        const session = JSON.parse(value) as { n: number };
        session.n++;
        held.set(id, JSON.stringify(session));
        ack(session.n);
      };
      return (ack) => void Promise.resolve(ack).then(increment);
    },
  };
}

type SessionRequest = IncomingMessage & {
  session: {
    n: number;
    reload(cb: (err?: unknown) => void): void;
    save(cb: (err?: unknown) => void): void;
  };
};

function withExpressSession(): Variant {
  const sessionMiddleware = expressSession({
    secret: KEY,
    resave: false,
    saveUninitialized: false,
  });
  const app = express();
  app.use(sessionMiddleware as RequestHandler);
  app.post("/new", (req, res) => {
    const session = (req as unknown as SessionRequest).session;
    session.n = Number(req.query.n);
    res.send(String(session.n));
  });
  return {
    http: app,
    attach: (io) => io.engine.use(sessionMiddleware),
    onIncr(socket) {
      const req = socket.request as SessionRequest;
      return (ack) => {
        req.session.reload((err) => {
          if (err) return ack(`reload failed: ${err}`);
          req.session.n = req.session.n + 1;
          const n = req.session.n;
          req.session.save((err) => ack(err ? `save failed: ${err}` : n));
        });
      };
    },
  };
}

/** unisession's socket side on a manager shared with an HTTP app (`hono` or `koa`). */
function withUnisession(framework: "hono" | "koa"): Variant {
  const manager = createSessions({ store: new MapStore(), keys: [KEY] });
  let http: RequestListener;
  if (framework === "hono") {
    const app = new Hono().use(honoSession(manager)).post("/new", (c) => {
      const n = Number(c.req.query("n"));
      (c as unknown as { session: { n: number } }).session.n = n;
      return c.text(String(n));
    });
    http = getRequestListener(app.fetch);
  } else {
    const app = new Koa();
    app.use(koaSession(manager));
    app.use((ctx) => {
      const n = Number(ctx.query.n);
      (ctx as unknown as { session: { n: number } }).session.n = n;
      ctx.body = String(n);
    });
    http = app.callback();
  }
  return {
    http,
    attach: (io) => attachSocketIO(io, manager),
    onIncr(socket) {
      const s = socket as SessionSocket;
      return (ack) => {
        s.withSession(({ session }) => (session.n = session.n + 1)).then(
          ack,
          (err: Error) => ack(`withSession failed: ${err.message}`),
        );
      };
    },
  };
}

const VARIANTS: Record<string, () => Variant> = {
  bare,
  floor: () => floor(false),
  "floor-json": () => floor(true),
  "express-session": withExpressSession,
  unisession: () => withUnisession("hono"),
  "unisession-koa": () => withUnisession("koa"),
};

const name = variantArg();
const variant = (VARIANTS[name] ?? unknownVariant("socket.io", name, Object.keys(VARIANTS)))();
const server = createServer(variant.http);
const io = new Server(server, { transports: ["websocket"] });
variant.attach(io);
io.on("connection", (socket) => socket.on("incr", variant.onIncr(socket)));
server.listen(0, "127.0.0.1", () => ready((server.address() as AddressInfo).port));

/**
 * The demo server: the Hono app and a socket.io server on one `node:http` server (works on Node,
 * Deno and Bun), both on ONE session manager. Sockets count on the same session as HTTP
 * requests, receive the manager's bridge events for their session, and are disconnected when
 * their session is destroyed (logout in another tab).
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { Server, type Socket } from "socket.io";
import type {
  DestroyReason,
  SessionDestroyEvent,
  SessionManager,
  SessionSetEvent,
} from "../../mod.ts";
import { attachSocketIO } from "../../adapters/socket_io.ts";
import "../../adapters/socket_io_global.ts";
import { createDemoApp, createDemoSessions, type DemoSession, shortId } from "./app.ts";

/** Options of {@linkcode startDemo}. */
export interface DemoOptions {
  /** Port; 0 picks a free one. Default 3000. */
  port?: number;
  /** Default `"127.0.0.1"`. */
  hostname?: string;
  /** Default: a new {@linkcode createDemoSessions} manager. */
  sessions?: SessionManager<DemoSession>;
  /** Called with errors of background work (event broadcasts, the bridge). Default: console.error. */
  onError?: (err: unknown) => void;
}

/** A running demo. */
export interface DemoServer {
  url: string;
  port: number;
  sessions: SessionManager<DemoSession>;
  /** Disconnects every socket and closes the server. */
  close(): Promise<void>;
}

/** What the page receives for each bridge event of its session. */
export type BridgeMessage =
  | { event: "sessionSet"; session: string; isNew: boolean; name: string | null; count: number }
  | { event: "sessionDestroy"; session: string; reason: DestroyReason };

/** The acknowledgement of the `count` and `session` socket events. */
export interface AckReply {
  count?: number;
  name?: string | null;
  error?: string;
}

/** Starts the demo; resolves once it listens. */
export async function startDemo(options: DemoOptions = {}): Promise<DemoServer> {
  const sessions = options.sessions ?? createDemoSessions();
  const onError = options.onError ?? ((err: unknown) => console.error("demo:", err));
  const http = createServer(getRequestListener(createDemoApp(sessions).fetch));
  const io = new Server(http);
  const bridge = attachSocketIO(io, sessions, { onDestroy: "disconnect", onError });

  // Socket events with an acknowledgement; without one (or with junk in its place) nothing runs.
  const answer = (ack: unknown, work: () => Promise<AckReply | null>): void => {
    if (typeof ack !== "function") return;
    work().then(
      (reply) => ack(reply ?? { error: "no session" }),
      (err) => {
        onError(err);
        ack({ error: "failed" });
      },
    );
  };
  io.on("connection", (socket: Socket) => {
    socket.on("count", (ack: unknown) =>
      answer(ack, () =>
        socket.withSession(
          ({ session }) => ({ count: session.count = (session.count ?? 0) + 1 }),
          null,
        )));
    socket.on("session", (ack: unknown) =>
      answer(ack, () =>
        socket.withSession(
          ({ session }) => ({ name: session.name ?? null, count: session.count ?? 0 }),
          null,
        )));
  });

  // The manager's events go to the sockets of the session concerned (its room). A destroyed
  // session's sockets are still in its room here: they get the event, then the bridge
  // disconnects them.
  const send = (sessionId: string, message: BridgeMessage): void => {
    io.to(bridge.roomOf(sessionId)).emit("bridge", message);
  };
  const onSet = (e: SessionSetEvent): void => {
    sessions.getById(e.sessionId).then((data) =>
      send(e.sessionId, {
        event: "sessionSet",
        session: shortId(e.sessionId),
        isNew: e.isNew,
        name: data?.name ?? null,
        count: data?.count ?? 0,
      }), onError);
  };
  const onDestroy = (e: SessionDestroyEvent): void => {
    send(e.sessionId, { event: "sessionDestroy", session: shortId(e.sessionId), reason: e.reason });
  };
  sessions.on("sessionSet", onSet).on("sessionDestroy", onDestroy);

  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      sessions.off("sessionSet", onSet).off("sessionDestroy", onDestroy);
      bridge.detach();
      io.close(() => resolve()); // disconnects the sockets, then closes the HTTP server
      http.closeAllConnections?.(); // idle keep-alive connections would hold it open
    });
  try {
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(options.port ?? 3000, options.hostname ?? "127.0.0.1", () => {
        http.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
  const address = http.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    sessions,
    close() {
      return closing ??= stop();
    },
  };
}

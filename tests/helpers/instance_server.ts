/**
 * One app instance for the multi-process tests, run as its own process on Node
 * (`node --import tsx tests/helpers/instance_server.ts ...`) or Bun (`bun tests/helpers/...`):
 * the Hono app of `instance_app.ts` and a socket.io server on one `node:http` server
 * (127.0.0.1, a free port), sessions in Redis (`RedisStore`), socket.io clustered through
 * `@socket.io/redis-adapter` (its own pub and sub connections), and unisession's socket.io
 * adapter. Prints `listening <port>` once ready; exits on SIGTERM.
 *
 * Flags: `--redis <port>` (required), `--prefix <p>` (keys, the store's event channel and the
 * socket.io adapter's channels; default `multi:`), `--on-destroy disconnect|emit`,
 * `--store-timeout <ms>` (the manager's `storeTimeout`; default: the library's 10 s),
 * `--no-store-events` (the manager gets the store without `subscribe`/`publish`, like a store
 * with no event channel: only the socket.io adapter connects the instances).
 *
 * Socket events (each with an acknowledgement):
 * - `whoami` → `{ clientId, sessionId, session }` (the adapter's live view);
 * - `user` → `socket.withSession(({ session }) => session.user)`: `{ ok: user }`, `{ missing:
 *   true }` through `onMissing`, or `{ error: code }` when it rejects (a StoreError: `ERR_STORE`);
 * - `incr` → `manager.update(socket.sessionId, count + 1)`: `{ ok: count }`, `{ missing: true }`
 *   or `{ error: code }`.
 *
 * Every session event is forwarded to that session's sockets on this instance as `session:set`
 * / `session:destroy` `{ sessionId, remote, ... }`. Unhandled rejections and uncaught exceptions
 * are recorded (`GET /health`, with the count of Redis and background errors) and printed, never fatal, so a test sees them instead of a crash.
 * @module
 */
import process from "node:process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { getRequestListener } from "@hono/node-server";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createSessions } from "../../mod.ts";
import { describeError } from "../../src/errors.ts";
import { attachSocketIO } from "../../adapters/socket_io.ts";
import "../../adapters/socket_io_global.ts";
import { RedisStore, type Store } from "../../stores/redis.ts";
import { instanceApp, type InstanceData } from "./instance_app.ts";

const { values } = parseArgs({
  options: {
    redis: { type: "string" },
    prefix: { type: "string", default: "multi:" },
    "on-destroy": { type: "string", default: "disconnect" },
    "store-timeout": { type: "string" },
    "no-store-events": { type: "boolean", default: false },
  },
});
const redisPort = Number(values.redis);
if (!Number.isInteger(redisPort) || redisPort <= 0) {
  throw new TypeError("--redis <port> is required");
}
const prefix = values.prefix!;
const onDestroy = values["on-destroy"] as "disconnect" | "emit";

const unhandled: string[] = [];
const record = (kind: string) => (err: unknown) => {
  unhandled.push(`${kind}: ${describeError(err)}`);
  console.error(`instance ${process.pid}: ${kind}:`, err);
};
process.on("unhandledRejection", record("unhandledRejection"));
process.on("uncaughtException", record("uncaughtException"));

// Connection errors while Redis is down are expected: counted (the last few kept), not printed.
let redisErrors = 0;
const lastErrors: string[] = [];
const countError = (err: unknown) => {
  redisErrors++;
  lastErrors.push(typeof err === "string" ? err : describeError(err));
  if (lastErrors.length > 5) lastErrors.shift();
};
const connect = () => {
  const client = new Redis({ host: "127.0.0.1", port: redisPort });
  client.on("error", countError);
  return client;
};
const client = connect();
const store = new RedisStore({ client, prefix, onError: countError });
const sessions = createSessions<InstanceData>({
  store: values["no-store-events"] ? withoutEvents(store) : store,
  keys: ["a-secret-of-at-least-32-characters!!"],
  storeTimeout: values["store-timeout"] === undefined ? undefined : Number(values["store-timeout"]),
  logger: { warn: countError, debug() {} },
});

const app = instanceApp(sessions, () => ({ unhandled, redisErrors, lastErrors }));
const http = createServer(getRequestListener(app.fetch));
const pub = connect();
const sub = connect();
const io = new Server(http, { adapter: createAdapter(pub, sub, { key: `${prefix}socket.io` }) });
const bridge = attachSocketIO(io, sessions, { onDestroy, onError: countError });

type Reply = { ok: unknown } | { missing: true } | { error: string };
const replyWith = (ack: unknown, work: () => Promise<Reply>): void => {
  if (typeof ack !== "function") return;
  work().then(ack as (r: Reply) => void, (err) => {
    (ack as (r: Reply) => void)({ error: (err as { code?: string })?.code ?? describeError(err) });
  });
};

io.on("connection", (socket) => {
  socket.on("whoami", (ack: unknown) =>
    replyWith(ack, () =>
      Promise.resolve({
        ok: {
          clientId: socket.clientId ?? null,
          sessionId: socket.sessionId ?? null,
          session: socket.session ?? null,
        },
      })));
  socket.on("user", (ack: unknown) =>
    replyWith(ack, () =>
      socket.withSession<Reply, Reply>(
        ({ session }) => ({ ok: session.user ?? null }),
        () => ({ missing: true }),
      )));
  socket.on("incr", (ack: unknown) =>
    replyWith(ack, async () => {
      const sid = socket.sessionId;
      const next = sid === undefined ? undefined : await sessions.update(sid, (d) => {
        d.count = (d.count ?? 0) + 1;
      });
      return next === undefined ? { missing: true } : { ok: next.count };
    }));
});

// Forward this instance's view of session events to the session's local sockets (after the
// socket.io adapter's own listeners, which move the sockets into the new session's room).
sessions.on("sessionSet", ({ sessionId, remote, isNew }) => {
  io.local.to(bridge.roomOf(sessionId)).emit("session:set", { sessionId, remote, isNew });
});
sessions.on("sessionDestroy", ({ sessionId, remote, reason }) => {
  io.local.to(bridge.roomOf(sessionId)).emit("session:destroy", { sessionId, remote, reason });
});

http.listen(0, "127.0.0.1", () => {
  console.log(`listening ${(http.address() as AddressInfo).port}`);
});

process.on("SIGTERM", () => {
  setTimeout(() => process.exit(0), 1000).unref();
  bridge.detach();
  sessions.close();
  io.close();
  void store.close().finally(() => {
    for (const c of [client, pub, sub]) c.disconnect();
    process.exit(0);
  });
});

/** The store's records without its event channel. */
function withoutEvents(store: RedisStore): Store {
  return {
    get: (id) => store.get(id),
    set: (id, record, ttlMs) => store.set(id, record, ttlMs),
    delete: (id) => store.delete(id),
    update: (id, mutate) => store.update(id, mutate),
    list: () => store.list(),
  };
}

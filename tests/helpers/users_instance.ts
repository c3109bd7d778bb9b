/**
 * One app instance for the per-user multi-process test, run as its own Node process:
 * `node --import tsx tests/helpers/users_instance.ts <redis-port> <prefix>`. A Hono app and a
 * socket.io server on one `node:http` server (127.0.0.1, a free port), sessions in Redis
 * (RedisStore) with `identify` and `describe`. No @socket.io/redis-adapter: revocations reach
 * the other instance's sockets through the store's own pub/sub events. Prints
 * `listening <port>` once ready; exits on SIGTERM.
 *
 * Routes: POST /login?user= (regenerate, user set), GET /me, GET /devices (the user's sessions,
 * the caller's marked `current`), POST /revoke?id= (one of the caller's own sessions),
 * POST /logout-others (every session of the user but the caller's). Socket event `whoami`.
 * @module
 */
import process from "node:process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { createSessions } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import { attachSocketIO } from "../../adapters/socket_io.ts";
import "../../adapters/socket_io_global.ts";
import { RedisStore } from "../../stores/redis.ts";

const client = new Redis({ host: "127.0.0.1", port: Number(process.argv[2]) });
const store = new RedisStore({ client, prefix: process.argv[3] ?? "users:" });
const sessions = createSessions<{ user?: string }>({
  store,
  keys: ["a-secret-of-at-least-32-characters!!"],
  identify: (data) => data.user,
  describe: (c) => ({ userAgent: (c as Context).req.header("user-agent") }),
});

const app = new Hono()
  .use(session(sessions))
  .post("/login", async (c) => {
    await c.session.regenerate();
    c.session.user = c.req.query("user") ?? "ada";
    return c.json({ sessionId: c.sessionId });
  })
  .get("/me", (c) => c.json({ user: c.session.user ?? null, sessionId: c.sessionId ?? null }))
  .get("/devices", async (c) => {
    const user = c.session.user;
    if (!user) return c.json({ error: "unauthorised" }, 401);
    const list = await sessions.listByUser(user);
    return c.json(list.map((s) => ({ ...s, current: s.sessionId === c.sessionId })));
  })
  .post("/revoke", async (c) => {
    const user = c.session.user;
    if (!user) return c.json({ error: "unauthorised" }, 401);
    const revoked = await sessions.destroyById(c.req.query("id") ?? "", { user });
    return c.json({ revoked });
  })
  .post("/logout-others", async (c) => {
    const user = c.session.user;
    if (!user) return c.json({ error: "unauthorised" }, 401);
    return c.json({ ended: await sessions.destroyByUser(user, { except: c.sessionId }) });
  });

const http = createServer(getRequestListener(app.fetch));
const io = new Server(http);
attachSocketIO(io, sessions);
io.on("connection", (socket) => {
  socket.on("whoami", (ack: (who: { sessionId: string | null; user: string | null }) => void) => {
    ack({
      sessionId: socket.sessionId ?? null,
      user: (socket.session?.user as string | undefined) ?? null,
    });
  });
});

http.listen(0, "127.0.0.1", () => {
  console.log(`listening ${(http.address() as AddressInfo).port}`);
});

process.on("SIGTERM", () => {
  sessions.close();
  io.close();
  (http as { closeAllConnections?: () => void }).closeAllConnections?.();
  void store.close().finally(() => {
    client.disconnect();
    process.exit(0);
  });
});

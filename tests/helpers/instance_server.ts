/**
 * One app instance for multi-process tests, run as its own Node process:
 * `node --import tsx tests/helpers/instance_server.ts <redis-port>`. A Hono app on
 * `@hono/node-server` (127.0.0.1, a free port) with sessions in Redis (RedisStore), that records
 * every session event it sees. Prints `listening <port>` once ready; exits on SIGTERM.
 *
 * Routes: POST /login (regenerate, user = "ada"), GET /me, POST /logout, GET /events (the
 * recorded events as JSON).
 * @module
 */
import process from "node:process";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { Redis } from "ioredis";
import { createSessions } from "../../mod.ts";
import { session } from "../../adapters/hono.ts";
import "../../adapters/hono_global.ts";
import { RedisStore } from "../../stores/redis.ts";

const port = Number(process.argv[2]);
const client = new Redis({ host: "127.0.0.1", port });
const store = new RedisStore({ client, prefix: process.argv[3] ?? "multi:" });
const sessions = createSessions<{ user?: string }>({
  store,
  keys: ["a-secret-of-at-least-32-characters!!"],
});

const events: { name: string; sessionId: string; remote: boolean; reason?: string }[] = [];
sessions.on("sessionSet", ({ sessionId, remote }) => {
  events.push({ name: "sessionSet", sessionId, remote });
});
sessions.on("sessionDestroy", ({ sessionId, remote, reason }) => {
  events.push({ name: "sessionDestroy", sessionId, remote, reason });
});

const app = new Hono()
  .use(session(sessions))
  .post("/login", async (c) => {
    await c.session.regenerate();
    c.session.user = "ada";
    return c.json({ sessionId: c.sessionId });
  })
  .get("/me", (c) => c.json({ user: c.session.user ?? null, sessionId: c.sessionId ?? null }))
  .post("/logout", (c) => {
    c.session = null;
    return c.text("bye");
  })
  .get("/events", (c) => c.json(events));

const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) => {
  console.log(`listening ${info.port}`);
});

process.on("SIGTERM", () => {
  sessions.close();
  server.close();
  void store.close().finally(() => {
    client.disconnect();
    process.exit(0);
  });
});

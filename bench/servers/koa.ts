/**
 * Koa benchmark server (Node): `bare`, the `floor` (no library: what reading a cookie and keeping
 * `n` in a Map costs at least), or a session library, each used as its README shows.
 * Same routes and answers as `hono.ts` (`POST /new?n=K`, `GET /read`, `POST /incr`).
 *
 * Usage: `node --import tsx bench/servers/koa.ts <variant>`.
 * @module
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Koa, { type Context, type Middleware } from "koa";
import koaSession from "koa-session";
import koaSessionMinimal from "koa-session-minimal";
import { createSessions, MapStore } from "../../mod.ts";
import { koaSession as unisessionKoa } from "../../adapters/koa.ts";
import { KEY, ready, unknownVariant, variantArg } from "./common.ts";

type Data = Record<string, unknown>;

/** An in-memory external store with koa-session's store interface (async, as its README asks). */
function koaSessionStore() {
  const map = new Map<string, Data>();
  return {
    get: async (key: string) => await map.get(key),
    set: async (key: string, sess: Data) => void await map.set(key, sess),
    destroy: async (key: string) => void await map.delete(key),
  };
}

/**
 * The floor under any session layer, not a library (as in `hono.ts`): a random id in an unsigned
 * cookie and `n` in a Map (no signature, no expiry, no change tracking, no store interface), the
 * Cookie header read the cheapest way. What reading the cookie, one lookup, and a Set-Cookie for
 * each new visitor cost in Koa.
 */
function floor(): Middleware {
  const sessions = new Map<string, { n: number }>();
  return async (ctx, next) => {
    const id = /(?:^|; )sid=([^;]*)/.exec(ctx.get("cookie"))?.[1];
    let session = id === undefined ? undefined : sessions.get(id);
    if (session === undefined) {
      const fresh = crypto.randomUUID();
      sessions.set(fresh, session = { n: 0 });
      ctx.set("Set-Cookie", `sid=${fresh}; Path=/; HttpOnly; SameSite=Lax`);
    }
    (ctx as SessionContext).session = session;
    await next();
  };
}

const MIDDLEWARE: Record<string, (app: Koa) => Middleware | undefined> = {
  bare: () => undefined,
  floor,
  // koa-session, default cookie storage (signed base64 JSON).
  "koa-session-cookie": (app) => koaSession({ secure: false }, app) as unknown as Middleware,
  // koa-session with an external (in-memory) store: the cookie holds the id.
  "koa-session-store": (app) =>
    koaSession({ secure: false, store: koaSessionStore() }, app) as unknown as Middleware,
  // koa-session-minimal, default in-memory store.
  "koa-session-minimal": () => koaSessionMinimal() as unknown as Middleware,
  // unisession's Koa adapter on a manager (signed id, MapStore).
  unisession: () => unisessionKoa(createSessions({ store: new MapStore(), keys: [KEY] })),
};

const variant = variantArg();
const make = MIDDLEWARE[variant] ?? unknownVariant("koa", variant, Object.keys(MIDDLEWARE));
const app = new Koa();
app.keys = [KEY];
const middleware = make(app);
if (middleware) app.use(middleware);
const bare = middleware === undefined;

type SessionContext = Context & { session: { n: number } };
app.use((ctx) => {
  const session = bare ? { n: 0 } : (ctx as SessionContext).session;
  const route = `${ctx.method} ${ctx.path}`;
  if (route === "POST /new") {
    session.n = Number(ctx.query.n);
    ctx.body = String(session.n);
  } else if (route === "GET /read") {
    ctx.body = String(session.n);
  } else if (route === "POST /incr") {
    session.n = session.n + 1;
    ctx.body = String(session.n);
  } else ctx.status = 404;
});

const server = createServer(app.callback());
server.listen(0, "127.0.0.1", () => ready((server.address() as AddressInfo).port));

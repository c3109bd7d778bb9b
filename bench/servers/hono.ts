/**
 * Hono benchmark server, on Node (`@hono/node-server`), Deno (`Deno.serve`) and Bun
 * (`Bun.serve`). One variant per process: `bare`, the `floor` (no library: what reading a cookie
 * and keeping `n` in a Map costs at least), or a session library, each used as its README shows.
 * Routes (the same for every variant):
 * - `POST /new?n=K`: a new session with `n = K`; answers `K`
 * - `GET /read`: answers the session's `n`
 * - `POST /incr`: `n = n + 1`; answers the new `n`
 * The bare variant keeps no state: it answers `0` to `/read`, `1` to `/incr` and `K` to `/new`.
 *
 * Usage: `node --import tsx bench/servers/hono.ts <variant>` (or `deno run -A`, `bun`).
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { Buffer } from "node:buffer";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import honoSession from "hono-session";
import { CookieStore, MemoryStore, sessionMiddleware } from "hono-sessions";
import { useSession } from "@hono/session";
import { createSessions, MapStore } from "../../mod.ts";
import { session as unisession } from "../../adapters/hono.ts";
import { HEX_KEY, KEY, ready, unknownVariant, variantArg } from "./common.ts";

/** How a variant reads and writes `n` in its session. */
interface Lib {
  middleware?: MiddlewareHandler;
  read(c: Context): number | Promise<number>;
  write(c: Context, n: number): void | Promise<void>;
}

type SessionContext = Context & { session: Record<string, number> };
/** hono-session's and unisession's `c.session`. */
const cSession: Pick<Lib, "read" | "write"> = {
  read: (c) => (c as SessionContext).session.n,
  write: (c, n) => {
    (c as SessionContext).session.n = n;
  },
};

type HonoSessionsSession = { get(key: string): number; set(key: string, value: number): void };
/** hono-sessions' `c.get("session").get/set`. */
const honoSessionsApi: Pick<Lib, "read" | "write"> = {
  read: (c) => (c.get("session" as never) as HonoSessionsSession).get("n"),
  write: (c, n) => (c.get("session" as never) as HonoSessionsSession).set("n", n),
};
const honoSessionsCookie = { sameSite: "Lax", path: "/", httpOnly: true } as const;

type OfficialSession = {
  get(): Promise<{ n: number } | null>;
  update(data: { n: number }): Promise<void>;
};
const official = (c: Context) => (c.var as { session: OfficialSession }).session;

/**
 * The request's Cookie header, read the cheapest way (on Node from the IncomingMessage, as
 * unisession's adapter does: Hono's `getCookie` first builds a WHATWG `Headers`): the floors'.
 */
function cookieHeader(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: { headers: { cookie?: string } } } | undefined)?.incoming;
  return incoming ? incoming.headers.cookie : c.req.header("cookie");
}

/** The floors' session cookie, `sid`, in a Cookie header. */
const SID_COOKIE = /(?:^|; )sid=([^;]*)/;

/**
 * The floor under any session layer, not a library: a random id in an unsigned cookie and `n` in
 * a Map (no signature, no expiry, no change tracking, no store interface), the Cookie header read
 * the cheapest way (on Node from the IncomingMessage, as unisession's adapter does: Hono's
 * `getCookie` first builds a WHATWG `Headers`). What reading the cookie, one lookup, and a
 * Set-Cookie for each new visitor cost in this framework.
 */
function floor(): Lib {
  const sessions = new Map<string, { n: number }>();
  return {
    middleware: async (c, next) => {
      const header = cookieHeader(c);
      const id = header === undefined ? undefined : SID_COOKIE.exec(header)?.[1];
      let session = id === undefined ? undefined : sessions.get(id);
      if (session === undefined) {
        const fresh = crypto.randomUUID();
        sessions.set(fresh, session = { n: 0 });
        c.header("Set-Cookie", `sid=${fresh}; Path=/; HttpOnly; SameSite=Lax`);
      }
      c.set("session" as never, session as never);
      await next();
    },
    read: (c) => (c.get("session" as never) as { n: number }).n,
    write: (c, n) => {
      (c.get("session" as never) as { n: number }).n = n;
    },
  };
}

/**
 * A store of serialised sessions behind signed ids in the fewest lines, not a library: what
 * `floor` does, plus what unisession's MapStore rows cannot do without (a signed id, and each
 * session held as JSON text, so that nothing outside the store can change it). For B (an
 * increment) it is a floor; for A and C it is not: it parses the JSON on every read, where
 * unisession copies a cached decoded record, and signing a new id (a cloned HMAC, then `Buffer`
 * base64url) costs it more than unisession. The id's HMAC-SHA-256 (`@noble/hashes` with a
 * prepared key) is checked once per
 * distinct Cookie header (a Map of verified headers, emptied at 10,000) and made once per new
 * session; a session is held as the JSON of its data and expiry, parsed when the request starts
 * and written back (`JSON.stringify`) when `n` changed. No change tracking, no expiry renewal, no
 * client-id cookie, no merge with a concurrent write, no constant-time comparison.
 */
function signedJson(): Lib {
  const sessions = new Map<string, string>();
  const verified = new Map<string, string | null>();
  const TTL = 86_400_000;
  const utf8 = new TextEncoder();
  const prepared = hmac.create(sha256, utf8.encode(KEY));
  const sign = (id: string) =>
    Buffer.from(prepared.clone().update(utf8.encode(id)).digest()).toString("base64url");
  const idOf = (header: string): string | null => {
    const value = SID_COOKIE.exec(header)?.[1];
    const dot = value === undefined ? -1 : value.lastIndexOf(".");
    if (dot < 0) return null;
    const id = value!.slice(0, dot);
    return sign(id) === value!.slice(dot + 1) ? id : null;
  };
  type Held = { n: number; expiresAt: number };
  return {
    middleware: async (c, next) => {
      const header = cookieHeader(c);
      let id: string | null = null;
      if (header !== undefined) {
        id = verified.get(header) ?? null;
        if (id === null && !verified.has(header)) {
          if (verified.size >= 10_000) verified.clear();
          verified.set(header, id = idOf(header));
        }
      }
      const json = id === null ? undefined : sessions.get(id);
      let session = json === undefined ? undefined : JSON.parse(json) as Held;
      if (session !== undefined && session.expiresAt <= Date.now()) session = undefined;
      const fresh = session === undefined;
      if (session === undefined) {
        id = crypto.randomUUID();
        session = { n: 0, expiresAt: Date.now() + TTL };
        c.header("Set-Cookie", `sid=${id}.${sign(id)}; Path=/; HttpOnly; SameSite=Lax`);
      }
      const before = session.n;
      c.set("session" as never, session as never);
      await next();
      if (fresh || session.n !== before) sessions.set(id!, JSON.stringify(session));
    },
    read: (c) => (c.get("session" as never) as Held).n,
    write: (c, n) => {
      (c.get("session" as never) as Held).n = n;
    },
  };
}

const LIBS: Record<string, () => Lib> = {
  bare: () => ({ read: () => 0, write: () => {} }),
  floor,
  "signed-json": signedJson,
  // unisession with its own API: createSessions + MapStore (signed id; client-id cookie on).
  "unisession": () => ({
    middleware: unisession(createSessions({ store: new MapStore(), keys: [KEY] })),
    ...cSession,
  }),
  // The same without the client-id cookie (client: false). Not a row of the table: what the
  // socket bridge's cookie costs, `bench/ab_server.ts variant=unisession-nocid hono unisession C`.
  "unisession-nocid": () => ({
    middleware: unisession(createSessions({ store: new MapStore(), keys: [KEY], client: false })),
    ...cSession,
  }),
  // unisession as a hono-session drop-in with the same options as the hono-session Map row.
  "unisession-dropin": () => ({
    middleware: unisession({ store: new Map(), secret: KEY }),
    ...cSession,
  }),
  // unisession stateless: the session sealed into the cookie (iron seal).
  "unisession-sealed": () => ({
    middleware: unisession(createSessions({ keys: [KEY] })),
    ...cSession,
  }),
  "hono-session-map": () => ({
    middleware: honoSession({ store: new Map(), secret: KEY }) as MiddlewareHandler,
    ...cSession,
  }),
  "hono-session-sealed": () => ({
    middleware: honoSession({ secret: KEY }) as MiddlewareHandler,
    ...cSession,
  }),
  "hono-sessions-memory": () => ({
    middleware: sessionMiddleware({
      store: new MemoryStore(),
      encryptionKey: KEY,
      expireAfterSeconds: 900,
      cookieOptions: honoSessionsCookie,
    }) as unknown as MiddlewareHandler,
    ...honoSessionsApi,
  }),
  "hono-sessions-cookie": () => ({
    middleware: sessionMiddleware({
      store: new CookieStore(),
      encryptionKey: KEY,
      expireAfterSeconds: 900,
      cookieOptions: honoSessionsCookie,
    }) as unknown as MiddlewareHandler,
    ...honoSessionsApi,
  }),
  "hono-official": () => ({
    middleware: useSession({ secret: HEX_KEY }) as unknown as MiddlewareHandler,
    read: async (c) => (await official(c).get())?.n ?? NaN,
    write: (c, n) => official(c).update({ n }),
  }),
};

function buildApp(lib: Lib): Hono {
  const app = new Hono();
  if (lib.middleware) app.use(lib.middleware);
  app.post("/new", async (c) => {
    const n = Number(c.req.query("n"));
    await lib.write(c, n);
    return c.text(String(n));
  });
  app.get("/read", async (c) => c.text(String(await lib.read(c))));
  app.post("/incr", async (c) => {
    const n = (await lib.read(c)) + 1;
    await lib.write(c, n);
    return c.text(String(n));
  });
  return app;
}

interface ServeGlobals {
  Deno?: {
    serve(
      options: { hostname: string; port: number; onListen(addr: { port: number }): void },
      handler: (req: Request) => Response | Promise<Response>,
    ): unknown;
  };
  Bun?: {
    serve(options: {
      hostname: string;
      port: number;
      fetch: (req: Request) => Response | Promise<Response>;
    }): { port: number };
  };
}

const variant = variantArg();
const make = LIBS[variant] ?? unknownVariant("hono", variant, Object.keys(LIBS));
const app = buildApp(make());
const g = globalThis as unknown as ServeGlobals;
const hostname = "127.0.0.1";
if (g.Deno) {
  g.Deno.serve({ hostname, port: 0, onListen: ({ port }) => ready(port) }, app.fetch);
} else if (g.Bun) {
  ready(g.Bun.serve({ hostname, port: 0, fetch: app.fetch }).port);
} else {
  const { serve } = await import("@hono/node-server");
  serve({ fetch: app.fetch, hostname, port: 0 }, (info) => ready(info.port));
}

/**
 * Type-level checks of the Hono adapter, following hono-session's README "Typescript" section.
 * The assertions are compile-time (`deno check tests/hono_types.test.ts`, and `deno test`
 * type-checks too); the test bodies also run the apps so every runtime counts them as tests.
 *
 * Note: the `declare module` augmentation below is global to the type-checking program, so it
 * also applies to other test files checked together with this one (it only adds an optional
 * `userId?: string`, which matches how every other test uses `userId`).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import defaultSession, { session, type SessionApi } from "../adapters/hono.ts";
// hono-session's `import 'hono-session/global'`: types c.session, c.sessionId and c.clientId.
import "../adapters/hono_global.ts";
import { Client } from "./helpers/cookie_jar.ts";

// hono-session's global typing path ("For larger apps you probably want to set it globally"):
// `declare module 'hono-session' { export interface Session { userId?: string } }`.
declare module "../adapters/hono.ts" {
  interface Session {
    userId?: string;
  }
}

const SECRET = "a-secret-of-at-least-32-characters!!";

/** Exact type equality (not mere assignability). */
type Equal<X, Y> = (<V>() => V extends X ? 1 : 2) extends (<V>() => V extends Y ? 1 : 2) ? true
  : false;
/** Compiles only when `T` is `true`. */
function assertType<T extends true>(..._proof: T extends true ? [] : [never]): void {}

describe("hono adapter types (hono-session README, Typescript)", () => {
  test("generic: session<{ userId?: string }>() types c.session.userId as string | undefined", async () => {
    const app = new Hono()
      .use(session<{ userId?: string; theme?: "dark" | "light" }>({ secret: SECRET }))
      .post("/login", (c) => {
        c.session.userId = "ada";
        c.session.theme = "dark";
        if (c.req.query("never")) {
          // Compile-time checks only; never run.
          // @ts-expect-error the generic's keys only: no index signature on a typed session
          c.session.unknownKey = 1;
          // @ts-expect-error values are typed too
          c.session.theme = "blue";
        }
        return c.body(null, 204);
      })
      .get("/me", (c) => {
        const userId = c.session.userId;
        assertType<Equal<typeof userId, string | undefined>>();
        const theme = c.session.theme;
        assertType<Equal<typeof theme, "dark" | "light" | undefined>>();
        // c.get("session") is the same typed object
        const viaGet = c.get("session").userId;
        assertType<Equal<typeof viaGet, string | undefined>>();
        // the session API is there next to the data
        assertType<Equal<typeof c.session.isNew, boolean>>();
        assertType<Equal<typeof c.session.hasChanged, boolean>>();
        assertType<Equal<ReturnType<typeof c.session.regenerate>, Promise<void>>>();
        assertType<Equal<Parameters<typeof c.session.renew>, [maxAge?: number]>>();
        assertType<Equal<typeof c.sessionId, string | undefined>>();
        assertType<Equal<typeof c.clientId, string | undefined>>();
        if (!userId) return c.text("Unauthorised", 401);
        return c.text(userId);
      })
      .post("/logout", (c) => {
        c.session = null;
        return c.body(null, 204);
      });
    const client = new Client(app);
    assert.equal((await client.get("/me")).status, 401);
    await client.post("/login");
    assert.equal((await client.get("/me")).body, "ada");
    await client.post("/logout");
    assert.equal((await client.get("/me")).status, 401);
  });

  test("global: augmenting `interface Session` types c.session.userId without a generic", async () => {
    const app = new Hono().use(session({ secret: SECRET }));
    // Not chained: the route's Env is blank, so this is the global typing path.
    app.post("/login", (c) => {
      if (c.req.query("never")) {
        // @ts-expect-error the augmented key is typed (compile-time check only; never runs)
        c.session.userId = 42;
      }
      c.session.userId = "ada";
      return c.body(null, 204);
    });
    app.get("/me", (c) => {
      const userId = c.session.userId;
      assertType<Equal<typeof userId, string | undefined>>();
      const viaGet = c.get("session").userId; // ContextVariableMap
      assertType<Equal<typeof viaGet, string | undefined>>();
      // other keys stay open (hono-session's Session is an open record)
      c.session.anythingElse = true;
      return c.text(userId ?? "anonymous");
    });
    const client = new Client(app);
    await client.post("/login");
    assert.equal((await client.get("/me")).body, "ada");
  });

  test("createMiddleware can refine the session type (README's verifySession)", async () => {
    interface User {
      id: string;
      name: string;
    }
    const getUser = (id: string): Promise<User> => Promise.resolve({ id, name: `User ${id}` });

    // Adapted from the README. Two things there cannot type-check as written:
    // - `Variables: { Session: { userId: string } }`: the session variable is `session`
    //   (lower-case; `c.get("session")`, and hono-session's own global typing reads
    //   `Variables.session` too). With `Session` the refinement is silently a no-op and
    //   `c.session.userId` stays `string | undefined`, so `session` is used here.
    // - `c.get(user)` is a typo for `c.get("user")` (`user` is not a value in scope).
    function verifySession() {
      return createMiddleware<{
        Variables: {
          user: User;
          session: {
            userId: string;
          };
        };
      }>(async (c, next) => {
        const userId = c.session.userId;
        if (!userId) return c.text("Unauthorised", 401);

        const user = await getUser(userId);
        c.set("user", user);

        await next();
      });
    }

    const app = new Hono().use(session({ secret: SECRET }))
      .post("/login", (c) => {
        c.session.userId = "ada";
        return c.body(null, 204);
      })
      .get("/whoami", (c) => {
        const userId = c.session.userId;
        //    ^? string | undefined
        assertType<Equal<typeof userId, string | undefined>>();
        return c.text(userId ?? "");
      })
      .get("/me", verifySession(), (c) => {
        const userId = c.session.userId;
        //    ^? string
        assertType<Equal<typeof userId, string>>();
        // the refined session keeps the session API
        const api: Pick<SessionApi, "isNew" | "regenerate"> = c.session;
        void api;
        const user = c.get("user");
        assertType<Equal<typeof user, User>>();
        return c.json(user);
      });

    const client = new Client(app);
    assert.equal((await client.get("/me")).status, 401);
    await client.post("/login");
    const me = await client.get("/me");
    assert.equal(me.status, 200);
    assert.deepEqual(JSON.parse(me.body), { id: "ada", name: "User ada" });
    assert.equal((await client.get("/whoami")).body, "ada");
  });

  test("hono-session's spelling Variables: { Session } refines the session too, default import", async () => {
    function verifySession() {
      return createMiddleware<{ Variables: { Session: { userId: string } } }>(async (c, next) => {
        const userId = c.session.userId;
        if (!userId) return c.text("Unauthorised", 401);
        await next();
      });
    }
    const app = new Hono().use(defaultSession({ secret: SECRET }))
      .post("/login", (c) => {
        c.session.userId = "ada";
        return c.body(null, 204);
      })
      .get("/me", verifySession(), (c) => {
        const userId = c.session.userId;
        assertType<Equal<typeof userId, string>>();
        const api: Pick<SessionApi, "isNew" | "regenerate"> = c.session;
        void api;
        return c.text(userId);
      });
    const client = new Client(app);
    assert.equal((await client.get("/me")).status, 401);
    await client.post("/login");
    assert.equal((await client.get("/me")).body, "ada");
  });
});

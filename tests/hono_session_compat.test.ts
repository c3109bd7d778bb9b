/**
 * The Hono adapter as a drop-in for hono-session, against the real hono-session package
 * (a devDependency) on Deno, Bun and Node:
 *
 * 1. store mode without a secret (hono-session's "External stores" example as written): the id
 *    cookie is unsigned, as hono-session's, so a session outlives a restart of the server;
 * 2. sessions hono-session itself saved keep working when only the import changes: its iron
 *    cookies, its store rows and bare UUID cookies, and cookies of a custom encoder;
 * 3. a custom encoder is called with hono-session's session shape;
 * 4. `Sealer.unsealUnnamed`, which opens hono-session's seals (they name no key).
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono, type MiddlewareHandler } from "hono";
import honoSession from "hono-session";
import { defaults, seal as ironSeal } from "iron-webcrypto";
import { type HonoSessionOptions, session } from "../adapters/hono.ts";
import { Sealer } from "../src/sealer.ts";
import "../adapters/hono_global.ts";
import { Client, CookieJar, type JarResponse, type SetCookie } from "./helpers/cookie_jar.ts";
import { flipBit, flipIron } from "./helpers/hostile_cookies.ts";

const SECRET = "a-secret-of-at-least-32-characters!!";
const NEW_KEY = "the-new-key-of-at-least-32-characters";
const OTHER_KEY = "somebody-elses-key-of-32-characters!!";
/** 144 random bits: 24 base64url characters. */
const OUR_ID = /^[A-Za-z0-9_-]{24}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The Set-Cookie of `name` in a response, if any. */
function cookieOf(r: JarResponse, name = "sid"): SetCookie | undefined {
  return r.setCookies.find((c) => c.name === name);
}

/** Runs `fn` with console.warn captured; returns what it returned and the warnings. */
function withWarnings<T>(fn: () => T): { value: T; warnings: string[] } {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    return { value: fn(), warnings };
  } finally {
    console.warn = original;
  }
}

/**
 * The README's `databaseStore` (`get(id, c)`, `set(id, data, c)`, `delete(id, c)`), over a Map of
 * JSON text standing in for the table: it outlives the apps, as a database outlives a restart.
 */
function database() {
  const rows = new Map<string, string>();
  const store = {
    get: (id: string, _c: unknown) => {
      const row = rows.get(id);
      return Promise.resolve(row === undefined ? undefined : JSON.parse(row));
    },
    set: (id: string, data: unknown, _c: unknown) => {
      rows.set(id, JSON.stringify(data));
      return Promise.resolve();
    },
    delete: (id: string, _c: unknown) => {
      rows.delete(id);
      return Promise.resolve();
    },
  };
  return { rows, store, row: (id: string) => JSON.parse(rows.get(id)!) };
}

/** A custom encoder (base64url JSON) that records what `encode` was given. */
function jsonEncoder() {
  const encoded: Record<string, unknown>[] = [];
  const encoder = {
    encode(data: Record<string, unknown>, _secret: string) {
      encoded.push(JSON.parse(JSON.stringify(data)));
      return btoa(JSON.stringify(data)).replaceAll("+", "-").replaceAll("/", "_")
        .replaceAll("=", "");
    },
    decode(data: string, _secret: string) {
      const b64 = data.replaceAll("-", "+").replaceAll("_", "/");
      return JSON.parse(atob(b64 + "=".repeat((4 - b64.length % 4) % 4)));
    },
  };
  return { encoder, encoded };
}

/** The same routes over unisession's middleware (the drop-in) or hono-session's own. */
function routes(middleware: MiddlewareHandler) {
  return new Hono()
    .use(middleware)
    .post("/login", (c) => {
      c.session.userId = "ada";
      c.session.flash("notice", "welcome");
      return c.body(null, 204);
    })
    .post("/expired-login", (c) => {
      c.session.userId = "ada";
      c.session._expires = Date.now() - 1000; // hono-session's expiry field
      return c.body(null, 204);
    })
    .post("/logout", (c) => {
      c.session = null;
      return c.body(null, 204);
    })
    .get("/me", (c) => c.session.userId ? c.text(c.session.userId) : c.text("Unauthorised", 401))
    .get("/notice", (c) => c.text(c.session.notice ?? ""))
    .get("/id", (c) => c.text(c.sessionId ?? ""))
    .get("/cid", (c) => c.text(c.clientId ?? ""));
}

/** An app on unisession's hono-session drop-in. */
function ours(options: HonoSessionOptions) {
  return routes(session(options) as MiddlewareHandler);
}

/** An app on the real hono-session package. */
function theirs(options: Parameters<typeof honoSession>[0]) {
  return routes(honoSession(options) as MiddlewareHandler);
}

/** A browser logged in by hono-session (`path` on its app): its cookie jar. */
async function loggedInByHonoSession(
  options: Parameters<typeof honoSession>[0],
  path = "/login",
): Promise<CookieJar> {
  const browser = new Client(theirs(options));
  assert.equal((await browser.post(path)).status, 204);
  assert.ok(browser.jar.get("sid"), "hono-session set its cookie");
  return browser.jar;
}

// ====================================================================================
// 1. store mode without a secret survives a restart
// ====================================================================================

describe("hono-session drop-in: a store and no secret (the External stores example)", () => {
  test("the session survives a restart: a new app over the same store accepts the old cookie", async () => {
    const db = database();
    const { value: before, warnings } = withWarnings(() => ours({ store: db.store }));
    assert.deepEqual(warnings, [], "no random-key warning: no key is needed");
    const browser = new Client(before);
    const login = await browser.post("/login");
    const id = cookieOf(login)!.value;
    assert.match(id, OUR_ID, "the cookie is the bare id, 144 random bits");
    assert.deepEqual([...db.rows.keys()], [id], "the store key is the cookie value");

    const restarted = new Client(withWarnings(() => ours({ store: db.store })).value, browser.jar);
    const me = await restarted.get("/me");
    assert.deepEqual([me.status, me.body], [200, "ada"]);
    assert.equal((await restarted.get("/notice")).body, "", "the flash was used up before");
    await restarted.post("/logout");
    assert.equal(db.rows.size, 0);
  });

  test("a new Map() store: the cookie is the bare id too, and ids differ per session", async () => {
    const memoryStore = new Map();
    const app = ours({ store: memoryStore });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const login = await new Client(app).post("/login");
      const id = cookieOf(login)!.value;
      assert.match(id, OUR_ID);
      assert.ok(memoryStore.has(id));
      ids.add(id);
    }
    assert.equal(ids.size, 50);
  });

  test("an unknown, tampered or malformed id is no session, and is never adopted", async () => {
    const db = database();
    const app = ours({ store: db.store });
    const browser = new Client(app);
    const id = cookieOf(await browser.post("/login"))!.value;
    const unknown = "AAAAAAAAAAAAAAAAAAAAAAAA";
    const values = [
      flipBit(id, 0),
      flipBit(id, -1),
      unknown,
      id.slice(0, 23),
      id + "A",
      `${id}.`,
      "",
      "../../etc/passwd",
      "%E0%A4%A",
      "x".repeat(5000),
      "00000000-0000-4000-8000-000000000000",
    ];
    for (const value of values) {
      const other = new Client(app, new CookieJar().set("sid", value));
      const me = await other.get("/me");
      assert.equal(me.status, 401, `sid=${value.slice(0, 40)}`);
      const login = await other.post("/login");
      const issued = cookieOf(login)!.value;
      assert.notEqual(issued, value, "a presented id is not adopted (no session fixation)");
      assert.match(issued, OUR_ID);
    }
    assert.equal((await browser.get("/me")).body, "ada", "the real session is untouched");
  });

  test("the client-id cookie (client: {}) is unsigned too, and keeps the browser's id after a restart", async () => {
    const db = database();
    const browser = new Client(ours({ store: db.store, client: {} }));
    const login = await browser.post("/login");
    const cid = cookieOf(login, "sid.cid")!.value;
    assert.match(cid, OUR_ID);
    assert.equal((await browser.get("/cid")).body, cid);
    const restarted = new Client(ours({ store: db.store, client: {} }), browser.jar);
    assert.equal((await restarted.get("/cid")).body, cid);
    assert.equal((await restarted.get("/me")).body, "ada");
  });

  test("with a secret the cookies are signed: a restart with the same secret keeps the session, a bare id is refused", async () => {
    const db = database();
    const browser = new Client(ours({ store: db.store, secret: SECRET, client: {} }));
    const login = await browser.post("/login");
    const [id] = db.rows.keys();
    assert.match(id!, OUR_ID);
    assert.match(cookieOf(login)!.value, new RegExp(`^${id}\\.[\\w-]{43}$`));
    assert.match(cookieOf(login, "sid.cid")!.value, /^[\w-]{24}\.[\w-]{43}$/);
    const restarted = ours({ store: db.store, secret: SECRET, client: {} });
    assert.equal((await new Client(restarted, browser.jar.clone()).get("/me")).body, "ada");
    const bare = new Client(restarted, new CookieJar().set("sid", id!));
    assert.equal((await bare.get("/me")).status, 401, "an unsigned id is no cookie here");
    const otherKey = ours({ store: db.store, secret: OTHER_KEY });
    assert.equal((await new Client(otherKey, browser.jar.clone()).get("/me")).status, 401);
  });
});

// ====================================================================================
// 2. sessions hono-session itself saved
// ====================================================================================

describe("hono-session drop-in: sessions saved by hono-session 1.2 keep working", () => {
  test("its iron cookie (same secret) opens; the reply replaces it with ours, flash and expiry kept", async () => {
    const jar = await loggedInByHonoSession({ secret: SECRET });
    const legacy = jar.get("sid")!;
    assert.match(legacy, /^Fe26\.2\*\*/, "hono-session's seal names no key");
    const browser = new Client(ours({ secret: SECRET }), jar);
    const first = await browser.get("/notice");
    assert.deepEqual([first.status, first.body], [200, "welcome"], "flashed by hono-session");
    const replaced = cookieOf(first)!;
    assert.match(replaced.value, /^Fe26\.2\*[0-9a-f]{12}\*/, "answered with our own seal");
    const maxAge = Number(replaced.attributes["max-age"]);
    assert.ok(maxAge > 86_300 && maxAge <= 86_400, `expiry kept (Max-Age ${maxAge})`);
    assert.equal((await browser.get("/notice")).body, "", "the flash is gone after one request");
    const me = await browser.get("/me");
    assert.deepEqual([me.status, me.body], [200, "ada"]);
    assert.equal(cookieOf(me), undefined, "nothing to re-send once migrated");
  });

  test("its iron cookie near the 4096-byte limit, whose session no longer fits in our seal: no session, never a 500", async () => {
    const app = ours({ secret: SECRET });
    const expires = Date.now() + 86_400_000;
    for (const size of [1000, 2700, 2750, 2800, 2860]) { // seals of 1,6xx to 4,089 characters
      const legacy = await ironSeal(
        { userId: "ada", pad: "x".repeat(size), _expires: expires },
        SECRET,
        defaults,
      );
      const jar = new CookieJar();
      jar.set("sid", legacy);
      const r = await new Client(app, jar).get("/me");
      assert.ok(r.status === 200 || r.status === 401, `${legacy.length} chars: ${r.status}`);
      if (r.status === 200) {
        const replaced = cookieOf(r)!;
        assert.ok(replaced.value.length + 300 < 4096, "a migrated seal always fits");
      } else assert.equal(cookieOf(r), undefined, "nothing half-sent");
      if (legacy.length < 3000) assert.equal(r.status, 200, "well under the limit: migrated");
    }
  });

  test("its iron cookie: requests sent with it in parallel see the same session id", async () => {
    const jar = await loggedInByHonoSession({ secret: SECRET });
    const app = ours({ secret: SECRET });
    const [a, b] = await Promise.all([
      new Client(app, jar.clone()).get("/id"),
      new Client(app, jar.clone()).get("/id"),
    ]);
    assert.match(a.body, OUR_ID);
    assert.equal(a.body, b.body);
  });

  test("its iron cookie opens with the old secret second in keys (rotation)", async () => {
    const jar = await loggedInByHonoSession({ secret: SECRET });
    const browser = new Client(ours({ keys: [NEW_KEY, SECRET] }), jar);
    assert.equal((await browser.get("/me")).body, "ada");
    assert.equal((await browser.get("/me")).body, "ada", "then under the new key");
  });

  test("its iron cookie: another secret, tampering, expiry or a foreign payload is no session", async () => {
    const jar = await loggedInByHonoSession({ secret: SECRET });
    const legacy = jar.get("sid")!;
    const expired = (await loggedInByHonoSession({ secret: SECRET }, "/expired-login")).get("sid")!;
    const values = [
      ...(["salt", "iv", "ciphertext", "macSalt", "mac"] as const).map((p) => flipIron(legacy, p)),
      legacy.slice(0, -1),
      legacy + "*",
      expired,
      // sealed with the secret, but not a hono-session object
      await ironSeal([1, 2], SECRET, defaults),
      await ironSeal({ userId: "ada" }, SECRET, defaults), // no _expires
      await ironSeal({ userId: "ada", _expires: "never" }, SECRET, defaults),
      await ironSeal("ada", SECRET, defaults),
      "Fe26.2**",
      "Fe26.2**x*y*z",
      "Fe26.2**" + "a".repeat(5000),
    ];
    const app = ours({ secret: SECRET });
    for (const value of values) {
      const me = await new Client(app, new CookieJar().set("sid", value)).get("/me");
      assert.equal(me.status, 401, `sid=${value.slice(0, 60)}`);
    }
    const wrongKey = await new Client(ours({ secret: OTHER_KEY }), jar.clone()).get("/me");
    assert.equal(wrongKey.status, 401);
    const ok = await new Client(app, jar.clone()).get("/me");
    assert.equal(ok.body, "ada", "the untampered cookie still opens");
  });

  for (const withSecret of [false, true]) {
    const name = withSecret ? "with a secret" : "without a secret";
    test(`its store rows and UUID cookie, ${name}: read, then the row rewritten in our format`, async () => {
      const db = database();
      const options = withSecret ? { store: db.store, secret: SECRET } : { store: db.store };
      const jar = await loggedInByHonoSession(options);
      const uuid = jar.get("sid")!;
      assert.match(uuid, UUID, "hono-session's cookie is the bare UUID");
      const old = db.row(uuid);
      assert.equal(old.userId, "ada");
      assert.equal(typeof old._expires, "number");
      const oldJar = jar.clone();

      const browser = new Client(ours(options), jar);
      const first = await browser.get("/notice");
      assert.deepEqual([first.status, first.body], [200, "welcome"], "flashed by hono-session");
      const row = db.row(uuid);
      assert.deepEqual(row.data, { userId: "ada" }, "rewritten, the used flash gone");
      assert.equal(row.expiresAt, old._expires, "expiry kept");
      assert.equal(row._expires, undefined);
      const cookie = cookieOf(first)!.value;
      if (withSecret) assert.match(cookie, new RegExp(`^${uuid}\\.[\\w-]{43}$`), "now signed");
      else assert.equal(cookie, uuid);
      const maxAge = Number(cookieOf(first)!.attributes["max-age"]);
      assert.ok(maxAge > 86_300 && maxAge <= 86_400, `expiry kept (Max-Age ${maxAge})`);

      assert.equal((await browser.get("/notice")).body, "");
      assert.equal((await browser.get("/me")).body, "ada");
      // The bare UUID was hono-session's credential; with a secret it is accepted only while the
      // row is still hono-session's.
      const replay = await new Client(ours(options), oldJar).get("/me");
      assert.equal(replay.status, withSecret ? 401 : 200);
      await browser.post("/logout");
      assert.equal(db.rows.size, 0);
    });
  }

  test("its store rows: an expired row, an unknown UUID or a row of another shape is no session", async () => {
    const db = database();
    const options = { store: db.store, secret: SECRET };
    const expired = (await loggedInByHonoSession(options, "/expired-login")).get("sid")!;
    db.rows.set("00000000-0000-4000-8000-000000000001", JSON.stringify(["not", "a", "session"]));
    db.rows.set("00000000-0000-4000-8000-000000000002", JSON.stringify({ _expires: "soon" }));
    const values = [
      expired,
      "00000000-0000-4000-8000-000000000000",
      "00000000-0000-4000-8000-000000000001",
      "00000000-0000-4000-8000-000000000002",
      expired.toUpperCase(),
    ];
    for (const opts of [options, { store: db.store }]) {
      const app = ours(opts);
      for (const value of values) {
        const me = await new Client(app, new CookieJar().set("sid", value)).get("/me");
        assert.equal(me.status, 401, `sid=${value}`);
      }
    }
  });

  test("a hono-session store that fails while a UUID cookie is checked: 503, as for any store failure", async () => {
    const db = database();
    const options = { store: db.store, secret: SECRET };
    const jar = await loggedInByHonoSession(options);
    const failing = { ...db.store, get: () => Promise.reject(new Error("database down")) };
    const res = await new Client(ours({ store: failing, secret: SECRET }), jar).get("/me");
    assert.equal(res.status, 503);
  });

  test("a cookie of its custom encoder decodes; ours are readable by hono-session with the same encoder", async () => {
    const { encoder } = jsonEncoder();
    const jar = await loggedInByHonoSession({ secret: SECRET, encoder });
    const app = ours({ secret: SECRET, encoder });
    const ids = [
      (await new Client(app, jar.clone()).get("/id")).body,
      (await new Client(app, jar.clone()).get("/id")).body,
    ];
    assert.match(ids[0]!, OUR_ID);
    assert.equal(ids[0], ids[1], "the same session id for the same old cookie");
    const browser = new Client(app, jar);
    assert.equal((await browser.get("/notice")).body, "welcome");
    assert.equal((await browser.get("/notice")).body, "");
    assert.equal((await browser.get("/me")).body, "ada");

    // And back: what the drop-in encoded reads as a session in hono-session itself.
    const fresh = new Client(app);
    await fresh.post("/login");
    const back = await new Client(theirs({ secret: SECRET, encoder }), fresh.jar).get("/me");
    assert.deepEqual([back.status, back.body], [200, "ada"]);
  });
});

// ====================================================================================
// 3. what a custom encoder is given
// ====================================================================================

describe("hono-session drop-in: a custom encoder gets hono-session's session shape", () => {
  test("encode(data, secret) gets the data, _expires and _flashKeys (plus _unisession), as hono-session passes them", async () => {
    const theirsEncoder = jsonEncoder();
    await loggedInByHonoSession({ secret: SECRET, encoder: theirsEncoder.encoder });
    const oursEncoder = jsonEncoder();
    const browser = new Client(ours({ secret: SECRET, encoder: oursEncoder.encoder }));
    await browser.post("/login");
    const [given] = oursEncoder.encoded;
    const [expected] = theirsEncoder.encoded;
    const { _unisession: meta, ...rest } = given!;
    assert.deepEqual(Object.keys(rest).sort(), Object.keys(expected!).sort());
    assert.deepEqual({ ...rest, _expires: 0 }, { ...expected, _expires: 0 });
    assert.ok(Math.abs((rest._expires as number) - (expected!._expires as number)) < 5_000);
    assert.equal(typeof meta, "object");
    assert.equal((await browser.get("/notice")).body, "welcome");
    assert.equal((meta as { i?: unknown }).i, (await browser.get("/id")).body);
    assert.equal((await browser.get("/me")).body, "ada");
  });

  test("decode's invalid answers are no session: a throw, null, a primitive, an array, a bad _expires", async () => {
    for (const answer of [null, undefined, 42, "ada", [1], { _expires: "x" }, { userId: "ada" }]) {
      const encoder = {
        encode: () => "v",
        decode: () => answer,
      };
      const me = await new Client(
        ours({ secret: SECRET, encoder }),
        new CookieJar().set("sid", "v"),
      )
        .get("/me");
      assert.equal(me.status, 401, JSON.stringify(answer));
    }
    const throwing = {
      encode: () => "v",
      decode: () => {
        throw new Error("not ours");
      },
    };
    const me = await new Client(
      ours({ secret: SECRET, encoder: throwing }),
      new CookieJar().set("sid", "v"),
    )
      .get("/me");
    assert.equal(me.status, 401);
  });
});

// ====================================================================================
// 4. Sealer.unsealUnnamed
// ====================================================================================

describe("Sealer.unsealUnnamed: seals that name no key (iron-webcrypto with a string secret)", () => {
  test("opens them with any of the first four keys; refuses seals that name a key, and the rest", async () => {
    const value = { userId: "ada", _expires: 1 };
    const unnamed = await ironSeal(value, SECRET, defaults);
    assert.match(unnamed, /^Fe26\.2\*\*/);
    assert.deepEqual(await new Sealer([SECRET]).unsealUnnamed(unnamed), value);
    assert.deepEqual(await new Sealer([NEW_KEY, SECRET]).unsealUnnamed(unnamed), value);
    const keys = ["1", "2", "3", "4", "5"].map((k) => k.repeat(32));
    const fifth = await ironSeal(value, keys[4]!, defaults);
    assert.equal(await new Sealer(keys).unsealUnnamed(fifth), undefined, "four keys at most");
    assert.deepEqual(await new Sealer(keys.slice(1)).unsealUnnamed(fifth), value);

    const sealer = new Sealer([SECRET]);
    const named = await sealer.seal(value);
    assert.deepEqual((await sealer.unseal(named))?.value, value);
    const refused = [
      named, // ours: opened by unseal(), not here
      await ironSeal(value, { id: "k1", secret: SECRET }, defaults),
      await ironSeal(value, OTHER_KEY, defaults),
      flipIron(unnamed, "mac"),
      flipIron(unnamed, "ciphertext"),
      unnamed.slice(0, -2),
      "Fe26.2**" + "a".repeat(5000),
      "Fe26.2** *",
      "",
      undefined,
    ];
    for (const sealed of refused) {
      assert.equal(await sealer.unsealUnnamed(sealed), undefined, String(sealed).slice(0, 40));
    }
  });
});

/**
 * Hostile cookies and headers (issue 5, part 1): every case through the four paths a request
 * can take — the core (`manager.open`), the Hono adapter, the Koa adapter and the socket.io
 * handshake — in store mode (signed id) and sealed mode (iron). Each must give "no session"
 * plus the expected `onInvalid` reason (or, where the hostile part sits next to a valid cookie,
 * the untouched session), a 200, never an exception; a write on top starts a fresh session with
 * a fresh id (a presented id is never adopted).
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Sealer } from "../src/sealer.ts";
import { CookieSigner } from "../src/signer.ts";
import { generateUid } from "../src/id.ts";
import {
  type Env,
  HTTP_PATHS,
  type Mode,
  PATHS,
  startEnv,
  type Valid,
} from "./helpers/security_env.ts";
import {
  expectedReasons,
  HOSTILE,
  sealedRecord,
  sealWithRealKey,
  signer,
} from "./helpers/hostile_cookies.ts";

const ID = /^[A-Za-z0-9_-]{24}$/;
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

function assertNoPollution(): void {
  const probe = {} as Record<string, unknown>;
  assert.equal(probe.polluted, undefined, "Object.prototype was polluted");
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), PROTO_KEYS);
}

/** Counts calls of a prototype method while `fn` runs. */
async function counting<T extends object>(
  proto: T,
  method: keyof T & string,
  fn: () => Promise<void>,
): Promise<number> {
  const original = proto[method] as unknown as (...args: unknown[]) => unknown;
  let calls = 0;
  (proto as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
    calls++;
    return original.apply(this, args);
  };
  try {
    await fn();
  } finally {
    (proto as Record<string, unknown>)[method] = original;
  }
  return calls;
}

for (const mode of ["store", "sealed"] as const satisfies readonly Mode[]) {
  describe(`hostile cookies, ${mode} mode (core, Hono, Koa, socket.io handshake)`, () => {
    let env: Env;
    let valid: Valid;
    before(async () => {
      env = await startEnv(mode);
      valid = await env.login();
    });
    after(() => env.close());

    for (const c of HOSTILE.filter((c) => c.modes.includes(mode))) {
      const outcome = c.session ? "the session, untouched" : "no session";
      test(`${c.name} → ${outcome}`, { timeout: 20_000 }, async () => {
        const header = await c.header(valid);
        for (const path of PATHS) {
          const p = await env.probe(path, header);
          assert.equal(p.status, 200, `${path}: status`);
          assert.equal(p.user, c.session ? "ada" : null, `${path}: session data`);
          assert.equal(p.sessionId, c.session ? valid.sessionId : null, `${path}: session id`);
          assert.deepEqual(p.reasons, expectedReasons(c, path, mode), `${path}: onInvalid`);
        }
        if (!c.session) {
          for (const path of HTTP_PATHS) {
            const w = await env.write(path, header);
            assert.equal(w.status, 200, `${path}: write status`);
            assert.equal(w.user, null, `${path}: the write sees no session`);
            assert.match(String(w.sessionId), ID, `${path}: a fresh id`);
            assert.notEqual(w.sessionId, valid.sessionId, `${path}: not the valid session`);
            assert.ok(!header?.includes(w.sessionId!), `${path}: never an id from the request`);
          }
        }
        assertNoPollution();
        assert.deepEqual(env.errors, [], "no error reached a framework");
      });
    }

    // (Signing the new client-id cookie of the response still runs an HMAC: what is counted is
    // the verification of what the request carried.)
    test("100 KB Cookie header: no HMAC verification and no unseal ran (counted), onInvalid too-large", async () => {
      const huge = `sid=${valid.sid}; pad=${"x".repeat(100 * 1024)}`;
      const proto = mode === "store" ? CookieSigner.prototype : Sealer.prototype;
      const method = mode === "store" ? "verify" : "unseal";
      const run = (header: string) => async () => {
        for (const path of PATHS) await env.probe(path, header);
      };
      const calls = await counting(proto, method as never, run(huge));
      assert.equal(calls, 0, `${method} ran on an oversized header`);
      // The counter does count: a header of normal size runs the crypto.
      const fresh = mode === "store" ? `sid=${signer.sign(generateUid())}` : `sid=${valid.sid}`;
      assert.ok(await counting(proto, method as never, run(fresh)) > 0, "control: crypto ran");
    });

    test("payload keys __proto__, constructor and the session API's names: no prototype pollution, internal fields not overridable", async () => {
      const hostile = JSON.parse(
        '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},' +
          '"user":"mallory","isNew":"forged","regenerate":"forged","toJSON":"forged",' +
          '"csrfToken":"forged","verifyCsrf":"forged"}',
      );
      let header: string;
      if (mode === "store") {
        const id = generateUid();
        const now = Date.now();
        env.store!.set(id, { data: hostile, expiresAt: now + 60_000, createdAt: now }, 60_000);
        header = `sid=${signer.sign(id)}`;
      } else {
        header = `sid=${await sealWithRealKey(sealedRecord({ d: hostile }), valid.sid)}`;
      }
      for (const path of PATHS) {
        const p = await env.probe(path, header);
        assert.equal(p.status, 200, path);
        assert.equal(p.user, "mallory", `${path}: the record is read`);
        assertNoPollution();
      }
      const state = env.manager.open(header);
      await env.manager.prepare(state);
      const s = state.session;
      assert.equal(typeof s.isNew, "boolean");
      assert.equal(typeof s.regenerate, "function");
      assert.equal(typeof s.csrfToken(), "string");
      assert.equal(s.verifyCsrf("forged"), false);
      const json = s.toJSON();
      assert.deepEqual(Object.getOwnPropertyDescriptor(json, "__proto__")?.value, { polluted: 1 });
      assert.equal(Object.getPrototypeOf(json), Object.prototype, "a plain object");
      assert.throws(() => ((s as Record<string, unknown>).isNew = true), TypeError);
      assertNoPollution();
      assert.deepEqual(env.errors, []);
    });
  });
}

/**
 * What users rely on when two app instances share one real store: sessions created by one
 * instance are read by the other, patch commits from both survive, destroy and cleanup reach
 * everyone, and events published by one instance arrive at the other. Registered once per
 * store (Redis, Deno KV) by their test files.
 * @module
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createSessions,
  MapStore,
  type SessionManager,
  type SessionOptions,
  type SessionState,
  type Store,
  type StoreEvent,
} from "../../mod.ts";
import { StoreError, UnisessionError } from "../../src/errors.ts";

export const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };
const DAY = 86_400_000;

/** Two store instances (own connections or handles) over one shared backend. */
export interface StorePair {
  a: Store;
  b: Store;
  close(): Promise<void>;
}

/** Asserts that `promise` rejects with a StoreError (code ERR_STORE) and returns it. */
export async function rejectsWithStoreError(promise: Promise<unknown>): Promise<StoreError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail("expected a StoreError, but the call resolved"),
    (err) => (caught = err),
  );
  assert.ok(caught instanceof StoreError, `expected a StoreError, got ${String(caught)}`);
  assert.ok(caught instanceof UnisessionError);
  assert.equal(caught.code, "ERR_STORE");
  return caught;
}

/**
 * A MapStore whose events come from the test: `deliver(event)` plays another instance
 * publishing it (this store's own publishes go nowhere).
 */
export function remoteEvents(): { store: MapStore; deliver(event: StoreEvent): void } {
  let deliver: (event: StoreEvent) => void = () => {};
  class Bus extends MapStore {
    subscribe(fn: (event: StoreEvent) => void): () => void {
      deliver = fn;
      return () => {};
    }
    publish(): void {}
  }
  return { store: new Bus(), deliver: (event) => deliver(event) };
}

/** Cookie header value (`name=value; ...`) of a commit's Set-Cookie list. */
export function cookiesOf(setCookies: string[]): string {
  return setCookies.map((c) => c.split(";")[0]).filter((c) => !c.endsWith("=")).join("; ");
}

/** One "request" on a manager: open, prepare, handler, commit. */
export async function request(
  m: SessionManager,
  cookie: string | null,
  handler: (s: SessionState) => unknown,
): Promise<{ cookie: string; state: SessionState }> {
  const state = m.open(cookie);
  await m.prepare(state);
  await handler(state);
  const { cookies } = await m.commit(state);
  return { cookie: cookiesOf(cookies) || cookie || "", state };
}

/** Resolves with the first value `subscribe` delivers that matches, or rejects after `ms`. */
export function nextEvent<T>(
  subscribe: (fn: (v: T) => void) => () => void,
  match: (v: T) => boolean,
  ms = 5000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no matching event within ${ms} ms`));
    }, ms);
    const stop = subscribe((v) => {
      if (!match(v)) return;
      clearTimeout(timer);
      stop();
      resolve(v);
    });
  });
}

/**
 * Registers `sessions over <name>`: two SessionManagers (instances A and B), each on its own
 * store instance from `open()`, sharing the backend.
 */
export function testSessionsOverStore(name: string, open: () => Promise<StorePair>): void {
  describe(`sessions over ${name} shared by two instances`, () => {
    let pair: StorePair;
    let A: SessionManager;
    let B: SessionManager;
    const managers: SessionManager[] = [];
    const make = (store: Store, extra: SessionOptions = {}): SessionManager => {
      const m = createSessions({ store, keys: [KEY], logger: quiet, ...extra });
      managers.push(m);
      return m;
    };

    before(async () => {
      pair = await open();
      A = make(pair.a);
      B = make(pair.b);
    });
    after(async () => {
      for (const m of managers) m.close();
      await pair?.close();
    });

    test("a session created on A is read on B; B's change is seen on A", async () => {
      const r = await request(A, null, (s) => {
        s.session.user = { name: "ada", roles: ["admin"] };
      });
      const id = r.state.id!;
      await request(B, r.cookie, (s) => {
        assert.deepEqual(s.session.user, { name: "ada", roles: ["admin"] });
        (s.session.user as { roles: string[] }).roles.push("ops");
      });
      assert.deepEqual(await A.getById(id), { user: { name: "ada", roles: ["admin", "ops"] } });
    });

    test("patch commits of different keys from A and B do not clobber each other", async () => {
      const r = await request(A, null, (s) => {
        s.session.base = 0;
      });
      const onA = Array.from({ length: 10 }, () => A.open(r.cookie));
      const onB = Array.from({ length: 10 }, () => B.open(r.cookie));
      await Promise.all([...onA, ...onB].map((s) => A.prepare(s)));
      onA.forEach((s, i) => (s.session[`a${i}`] = i));
      onB.forEach((s, i) => (s.session[`b${i}`] = i));
      await Promise.all([
        ...onA.map((s) => A.commit(s)),
        ...onB.map((s) => B.commit(s)),
      ]);
      const data = await B.getById(r.state.id!);
      for (let i = 0; i < 10; i++) {
        assert.equal(data?.[`a${i}`], i, `A's key a${i} lost`);
        assert.equal(data?.[`b${i}`], i, `B's key b${i} lost`);
      }
      assert.equal(data?.base, 0);
    });

    test("update() increments from A and B at once are all kept", async () => {
      const r = await request(A, null, (s) => {
        s.session.n = 0;
      });
      const id = r.state.id!;
      const bump = (d: Record<string, unknown>) => void (d.n = (d.n as number) + 1);
      await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 2 ? A : B).update(id, bump)),
      );
      assert.equal((await A.getById(id))?.n, 50);
    });

    test("destroy on B ends the session for A; B's event reaches A with remote: true", async () => {
      const r = await request(A, null, (s) => {
        s.session.user = "ada";
      });
      const id = r.state.id!;
      const seen = nextEvent<{ sessionId: string; remote: boolean; reason: string }>(
        (fn) => {
          A.on("sessionDestroy", fn);
          return () => A.off("sessionDestroy", fn);
        },
        (e) => e.sessionId === id,
      );
      assert.equal(await B.destroyById(id), true);
      assert.equal(await A.getById(id), undefined);
      await request(A, r.cookie, (s) => assert.equal(s.session.user, undefined));
      const event = await seen;
      assert.equal(event.remote, true);
      assert.equal(event.reason, "destroy");
    });

    test("cleanup removes expired sessions and their client mappings, keeps live ones", async () => {
      const live = await request(A, null, (s) => {
        s.session.keep = true;
      });
      const shortLived = make(pair.b, { maxAge: 3000 });
      const short = await request(shortLived, null, (s) => {
        s.session.soon = true;
      });
      assert.deepEqual(await A.getById(short.state.id!), { soon: true });

      // An instance whose clock runs 10 s ahead: the 3 s session has expired, the 1-day one not.
      const later = make(pair.a, { now: () => Date.now() + 10_000 });
      const cleared = await later.cleanup();
      assert.ok(cleared >= 1, `cleanup cleared ${cleared}`);
      assert.equal(await A.getById(short.state.id!), undefined, "expired session survived");
      assert.equal(await A.getSessionId(short.state.clientId!), undefined, "mapping survived");
      assert.deepEqual(await B.getById(live.state.id!), { keep: true }, "live session removed");

      const dayAfter = make(pair.b, { now: () => Date.now() + 2 * DAY });
      assert.ok((await dayAfter.cleanup()) >= 1);
      assert.equal(await A.getById(live.state.id!), undefined, "cleanup left an expired session");
    });

    test("an event published through store A reaches a subscriber of store B", async () => {
      const { a, b } = pair;
      assert.equal(typeof a.publish, "function");
      assert.equal(typeof b.subscribe, "function");
      const event: StoreEvent = {
        type: "sessionSet",
        sessionId: `probe-${Math.random()}`,
        isNew: true,
        origin: "instance-a",
      };
      const got = nextEvent<StoreEvent>(
        (fn) => b.subscribe!(fn),
        (e) => e.type === "sessionSet" && e.sessionId === event.sessionId,
      );
      // Delivery starts once the subscription is in place (a Redis SUBSCRIBE round trip, the
      // first KV poll): publish until the event arrives.
      let arrived = false;
      const result = got.finally(() => (arrived = true));
      while (!arrived) {
        await a.publish!(event);
        await Promise.race([result, new Promise((resolve) => setTimeout(resolve, 100))]);
      }
      assert.deepEqual(await result, event);
    });
  });
}

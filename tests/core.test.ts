import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  createSessions,
  generateUid,
  MapStore,
  type SessionData,
  type SessionDestroyEvent,
  type SessionManager,
  SessionMissingError,
  type SessionOptions,
  type SessionSetEvent,
  type SessionState,
  type StoredRecord,
  StoreError,
  type StoreEvent,
} from "../mod.ts";
import { CookieSigner, Keyring } from "../src/signer.ts";
import { decodeBase64Url, encodeBase64Url } from "../src/encoding.ts";
import { OldestKey } from "../src/oldest_key.ts";
import { BoundedMap, ShardedMap } from "../src/sharded_map.ts";
import { KeyedQueue } from "../src/keyed_queue.ts";
import { generateUidEndingAs, randomBytes } from "../src/id.ts";
import { Sealer } from "../src/sealer.ts";
import { nodeCryptoAes as findNodeCryptoAes, webCryptoAes } from "../src/iron.ts";
import { copyJson } from "../src/json_copy.ts";
import { parse as parseCookies } from "cookie";
import { cookieValue, resolveCookieOptions, serializeCookie } from "../src/cookie.ts";
import { remoteEvents } from "./helpers/store_scenarios.ts";

const KEY = "k".repeat(32);
const OLD = "o".repeat(32);
const quiet = { warn() {} };

/** Cookie header value (`name=value`) of each Set-Cookie. */
/** The Cookie header a browser sends next: `cookie` updated by the response's `Set-Cookie`s. */
function follow(cookie: string | null, setCookies: string[]): string {
  const jar = new Map<string, string>();
  for (const pair of cookie ? cookie.split("; ") : []) {
    jar.set(pair.slice(0, pair.indexOf("=")), pair);
  }
  for (const c of setCookies) {
    const pair = c.split(";")[0]!;
    const name = pair.slice(0, pair.indexOf("="));
    if (pair.endsWith("=")) jar.delete(name);
    else jar.set(name, pair);
  }
  return [...jar.values()].join("; ");
}

/** The `name=value` pair of cookie `name` in a Cookie header. */
function pairOf(cookie: string, name: string): string {
  return cookie.split("; ").find((c) => c.startsWith(`${name}=`))!;
}

/** Runs one "request" against the manager: open, prepare, handler, commit. */
async function request(
  m: SessionManager,
  cookie: string | null,
  handler: (s: SessionState) => unknown,
): Promise<{ cookies: string[]; cookie: string; state: SessionState }> {
  const state = m.open(cookie);
  await m.prepare(state);
  await handler(state);
  const { cookies } = await m.commit(state);
  return { cookies, cookie: follow(cookie, cookies), state };
}

/**
 * Counts the store's writes: `set()` calls, and `update()` calls whose mutator returns a record
 * (MapStore's `update()` writes without going through `set()`).
 */
function countWrites(store: MapStore): { readonly count: number } {
  const counter = { count: 0 };
  const set = store.set.bind(store);
  store.set = (...a) => (counter.count++, set(...a));
  const update = store.update.bind(store);
  store.update = (id, mutate) =>
    update(id, (cur) => {
      const next = mutate(cur);
      if (next !== undefined) counter.count++;
      return next;
    });
  return counter;
}

/**
 * A manager over a MapStore on a clock the test moves (`clock.now`, from 0), idle timeout 1000 ms,
 * with one session holding `data`: its request, id, and the store's expiry for it.
 */
async function rollingSession(data: Record<string, unknown>) {
  const clock = { now: 0 };
  const store = new MapStore({ now: () => clock.now });
  const m = createSessions({
    store,
    keys: [KEY],
    maxAge: 1000,
    now: () => clock.now,
    logger: quiet,
  });
  const r = await request(m, null, (s) => {
    Object.assign(s.session, data);
  });
  const id = r.state.id!;
  return { clock, m, r, id, expiry: () => store.get(id)?.expiresAt };
}

function manager(extra: SessionOptions = {}): { m: SessionManager; store: MapStore } {
  const store = new MapStore(extra.now ? { now: extra.now } : {});
  return { m: createSessions({ store, keys: [KEY], logger: quiet, ...extra }), store };
}

describe("ids", () => {
  test("generateUid gives 24 base64url chars (144 bits) and no repeats", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = generateUid();
      assert.match(id, /^[A-Za-z0-9_-]{24}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 5000);
  });

  test("ids drawn between salts and IVs of other sizes from the same pool: still 24 chars, distinct", () => {
    // An id takes the next whole 18-byte slot of the pool; draws of 16, 32 and 7 bytes
    // between ids leave the offset anywhere, and the pool refills every 3,060 bytes.
    const seen = new Set<string>();
    const bytes: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const id = generateUid();
      assert.match(id, /^[A-Za-z0-9_-]{24}$/);
      // Bytes handed out before (and wiped) would show as a run of "A"s (zero bits).
      assert.doesNotMatch(id, /AAAAAA/);
      seen.add(id);
      const extra = randomBytes([16, 32, 7][i % 3]!);
      bytes.push(Array.from(extra).join(","));
    }
    assert.equal(seen.size, 20_000);
    assert.ok(new Set(bytes).size > 19_990, "the other draws are random too");
  });

  test("generateUidEndingAs: 24 base64url chars ending as the given id (132 random bits), else plain", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const like = generateUid();
      const id = generateUidEndingAs(like);
      assert.match(id, /^[A-Za-z0-9_-]{24}$/);
      assert.equal(id.slice(-2), like.slice(-2), `${id} ends as ${like}`);
      assert.notEqual(id, like);
      seen.add(id.slice(0, -2));
    }
    assert.equal(seen.size, 5000, "the first 22 characters stay random");
    for (const like of ["-_", "x".repeat(40) + "_A", "id-9z"]) {
      assert.equal(generateUidEndingAs(like).slice(-2), like.slice(-2), like);
    }
    // Not base64url at the end (or too short): an id like generateUid's.
    for (const like of ["", "a", "ab.", "é!", "ok\u00e9"]) {
      assert.match(generateUidEndingAs(like), /^[A-Za-z0-9_-]{24}$/, JSON.stringify(like));
    }
  });

  test("base64url encoding matches btoa for every length and offset, short and long (chunked)", () => {
    const reference = (b: Uint8Array) =>
      btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const bytes = crypto.getRandomValues(new Uint8Array(40_000));
    for (let n = 0; n <= 64; n++) {
      for (const start of [0, 1, 2, 7]) {
        const slice = bytes.subarray(start, start + n);
        const encoded = encodeBase64Url(bytes, start, start + n);
        assert.equal(encoded, reference(slice), `${n} bytes at ${start}`);
        assert.deepEqual(decodeBase64Url(encoded) ?? new Uint8Array(0), slice);
      }
    }
    // Longer than the reused buffer and than one String.fromCharCode chunk.
    for (const n of [384, 385, 6_144, 6_145, 40_000]) {
      assert.equal(encodeBase64Url(bytes.subarray(0, n)), reference(bytes.subarray(0, n)), `${n}`);
    }
  });
});

describe("BoundedMap (the bounded caches)", () => {
  test("keeps at most `limit` entries, evicting the oldest; replacing a key evicts nothing", () => {
    const m = new BoundedMap<string, number>(2);
    m.set("a", 1);
    m.set("b", 2);
    m.set("a", 10); // a known key: replaced in place
    assert.deepEqual([m.size, m.get("a"), m.get("b")], [2, 10, 2]);
    m.set("c", 3); // a new key at the limit: the oldest ("a") goes
    assert.deepEqual([m.has("a"), m.get("b"), m.get("c"), m.size], [false, 2, 3, 2]);
    m.delete("b");
    m.set("d", 4); // room again: nothing evicted
    assert.deepEqual([m.get("c"), m.get("d"), m.size], [3, 4, 2]);
    const none = new BoundedMap<string, number>(0);
    none.set("x", 1);
    assert.deepEqual([none.size, none.get("x")], [0, undefined], "limit 0 keeps nothing");
  });

  test("beyond 32,768 entries (in shards on Bun) it evicts about the oldest, never a recent key", () => {
    const m = new BoundedMap<string, number>(40_000);
    const keys = Array.from({ length: 50_000 }, () => generateUid());
    for (const [i, k] of keys.entries()) m.set(k, i);
    assert.equal(m.size, 40_000);
    const gone = keys.flatMap((k, i) => m.has(k) ? [] : [i]);
    assert.equal(gone.length, 10_000);
    assert.ok(Math.max(...gone) < 20_000, `evicted up to #${Math.max(...gone)}`);
  });
});

describe("copyJson (the copies of cached records, snapshots and drafts)", () => {
  /** True when no object or array is shared between the two trees. */
  function disjoint(a: unknown, b: unknown, seen = new Set<unknown>()): boolean {
    if (typeof a !== "object" || a === null) return true;
    if (a === b) return false;
    seen.add(a);
    for (const key of Object.keys(a)) {
      const x = (a as Record<string, unknown>)[key];
      const y = (b as Record<string, unknown>)[key];
      if (!disjoint(x, y, seen)) return false;
    }
    return true;
  }

  test("any JSON value: an equal copy, keys in the same order, nothing shared (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = JSON.parse(JSON.stringify(value)) as unknown;
        const copy = copyJson(parsed);
        assert.equal(JSON.stringify(copy), JSON.stringify(parsed));
        assert.deepEqual(copy, parsed);
        assert.ok(disjoint(copy, parsed), "no object is shared");
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  test("an own __proto__ key stays an own data key; an inherited enumerable key is not copied in", () => {
    const parsed = JSON.parse('{"__proto__":{"admin":true},"list":[{"a":1}]}') as Record<
      string,
      unknown
    >;
    const copy = copyJson(parsed) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(copy), Object.prototype);
    assert.ok(Object.hasOwn(copy, "__proto__"));
    assert.deepEqual(Object.getOwnPropertyDescriptor(copy, "__proto__")?.value, { admin: true });
    assert.notEqual(Object.getOwnPropertyDescriptor(copy, "__proto__")?.value, parsed.__proto__);
    assert.equal((copy as { admin?: unknown }).admin, undefined);
    // A polluted prototype (an enumerable object-valued key) does not end up in copies.
    Object.defineProperty(Object.prototype, "polluted", {
      value: { x: 1 },
      enumerable: true,
      configurable: true,
      writable: true,
    });
    try {
      const again = copyJson({ a: { b: 1 } }) as Record<string, unknown>;
      assert.deepEqual(Object.keys(again), ["a"]);
      assert.equal(Object.hasOwn(again, "polluted"), false);
      assert.equal(Object.hasOwn(again.a as object, "polluted"), false);
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
  });
});

describe("KeyedQueue (per-session serialisation)", () => {
  test("one call at a time per key, in order; other keys run at once; idle keys hold nothing", async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const first = q.run("a", async () => {
      log.push("a1 start");
      await gate;
      log.push("a1 end");
      return 1;
    });
    const second = q.run("a", () => (log.push("a2"), 2)); // synchronous: still waits its turn
    const third = q.run("a", () => Promise.resolve((log.push("a3"), 3)));
    const other = q.run("b", () => (log.push("b1"), "b"));
    assert.deepEqual(log, ["a1 start", "b1"], "a call on an idle key starts in the caller's turn");
    assert.equal(await other, "b");
    assert.equal(q.size, 1, "b is free again, a is busy");
    release();
    assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 3]);
    assert.deepEqual(log, ["a1 start", "b1", "a1 end", "a2", "a3"]);
    assert.equal(q.size, 0);
  });

  test("a throw or a rejection rejects that call only and hands the key on", async () => {
    const q = new KeyedQueue();
    const boom = new Error("boom");
    const threw = q.run("k", () => {
      throw boom;
    });
    const rejected = q.run("k", () => Promise.reject(new TypeError("no")));
    const after = q.run("k", () => "still runs");
    await assert.rejects(threw, (err) => err === boom);
    await assert.rejects(rejected, TypeError);
    assert.equal(await after, "still runs");
    assert.equal(q.size, 0);
  });

  test("a result whose `then` cannot be read rejects, idle or queued, and frees the key", async () => {
    const q = new KeyedQueue();
    const poisoned = () => ({
      get then(): never {
        throw new Error("then getter");
      },
    });
    await assert.rejects(q.run("k", poisoned), /then getter/);
    assert.equal(q.size, 0);
    const first = q.run("k", () => Promise.resolve(1));
    const second = q.run("k", poisoned); // started from the hand-over, not by the caller
    const third = q.run("k", () => 3);
    assert.equal(await first, 1);
    await assert.rejects(second, /then getter/);
    assert.equal(await third, 3);
    assert.equal(q.size, 0);
  });

  test("a call queued from inside a running call waits for it; a long queue does not recurse", async () => {
    const q = new KeyedQueue();
    const order: number[] = [];
    let inner: Promise<number> | undefined;
    const outer = q.run("k", () => {
      inner = q.run("k", () => (order.push(2), 2));
      order.push(1);
      return 1;
    });
    assert.deepEqual([await outer, await inner], [1, 2]);
    assert.deepEqual(order, [1, 2]);
    // 20,000 synchronous calls queued behind a pending one: each hands the key on in a
    // microtask, so none starts inside another's stack (a recursive hand-over overflows it).
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const head = q.run("k", () => gate);
    const calls = Array.from({ length: 20_000 }, (_, i) => q.run("k", () => i));
    release();
    await head;
    const results = await Promise.all(calls);
    assert.deepEqual([results.length, results[0], results[19_999]], [20_000, 0, 19_999]);
    assert.equal(q.size, 0);
  });

  test("calls nested across keys: each key stays one at a time, however deep and whatever returns", async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    let sizeInside = -1;
    const pending: Promise<unknown>[] = [];
    const outer = q.run("a", () => {
      sizeInside = q.size;
      // Another key runs at once, inside this call; "a" from inside it waits for this call.
      pending.push(q.run("b", () => {
        log.push("b");
        pending.push(q.run("a", () => log.push("a, queued from b")));
        pending.push(q.run("b", () => log.push("b, queued from b")));
        return "b";
      }));
      log.push("a");
      return Promise.resolve("a async"); // still holds "a" until it settles
    });
    assert.equal(sizeInside, 1, "the running key counts while it runs");
    assert.deepEqual(log, ["b", "a"]);
    assert.equal(q.size, 2, "a (pending) and b (its queued call)");
    const late = q.run("a", () => log.push("a, queued after"));
    assert.equal(await outer, "a async");
    await Promise.all([...pending, late]);
    assert.deepEqual(log, ["b", "a", "b, queued from b", "a, queued from b", "a, queued after"]);
    assert.equal(q.size, 0);
    // A synchronous call that throws after queueing one behind itself hands the key on.
    let queued: Promise<unknown> | undefined;
    const threw = q.run("c", () => {
      queued = q.run("c", () => "after the throw");
      throw new Error("boom");
    });
    await assert.rejects(threw, /boom/);
    assert.equal(await queued, "after the throw");
    assert.equal(q.size, 0);
    // Any value is a key, undefined too (a JavaScript caller's missing id): it runs, one at a time.
    const none = undefined as unknown as string;
    const calls = [q.run(none, () => "first"), q.run(none, () => "second")];
    assert.deepEqual(await Promise.all(calls), ["first", "second"]);
    assert.equal(q.size, 0);
  });
});

describe("ShardedMap (large collections in shards)", () => {
  test("a Map's answers: size, get, has, set (true when the key was known), delete, clear", () => {
    const m = new ShardedMap<number>(64);
    const keys = Array.from({ length: 5000 }, (_, i) => `key-${i}`);
    for (const [i, k] of keys.entries()) assert.equal(m.set(k, i), false);
    assert.equal(m.set("key-7", 70), true, "a known key");
    assert.equal(m.size, 5000);
    assert.deepEqual([m.get("key-7"), m.get("key-4999"), m.has("key-0"), m.has("x")], [
      70,
      4999,
      true,
      false,
    ]);
    assert.deepEqual([m.delete("key-0"), m.delete("key-0"), m.size], [true, false, 4999]);
    assert.deepEqual(
      [...m].map(([k]) => k).sort(),
      keys.slice(1).sort(),
      "iteration sees each once",
    );
    for (const short of ["", "a", "ab"]) m.set(short, -1); // keys shorter than the hash reads
    assert.deepEqual([m.get(""), m.get("a"), m.get("ab"), m.size], [-1, -1, -1, 5002]);
    const next = m.cursor();
    const seen: [string, number][] = [];
    for (let e = next(); e !== undefined; e = next()) seen.push(e);
    assert.deepEqual(seen, [...m], "cursor: the entries, in the iteration's order");
    assert.equal(next(), undefined, "a finished cursor stays finished");
    m.clear();
    assert.deepEqual([m.size, [...m].length, m.get("key-8")], [0, 0, undefined]);
    assert.throws(() => new ShardedMap(3), RangeError);
  });

  test("a cursor follows what is written while it walks: deleted keys skipped, new and rewritten ones met", () => {
    for (const shards of [1, 64]) {
      const m = new ShardedMap<number>(shards);
      for (let i = 0; i < 1000; i++) m.set(`k${i}`, i);
      const next = m.cursor();
      const met = new Map<string, number>();
      for (let i = 0; i < 500; i++) met.set(...next()!);
      const ahead = [...m].map(([k]) => k).filter((k) => !met.has(k));
      m.delete(ahead[0]!);
      m.set(ahead[1]!, -1);
      m.set("late", 1000);
      for (let e = next(); e !== undefined; e = next()) {
        assert.ok(!met.has(e[0]), `${e[0]} met once`);
        met.set(...e);
      }
      assert.ok(!met.has(ahead[0]!), "a key deleted ahead of the cursor is not met");
      assert.equal(met.get(ahead[1]!), -1, "a key rewritten ahead is met with its new value");
      assert.equal(met.size, shards === 1 ? 1000 : met.has("late") ? 1000 : 999);
      if (shards === 1) assert.equal(met.get("late"), 1000, "a key added is met (one shard)");
    }
  });

  test("keys ending in the same two characters share a shard: iterated together, in the order written", () => {
    // What MapStore.takeExpired relies on to find a session's client mapping next to it.
    const m = new ShardedMap<number>(64);
    for (let i = 0; i < 2000; i++) m.set(generateUid(), i);
    const client = generateUid();
    const session = generateUidEndingAs(client);
    m.set(session, -1);
    m.set("cid:" + client, -2);
    for (let i = 0; i < 2000; i++) m.set(generateUid(), i);
    const keys = [...m].map(([k]) => k);
    const at = keys.indexOf(session);
    assert.equal(keys[at + 1], "cid:" + client);
  });

  test("random ids spread evenly over 64 shards (by the order of iteration: shard by shard)", () => {
    const m = new ShardedMap<number>(64);
    for (let i = 0; i < 64_000; i++) m.set(generateUid(), i);
    // Shard boundaries are where the insertion order restarts (values written in order).
    const sizes: number[] = [];
    let run = 0;
    let last = -1;
    for (const [, v] of m) {
      if (v < last) {
        sizes.push(run);
        run = 0;
      }
      run++;
      last = v;
    }
    sizes.push(run);
    assert.equal(sizes.length, 64, "every shard used");
    assert.ok(Math.min(...sizes) > 800 && Math.max(...sizes) < 1200, `sizes ${sizes}`);
  });

  test("eviction takes the oldest of the fullest shard: the shards stay level, every key once", () => {
    const m = new ShardedMap<number>(64);
    for (let i = 0; i < 64_000; i++) m.set(generateUid(), i);
    for (let i = 0; i < 64_000; i++) {
      m.set(generateUid(), 64_000 + i);
      const key = m.nextOldest()!;
      assert.ok(m.get(key)! < 64_000 + i, "never the key just written");
      m.delete(key);
    }
    // After replacing the first 64,000 once over, about the newest 64,000 remain.
    const kept = [...m].map(([, v]) => v);
    assert.ok(Math.min(...kept) > 40_000, `oldest kept: #${Math.min(...kept)}`);
    let evicted = 0;
    for (let key = m.nextOldest(); key !== undefined; key = m.nextOldest()) {
      m.delete(key);
      evicted++;
    }
    assert.deepEqual([evicted, m.size], [64_000, 0], "every key, once");
  });
});

describe("OldestKey (eviction cursor of bounded caches)", () => {
  test("gives the oldest present key across deletions, re-insertions, exhaustion and clear()", () => {
    const m = new Map<string, number>([["a", 1], ["b", 2], ["c", 3]]);
    const oldest = new OldestKey(m);
    assert.equal(oldest.next(), "a");
    m.delete("a");
    m.delete("b"); // deleted elsewhere (a logout), then written again: now the newest
    m.set("b", 2);
    m.set("d", 4);
    const order: string[] = [];
    for (let k = oldest.next(); k !== undefined; k = oldest.next()) {
      order.push(k);
      m.delete(k);
    }
    assert.deepEqual(order, ["c", "b", "d"]);
    assert.equal(oldest.next(), undefined, "empty");
    m.set("e", 5); // after the iterator finished
    assert.equal(oldest.next(), "e");
    m.clear();
    assert.equal(oldest.next(), undefined);
    m.set("f", 6);
    assert.equal(oldest.next(), "f");
  });

  test("as a FIFO over many evictions, it keeps insertion order exactly", () => {
    const s = new Set<number>();
    const oldest = new OldestKey(s);
    const evicted: number[] = [];
    for (let i = 0; i < 5000; i++) {
      s.add(i);
      if (s.size > 100) {
        const k = oldest.next()!;
        evicted.push(k);
        s.delete(k);
      }
    }
    assert.deepEqual(evicted, Array.from({ length: 4900 }, (_, i) => i));
    assert.deepEqual([...s], Array.from({ length: 100 }, (_, i) => 4900 + i));
  });
});

describe("signed-id codec", () => {
  const ring = new Keyring([KEY]);
  const signer = new CookieSigner(ring, "sid");

  test("a signed value verifies and yields the value", () => {
    const signed = signer.sign("abc");
    assert.deepEqual(signer.verify(signed), { value: "abc", stale: false });
  });

  test("the cookie name is bound into the MAC: a value moved to another name fails", () => {
    const other = new CookieSigner(ring, "other");
    assert.equal(other.verify(signer.sign("abc")), undefined);
  });

  test("an old key is accepted and reported stale; a removed key is rejected", () => {
    const old = new CookieSigner(new Keyring([OLD]), "sid").sign("abc");
    const rotated = new CookieSigner(new Keyring([KEY, OLD]), "sid");
    assert.deepEqual(rotated.verify(old), { value: "abc", stale: true });
    assert.equal(new CookieSigner(new Keyring([KEY]), "sid").verify(old), undefined);
  });

  test("every flipped character of the id or the signature is rejected", () => {
    const fresh = new CookieSigner(ring, "sid", 0);
    const signed = fresh.sign(generateUid());
    for (let i = 0; i < signed.length; i++) {
      const c = signed[i] === "A" ? "B" : "A";
      const bad = signed.slice(0, i) + c + signed.slice(i + 1);
      if (bad !== signed) assert.equal(fresh.verify(bad), undefined, `position ${i}`);
    }
  });

  test("truncated, padded, empty, oversized, non-base64url and wrong-shape values are rejected", () => {
    const signed = signer.sign("abc");
    for (
      const bad of [
        "",
        ".",
        signed.slice(0, -1),
        signed + "=",
        signed + "A",
        "abc",
        "ab c." + signed.split(".")[1],
        "a".repeat(100_000),
        "\u00a0" + signed,
        signed.replace(".", ".."),
      ]
    ) assert.equal(signer.verify(bad), undefined);
    assert.equal(signer.verify(undefined), undefined);
  });
});

describe("sealed codec", () => {
  const sealer = new Sealer([KEY]);

  test("seal/unseal round trip", async () => {
    const sealed = await sealer.seal({ a: 1 });
    assert.deepEqual(await sealer.unseal(sealed), { value: { a: 1 }, stale: false });
  });

  test("tampering with any part (key id, salt, IV, ciphertext, expiry, MAC salt, MAC) fails cleanly", async () => {
    const sealed = await sealer.seal({ a: 1 });
    const parts = sealed.split("*");
    for (let p = 1; p < parts.length; p++) {
      const copy = [...parts];
      copy[p] = copy[p] ? (copy[p]![0] === "A" ? "B" : "A") + copy[p]!.slice(1) : "x";
      assert.equal(await sealer.unseal(copy.join("*")), undefined, `part ${p}`);
    }
    assert.equal(await sealer.unseal(sealed.slice(0, -3)), undefined);
    assert.equal(await sealer.unseal("x".repeat(5000)), undefined);
    assert.equal(await sealer.unseal(""), undefined);
  });

  test("rotation: an old key unseals (stale), a removed key does not", async () => {
    const old = await new Sealer([OLD]).seal({ a: 1 });
    assert.deepEqual(await new Sealer([KEY, OLD]).unseal(old), { value: { a: 1 }, stale: true });
    assert.equal(await new Sealer([KEY]).unseal(old), undefined);
  });
});

describe("cookies", () => {
  test("reading a cookie: first duplicate wins, trimmed, decoded, __proto__ is a plain name", () => {
    const h = "a=1; a=2; __proto__=x; constructor=y; \tb = two words \t; c=%41%20b; d=%E0%A4%A";
    assert.equal(cookieValue(h, "a"), "1");
    assert.equal(cookieValue(h, "__proto__"), "x");
    assert.equal(cookieValue(h, "constructor"), "y");
    assert.equal(cookieValue(h, "b"), "two words");
    assert.equal(cookieValue(h, "c"), "A b");
    assert.equal(cookieValue(h, "d"), "%E0%A4%A"); // does not decode: kept as it is
    assert.equal(cookieValue(h, "toString"), undefined);
    assert.equal(cookieValue(h, "e"), undefined);
    // A name is matched whole: "sid" is not found in "xsid" or "sid.cid".
    assert.equal(cookieValue("xsid=1; sid.cid=2", "sid"), undefined);
    assert.equal(cookieValue("xsid=1; sid.cid=2; sid=3", "sid"), "3");
    // A pair without "=" does not swallow the next one.
    assert.equal(cookieValue("flag; sid=3", "sid"), "3");
  });

  test("reading a cookie never throws on hostile headers; oversized headers carry nothing", () => {
    for (const h of ["", ";;;", "=x", "\u00a0n=1", "é=ü", "a=%E0%A4%A", "x".repeat(100_000)]) {
      assert.doesNotThrow(() => cookieValue(h, "a"));
    }
    assert.equal(cookieValue(undefined, "a"), undefined);
    assert.equal(cookieValue(null, "a"), undefined);
    assert.equal(cookieValue("a=1; " + "x".repeat(70_000) + "=1", "a"), undefined);
  });

  test("reading a cookie agrees with the cookie package's parse on any header (fast-check)", () => {
    // Headers built from the characters the parser treats specially, names among a few.
    const names = ["sid", "sid.cid", "a", "__proto__", " sid", ""];
    const piece = fc.constantFrom(
      "sid",
      "sid.cid",
      "a",
      "__proto__",
      "=",
      ";",
      "; ",
      " ",
      "\t",
      "%41",
      "%E0%A4",
      "%",
      "x",
      '"v"',
      "é",
    );
    // Also behind a long cookie: values read from a header over 256 characters are copied out.
    const padding = fc.constantFrom("", "pad=" + "p".repeat(300) + "; ");
    fc.assert(
      fc.property(
        padding,
        fc.array(piece, { maxLength: 24 }).map((p) => p.join("")),
        (pad, cookies) => {
          const header = pad + cookies;
          const parsed = parseCookies(header);
          for (const name of names) assert.equal(cookieValue(header, name), parsed[name], name);
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), (header) => {
        const parsed = parseCookies(header);
        for (const name of names) assert.equal(cookieValue(header, name), parsed[name], name);
      }),
      { numRuns: 1000 },
    );
  });

  test("attribute injection (';', CR, LF) throws TypeError", () => {
    for (const v of ["/;x", "/\r\nSet-Cookie: a=b", "/\nx"]) {
      assert.throws(() => resolveCookieOptions("sid", { path: v }), TypeError);
      assert.throws(() => resolveCookieOptions("sid", { domain: v }), TypeError);
    }
    assert.throws(() => resolveCookieOptions("bad name", {}), TypeError);
    assert.throws(() => resolveCookieOptions("a;b", {}), TypeError);
  });

  test("__Host- needs Path=/ and no Domain; SameSite=None and Partitioned need Secure", () => {
    assert.throws(() => resolveCookieOptions("__Host-sid", { domain: "example.com" }), TypeError);
    assert.throws(() => resolveCookieOptions("__Host-sid", { path: "/app" }), TypeError);
    assert.throws(() => resolveCookieOptions("__Host-sid", { secure: false }), TypeError);
    assert.throws(
      () => resolveCookieOptions("sid", { sameSite: "none", secure: false }),
      TypeError,
    );
    assert.throws(
      () => resolveCookieOptions("sid", { partitioned: true, secure: false }),
      TypeError,
    );
    const host = resolveCookieOptions("__Host-sid", {});
    assert.match(serializeCookie(host, "v", 1000, false), /; Secure/);
  });

  test("Max-Age above 400 days throws RangeError", () => {
    const c = resolveCookieOptions("sid", {});
    assert.throws(() => serializeCookie(c, "v", 401 * 86_400_000, false), RangeError);
    assert.match(serializeCookie(c, "v", 400 * 86_400_000, false), /Max-Age=34560000/);
  });

  test('secure: "auto" sets Secure only on https', () => {
    const c = resolveCookieOptions("sid", {});
    assert.doesNotMatch(serializeCookie(c, "v", 1000, false), /Secure/);
    assert.match(serializeCookie(c, "v", 1000, true), /Secure/);
  });
});

describe("options are validated once, at construction", () => {
  const bad: [string, SessionOptions, ErrorConstructor][] = [
    ["NaN maxAge", { maxAge: NaN }, TypeError],
    ["negative maxAge", { maxAge: -1 }, RangeError],
    ["Infinity maxAge", { maxAge: Infinity }, RangeError],
    ["maxAge over 400 days", { maxAge: 401 * 86_400_000 }, RangeError],
    ["zero absoluteMaxAge", { absoluteMaxAge: 0 }, RangeError],
    ["short key", { keys: ["short"] }, RangeError],
    ["empty key list", { keys: [] }, TypeError],
    ["non-string key", { keys: [1 as unknown as string] }, TypeError],
    ["string maxAge", { maxAge: "1d" as unknown as number }, TypeError],
    ["bad store", { store: {} as never }, TypeError],
    ["bad cookie path", { cookie: { path: "/;x" } }, TypeError],
    [
      "client name equal to session name",
      { store: new MapStore(), client: { name: "sid" } },
      TypeError,
    ],
  ];
  for (const [name, opts, type] of bad) {
    test(`${name} → ${type.name}`, () => {
      assert.throws(() => createSessions({ keys: [KEY], logger: quiet, ...opts }), type);
    });
  }

  test("error messages never contain the keys", () => {
    const secret = "s3cr3t";
    try {
      createSessions({ keys: [secret] });
      assert.fail("should throw");
    } catch (err) {
      assert.ok(!(err as Error).message.includes(secret));
    }
  });

  test("no keys → a random key and a loud warning", () => {
    const warnings: string[] = [];
    const m = createSessions({ logger: { warn: (w) => warnings.push(w) } });
    assert.equal(m.mode, "sealed");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /random key/);
  });
});

describe("manager lifecycle (store mode)", () => {
  test("with a browser-session cookie the client-id cookie is one too, unless client.maxAge is given", async () => {
    const attrs = async (extra: SessionOptions) => {
      const { m } = manager(extra);
      const r = await request(m, null, (s) => void (s.session.a = 1));
      return r.cookies.map((c) => [c.slice(0, c.indexOf("=")), /Max-Age=(\d+)/.exec(c)?.[1]]);
    };
    assert.deepEqual(await attrs({ cookie: { persistent: false } }), [
      ["sid", undefined],
      ["sid.cid", undefined],
    ]);
    assert.deepEqual(
      await attrs({ cookie: { persistent: false }, client: { maxAge: 7 * 86_400_000 } }),
      [["sid", undefined], ["sid.cid", String(7 * 86_400)]],
    );
    assert.deepEqual(await attrs({}), [["sid", "86400"], ["sid.cid", String(365 * 86_400)]]);
  });

  test("a new empty session writes nothing and sets no session cookie", async () => {
    const { m, store } = manager();
    const r = await request(m, null, (s) => void s.session.x);
    assert.equal(store.size, 0);
    assert.ok(!r.cookies.some((c) => c.startsWith("sid=")));
  });

  test("creation, update, read, nested mutation, destroy", async () => {
    const { m, store } = manager();
    let r = await request(m, null, (s) => {
      s.session.user = { name: "ada", tags: ["a"] };
    });
    const id = r.state.id!;
    // The session alone: a browser's first session has its new client id as its id (no mapping).
    assert.equal(store.size, 1);
    assert.equal(r.state.clientId, id);
    r = await request(m, r.cookie, (s) => {
      (s.session.user as { tags: string[] }).tags.push("b");
    });
    assert.deepEqual((await m.getById(id))?.user, { name: "ada", tags: ["a", "b"] });
    r = await request(m, r.cookie, (s) => {
      s.destroyed = true;
    });
    assert.match(r.cookies[0]!, /^sid=; Max-Age=0/);
    assert.equal(await m.getById(id), undefined);
    assert.equal(store.size, 0);
  });

  test("unchanged reads cause no write and no Set-Cookie", async () => {
    const { m, store } = manager();
    const r = await request(m, null, (s) => {
      s.session.n = { deep: [1] };
    });
    const written = countWrites(store);
    const r2 = await request(m, r.cookie, (s) => {
      assert.deepEqual(s.session.n, { deep: [1] });
      assert.equal(s.session.hasChanged, false);
    });
    assert.equal(written.count, 0);
    assert.deepEqual(r2.cookies, []);
  });

  test("in-place changes are found at any depth; a value with the same JSON is no change", async () => {
    const { m, store } = manager();
    const first = { a: { b: [1, { c: "x" }] }, at: "1970-01-01T00:00:00.000Z", k: 1 };
    const r = await request(m, null, (s) => {
      s.session.o = first;
    });
    const written = countWrites(store);
    type O = { a: { b: [number, { c: unknown }] }; at: unknown; k: number; u?: unknown };
    const same: ((o: O) => void)[] = [
      (o) => void o.a.b[1].c, // read only
      (o) => (o.a.b[1].c = "x"), // the value it had
      (o) => (o.at = new Date(0)), // a Date where its JSON string was
      (o) => (o.u = undefined), // a key JSON leaves out
    ];
    for (const change of same) {
      await request(m, r.cookie, (s) => change(s.session.o as O));
      assert.equal(written.count, 0, change.toString());
    }
    const changes: [(o: O) => void, unknown][] = [
      [(o) => (o.a.b[1].c = "y"), { a: { b: [1, { c: "y" }] }, at: first.at, k: 1 }],
      [(o) => delete (o as { k?: number }).k, { a: { b: [1, { c: "y" }] }, at: first.at }],
      [(o) => o.a.b.push(2 as never), { a: { b: [1, { c: "y" }, 2] }, at: first.at }],
    ];
    for (const [change, after] of changes) {
      await request(m, r.cookie, (s) => change(s.session.o as O));
      assert.deepEqual((await m.getById(r.state.id!))?.o, after, change.toString());
    }
    assert.equal(written.count, 3);
  });

  test("an id the server never issued is not adopted: a fresh id is issued", async () => {
    const { m } = manager();
    const signer = new CookieSigner(new Keyring([KEY]), "sid");
    const forged = signer.sign("attackerChosenId00000000");
    const r = await request(m, `sid=${forged}`, (s) => {
      s.session.a = 1;
    });
    assert.notEqual(r.state.id, "attackerChosenId00000000");
    assert.equal(await m.getById("attackerChosenId00000000"), undefined);
  });

  test("a slow request saving after a concurrent destroy does not resurrect the session", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    const slow = m.open(r.cookie);
    slow.session.a; // loaded
    await request(m, r.cookie, (s) => {
      s.destroyed = true;
    });
    slow.session.b = 2;
    const { cookies } = await m.commit(slow);
    assert.equal(await m.getById(r.state.id!), undefined);
    assert.ok(
      !cookies.some((c) => c.startsWith("sid=")),
      "no session cookie from the stale request",
    );
  });

  test("concurrent requests changing different keys both survive (patch commits)", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      s.session.base = 1;
    });
    const states = Array.from({ length: 50 }, () => m.open(r.cookie));
    states.forEach((s, i) => (s.session[`k${i}`] = i));
    await Promise.all(states.map((s) => m.commit(s)));
    const data = await m.getById(r.state.id!);
    for (let i = 0; i < 50; i++) assert.equal(data?.[`k${i}`], i);
    assert.equal(data?.base, 1);
  });

  test("regenerate: new id, old record deleted, data kept", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    const old = r.state.id!;
    const r2 = await request(m, r.cookie, async (s) => {
      await s.session.regenerate();
    });
    assert.notEqual(r2.state.id, old);
    assert.equal(await m.getById(old), undefined);
    assert.deepEqual(await m.getById(r2.state.id!), { a: 1 });
    const replay = await request(m, r.cookie, (s) => assert.equal(s.session.a, undefined));
    assert.equal(replay.state.isNew, true);
  });

  test("idle timeout and absolute timeout with an injectable clock", async () => {
    let now = 1_000_000;
    const store = new MapStore({ now: () => now });
    const m = createSessions({
      store,
      keys: [KEY],
      maxAge: 1000,
      absoluteMaxAge: 5000,
      now: () => now,
      logger: quiet,
    });
    let r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    now += 999;
    r = await request(m, r.cookie, (s) => assert.equal(s.session.a, 1)); // renews (less than half left)
    now += 999;
    r = await request(m, r.cookie, (s) => assert.equal(s.session.a, 1));
    now += 2000;
    await request(m, r.cookie, (s) => assert.equal(s.session.a, undefined));

    // absolute: active every 400 ms, still gone after 5 s
    r = await request(m, null, (s) => {
      s.session.b = 1;
    });
    for (let t = 0; t < 12; t++) {
      now += 400;
      r = await request(m, r.cookie, (s) => {
        s.session.t = t;
      });
    }
    // 4.8 s after creation, active 400 ms ago: alive. At 5.2 s: past the absolute cap.
    r = await request(m, r.cookie, (s) => assert.equal(s.session.b, 1));
    now += 400;
    await request(m, r.cookie, (s) => assert.equal(s.session.b, undefined));
  });

  test("rolling renewal happens only once less than half of the idle window remains", async () => {
    let now = 0;
    const { m, store } = manager({ maxAge: 1000, now: () => now });
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    const written = countWrites(store);
    now = 400;
    const r2 = await request(m, r.cookie, (s) => void s.session.a);
    assert.equal(written.count, 0);
    assert.deepEqual(r2.cookies, []);
    now = 600;
    const r3 = await request(m, r.cookie, (s) => void s.session.a);
    assert.equal(written.count, 1);
    assert.match(r3.cookies[0]!, /^sid=.*Max-Age=1;/);
  });

  test("a write keeps the expiry (no Set-Cookie) until half the idle window is gone, then renews", async () => {
    let now = 0;
    const { m, store } = manager({ maxAge: 10_000, now: () => now });
    let r = await request(m, null, (s) => void (s.session.n = 0));
    const id = r.state.id!;
    now = 4_000;
    r = await request(m, r.cookie, (s) => void (s.session.n = 1));
    assert.deepEqual(r.cookies, []);
    assert.equal(store.get(id)!.expiresAt, 10_000); // the browser's cookie ends then too
    assert.equal(store.get(id)!.data.n, 1);
    now = 6_000;
    r = await request(m, r.cookie, (s) => void (s.session.n = 2));
    assert.match(r.cookies[0]!, /^sid=.*Max-Age=10;/);
    assert.equal(store.get(id)!.expiresAt, 16_000);
    // a new maxAge renews at once, whatever remains
    now = 7_000;
    r = await request(m, r.cookie, (s) => void (s.session.maxAge = 60_000));
    assert.match(r.cookies[0]!, /^sid=.*Max-Age=60;/);
    assert.equal(store.get(id)!.expiresAt, 67_000);
    // and a session kept alive by writes alone never expires under its user
    for (let i = 0; i < 20; i++) {
      now += 20_000;
      r = await request(m, r.cookie, (s) => void (s.session.n = i));
      assert.equal(r.state.isNew, false);
    }
  });

  test("flash: visible on the next request, gone after it; reflash keeps it one more", async () => {
    const { m } = manager();
    let r = await request(m, null, (s) => {
      s.session.keep = 1;
      s.session.flash("msg", "hi");
    });
    r = await request(m, r.cookie, (s) => assert.equal(s.session.msg, "hi"));
    r = await request(m, r.cookie, (s) => assert.equal(s.session.msg, undefined));
    r = await request(m, r.cookie, (s) => s.session.flash("msg", "again"));
    r = await request(m, r.cookie, (s) => {
      assert.equal(s.session.msg, "again");
      s.session.reflash();
    });
    r = await request(m, r.cookie, (s) => assert.equal(s.session.msg, "again"));
    await request(m, r.cookie, (s) => assert.equal(s.session.msg, undefined));
  });

  test("reserved names cannot be overwritten and __proto__ stays a plain key", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      assert.throws(() => ((s.session as Record<string, unknown>).isNew = 1), TypeError);
      s.session["__proto__"] = { polluted: true };
    });
    await request(m, r.cookie, (s) => {
      assert.deepEqual(s.session["__proto__"], { polluted: true });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal((s.session as Record<string, unknown>).polluted, undefined);
    });
  });

  test("a failing store read never turns into an empty session saved over real data", async () => {
    const { m, store } = manager();
    const r = await request(m, null, (s) => {
      s.session.real = "data";
    });
    const get = store.get.bind(store);
    store.get = () => {
      throw new Error("down");
    };
    const state = m.open(r.cookie);
    assert.throws(() => state.session.real, { code: "ERR_STORE" });
    await m.commit(state);
    store.get = get;
    assert.deepEqual(await m.getById(r.state.id!), { real: "data" });
  });

  test("committing twice is a ResponseSentError", async () => {
    const { m } = manager();
    const s = m.open(null);
    await m.commit(s);
    await assert.rejects(m.commit(s), { code: "ERR_RESPONSE_SENT" });
  });
});

describe("the same Cookie header again (remembered once its cookies verified)", () => {
  test("opens the same session each time, a write included, and keeps reporting an old key's cookie as stale", async () => {
    const store = new MapStore();
    const before = createSessions({ store, keys: [OLD], logger: quiet });
    const r = await request(before, null, (s) => {
      s.session.n = 1;
    });
    const m = createSessions({ store, keys: [KEY, OLD], logger: quiet });
    for (let i = 0; i < 3; i++) {
      // The browser sends its old-key cookies again (as a tab that never got the response would).
      const again = await request(m, r.cookie, (s) => {
        assert.equal(s.id, r.state.id, `request ${i}`);
        assert.equal(s.clientId, r.state.clientId);
        s.session.n = (s.session.n as number) + 1;
      });
      // Re-signed with the current key, every time: the header is still the old one.
      assert.equal(again.cookies.length, 2, `request ${i}`);
      assert.notEqual(pairOf(again.cookie, "sid"), pairOf(r.cookie, "sid"));
    }
    assert.equal((await m.getById(r.state.id!))?.n, 4);
  });

  test("a cookie that fails is reported on every request that sends it", async () => {
    const reasons: string[] = [];
    const { m } = manager({ onInvalid: (reason) => reasons.push(reason) });
    const r = await request(m, null, (s) => {
      s.session.n = 1;
    });
    const forgedClient = `${pairOf(r.cookie, "sid")}; sid.cid=${generateUid()}.forged`;
    const forged = `sid=${generateUid()}.forged; ${pairOf(r.cookie, "sid.cid")}`;
    for (let i = 0; i < 3; i++) {
      const a = m.open(forgedClient);
      assert.equal(a.id, r.state.id, "the session cookie still opens its session");
      assert.equal(a.session.n, 1);
      const b = m.open(forged);
      assert.equal(b.id, undefined);
    }
    assert.deepEqual(reasons, [
      "client-signature",
      "signature",
      "client-signature",
      "signature",
      "client-signature",
      "signature",
    ]);
  });

  test("after a logout or a login, the header of before opens nothing", async () => {
    const { m } = manager();
    const login = await request(m, null, (s) => {
      s.session.user = "ada";
    });
    await request(m, login.cookie, () => {}); // remembered
    const regenerated = await request(m, login.cookie, async (s) => {
      await s.session.regenerate();
    });
    assert.notEqual(regenerated.state.id, login.state.id);
    const replay = m.open(login.cookie);
    assert.equal(replay.session.user, undefined, "the id before the login names no session");
    assert.notEqual(replay.id, login.state.id);
    await request(m, regenerated.cookie, () => {}); // remembered
    await request(m, regenerated.cookie, (s) => {
      s.destroyed = true;
    });
    const after = m.open(regenerated.cookie);
    assert.equal(after.session.user, undefined, "a destroyed session stays destroyed");
  });
});

describe("events", () => {
  function record(m: SessionManager): string[] {
    const log: string[] = [];
    m.on(
      "sessionSet",
      (e: SessionSetEvent) => log.push(`set new=${e.isNew} init=${e.isInit} cid=${!!e.clientId}`),
    );
    m.on(
      "sessionDestroy",
      (e: SessionDestroyEvent) => log.push(`destroy ${e.reason} cid=${!!e.clientId}`),
    );
    m.on("cleanup", (n: number) => log.push(`cleanup ${n}`));
    return log;
  }

  test("create → update → regenerate → destroy emit the exact sequence", async () => {
    const { m } = manager();
    const log = record(m);
    let r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    r = await request(m, r.cookie, (s) => {
      s.session.a = 2;
    });
    r = await request(m, r.cookie, (s) => s.session.regenerate());
    await request(m, r.cookie, (s) => {
      s.destroyed = true;
    });
    assert.deepEqual(log, [
      "set new=true init=true cid=true",
      "set new=false init=false cid=true",
      "destroy regenerate cid=true",
      "set new=true init=true cid=true",
      "destroy destroy cid=true",
    ]);
  });

  test("isInit: the first sessionSet of a session since the first listener was added", async () => {
    const { m } = manager();
    // Written while nobody listens: not tracked.
    let r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    const log = record(m);
    r = await request(m, r.cookie, (s) => {
      s.session.a = 2;
    });
    r = await request(m, r.cookie, (s) => {
      s.session.a = 3;
    });
    await request(m, null, (s) => {
      s.session.b = 1;
    });
    assert.deepEqual(log, [
      "set new=false init=true cid=true",
      "set new=false init=false cid=true",
      "set new=true init=true cid=true",
    ]);
  });

  test("cleanup removes expired sessions with a sessionDestroy each, then cleanup(count)", async () => {
    let now = 0;
    const { m, store } = manager({ maxAge: 1000, now: () => now });
    const log = record(m);
    await request(m, null, (s) => {
      s.session.a = 1;
    });
    await request(m, null, (s) => {
      s.session.a = 2;
    });
    log.length = 0;
    now = 5000;
    assert.equal(await m.cleanup(), 2);
    assert.deepEqual(log, ["destroy expired cid=true", "destroy expired cid=true", "cleanup 2"]);
    assert.equal(store.size, 0);
  });

  test("a session read after it expired is still reported by cleanup, with its client mapping", async () => {
    let now = 0;
    const store = new MapStore({ now: () => now });
    const m = createSessions({ store, keys: [KEY], maxAge: 1000, now: () => now, logger: quiet });
    const log = record(m);
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    now = 5000;
    await request(m, r.cookie, (s) => assert.equal(s.session.a, undefined, "expired: no data"));
    assert.equal(await m.getById(r.state.id!), undefined);
    log.length = 0;
    assert.equal(await m.cleanup(), 1);
    assert.deepEqual(log, ["destroy expired cid=true", "cleanup 1"]);
    assert.equal(await m.getSessionId(r.state.clientId!), undefined);
    assert.equal(store.size, 0, "the record and the cid: mapping are gone");
  });

  test("events cross instances through the store's publish/subscribe, flagged remote", async () => {
    // Two managers (two "instances") on one store whose publish reaches the other subscriber.
    const subscribers = new Set<(e: StoreEvent) => void>();
    class BusStore extends MapStore {
      subscribe(fn: (e: StoreEvent) => void): () => void {
        subscribers.add(fn);
        return () => subscribers.delete(fn);
      }
      publish(e: StoreEvent): void {
        for (const fn of subscribers) fn(structuredClone(e));
      }
    }
    const store = new BusStore();
    const a = createSessions({ store, keys: [KEY], logger: quiet });
    const b = createSessions({ store, keys: [KEY], logger: quiet });
    const seen: string[] = [];
    b.on("sessionSet", (e, origin) => seen.push(`set new=${e.isNew} ${e.remote} ${origin.remote}`));
    b.on("sessionDestroy", (e) => seen.push(`destroy ${e.reason} ${e.remote}`));
    b.on("cleanup", (n, origin) => seen.push(`cleanup ${n} ${origin.remote}`));
    const r = await request(a, null, (s) => {
      s.session.a = 1;
    });
    await request(a, r.cookie, (s) => s.session.regenerate());
    assert.equal(await b.destroyByClientId(r.state.clientId!), true);
    await a.cleanup();
    assert.deepEqual(seen, [
      "set new=true true true",
      "destroy regenerate true",
      "set new=true true true",
      "destroy destroy false",
      "cleanup 0 true",
    ]);
    a.close();
    b.close();
    assert.equal(subscribers.size, 0, "close() unsubscribes");
  });

  test("a remote event's client id that is not one of ours (not base64url) is dropped", () => {
    const { store, deliver } = remoteEvents();
    const m = createSessions({ store, keys: [KEY], logger: quiet });
    const seen: (string | undefined)[] = [];
    m.on("sessionSet", (e) => seen.push(e.clientId));
    m.on("sessionDestroy", (e) => seen.push(e.clientId));
    const event = { type: "sessionSet", sessionId: "s1", isNew: false, origin: "elsewhere" };
    deliver({ ...event, clientId: "s:s1" } as StoreEvent);
    deliver({ ...event, clientId: "" } as StoreEvent);
    deliver({ ...event, clientId: 42 } as unknown as StoreEvent);
    deliver({ ...event, clientId: "Q2xpZW50SWQtb2Ytb3Vycw" } as StoreEvent);
    deliver({ ...event, type: "sessionDestroy", clientId: "a b" } as unknown as StoreEvent);
    assert.deepEqual(seen, [undefined, undefined, undefined, "Q2xpZW50SWQtb2Ytb3Vycw", undefined]);
    m.close();
  });

  test("a failing publish is logged, never breaks the commit", async () => {
    const warnings: string[] = [];
    class FailingBus extends MapStore {
      subscribe(): () => void {
        return () => {};
      }
      publish(): Promise<void> {
        return Promise.reject(new Error("bus down"));
      }
    }
    const m = createSessions({
      store: new FailingBus(),
      keys: [KEY],
      logger: { warn: (w) => warnings.push(w) },
    });
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    assert.equal(r.cookies.length, 2);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.match(warnings.join("\n"), /publishing sessionSet failed: .*bus down/);
  });

  test("a throwing listener is reported, never breaks the commit", async () => {
    const warnings: string[] = [];
    const { m } = manager({ logger: { warn: (w) => warnings.push(w) } });
    m.on("sessionSet", () => {
      throw new Error("boom");
    });
    await request(m, null, (s) => {
      s.session.a = 1;
    });
    assert.equal(warnings.length, 1);
  });

  test("once, off, and unknown event names", () => {
    const { m } = manager();
    let n = 0;
    const fn = () => n++;
    m.once("cleanup", fn);
    m.on("cleanup", fn);
    m.off("cleanup", fn);
    assert.throws(() => m.on("nope" as never, fn), TypeError);
  });

  test("auto-cleanup starts once and stops", () => {
    const { m } = manager();
    assert.equal(m.startAutoCleanup(60_000), true);
    assert.equal(m.startAutoCleanup(), false);
    assert.equal(m.stopAutoCleanup(), true);
    assert.equal(m.stopAutoCleanup(), false);
  });
});

describe("lookups by id and client", () => {
  test("getSessionId follows the client's current session, also after regenerate", async () => {
    const { m } = manager();
    let r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    const clientId = r.state.clientId!;
    assert.equal(await m.getSessionId(clientId), r.state.id);
    r = await request(m, r.cookie, (s) => s.session.regenerate());
    assert.equal(r.state.clientId, clientId);
    assert.equal(await m.getSessionId(clientId), r.state.id);
    assert.deepEqual(await m.getByClientId(clientId), { a: 1 });
    assert.equal(await m.destroyByClientId(clientId), true);
    assert.equal(await m.getSessionId(clientId), undefined);
    assert.equal(await m.destroyByClientId(clientId), false);
  });

  test("a browser's first session has its client id as its id: no mapping record, found by client id until it ends", async () => {
    const { m, store } = manager();
    const keys = () => [...store.list()].map(([k]) => k);
    const r = await request(m, null, (s) => {
      assert.equal(m.sessionIdOf(s), s.clientId, "known as soon as it is asked for");
      s.session.a = 1;
    });
    const clientId = r.state.clientId!;
    assert.equal(r.state.id, clientId);
    assert.deepEqual(keys(), [clientId]);
    assert.equal(await m.getSessionId(clientId), clientId);
    assert.deepEqual(await m.getByClientId(clientId), { a: 1 });
    // The login: a new random id, and now a mapping names it.
    const login = await request(m, r.cookie, (s) => s.session.regenerate());
    const second = login.state.id!;
    assert.notEqual(second, clientId);
    // It ends as the client id, so that MapStore (in shards on Bun) keeps it next to its mapping.
    assert.equal(second.slice(-2), clientId.slice(-2));
    assert.equal(login.state.clientId, clientId);
    assert.deepEqual(keys().sort(), [second, `cid:${clientId}`].sort());
    assert.equal(await m.getSessionId(clientId), second);
    // The logout removes the mapping; the first session ended at the login: nothing is found.
    await request(m, login.cookie, (s) => void s.session.destroy());
    assert.deepEqual(keys(), []);
    assert.equal(await m.getSessionId(clientId), undefined);
    assert.equal(await m.getById(clientId), undefined);
    // The next session of this browser (its client id from the cookie) gets a new random id.
    const again = await request(m, login.cookie, (s) => void (s.session.b = 2));
    assert.notEqual(again.state.id, clientId);
    assert.equal(again.state.id!.slice(-2), clientId.slice(-2));
    assert.equal(await m.getSessionId(clientId), again.state.id);
  });

  test("with unsigned ids (signed: false) a first session gets its own id: a client-id cookie is never a session cookie", async () => {
    const { m, store } = manager({ signed: false });
    const r = await request(m, null, (s) => void (s.session.a = 1));
    assert.notEqual(r.state.id, r.state.clientId);
    assert.equal(r.state.id!.slice(-2), r.state.clientId!.slice(-2));
    assert.equal(store.size, 2);
    assert.equal(await m.getSessionId(r.state.clientId!), r.state.id);
  });

  test("a first session the browser lost its cookie for is not found by client id after the next session ends", async () => {
    const { m } = manager();
    const first = await request(m, null, (s) => void (s.session.user = "ada"));
    const clientId = first.state.clientId!;
    // The browser keeps its client-id cookie but loses the session cookie (a browser restart with
    // a browser-session cookie and client.maxAge set, say): its next session is another one.
    const cidOnly = pairOf(first.cookie, "sid.cid");
    const next = await request(m, cidOnly, (s) => void (s.session.guest = true));
    assert.notEqual(next.state.id, clientId);
    assert.equal(await m.getSessionId(clientId), next.state.id);
    await request(m, next.cookie, (s) => void s.session.destroy());
    assert.equal(await m.getSessionId(clientId), undefined, "not the older first session");
    assert.equal(await m.getByClientId(clientId), undefined);
    assert.deepEqual(await m.getById(clientId), { user: "ada" }, "which lives on, unlinked");
  });

  test("a first session a later one detached stays detached when its cookie comes back with the client id", async () => {
    const { m, store } = manager();
    const writes = countWrites(store);
    const events: SessionSetEvent[] = [];
    m.on("sessionSet", (e) => events.push(e));
    const first = await request(m, null, (s) => void (s.session.user = "ada"));
    const clientId = first.state.clientId!;
    const cidOnly = pairOf(first.cookie, "sid.cid");
    const next = await request(m, cidOnly, (s) => void (s.session.guest = true)); // cookie lost
    // A request that still carries the first session's cookie (sent before the loss, say) and
    // the client id: it uses that session, which stays detached, read or written.
    const both = `${pairOf(first.cookie, "sid")}; ${cidOnly}`;
    const before = { writes: writes.count, events: events.length };
    const read = await request(m, both, (s) => void s.session.user);
    assert.equal(read.state.id, clientId);
    assert.deepEqual(read.cookies, [], "nothing sent");
    assert.equal(writes.count, before.writes, "nothing written");
    assert.equal(events.length, before.events, "no event");
    await request(m, both, (s) => void (s.session.n = 1));
    assert.equal(events.length, before.events + 1);
    assert.deepEqual(
      [events.at(-1)!.sessionId, events.at(-1)!.clientId],
      [clientId, undefined],
      "the write's event names no client: the session is not the browser's",
    );
    assert.equal(await m.getSessionId(clientId), next.state.id);
    await request(m, next.cookie, (s) => void s.session.destroy());
    assert.equal(await m.getSessionId(clientId), undefined, "not the older first session");
    assert.equal(await m.getByClientId(clientId), undefined);
    assert.deepEqual(await m.getById(clientId), { user: "ada", n: 1 }, "which lives on, unlinked");
  });

  test("unsigned ids: a login that rotates the client id still gives the session an id of its own", async () => {
    const m = createSessions({
      store: new MapStore(),
      signed: false,
      client: { rotateOnRegenerate: true },
      logger: quiet,
    });
    const first = await request(m, null, (s) => void (s.session.a = 1));
    assert.notEqual(first.state.id, first.state.clientId, "as without rotation (see open())");
    const login = await request(m, first.cookie, async (s) => {
      await s.session.regenerate();
      s.session.user = "ada";
    });
    assert.notEqual(login.state.clientId, first.state.clientId, "rotated");
    assert.notEqual(
      login.state.id,
      login.state.clientId,
      "the cookie is the id itself: never the client id",
    );
    assert.equal(await m.getSessionId(login.state.clientId!), login.state.id);
  });

  test("a session keeps its client id over another valid one the browser sends, and re-sends its cookie", async () => {
    const { m } = manager();
    const victim = await request(m, null, (s) => void (s.session.user = "ada"));
    const own = victim.state.clientId!;
    const attacker = await request(m, null, () => {}); // a client-id cookie of the attacker's
    const planted = pairOf(attacker.cookie, "sid.cid");
    const plantedId = m.readCookies(planted).clientId!;
    const sid = pairOf(victim.cookie, "sid");
    const r = await request(m, `${planted}; ${sid}`, (s) => void (s.session.n = 1));
    assert.equal(r.state.clientId, own);
    assert.equal(m.readCookies(r.cookie).clientId, own, "the session's client-id cookie again");
    assert.equal(await m.getSessionId(plantedId), undefined);
    assert.equal(await m.getSessionId(own), victim.state.id);
  });

  test("clientIdOf reads the session first: the session's own client id even before its data is used", async () => {
    const { m } = manager();
    const victim = await request(m, null, (s) => void (s.session.user = "ada"));
    const attacker = await request(m, null, () => {});
    const planted = pairOf(attacker.cookie, "sid.cid");
    const sid = pairOf(victim.cookie, "sid");
    const state = m.open(`${planted}; ${sid}`);
    await m.prepare(state); // MapStore: still not read (lazy)
    assert.equal(m.clientIdOf(state), victim.state.clientId);
    const fresh = m.open(null);
    await m.prepare(fresh);
    assert.equal(m.clientIdOf(fresh), fresh.clientId, "no session cookie: the one made now");
    const sealed = createSessions({ keys: [KEY], logger: quiet });
    const stateless = sealed.open(null);
    await sealed.prepare(stateless);
    assert.equal(sealed.clientIdOf(stateless), undefined, "sealed mode has no client id");
  });

  test("linking a later session leaves an expired first session alone (no write with a TTL below zero)", async () => {
    let now = 1_000_000;
    const records = new Map<string, StoredRecord>();
    const ttls: [string, number][] = [];
    const m = createSessions({
      // A store without update() that keeps records past their expiry and refuses a TTL ≤ 0.
      store: {
        get: (id: string) => records.get(id),
        set: (id: string, rec: StoredRecord, ttl: number) => {
          if (!(ttl > 0)) throw new Error("ERR invalid expire time");
          ttls.push([id, ttl]);
          records.set(id, rec);
        },
        delete: (id: string) => void records.delete(id),
      },
      keys: [KEY],
      now: () => now,
      maxAge: 1000,
      logger: quiet,
    });
    const first = await request(m, null, (s) => void (s.session.a = 1));
    const clientId = first.state.clientId!;
    now += 5000; // the first session idled out; the browser comes back with its client id
    const cidOnly = pairOf(first.cookie, "sid.cid");
    ttls.length = 0;
    const next = await request(m, cidOnly, (s) => void (s.session.b = 2));
    assert.notEqual(next.state.id, clientId);
    assert.deepEqual(ttls.map(([id]) => id).sort(), [next.state.id, `cid:${clientId}`].sort());
    assert.equal(await m.getSessionId(clientId), next.state.id);
  });

  test("a browser-session client-id cookie also under dynamic cookie options", async () => {
    const { m } = manager({ cookie: () => ({ persistent: false }) });
    const r = await request(m, null, (s) => void (s.session.a = 1));
    assert.deepEqual(r.cookies.map((c) => /Max-Age/.test(c)), [false, false]);
    const given = manager({ cookie: () => ({ persistent: false }), client: { maxAge: 60_000 } });
    const g = await request(given.m, null, (s) => void (s.session.a = 1));
    assert.deepEqual(g.cookies.map((c) => /Max-Age=(\d+)/.exec(c)?.[1]), [undefined, "60"]);
  });

  test("a new client id is a session id once: an id asked for, then regenerate(), gives a random one", async () => {
    const { m, store } = manager();
    const r = await request(m, null, async (s) => {
      assert.equal(m.sessionIdOf(s), s.clientId);
      await s.session.regenerate();
      s.session.user = "ada";
    });
    assert.notEqual(r.state.id, r.state.clientId);
    assert.equal(await m.getSessionId(r.state.clientId!), r.state.id);
    assert.equal(store.size, 2, "the session and its client mapping");
  });

  test("a browser that visited before (its client id from the cookie) gets a random session id and a mapping", async () => {
    const { m, store } = manager();
    const visit = await request(m, null, () => {});
    assert.equal(store.size, 0);
    const r = await request(m, visit.cookie, (s) => void (s.session.a = 1));
    assert.notEqual(r.state.id, r.state.clientId);
    assert.equal(await m.getSessionId(r.state.clientId!), r.state.id);
    assert.equal(store.size, 2);
  });

  test("an expired first session is found by client id no more; cleanup reads no mapping for it", async () => {
    let now = 1_000_000;
    const { m, store } = manager({ now: () => now, maxAge: 1000 });
    const r = await request(m, null, (s) => void (s.session.a = 1));
    const clientId = r.state.clientId!;
    const events: unknown[] = [];
    m.on("sessionDestroy", (e) => events.push([e.sessionId, e.clientId, e.reason]));
    const reads: string[] = [];
    const get = store.get.bind(store);
    store.get = (id) => (reads.push(id), get(id));
    now += 1001;
    assert.equal(await m.getSessionId(clientId), undefined);
    reads.length = 0;
    assert.equal(await m.cleanup(), 1);
    assert.deepEqual(reads, []);
    assert.deepEqual(events, [[clientId, clientId, "expired"]]);
    assert.equal(store.size, 0);
  });

  test("getSessionId does not take a record without that client id for a first session", async () => {
    const { m } = manager();
    const visit = await request(m, null, () => {});
    const r = await request(m, visit.cookie, (s) => void (s.session.a = 1));
    // A session id given as a client id: that session's client id is another one.
    assert.equal(await m.getSessionId(r.state.id!), undefined);
    assert.equal(await m.getSessionId(`cid:${r.state.clientId}`), undefined);
  });

  test("setById replaces data and refuses to create; setByClientId throws without mapping", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    assert.equal(await m.setById(r.state.id!, { b: 2 }), true);
    assert.deepEqual(await m.getById(r.state.id!), { b: 2 });
    await assert.rejects(m.setById("missing", { a: 1 }), SessionMissingError);
    await assert.rejects(m.setByClientId("missing", { a: 1 }), { code: "ERR_SESSION_MISSING" });
  });

  test("update(): what fn throws comes back as it is (not a StoreError) and nothing is written; an async fn is a TypeError", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => void (s.session.n = 1));
    const id = r.state.id!;
    const mine = new RangeError("my bug");
    await assert.rejects(
      m.update(id, () => {
        throw mine;
      }),
      (err) => err === mine,
    );
    await assert.rejects(
      m.update(id, (async () => {}) as unknown as (d: SessionData) => void),
      (err) => err instanceof TypeError && /must be synchronous/.test((err as Error).message),
    );
    assert.deepEqual(await m.getById(id), { n: 1 });
    // a store that fails is still a StoreError
    const broken = createSessions({
      store: {
        synchronous: true,
        get: () => ({ data: {}, expiresAt: Date.now() + 60_000, createdAt: Date.now() }),
        set() {},
        delete() {},
        update() {
          throw new Error("disk gone");
        },
      },
      keys: [KEY],
      logger: quiet,
    });
    await assert.rejects(broken.update("an-id-of-24-characters!!", () => {}), StoreError);
  });

  test("update(): neither the draft fn kept nor the data returned reaches a store that keeps objects", async () => {
    // A store that keeps the records it is given, by reference (no serialisation).
    const records = new Map<string, StoredRecord>();
    const m = createSessions({
      store: {
        get: (id: string) => records.get(id),
        set: (id: string, rec: StoredRecord) => void records.set(id, rec),
        delete: (id: string) => void records.delete(id),
      },
      keys: [KEY],
      logger: quiet,
    });
    const r = await request(m, null, (s) => void (s.session.n = 1));
    const id = r.state.id!;
    let kept: SessionData | undefined;
    const returned = await m.update(id, (d) => {
      d.n = 2;
      kept = d;
    });
    kept!.injected = true;
    returned!.injected = true;
    assert.deepEqual(records.get(id)?.data, { n: 2 });
  });

  test("update() is exact under 1,000 concurrent increments and null destroys", async () => {
    const { m } = manager();
    const r = await request(m, null, (s) => {
      s.session.n = 0;
    });
    const id = r.state.id!;
    await Promise.all(
      Array.from({ length: 1000 }, () => m.update(id, (d) => void (d.n = (d.n as number) + 1))),
    );
    assert.equal((await m.getById(id))?.n, 1000);
    assert.equal(await m.update("missing", () => {}), undefined);
    assert.equal(await m.update(id, () => null), undefined);
    assert.equal(await m.getById(id), undefined);
  });

  test("readCookies verifies without creating anything", async () => {
    const { m, store } = manager();
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    assert.deepEqual(m.readCookies(r.cookie), {
      sessionId: r.state.id,
      clientId: r.state.clientId,
    });
    assert.deepEqual(m.readCookies("sid=forged.x"), {});
    assert.equal(store.size, 1);
  });

  test("readCookies reports invalid cookies to onInvalid, with the context", () => {
    const reasons: unknown[] = [];
    const { m } = manager({ onInvalid: (reason, ctx) => reasons.push([reason, ctx]) });
    assert.deepEqual(m.readCookies("sid=forged.x; sid.cid=bad", "handshake"), {});
    assert.deepEqual(reasons, [["signature", "handshake"], ["client-signature", "handshake"]]);
  });

  test("touchById keeps a session alive by the rolling rule, and reports missing ones", async () => {
    const { clock, m, r, id, expiry } = await rollingSession({ a: 1 });
    clock.now = 400;
    assert.equal(await m.touchById(id), true);
    assert.equal(expiry(), 1000, "more than half remains: no write");
    clock.now = 600;
    assert.equal(await m.touchById(id), true);
    assert.equal(expiry(), 1600, "renewed");
    assert.equal(await m.touchById(id, { force: true }), true);
    clock.now = 1500;
    await request(m, r.cookie, (s) => assert.equal(s.session.a, 1, "alive past the first window"));
    clock.now = 5000;
    assert.equal(await m.touchById(id), false, "expired");
    assert.equal(await m.touchById("unknown"), false);
  });

  test("writes by id renew the idle window by the rolling rule, as HTTP writes do", async () => {
    const { clock, m, id, expiry } = await rollingSession({ n: 0 });
    clock.now = 400;
    await m.update(id, (d) => void (d.n = 1));
    assert.equal(expiry(), 1000, "update: more than half remains, the expiry stays");
    await m.setById(id, { n: 2 });
    assert.equal(expiry(), 1000, "setById: the same");
    clock.now = 600;
    await m.update(id, (d) => void (d.n = 3));
    assert.equal(expiry(), 1600, "update: renewed once less than half remains");
    clock.now = 700;
    await m.setById(id, { n: 4 }, 5000);
    assert.equal(expiry(), 5700, "setById with a new maxAge: renewed with it");
    clock.now = 1200;
    await m.setById(id, { n: 5 });
    assert.equal(expiry(), 5700, "its window is the new maxAge");
    assert.deepEqual(await m.getById(id), { n: 5 });
  });
});

describe("sealed mode", () => {
  test("round trip, changes, destroy, and read-only lookups by id", async () => {
    const m = createSessions({ keys: [KEY], logger: quiet });
    let r = await request(m, null, (s) => {
      s.session.a = { b: [1] };
    });
    assert.match(r.cookie, /^sid=Fe26\.2\*/);
    r = await request(m, r.cookie, (s) => {
      (s.session.a as { b: number[] }).b.push(2);
    });
    r = await request(m, r.cookie, (s) => assert.deepEqual(s.session.a, { b: [1, 2] }));
    await assert.rejects(m.getById("x"), TypeError);
    const d = await request(m, r.cookie, (s) => {
      s.destroyed = true;
    });
    assert.match(d.cookies[0]!, /^sid=; Max-Age=0/);
  });

  test("a cookie sent again (remembered unsealed) gives each request its own copy, keeps its key's age, and stays checked", async () => {
    const OLD = "o".repeat(32);
    const old = createSessions({ keys: [OLD], logger: quiet });
    const { cookie } = await request(old, null, (s) => {
      s.session.cart = { items: ["apple"] };
    });
    const m = createSessions({ keys: [KEY, OLD], logger: quiet });
    for (let i = 0; i < 3; i++) {
      const state = m.open(cookie);
      await m.prepare(state);
      assert.deepEqual(state.session.cart, { items: ["apple"] }, `request ${i}`);
      assert.equal(state.stale, true, "sealed with the old key: re-issued every time");
      // A change that is never committed must not reach the next request's copy.
      (state.session.cart as { items: string[] }).items.push("stolen");
    }
    // The same cookie with one character changed is still refused (no cache hit).
    const value = cookie.slice("sid=".length);
    const flipped = value.slice(0, -3) + (value.at(-3) === "A" ? "B" : "A") + value.slice(-2);
    const reasons: string[] = [];
    const strict = createSessions({
      keys: [KEY, OLD],
      logger: quiet,
      onInvalid: (reason) => reasons.push(reason),
    });
    await request(strict, cookie, () => {}); // remembered by this manager
    const tampered = strict.open(`sid=${flipped}`);
    await strict.prepare(tampered);
    assert.equal(tampered.isNew, true);
    assert.deepEqual(reasons, ["sealed"]);
  });

  test("the cookie a write just sealed opens on the next request without decrypting it; a cookie of another manager still does", async () => {
    // Counted in both AES implementations (node:crypto where the runtime has it, Web Crypto).
    let decrypted = 0;
    const backends = [webCryptoAes, findNodeCryptoAes()].filter((b) => b !== undefined);
    const originals = backends.map((b) => b.decrypt);
    backends.forEach((b, i) => {
      b.decrypt = (...args) => {
        decrypted++;
        return originals[i]!(...args);
      };
    });
    try {
      const m = createSessions({ keys: [KEY], logger: quiet });
      let { cookie } = await request(m, null, (s) => {
        s.session.n = 1;
      });
      for (let i = 2; i <= 4; i++) {
        ({ cookie } = await request(m, cookie, (s) => {
          assert.equal(s.session.n, i - 1);
          s.session.n = i;
        }));
      }
      assert.equal(decrypted, 0, "each cookie was sealed by this manager");
      const other = createSessions({ keys: [KEY], logger: quiet }); // another instance
      await request(other, cookie, (s) => assert.equal(s.session.n, 4));
      assert.equal(decrypted, 1);
    } finally {
      backends.forEach((b, i) => (b.decrypt = originals[i]!));
    }
  });

  test("a cookie over 4096 bytes is a CookieTooLargeError before anything is sent", async () => {
    const m = createSessions({ keys: [KEY], logger: quiet });
    const s = m.open(null);
    s.session.big = "x".repeat(5000);
    await assert.rejects(m.commit(s), { code: "ERR_COOKIE_TOO_LARGE" });
  });
});

describe("diagnostics", () => {
  test("debug: true logs each session decision, with ids only as a salted hash", async () => {
    const lines: string[] = [];
    const { m } = manager({ debug: true, logger: { warn() {}, debug: (l) => lines.push(l) } });
    const r = await request(m, null, (s) => {
      s.session.a = 1;
    });
    await request(m, r.cookie, (s) => void s.session.a);
    await request(m, r.cookie, (s) => {
      s.session.a = 2;
    });
    await request(m, r.cookie, (s) => {
      s.destroyed = true;
    });
    await request(m, "sid=forged.x", () => {});
    const tag = /created session ([0-9a-f]{8})/.exec(lines.join("\n"))?.[1];
    assert.ok(tag, lines.join("\n"));
    assert.deepEqual(lines, [
      `unisession: created session ${tag}`,
      `unisession: session ${tag} unchanged: no write`,
      `unisession: saved session ${tag}: 1 changed key(s)`,
      `unisession: session ${tag} ended (destroy)`,
      "unisession: no session (signature)",
    ]);
    const secrets = [
      r.state.id!,
      r.state.clientId!,
      ...r.cookie.split("; ").map((c) => c.split("=")[1]!),
    ];
    for (const secret of secrets) {
      assert.ok(!lines.some((l) => l.includes(secret)), "no id or cookie value in debug lines");
    }
  });

  test("NODE_ENV=production with secure: false is warned about at start-up", () => {
    const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process!
      .env;
    const before = env.NODE_ENV;
    const warnings: string[] = [];
    try {
      env.NODE_ENV = "production";
      manager({ cookie: { secure: false }, logger: { warn: (w) => warnings.push(w) } });
      manager({ logger: { warn: (w) => warnings.push(w) } });
    } finally {
      if (before === undefined) delete env.NODE_ENV;
      else env.NODE_ENV = before;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /secure: false/);
  });
});

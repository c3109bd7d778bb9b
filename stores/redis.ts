/**
 * A Redis session store on an [ioredis](https://github.com/redis/ioredis) client you already
 * have: records as JSON strings with Redis expiry, an atomic `update()` (compare-and-set Lua
 * script), `list()` through `SCAN`, a user → sessions index written by the same scripts, and
 * cross-instance events through Redis pub/sub.
 *
 * @example Usage
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { createSessions } from "unisession";
 * import { RedisStore } from "unisession/redis";
 *
 * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL!) });
 * const sessions = createSessions({ store, keys: [process.env.SESSION_KEY!] });
 * // on shutdown: sessions.close(); await store.close();
 * ```
 *
 * @module
 */
import type { Redis } from "ioredis";
import { sha1 } from "@noble/hashes/legacy.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { describeError, SessionSerializationError, StoreError } from "../src/errors.ts";
import { KeyedQueue } from "../src/keyed_queue.ts";
import { backoff } from "./retry.ts";

export type { Awaitable, RecordMutator, Store, StoredRecord, StoreEvent } from "../src/store.ts";
import {
  isStoredRecord,
  type RecordMutator,
  type Store,
  type StoredRecord,
  type StoreEvent,
} from "../src/store.ts";

/** Options of {@linkcode RedisStore}. */
export interface RedisStoreOptions {
  /** The ioredis client for every command. Yours: {@linkcode RedisStore.close} leaves it open. */
  client: Redis;
  /**
   * Prefix of every key the store writes. Default `"unisession:"`. Use this rather than
   * ioredis's `keyPrefix` option, which does not apply to the `SCAN` pattern of `list()`.
   */
  prefix?: string;
  /**
   * A connection for `SUBSCRIBE` (a subscribed connection can run no other command). Default:
   * `client.duplicate()`, created on the first `subscribe()` and closed by `close()`; one you
   * pass stays open.
   */
  subscriber?: Redis;
  /** The pub/sub channel of cross-instance events. Default `${prefix}events`. */
  channel?: string;
  /** Attempts of one `update()` against concurrent writers in other processes. Default 50. */
  maxAttempts?: number;
  /** `COUNT` hint of each `SCAN` step of `list()`. Default 200. */
  scanCount?: number;
  /** Background failures (subscriber connection, undecodable events). Default: `console.warn`. */
  onError?: (error: unknown) => void;
}

/**
 * Writes a record and its user index entries in one atomic step. KEYS[1] is the record; then, as
 * ARGV[6] lists them, `o` the index of the user the record leaves and `n` the index of its user.
 * ARGV[1] `1`: compare-and-set, write only if the record still holds exactly ARGV[2] (the value
 * the caller read); `0`: write in any case. ARGV[3] is the new value, ARGV[4] its time to live in
 * ms (> 0 PX, 0 deletes the record: it is already expired, -1 keeps it without expiry), ARGV[5]
 * the session id. An index is a sorted set of session ids scored by their `expiresAt` (ARGV[7]);
 * each write also drops the entries scored below ARGV[8] (expired, with a margin for clock skew
 * between app servers) and keeps the set alive as long as its longest-lived session.
 *
 * Why a script and not WATCH/MULTI: WATCH is state of the connection, and the client is shared
 * (ioredis multiplexes every caller over one socket), so two concurrent WATCH/MULTI/EXEC
 * transactions would watch and UNWATCH each other's keys; they would need a connection each.
 * The script runs atomically on the server over the shared connection, and the mutator stays
 * plain JavaScript: read, mutate, CAS, retry. Without user index entries it touches one key
 * (fine for Redis Cluster); with them, on a Cluster, put a hash tag in the prefix (`{sess}:`) so
 * that a record and its index share a slot.
 */
const WRITE_SCRIPT = `if ARGV[1] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
elseif ttl == 0 then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[3]) end
local k = 2
if string.find(ARGV[6], 'o', 1, true) then
  redis.call('ZREM', KEYS[k], ARGV[5])
  k = k + 1
end
if string.find(ARGV[6], 'n', 1, true) then
  local index = KEYS[k]
  if ttl == 0 then
    redis.call('ZREM', index, ARGV[5])
  else
    local fresh = redis.call('EXISTS', index) == 0
    redis.call('ZADD', index, ARGV[7], ARGV[5])
    redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[8])
    if ttl < 0 then
      redis.call('PERSIST', index)
    else
      local left = redis.call('PTTL', index)
      if fresh or (left >= 0 and left < ttl) then redis.call('PEXPIRE', index, ttl) end
    end
  end
end
return 1`;

/**
 * Drops session id ARGV[1] from the user index KEYS[2] if its record KEYS[1] is still what the
 * caller read: missing (ARGV[2] `1`) or exactly ARGV[3] (a record of another user).
 */
const PRUNE_SCRIPT = `local cur = redis.call('GET', KEYS[1])
if (ARGV[2] == '1' and not cur) or (ARGV[2] == '0' and cur == ARGV[3]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0`;

/** Index entries stay this long past their `expiresAt` (clock skew between app servers). */
const INDEX_SKEW_MS = 60_000;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({
  source,
  sha: bytesToHex(sha1(utf8ToBytes(source))),
});
const WRITE = script(WRITE_SCRIPT);
const PRUNE = script(PRUNE_SCRIPT);

/**
 * A {@linkcode Store} on Redis through an ioredis client. Every capability is there:
 * - records are JSON strings under `prefix + id`, expiring through Redis (`PX`) after `ttlMs`
 *   (`set`) or at the record's `expiresAt` (`update`);
 * - `update()` is atomic across processes: reads, runs the mutator, then writes with a
 *   compare-and-set script (EVALSHA, EVAL when the server lost the script), retrying on a
 *   concurrent write; updates of one id through one store instance queue up in-process first,
 *   so retries only happen between processes;
 * - `list()` walks the keys with `SCAN` (never `KEYS`), for `sessions.cleanup()`;
 * - `listUser()` (the manager's `identify` option): a sorted set per user at
 *   `prefix + "user:" + userId`, written by the same script as the record (a record naming a
 *   user is never stored without its index entry); entries of expired or deleted sessions are
 *   dropped by `delete()`, by later writes to the index and by `listUser()` itself;
 * - `subscribe()`/`publish()` carry session events between instances over pub/sub.
 *
 * A value that is not a JSON record (written by something else) is returned as it is: the
 * session manager treats it as "no session". When Redis is unreachable the client's commands
 * fail or wait; the manager's `storeTimeout` turns either into a `StoreError`.
 *
 * @example Usage
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { createSessions } from "unisession";
 * import { RedisStore } from "unisession/redis";
 *
 * const client = new Redis("redis://127.0.0.1:6379");
 * const store = new RedisStore({ client, prefix: "myapp:sess:" });
 * const sessions = createSessions({ store, keys: ["a-secret-of-at-least-32-characters!!"] });
 * sessions.on("sessionDestroy", ({ sessionId, remote }) => console.log(sessionId, remote));
 *
 * sessions.close();
 * await store.close();
 * client.disconnect();
 * ```
 */
export class RedisStore implements Store {
  /** The key prefix. */
  readonly prefix: string;
  /** The pub/sub channel of events. */
  readonly channel: string;
  readonly #client: Redis;
  readonly #maxAttempts: number;
  readonly #scanCount: number;
  readonly #onError: (error: unknown) => void;
  readonly #queue = new KeyedQueue();
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  #subscriber: Redis | undefined;
  readonly #ownsSubscriber: boolean;
  #closed = false;

  /**
   * Creates the store; no command is sent until it is used.
   * @param options the client and the optional settings of {@linkcode RedisStoreOptions}
   */
  constructor(options: RedisStoreOptions) {
    const { client } = options;
    if (!client || typeof client.get !== "function" || typeof client.duplicate !== "function") {
      throw new TypeError("Cannot create RedisStore: options.client must be an ioredis client");
    }
    this.#client = client;
    this.prefix = options.prefix ?? "unisession:";
    this.channel = options.channel ?? `${this.prefix}events`;
    this.#maxAttempts = positiveInt(options.maxAttempts ?? 50, "maxAttempts");
    this.#scanCount = positiveInt(options.scanCount ?? 200, "scanCount");
    this.#onError = options.onError ??
      ((err) => console.warn(`unisession: RedisStore: ${describeError(err)}`));
    this.#subscriber = options.subscriber;
    this.#ownsSubscriber = options.subscriber === undefined;
  }

  /** Reads a record: the parsed JSON, or the raw string when it is not JSON. */
  async get(id: string): Promise<StoredRecord | undefined> {
    const raw = await this.#client.get(this.prefix + id);
    return raw === null ? undefined : parse(raw) as StoredRecord;
  }

  /**
   * Writes a record that expires after `ttlMs` (a `ttlMs` ≤ 0 deletes it: it already expired);
   * a record naming a user is added to the user's index in the same script.
   */
  async set(id: string, record: StoredRecord, ttlMs: number): Promise<void> {
    const key = this.prefix + id;
    const json = stringify(record);
    const px = ttlArg(ttlMs);
    if (typeof record.user === "string") {
      await this.#write([key, this.#userKey(record.user)], false, "", json, px, id, "n", record);
    } else if (px === 0) await this.#client.del(key);
    else if (px < 0) await this.#client.set(key, json);
    else await this.#client.set(key, json, "PX", px);
  }

  /** Removes a record, and its entry in its user's index in the same script. */
  async delete(id: string): Promise<void> {
    const key = this.prefix + id;
    const raw = await this.#client.get(key);
    const user = raw === null ? undefined : userOf(parse(raw));
    if (user === undefined) await this.#client.del(key);
    else await this.#write([key, this.#userKey(user)], false, "", "", 0, id, "o");
  }

  /**
   * The records of a user's sessions (`ZRANGE` of the index + `MGET` of the records):
   * O(sessions of the user). Entries whose record is gone (expired, deleted) or names another
   * user are dropped from the index.
   */
  async listUser(userId: string): Promise<[string, StoredRecord][]> {
    const index = this.#userKey(userId);
    const ids = await this.#client.zrange(index, "0", "-1");
    if (ids.length === 0) return [];
    const values = await this.#client.mget(...ids.map((id) => this.prefix + id));
    const found: [string, StoredRecord][] = [];
    const pruned: Promise<unknown>[] = [];
    ids.forEach((id, i) => {
      const raw = values[i] ?? null;
      const rec = raw === null ? undefined : parse(raw);
      if (isStoredRecord(rec) && rec.user === userId) found.push([id, rec]);
      else {
        const args = [id, raw === null ? "1" : "0", raw ?? ""];
        pruned.push(this.#eval(PRUNE, [this.prefix + id, index], args));
      }
    });
    await Promise.all(pruned);
    return found;
  }

  /**
   * Atomic read-modify-write across processes (see the class notes); the written record lives
   * until its `expiresAt`.
   * @throws {StoreError} when other writers won {@linkcode RedisStoreOptions.maxAttempts} times
   */
  update(id: string, mutate: RecordMutator): Promise<StoredRecord | undefined> {
    const key = this.prefix + id;
    return this.#queue.run(key, async () => {
      for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
        const raw = await this.#client.get(key);
        if (raw === null) return undefined;
        const current = parse(raw);
        if (!isStoredRecord(current)) return undefined;
        const next = mutate(current);
        if (!next) return undefined;
        const json = stringify(next);
        const keys = [key];
        let indexes = "";
        const before = userOf(current);
        const after = userOf(next);
        if (before !== undefined && before !== after) {
          keys.push(this.#userKey(before));
          indexes += "o";
        }
        if (after !== undefined) {
          keys.push(this.#userKey(after));
          indexes += "n";
        }
        const ttl = ttlArg(next.expiresAt - Date.now());
        if (await this.#write(keys, true, raw, json, ttl, id, indexes, next)) {
          return JSON.parse(json) as StoredRecord;
        }
        await backoff(attempt);
      }
      throw new StoreError(
        `Cannot update session: ${this.#maxAttempts} attempts lost to concurrent writers`,
      );
    });
  }

  /** Every record under the prefix (`SCAN` + `MGET`), expired ones already gone. */
  async *list(): AsyncIterable<[string, StoredRecord]> {
    const match = `${escapeGlob(this.prefix)}*`;
    let cursor = "0";
    do {
      const [nextCursor, keys] = await this.#client.scan(
        cursor,
        "MATCH",
        match,
        "COUNT",
        this.#scanCount,
      );
      cursor = nextCursor;
      if (keys.length === 0) continue;
      const values = await this.#client.mget(...keys);
      for (let i = 0; i < keys.length; i++) {
        const raw = values[i];
        if (typeof raw === "string") {
          yield [keys[i]!.slice(this.prefix.length), parse(raw) as StoredRecord];
        }
      }
    } while (cursor !== "0");
  }

  /** Publishes an event on the channel, to every subscribed instance (this one included). */
  async publish(event: StoreEvent): Promise<void> {
    await this.#client.publish(this.channel, JSON.stringify(event));
  }

  /**
   * Calls `onEvent` for every event published on the channel. The first subscription opens the
   * subscriber connection; the returned function unsubscribes.
   */
  subscribe(onEvent: (event: StoreEvent) => void): () => void {
    if (this.#closed) throw new StoreError("Cannot subscribe: the RedisStore is closed");
    const first = this.#listeners.size === 0;
    this.#listeners.add(onEvent);
    if (first) {
      const sub = this.#subscriber ??= this.#openSubscriber();
      sub.on("message", this.#onMessage);
      // SUBSCRIBE on every (re)connection, and now if connected: a client without an offline
      // queue (`enableOfflineQueue: false`, which the README recommends) refuses commands while
      // it connects, and ioredis re-subscribes only what it once subscribed. Subscribing twice to
      // a channel is harmless.
      sub.on("ready", this.#onReady);
      if (sub.status === "ready") this.#onReady();
      // A client made with lazyConnect waits for a first command: none comes but this one.
      else if (sub.status === "wait") sub.connect().catch(this.#onError);
    }
    return () => {
      if (!this.#listeners.delete(onEvent) || this.#listeners.size > 0) return;
      this.#stopListening();
    };
  }

  /**
   * Stops the subscription and closes the subscriber connection the store opened itself. The
   * `client` (and a `subscriber` you passed) stay open: they are yours.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const had = this.#listeners.size > 0;
    this.#listeners.clear();
    if (had) this.#stopListening();
    const sub = this.#subscriber;
    if (sub && this.#ownsSubscriber) {
      this.#subscriber = undefined;
      // QUIT when connected; a connection that is down (reconnecting) would queue it: drop it.
      if (sub.status === "ready") await sub.quit().catch(() => sub.disconnect());
      else sub.disconnect();
    }
  }

  #openSubscriber(): Redis {
    const sub = this.#client.duplicate();
    sub.on("error", this.#onError);
    return sub;
  }

  #stopListening(): void {
    const sub = this.#subscriber;
    if (!sub) return;
    sub.off("message", this.#onMessage);
    sub.off("ready", this.#onReady);
    if (sub.status === "ready") sub.unsubscribe(this.channel).catch(this.#onError);
  }

  readonly #onReady = (): void => {
    if (this.#listeners.size > 0) this.#subscriber?.subscribe(this.channel).catch(this.#onError);
  };

  readonly #onMessage = (channel: string, message: string): void => {
    if (channel !== this.channel) return;
    let event: unknown;
    try {
      event = JSON.parse(message);
    } catch (err) {
      this.#onError(err);
      return;
    }
    if (!event || typeof event !== "object" || typeof (event as StoreEvent).type !== "string") {
      return;
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(event as StoreEvent);
      } catch (err) {
        this.#onError(err);
      }
    }
  };

  /** Runs {@linkcode WRITE_SCRIPT}; false when the compare-and-set lost. */
  async #write(
    keys: string[],
    compare: boolean,
    expected: string,
    value: string,
    ttl: number,
    id: string,
    indexes: string,
    record?: StoredRecord,
  ): Promise<boolean> {
    const args = [
      compare ? "1" : "0",
      expected,
      value,
      String(ttl),
      id,
      indexes,
      String(record?.expiresAt ?? 0),
      String(Date.now() - INDEX_SKEW_MS),
    ];
    return await this.#eval(WRITE, keys, args) === 1;
  }

  /** EVALSHA, then EVAL when the server does not have the script (yet, or any more). */
  async #eval(s: Script, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error)?.message).startsWith("NOSCRIPT")) throw err;
      return await this.#client.eval(s.source, keys.length, ...keys, ...args);
    }
  }

  /** The key of a user's index. */
  #userKey(userId: string): string {
    return `${this.prefix}user:${userId}`;
  }
}

/** The user a stored value names, if it is a record that names one. */
function userOf(value: unknown): string | undefined {
  return isStoredRecord(value) && typeof value.user === "string" ? value.user : undefined;
}

/** JSON of a record, or a SessionSerializationError. */
function stringify(record: StoredRecord): string {
  try {
    return JSON.stringify(record);
  } catch (err) {
    throw new SessionSerializationError({ cause: err });
  }
}

/** The parsed value, or the raw string when it is not JSON (the gateway reports it as corrupt). */
function parse(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Milliseconds for PX: > 0 live, 0 already expired, -1 forever (Infinity). */
function ttlArg(ms: number): number {
  if (Number.isNaN(ms)) throw new RangeError("Cannot write session: ttl is NaN");
  if (ms === Infinity) return -1;
  return ms > 0 ? Math.ceil(ms) : 0;
}

/** Escapes SCAN's glob characters. */
function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot create RedisStore: ${name} must be a positive integer`);
  }
  return n;
}

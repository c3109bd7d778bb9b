/**
 * The user → sessions index for stores that do not keep one themselves (no `listUser`): one
 * record per user under `uid:<userId>` whose data maps each of the user's session ids to its
 * expiry. Used by the store gateway when the manager has an `identify` option.
 *
 * Best effort, by construction: the index record is written after the session record (not in the
 * same atomic operation), and the updates of one user's index are serialised within this process
 * only. Two processes sharing such a store can lose each other's index updates; a crash between
 * the two writes can leave a session out of the index. Stores with `listUser` (MapStore,
 * DenoKvStore, RedisStore) have neither weakness.
 * @module
 */
import { KeyedQueue } from "./keyed_queue.ts";
import type { StoredRecord } from "./store.ts";

/** Store key prefix of the fallback user index records (session ids never contain ':'). */
export const USER_PREFIX = "uid:";

/** The plain store operations the index runs on (errors and timeouts already handled). */
export interface IndexIo {
  get(id: string): Promise<StoredRecord | undefined>;
  set(id: string, record: StoredRecord, ttlMs: number): Promise<void>;
  delete(id: string): Promise<void>;
}

/** The fallback user index in `uid:<userId>` records. */
export class RecordUserIndex {
  readonly #io: IndexIo;
  readonly #now: () => number;
  readonly #queue = new KeyedQueue();

  constructor(io: IndexIo, now: () => number) {
    this.#io = io;
    this.#now = now;
  }

  /** After a session record was written: moves it from `previous`'s index to its user's. */
  async written(
    sessionId: string,
    previous: string | undefined,
    record: StoredRecord,
  ): Promise<void> {
    if (previous !== undefined && previous !== record.user) await this.remove(previous, sessionId);
    if (record.user !== undefined) await this.add(record.user, sessionId, record.expiresAt);
  }

  /**
   * Lists `sessionId` under `user` until at least `expiresAt`. The index record outlives its
   * longest session by that session's remaining time, so a session renewed at half its window
   * (the rolling rule) rewrites the index only about every other renewal.
   */
  add(user: string, sessionId: string, expiresAt: number): Promise<void> {
    const key = USER_PREFIX + user;
    return this.#queue.run(key, async () => {
      const now = this.#now();
      const cur = this.#live(await this.#io.get(key), now);
      if (cur && cur.data[sessionId] !== undefined && cur.expiresAt >= expiresAt) return;
      const until = Math.max(cur?.expiresAt ?? 0, expiresAt + Math.max(0, expiresAt - now));
      const data = { ...cur?.data, [sessionId]: expiresAt };
      await this.#io.set(
        key,
        { data, expiresAt: until, createdAt: cur?.createdAt ?? now },
        until - now,
      );
    });
  }

  /** Removes `sessionId` from `user`'s index (the whole record once it is empty). */
  remove(user: string, sessionId: string): Promise<void> {
    return this.#drop(user, [sessionId], false);
  }

  /**
   * The user's sessions: every indexed id whose record still names the user (expired ones
   * included: the manager filters them). Ids whose record is gone or names another user are
   * pruned from the index.
   */
  async list(user: string): Promise<[string, StoredRecord][]> {
    const index = this.#live(await this.#io.get(USER_PREFIX + user), this.#now());
    if (!index) return [];
    const ids = Object.keys(index.data);
    const records = await Promise.all(ids.map((id) => this.#io.get(id)));
    const found: [string, StoredRecord][] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const rec = records[i];
      if (rec?.user === user) found.push([id, rec]);
      else stale.push(id);
    });
    if (stale.length > 0) await this.#drop(user, stale, true);
    return found;
  }

  /** Cleanup: deletes the index record `key` once it has expired. */
  sweep(key: string): Promise<void> {
    return this.#queue.run(key, async () => {
      const cur = await this.#io.get(key);
      if (cur && cur.expiresAt <= this.#now()) await this.#io.delete(key);
    });
  }

  /** Removes ids from the index; with `verify`, only those whose record still is not the user's. */
  #drop(user: string, ids: string[], verify: boolean): Promise<void> {
    const key = USER_PREFIX + user;
    return this.#queue.run(key, async () => {
      const now = this.#now();
      const cur = this.#live(await this.#io.get(key), now);
      if (!cur) return;
      const data = { ...cur.data };
      let changed = false;
      for (const id of ids) {
        if (data[id] === undefined) continue;
        // A record that came back under this user (re-identified meanwhile) stays listed.
        if (verify && (await this.#io.get(id))?.user === user) continue;
        delete data[id];
        changed = true;
      }
      if (!changed) return;
      if (Object.keys(data).length === 0) await this.#io.delete(key);
      else await this.#io.set(key, { ...cur, data }, cur.expiresAt - now);
    });
  }

  #live(rec: StoredRecord | undefined, now: number): StoredRecord | undefined {
    return rec && rec.expiresAt > now ? rec : undefined;
  }
}

/**
 * A Map with string keys split into shards by a hash of the key's last characters, for the
 * collections that can grow to hundreds of thousands of entries (the {@linkcode MapStore}'s
 * records, its indexes, the large bounded caches).
 *
 * Why: on JavaScriptCore (Bun), a Map of more than about 80,000 entries that is written to makes
 * the young-generation garbage collections of a busy process expensive. Storing a new value under
 * a known key of a Map of 150,000 costs 12–60 µs of CPU per write in a loop that also makes a
 * request's garbage, against 1.2 µs with 64 Maps of a few thousand each; a Map growing to 600,000
 * entries costs 16–23 µs per insert against 3.1 (`bench/map_churn.ts`). On V8 the shards cost
 * nothing measurable, so there it is one Map ({@linkcode SHARDS}).
 * @module
 */
import { base64UrlValue } from "./encoding.ts";
import { JAVASCRIPTCORE } from "./engine.ts";
import { OldestKey } from "./oldest_key.ts";

/**
 * Shards of a collection that may grow large (a power of two): 64 on JavaScriptCore (Bun), one
 * elsewhere. On V8 the shards save nothing and cost a hash per access, and one Map keeps the
 * records in the order they were written, which `MapStore.takeExpired` uses to find a session's
 * client mapping next to it instead of by a lookup.
 */
export const SHARDS: number = JAVASCRIPTCORE ? 64 : 1;

/**
 * The number of shards for a collection bounded to `limit` entries: one up to 32,768 (so that it
 * evicts in exact insertion order), {@linkcode SHARDS} beyond, where JavaScriptCore's cost starts.
 */
export function shardsFor(limit: number): number {
  return limit > 32_768 ? SHARDS : 1;
}

/** The 6 bits of the character at `i`: its base64url value, else its code's low 6 bits. */
function sixBits(key: string, i: number): number {
  const c = key.charCodeAt(i);
  const v = base64UrlValue(c);
  return v >= 0 ? v : c & 63; // (NaN, outside the string, gives 0)
}

/** A string-keyed Map in shards; iteration goes shard by shard (insertion order within each). */
export class ShardedMap<V> {
  readonly #shards: Map<string, V>[];
  readonly #mask: number;
  #size = 0;
  /** Per shard, its eviction cursor (created on first use). */
  #cursors: OldestKey<string>[] | undefined;

  /** @param shards the number of shards: 1, or a power of two (keys spread over at most 64) */
  constructor(shards: number = SHARDS) {
    if (!(shards >= 1) || (shards & (shards - 1)) !== 0) {
      throw new RangeError("Cannot create ShardedMap: shards must be a power of two");
    }
    this.#shards = Array.from({ length: shards }, () => new Map<string, V>());
    this.#mask = shards - 1;
  }

  /**
   * The shard of a key, from its last two characters: each as its 6-bit base64url value, the two
   * mixed so that every pair of base64url characters names each of 64 shards equally often (ids
   * end randomly). The manager gives a session made for a browser with a client id the last two
   * characters of that client id, so the session and its `cid:` mapping share a shard (see
   * `MapStore.takeExpired`). So do all the sessions made for one client id: a client that keeps
   * its client-id cookie and drops its session cookie fills one shard. On Bun, 300,000 such
   * sessions cost 9.9–14.5 µs of CPU each to make against 7.1–7.4 spread out, and then ordinary
   * requests 3–6 % more (a loop of 100,000 browsers while that client goes on). Keys that end in
   * hexadecimal digits (UUIDs) reach every shard too, the fullest 1.5 times the mean.
   */
  #shard(key: string): Map<string, V> {
    const mask = this.#mask;
    if (mask === 0) return this.#shards[0]!;
    const n = key.length;
    return this.#shards[(sixBits(key, n - 1) ^ Math.imul(sixBits(key, n - 2), 37)) & mask]!;
  }

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    return this.#shard(key).get(key);
  }

  has(key: string): boolean {
    return this.#shard(key).has(key);
  }

  /**
   * Adds or replaces an entry (a known key keeps its place in its shard's order); true when the
   * key was there already (one lookup where `has()` then `set()` would take two).
   */
  set(key: string, value: V): boolean {
    const shard = this.#shard(key);
    const before = shard.size;
    shard.set(key, value);
    if (shard.size === before) return true;
    this.#size++;
    return false;
  }

  /** Removes an entry; true when there was one. */
  delete(key: string): boolean {
    if (!this.#shard(key).delete(key)) return false;
    this.#size--;
    return true;
  }

  /** Moves a known key to the newest end of its shard's order (its eviction second chance). */
  renew(key: string, value: V): void {
    const shard = this.#shard(key);
    shard.delete(key);
    shard.set(key, value);
  }

  /** Removes every entry. */
  clear(): void {
    for (const shard of this.#shards) shard.clear();
    this.#size = 0;
  }

  /**
   * A live cursor over every entry, shard by shard (insertion order within each), for a walk
   * that other work interleaves with: it follows the deletions, insertions and rehashes made
   * meanwhile, as a Map iterator does (a key added to a shard it has passed is not met). Each
   * call returns the next entry, undefined once every shard is done.
   */
  cursor(): () => [string, V] | undefined {
    const shards = this.#shards;
    let i = 0;
    let it = shards[0]!.entries();
    return () => {
      for (;;) {
        const r = it.next();
        if (!r.done) return r.value;
        if (i + 1 >= shards.length) return undefined;
        it = shards[++i]!.entries();
      }
    };
  }

  /**
   * The key to evict next: the oldest of the fullest shard. With one shard that is exactly the
   * oldest key; with more it is about as old (the keys spread evenly, so evicting from the
   * fullest keeps the shards level and each keeps about the same span of recent writes; taking
   * the shards in turn instead would let one run low and give up its recent keys). Undefined
   * when empty. The caller deletes or renews it.
   */
  nextOldest(): string | undefined {
    const shards = this.#shards;
    let fullest = 0;
    for (let i = 1; i < shards.length; i++) {
      if (shards[i]!.size > shards[fullest]!.size) fullest = i;
    }
    const cursors = this.#cursors ??= shards.map((shard) => new OldestKey(shard));
    return cursors[fullest]!.next();
  }

  /** Every entry, shard by shard. */
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    for (const shard of this.#shards) yield* shard;
  }
}

/**
 * A Map of at most `limit` entries: adding a new key past it evicts the oldest (insertion order;
 * approximately, beyond 32,768 entries: see {@linkcode ShardedMap.nextOldest}). The bounded caches: verified cookies,
 * unsealed cookies, derived seal keys, the manager's attached sessions.
 */
export class BoundedMap<K extends string, V> {
  readonly #map: ShardedMap<V>;
  readonly #limit: number;
  readonly #onEvict: ((key: K, value: V) => void) | undefined;

  /**
   * @param limit the most entries kept (0 keeps none)
   * @param onEvict called with each entry evicted to make room
   */
  constructor(limit: number, onEvict?: (key: K, value: V) => void) {
    this.#limit = limit;
    this.#map = new ShardedMap(shardsFor(limit));
    this.#onEvict = onEvict;
  }

  /** Number of entries. */
  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Adds or replaces an entry; a new key beyond the limit evicts the oldest first. */
  set(key: K, value: V): void {
    if (this.#limit === 0) return;
    if (this.#map.size >= this.#limit && !this.#map.has(key)) {
      const oldest = this.#map.nextOldest()! as K;
      const value = this.#onEvict ? this.#map.get(oldest) : undefined;
      this.#map.delete(oldest);
      if (this.#onEvict) this.#onEvict(oldest, value as V);
    }
    this.#map.set(key, value);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }
}

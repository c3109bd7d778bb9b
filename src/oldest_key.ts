/**
 * The oldest key of a Map or Set in amortised O(1), for bounded caches that evict in insertion
 * order. `map.keys().next()` looks cheap but scans from the start of V8's and JSC's hash tables,
 * over every slot that earlier deletions left behind until the next rehash: at 100,000 entries
 * that is 20–60 µs per eviction. A live iterator kept between calls resumes where it stopped
 * (iterators follow deletions, insertions and rehashes), so each slot is passed once.
 * `ShardedMap` evicts through one per shard.
 * @module
 */

/** Iterates a collection's keys oldest first, across calls. */
export class OldestKey<K> {
  readonly #collection: { keys(): IterableIterator<K>; readonly size: number };
  #it: IterableIterator<K> | undefined;

  /** @param collection the Map or Set whose keys are evicted through this cursor */
  constructor(collection: { keys(): IterableIterator<K>; readonly size: number }) {
    this.#collection = collection;
  }

  /**
   * The oldest key still present, or undefined when the collection is empty. Callers delete it
   * before asking again (keys already passed are never returned twice unless re-inserted).
   */
  next(): K | undefined {
    if (this.#collection.size === 0) return undefined;
    let r = this.#it?.next();
    if (r === undefined || r.done) {
      // A finished iterator stays finished: start over (from the oldest key).
      this.#it = this.#collection.keys();
      r = this.#it.next();
    }
    return r.done ? undefined : r.value;
  }
}

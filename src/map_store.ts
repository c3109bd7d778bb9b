/**
 * The embedded default store: an in-process Map with TTLs checked on read.
 * @module
 */
import { SessionSerializationError } from "./errors.ts";
import { JAVASCRIPTCORE } from "./engine.ts";
import { ShardedMap, shardsFor } from "./sharded_map.ts";
import { copyJson, defineKey, exactCopy, isExactPrimitive, NOT_EXACT } from "./json_copy.ts";
import type { ExpiredRecord, RecordMutator, Store, StoredRecord, TakenRecord } from "./store.ts";

/** Options of {@linkcode MapStore}. */
export interface MapStoreOptions {
  /**
   * Upper bound on stored records: the oldest is evicted first, except that one written again
   * since it was stored gets a second chance (approximately least recently written), and the
   * record just written is never the one evicted. Beyond 32,768 records on Bun, where the store
   * is kept in shards, "the oldest" is the oldest of the fullest shard: about as old. Default: none.
   */
  maxEntries?: number;
  /** Clock in epoch ms (for tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * A held record: one flat string per record (not an object holding a number and a string, nor a
 * rope), which keeps the heap small (`bench/mapstore_scale.ts`) and starts with the expiry in
 * whole epoch ms, read without decoding the record. Two shapes:
 * - compact, `expiry createdAt clientId sid dataJSON` (numbers in base 36, space-separated, an
 *   absent id empty, a `clientId` that is the record's own id {@linkcode OWN_ID}), for a record
 *   made of those fields only whose `expiresAt` is the expiry: the sessions and client mappings
 *   the manager writes (its clock is the store's, see {@linkcode CLOCK_SLACK_MS}). Half the size
 *   of the record's JSON: 1,000,000 sessions with their client mappings fit in under 300 bytes
 *   each.
 * - the JSON of `[expiry, record]` for any other (`expiresAt` included: leaving it out when it is
 *   the expiry saved 26 bytes, but copying the record without it cost 0.5–1.7 µs per write).
 */
type Held = string;

const OPEN_BRACKET = 91;
const SPACE = 32;

/**
 * A compact record's `clientId` field when the client id is the id the record is held under (a
 * browser's first session, see the manager): the id is not held twice (23 characters less), and a
 * cleanup knows such a session has no client mapping without reading the id (in a store of
 * millions, reading it is a cache miss: a third of a cleanup's time on Node 20). No compact
 * record holds it as an id of its own (see {@linkcode compactId}).
 */
const OWN_ID = "=";
const OWN_ID_CODE = 61;

/** True when the compact field from `start` to `end` is {@linkcode OWN_ID}. */
function isOwnId(held: Held, start: number, end: number): boolean {
  return end === start + 1 && held.charCodeAt(start) === OWN_ID_CODE;
}

/**
 * How far a record's `expiresAt` (still to come) may be from `now + ttlMs` and still be its
 * expiry. The caller computed the TTL from it a moment earlier (the manager does, on its own
 * reading of the clock); a clock that ticked on meanwhile must neither expire the record a
 * millisecond after the time it states nor hold it in the JSON shape, decoded on every read
 * instead of cached (a session created as the millisecond turned cost a JSON.parse per request
 * for its whole life).
 */
const CLOCK_SLACK_MS = 10;

/** The expiry to hold: whole ms, rounded up; never (or NaN) is the largest safe integer. */
function holdExpiry(at: number): number {
  if (Number.isNaN(at) || at >= Number.MAX_SAFE_INTEGER) return Number.MAX_SAFE_INTEGER;
  return at <= 0 ? 0 : Math.ceil(at);
}

/**
 * Makes V8 flatten a string in place: `JSON.stringify` and `+` return ropes (a tree of parts,
 * about 95 bytes more for a 120-character record), and a garbage collection then replaces the
 * flattened rope by its flat string. Reading the last character is enough and costs nothing.
 */
function flatten(s: string): string {
  s.charCodeAt(s.length - 1);
  return s;
}

/** The value of a base-36 digit's char code (0-9, a-z). */
function digit36(c: number): number {
  return c <= 57 ? c - 48 : c - 87;
}

function expiryOf(held: Held): number {
  let n = 0;
  if (held.charCodeAt(0) === OPEN_BRACKET) {
    for (let i = 1; i < held.length; i++) {
      const digit = held.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      n = n * 10 + digit;
    }
    return n;
  }
  for (let i = 0; i < held.length; i++) {
    const c = held.charCodeAt(i);
    if (c === SPACE) break;
    n = n * 36 + digit36(c);
  }
  return n;
}

/**
 * True when `key` is `prefix + rest`, without building that string (a client mapping's key and
 * its client id, compared once per session in a cleanup of millions).
 */
function isPrefixedKey(key: string, prefix: string, rest: string): boolean {
  return key.length === prefix.length + rest.length && key.endsWith(rest) &&
    key.startsWith(prefix);
}

/**
 * Marks, in the Map, a client mapping `takeExpired` found by key and took along with its
 * session, until it removes it (never a held record: those are not empty). It reads as missing.
 */
const TAKEN = "";

/** Where the n-th space-separated field of a compact held record starts (n ≥ 0). */
function fieldStart(held: Held, n: number): number {
  let start = 0;
  for (let i = 0; i < n; i++) start = held.indexOf(" ", start) + 1;
  return start;
}

/**
 * The `clientId` of a held record stored under `id`, unless it is `id` itself (a browser's first
 * session, see the manager) or absent: read without decoding a compact one.
 */
function otherClientIdOf(held: Held, id: string): string | undefined {
  if (held.charCodeAt(0) === OPEN_BRACKET) {
    const clientId = idField(held, "clientId");
    return clientId === id ? undefined : clientId;
  }
  const start = fieldStart(held, 2);
  const end = held.indexOf(" ", start);
  return end === start || isOwnId(held, start, end) ? undefined : held.slice(start, end);
}

/**
 * True when a held record's `sid` (a client mapping's session) is `id`, read in place in a
 * compact one (no slice of it).
 */
function namesSession(held: Held, id: string): boolean {
  if (held.charCodeAt(0) === OPEN_BRACKET) return idField(held, "sid") === id;
  const start = fieldStart(held, 3);
  return held.startsWith(id, start) && held.charCodeAt(start + id.length) === SPACE;
}

/** An id field of a JSON-shaped held record: a non-empty string, else undefined (never throws). */
function idField(held: Held, field: "clientId" | "sid"): string | undefined {
  try {
    const value = (JSON.parse(held) as [number, Partial<StoredRecord> | null])[1]?.[field];
    return typeof value === "string" && value !== "" ? value : undefined;
  } catch {
    return undefined;
  }
}

function recordOf(id: string, held: Held): StoredRecord;
function recordOf(id: string, held: Held, withData: false): ExpiredRecord;
/**
 * Decodes the record held under `id`; a compact one without its data when `withData` is false
 * (for cleanup: in one pass, no copy of its numbers' digits).
 */
function recordOf(id: string, held: Held, withData = true): ExpiredRecord {
  if (held.charCodeAt(0) === OPEN_BRACKET) {
    const [expiry, record] = JSON.parse(held) as [number, StoredRecord];
    if (record.expiresAt === undefined) record.expiresAt = expiry;
    return record;
  }
  // One pass over the two numbers: finding their ends with indexOf first took 0.44–0.65 s for the
  // store's part of a cleanup of 1,000,000 on Node, against 0.39–0.58 s (three alternating runs).
  const length = held.length;
  let i = 0;
  let expiresAt = 0;
  for (let c; i < length && (c = held.charCodeAt(i)) !== SPACE; i++) {
    expiresAt = expiresAt * 36 + digit36(c);
  }
  let createdAt = 0;
  for (let c; ++i < length && (c = held.charCodeAt(i)) !== SPACE;) {
    createdAt = createdAt * 36 + digit36(c);
  }
  const record: ExpiredRecord = { expiresAt, createdAt };
  const b = i;
  const c = held.indexOf(" ", b + 1);
  const d = held.indexOf(" ", c + 1);
  if (withData) record.data = JSON.parse(held.slice(d + 1));
  if (c > b + 1) record.clientId = isOwnId(held, b + 1, c) ? id : held.slice(b + 1, c);
  if (d > c + 1) record.sid = held.slice(c + 1, d);
  return record;
}

/** Records a takeExpired walks per batch (about a millisecond of work on Node). */
const SWEEP_SLICE = 1024;

/**
 * A takeExpired removes what it took by rebuilding the Map from the survivors when they are fewer
 * than this many times the taken records, else one by one: in a large Map a delete costs more
 * than an insert into a new one. Measured in a cleanup of half of 1,000,000 sessions with their
 * client mappings (`npm run bench:memory`, 1,000,000 records taken and 1,000,000 kept), per
 * record: 0.72 µs to delete against 0.43 to copy on Node 20, 0.58 against 0.32 on Bun, 0.29
 * against 0.22 on Deno; the cleanup took 1,113 → 825 ms, 1,674 → 1,447 and 667 → 541. The
 * rebuild holds the new Map next to the old one until it replaces it (the records themselves are
 * shared), at most 3/5 the size of the old one.
 */
const REBUILD_FACTOR = 1.5;

/**
 * A takeExpired in progress: the ids written since it began (while its backlog or rebuild
 * needs them), and whether `clear()` ended it.
 */
interface Sweep {
  written: Set<string> | undefined;
  cleared: boolean;
}

/**
 * Ids and their held strings, kept in the arrays of the slices they were collected in: no array
 * grows to millions (growing one copies it, at 2,000,000 a stop of tens of ms of its own). Read
 * in order, a part at a time.
 */
class Slices {
  readonly #ids: string[][] = [];
  readonly #helds: Held[][] = [];
  #size = 0;
  /** Where {@linkcode Slices.next} resumes: a slice, and an index in it. */
  #slice = 0;
  #index = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds a slice's ids and held strings (the arrays are kept, not copied). */
  push(ids: string[], helds: Held[]): void {
    if (ids.length === 0) return;
    this.#ids.push(ids);
    this.#helds.push(helds);
    this.#size += ids.length;
  }

  /**
   * Calls `fn` for the next `limit` entries, from where the last call stopped; false once every
   * entry was passed.
   */
  next(limit: number, fn: (id: string, held: Held) => void): boolean {
    for (let n = 0; this.#slice < this.#ids.length; this.#slice++, this.#index = 0) {
      const ids = this.#ids[this.#slice]!;
      const helds = this.#helds[this.#slice]!;
      for (; this.#index < ids.length; this.#index++, n++) {
        if (n === limit) return true;
        fn(ids[this.#index]!, helds[this.#index]!);
      }
    }
    return false;
  }

  /** Calls `fn` for every entry. */
  forEach(fn: (id: string, held: Held) => void): void {
    for (let s = 0; s < this.#ids.length; s++) {
      const ids = this.#ids[s]!;
      const helds = this.#helds[s]!;
      for (let i = 0; i < ids.length; i++) fn(ids[i]!, helds[i]!);
    }
  }
}

/** Slots of the decoded-record cache, minus one (a power of two). */
const SLOT_MASK = 1023;

/**
 * The slot of an id in the decoded-record cache: from its third- and fourth-last characters, random
 * in every id. (Not the last two: a session made for a browser with a client id ends as the client
 * id, and so as the key of its mapping, `cid:` + client id; the two, read one after the other by a
 * lookup by client id, would take each other's slot.)
 */
function slotOf(id: string): number {
  return (id.charCodeAt(id.length - 3) * 64 + id.charCodeAt(id.length - 4)) & SLOT_MASK;
}

/** True when `data` is a plain object none of whose values is an object (a shallow copy is deep). */
function isFlat(data: unknown): boolean {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return false;
  for (const key in data) {
    const value = (data as Record<string, unknown>)[key];
    if (typeof value === "object" && value !== null) return false;
  }
  return true;
}

/**
 * For a record the compact shape holds whose data is a plain object: a copy with a copy of the
 * data (each value read once, as JSON.stringify reads it), which `set()` holds instead of the
 * record, and whether that copy's data is JSON-exact (see {@linkcode exactCopy}), so that
 * decoding the held string gives exactly the copy back: then `set()` caches it, with `deep` when
 * the data has objects in it (deep-copied then). A value that is not JSON-exact is taken as it
 * is. What is held and what a read gets back come from one read of each value (a getter or a
 * Proxy answers once). Undefined for any other record (held as given).
 */
function snapshot(
  expiry: number,
  record: StoredRecord,
): { copy: StoredRecord; exact: boolean; deep: boolean } | undefined {
  const source = record.data as unknown;
  if (typeof source !== "object" || source === null || record.expiresAt !== expiry) {
    return undefined;
  }
  const proto = Object.getPrototypeOf(source);
  if (proto !== Object.prototype && proto !== null) return undefined;
  if ((source as { toJSON?: unknown }).toJSON !== undefined) return undefined;
  if (!compactable(expiry, record)) return undefined;
  const data: Record<string, unknown> = {};
  let exact = true;
  let deep = false;
  // Object.keys: the own enumerable string keys JSON.stringify serialises, in its order.
  for (const key of Object.keys(source)) {
    let value = (source as Record<string, unknown>)[key];
    if (exact) {
      const type = typeof value;
      if (type === "object" && value !== null) {
        const copy = exactCopy(value);
        if (copy === NOT_EXACT) exact = false;
        else {
          value = copy;
          deep = true;
        }
      } else exact = isExactPrimitive(value);
    }
    defineKey(data, key, value);
  }
  // + 0: a createdAt of -0 is held as "0", and read back as 0.
  const copy: StoredRecord = { expiresAt: expiry, createdAt: record.createdAt + 0, data };
  if (record.clientId !== undefined) copy.clientId = record.clientId;
  if (record.sid !== undefined) copy.sid = record.sid;
  return { copy, exact, deep };
}

/**
 * How a cached decoded record is copied for a read: {@linkcode FLAT}, {@linkcode DEEP} or
 * {@linkcode WHOLE}.
 */
type CopyKind = typeof FLAT | typeof DEEP | typeof WHOLE;
/** A compact record whose data is flat (its values are not objects): a shallow copy of the data. */
const FLAT = 0;
/** A compact record with objects in its data: a deep copy of the data. */
const DEEP = 1;
/** A JSON-shaped record: a deep copy of all of it (`meta` or `flash` may hold objects too). */
const WHOLE = 2;

/** A copy of a cached decoded record (see {@linkcode CopyKind}). */
function copyCached(r: StoredRecord, kind: CopyKind): StoredRecord {
  if (kind === WHOLE) return copyJson(r) as StoredRecord;
  const copy: StoredRecord = {
    expiresAt: r.expiresAt,
    createdAt: r.createdAt,
    data: kind === DEEP ? copyJson(r.data) as StoredRecord["data"] : { ...r.data },
  };
  if (r.clientId !== undefined) copy.clientId = r.clientId;
  if (r.sid !== undefined) copy.sid = r.sid;
  return copy;
}

const B36_8 = 36 ** 7; // the smallest number of 8 base-36 digits
const B36_9 = 36 ** 8;
const B36_10 = 36 ** 9;

/** Scratch space of {@linkcode toBase36}: the char codes of nine digits. */
const codes36: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0];

/**
 * `n.toString(36)` for a non-negative integer. Times of 8 or 9 digits (epoch ms from 1972 to the
 * year 5188) are written by hand: V8's `toString(36)` costs 285–380 ns on Node 20 and Deno 2.9,
 * this about 80 (measured in a loop).
 */
function toBase36(n: number): string {
  // JavaScriptCore (Bun) writes base 36 faster itself: 85 ns a time, against 138 by hand.
  if (JAVASCRIPTCORE || !(n >= B36_8 && n < B36_10) || !Number.isInteger(n)) return n.toString(36);
  const c = codes36;
  let rest = n;
  for (let i = 8; i >= 0; i--) {
    const q = Math.floor(rest / 36);
    const d = rest - q * 36;
    c[i] = d < 10 ? 48 + d : 87 + d; // 0-9, a-z
    rest = q;
  }
  // Explicit arguments: apply() over an array costs three times as much (see encodeBase64Url).
  return n < B36_9
    ? String.fromCharCode(c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!)
    : String.fromCharCode(c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!);
}

/** The last four numbers written in base 36 and their digits, and the next slot to replace. */
const base36Numbers: number[] = [NaN, NaN, NaN, NaN];
const base36Digits: string[] = ["", "", "", ""];
let base36Next = 0;

/**
 * `n.toString(36)`, remembering the last four answers: a busy store writes the same times many
 * times within a millisecond (a new session holds its expiry and creation time, its client
 * mapping another expiry and the same creation time: three numbers), and `toString(36)` costs
 * about 0.2 µs on V8 (measured in a loop on Node 20 and Deno 2.9) and more on JavaScriptCore
 * (3 % of a Bun server's samples creating sessions when only two were remembered).
 */
function base36(n: number): string {
  const numbers = base36Numbers;
  for (let i = 0; i < 4; i++) if (numbers[i] === n) return base36Digits[i]!;
  const digits = toBase36(n);
  numbers[base36Next] = n;
  base36Digits[base36Next] = digits;
  base36Next = (base36Next + 1) & 3;
  return digits;
}

/** Largest expiry or creation time held in base 36 (year 6429: exact in a double). */
const COMPACT_MAX_TIME = 2 ** 47;

/**
 * The held form of the record held under `id` (see {@linkcode Held}); `compact` when the caller
 * already knows that the compact shape holds it (a {@linkcode snapshot} copy), and `start` when it
 * also knows the start of that shape (expiry, creation time and ids: {@linkcode headOf} a held
 * record that states the same, see {@linkcode sameHead}). Most updates change only the data (the
 * expiry renews once half the idle window is gone): they then write no time in base 36 (about
 * 0.1 µs each on V8 when the base-36 memo misses, as it does for any session but the last few
 * written) and join two parts instead of five.
 * @throws {SessionSerializationError}
 */
function hold(
  id: string,
  expiry: number,
  record: StoredRecord,
  compact?: true,
  start?: string,
): Held {
  try {
    if (record.expiresAt === expiry && (compact || compactable(expiry, record))) {
      const data = JSON.stringify(record.data);
      if (data !== undefined) {
        if (start !== undefined) return [start, data].join("");
        const { createdAt, sid = "" } = record;
        const clientId = record.clientId === id ? OWN_ID : record.clientId ?? "";
        // join, not a template literal: JavaScriptCore keeps a rope's cell after flattening it
        // (about 110 bytes more per record on Bun, and more garbage-collection work); V8 builds
        // either at the same speed.
        return [base36(expiry), base36(createdAt), clientId, sid, data].join(" ");
      }
    }
    return JSON.stringify([expiry, record]);
  } catch (err) {
    throw new SessionSerializationError({ cause: err });
  }
}

/** A compact held record, and what its start states: the expiry, the creation time, the ids. */
interface Head {
  held: Held;
  expiresAt: number;
  createdAt: number;
  clientId: string | undefined;
  sid: string | undefined;
}

/** True when a compact record (a {@linkcode snapshot} copy) starts as `head` states. */
function sameHead(head: Head, record: StoredRecord): boolean {
  return record.expiresAt === head.expiresAt && record.createdAt === head.createdAt &&
    record.clientId === head.clientId && record.sid === head.sid;
}

/** The start of a compact held record: its expiry, creation time and ids, up to its data. */
function headOf(held: Held): string {
  return held.slice(0, fieldStart(held, 4));
}

/** True when the compact shape holds all of `record` (its `expiresAt` is the expiry). */
function compactable(expiry: number, record: StoredRecord): boolean {
  const { createdAt } = record;
  if (
    expiry >= COMPACT_MAX_TIME || !Number.isSafeInteger(createdAt) || createdAt < 0 ||
    createdAt >= COMPACT_MAX_TIME || !compactId(record.clientId) || !compactId(record.sid) ||
    record.data === undefined
  ) {
    return false;
  }
  for (const key in record) {
    if (
      !COMPACT_FIELDS.has(key) && (record as unknown as Record<string, unknown>)[key] !== undefined
    ) {
      return false;
    }
  }
  return true;
}

/** An id the compact shape can hold: absent, or non-empty without a space and not `=`. */
function compactId(id: unknown): boolean {
  return id === undefined ||
    (typeof id === "string" && id !== "" && id !== OWN_ID && !id.includes(" "));
}

const COMPACT_FIELDS = new Set(["data", "expiresAt", "createdAt", "clientId", "sid"]);

/**
 * What the session manager reads of a MapStore beyond the Store contract (internal: not exported
 * by `mod.ts`); filled in by the class.
 */
export const mapStoreSteps: {
  /**
   * {@linkcode MapStore.get}'s record without the copy: the store's own decoded record, shared
   * with its cache, to be read only and not kept (the socket adapters' `withSession` copies what
   * its handler gets). Its data is exactly what JSON gives back (decoded from the held string).
   */
  shared(store: MapStore, id: string): StoredRecord | undefined;
} = {} as typeof mapStoreSteps;

/**
 * In-memory store for one process: synchronous (sessions load lazily), TTL checked on read,
 * `list()` for cleanup, atomic `update()`, a user index (`listUser`, kept in the same
 * synchronous step as each write), optional `maxEntries` bound. Records are kept as strings
 * (compact, or JSON), so nothing outside the store can mutate them and non-JSON data fails loudly.
 *
 * @example Usage
 * ```ts
 * import { createSessions, MapStore } from "unisession";
 * const sessions = createSessions({ store: new MapStore({ maxEntries: 100_000 }), keys: ["a-secret-of-at-least-32-characters!!"] });
 * ```
 */
export class MapStore implements Store {
  static {
    mapStoreSteps.shared = (store, id) => {
      const held = store.#live(id);
      return held === undefined ? undefined : store.#decode(id, held, false);
    };
  }

  /** Reads never return a promise. */
  readonly synchronous = true;
  /**
   * The records, in shards (see {@linkcode ShardedMap}: on Bun a single Map of more than about
   * 80,000 records makes every write cost tens of µs of garbage collection). With a `maxEntries`
   * of up to 32,768 there is one shard, evicted in exact order.
   */
  #map: ShardedMap<Held>;
  /** The takeExpired in progress, if any. */
  #sweep: Sweep | undefined;
  /**
   * With `maxEntries`: the ids written again since they were stored or last given a second
   * chance. A rewrite keeps its record's place in the Map instead of moving it to the end: on V8
   * and JSC a key deleted and re-inserted over and over leaves a deleted entry in its hash chain
   * each time until the table is rebuilt, so a session written repeatedly in a store of 100,000
   * grew from 5 to 460 µs per write.
   */
  readonly #rewritten: ShardedMap<true>;
  /** User → ids of the records naming that user. */
  readonly #users = new ShardedMap<Set<string>>();
  /** Id → user, for the records that name one (most sessions of an app without logins do not). */
  readonly #userOf = new ShardedMap<string>();
  readonly #max: number;
  readonly #now: () => number;
  /** The cache of `#decode`: a held string and its decoded record (never changed) per slot. */
  readonly #recentHeld: (Held | undefined)[] = new Array(SLOT_MASK + 1).fill(undefined);
  /**
   * The id each slot's held string is held under: two records may hold equal strings (first
   * sessions written in the same millisecond with the same data: their client id is
   * {@linkcode OWN_ID}), which decode to different records.
   */
  readonly #recentId: (string | undefined)[] = new Array(SLOT_MASK + 1).fill(undefined);
  readonly #recentRecord: (StoredRecord | undefined)[] = new Array(SLOT_MASK + 1).fill(undefined);
  /** Per slot, how the cached record is copied for a read (a {@linkcode CopyKind}). */
  readonly #recentKind = new Uint8Array(SLOT_MASK + 1);

  /**
   * Creates a MapStore.
   * @param options bounds and clock
   */
  constructor(options: MapStoreOptions = {}) {
    const max = options.maxEntries ?? Infinity;
    if (!(max >= 1)) throw new RangeError("Cannot create MapStore: maxEntries must be ≥ 1");
    this.#max = max;
    this.#map = new ShardedMap(shardsFor(max));
    this.#rewritten = new ShardedMap(shardsFor(max));
    this.#now = options.now ?? Date.now;
  }

  /** Number of records held, expired ones included until cleanup (or eviction) removes them. */
  get size(): number {
    return this.#map.size;
  }

  /**
   * Reads a record; an expired one reads as missing. It stays held until `cleanup()` removes it
   * (and reports it with `sessionDestroy`) or a write replaces it.
   */
  get(id: string): StoredRecord | undefined {
    const held = this.#live(id);
    return held === undefined ? undefined : this.#decode(id, held);
  }

  /** The held string of a record that has not expired (nor been taken by a takeExpired). */
  #live(id: string): Held | undefined {
    const held = this.#map.get(id);
    return held === undefined || expiryOf(held) <= this.#now() ? undefined : held;
  }

  /**
   * Decodes a held record, through a small direct-mapped cache of recently decoded records: those
   * are copied instead of parsed again (JSON.parse costs about 0.3 µs per read of `{"n":1000}` on
   * V8, 1.1–1.8 µs for a 90-character object with nested ones), shallowly when a compact record's
   * data is flat (its values are not objects). What JSON.parse made is copied exactly by
   * `copyJson`: a JSON-shaped session with a user, a CSRF secret and `describe`'s meta, ten of
   * them read in turn in a loop, took 3.49 → 1.19 µs per read on Node, 1.06–1.33 → 0.37–0.55 on
   * Bun (where a read and a write together cost 0–0.6 µs more: the write copies the record). The
   * cache is keyed by the id and the held string itself, so it can never be stale: a write holds
   * a new string. It is fixed arrays, not a Map: on JavaScriptCore each Map mutation in a busy
   * process costs microseconds of garbage collection. The cache keeps a copy that `copyJson`
   * made, not what JSON.parse made: caching that instead made reads of JSON-shaped records 25 %
   * slower on Node (`bench/ab.ts`, "A read (MapStore, app data, signed in)": 1.87 → 2.33 µs).
   * @param own the record is the caller's to keep and change (a copy); false: the cached record
   * itself, to be read only and not kept ({@linkcode mapStoreSteps})
   */
  #decode(id: string, held: Held, own = true): StoredRecord {
    const slot = slotOf(id);
    if (this.#recentHeld[slot] === held && this.#recentId[slot] === id) {
      const cached = this.#recentRecord[slot]!;
      return own ? copyCached(cached, this.#recentKind[slot] as CopyKind) : cached;
    }
    const record = recordOf(id, held);
    const kind = held.charCodeAt(0) === OPEN_BRACKET ? WHOLE : isFlat(record.data) ? FLAT : DEEP;
    const cached = copyCached(record, kind);
    this.#cache(id, held, cached, kind);
    return own ? record : cached;
  }

  /**
   * Sets an id's slot of the decoded-record cache: a held string and its decoded record (never
   * changed: copied for reads as `kind` says, or read in place through
   * {@linkcode mapStoreSteps}), or nothing, so that a removed or replaced record's data is not
   * kept.
   */
  #cache(
    id: string,
    held: Held | undefined,
    record: StoredRecord | undefined,
    kind: CopyKind = FLAT,
  ): void {
    const slot = slotOf(id);
    this.#recentHeld[slot] = held;
    this.#recentId[slot] = held === undefined ? undefined : id;
    this.#recentRecord[slot] = record;
    this.#recentKind[slot] = kind;
  }

  /** Empties every slot of the decoded-record cache. */
  #uncacheAll(): void {
    this.#recentHeld.fill(undefined);
    this.#recentId.fill(undefined);
    this.#recentRecord.fill(undefined);
  }

  /**
   * Writes a record for `ttlMs` milliseconds; a record whose `expiresAt` is still to come and
   * within 10 ms of that expires at its `expiresAt` (the TTL was computed from it).
   * @throws {SessionSerializationError}
   */
  set(id: string, record: StoredRecord, ttlMs: number): void {
    this.#write(id, record, ttlMs, undefined);
  }

  /**
   * {@linkcode set}, with `before` when an `update()` replaces a compact record: what the replaced
   * record's held string states at its start (kept when the new record states the same).
   */
  #write(id: string, record: StoredRecord, ttlMs: number, before: Head | undefined): void {
    const now = this.#now();
    const at = now + ttlMs;
    const stated = record.expiresAt;
    const expiry = holdExpiry(
      stated > now && Math.abs(at - stated) <= CLOCK_SLACK_MS ? stated : at,
    );
    let snap: ReturnType<typeof snapshot>;
    /**
     * A record the compact shape cannot hold (a user, a CSRF secret, `describe`'s meta...), copied
     * when JSON reads it back exactly: the copy is what is held, cached and indexed, so the three
     * agree even if a getter answers differently each time.
     */
    let whole: StoredRecord | undefined;
    try {
      snap = snapshot(expiry, record);
      if (snap === undefined) {
        const copy = exactCopy(record);
        if (copy !== NOT_EXACT) whole = copy as StoredRecord;
      }
    } catch (err) {
      throw new SessionSerializationError({ cause: err }); // a getter or Proxy trap threw
    }
    const start = snap !== undefined && before !== undefined && sameHead(before, snap.copy)
      ? headOf(before.held)
      : undefined;
    const held = snap
      ? hold(id, expiry, snap.copy, true, start)
      : hold(id, expiry, whole ?? record);
    // The next read of a session usually follows its write: it finds the copy here. Otherwise
    // the data this write replaces is not kept there either.
    if (snap?.exact && held.charCodeAt(0) !== OPEN_BRACKET) {
      this.#cache(id, held, snap.copy, snap.deep ? DEEP : FLAT);
    } else if (
      whole !== undefined && typeof whole.expiresAt === "number" &&
      held.charCodeAt(0) === OPEN_BRACKET
    ) {
      this.#cache(id, held, whole, WHOLE); // what decoding `held` gives (see recordOf)
    } else this.#cache(id, undefined, undefined);
    // A known id keeps its place (see #rewritten).
    const known = this.#map.set(flatten(id), flatten(held));
    this.#sweep?.written?.add(id);
    // The user as held (the copy's, when there is one).
    const userField = (whole ?? record).user;
    const user = typeof userField === "string" ? userField : undefined;
    let indexed = false;
    if (known) {
      if (this.#max !== Infinity) this.#rewritten.set(id, true);
      // The same user: the index stays as it is (no delete and re-insert of the same key).
      indexed = user !== undefined && this.#userOf.get(id) === user;
      if (!indexed) this.#unindexUser(id);
    }
    if (user !== undefined && !indexed) {
      this.#userOf.set(id, user);
      const ids = this.#users.get(user);
      if (ids) ids.add(id);
      else this.#users.set(user, new Set([id]));
    }
    if (this.#map.size > this.#max) this.#evict(id);
  }

  /**
   * Evicts the oldest record not written again since it was stored (or last passed over), other
   * than `written`, the one just stored: with one shard the oldest of the store, else of its
   * fullest shard (about as old). Passed over, `written` goes behind the ones given a second
   * chance before it, so when all of them were written again the oldest of them goes.
   */
  #evict(written: string): void {
    for (;;) {
      const id = this.#map.nextOldest()!;
      if (id !== written && !this.#rewritten.delete(id)) return this.delete(id);
      this.#map.renew(id, this.#map.get(id)!); // a second chance: moved to the newest end
    }
  }

  /** Removes a record (and its entry in the user index). */
  delete(id: string): void {
    if (this.#remove(id)) this.#sweep?.written?.add(id);
  }

  /** Removes a record and its entries in the indexes and cache; true when there was one. */
  #remove(id: string): boolean {
    if (!this.#map.delete(id)) return false;
    this.#unindexUser(id);
    this.#rewritten.delete(id);
    this.#cache(id, undefined, undefined);
    return true;
  }

  /** Drops a removed record's entry in the user index. */
  #unindexUser(id: string): void {
    if (this.#userOf.size === 0) return; // no session names a user: no lookup per write
    const user = this.#userOf.get(id);
    if (user === undefined) return;
    this.#userOf.delete(id);
    const ids = this.#users.get(user);
    ids?.delete(id);
    if (ids?.size === 0) this.#users.delete(user);
  }

  /**
   * The records of a user's sessions, expired ones included until `cleanup()` removes them (the
   * manager filters them out). O(sessions of the user).
   */
  listUser(userId: string): [string, StoredRecord][] {
    const ids = this.#users.get(userId);
    if (ids === undefined) return [];
    const out: [string, StoredRecord][] = [];
    for (const id of ids) out.push([id, recordOf(id, this.#map.get(id)!)]);
    return out;
  }

  /** Atomic read-modify-write (the store is synchronous, so nothing can interleave). */
  update(id: string, mutate: RecordMutator): StoredRecord | undefined {
    const held = this.#live(id);
    if (held === undefined) return undefined;
    const cur = this.#decode(id, held);
    // Read before `mutate`, which may change `cur` itself.
    const before: Head | undefined = held.charCodeAt(0) === OPEN_BRACKET ? undefined : {
      held,
      expiresAt: cur.expiresAt,
      createdAt: cur.createdAt,
      clientId: cur.clientId,
      sid: cur.sid,
    };
    const next = mutate(cur);
    if (next !== undefined) this.#write(id, next, next.expiresAt - this.#now(), before);
    return next;
  }

  /** Every record, expired ones included: cleanup decides by `expiresAt` and reports them. */
  *list(): Iterable<[string, StoredRecord]> {
    for (const [id, held] of this.#map) {
      if (held !== TAKEN) yield [id, recordOf(id, held)]; // a mapping a takeExpired took: gone
    }
  }

  /**
   * Removes the records expired by `expiredBy` (epoch ms) and returns them, for cleanup, in
   * batches: one per slice of 1,024 records walked (empty when the slice took none), so that
   * the caller can let other work run between them. The store stays usable meanwhile: a record
   * written, deleted or added between batches is kept as written (even one taken earlier). A
   * taken record is gone from the store when the iteration ends or is stopped (stopping early
   * leaves the records not walked yet); until then a taken session reads as missing (it
   * expired), and a client mapping taken along may still be read, naming it. A second
   * `takeExpired` while one is in progress returns nothing (the first takes them); `clear()`
   * ends one.
   *
   * The others are skipped without being decoded, and the manager's sessions and client mappings
   * come without their data. With `mappingPrefix`, each taken record with a `clientId` takes
   * along the record `mappingPrefix + clientId` if its `sid` names it (the browser's client
   * mapping goes with its session), read without decoding: next to it in the Map (where the
   * manager wrote it) or found by key; the session's entry then says so (`true`, its third
   * element) and the mapping is not returned. An empty `mappingPrefix` takes no mapping.
   *
   * In a large store each keyed access costs a cache miss (about 0.8 µs per record among
   * 2,000,000 on the benchmark machine, `npm run bench:memory`), so the taken records are
   * removed the cheaper way (see {@linkcode REBUILD_FACTOR}): one by one when few are taken,
   * else by building a new Map of the survivors, in slices too, which replaces the old one at the
   * end.
   */
  *takeExpired(expiredBy: number, mappingPrefix?: string): Iterable<TakenRecord[]> {
    if (this.#sweep !== undefined) return;
    const sweep: Sweep = { written: new Set(), cleared: false };
    this.#sweep = sweep;
    const map = this.#map;
    const nextEntry = map.cursor();
    const prefix = mappingPrefix ?? "";
    const plen = prefix.length;
    /**
     * The survivors walked, to rebuild the Map from, collected while a rebuild may still be
     * the cheaper way (then the taken ones are removed one by one instead, in each slice): those
     * of the slices before, and of this one.
     */
    let kept = new Slices();
    let keptIds: string[] = [];
    let keptHelds: Held[] = [];
    const keepAtMost = map.size * REBUILD_FACTOR / (1 + REBUILD_FACTOR);
    let keeping = true;
    /** Taken records not removed yet (set aside while keeping). */
    const backlog = new Slices();
    /** Removes a taken record of the backlog, unless it was written again since it was taken. */
    const removeTaken = (id: string, held: Held) => {
      const written = sweep.written; // undefined once the backlog was empty
      if (written === undefined || !written.has(id) || map.get(id) === held) this.#remove(id);
    };
    /**
     * The slice's taken records and their held strings (TAKEN for a mapping marked in place),
     * and per record what to report: 1 itself, 2 itself with its mapping taken along, 0 nothing
     * (a mapping taken along).
     */
    let ids: string[] = [];
    let helds: Held[] = [];
    let kinds: number[] = [];
    // The live record just passed in this slice (a mapping may name the expired session that
    // follows), and an expired session whose mapping was not found yet (it may follow; a slice
    // goes on until it is found or not). The manager writes a session and its mapping one after
    // the other, so most pairs are next to each other and found without a keyed lookup.
    let lastKey: string | undefined;
    let lastHeld: Held = "";
    /** How many mappings were found by key (and marked). */
    let lookedUp = 0;
    let waitingId: string | undefined;
    let waitingClient = "";
    const take = (key: string, held: Held, kind: number) => {
      ids.push(key);
      helds.push(held);
      kinds.push(kind);
    };
    /** Takes the mapping of the session taken last along with it (its entry says so). */
    const takeAlong = (key: string, held: Held) => {
      kinds[kinds.length - 1] = 2;
      take(key, held, 0);
    };
    /** The mapping of the session taken last, found by key: taken if live and naming it. */
    const lookUp = (id: string, clientId: string) => {
      const key = prefix + clientId;
      const mapping = map.get(key);
      if (mapping === undefined || mapping === TAKEN || expiryOf(mapping) <= expiredBy) return;
      if (!namesSession(mapping, id)) return;
      takeAlong(key, TAKEN);
      // Marked in place until removed: it reads as missing, the walk skips it, and a rebuild
      // leaves it out. A mark, not a Set of their keys: on Bun, where the records are in shards
      // and so rarely next to each other, that Set would grow by a key per session, and a
      // growing collection is what JavaScriptCore collects expensively.
      map.set(key, TAKEN);
      lookedUp++;
    };
    // Nothing here throws (the id fields of JSON-shaped records are read defensively), so what
    // a slice takes is always removed or set aside before any record of it is decoded.
    const visit = (key: string, held: Held) => {
      if (held === TAKEN) return;
      if (waitingId !== undefined) {
        const id = waitingId;
        waitingId = undefined;
        // The one record under that key: taken along if it names the session (expired too: it
        // is met here for the first time), else left to the checks below (it may name the
        // session that follows).
        if (isPrefixedKey(key, prefix, waitingClient)) {
          if (namesSession(held, id)) return takeAlong(key, held);
        } else lookUp(id, waitingClient);
      }
      if (expiryOf(held) > expiredBy) {
        if (keeping && kept.size + keptIds.length < keepAtMost) {
          keptIds.push(key);
          keptHelds.push(held);
        } else keeping = false;
        lastKey = key;
        lastHeld = held;
        return;
      }
      take(key, held, 1);
      const last = lastKey;
      lastKey = undefined;
      if (plen === 0) return;
      // A browser's first session has its client id as its id: no mapping (see the manager).
      const clientId = otherClientIdOf(held, key);
      if (clientId === undefined) return;
      if (last !== undefined && isPrefixedKey(last, prefix, clientId)) {
        if (!namesSession(lastHeld, key)) return;
        takeAlong(last, lastHeld);
        if (keeping) {
          keptIds.pop(); // it was the last one kept
          keptHelds.pop();
        }
        return;
      }
      waitingId = key;
      waitingClient = clientId;
    };
    let finished = false;
    try {
      for (let done = false; !done;) {
        ids = [];
        helds = [];
        kinds = [];
        lastKey = undefined; // it may have been rewritten since the last slice
        keptIds = [];
        keptHelds = [];
        for (let n = 0; n < SWEEP_SLICE || waitingId !== undefined; n++) {
          const entry = nextEntry();
          if (entry === undefined) {
            if (waitingId !== undefined) lookUp(waitingId, waitingClient);
            waitingId = undefined;
            done = true;
            break;
          }
          visit(entry[0], entry[1]);
        }
        if (keeping) {
          backlog.push(ids, helds);
          kept.push(keptIds, keptHelds);
        } else {
          for (let i = 0; i < ids.length; i++) this.#remove(ids[i]!);
          if (kept.size > 0) kept = new Slices(); // no rebuild now
          // Only a backlog or a rebuild needs to know what was written since.
          if (!backlog.next(SWEEP_SLICE, removeTaken)) sweep.written = undefined;
        }
        const batch: TakenRecord[] = [];
        for (let i = 0; i < ids.length; i++) {
          const kind = kinds[i]!;
          if (kind === 0) continue;
          const record = recordOf(ids[i]!, helds[i]!, false);
          batch.push(kind === 2 ? [ids[i]!, record, true] : [ids[i]!, record]);
        }
        yield batch;
        if (sweep.cleared) return;
      }
      // Few enough kept: a new Map of the survivors, built in slices, replaces the old one.
      if (keeping && kept.size < REBUILD_FACTOR * backlog.size) {
        const fresh = new ShardedMap<Held>(shardsFor(this.#max));
        const written = sweep.written!;
        const copy = (id: string, held: Held) => {
          // What was written since is copied at the end; a mapping kept, then found by key and
          // marked, is left out.
          if (written.has(id) || (lookedUp > 0 && map.get(id) === TAKEN)) return;
          fresh.set(id, held);
        };
        while (kept.next(SWEEP_SLICE, copy)) {
          yield [];
          if (sweep.cleared) return;
        }
        this.#replaceMap(fresh, written, backlog);
        finished = true;
        return;
      }
      while (backlog.next(SWEEP_SLICE, removeTaken)) {
        yield [];
        if (sweep.cleared) return;
      }
      finished = true;
    } finally {
      // Stopped early (or a record failed to decode): what was taken goes; the rest stays.
      if (!finished && !sweep.cleared) backlog.next(Infinity, removeTaken);
      if (this.#sweep === sweep) this.#sweep = undefined;
    }
  }

  /**
   * Ends a takeExpired's rebuild: `fresh` (the survivors, less those written since) takes what
   * was written since from the old Map, and replaces it; the taken records leave the indexes.
   */
  #replaceMap(fresh: ShardedMap<Held>, written: Set<string>, taken: Slices): void {
    const old = this.#map;
    /** The taken records written since (added expired) that are still as taken. */
    const stillTaken = new Set<string>();
    /** The taken records written again since: kept. */
    const writtenAgain = new Set<string>();
    if (written.size > 0) {
      taken.forEach((id, held) => {
        if (written.has(id)) (old.get(id) === held ? stillTaken : writtenAgain).add(id);
      });
    }
    for (const id of written) {
      const held = old.get(id);
      if (held === undefined || held === TAKEN || stillTaken.has(id)) fresh.delete(id);
      else fresh.set(id, held);
    }
    if (this.#userOf.size > 0 || this.#rewritten.size > 0) {
      taken.forEach((id) => {
        if (writtenAgain.has(id)) return;
        this.#unindexUser(id);
        this.#rewritten.delete(id);
      });
    }
    this.#map = fresh;
    this.#uncacheAll();
  }

  /** Removes every record (and ends a takeExpired in progress). */
  clear(): void {
    if (this.#sweep !== undefined) this.#sweep.cleared = true;
    this.#sweep = undefined;
    this.#map.clear();
    this.#uncacheAll();
    this.#rewritten.clear();
    this.#users.clear();
    this.#userOf.clear();
  }
}

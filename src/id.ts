/**
 * Session and client ids: 144 random bits from `crypto.getRandomValues`, base64url (24 chars);
 * 132 for an id made to end as another ({@linkcode generateUidEndingAs}).
 * Random bytes are drawn from a pooled buffer, so the per-id cost of the Web Crypto call
 * (5.6 µs on Node for 16 bytes) is paid once per 170 ids.
 * @module
 */
import { base64UrlValue, encodeBase64Url } from "./encoding.ts";

const ID_BYTES = 18;
const ID_SLOTS = 170;
const POOL_SIZE = ID_BYTES * ID_SLOTS; // 3060 bytes, under the 65536-byte getRandomValues limit
const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;
/**
 * A view of each id's slot of the pool, made once: an id is encoded from its view without a new
 * one per id (which, with the encoding, showed as 8 % of a Bun loop creating sessions).
 */
const ID_VIEWS = Array.from(
  { length: ID_SLOTS },
  (_, i) => pool.subarray(i * ID_BYTES, (i + 1) * ID_BYTES),
);

/**
 * Generates a random id: 144 bits from `crypto.getRandomValues`, as 24 base64url characters.
 *
 * @returns a fresh id such as `"x3Q0k4m9t8P2dW1bq9Zr7u5v"`
 *
 * @example Usage
 * ```ts
 * import { generateUid } from "unisession";
 * const id = generateUid();
 * console.log(id.length); // 24
 * ```
 */
export function generateUid(): string {
  return fromSlot(-1, -1);
}

/**
 * A random id ending with the last two characters of `like` when they are base64url (132 random
 * bits then), else {@linkcode generateUid}'s. The manager makes the session of a browser with a
 * client id this way, so that MapStore's shards (on Bun) hold the session and its client mapping
 * together (see `src/sharded_map.ts`).
 */
export function generateUidEndingAs(like: string): string {
  const n = like.length;
  const a = base64UrlValue(like.charCodeAt(n - 2));
  const b = base64UrlValue(like.charCodeAt(n - 1));
  return a < 0 || b < 0 ? fromSlot(-1, -1) : fromSlot(a, b);
}

/** An id from the next slot of the pool, its last two characters' values `a`, `b` when ≥ 0. */
function fromSlot(a: number, b: number): string {
  // The next whole slot (salts and IVs drawn meanwhile may have left the offset between two).
  offset = Math.ceil(offset / ID_BYTES) * ID_BYTES;
  const view = ID_VIEWS[claim(ID_BYTES) / ID_BYTES]!;
  if (a >= 0) {
    // Characters 22 and 23 are the last 12 of the 144 bits: 4 of byte 16, all of byte 17.
    view[16] = (view[16]! & 0xf0) | (a >> 2);
    view[17] = ((a & 3) << 6) | b;
  }
  const id = encodeBase64Url(view);
  // Wipe the used bytes so the pool never holds an id that was handed out.
  view.fill(0);
  return id;
}

/**
 * `n` random bytes (at most the pool's 3,060) from the same pool as the ids, for salts and IVs.
 * @internal
 */
export function randomBytes(n: number): Uint8Array {
  const at = claim(n);
  const out = pool.slice(at, at + n);
  pool.fill(0, at, at + n);
  return out;
}

/** Reserves `n` fresh bytes of the pool (refilled when too few are left); returns their offset. */
function claim(n: number): number {
  if (offset + n > POOL_SIZE) {
    crypto.getRandomValues(pool);
    offset = 0;
  }
  const at = offset;
  offset += n;
  return at;
}

/** Length of every id made by {@linkcode generateUid}. */
export const UID_LENGTH = 24;

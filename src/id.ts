/**
 * Session and client ids: 144 random bits from `crypto.getRandomValues`, base64url (24 chars).
 * Random bytes are drawn from a pooled buffer, so the per-id cost of the Web Crypto call
 * (5.6 µs on Node for 16 bytes) is paid once per 170 ids.
 * @module
 */
import { encodeBase64Url } from "./encoding.ts";

const ID_BYTES = 18;
const POOL_SIZE = ID_BYTES * 170; // 3060 bytes, under the 65536-byte getRandomValues limit
const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;

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
  const at = claim(ID_BYTES);
  const id = encodeBase64Url(pool, at, at + ID_BYTES);
  // Wipe the used bytes so the pool never holds an id that was handed out.
  pool.fill(0, at, at + ID_BYTES);
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

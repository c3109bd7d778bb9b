/**
 * Session and client ids: 144 random bits from `crypto.getRandomValues`, base64url (24 chars).
 * Random bytes are drawn from a pooled buffer, so the per-id cost of the Web Crypto call
 * (5.6 µs on Node for 16 bytes) is paid once per 170 ids.
 * @module
 */
import { encodeBase64Url } from "./encoding.ts";
import { JAVASCRIPTCORE } from "./engine.ts";

const ID_BYTES = 18;
const ID_SLOTS = 170;
const POOL_SIZE = ID_BYTES * ID_SLOTS; // 3060 bytes, under the 65536-byte getRandomValues limit
const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;

/** `Uint8Array.prototype.toBase64` (ES2026), where the runtime has it. */
type ToBase64 = (options: { alphabet: "base64url"; omitPadding: boolean }) => string;
const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;

/**
 * On JavaScriptCore (Bun), ids are encoded by the runtime's `toBase64` from a view of their slot
 * of the pool made once: 0.08 µs per id, against 0.17 through a new view and `encodeBase64Url`'s
 * `TextDecoder` (Bun 1.4, in a loop), whose view per id also showed as 8 % of a loop creating
 * sessions. On V8 (Deno has `toBase64`, Node 20 not) `encodeBase64Url` is the faster one.
 */
const ID_VIEWS: Uint8Array[] | undefined = JAVASCRIPTCORE &&
    typeof (pool as unknown as { toBase64?: unknown }).toBase64 === "function"
  ? Array.from({ length: ID_SLOTS }, (_, i) => pool.subarray(i * ID_BYTES, (i + 1) * ID_BYTES))
  : undefined;

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
  if (ID_VIEWS !== undefined) {
    // The next whole slot (salts and IVs drawn meanwhile may have left the offset between two).
    offset = Math.ceil(offset / ID_BYTES) * ID_BYTES;
    const view = ID_VIEWS[claim(ID_BYTES) / ID_BYTES]!;
    const id = (view as unknown as { toBase64: ToBase64 }).toBase64(BASE64URL);
    view.fill(0);
    return id;
  }
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

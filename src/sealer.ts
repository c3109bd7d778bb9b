/**
 * Sealed cookies for the stateless mode: the whole session record is encrypted and
 * authenticated into the cookie with iron-webcrypto (AES-256-CBC + HMAC-SHA-256).
 * Sealed with the first key; unsealed with any key of the ring (rotation by key id).
 * @module
 */
import { defaults, seal, unseal } from "iron-webcrypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decodeBase64Url, utf8 } from "./encoding.ts";
import { OldestKey } from "./oldest_key.ts";

/**
 * How many unsealed cookies to remember: a browser sending the same cookie again (every read-only
 * request) costs a Map lookup and a JSON.parse instead of AES and HMAC through Web Crypto
 * (~300 µs on Node). Bounded by count: at most ~8 MB for cookies at the 4096-byte limit.
 */
const CACHE_SIZE = 1000;
/** Longest sealed value accepted before any crypto. */
const MAX_SEALED_LENGTH = 4096;
/**
 * The characters of an iron seal: hex ids and salts, base64url parts, decimal expiry, `*`.
 * iron's base64 decoder skips others (whitespace), which would let variants of a seal pass.
 */
const SEALED_SHAPE = /^Fe26\.2\*[\w*-]+$/;

/** Seals and unseals JSON values with a ring of ≥32-character secrets. */
export class Sealer {
  readonly #current: { id: string; secret: string };
  readonly #all: Record<string, string>;
  /** Sealed value → the JSON of what it unsealed to (a fresh copy per hit), and its key's age. */
  readonly #cache = new Map<string, { json: string; stale: boolean }>();
  readonly #oldest = new OldestKey(this.#cache);

  /** @param keys secrets of at least 32 characters, newest first */
  constructor(keys: readonly string[]) {
    const all: Record<string, string> = Object.create(null);
    for (const secret of keys) all[keyId(secret)] = secret;
    this.#all = all;
    this.#current = { id: keyId(keys[0]!), secret: keys[0]! };
  }

  /** Seals a JSON-serialisable value. */
  seal(value: unknown): Promise<string> {
    return seal(value, this.#current, defaults);
  }

  /**
   * Unseals a value. Resolves undefined for anything that is not a value sealed by one of the keys
   * (tampered, truncated, wrong key, too long); never rejects.
   */
  async unseal(
    sealed: string | undefined,
  ): Promise<{ value: unknown; stale: boolean } | undefined> {
    if (typeof sealed !== "string" || sealed.length > MAX_SEALED_LENGTH) return undefined;
    const hit = this.#cache.get(sealed);
    if (hit !== undefined) return { value: JSON.parse(hit.json), stale: hit.stale };
    if (!SEALED_SHAPE.test(sealed) || !canonical(sealed)) return undefined;
    let value: unknown;
    try {
      value = await unseal(sealed, this.#all, defaults);
    } catch {
      return undefined;
    }
    const id = sealed.slice(7, sealed.indexOf("*", 7));
    const stale = id !== this.#current.id;
    const json = JSON.stringify(value);
    if (json === undefined) return undefined; // not a JSON value: nothing we sealed
    if (this.#cache.size >= CACHE_SIZE) this.#cache.delete(this.#oldest.next()!);
    this.#cache.set(sealed, { json, stale });
    return { value, stale };
  }
}

/**
 * True when the IV, ciphertext and MAC parts are canonical base64url (no stray trailing bits),
 * so one seal has exactly one accepted spelling.
 */
function canonical(sealed: string): boolean {
  const parts = sealed.split("*");
  return parts.length === 8 &&
    [parts[3]!, parts[4]!, parts[7]!].every((p) => decodeBase64Url(p) !== undefined);
}

/** A short, stable, non-secret id for a key, so rotation does not depend on key order. */
function keyId(secret: string): string {
  return bytesToHex(sha256(utf8(secret)).subarray(0, 6)); // iron ids must match /^\w+$/
}

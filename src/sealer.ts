/**
 * Sealed cookies for the stateless mode: the whole session record is encrypted and
 * authenticated into the cookie as an iron seal (AES-256-CBC + HMAC-SHA-256, `./iron.ts`).
 * Sealed with the first key; unsealed with any key of the ring (rotation by key id).
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { utf8 } from "./encoding.ts";
import { type IronKey, ironSeal, ironUnseal } from "./iron.ts";
import { BoundedMap } from "./sharded_map.ts";
import { copyJson, exactCopy, NOT_EXACT } from "./json_copy.ts";

/**
 * How many unsealed cookies to remember: a browser sending the same cookie again (every read-only
 * request) costs a Map lookup and a copy of what it held instead of an HMAC and AES (5–90 µs,
 * depending on the runtime and on whether `node:crypto` is there, see `./iron.ts`). Bounded by
 * count: at most ~8 MB for cookies at the 4096-byte limit.
 */
const CACHE_SIZE = 1000;
/** Longest sealed value accepted before any crypto. */
const MAX_SEALED_LENGTH = 4096;
/**
 * The characters of an iron seal: hex ids and salts, base64url parts, decimal expiry, `*`
 * (`ironUnseal` also insists on canonical base64url: one spelling per seal).
 */
const SEALED_SHAPE = /^Fe26\.2\*[\w*-]+$/;

/** Seals and unseals JSON values with a ring of ≥32-character secrets. */
export class Sealer {
  readonly #current: IronKey;
  readonly #all = new Map<string, IronKey>();
  /**
   * Sealed value → what it unsealed to (never handed out: a fresh copy per hit, made without
   * JSON.parse), and its key's age.
   */
  readonly #cache = new BoundedMap<string, { value: unknown; stale: boolean }>(CACHE_SIZE);
  /** Each key of the ring under the empty id, for {@linkcode Sealer.unsealUnnamed} (made on use). */
  #unnamed: ReadonlyMap<string, IronKey>[] | undefined;

  /** @param keys secrets of at least 32 characters, newest first */
  constructor(keys: readonly string[]) {
    for (const secret of keys) {
      const id = keyId(secret);
      if (!this.#all.has(id)) this.#all.set(id, { id, secret: utf8(secret) });
    }
    this.#current = this.#all.get(keyId(keys[0]!))!;
  }

  /**
   * Seals a JSON-serialisable value, and remembers what it sealed: the browser sends the new
   * cookie with its next request, which then needs no AES and no HMAC to open it (after a write,
   * that decryption was about a fifth of a Bun server's samples on a sealed increment).
   * @throws {TypeError} when the value has no JSON form (undefined, a function, a symbol)
   */
  async seal(value: unknown): Promise<string> {
    const json = JSON.stringify(value); // a BigInt or a cycle throws here (a rejection)
    if (json === undefined) throw new TypeError("Cannot seal a value that has no JSON form");
    const sealed = await ironSeal(json, this.#current);
    if (sealed.length <= MAX_SEALED_LENGTH) {
      const copy = exactCopy(value);
      this.#cache.set(sealed, {
        value: copy === NOT_EXACT ? JSON.parse(json) : copy,
        stale: false,
      });
    }
    return sealed;
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
    if (hit !== undefined) return { value: copyJson(hit.value), stale: hit.stale };
    if (!SEALED_SHAPE.test(sealed)) return undefined;
    const json = await ironUnseal(sealed, this.#all);
    if (json === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      return undefined; // sealed by a key holder, but not JSON: nothing we sealed
    }
    const id = sealed.slice(7, sealed.indexOf("*", 7));
    const stale = id !== this.#current.id;
    this.#cache.set(sealed, { value: copyJson(value), stale });
    return { value, stale };
  }

  /**
   * Unseals a value sealed without a key id (`Fe26.2**...`): what iron-webcrypto makes when given
   * the secret itself as the password, as hono-session seals its cookies. The first keys of the
   * ring are tried in turn ({@linkcode MAX_UNNAMED_KEYS} at most). Not cached: a caller re-seals
   * what it opens with {@linkcode Sealer.seal}. Resolves undefined for anything else (our own
   * seals, which name their key, included); never rejects.
   */
  async unsealUnnamed(sealed: string | undefined): Promise<unknown> {
    if (
      typeof sealed !== "string" || sealed.length > MAX_SEALED_LENGTH ||
      !sealed.startsWith(UNNAMED_PREFIX) || !SEALED_SHAPE.test(sealed)
    ) {
      return undefined;
    }
    this.#unnamed ??= [...this.#all.values()].slice(0, MAX_UNNAMED_KEYS).map((k) =>
      new Map([["", { id: "", secret: k.secret }]])
    );
    for (const ring of this.#unnamed) {
      const json = await ironUnseal(sealed, ring);
      if (json === undefined) continue;
      try {
        return JSON.parse(json);
      } catch {
        return undefined; // sealed by a key holder, but not JSON
      }
    }
    return undefined;
  }
}

/** How a seal made without a key id begins (iron-webcrypto given the secret as a string). */
const UNNAMED_PREFIX = "Fe26.2**";
/** Keys tried on a seal without a key id: a forged one costs a key derivation per key tried. */
const MAX_UNNAMED_KEYS = 4;

/** A short, stable, non-secret id for a key, so rotation does not depend on key order. */
function keyId(secret: string): string {
  return bytesToHex(sha256(utf8(secret)).subarray(0, 6)); // iron ids must match /^\w+$/
}

/**
 * What hono-session itself wrote, read by the Hono drop-in, so that changing the import keeps
 * users logged in:
 * - its sealed cookies (iron-webcrypto with the secret as password: a seal without a key id,
 *   holding the data next to `_expires` and `_flashKeys`) are opened and answered with this
 *   library's seal, which the browser sends from then on;
 * - its store rows (the same object under a random UUID) read as records, and the request that
 *   reads one rewrites it in this library's format; with a secret, a bare UUID cookie (hono-session
 *   never signs it) is accepted only while its row is still hono-session's, and answered with the
 *   signed cookie;
 * - a custom encoder gets and returns hono-session's shape, so its old cookies decode too.
 *
 * Not part of the public API.
 * @module
 */
import type { Context } from "hono";
import { sha256 } from "@noble/hashes/sha2.js";
import { andThen } from "../src/awaitable.ts";
import { cookieValue, MAX_COOKIE_SIZE } from "../src/cookie.ts";
import { encodeBase64Url, utf8 } from "../src/encoding.ts";
import type { SealedRecord, SessionManager } from "../src/manager.ts";
import type { SessionEncoder } from "../src/options.ts";
import { Sealer } from "../src/sealer.ts";
import { CookieSigner, Keyring } from "../src/signer.ts";
import {
  type Awaitable,
  isStoredRecord,
  type Store,
  type StoredRecord,
  StoreGateway,
} from "../src/store.ts";

/** Where a custom encoder's object carries what this library adds to hono-session's fields. */
const META = "_unisession";
/** How hono-session's iron seals begin: iron-webcrypto names no key when given a string secret. */
const UNNAMED_SEAL = "Fe26.2**";
/** hono-session's store ids: `crypto.randomUUID()`. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The manager's store timeout (not a hono-session option, so always its default). */
const STORE_TIMEOUT_MS = 10_000;
/**
 * Room left for the attributes of the Set-Cookie header (`; Max-Age=…; Domain=…; Path=…;
 * HttpOnly; Secure; SameSite=…`) when checking that our seal of an old session fits in one.
 */
const ATTRIBUTES_ROOM = 256;

/**
 * A session object as hono-session seals and stores it (the data next to `_expires`, its expiry
 * in epoch ms, and `_flashKeys`, the keys flashed by the request that saved it) as a record;
 * undefined when `x` is not one. hono-session keeps no creation time: it is taken as one `maxAge`
 * (ms) before the expiry (hono-session's expiry moves only with `renew()`).
 */
function fromHonoSession(x: unknown, maxAge: number): StoredRecord | undefined {
  if (x === null || typeof x !== "object" || Array.isArray(x)) return undefined;
  const { _expires: expiresAt, _flashKeys: flash, ...data } = x as Record<string, unknown>;
  if (typeof expiresAt !== "number" || !Number.isFinite(expiresAt)) return undefined;
  delete data[META];
  const rec: StoredRecord = {
    data,
    expiresAt,
    createdAt: Math.min(expiresAt - maxAge, Date.now()),
  };
  if (Array.isArray(flash) && flash.length > 0 && flash.every((k) => typeof k === "string")) {
    rec.flash = flash;
  }
  return rec;
}

/**
 * A session id for a cookie that carries none (hono-session's sealed cookies): the same for every
 * request that sends the cookie, until it is replaced by one that names its id.
 */
function idOfCookie(value: string): string {
  return encodeBase64Url(sha256(utf8(value)).subarray(0, 18));
}

/** The sealed record for a hono-session session object found in the cookie `value`. */
function sealedFromHono(
  rec: StoredRecord,
  name: string,
  value: string,
): SealedRecord {
  const sealed: SealedRecord = {
    n: name,
    i: idOfCookie(value),
    d: rec.data,
    e: rec.expiresAt,
    c: rec.createdAt,
  };
  if (rec.flash) sealed.f = rec.flash;
  return sealed;
}

/**
 * A custom encoder called as hono-session calls it: `encode` gets the session object hono-session
 * would pass (the data, `_expires`, `_flashKeys` when there are any) plus `_unisession` (the
 * session id, cookie name, creation time and what else the manager seals), and `decode`'s object
 * is read back the same way. An object without `_unisession` is a cookie hono-session encoded: its
 * session is used, and re-encoded in full with its next write. An object without `_expires` is
 * the record itself, as this adapter passed it before (the manager checks it).
 */
export function honoEncoder(encoder: SessionEncoder, name: string, maxAge: number): SessionEncoder {
  return {
    encode: (value, secret) => encoder.encode(toHonoSession(value as SealedRecord), secret),
    decode: async (data, secret) => {
      const decoded = await encoder.decode(data, secret);
      if (decoded === null || typeof decoded !== "object" || !("_expires" in decoded)) {
        return decoded;
      }
      const rec = fromHonoSession(decoded, maxAge);
      if (rec === undefined) return undefined;
      const meta = (decoded as Record<string, unknown>)[META];
      if (meta === null || typeof meta !== "object") return sealedFromHono(rec, name, data);
      const m = meta as Partial<SealedRecord>;
      const sealed: SealedRecord = { n: m.n!, i: m.i!, d: rec.data, e: rec.expiresAt, c: m.c! };
      if (rec.flash) sealed.f = rec.flash;
      if (typeof m.m === "number" && m.m > 0 && Number.isFinite(m.m)) sealed.m = m.m;
      if (typeof m.k === "string") sealed.k = m.k;
      if (typeof m.x === "string") sealed.x = m.x;
      return sealed;
    },
  };
}

/** A sealed record in hono-session's shape: the data, `_expires`, `_flashKeys`, `_unisession`. */
function toHonoSession(s: SealedRecord): Record<string, unknown> {
  const meta: Partial<SealedRecord> = { n: s.n, i: s.i, c: s.c };
  if (s.m !== undefined) meta.m = s.m;
  if (s.k !== undefined) meta.k = s.k;
  if (s.x !== undefined) meta.x = s.x;
  const out: Record<string, unknown> = { ...s.d, _expires: s.e };
  if (s.f?.length) out._flashKeys = s.f;
  else delete out._flashKeys;
  out[META] = meta;
  return out;
}

/**
 * A hono-session store whose rows may still be hono-session's own session objects: those read as
 * records, remembered (so the request that loaded one rewrites it, see {@linkcode HonoRows.isOld}).
 * Rows written by this library pass through as they are.
 */
export class HonoRows implements Store {
  readonly #store: Store;
  readonly #maxAge: number;
  readonly #old = new WeakSet<StoredRecord>();

  /**
   * @param store the hono-session store, as `toStore(store, "hono")` adapts it
   * @param maxAge the session window in ms (hono-session's rows keep no creation time)
   */
  constructor(store: Store, maxAge: number) {
    this.#store = store;
    this.#maxAge = maxAge;
  }

  get(id: string, ctx?: unknown): Awaitable<StoredRecord | undefined | null> {
    return andThen(this.#store.get(id, ctx), (row) => this.#read(row));
  }

  set(id: string, record: StoredRecord, ttlMs: number, ctx?: unknown): unknown {
    return this.#store.set(id, record, ttlMs, ctx);
  }

  delete(id: string, ctx?: unknown): unknown {
    return this.#store.delete(id, ctx);
  }

  /** True when `rec` was read from a row hono-session wrote. */
  isOld(rec: StoredRecord | undefined): boolean {
    return rec !== undefined && this.#old.has(rec);
  }

  #read(row: StoredRecord | undefined | null): StoredRecord | undefined | null {
    if (row === undefined || row === null || isStoredRecord(row)) return row;
    const rec = fromHonoSession(row, this.#maxAge);
    if (rec === undefined) return row; // neither kind: the manager reports it corrupt
    this.#old.add(rec);
    return rec;
  }
}

/**
 * How a request holding one of hono-session's cookies is opened: with this library's cookie in
 * its place (then sent to the browser).
 */
export interface Upgrade {
  /** The session cookie's value when it may be one of hono-session's (cheap: no crypto, no I/O). */
  match(header: string | undefined): string | undefined;
  /** This library's cookie value for it, or undefined when it is not a valid one after all. */
  replace(value: string, c: Context): Promise<string | undefined>;
}

/**
 * The upgrade of hono-session's cookies for a manager made from hono-session options, or
 * undefined when there is none to make: stateless mode with iron seals (hono-session's are
 * opened with the same secrets), and a hono-session store with a secret (its bare ids are signed).
 * Without a secret, no earlier seal can be opened (hono-session's secret was random too), and a
 * store's bare ids are this mode's own cookies.
 */
export function upgradeFor(
  o: {
    /** The secrets, newest first; undefined when hono-session's options gave none. */
    keys: readonly string[] | undefined;
    /** The session window in ms. */
    maxAge: number;
    /** A custom encoder seals instead of iron (its cookies are read by `honoEncoder`). */
    encoder: boolean;
  },
  manager: SessionManager,
  rows: HonoRows | undefined,
): Upgrade | undefined {
  const { keys, maxAge } = o;
  if (keys === undefined) return undefined;
  const name = manager.cookieName;
  if (manager.mode === "sealed" && !o.encoder) {
    const sealer = new Sealer(keys);
    return {
      match(header) {
        if (header === undefined || !header.includes(UNNAMED_SEAL)) return undefined;
        const value = cookieValue(header, name);
        return value?.startsWith(UNNAMED_SEAL) ? value : undefined;
      },
      async replace(value) {
        const rec = fromHonoSession(await sealer.unsealUnnamed(value), maxAge);
        if (!rec) return undefined;
        const sealed = await sealer.seal(sealedFromHono(rec, name, value));
        // Ours is longer than hono-session's seal (the id, the creation time): a session near the
        // 4096-byte limit no longer fits in a cookie. Sending it would fail every request (the
        // browser keeps resending the old cookie); it starts over instead, as no session.
        return name.length + 1 + sealed.length + ATTRIBUTES_ROOM <= MAX_COOKIE_SIZE
          ? sealed
          : undefined;
      },
    };
  }
  if (rows === undefined) return undefined;
  const signer = new CookieSigner(new Keyring(keys), name, 0);
  const gateway = new StoreGateway(rows, { timeoutMs: STORE_TIMEOUT_MS, onCorrupt: () => {} });
  return {
    match(header) {
      const value = cookieValue(header, name);
      return value?.length === 36 && UUID.test(value) ? value : undefined;
    },
    async replace(value, c) {
      // Only while the row is hono-session's: a bare id of a row written here is no cookie.
      return rows.isOld(await gateway.get(value, c)) ? signer.sign(value) : undefined;
    },
  };
}

/**
 * `header` with the value of cookie `name` replaced by `value`: at its first occurrence, the one
 * `cookieValue` (and so the manager) reads.
 */
export function withCookie(header: string, name: string, value: string): string {
  const pairs = header.split(";");
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const eq = pair.indexOf("=");
    if (eq !== -1 && pair.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, "") === name) {
      pairs[i] = `${i === 0 ? "" : " "}${name}=${value}`;
      break;
    }
  }
  return pairs.join(";");
}

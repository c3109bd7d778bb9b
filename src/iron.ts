/**
 * iron seals (`Fe26.2`, the format of @hapi/iron and iron-webcrypto with their default options:
 * AES-256-CBC, HMAC-SHA-256, PBKDF2-SHA-1 keys with 256-bit salts and one iteration). The key
 * derivations and the MAC run synchronously (@noble/hashes for PBKDF2, `./hmac.ts`). AES runs in
 * native code, never in JavaScript (table-based AES leaks timing): through `node:crypto` where the
 * runtime has it (Node, Deno and Bun, found with `process.getBuiltinModule`, not imported, so the
 * module still loads where there is none), synchronously; elsewhere through `crypto.subtle`. Per
 * seal of a small session that is 0.7 µs of CPU against 22 on Bun, 4–6 against 28 on Deno, 5
 * against 45 on Node (measured in a loop; `crypto.subtle` hops to another thread and back). A
 * forged seal is refused before any AES.
 *
 * Derived keys are reused: a pair of salts serves up to {@linkcode SEALS_PER_SALT} seals or
 * {@linkcode SALT_LIFETIME_MS}, each seal with its own random IV, and unsealing keeps the keys of
 * recently seen salts whose MAC verified. Every seal still names its salts, so any iron
 * implementation opens it. A reused salt means a fixed AES and HMAC key for that stretch, which
 * is how most cookie ciphers run all the time; what it saves is a PBKDF2 pair and an AES key import
 * through Web Crypto per seal.
 *
 * Interoperable both ways with iron-webcrypto (`tests/sealer.test.ts` seals with one and unseals
 * with the other).
 * @module
 */
import { sha1 } from "@noble/hashes/legacy.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { decodeBase64Url, encodeBase64Url, timingSafeEqual, utf8 } from "./encoding.ts";
import { HmacSha256 } from "./hmac.ts";
import { builtinNodeCrypto } from "./node_crypto.ts";
import { randomBytes } from "./id.ts";
import { isThenable } from "./awaitable.ts";
import { BoundedMap } from "./sharded_map.ts";

const PREFIX = "Fe26.2";
/** Bytes of each salt (iron's `saltBits: 256`), written as hex. */
const SALT_BYTES = 32;
const IV_BYTES = 16;
/** iron's `timestampSkewSec`, for seals that carry an expiration. */
const SKEW_MS = 60_000;
/** Seals made with one pair of salts (and so one pair of derived keys) before new ones are drawn. */
export const SEALS_PER_SALT: number = 10_000;
/** How long one pair of salts is used for sealing, at most. */
export const SALT_LIFETIME_MS: number = 10 * 60_000;
/** Derived keys of salts seen in verified seals, kept for unsealing (per kind). */
const UNSEAL_KEYS = 256;
const decoder = new TextDecoder();

/** A secret of the ring, with its id (`\w+`) as written into the seal. */
export interface IronKey {
  id: string;
  /** The secret's UTF-8 bytes (at least 32 characters). */
  secret: Uint8Array;
}

/** iron's key derivation: PBKDF2-SHA-1 of the secret over the salt's hex text, 32 bytes. */
function derive(secret: Uint8Array, salt: string): Uint8Array {
  return pbkdf2(sha1, secret, utf8(salt), { c: 1, dkLen: 32 });
}

/** A key as an {@linkcode AesCbc} holds it (a promise of one while Web Crypto imports it). */
export type CipherKey = unknown;

/** AES-256-CBC with PKCS#7 padding, in native code. */
export interface AesCbc {
  /** A key from 32 raw bytes (kept per salt, reused for every seal and unseal). */
  importKey(raw: Uint8Array): CipherKey;
  encrypt(key: CipherKey, iv: Uint8Array, plain: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Throws (or rejects) on a bad key or bad padding. */
  decrypt(key: CipherKey, iv: Uint8Array, data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** One direction of AES-CBC through `crypto.subtle`, with a key that is a promise of a CryptoKey. */
function subtleCbc(op: "encrypt" | "decrypt"): AesCbc["encrypt"] {
  return async (key, iv, input) =>
    new Uint8Array(
      await crypto.subtle[op](
        { name: "AES-CBC", iv: iv as BufferSource },
        await (key as Promise<CryptoKey>),
        input as BufferSource,
      ),
    );
}

/** AES through `crypto.subtle`: keys are promises of a CryptoKey. */
export const webCryptoAes: AesCbc = {
  importKey: (raw) =>
    crypto.subtle.importKey("raw", raw as BufferSource, "AES-CBC", false, ["encrypt", "decrypt"]),
  encrypt: subtleCbc("encrypt"),
  decrypt: subtleCbc("decrypt"),
};

/** What {@linkcode nodeCryptoAes} uses of `node:crypto`. */
interface NodeCrypto {
  createSecretKey(key: Uint8Array): unknown;
  createCipheriv(algorithm: string, key: unknown, iv: Uint8Array): NodeCipher;
  createDecipheriv(algorithm: string, key: unknown, iv: Uint8Array): NodeCipher;
}
interface NodeCipher {
  update(data: Uint8Array): Uint8Array;
  final(): Uint8Array;
}

/** Both parts of a cipher's output, as one array. */
function run(cipher: NodeCipher, input: Uint8Array): Uint8Array {
  const head = cipher.update(input);
  const tail = cipher.final();
  if (head.length === 0) return tail;
  if (tail.length === 0) return head;
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/**
 * The check a `node:crypto` AES must pass before it is used: NIST SP 800-38A's CBC-AES256 example
 * (F.2.5), its first block, sealed with PKCS#7 padding (the second block, as Web Crypto makes it).
 */
const CHECK = {
  key: "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
  iv: "000102030405060708090a0b0c0d0e0f",
  plain: "6bc1bee22e409f96e93d7e117393172a",
  sealed: "f58c4c04d6e5f1ba779eabfb5f7bfbd6485a5c81519cf378fa36d42b8547edc0",
};

/**
 * AES through a `node:crypto` module, synchronous; undefined when `nc` is not one whose AES-CBC
 * gives the known answer ({@linkcode CHECK}) and opens it again, so a runtime whose compatibility
 * layer lacks the cipher, throws in it, or does something else (no encryption, another mode)
 * keeps Web Crypto instead of failing, or leaking, every seal.
 */
export function aesFromNodeCrypto(nc: unknown): AesCbc | undefined {
  const m = nc as Partial<NodeCrypto> | undefined;
  if (
    typeof m?.createSecretKey !== "function" || typeof m.createCipheriv !== "function" ||
    typeof m.createDecipheriv !== "function"
  ) {
    return undefined;
  }
  const c = m as NodeCrypto;
  const aes: AesCbc = {
    importKey: (raw) => c.createSecretKey(raw),
    encrypt: (key, iv, plain) => run(c.createCipheriv("aes-256-cbc", key, iv), plain),
    decrypt: (key, iv, data) => run(c.createDecipheriv("aes-256-cbc", key, iv), data),
  };
  try {
    const key = aes.importKey(hexToBytes(CHECK.key));
    const iv = hexToBytes(CHECK.iv);
    const sealed = aes.encrypt(key, iv, hexToBytes(CHECK.plain)) as Uint8Array;
    const opened = aes.decrypt(key, iv, sealed) as Uint8Array;
    return bytesToHex(sealed) === CHECK.sealed && bytesToHex(opened) === CHECK.plain
      ? aes
      : undefined;
  } catch {
    return undefined;
  }
}

let found: { aes: AesCbc | undefined } | undefined;

/**
 * AES through the runtime's `node:crypto`, undefined on a runtime without a working one. Found
 * and checked on first use, not when the module loads: a manager with a store never seals.
 */
export function nodeCryptoAes(): AesCbc | undefined {
  return (found ??= { aes: aesFromNodeCrypto(builtinNodeCrypto()) }).aes;
}

/** The AES of this runtime: `node:crypto` where there is one, else Web Crypto. */
function runtimeAes(): AesCbc {
  return nodeCryptoAes() ?? webCryptoAes;
}

/** The salts a key currently seals with, and what they derive. */
interface SealingKeys {
  encryptionSalt: string;
  macSalt: string;
  cipher: CipherKey;
  mac: HmacSha256;
  left: number;
  until: number;
}

/** What a key has derived: its current sealing salts, and the keys of salts seen in seals. */
interface KeyCache {
  sealing: SealingKeys | undefined;
  macs: BoundedMap<string, HmacSha256>;
  ciphers: BoundedMap<string, CipherKey>;
}

/**
 * Per AES implementation and key object (WeakMaps: a Sealer that is dropped takes its keys with
 * it).
 */
const caches = new WeakMap<AesCbc, WeakMap<IronKey, KeyCache>>();

function cacheOf(key: IronKey, aes: AesCbc): KeyCache {
  let byKey = caches.get(aes);
  if (byKey === undefined) caches.set(aes, byKey = new WeakMap());
  let c = byKey.get(key);
  if (c === undefined) {
    c = {
      sealing: undefined,
      macs: new BoundedMap(UNSEAL_KEYS),
      ciphers: new BoundedMap(UNSEAL_KEYS),
    };
    byKey.set(key, c);
  }
  return c;
}

function sealingKeys(key: IronKey, now: number, aes: AesCbc): SealingKeys {
  const cache = cacheOf(key, aes);
  let k = cache.sealing;
  if (k === undefined || k.left <= 0 || now >= k.until) {
    const salts = randomBytes(2 * SALT_BYTES);
    const encryptionSalt = bytesToHex(salts.subarray(0, SALT_BYTES));
    const macSalt = bytesToHex(salts.subarray(SALT_BYTES));
    const cipher = aes.importKey(derive(key.secret, encryptionSalt));
    k = {
      encryptionSalt,
      macSalt,
      cipher,
      mac: new HmacSha256(derive(key.secret, macSalt)),
      left: SEALS_PER_SALT,
      until: now + SALT_LIFETIME_MS,
    };
    // This process's own seals then unseal without deriving anything.
    cache.macs.set(macSalt, k.mac);
    cache.ciphers.set(encryptionSalt, cipher);
    const fresh = k;
    if (isThenable(cipher)) {
      Promise.resolve(cipher).catch(() => { // never reuse a failure
        if (cache.sealing === fresh) cache.sealing = undefined;
      });
    }
    cache.sealing = k;
  }
  k.left--;
  return k;
}

/**
 * Seals `json` (the text to encrypt) with `key`, without an expiration; `now` (epoch ms) decides
 * when the salts are renewed; `aes` is for tests.
 */
export async function ironSeal(
  json: string,
  key: IronKey,
  now: number = Date.now(),
  aes: AesCbc = runtimeAes(),
): Promise<string> {
  const k = sealingKeys(key, now, aes);
  const iv = randomBytes(IV_BYTES);
  const out = aes.encrypt(k.cipher, iv, utf8(json));
  const encrypted = isThenable(out) ? await out : out;
  const base = `${PREFIX}*${key.id}*${k.encryptionSalt}*${encodeBase64Url(iv)}*` +
    `${encodeBase64Url(encrypted)}*`;
  return `${base}*${k.macSalt}*${k.mac.base64Url(base)}`;
}

/**
 * The text sealed into `sealed` by one of `keys` (looked up by the seal's key id), or undefined
 * for anything else: wrong shape, unknown key, bad MAC, expired, undecryptable. Never rejects.
 * Base64url parts must be canonical (one spelling per seal). `aes` is for tests.
 */
export async function ironUnseal(
  sealed: string,
  keys: ReadonlyMap<string, IronKey>,
  now: number = Date.now(),
  aes: AesCbc = runtimeAes(),
): Promise<string | undefined> {
  const parts = sealed.split("*");
  if (parts.length !== 8 || parts[0] !== PREFIX) return undefined;
  const [, id, encryptionSalt, ivPart, encryptedPart, expiration, macSalt, macPart] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const key = keys.get(id);
  if (key === undefined || encryptionSalt === "" || macSalt === "") return undefined;
  if (expiration !== "") {
    if (!/^[1-9]\d*$/.test(expiration) || Number(expiration) <= now - SKEW_MS) return undefined;
  }
  const iv = decodeBase64Url(ivPart);
  const encrypted = decodeBase64Url(encryptedPart);
  if (iv?.length !== IV_BYTES || encrypted === undefined) return undefined;
  const base = sealed.slice(0, sealed.length - macSalt.length - macPart.length - 2);
  // A salt's keys are remembered only once a MAC made with them verified: forged seals with
  // made-up salts cost a derivation each, as before, and never crowd out real ones.
  const { macs, ciphers } = cacheOf(key, aes);
  const known = macs.get(macSalt);
  const mac = known ?? new HmacSha256(derive(key.secret, macSalt));
  // Our canonical spelling of the MAC: any other spelling of the same bytes is refused too.
  if (!timingSafeEqual(mac.base64Url(base), macPart)) return undefined;
  if (!known) macs.set(macSalt, mac);
  let cipher = ciphers.get(encryptionSalt);
  if (cipher === undefined) {
    try {
      cipher = aes.importKey(derive(key.secret, encryptionSalt));
    } catch {
      return undefined; // never rejects
    }
    ciphers.set(encryptionSalt, cipher);
  }
  if (isThenable(cipher)) {
    try {
      await cipher;
    } catch {
      ciphers.delete(encryptionSalt); // a failed import is not kept
      return undefined;
    }
  }
  try {
    const out = aes.decrypt(cipher, iv, encrypted);
    return decoder.decode(isThenable(out) ? await out : out);
  } catch {
    return undefined; // bad padding: only a key holder could have made this MAC
  }
}

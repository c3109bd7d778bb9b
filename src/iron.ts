/**
 * iron seals (`Fe26.2`, the format of @hapi/iron and iron-webcrypto with their default options:
 * AES-256-CBC, HMAC-SHA-256, PBKDF2-SHA-1 keys with 256-bit salts and one iteration), made with
 * two Web Crypto calls per seal instead of eight. The key derivations and the MAC run
 * synchronously (@noble/hashes, a few µs); only AES goes through `crypto.subtle`, which keeps
 * the cipher in constant-time native code. A forged seal is refused before any asynchronous step.
 *
 * Interoperable both ways with iron-webcrypto (`tests/sealer.test.ts` seals with one and unseals
 * with the other).
 * @module
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";
import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { decodeBase64Url, encodeBase64Url, timingSafeEqual, utf8 } from "./encoding.ts";

const PREFIX = "Fe26.2";
/** Bytes of each salt (iron's `saltBits: 256`), written as hex. */
const SALT_BYTES = 32;
const IV_BYTES = 16;
/** iron's `timestampSkewSec`, for seals that carry an expiration. */
const SKEW_MS = 60_000;
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

function aesKey(raw: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as BufferSource, "AES-CBC", false, [usage]);
}

/** Seals `json` (the text to encrypt) with `key`, without an expiration. */
export async function ironSeal(json: string, key: IronKey): Promise<string> {
  const random = crypto.getRandomValues(new Uint8Array(2 * SALT_BYTES + IV_BYTES));
  const encryptionSalt = bytesToHex(random.subarray(0, SALT_BYTES));
  const macSalt = bytesToHex(random.subarray(SALT_BYTES, 2 * SALT_BYTES));
  const iv = random.slice(2 * SALT_BYTES);
  const cipherKey = await aesKey(derive(key.secret, encryptionSalt), "encrypt");
  const encrypted = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-CBC", iv }, cipherKey, utf8(json) as BufferSource),
  );
  const base = `${PREFIX}*${key.id}*${encryptionSalt}*${encodeBase64Url(iv)}*` +
    `${encodeBase64Url(encrypted)}*`;
  const mac = hmac(sha256, derive(key.secret, macSalt), utf8(base));
  return `${base}*${macSalt}*${encodeBase64Url(mac)}`;
}

/**
 * The text sealed into `sealed` by one of `keys` (looked up by the seal's key id), or undefined
 * for anything else: wrong shape, unknown key, bad MAC, expired, undecryptable. Never rejects.
 * Base64url parts must be canonical (one spelling per seal).
 */
export async function ironUnseal(
  sealed: string,
  keys: ReadonlyMap<string, IronKey>,
  now: number = Date.now(),
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
  const expected = hmac(sha256, derive(key.secret, macSalt), utf8(base));
  // Our canonical spelling of the MAC: any other spelling of the same bytes is refused too.
  if (!timingSafeEqual(encodeBase64Url(expected), macPart)) return undefined;
  try {
    const cipherKey = await aesKey(derive(key.secret, encryptionSalt), "decrypt");
    const plain = await crypto.subtle.decrypt(
      { name: "AES-CBC", iv: iv as BufferSource },
      cipherKey,
      encrypted as BufferSource,
    );
    return decoder.decode(plain);
  } catch {
    return undefined; // bad padding: only a key holder could have made this MAC
  }
}

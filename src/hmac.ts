/**
 * HMAC-SHA-256 (RFC 2104 over FIPS 180-4) for the short messages of signed cookies, in plain JS.
 *
 * The key's inner and outer pad blocks are compressed once, so a MAC of a message up to 55 bytes
 * costs two compressions (~1.15 µs on Node and Deno, 1.3 on Bun, with its base64url). A short
 * ASCII message (a cookie's name and id) goes straight into the words of its one block; longer
 * ones are written into a reused buffer (ASCII without a `TextEncoder`). No object is allocated
 * per call besides the result string. SHA-256 uses only additions, rotations and bitwise
 * operations on 32-bit words: no table is indexed by secret data, so the time taken does not
 * depend on the key or the message's content (the short path's test for ASCII stops early on a
 * non-ASCII character, which tells only whether a cookie's name and value are ASCII).
 * `tests/hmac.test.ts` checks it against RFC 4231 and, for random keys and messages, against
 * `crypto.subtle`.
 *
 * On Bun the MAC comes from the runtime's `node:crypto` instead (`createHmac` with a `KeyObject`,
 * BoringSSL), once it has given RFC 4231's answers and the plain JS MAC of UTF-8 messages:
 * 0.76–0.90 µs per cookie-sized MAC against 1.13 in JS on JavaScriptCore, 0.95–1.05 against 3.1
 * for a 190-character one (an iron seal's), measured in a loop. Bun's own `CryptoHasher` is faster
 * still (0.5–0.8 µs) but is Bun's API; this is the same runtime module as the seal's AES
 * (`./node_crypto.ts`). On V8 the JS path is the faster one: `createHmac` costs 2.5 µs on Node,
 * 15–23 µs on Deno (measured in the same loop).
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { encodeBase64Url, utf8 } from "./encoding.ts";
import { JAVASCRIPTCORE } from "./engine.ts";
import { builtinNodeCrypto } from "./node_crypto.ts";

/** Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);

/** Initial hash value: the first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const H0 = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

const BLOCK = 64;
/** The longest message that fits one block with its padding (55 bytes: 1 for 0x80, 8 for the length). */
const SHORT = BLOCK - 9;

/** The message schedule, shared by every call (JS runs one compression at a time). */
const W = new Int32Array(64);

/** Runs the compression function on `state` for the 64-byte block at `block[at]`. */
function compress(state: Int32Array, block: Uint8Array, at: number): void {
  for (let t = 0; t < 16; t++, at += 4) {
    W[t] = (block[at]! << 24) | (block[at + 1]! << 16) | (block[at + 2]! << 8) | block[at + 3]!;
  }
  rounds(state);
}

/** Runs the compression function on `state` for the block whose 16 words are in `W[0..15]`. */
function rounds(state: Int32Array): void {
  for (let t = 16; t < 64; t++) {
    const x = W[t - 15]!;
    const y = W[t - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    W[t] = (W[t - 16]! + s0 + W[t - 7]! + s1) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let t = 0; t < 64; t++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[t]! + W[t]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/** Writes `state` as 32 big-endian bytes into `out[at]`. */
function writeState(state: Int32Array, out: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++, at += 4) {
    const v = state[i]!;
    out[at] = v >>> 24;
    out[at + 1] = v >>> 16;
    out[at + 2] = v >>> 8;
    out[at + 3] = v;
  }
}

/**
 * Hashes `length` bytes of `buf` (which has room for the padding) after `prefixBytes` bytes already
 * compressed into `state`: pads in place and compresses the rest.
 */
function finish(state: Int32Array, buf: Uint8Array, length: number, prefixBytes: number): void {
  const total = length + 9;
  const padded = Math.ceil(total / BLOCK) * BLOCK;
  buf[length] = 0x80;
  buf.fill(0, length + 1, padded - 8);
  const bits = (prefixBytes + length) * 8;
  // The length in bits, big-endian in the last 8 bytes (messages here are far below 2^32 bits).
  buf[padded - 8] = 0;
  buf[padded - 7] = 0;
  buf[padded - 6] = 0;
  buf[padded - 5] = Math.floor(bits / 2 ** 32);
  buf[padded - 4] = bits >>> 24;
  buf[padded - 3] = bits >>> 16;
  buf[padded - 2] = bits >>> 8;
  buf[padded - 1] = bits;
  for (let at = 0; at < padded; at += BLOCK) compress(state, buf, at);
}

/** A native HMAC-SHA-256 with one key: the MAC of a message (UTF-8) as unpadded base64url. */
export type NativeMac = (message: string) => string;
/** Makes a {@linkcode NativeMac} for a key. */
export type NativeHmac = (key: Uint8Array) => NativeMac;

/** What the native HMAC uses of `node:crypto`. */
interface NodeHmacModule {
  createSecretKey(key: Uint8Array): unknown;
  createHmac(algorithm: "sha256", key: unknown): {
    update(data: string): { digest(encoding: "base64url"): string };
  };
}

/**
 * RFC 4231 test cases 2 (a 4-byte key) and 6 (a 131-byte key, hashed first), MACs in base64url:
 * what a native HMAC must answer before it is used.
 */
const KNOWN_ANSWERS: readonly [Uint8Array, string, string][] = [
  [utf8("Jefe"), "what do ya want for nothing?", "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM"],
  [
    new Uint8Array(131).fill(0xaa),
    "Test Using Larger Than Block-Size Key - Hash Key First",
    "YOQxWR7gtn8Niiaqy_W3f44LxiE3KMUUBUYEDw7jf1Q",
  ],
];

/**
 * The HMAC of a `node:crypto` module (`createHmac` with a `KeyObject`), or undefined when `nc` is
 * not one that gives RFC 4231's answers and the plain JS MAC of UTF-8 messages (a compatibility
 * layer whose `createHmac` is missing, ignores the key, throws or encodes otherwise keeps the JS
 * path). Exported for tests.
 */
export function hmacFromNodeCrypto(nc: unknown): NativeHmac | undefined {
  const m = nc as Partial<NodeHmacModule> | null | undefined;
  if (typeof m?.createSecretKey !== "function" || typeof m.createHmac !== "function") {
    return undefined;
  }
  const c = m as NodeHmacModule;
  const make: NativeHmac = (key) => {
    const k = c.createSecretKey(new Uint8Array(key)); // a copy: the caller's array may change
    return (message) => c.createHmac("sha256", k).update(message).digest("base64url");
  };
  try {
    for (const [key, message, mac] of KNOWN_ANSWERS) {
      if (make(key)(message) !== mac) return undefined;
    }
    // UTF-8 as the JS path encodes it: Latin-1-only text (8-bit strings on JavaScriptCore), wider
    // text, and a message longer than a block.
    const key = KNOWN_ANSWERS[0]![0];
    for (const text of ["sid=ÿé", "sid=é€😀", "Fe26.2**" + "é".repeat(70)]) {
      if (make(key)(text) !== new HmacSha256(key, null).base64Url(text)) return undefined;
    }
  } catch {
    return undefined;
  }
  return make;
}

/** The runtime's native HMAC, once checked (see {@linkcode hmacFromNodeCrypto}). */
let found: { make: NativeHmac | undefined } | undefined;

/**
 * The native HMAC this runtime's MACs use: `node:crypto`'s on JavaScriptCore (Bun), when it passes
 * the checks (made on first use); none on V8 (Node, Deno), where the JS path is the faster one.
 */
export function nativeHmac(): NativeHmac | undefined {
  if (!JAVASCRIPTCORE) return undefined;
  return (found ??= { make: hmacFromNodeCrypto(builtinNodeCrypto()) }).make;
}

/**
 * HMAC-SHA-256 with one key, prepared once.
 *
 * @example Usage
 * ```ts ignore
 * const mac = new HmacSha256(new TextEncoder().encode("a-secret-of-at-least-32-characters!!"));
 * console.log(mac.base64Url("sid=abc").length); // 43
 * ```
 */
export class HmacSha256 {
  /** State after the key's inner pad block. */
  readonly #inner = H0.slice();
  /** State after the key's outer pad block. */
  readonly #outer = H0.slice();
  readonly #state = new Int32Array(8);
  /** Message buffer, grown as needed (always whole blocks). */
  #buf = new Uint8Array(2 * BLOCK);
  readonly #digest = new Uint8Array(32);
  /** The native MAC for this key, when the runtime has one (see {@linkcode nativeHmac}). */
  readonly #native: NativeMac | undefined;

  /**
   * @param key the secret (hashed first when longer than 64 bytes, as RFC 2104 says)
   * @param native the runtime's native HMAC to use (default: {@linkcode nativeHmac}); null for the
   * JS one
   */
  constructor(key: Uint8Array, native: NativeHmac | null | undefined = nativeHmac()) {
    this.#native = native ? native(key) : undefined;
    if (this.#native !== undefined) return; // the JS path's pads are not needed
    const k = key.length > BLOCK ? sha256(key) : key;
    const pad = new Uint8Array(BLOCK);
    for (let i = 0; i < BLOCK; i++) pad[i] = (k[i] ?? 0) ^ 0x36;
    compress(this.#inner, pad, 0);
    for (let i = 0; i < BLOCK; i++) pad[i] = (k[i] ?? 0) ^ 0x5c;
    compress(this.#outer, pad, 0);
    pad.fill(0);
  }

  /** The 32-byte MAC of `message` (UTF-8), as unpadded base64url (43 characters). */
  base64Url(message: string): string {
    if (this.#native !== undefined) return this.#native(message);
    if (message.length <= SHORT && this.#short(message)) return encodeBase64Url(this.#digest);
    const n = this.#write(message);
    const state = this.#state;
    state.set(this.#inner);
    finish(state, this.#buf, n, BLOCK);
    this.#outerHash(state);
    return encodeBase64Url(this.#digest);
  }

  /**
   * The outer hash over the inner hash in `state`, into the digest: always one block (the 32
   * bytes and the same padding), written straight into the words of the schedule.
   */
  #outerHash(state: Int32Array): void {
    for (let i = 0; i < 8; i++) W[i] = state[i]!;
    W[8] = 0x80000000 | 0;
    W.fill(0, 9, 15);
    W[15] = (BLOCK + 32) * 8;
    state.set(this.#outer);
    rounds(state);
    writeState(state, this.#digest, 0);
  }

  /**
   * The MAC of an ASCII message of at most {@linkcode SHORT} characters (a cookie's name and id)
   * into the digest, without a byte buffer: the message's characters go straight into the words
   * of its one padded block (then the outer hash, as for any message). False, with nothing done
   * that matters, for any other message.
   * 1.46 → 1.16 µs per MAC with its base64url on Node, 1.25 → 1.15 on Deno, 1.40 → 1.32 on Bun
   * (best of 8 rounds of a million cookie-sized messages).
   */
  #short(message: string): boolean {
    const n = message.length;
    W.fill(0, 0, 16);
    for (let i = 0; i < n; i++) {
      const c = message.charCodeAt(i);
      if (c > 0x7f) return false;
      W[i >> 2]! |= c << (24 - ((i & 3) << 3));
    }
    W[n >> 2]! |= 0x80 << (24 - ((n & 3) << 3));
    W[15] = (BLOCK + n) * 8; // the length in bits, after the key's inner pad block
    const state = this.#state;
    state.set(this.#inner);
    rounds(state);
    this.#outerHash(state);
    return true;
  }

  /** Writes the message's UTF-8 bytes at the start of the buffer; returns their count. */
  #write(message: string): number {
    const length = message.length;
    let ascii = true;
    for (let i = 0; i < length; i++) {
      if (message.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    const bytes = ascii ? undefined : utf8(message);
    const n = bytes ? bytes.length : length;
    const need = Math.ceil((n + 9) / BLOCK) * BLOCK;
    if (this.#buf.length < need) this.#buf = new Uint8Array(need);
    const buf = this.#buf;
    if (bytes) buf.set(bytes);
    else for (let i = 0; i < length; i++) buf[i] = message.charCodeAt(i);
    return n;
  }
}

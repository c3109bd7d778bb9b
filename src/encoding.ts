/**
 * base64url and constant-time helpers (web standards only).
 * @module
 */

import { JAVASCRIPTCORE } from "./engine.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

/** The 6-bit value of a base64url character's code, or -1 for any other code. */
export function base64UrlValue(code: number): number {
  return code < 128 ? LOOKUP[code]! : -1; // (NaN, a position outside a string, is not < 128)
}

/** Character codes of the base64url alphabet. */
const CODES = Uint8Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** Reused output buffer for the usual short values (ids, MACs). */
const SCRATCH = new Uint8Array(512);
const CHUNK = 8192;

/** `Uint8Array.prototype.toBase64` (ES2026), as used here. */
type ToBase64 = (options: { alphabet: "base64url"; omitPadding: boolean }) => string;
const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;

/**
 * On JavaScriptCore (Bun) the runtime's `toBase64` encodes 2–8 times faster than the loop below:
 * 0.07 µs for 16 bytes against 0.17, 0.15 for 200 against 0.55, 0.5 for 1,000 against 3.9 (Bun
 * 1.4, in a loop). On V8 the loop is the faster one for the short values here (Deno has
 * `toBase64`, Node 20 not).
 */
const NATIVE_BASE64 = JAVASCRIPTCORE && nativeBase64Works();

/**
 * Whether this runtime's `toBase64` exists and writes unpadded base64url when asked (one that
 * ignored the options would write `+`, `/` and `=`, which no id or MAC check accepts).
 */
function nativeBase64Works(): boolean {
  try {
    const sample = new Uint8Array([251, 255]) as unknown as { toBase64?: ToBase64 };
    return typeof sample.toBase64 === "function" && sample.toBase64(BASE64URL) === "-_8";
  } catch {
    return false;
  }
}

/** Encodes bytes as unpadded base64url. */
export function encodeBase64Url(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  if (NATIVE_BASE64) {
    const range = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
    return (range as unknown as { toBase64: ToBase64 }).toBase64(BASE64URL);
  }
  const whole = Math.floor((end - start) / 3) * 3;
  const rest = end - start - whole;
  const length = (whole / 3) * 4 + (rest === 0 ? 0 : rest + 1);
  const out = length <= SCRATCH.length ? SCRATCH : new Uint8Array(length);
  let o = 0;
  let i = start;
  for (const stop = start + whole; i < stop; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = CODES[n >> 18]!;
    out[o++] = CODES[(n >> 12) & 63]!;
    out[o++] = CODES[(n >> 6) & 63]!;
    out[o++] = CODES[n & 63]!;
  }
  if (rest > 0) {
    const n = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0);
    out[o++] = CODES[n >> 18]!;
    out[o++] = CODES[(n >> 12) & 63]!;
    if (rest === 2) out[o++] = CODES[(n >> 6) & 63]!;
  }
  return ascii(out, length);
}

/**
 * The first `length` codes as one string. `String.fromCharCode` builds a flat string; appending
 * characters one by one would build a rope (a 24-character id then costs ~200 bytes of heap
 * instead of ~40, which matters at a million stored ids).
 */
function ascii(codes: Uint8Array, length: number): string {
  // The two lengths of every request (a 24-character id, a 43-character MAC) as explicit
  // arguments: `apply` with a typed array costs 220–290 ns per string on V8 and JavaScriptCore,
  // explicit arguments 65–70 (2 million calls in a loop on Node 20 and Bun 1.4).
  const c = codes;
  // deno-fmt-ignore
  if (length === 24) {
    return String.fromCharCode(
      c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!, c[9]!, c[10]!, c[11]!, c[12]!,
      c[13]!, c[14]!, c[15]!, c[16]!, c[17]!, c[18]!, c[19]!, c[20]!, c[21]!, c[22]!, c[23]!,
    );
  }
  // deno-fmt-ignore
  if (length === 43) {
    return String.fromCharCode(
      c[0]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, c[6]!, c[7]!, c[8]!, c[9]!, c[10]!, c[11]!, c[12]!,
      c[13]!, c[14]!, c[15]!, c[16]!, c[17]!, c[18]!, c[19]!, c[20]!, c[21]!, c[22]!, c[23]!,
      c[24]!, c[25]!, c[26]!, c[27]!, c[28]!, c[29]!, c[30]!, c[31]!, c[32]!, c[33]!, c[34]!,
      c[35]!, c[36]!, c[37]!, c[38]!, c[39]!, c[40]!, c[41]!, c[42]!,
    );
  }
  if (length <= CHUNK) {
    return String.fromCharCode.apply(null, codes.subarray(0, length) as unknown as number[]);
  }
  let s = "";
  for (let i = 0; i < length; i += CHUNK) {
    const part = codes.subarray(i, Math.min(length, i + CHUNK));
    s += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return s;
}

/** True when `s` is non-empty and uses only the base64url alphabet (no padding). */
export function isBase64Url(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || LOOKUP[c] === -1) return false;
  }
  return true;
}

/**
 * Compares two strings in time that depends only on their lengths.
 * Returns false for different lengths.
 */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const encoder = new TextEncoder();
/** UTF-8 bytes of a string (shared encoder). */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/**
 * Decodes unpadded base64url; undefined for anything else (wrong alphabet, impossible length,
 * non-zero trailing bits). Never throws.
 */
export function decodeBase64Url(s: string): Uint8Array | undefined {
  if (!isBase64Url(s) || s.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    acc = (acc << 6) | LOOKUP[s.charCodeAt(i)]!;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 255;
    }
  }
  // The leftover bits must be zero: one byte sequence, one encoding.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

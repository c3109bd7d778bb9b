/**
 * CSRF tokens bound to a session (the synchronizer-token pattern).
 *
 * Each session gets one random 256-bit secret, kept in its record next to the data (the
 * record's `csrf` field, never a data key, so no API that returns session data can leak it).
 * A token is the secret masked with a fresh one-time pad: `base64url(pad ‖ pad XOR secret)`.
 * Every call gives a different token, so a page that reflects the token in a compressed response
 * does not let BREACH recover it byte by byte. Verification unmasks and compares in constant
 * time; anything that is not such a token is `false`, never an exception.
 * @module
 */
import { decodeBase64Url, encodeBase64Url } from "./encoding.ts";

const SECRET_BYTES = 32;
/** Length of a secret as base64url. */
const SECRET_LENGTH = 43;
/** Length of a masked token as base64url (64 bytes). */
export const CSRF_TOKEN_LENGTH = 86;

/** A fresh per-session secret: 32 random bytes as base64url. */
export function createCsrfSecret(): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** A token for `secret`, masked with a fresh random pad (a different string on every call). */
export function maskCsrfToken(secret: string): string {
  const raw = decodeBase64Url(secret);
  if (!raw || raw.length !== SECRET_BYTES) {
    throw new TypeError("Cannot create CSRF token: the session's secret is malformed");
  }
  const out = new Uint8Array(SECRET_BYTES * 2);
  crypto.getRandomValues(out.subarray(0, SECRET_BYTES));
  for (let i = 0; i < SECRET_BYTES; i++) out[SECRET_BYTES + i] = out[i]! ^ raw[i]!;
  return encodeBase64Url(out);
}

/**
 * True when `token` is a token made by {@linkcode maskCsrfToken} for `secret`. The comparison
 * takes the same time wherever the bytes differ. False for a missing secret or any malformed
 * token; never throws.
 */
export function verifyCsrfToken(secret: string | undefined, token: unknown): boolean {
  if (
    typeof secret !== "string" || secret.length !== SECRET_LENGTH ||
    typeof token !== "string" || token.length !== CSRF_TOKEN_LENGTH
  ) {
    return false;
  }
  const raw = decodeBase64Url(secret);
  const masked = decodeBase64Url(token);
  if (!raw || !masked || raw.length !== SECRET_BYTES || masked.length !== SECRET_BYTES * 2) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < SECRET_BYTES; i++) {
    diff |= (masked[i]! ^ masked[SECRET_BYTES + i]!) ^ raw[i]!;
  }
  return diff === 0;
}

/** Options of the CSRF middleware of the HTTP adapters. */
export interface CsrfOptions {
  /** Request header carrying the token. Default `"x-csrf-token"`. */
  header?: string;
  /**
   * Form field carrying the token in `application/x-www-form-urlencoded` and
   * `multipart/form-data` bodies; `false` reads the header only. Default `"_csrf"`.
   */
  field?: string | false;
  /** Methods that are never checked. Default `["GET", "HEAD", "OPTIONS"]`. */
  safeMethods?: readonly string[];
}

/** {@linkcode CsrfOptions} after validation. */
export interface ResolvedCsrfOptions {
  header: string;
  field: string | undefined;
  safeMethods: ReadonlySet<string>;
}

/** Validates the middleware options once; throws `TypeError` for the wrong shapes. */
export function resolveCsrfOptions(options: CsrfOptions = {}): ResolvedCsrfOptions {
  if (options === null || typeof options !== "object") {
    throw new TypeError("Cannot create CSRF middleware: options must be an object");
  }
  const header = options.header ?? "x-csrf-token";
  if (typeof header !== "string" || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) {
    throw new TypeError("Cannot create CSRF middleware: header must be a header name");
  }
  const field = options.field ?? "_csrf";
  if (field !== false && (typeof field !== "string" || field.length === 0)) {
    throw new TypeError("Cannot create CSRF middleware: field must be a non-empty string or false");
  }
  const safe = options.safeMethods ?? ["GET", "HEAD", "OPTIONS"];
  if (!Array.isArray(safe) || !safe.every((m) => typeof m === "string")) {
    throw new TypeError("Cannot create CSRF middleware: safeMethods must be an array of strings");
  }
  return {
    header: header.toLowerCase(),
    field: field === false ? undefined : field,
    safeMethods: new Set(safe.map((m) => m.toUpperCase())),
  };
}

/** True for a request body that may carry the token as a form field. */
export function isFormContentType(type: string | null | undefined): boolean {
  if (!type) return false;
  const t = type.toLowerCase();
  return t.startsWith("application/x-www-form-urlencoded") || t.startsWith("multipart/form-data");
}

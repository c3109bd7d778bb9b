/**
 * Typed errors. Every error has a stable `code` so callers can `switch (err.code)`
 * the same way on Deno, Bun and Node. Messages never contain cookie values, ids or keys.
 *
 * @module
 */

/** Codes carried by {@linkcode UnisessionError} and its subclasses. */
export type UnisessionErrorCode =
  | "ERR_SESSION_MISSING"
  | "ERR_STORE"
  | "ERR_COOKIE_TOO_LARGE"
  | "ERR_SESSION_SERIALIZATION"
  | "ERR_SESSION_TOO_LARGE"
  | "ERR_RESPONSE_SENT"
  | "ERR_SESSION_READ_ONLY"
  | "ERR_CSRF";

/**
 * Base class of every error this library throws on purpose.
 *
 * @example Usage
 * ```ts
 * import { StoreError, UnisessionError } from "unisession";
 * const err: unknown = new StoreError("Cannot read session: store failed");
 * if (err instanceof UnisessionError && err.code === "ERR_STORE") {
 *   console.log("store down");
 * }
 * ```
 */
export class UnisessionError extends Error {
  /** Stable machine-readable code. */
  readonly code: UnisessionErrorCode;
  /**
   * Creates a UnisessionError.
   * @param code the stable code
   * @param message a human message (never containing secrets)
   * @param options the standard `{ cause }`
   */
  constructor(code: UnisessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * A socket (or `withSession` caller) has no session: session creation is HTTP-first.
 *
 * @example Usage
 * ```ts
 * import { SessionMissingError } from "unisession";
 * const err = new SessionMissingError();
 * console.log(err.code); // "ERR_SESSION_MISSING"
 * ```
 */
export class SessionMissingError extends UnisessionError {
  /**
   * Creates a SessionMissingError.
   * @param message optional override of the default message
   */
  constructor(message = "Session is missing for this socket") {
    super("ERR_SESSION_MISSING", message);
  }
}

/**
 * A store call failed or timed out. The original error is in `cause`.
 *
 * @example Usage
 * ```ts
 * import { StoreError } from "unisession";
 * const err = new StoreError("Cannot read session: store failed", { cause: new Error("ECONNREFUSED") });
 * console.log(err.code); // "ERR_STORE"
 * ```
 */
export class StoreError extends UnisessionError {
  /**
   * @param message what could not be done
   * @param options the original error as `cause`
   */
  /** HTTP status for frameworks that read `err.status` (Koa, Express): 503 Service Unavailable. */
  readonly status = 503;
  /** Koa: do not send the message to the client. */
  readonly expose = false;

  /**
   * Creates a StoreError.
   * @param message what could not be done
   * @param options the original error as `cause`
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_STORE", message, options);
  }

  /**
   * The 503 answer, for frameworks that ask an error for its response: Hono's default error
   * handler sends what `getResponse()` returns, so a StoreError thrown in a handler (the app's own
   * `sessions.getById()`, say) answers 503 as it does in Koa, not 500. The body is fixed: the
   * message and the cause may name the store's host or its error, which the client must not see.
   * @returns a new `503 Service Unavailable` response with a plain-text body
   */
  getResponse(): Response {
    return new Response("Session store unavailable", { status: 503 });
  }
}

/**
 * A Set-Cookie header would exceed the 4096-byte browser limit (it would be dropped silently).
 *
 * @example Usage
 * ```ts
 * import { CookieTooLargeError } from "unisession";
 * console.log(new CookieTooLargeError(5000).code); // "ERR_COOKIE_TOO_LARGE"
 * ```
 */
export class CookieTooLargeError extends UnisessionError {
  /** Size in bytes of the cookie that was refused. */
  readonly size: number;
  /**
   * Creates a CookieTooLargeError.
   * @param size the size in bytes of the refused cookie
   */
  constructor(size: number) {
    super(
      "ERR_COOKIE_TOO_LARGE",
      `Cannot set session cookie: ${size} bytes exceeds the 4096-byte limit; use a store`,
    );
    this.size = size;
  }
}

/**
 * Session data could not be serialised (cyclic value, BigInt, ...).
 *
 * @example Usage
 * ```ts
 * import { SessionSerializationError } from "unisession";
 * console.log(new SessionSerializationError().code); // "ERR_SESSION_SERIALIZATION"
 * ```
 */
export class SessionSerializationError extends UnisessionError {
  /**
   * Creates a SessionSerializationError.
   * @param options the original error as `cause`
   */
  constructor(options?: { cause?: unknown }) {
    super(
      "ERR_SESSION_SERIALIZATION",
      "Cannot save session: data is not JSON-serialisable",
      options,
    );
  }
}

/**
 * A session record is larger than the store accepts (for example Deno KV's 64 KiB).
 *
 * @example Usage
 * ```ts
 * import { SessionTooLargeError } from "unisession";
 * console.log(new SessionTooLargeError(70000, 65536).code); // "ERR_SESSION_TOO_LARGE"
 * ```
 */
export class SessionTooLargeError extends UnisessionError {
  /**
   * Creates a SessionTooLargeError.
   * @param size the record size in bytes
   * @param limit the store's limit in bytes
   */
  constructor(size: number, limit: number) {
    super(
      "ERR_SESSION_TOO_LARGE",
      `Cannot save session: ${size} bytes exceeds the store limit of ${limit} bytes`,
    );
  }
}

/**
 * The session was saved or changed after its response was already sent.
 *
 * @example Usage
 * ```ts
 * import { ResponseSentError } from "unisession";
 * console.log(new ResponseSentError().code); // "ERR_RESPONSE_SENT"
 * ```
 */
export class ResponseSentError extends UnisessionError {
  constructor() {
    super("ERR_RESPONSE_SENT", "Cannot save session: the response was already sent");
  }
}

/**
 * A write was attempted on a session that cannot be written from here
 * (a socket in sealed-cookie mode has only a read-only snapshot).
 *
 * @example Usage
 * ```ts
 * import { SessionReadOnlyError } from "unisession";
 * console.log(new SessionReadOnlyError().code); // "ERR_SESSION_READ_ONLY"
 * ```
 */
export class SessionReadOnlyError extends UnisessionError {
  /**
   * Creates a SessionReadOnlyError.
   * @param message optional override of the default message
   */
  constructor(
    message =
      "Cannot write session: sealed-cookie sessions are read-only outside HTTP; configure a store",
  ) {
    super("ERR_SESSION_READ_ONLY", message);
  }
}

/**
 * A state-changing request or socket event did not carry a valid CSRF token for its session
 * (missing, malformed, from another session, or from before a `regenerate()`).
 *
 * @example Usage
 * ```ts
 * import { CsrfError } from "unisession";
 * const err = new CsrfError();
 * console.log(err.code, err.status); // "ERR_CSRF" 403
 * ```
 */
export class CsrfError extends UnisessionError {
  /** HTTP status for frameworks that read `err.status` (Koa, Express): 403 Forbidden. */
  readonly status = 403;
  /** Koa: the message is safe to send to the client. */
  readonly expose = true;

  /**
   * Creates a CsrfError.
   * @param message optional override of the default message
   */
  constructor(message = "Invalid CSRF token") {
    super("ERR_CSRF", message);
  }
}

/** A log-safe description of a thrown value: its class and message, nothing else. */
export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : "non-error thrown";
}

/**
 * unisession: one session for HTTP and WebSocket, on every JavaScript runtime.
 *
 * The core is web standards only: signed-id cookies (HMAC-SHA-256, key rotation) over a store, or
 * a stateless sealed cookie (iron seals); deep change tracking; rolling and absolute timeouts;
 * regenerate, destroy, flash; bridge events. Adapters: `unisession/hono`, `unisession/koa`,
 * `unisession/socket.io`.
 *
 * @example Usage
 * ```ts
 * import { createSessions, MapStore } from "unisession";
 * const sessions = createSessions({ store: new MapStore(), keys: ["a-secret-of-at-least-32-characters!!"] });
 * console.log(sessions.cookieName); // "sid"
 * ```
 *
 * @module
 */
export {
  type CommitResult,
  createSessions,
  type OpenInit,
  SessionManager,
  type UserSession,
} from "./src/manager.ts";
export type {
  ClientOptions,
  InvalidReason,
  Logger,
  SessionEncoder,
  SessionOptions,
} from "./src/options.ts";
export type { CookieOptions } from "./src/cookie.ts";
export type { CsrfOptions } from "./src/csrf.ts";
export {
  type Session,
  type SessionApi,
  type SessionData,
  type SessionHost,
  SessionState,
  STATE,
} from "./src/session.ts";
export type {
  BridgeEvent,
  DestroyReason,
  EventFilter,
  EventOrigin,
  SessionDestroyEvent,
  SessionEventMap,
  SessionListener,
  SessionSetEvent,
} from "./src/events.ts";
export { MapStore, type MapStoreOptions } from "./src/map_store.ts";
export {
  type Awaitable,
  type BridgeStyleStore,
  type ExpiredRecord,
  type HonoStyleStore,
  type KoaStyleStore,
  type RecordMutator,
  type Store,
  type StoredRecord,
  type StoreEvent,
  type StoreLike,
  type TakenRecord,
  toStore,
} from "./src/store.ts";
export { generateUid } from "./src/id.ts";
export {
  CookieTooLargeError,
  CsrfError,
  ResponseSentError,
  SessionMissingError,
  SessionReadOnlyError,
  SessionSerializationError,
  SessionTooLargeError,
  StoreError,
  UnisessionError,
  type UnisessionErrorCode,
} from "./src/errors.ts";

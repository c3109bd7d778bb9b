/**
 * Types `socket.clientId`, `socket.sessionId`, `socket.session` and `socket.withSession` on
 * socket.io's `Socket` (they exist at runtime once `attachSocketIO()` ran). Import once:
 * `import "unisession/socket.io/global";`. npm only: JSR cannot publish ambient module
 * declarations (Deno users copy the three-line block).
 *
 * @example Usage
 * ```ts ignore
 * import "unisession/socket.io/global";
 * ```
 *
 * @module
 */
import type { SessionSocketFields } from "./socket_io.ts";

declare module "socket.io" {
  interface Socket extends SessionSocketFields {}
}

export {};

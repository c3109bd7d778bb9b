/**
 * Types `c.session`, `c.sessionId` and `c.clientId` on Hono's Context (the accessors exist at
 * runtime once `session()` middleware ran). Import once: `import "unisession/hono/global";`.
 * npm only: JSR cannot publish ambient module declarations.
 *
 * @example Usage
 * ```ts ignore
 * import "unisession/hono/global";
 * ```
 *
 * @module
 */
import type { Session, SessionApi } from "./hono.ts";

/**
 * The session type of a context: refined by `Variables: { session: ... }` (the variable's name)
 * or by hono-session's `Variables: { Session: ... }` spelling, else the global `Session`.
 */
type SessionOf<E> = E extends { Variables: { Session: infer S } } ? S & SessionApi
  : E extends { Variables: { session: infer S } } ? S
  : Session;

declare module "hono" {
  interface ContextVariableMap {
    session: Session;
  }
  interface Context<E, P, I> {
    /** The request's session (set by `session()` middleware). Assign `null` to destroy it. */
    get session(): SessionOf<E>;
    set session(value: object | null);
    /** The session id; a new session gets its id now, so it is known in the creating request. */
    readonly sessionId: string | undefined;
    /** The browser's long-lived client id (bridges HTTP and sockets). */
    readonly clientId: string | undefined;
  }
}

export {};

/**
 * What `bench/manager.ts` and `bench/ab.ts` share: the data of a typical app's session, and a
 * socket as the socket adapters track it, for running `withSession`'s steps without socket.io.
 * @module
 */
import type { FollowedLink, FollowingSocket } from "../src/socket_draft.ts";

/**
 * A session of a typical app besides `n`: who is logged in, a setting, a cart (what the rows
 * "with app data" store, against `n` alone).
 */
export const APP_DATA = {
  user: { id: 42, name: "ada", roles: ["admin", "editor"] },
  theme: "dark",
  cart: [{ sku: "A-1", qty: 2 }, { sku: "B-7", qty: 1 }],
};

/**
 * A socket that follows session `sid` and keeps its snapshot (the shape `linkedHost` works on;
 * plain data, so it serves another checkout's `linkedHost` too).
 */
export function followingSocket(sid: string): FollowingSocket<FollowedLink> {
  const link: FollowedLink = {
    sessionId: sid,
    data: undefined,
    gen: 0,
    running: undefined,
    remap: false,
    dropped: false,
  };
  return { clientId: undefined, sessionId: sid, data: undefined, link };
}

/** The handler of the D rows: `n + 1`. */
export const increment = (
  { session }: { session: { n: number } },
): number => (session.n = session.n + 1);

/**
 * What `bench/manager.ts`, `bench/ab.ts` and `bench/alloc.ts` share: the cases over the 10
 * visitors of `npm run bench` (A read, B increment, D `withSession` without socket.io) and new
 * sessions (C), built on the modules of a checkout (this one, or another revision's for
 * `bench/ab.ts`).
 * @module
 */
import type * as Mod from "../mod.ts";
import type * as SocketDraft from "../src/socket_draft.ts";
import type { FollowedLink, FollowingSocket } from "../src/socket_draft.ts";
import { KEY } from "./servers/common.ts";

/**
 * A session of a typical app besides `n`: who is logged in, a setting, a cart (what the rows
 * "with app data" store, against `n` alone).
 */
export const APP_DATA = {
  user: { id: 42, name: "ada", roles: ["admin", "editor"] },
  theme: "dark",
  cart: [{ sku: "A-1", qty: 2 }, { sku: "B-7", qty: 1 }],
};

/** One call of a case, for its `i`-th request. */
export type Run = (i: number) => unknown;

/**
 * C: a new session per call (`n` set, committed), in a MapStore of its own manager, so the
 * sessions C adds (hundreds of thousands over the rounds) do not grow the stores A, B and D read.
 * `options` go to `createSessions` (`client: false`, say).
 */
export function newSessionCase(mod: typeof Mod, options: Partial<Mod.SessionOptions> = {}): Run {
  const m = mod.createSessions({ store: new mod.MapStore(), keys: [KEY], ...options });
  return () => {
    const state = m.open(null);
    state.session.n = 1;
    return m.commit(state);
  };
}

/** A socket that follows session `sid` and keeps its snapshot (the shape `linkedHost` works on). */
function followingSocket(sid: string): FollowingSocket<FollowedLink> {
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

const increment = ({ session }: { session: { n: number } }): number => (session.n = session.n + 1);

/**
 * What a signed-in visitor's session holds besides its data, with `signedIn`: its user (the
 * manager's `identify` option, for the per-user index), what `describe` recorded when it was
 * created, and a CSRF secret. The store keeps such a record in its JSON shape.
 */
const SIGNED_IN = {
  identify: (data: Record<string, unknown>) => data.userId,
  describe: () => ({
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
    ip: "203.0.113.7",
  }),
};

/**
 * The cases over 10 visitors of a new manager of `mod` (`store`, or sealed cookies without one),
 * each with a session holding `n` and `extra` (and signed in, with `signedIn`: see
 * {@linkcode SIGNED_IN}), named `A read <label>`, `B increment <label>` and `D withSession
 * <label>`. A reads `user.name` too when `extra` has a user. Sealed: A only (a sealed write is Web
 * Crypto's AES).
 */
export async function visitorCases(
  mod: typeof Mod,
  draft: typeof SocketDraft,
  label: string,
  store: Mod.StoreLike | undefined,
  extra: object,
  signedIn = false,
): Promise<Map<string, Run>> {
  const m = mod.createSessions({
    ...(store === undefined ? {} : { store }),
    keys: [KEY],
    ...(signedIn ? SIGNED_IN : {}),
  });
  const jars: string[] = [];
  for (let i = 0; i < 10; i++) {
    const state = m.open(null);
    Object.assign(state.session, structuredClone(extra), { n: i });
    if (signedIn) {
      state.session.userId = `user-${i}`;
      state.session.csrfToken();
    }
    const { cookies } = await m.commit(state);
    jars.push(cookies.map((c) => c.split(";")[0]).join("; "));
  }
  const withUser = "user" in extra;
  /** `n` of a request's session (every visitor has one). */
  const n = (state: ReturnType<typeof m.open>): number => {
    const value = state.session.n;
    if (typeof value !== "number") throw new Error("no session");
    return value;
  };
  /** What A reads: `n`, and the user's name when there is one. */
  const read = (state: ReturnType<typeof m.open>): void => {
    n(state);
    if (withUser && (state.session.user as { name: string }).name !== "ada") {
      throw new Error("wrong user");
    }
  };
  const cases = new Map<string, Run>();
  if (store === undefined) {
    cases.set(`A read ${label}`, async (i) => {
      const state = m.open(jars[i % 10]);
      await m.prepare(state);
      read(state);
      return m.commit(state);
    });
    return cases;
  }
  cases.set(`A read ${label}`, (i) => {
    const state = m.open(jars[i % 10]);
    read(state);
    return m.commit(state);
  });
  cases.set(`B increment ${label}`, (i) => {
    const state = m.open(jars[i % 10]);
    state.session.n = n(state) + 1;
    return m.commit(state);
  });
  const sockets = jars.map((jar) => followingSocket(m.open(jar).id!));
  const host = draft.linkedHost<FollowingSocket<FollowedLink>, FollowedLink>({
    manager: m,
    bySession: new Map(sockets.map((b) => [b.sessionId!, new Set([b.link!])])),
    context: (_b, _sid, d) => ({ session: d }),
    gone() {},
    active: () => true,
    follow() {},
  });
  cases.set(
    `D withSession ${label}`,
    (i) => draft.withSessionOn(host, sockets[i % 10]!, increment, undefined),
  );
  return cases;
}

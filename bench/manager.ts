/**
 * The floor under the HTTP rows: what the session manager alone costs per request, with no HTTP
 * server and no framework. A loop over 10 sessions in one MapStore (as the 10 visitors of
 * `npm run bench`): open the request's cookies, read or change `n`, commit; and D, what
 * `socket.withSession` does around an increment (without socket.io). The same again with the
 * data of a typical app in each session (a user object, a setting, a cart: `APP_DATA`). Prints
 * the best of 7 rounds of 100,000 requests, in µs per request.
 *
 * Usage: `node --import tsx bench/manager.ts`, `deno run -A bench/manager.ts`, `bun bench/manager.ts`.
 * @module
 */
import { createSessions, MapStore, type SessionManager } from "../mod.ts";
import {
  type FollowedLink,
  type FollowingSocket,
  linkedHost,
  withSessionOn,
} from "../src/socket_draft.ts";

import { KEY } from "./servers/common.ts";
import { APP_DATA, followingSocket, increment } from "./in_process.ts";

/** `n` of a request's session (every visitor has one). */
function n(state: ReturnType<SessionManager["open"]>): number {
  const value = state.session.n;
  if (typeof value !== "number") throw new Error("no session");
  return value;
}

type Manager = SessionManager;

/**
 * The 10 visitors of `npm run bench` (each its session with `n`, and `extra`) on manager `m`:
 * A, B and D over them.
 */
async function visitorCases(
  m: Manager,
  extra: object,
  label: string,
): Promise<[string, (i: number) => Promise<unknown>][]> {
  const jars: string[] = [];
  for (let i = 0; i < 10; i++) {
    const state = m.open(null);
    Object.assign(state.session, structuredClone(extra), { n: i });
    const { cookies: set } = await m.commit(state);
    jars.push(set.map((c) => c.split(";")[0]).join("; "));
  }
  const sockets = jars.map((jar) => followingSocket(m.open(jar).id!));
  const host = linkedHost<FollowingSocket<FollowedLink>, FollowedLink>({
    manager: m as SessionManager<object>,
    bySession: new Map(sockets.map((b) => [b.sessionId!, new Set([b.link!])])),
    context: (_b, _sid, draft) => ({ session: draft }),
    gone() {},
    active: () => true,
    follow() {},
  });
  const withUser = "user" in extra;
  return [
    [`A read (open, read n${withUser ? " and user.name" : ""}, commit)${label}`, (i) => {
      const state = m.open(jars[i % 10]);
      n(state);
      if (withUser && (state.session.user as { name: string }).name !== "ada") {
        throw new Error("wrong user");
      }
      return m.commit(state);
    }],
    [`B increment (open, n + 1, commit)${label}`, (i) => {
      const state = m.open(jars[i % 10]);
      state.session.n = n(state) + 1;
      return m.commit(state);
    }],
    [
      `D withSession increment (no socket)${label}`,
      (i) => withSessionOn(host, sockets[i % 10]!, increment, undefined),
    ],
  ];
}

// C: each new session in a store of its own manager, so the sessions C adds (700,000 per case
// over the rounds) do not grow the stores A, B and D read.
const fresh: Manager = createSessions({ store: new MapStore(), keys: [KEY] });
const withoutClient: Manager = createSessions({
  store: new MapStore(),
  keys: [KEY],
  client: false,
});

const cases: [string, (i: number) => Promise<unknown>][] = [
  ...await visitorCases(createSessions({ store: new MapStore(), keys: [KEY] }), {}, ""),
  ...await visitorCases(
    createSessions({ store: new MapStore(), keys: [KEY] }),
    APP_DATA,
    ", with app data",
  ),
  ["C new (client-id cookie on: the default)", () => {
    const state = fresh.open(null);
    state.session.n = 1;
    return fresh.commit(state);
  }],
  ["C new (client: false)", () => {
    const state = withoutClient.open(null);
    state.session.n = 1;
    return withoutClient.commit(state);
  }],
];

const N = 100_000;
const best = new Map<string, number>();
for (let round = 0; round < 7; round++) {
  for (const [name, run] of cases) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await run(i);
    const us = (performance.now() - t0) * 1000 / N;
    best.set(name, Math.min(best.get(name) ?? Infinity, us));
  }
}
const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : `node ${process.versions.node}`;
console.log(`session manager alone, ${runtime}, best of 7 × ${N.toLocaleString("en")} requests:`);
for (const [name, us] of best) console.log(`  ${us.toFixed(2).padStart(6)} µs  ${name}`);

/**
 * A session manager over a synchronous store that wraps a MapStore (`methods` replace or add to
 * its get/set/delete: a failing delete, a slow takeExpired, ...), with `sessions` sessions made
 * through it on a test clock that `tick(ms)` moves.
 * @module
 */
import { MapStore } from "../../src/map_store.ts";
import type { Store, StoredRecord } from "../../src/store.ts";
import { createSessions } from "../../src/manager.ts";

export async function wrappedMapStore(
  methods: (inner: MapStore) => Partial<Store>,
  sessions: number,
  /**
   * Each browser visits first (and holds a client-id cookie) before its session is made: the
   * session gets a new id and a client mapping names it. Without, each session is its browser's
   * first, whose id is its client id: no mapping record.
   */
  options: { visited?: boolean } = {},
) {
  let now = 1_767_225_600_000;
  const inner = new MapStore({ now: () => now });
  const store = {
    synchronous: true as const,
    get: (id: string) => inner.get(id),
    set: (id: string, rec: StoredRecord, ttl: number) => inner.set(id, rec, ttl),
    delete: (id: string) => inner.delete(id),
    ...methods(inner),
  };
  const m = createSessions({
    store,
    keys: ["k".repeat(32)],
    now: () => now,
    logger: { warn() {} },
  });
  const destroyed: string[] = [];
  m.on("sessionDestroy", (e) => destroyed.push(e.sessionId));
  /** The sessions' ids, and each one's cookie header (session and client-id cookies). */
  const ids: string[] = [];
  const cookies: string[] = [];
  for (let i = 0; i < sessions; i++) {
    let visit: string | null = null;
    if (options.visited) {
      const first = m.open(null);
      visit = (await m.commit(first)).cookies.map((c) => c.split(";")[0]).join("; ");
    }
    const s = m.open(visit);
    s.session.n = i;
    const out = await m.commit(s);
    ids.push(s.id!);
    cookies.push(out.cookies.map((c) => c.split(";")[0]).join("; "));
  }
  return { m, inner, ids, cookies, destroyed, tick: (ms: number) => (now += ms) };
}

// MapStore at scale: N sessions created through the manager (as requests would: open, set a
// value, commit), then the heap each one costs beyond its data, and the time `cleanup()` takes to
// remove all of them once expired (a fake clock jumps past the idle timeout), or half of them
// (the other half created half an idle timeout later). "Longest stop" is the longest the event
// loop waited meanwhile: the largest gap between the ticks of a 1 ms interval timer (cleanup
// lets other work run between slices of its work).
//
//   node --expose-gc --import tsx bench/mapstore_scale.ts [sessions=1000000]
//   bun bench/mapstore_scale.ts [sessions=1000000]
//   deno run -A --v8-flags=--expose-gc bench/mapstore_scale.ts [sessions=1000000]
//
// Configurations: the client-id cookie off (one record per session); on (the default) with each
// session made by its browser's first request (the session's id is the new client id: one record
// per session); on with browsers that visited before (they hold a client-id cookie from a response
// without a session, so the session gets a new id and a `cid:` mapping record names it: two
// records per session). "Data" is the session data's JSON, the part the application chose to
// store; everything else is overhead (ids, timestamps, the Map's slots).
import process from "node:process";
import { createSessions, MapStore } from "../mod.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const KEY = "a-secret-of-at-least-32-characters!!";
const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
const gc = (globalThis as { gc?: () => void }).gc ?? (bun && (() => bun.gc(true)));
if (!gc) throw new Error("run with --expose-gc (node --expose-gc --import tsx ...), or on Bun");

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

/** Runs `cleanup()`; its time, and the longest the event loop waited meanwhile. */
async function timedCleanup(cleanup: () => Promise<number>) {
  let last = performance.now();
  let longest = 0;
  const probe = setInterval(() => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
  }, 1);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const t0 = performance.now();
  last = t0;
  longest = 0;
  const cleaned = await cleanup();
  const end = performance.now();
  clearInterval(probe);
  return { cleaned, ms: end - t0, longestStop: Math.max(longest, end - last) };
}

type Browsers = "client-id cookie off" | "first request" | "visited before";

async function measure(browsers: Browsers, expiredShare: 1 | 0.5) {
  const clientCookie = browsers !== "client-id cookie off";
  const mappings = browsers === "visited before";
  let now = Date.UTC(2026, 0, 1);
  const clock = () => now;
  const store = new MapStore({ now: clock });
  const m = createSessions({
    store,
    keys: [KEY],
    now: clock,
    client: clientCookie ? undefined : false,
    logger: { warn() {} },
  });
  let dataBytes = 0;
  const before = heap();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    if (i === N * expiredShare) now += m.maxAge / 2; // the other half: created later
    let cookie: string | undefined;
    if (mappings) {
      // A response without a session gives the browser its client-id cookie.
      cookie = (await m.commit(m.open(undefined))).cookies[0]!.split(";")[0];
    }
    const state = m.open(cookie);
    const data = { n: i };
    dataBytes += JSON.stringify(data).length;
    Object.assign(state.session, data);
    await m.commit(state);
  }
  const fill = performance.now() - t0;
  const used = heap() - before;
  if (store.size !== (mappings ? 2 * N : N)) throw new Error(`expected ${N} sessions`);
  now += expiredShare === 1 ? m.maxAge + 1 : m.maxAge / 2 + 1;
  let destroyed = 0;
  m.on("sessionDestroy", () => destroyed++);
  const { cleaned, ms, longestStop } = await timedCleanup(() => m.cleanup());
  const expired = N * expiredShare;
  const left = (N - expired) * (mappings ? 2 : 1);
  if (cleaned !== expired || destroyed !== expired || store.size !== left) {
    throw new Error(`cleanup removed ${cleaned} (${destroyed} events), ${store.size} left`);
  }
  return {
    config: (clientCookie ? `client-id cookie on (default), ${browsers}` : browsers) +
      (expiredShare === 1 ? "" : ", half expired"),
    perSession: used / N,
    data: dataBytes / N,
    overhead: (used - dataBytes) / N,
    fillMs: fill,
    cleanupMs: ms,
    longestStop,
  };
}

const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
const runtime = bun
  ? `Bun ${(bun as unknown as { version: string }).version}`
  : deno
  ? `Deno ${deno.version.deno}`
  : `Node ${process.version}`;
console.log(`MapStore, ${N.toLocaleString("en-US")} sessions, ${runtime}\n`);
console.log(
  "| configuration | heap per session | of which data | overhead | create all | cleanup() | longest stop |",
);
console.log("|---|--:|--:|--:|--:|--:|--:|");
const configurations = [
  ["client-id cookie off", 1],
  ["first request", 1],
  ["visited before", 1],
  ["visited before", 0.5],
] as const;
for (const [browsers, expiredShare] of configurations) {
  const r = await measure(browsers, expiredShare);
  console.log(
    `| ${r.config} | ${r.perSession.toFixed(0)} B | ${r.data.toFixed(0)} B | ` +
      `**${r.overhead.toFixed(0)} B** | ${(r.fillMs / 1000).toFixed(1)} s | ` +
      `**${r.cleanupMs.toFixed(0)} ms** | ${r.longestStop.toFixed(0)} ms |`,
  );
}

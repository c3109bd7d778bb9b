// MapStore at scale: N sessions created through the manager (as requests would: open, set a
// value, commit), then the heap each one costs beyond its data, and the time `cleanup()` takes to
// remove all of them once expired (a fake clock jumps past the idle timeout).
//
//   node --expose-gc --import tsx bench/mapstore_scale.ts [sessions=1000000]
//
// Two configurations: the client-id cookie off (one record per session) and on (the default:
// one more `cid:` mapping record per browser). "Data" is the session data's JSON, the part the
// application chose to store; everything else is overhead (ids, timestamps, the Map's slots).
import process from "node:process";
import { createSessions, MapStore } from "../mod.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const KEY = "a-secret-of-at-least-32-characters!!";
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc (node --expose-gc --import tsx ...)");

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

async function measure(clientCookie: boolean) {
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
    const state = m.open(undefined);
    const data = { n: i };
    dataBytes += JSON.stringify(data).length;
    Object.assign(state.session, data);
    await m.commit(state);
  }
  const fill = performance.now() - t0;
  const used = heap() - before;
  if (store.size !== (clientCookie ? 2 * N : N)) throw new Error(`expected ${N} sessions`);
  now += m.maxAge + 1;
  let destroyed = 0;
  m.on("sessionDestroy", () => destroyed++);
  const t1 = performance.now();
  const cleaned = await m.cleanup();
  const cleanup = performance.now() - t1;
  if (cleaned !== N || destroyed !== N || store.size !== 0) {
    throw new Error(`cleanup removed ${cleaned} (${destroyed} events), ${store.size} left`);
  }
  return {
    config: clientCookie ? "client-id cookie on (default)" : "client-id cookie off",
    perSession: used / N,
    data: dataBytes / N,
    overhead: (used - dataBytes) / N,
    fillMs: fill,
    cleanupMs: cleanup,
  };
}

console.log(`MapStore, ${N.toLocaleString("en-US")} sessions, ${process.version}\n`);
console.log(
  "| configuration | heap per session | of which data | overhead | create all | cleanup() all |",
);
console.log("|---|--:|--:|--:|--:|--:|");
for (const clientCookie of [false, true]) {
  const r = await measure(clientCookie);
  console.log(
    `| ${r.config} | ${r.perSession.toFixed(0)} B | ${r.data.toFixed(0)} B | ` +
      `**${r.overhead.toFixed(0)} B** | ${(r.fillMs / 1000).toFixed(1)} s | ` +
      `**${r.cleanupMs.toFixed(0)} ms** |`,
  );
}

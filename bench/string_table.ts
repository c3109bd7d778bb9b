// The one-off stop after a large cleanup on Deno, without this library: plain Maps of random
// string keys are filled and dropped as `bench/mapstore_scale.ts` fills and drops its stores, a
// full collection runs, and the first new key set afterwards is timed. Deno 2.9.5's V8 (15.0)
// internalizes the string keys of a Map, so they sit in V8's string table; when a collection has
// freed many of them, the first new string to be internalized makes V8 rebuild that table (about
// 100 ms per 1,000,000 live keys on the benchmark machine). Node 20's V8 does not internalize
// Map keys: there it takes microseconds. bench/README.md ("Memory and cleanup at scale") has the
// story.
//
//   deno run -A --v8-flags=--expose-gc bench/string_table.ts [keys=1000000]
//   node --expose-gc --import tsx bench/string_table.ts [keys=1000000]
import process from "node:process";

const N = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

let seq = 0;
/** A new string for every call, as ids are (not a literal V8 would have internalized already). */
const key = () => `${(seq++).toString(36)}:${Math.random().toString(36).slice(2, 12)}`;

/** Fills a Map of `n` keys per entry (with as many short-lived keys), after a full collection. */
function fill(perEntry: number): Map<string, number> {
  gc!();
  const m = new Map<string, number>();
  for (let i = 0; i < N; i++) {
    for (let k = 0; k < perEntry; k++) {
      new Map().set(key(), 0); // garbage, as a request's strings are
      m.set(key(), i);
    }
  }
  gc!();
  return m;
}

/** The time to set one new key in a new Map. */
function firstKey(): number {
  const t = performance.now();
  new Map().set(key(), 0);
  return performance.now() - t;
}

const deno = (globalThis as { Deno?: { version: { deno: string } } }).Deno;
const runtime = deno ? `Deno ${deno.version.deno}` : `Node ${process.version}`;
console.log(`${runtime}, ${N.toLocaleString("en-US")} keys per Map`);
let live = fill(1);
console.log(`first Map filled: the next new key took ${firstKey().toFixed(1)} ms`);
live = fill(1); // the first Map is garbage now
console.log(
  `second Map filled, first one freed: the next new key took ${firstKey().toFixed(1)} ms`,
);
live = fill(2);
const first = firstKey();
console.log(
  `a Map of ${live.size.toLocaleString("en-US")} keys filled, the second freed: the next new key ` +
    `took ${first.toFixed(1)} ms, the one after ${firstKey().toFixed(2)} ms`,
);

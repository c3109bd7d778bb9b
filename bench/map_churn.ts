/**
 * What retaining one more entry per request costs a busy process, by container: a growing `Map`
 * (what `MapStore` and hono-session's Map store use), 1,024 smaller Maps (sharded by the id's
 * last character), an object used as a dictionary, a plain array, and nothing. Each step inserts
 * one 24-character id with a short string value and then makes the garbage of a small request
 * (40 small objects), so the garbage collector runs as it does in a server. Prints CPU time per
 * step (user + system, all threads), the median of 3 runs of 300,000 steps per container.
 *
 * Why it exists: on Bun (JavaScriptCore) a new session on a server costs 15–20 µs more when its
 * records are kept in a Map than when they are dropped (`npm run bench`, workload C), far more than
 * the same inserts cost in a loop without garbage. Pin it to one CPU to count the collector's
 * threads against the step, as the benchmark servers are:
 *
 * ```sh
 * taskset -c 1 node --expose-gc --import tsx bench/map_churn.ts
 * taskset -c 1 node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/map_churn.ts
 * taskset -c 1 node_modules/.bin/bun bench/map_churn.ts
 * ```
 * @module
 */
import { generateUid } from "../src/id.ts";

const STEPS = 300_000;
const SHARDS = 1024;

type Container = { name: string; insert(id: string, value: string): void };

const containers: (() => Container)[] = [
  () => ({ name: "nothing kept", insert() {} }),
  () => {
    const map = new Map<string, string>();
    return { name: "one Map", insert: (id, value) => void map.set(id, value) };
  },
  () => {
    const shards = Array.from({ length: SHARDS }, () => new Map<string, string>());
    return {
      name: `${SHARDS} Maps`,
      insert: (id, value) =>
        void shards[id.charCodeAt(id.length - 1) & (SHARDS - 1)]!.set(id, value),
    };
  },
  () => {
    const dict: Record<string, string> = Object.create(null);
    return { name: "object dictionary", insert: (id, value) => void (dict[id] = value) };
  },
  () => {
    const list: string[] = [];
    return { name: "array", insert: (id, value) => void list.push(id, value) };
  },
];

/** CPU µs of this process (all threads) so far. */
function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** A full collection between runs, so no run pays for the garbage of the one before. */
function collect(): void {
  const g = globalThis as { Bun?: { gc(force: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else throw new Error("Run with --expose-gc (node) or --v8-flags=--expose-gc (deno)");
}

let sink = 0;
function run(make: () => Container): { name: string; us: number } {
  collect();
  const c = make();
  const start = cpuMicros();
  for (let i = 0; i < STEPS; i++) {
    c.insert(generateUid(), "v" + i);
    const garbage: object[] = [];
    for (let j = 0; j < 40; j++) garbage.push({ a: j, b: [j, i], c: "g" + j });
    sink += garbage.length;
  }
  return { name: c.name, us: (cpuMicros() - start) / STEPS };
}

const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : `node ${process.versions.node}`;
const results = new Map<string, number[]>();
for (let round = 0; round < 3; round++) {
  for (const make of containers) {
    const { name, us } = run(make);
    results.set(name, [...(results.get(name) ?? []), us]);
  }
}
console.log(`${runtime}: CPU µs per step (insert + a request's garbage), median of 3 × ${STEPS}`);
for (const [name, runs] of results) {
  const median = runs.sort((a, b) => a - b)[1]!;
  console.log(`  ${median.toFixed(2).padStart(6)} µs  ${name}`);
}
if (sink < 0) console.log(sink);

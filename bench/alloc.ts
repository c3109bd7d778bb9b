/**
 * Bytes of garbage per request: what the session manager allocates for each of the visitor cases
 * of `bench/manager.ts` (A read, B increment, D withSession, C new), read with V8's sampling heap
 * profiler (one sample per 32 bytes allocated on average, objects collected since included).
 *
 * Why, next to the timings: on the benchmark machine a server's CPU per request moves by 10–30 %
 * between runs for nothing, so a change of a few percent cannot be timed there; the bytes a
 * request allocates are counted the same in every run (within about 2 %), and each byte is work
 * for the young-generation garbage collector, which runs on the server's CPU.
 *
 * Usage: `node --import tsx bench/alloc.ts [A|B|C|D ...] [--top=N]`; with `--no-turbo-inlining`
 * before `--import`, each allocation is charged to the function that makes it rather than to the
 * one it was inlined into (a few percent more in all: escape analysis then keeps fewer objects
 * off the heap).
 * @module
 */
import { Session } from "node:inspector/promises";
import * as mod from "../mod.ts";
import * as draft from "../src/socket_draft.ts";
import { APP_DATA, newSessionCase, type Run, visitorCases } from "./in_process.ts";

const args = process.argv.slice(2);
const top = Number(args.find((a) => a.startsWith("--top="))?.slice(6) ?? 8);
const wanted = args.filter((a) => !a.startsWith("--"));

const cases = await visitorCases(mod, draft, "(n)", new mod.MapStore(), {});
const app = await visitorCases(mod, draft, "(app data)", new mod.MapStore(), APP_DATA);
for (const [name, run] of app) cases.set(name, run);
cases.set("C new", newSessionCase(mod));

interface ProfileNode {
  callFrame: { functionName: string; url: string };
  selfSize: number;
  children: ProfileNode[];
}

const N = 50_000;
const inspector = new Session();
inspector.connect();
const self = import.meta.url;
console.log(
  `bytes allocated per request, ${
    N.toLocaleString("en-US")
  } requests each (Node ${process.version})\n`,
);
for (const [name, run] of cases) {
  if (wanted.length > 0 && !wanted.some((w) => name.startsWith(w))) continue;
  await measure(name, run);
}
inspector.disconnect();

async function measure(name: string, run: Run): Promise<void> {
  for (let i = 0; i < N; i++) await run(i); // optimised before sampling
  await inspector.post("HeapProfiler.startSampling", {
    samplingInterval: 32,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < N; i++) await run(i);
  const { profile } = await inspector.post("HeapProfiler.stopSampling");
  const sites = new Map<string, number>();
  let total = 0;
  /** Builtins (no url) are charged to the function that called them. */
  const walk = (node: ProfileNode, caller: string) => {
    const { functionName, url } = node.callFrame;
    const here = url === "" && caller !== ""
      ? `${caller} → ${functionName}`
      : `${functionName || "(anonymous)"} ${url.split("/").slice(-2).join("/")}`;
    // The loop here allocates the promise it awaits: not the manager's.
    if (node.selfSize > 0 && url !== self) {
      total += node.selfSize;
      sites.set(here, (sites.get(here) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, url === "" ? caller : here);
  };
  walk(profile.head as unknown as ProfileNode, "");
  console.log(`${(total / N).toFixed(0).padStart(6)} B  ${name}`);
  for (const [site, bytes] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(bytes / N).toFixed(0).padStart(10)} B  ${site}`);
  }
}

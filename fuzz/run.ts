/**
 * `npm run fuzz [-- runs [seed]]`: runs every fuzz property of fuzz/properties.ts (default
 * 100,000 inputs each) and prints, per target, the inputs tried, throws, false accepts and true
 * accepts (the control). Exits non-zero on any failure, with fast-check's shrunk counterexample.
 */
import { fuzzTargets } from "./properties.ts";

const runs = Number(process.argv[2] ?? 100_000);
const seed = process.argv[3] === undefined ? Date.now() % 2 ** 31 : Number(process.argv[3]);
if (!(runs > 0)) throw new RangeError("usage: npm run fuzz -- [runs] [seed]");

console.log(`fuzz: ${runs.toLocaleString("en")} inputs per target, seed ${seed}\n`);
let failed = false;
for (const target of await fuzzTargets()) {
  const started = performance.now();
  let error: unknown;
  try {
    await target.run(runs, seed);
  } catch (err) {
    error = err;
    failed = true;
  }
  const s = target.stats;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${error ? "FAIL" : "ok  "} ${target.name}: ${s.runs.toLocaleString("en")} inputs, ` +
      `${s.throws} throws, ${s.falseAccepts} false accepts, ` +
      `${s.trueAccepts.toLocaleString("en")} true accepts (${seconds} s)`,
  );
  if (error) console.log(String((error as Error).message ?? error));
}
process.exitCode = failed ? 1 : 0;

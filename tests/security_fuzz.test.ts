/**
 * The fuzz properties of fuzz/properties.ts with a few hundred random inputs each (fresh seed per
 * run; fast-check prints the seed and the shrunk counterexample on a failure). `npm run fuzz`
 * runs 100,000 each.
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fuzzTargets } from "../fuzz/properties.ts";

const RUNS = 300;
const targets = await fuzzTargets();

describe("fuzzing (fast-check, 300 inputs per target; npm run fuzz for 100,000)", () => {
  for (const target of targets) {
    test(`${target.name}: zero throws, zero false accepts`, { timeout: 30_000 }, async () => {
      await target.run(RUNS);
      assert.equal(target.stats.throws, 0);
      assert.equal(target.stats.falseAccepts, 0);
      assert.ok(target.stats.runs >= RUNS);
      assert.ok(target.stats.trueAccepts > 0, "control: issued values are accepted");
    });
  }
});

/**
 * A/B of the session manager in one process: this tree against another git revision, the same
 * cases as `bench/manager.ts`, rounds alternating between the two, the median and best round of
 * each. On a noisy machine, runs of two separate processes can differ by 30 % for nothing; rounds
 * alternating in one process see the same noise.
 *
 * Usage: `node --import tsx bench/ab.ts <revision> [filter...]` (also `deno run -A`, `bun`): checks
 * the revision out into a temporary git worktree (with this tree's node_modules), runs, removes it.
 * Filters keep the cases whose name contains one of them.
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { APP_DATA, type Run, visitorCases } from "./in_process.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const [revision, ...filters] = process.argv.slice(2);
if (!revision) throw new Error("usage: bench/ab.ts <revision> [filter...]");

/** The cases over the checkout at `root`. */
async function casesOf(root: string): Promise<Map<string, Run>> {
  const mod = await import(join(root, "mod.ts"));
  const draft = await import(join(root, "src/socket_draft.ts"));
  return new Map([
    ...await visitorCases(mod, draft, "(MapStore, n)", new mod.MapStore(), {}),
    ...await visitorCases(mod, draft, "(MapStore, app data)", new mod.MapStore(), APP_DATA),
    ...await visitorCases(
      mod,
      draft,
      "(MapStore, app data, signed in)",
      new mod.MapStore(),
      APP_DATA,
      true,
    ),
    ...await visitorCases(mod, draft, "(plain Map, n)", new Map(), {}),
    ...await visitorCases(mod, draft, "(sealed, n)", undefined, {}),
  ]);
}

const dir = mkdtempSync(join(tmpdir(), "unisession-ab-"));
const other = join(dir, "tree");
execFileSync("git", ["-C", ROOT, "worktree", "add", "--detach", other, revision], {
  stdio: "ignore",
});
try {
  symlinkSync(join(ROOT, "node_modules"), join(other, "node_modules"));
  const trees = { this: await casesOf(ROOT), [revision]: await casesOf(other) };
  const names = [...trees.this.keys()].filter((name) =>
    trees[revision]!.has(name) && (filters.length === 0 || filters.some((f) => name.includes(f)))
  );
  const N = 20_000;
  const ROUNDS = 12;
  console.log(`${ROUNDS} rounds of ${N.toLocaleString("en")} per case, alternating; µs per call`);
  console.log(
    `${"case".padEnd(32)} ${"this: median (best)".padStart(20)} ${`${revision}:`.padStart(14)}`,
  );
  for (const name of names) {
    const times: Record<string, number[]> = { this: [], [revision]: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? ["this", revision] : [revision, "this"];
      for (const tree of order) {
        const run = trees[tree]!.get(name)!;
        const t0 = performance.now();
        for (let i = 0; i < N; i++) await run(i);
        if (round >= 2) times[tree]!.push((performance.now() - t0) * 1000 / N); // 2 warm-ups
      }
    }
    const show = (v: number[]) => {
      const s = [...v].sort((a, b) => a - b);
      return `${s[s.length >> 1]!.toFixed(2)} (${s[0]!.toFixed(2)})`;
    };
    console.log(
      `${name.padEnd(32)} ${show(times.this!).padStart(20)} ${show(times[revision]!).padStart(14)}`,
    );
  }
} finally {
  execFileSync("git", ["-C", ROOT, "worktree", "remove", "--force", other], { stdio: "ignore" });
  rmSync(dir, { recursive: true, force: true });
}

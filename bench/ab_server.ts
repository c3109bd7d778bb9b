/**
 * A/B of one benchmark row: a server of this tree against the same server of another git
 * revision, under load, rounds alternating between the two (each round a fresh server process,
 * a warm-up and a measured window), the median and best server CPU per request of each, and per
 * round the ratio of the two (they share that moment's noise) with how many rounds each side won.
 *
 * Why, next to `bench/ab.ts`: a change measured in a loop in one process can be worth much more,
 * or nothing, in a server. There the same code runs between the framework's, with cold caches:
 * `JSON.stringify({ n })` costs about 0.1 µs in a loop and 0.8 µs in a socket.io server's event
 * handler on the benchmark machine. And runs of two separate processes minutes apart can differ
 * by 30 % for nothing: alternating rounds see the same noise.
 *
 * Usage: `node --import tsx bench/ab_server.ts <revision> <server> <variant> <workload> [options]`
 * - revision: a git revision, or `variant=<name>` for another variant of this tree (what a
 *   variant costs next to the bare server, say)
 * - server: a file of `bench/servers/` without `.ts` (`hono`, `koa`, `socket_io`, ...)
 * - workload: A, B, C or D (D for `socket_io`)
 * - options: `--runtime=node|deno|bun` (default node), `--rounds=N` (default 8),
 *   `--duration=S` measured seconds per round (default 2)
 *
 * Example: `node --import tsx bench/ab_server.ts HEAD~1 socket_io unisession D`
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { command, pinCpus, ROOT, type Runtime, startServer } from "./server_process.ts";
import { runWorkload, type Workload } from "./workloads.ts";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const options = new Map(
  process.argv.slice(2).filter((a) => a.startsWith("--")).map((a) => {
    const [name, value = ""] = a.slice(2).split("=");
    return [name!, value];
  }),
);
const [revision, server, variant, workload] = args;
if (!revision || !server || !variant || !workload || !/^[ABCD]$/.test(workload)) {
  throw new Error(
    "usage: bench/ab_server.ts <revision> <server> <variant> <A|B|C|D> [--runtime=node|deno|bun] [--rounds=N] [--duration=S]",
  );
}
const runtime = (options.get("runtime") || "node") as Runtime;
if (!["node", "deno", "bun"].includes(runtime)) throw new Error(`unknown runtime ${runtime}`);
const rounds = Number(options.get("rounds") || 8);
const durationMs = Number(options.get("duration") || 2) * 1000;
if (!(rounds >= 1) || !(durationMs > 0)) throw new Error("--rounds and --duration must be > 0");

const otherVariant = revision.startsWith("variant=") ? revision.slice(8) : undefined;
const dir = mkdtempSync(join(tmpdir(), "unisession-ab-server-"));
const other = join(dir, "tree");
let added = false;
try {
  if (!otherVariant) {
    execFileSync("git", ["-C", ROOT, "worktree", "add", "--detach", other, revision], {
      stdio: "ignore",
    });
    added = true;
    symlinkSync(join(ROOT, "node_modules"), join(other, "node_modules"));
  }
  const pinned = pinCpus();
  /** The two sides: this tree's variant, and the revision's (or this tree's other variant). */
  const sides = [
    { label: "this", root: ROOT, variant, times: [] as number[] },
    {
      label: revision,
      root: otherVariant ? ROOT : `${other}/`,
      variant: otherVariant ?? variant,
      times: [] as number[],
    },
  ];
  console.log(
    `${runtime} · ${server} · ${variant} · ${workload}: ${rounds} rounds, alternating, ` +
      `${durationMs / 1000} s measured each${pinned ? ", server and load on a core each" : ""}`,
  );
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 ? sides : [...sides].reverse()) {
      const argv = command(runtime, `${side.root}bench/servers/${server}.ts`, [side.variant]);
      const running = await startServer(argv);
      try {
        const settings = { warmupMs: 1000, durationMs, connections: 10 };
        const bare = side.variant === "bare";
        const r = await runWorkload(running, workload as Workload, bare, settings);
        if (r.errors > 0) throw new Error(`${side.label}: ${r.errors} wrong answers`);
        const us = r.cpuMicros / r.requests;
        side.times.push(us);
        console.log(`  round ${round + 1} ${side.label.padEnd(12)} ${us.toFixed(1)} µs/req`);
      } finally {
        await running.stop();
      }
    }
  }
  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  for (const side of sides) {
    const best = Math.min(...side.times);
    console.log(
      `${`${side.label}:`.padEnd(12)} median ${median(side.times).toFixed(1)} µs/req (best ${
        best.toFixed(1)
      })`,
    );
  }
  // The two runs of a round share the machine's state of that moment: their ratio drifts less
  // than either side's own figures, and how many rounds each side won says how sure the
  // difference is (10 of 10 happens by chance once in 1,024 when there is none).
  const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
  const ratios = a.times.map((t, i) => t / b.times[i]!);
  const wins = ratios.filter((r) => r < 1).length;
  console.log(
    `${a.label} / ${b.label}, per round: median ${median(ratios).toFixed(3)}; ` +
      `${a.label} used less CPU in ${wins} of ${ratios.length} rounds`,
  );
} finally {
  if (added) {
    execFileSync("git", ["-C", ROOT, "worktree", "remove", "--force", other], { stdio: "ignore" });
  }
  rmSync(dir, { recursive: true, force: true });
}

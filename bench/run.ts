/**
 * `npm run bench`: server CPU per request of unisession and its peers, against the bare
 * framework in the same run. See bench/README.md.
 *
 *   npm run bench                      full run, writes bench/RESULTS.md
 *   npm run bench -- --quick           short windows (0.5 s warm-up, 1 s measured)
 *   npm run bench -- deno/hono koa     only servers whose key contains one of the filters
 *                                      (keys: runtime/framework/variant; bare rows always run)
 *   npm run bench -- --workloads=AB    only some workloads (A read, B increment, C new, D socket)
 *   npm run bench -- --profile         where unisession's time goes on Node: V8 CPU profiles of the
 *                                      Hono, Koa and socket.io rows (writes bench/PROFILE.md)
 *   npm run bench -- --rounds=3        every row 3 times (alternating server order), the median
 *                                      round reported: RESULTS.md is `--rounds=3 --duration=2 --write`
 *   npm run bench -- --smoke           every server and workload once, in windows too short to
 *                                      measure anything: exits non-zero when a server fails or
 *                                      answers wrong (`npm run check` runs it)
 *   options: --warmup=S --duration=S --connections=N --write (RESULTS.md also for partial runs)
 * @module
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import {
  command,
  machineCpuMicros,
  pinCpus,
  ROOT,
  type Runtime,
  startServer,
} from "./server_process.ts";
import { runWorkload, type Settings, type Workload, WORKLOAD_NAMES } from "./workloads.ts";
import type { LoadResult } from "./meter.ts";
import { NOISE_LIMIT, resultsMarkdown, type Row, runHeader } from "./report.ts";
import { profileMarkdown, profileUnisession } from "./profile.ts";

export interface Suite {
  runtime: Runtime;
  framework: string;
  /** Server file under bench/servers/. */
  file: string;
  /** Variant id (the server's argument) → label; `bare` first. */
  variants: [string, string][];
  workloads: Workload[];
}

const HONO_VARIANTS: [string, string][] = [
  ["bare", "(bare framework)"],
  ["floor", "floor: unsigned id + Map (no library)"],
  ["signed-json", "no library: signed id + Map of JSON"],
  ["unisession", "unisession (MapStore)"],
  ["unisession-dropin", "unisession (hono-session options, Map)"],
  ["unisession-sealed", "unisession (sealed cookie)"],
  ["hono-session-map", "hono-session (Map)"],
  ["hono-session-sealed", "hono-session (sealed cookie)"],
  ["hono-sessions-memory", "hono-sessions (MemoryStore)"],
  ["hono-sessions-cookie", "hono-sessions (CookieStore)"],
  ["hono-official", "@hono/session (JWE cookie)"],
];

export const SUITES: Suite[] = [
  ...(["node", "deno", "bun"] as const).map((runtime): Suite => ({
    runtime,
    framework: "hono",
    file: "hono.ts",
    variants: HONO_VARIANTS,
    workloads: ["A", "B", "C"],
  })),
  {
    runtime: "node",
    framework: "koa",
    file: "koa.ts",
    variants: [
      ["bare", "(bare framework)"],
      ["floor", "floor: unsigned id + Map (no library)"],
      ["unisession", "unisession (MapStore)"],
      ["koa-session-cookie", "koa-session (cookie)"],
      ["koa-session-store", "koa-session (store: Map)"],
      ["koa-session-minimal", "koa-session-minimal (MemoryStore)"],
    ],
    workloads: ["A", "B", "C"],
  },
  {
    runtime: "node",
    framework: "express",
    file: "express.ts",
    variants: [["bare", "(bare framework)"], ["express-session", "express-session (MemoryStore)"]],
    workloads: ["A", "B", "C"],
  },
  {
    runtime: "node",
    framework: "socket.io",
    file: "socket_io.ts",
    variants: [
      ["bare", "(bare ack)"],
      ["floor", "floor: unsigned id + Map (no library)"],
      ["floor-json", "floor, n held as JSON, ack from a promise"],
      ["unisession", "unisession withSession (Hono + MapStore)"],
      ["unisession-koa", "unisession withSession (Koa + MapStore)"],
      ["express-session", "express-session reload/save"],
    ],
    workloads: ["D"],
  },
];

function parseArgs(argv: string[]) {
  const flags = new Map<string, string>();
  const filters: string[] = [];
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m) flags.set(m[1]!, m[2] ?? "true");
    else filters.push(arg);
  }
  const known = [
    "quick",
    "smoke",
    "warmup",
    "duration",
    "connections",
    "workloads",
    "write",
    "profile",
    "rounds",
  ];
  for (const name of flags.keys()) {
    if (!known.includes(name)) throw new Error(`Unknown option --${name} (known: ${known})`);
  }
  const smoke = flags.has("smoke");
  if (smoke && (flags.has("write") || flags.has("profile") || flags.has("rounds"))) {
    throw new Error("--smoke measures nothing: it takes no --write, --profile or --rounds");
  }
  const quick = flags.has("quick");
  const seconds = (name: string, fallback: number) => {
    const v = Number(flags.get(name) ?? fallback);
    if (!(v > 0)) throw new Error(`--${name} must be a positive number of seconds`);
    return v * 1000;
  };
  const settings: Settings = {
    warmupMs: seconds("warmup", smoke ? 0.05 : quick ? 0.5 : 1),
    durationMs: seconds("duration", smoke ? 0.15 : quick ? 1 : 3),
    connections: Number(flags.get("connections") ?? (smoke ? 2 : 10)),
  };
  const workloads = (flags.get("workloads") ?? "ABCD").toUpperCase().split("") as Workload[];
  const rounds = Number(flags.get("rounds") ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be an integer ≥ 1");
  return {
    settings,
    rounds,
    filters,
    workloads,
    quick,
    smoke,
    profile: flags.has("profile"),
    write: flags.has("write") ||
      (!quick && !smoke && filters.length === 0 && !flags.has("workloads") &&
        !flags.has("duration") && !flags.has("warmup") && !flags.has("connections")),
  };
}

/** The servers to run: those whose key matches a filter, plus the bare server of their suite. */
function plan(filters: string[], workloads: Workload[]) {
  const jobs: { suite: Suite; variant: string; label: string; workloads: Workload[] }[] = [];
  for (const suite of SUITES) {
    const ws = suite.workloads.filter((w) => workloads.includes(w));
    if (ws.length === 0) continue;
    const chosen = suite.variants.filter(([id]) => {
      const key = `${suite.runtime}/${suite.framework}/${id}`;
      return filters.length === 0 || filters.some((f) => key.includes(f));
    });
    if (chosen.length === 0) continue;
    if (chosen[0]![0] !== "bare") chosen.unshift(suite.variants[0]!);
    for (const [variant, label] of chosen) jobs.push({ suite, variant, label, workloads: ws });
  }
  return jobs;
}

const ATTEMPTS = 3;

/**
 * Runs a measurement up to three times while other processes disturbed it (more than
 * NOISE_LIMIT cores of foreign CPU), keeping the least disturbed attempt. Every attempt's answers
 * count: a wrong answer in any attempt is reported.
 */
async function measureQuietly(
  measure: () => Promise<LoadResult>,
  attempts = ATTEMPTS,
): Promise<LoadResult> {
  let best: LoadResult | undefined;
  let errors = 0;
  let firstError: string | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const result = await measure();
    errors += result.errors;
    firstError ??= result.firstError;
    if (!best || result.foreignCores < best.foreignCores) best = result;
    if (result.foreignCores <= NOISE_LIMIT) break;
    if (attempt < attempts) {
      console.error(
        `  other processes used ${result.foreignCores.toFixed(2)} cores: measuring again`,
      );
      await waitForQuiet();
    }
  }
  return { ...best!, errors, firstError };
}

/**
 * The round with the median server CPU per request (the lower middle one of an even count); its
 * wrong answers are those of every round.
 */
function medianRound(rounds: LoadResult[]): LoadResult {
  const sorted = rounds.toSorted((a, b) => a.cpuMicros / a.requests - b.cpuMicros / b.requests);
  const median = sorted[(sorted.length - 1) >> 1]!;
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  return { ...median, errors, firstError: rounds.find((r) => r.errors > 0)?.firstError };
}

/** The median over the rounds of `bare[i]` µs/req ÷ `own[i]` µs/req (the lower middle one). */
function medianRatio(bare: LoadResult[], own: LoadResult[]): number {
  const perRequest = (r: LoadResult) => r.cpuMicros / r.requests;
  const ratios = own.map((r, i) => perRequest(bare[i]!) / perRequest(r)).toSorted((a, b) => a - b);
  return ratios[(ratios.length - 1) >> 1]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (up to 30 s) until other processes use at most NOISE_LIMIT cores over 1 s. */
async function waitForQuiet(): Promise<void> {
  for (let waited = 0; waited < 30_000; waited += 1000) {
    const before = machineCpuMicros();
    const self = process.cpuUsage();
    await sleep(1000);
    const used = process.cpuUsage(self);
    const foreign = (machineCpuMicros() - before - used.user - used.system) / 1e6;
    if (foreign <= NOISE_LIMIT) return;
  }
}

/** `--profile`: prints where the time goes; writes bench/PROFILE.md with `--write` or on a full run. */
async function profile(args: ReturnType<typeof parseArgs>, pinned: boolean): Promise<number> {
  const started = Date.now();
  const { wrong, text } = await profileUnisession(args.settings, args.workloads);
  if (args.write) {
    const header = runHeader({
      settings: args.settings,
      runtimes: new Map([["node", `node ${process.versions.node}`]]),
      command: commandLine(),
      elapsedMs: Date.now() - started,
      pinned,
    });
    writeFileSync(`${ROOT}bench/PROFILE.md`, profileMarkdown(text, header));
    spawnSync(`${ROOT}node_modules/.bin/deno`, ["fmt", "-q", "bench/PROFILE.md"], { cwd: ROOT });
    console.error("bench: wrote bench/PROFILE.md");
  }
  return wrong > 0 ? 1 : 0;
}

/** How this run was started, for the reports. */
function commandLine(): string {
  return `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const pinned = pinCpus();
  if (args.profile) return await profile(args, pinned);
  const jobs = plan(args.filters, args.workloads);
  if (jobs.length === 0) throw new Error("No benchmark matches the filters");
  const perRound = jobs.reduce((n, j) => n + j.workloads.length, 0);
  const total = perRound * args.rounds;
  const perRow = (args.settings.warmupMs + args.settings.durationMs) / 1000 + 0.3;
  console.error(
    `bench: ${perRound} rows on ${jobs.length} servers${
      args.rounds > 1 ? `, ${args.rounds} rounds` : ""
    }, ~${Math.ceil((total * perRow + jobs.length * args.rounds * 1.5) / 60)} min (${
      args.settings.warmupMs / 1000
    } s warm-up + ${
      args.settings.durationMs / 1000
    } s measured per row, ${args.settings.connections} connections)`,
  );
  const started = Date.now();
  const runtimes = new Map<Runtime, string>();
  /** Per job, per workload: the result of each round. */
  const results = jobs.map(() => new Map<Workload, LoadResult[]>());
  let done = 0;
  for (let round = 0; round < args.rounds; round++) {
    // Every other round in reverse order, so that a slow drift of the machine's speed does not
    // favour the servers measured first.
    const order = jobs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const index of order) {
      const job = jobs[index]!;
      const { suite } = job;
      const file = `${ROOT}bench/servers/${suite.file}`;
      if (!args.smoke) await waitForQuiet();
      const server = await startServer(command(suite.runtime, file, [job.variant]));
      runtimes.set(suite.runtime, server.runtime);
      try {
        for (const workload of job.workloads) {
          const result = await measureQuietly(
            () => runWorkload(server, workload, job.variant === "bare", args.settings),
            args.smoke ? 1 : ATTEMPTS,
          );
          const list = results[index]!.get(workload) ?? [];
          list.push(result);
          results[index]!.set(workload, list);
          const perReq = result.cpuMicros / result.requests;
          console.error(
            `[${++done}/${total}] ${suite.runtime} · ${suite.framework} · ${job.label} · ${
              WORKLOAD_NAMES[workload]
            }: ${Math.round(result.requests / result.wallMs * 1000)} req/s, ${
              perReq.toFixed(1)
            } µs/req, ${Math.round(result.cpuMicros / result.wallMs / 10)} % server CPU${
              result.foreignCores > NOISE_LIMIT
                ? `, DISTURBED by ${result.foreignCores.toFixed(2)} cores of other work`
                : ""
            }${result.errors ? `, ${result.errors} WRONG: ${result.firstError}` : ""}`,
          );
        }
      } finally {
        await server.stop();
      }
    }
  }
  const rows: Row[] = [];
  jobs.forEach((job, index) => {
    // The machine drifts between rounds (a shared VM): each ratio pairs a round's row with the
    // bare row of the same round, measured next to it, and the median of those is reported.
    const bareIndex = jobs.findIndex((j) => j.suite === job.suite && j.variant === "bare");
    for (const workload of job.workloads) {
      const own = results[index]!.get(workload)!;
      const bare = bareIndex < 0 ? undefined : results[bareIndex]!.get(workload);
      rows.push({
        runtime: job.suite.runtime,
        framework: job.suite.framework,
        variant: job.variant,
        label: job.label,
        workload,
        result: medianRound(own),
        pairedRatio: args.rounds > 1 && bare ? medianRatio(bare, own) : undefined,
      });
    }
  });
  const markdown = resultsMarkdown(rows, {
    settings: args.settings,
    runtimes,
    command: commandLine(),
    elapsedMs: Date.now() - started,
    rounds: args.rounds,
    pinned,
  });
  if (!args.smoke) console.log(markdown);
  if (args.write) {
    writeFileSync(`${ROOT}bench/RESULTS.md`, markdown);
    // deno fmt --check (npm run check) covers bench/: write the file as deno fmt formats it.
    spawnSync(`${ROOT}node_modules/.bin/deno`, ["fmt", "-q", "bench/RESULTS.md"], { cwd: ROOT });
    console.error("bench: wrote bench/RESULTS.md");
  }
  const failed = rows.filter((r) => r.result.errors > 0);
  if (failed.length > 0) {
    console.error(`bench: ${failed.length} rows had wrong answers: their numbers measure nothing`);
    return 1;
  }
  const silent = rows.filter((r) => !(r.result.requests > 0));
  if (silent.length > 0) {
    const first = silent[0]!;
    console.error(
      `bench: ${silent.length} rows completed no request (first: ${first.runtime} · ${first.framework} · ${first.label} · ${first.workload})`,
    );
    return 1;
  }
  if (args.smoke) {
    const answers = rows.reduce((n, r) => n + r.result.requests, 0);
    console.log(
      `bench smoke: ${rows.length} rows on ${jobs.length} servers, ${answers} answers, all right (${
        ((Date.now() - started) / 1000).toFixed(0)
      } s)`,
    );
  }
  return 0;
}

process.exitCode = await main();

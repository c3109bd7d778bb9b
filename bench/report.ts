/**
 * The markdown report: machine and versions, a summary (server CPU µs per request and the ratio
 * to the bare framework) and the full table (req/s, latency, CPU, checked answers).
 * @module
 */
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import type { LoadResult } from "./meter.ts";
import { ROOT, type Runtime } from "./server_process.ts";
import { type Settings, type Workload, WORKLOAD_NAMES } from "./workloads.ts";

/** Other processes may use this much CPU (in cores) during a window before it is flagged ⚠. */
export const NOISE_LIMIT = 0.2;

export interface Row {
  runtime: Runtime;
  framework: string;
  variant: string;
  label: string;
  workload: Workload;
  result: LoadResult;
  /**
   * With several rounds: the median over the rounds of bare µs/req ÷ this row's µs/req, each from
   * the same round (the bare server measured next to this one). Without it, the ratio of the rows'
   * results.
   */
  pairedRatio?: number;
}

export interface ReportMeta {
  settings: Settings;
  /** Runtime → the version its servers reported. */
  runtimes: Map<Runtime, string>;
  command: string;
  elapsedMs: number;
  /** Rounds over all rows (`--rounds`): each row reports the median round. Default 1. */
  rounds?: number;
  /** The server and the load generator ran on a CPU each (`taskset`). */
  pinned: boolean;
}

const PACKAGES = [
  "hono",
  "@hono/node-server",
  "hono-session",
  "hono-sessions",
  "@hono/session",
  "koa",
  "koa-session",
  "koa-session-minimal",
  "express",
  "express-session",
  "socket.io",
  "socket.io-client",
];

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(`${ROOT}node_modules/${pkg}/package.json`, "utf8")).version;
  } catch {
    return "?";
  }
}

const perRequest = (r: LoadResult) => r.cpuMicros / r.requests;
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "—";

/** bare µs/req ÷ this row's µs/req, from the bare row of the same suite and workload. */
function ratio(rows: Row[], row: Row): number {
  if (row.pairedRatio !== undefined) return row.pairedRatio;
  const bare = rows.find((r) =>
    r.variant === "bare" && r.runtime === row.runtime && r.framework === row.framework &&
    r.workload === row.workload
  );
  return bare ? perRequest(bare.result) / perRequest(row.result) : NaN;
}

function table(header: string[], body: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const align = header.map((_, i) => (i < 2 ? "---" : "---:"));
  return [line(header), line(align), ...body.map(line)].join("\n");
}

/** One summary table per set of workloads (HTTP A–C, socket D). */
function summaries(rows: Row[]): string[] {
  const suites = [...new Set(rows.map((r) => `${r.runtime} · ${r.framework}`))];
  const byWorkloads = new Map<string, string[]>();
  for (const suite of suites) {
    const ws = [
      ...new Set(
        rows.filter((r) => `${r.runtime} · ${r.framework}` === suite)
          .map((r) => r.workload),
      ),
    ].join("");
    byWorkloads.set(ws, [...(byWorkloads.get(ws) ?? []), suite]);
  }
  return [...byWorkloads].map(([ws, group]) => {
    const workloads = ws.split("") as Workload[];
    const body: string[][] = [];
    for (const suite of group) {
      const suiteRows = rows.filter((r) => `${r.runtime} · ${r.framework}` === suite);
      for (const label of new Set(suiteRows.map((r) => r.label))) {
        body.push([
          suite,
          label,
          ...workloads.map((w) => {
            const row = suiteRows.find((r) => r.label === label && r.workload === w);
            if (!row) return "";
            if (row.result.errors > 0) return "✗ wrong answers";
            const noisy = row.result.foreignCores > NOISE_LIMIT ? " ⚠" : "";
            const us = `${fmt(perRequest(row.result))} µs${noisy}`;
            return row.variant === "bare" ? us : `${us} · **${fmt(ratio(rows, row), 2)}**`;
          }),
        ]);
      }
    }
    return table(
      ["runtime · framework", "session", ...workloads.map((w) => WORKLOAD_NAMES[w])],
      body,
    );
  });
}

function details(rows: Row[]): string {
  return table(
    [
      "runtime · framework",
      "session",
      "workload",
      "req/s",
      "p50 ms",
      "p99 ms",
      "server CPU µs/req",
      "user + sys",
      "ratio",
      "server CPU",
      "other load",
      "answers",
    ],
    rows.map((row) => {
      const r = row.result;
      return [
        `${row.runtime} · ${row.framework}`,
        row.label,
        WORKLOAD_NAMES[row.workload],
        fmt(r.requests / r.wallMs * 1000),
        fmt(r.p50, 2),
        fmt(r.p99, 2),
        fmt(perRequest(r), 1),
        `${fmt(r.cpuUserMicros / r.requests, 1)} + ${fmt(r.cpuSystemMicros / r.requests, 1)}`,
        row.variant === "bare" ? "1" : fmt(ratio(rows, row), 2),
        `${fmt(r.cpuMicros / (r.wallMs * 10))} %`,
        `${fmt(r.foreignCores * 100)} %${r.foreignCores > NOISE_LIMIT ? " ⚠" : ""}`,
        r.errors
          ? `✗ ${r.errors} wrong: ${r.firstError?.replaceAll("|", "\\|")}`
          : `${fmt(r.requests)} ok`,
      ];
    }),
  );
}

/** Date, machine, runtimes, packages and the command with its settings (Markdown lines). */
export function runHeader(meta: ReportMeta): string[] {
  const cpu = cpus();
  const s = meta.settings;
  return [
    `Date: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC. Machine: ${
      cpu[0]?.model.trim() ?? "?"
    }, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}.`,
    `Runtimes: ${[...meta.runtimes.values()].join(", ")}.`,
    `Packages: ${PACKAGES.map((p) => `${p} ${version(p)}`).join(", ")}.`,
    "",
    `Command: \`${meta.command}\` (${s.connections} connections, each its own visitor; ${
      s.warmupMs / 1000
    } s warm-up + ${s.durationMs / 1000} s measured per row${
      (meta.rounds ?? 1) > 1
        ? `, ${meta.rounds} rounds over all servers (every other one in reverse order), each row the round with the median server CPU per request, each ratio the median of the rounds' ratios (a round's row ÷ the same round's bare row)`
        : ""
    }; took ${fmt(meta.elapsedMs / 60_000, 1)} min). ${
      meta.pinned
        ? "Each server ran on one CPU and the load generator, which polls without sleeping, on another (`taskset`)."
        : "The load generator polls without sleeping (no CPU pinning: `taskset` or a second CPU missing)."
    }`,
  ];
}

export function resultsMarkdown(rows: Row[], meta: ReportMeta): string {
  return [
    "# Benchmark results",
    "",
    ...runHeader(meta),
    "",
    "Server CPU per request is the server process's user + system time from `/proc/<pid>/stat`",
    "over the measured window, divided by the requests completed in it. **Ratio** = bare framework",
    "µs/req ÷ with-session µs/req in the same run: 1 means the session costs nothing, 0.5 that it",
    "doubles the CPU per request. Every answer was checked (the session's value, a `Set-Cookie`",
    "on new sessions); a row with a wrong answer is marked ✗ and measures nothing. ⚠: other",
    "processes used more than 0.2 cores during the window in each of 3 attempts (the quietest is",
    "shown): read it with care. On this shared machine a row varies by 10–30 % between runs.",
    "",
    ...summaries(rows).flatMap((t) => [t, ""]),
    "<details><summary>All numbers</summary>",
    "",
    details(rows),
    "",
    "</details>",
    "",
  ].join("\n");
}

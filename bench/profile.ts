/**
 * `npm run bench -- --profile`: runs the bare Hono, Koa and socket.io servers and unisession's on
 * Node with the V8 CPU profiler on during the measured window of each workload, and prints where
 * the server's time goes: by area (unisession's src/ and adapters/, the framework's packages, Node
 * internals, GC) and the top self-time functions.
 * @module
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { command, ROOT, startServer } from "./server_process.ts";
import { runWorkload, type Settings, type Workload, WORKLOAD_NAMES } from "./workloads.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

const IDLE = new Set(["(idle)", "(root)"]);

function area(url: string, name: string): string {
  if (name === "(garbage collector)") return "GC";
  if (name === "(program)") return "(program: native, not attributed)";
  if (url.includes("/node_modules/")) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    return m ? m[1]! : "node_modules";
  }
  if (url.startsWith(`file://${ROOT}`)) {
    const rel = url.slice(`file://${ROOT}`.length);
    return rel.startsWith("src/") || rel.startsWith("adapters/") ? "unisession" : rel;
  }
  if (url.startsWith("node:") || url === "") return "node internals";
  return url;
}

function where(url: string, line: number): string {
  // tsx-transpiled repo files report line 1 for everything: name the file only.
  if (url.startsWith(`file://${ROOT}`)) return url.slice(`file://${ROOT}`.length);
  return `${url.replace(/^.*\/node_modules\//, "")}:${line + 1}`;
}

/** The self-time breakdown of one `.cpuprofile` as lines; `cpuPerRequest` scales it to µs. */
function summarize(file: string, cpuPerRequest: number): string[] {
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: ProfileNode[] };
  const busy = profile.nodes.filter((n) => !IDLE.has(n.callFrame.functionName));
  const total = busy.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, { hits: number; area: string }>();
  for (const n of busy) {
    const { functionName, url, lineNumber } = n.callFrame;
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + (n.hitCount ?? 0));
    const key = `${functionName || "(anonymous)"} ${where(url, lineNumber)}`;
    const entry = byFunction.get(key) ?? { hits: 0, area: a };
    entry.hits += n.hitCount ?? 0;
    byFunction.set(key, entry);
  }
  const share = (hits: number) =>
    `${(hits / total * 100).toFixed(1).padStart(5)} %  ${
      (hits / total * cpuPerRequest).toFixed(1).padStart(5)
    } µs/req`;
  log(`  by area (self time, ${total} busy samples):`);
  for (const [a, hits] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, 10)) {
    log(`    ${share(hits)}  ${a}`);
  }
  const sorted = [...byFunction].sort((x, y) => y[1].hits - x[1].hits);
  log("  top self time in unisession (src/, adapters/):");
  for (const [key, { hits }] of sorted.filter(([, v]) => v.area === "unisession").slice(0, 12)) {
    log(`    ${share(hits)}  ${key}`);
  }
  log("  top self time overall:");
  for (const [key, { hits, area }] of sorted.slice(0, 15)) {
    log(`    ${share(hits)}  ${key}  [${area}]`);
  }
  return lines;
}

/** What is profiled: the bare server and unisession's, per workload. */
const TARGETS: { file: string; framework: string; workloads: Workload[] }[] = [
  { file: "hono.ts", framework: "hono", workloads: ["A", "B", "C"] },
  { file: "koa.ts", framework: "koa", workloads: ["A", "B", "C"] },
  { file: "socket_io.ts", framework: "socket.io", workloads: ["D"] },
];

/**
 * Profiles the bare server and unisession (MapStore) on Node: Hono and Koa for workloads A, B
 * and C, socket.io for D (filtered by `workloads`). Prints each breakdown as it comes.
 * @returns the number of wrong answers, and the breakdowns as one text
 */
export async function profileUnisession(
  settings: Settings,
  workloads: Workload[],
): Promise<{ wrong: number; text: string }> {
  let wrong = 0;
  const sections: string[] = [];
  for (const target of TARGETS) {
    for (const workload of target.workloads.filter((w) => workloads.includes(w))) {
      for (const variant of ["bare", "unisession"]) {
        const result = await profileOne(target.file, variant, workload, settings);
        console.log(`\n${result.text}`);
        sections.push(result.text);
        wrong += result.wrong;
      }
    }
  }
  return { wrong, text: sections.join("\n\n") };
}

/** bench/PROFILE.md: the breakdowns of a `--profile --write` run, with date, machine, command. */
export function profileMarkdown(text: string, header: string[]): string {
  return [
    "# Where the server's time goes",
    "",
    ...header,
    "",
    "V8 CPU profile (`node --cpu-prof`, on only during each measured window) of the bare server and",
    "unisession's (MapStore, signed ids, client-id cookie) on Node, per workload. Self time: the",
    "time spent in a function itself, not in what it calls, scaled to µs per request with the",
    "server CPU per request measured in the same window (the profiler itself adds 10–30 %).",
    "**node internals** is Node's own JavaScript and native code (HTTP parsing, sockets, streams,",
    "`writev` into the kernel); **unisession** is `src/` and `adapters/`. What the numbers say is",
    "summarised in `bench/README.md` (Where the time goes).",
    "",
    "```",
    text,
    "```",
    "",
  ].join("\n");
}

async function profileOne(
  serverFile: string,
  variant: string,
  workload: Workload,
  settings: Settings,
): Promise<{ wrong: number; text: string }> {
  const dir = mkdtempSync(join(tmpdir(), "unisession-prof-"));
  const file = join(dir, "window.cpuprofile");
  try {
    const argv = command("node", `${ROOT}bench/servers/${serverFile}`, [variant]);
    const server = await startServer(argv, { BENCH_CPU_PROFILE: file });
    let result;
    try {
      const toggle = () => process.kill(server.pid, "SIGUSR2");
      result = await runWorkload(server, workload, variant === "bare", settings, toggle);
      for (let i = 0; i < 100 && !existsSync(file); i++) await sleep(50);
    } finally {
      await server.stop();
    }
    const perRequest = result.cpuMicros / result.requests;
    if (!existsSync(file)) throw new Error("the server wrote no CPU profile");
    const title = `## node · ${serverFile.replace(".ts", "")} · ${variant} · ${
      WORKLOAD_NAMES[workload]
    }: ${perRequest.toFixed(1)} µs/req server CPU (profiler on), ${result.errors} wrong answers`;
    return { wrong: result.errors, text: [title, ...summarize(file, perRequest)].join("\n") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

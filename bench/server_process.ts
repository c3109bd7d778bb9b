/**
 * Starts one benchmark server as a child process, waits for its ready line, reads its CPU time
 * from the OS (`/proc/<pid>/stat`, user + system, all threads) and stops it by its PID.
 * @module
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type Runtime = "node" | "deno" | "bun";

export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;

/** Clock ticks per second of `/proc/<pid>/stat` (usually 100). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time of a process in µs: user and system, all threads. */
export interface CpuTimes {
  user: number;
  system: number;
}

/** A process's CPU time so far, from `/proc/<pid>/stat` (utime and stime, all threads). */
export function cpuTimes(pid: number): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const us = (field: string | undefined) => Number(field) * 1e6 / TICKS_PER_SECOND;
  return { user: us(fields[11]), system: us(fields[12]) }; // fields 14 and 15 of stat(5)
}

/** CPU time of every process on the machine so far, in µs: user + nice + system, all cores. */
export function machineCpuMicros(): number {
  const line = readFileSync("/proc/stat", "latin1").slice(0, 200).split("\n")[0]!;
  const [user, nice, system] = line.trim().split(/\s+/).slice(1, 4).map(Number);
  return (user! + nice! + system!) * 1e6 / TICKS_PER_SECOND;
}

/** The CPU servers are pinned to (through `taskset`), once `pinCpus()` succeeded. */
let serverCpu: number | undefined;

/** The CPUs this process may run on (`Cpus_allowed_list` of /proc/self/status), ascending. */
function allowedCpus(): number[] {
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync("/proc/self/status", "latin1"));
  const cpus: number[] = [];
  for (const part of (line ? line[1]! : "").trim().split(",")) {
    if (part === "") continue;
    const [from, to = from] = part.split("-").map(Number);
    for (let c = from!; c <= to!; c++) cpus.push(c);
  }
  return cpus;
}

/**
 * Gives the server and the load generator a core each: this process (the generator, all its
 * threads) on the second CPU it may use, every server started afterwards on the first (through
 * `taskset`). Without it the generator, spinning (`meter.ts`), and the server's helper threads
 * (the libuv pool that runs Web Crypto on Node) contend for the same two cores. Returns whether
 * it could (two usable CPUs and `taskset`).
 */
export function pinCpus(): boolean {
  try {
    const [server, generator] = allowedCpus();
    if (server === undefined || generator === undefined) return false;
    execFileSync("taskset", ["-a", "-p", "-c", String(generator), String(process.pid)], {
      stdio: "ignore",
    });
    serverCpu = server;
    return true;
  } catch {
    return false; // no /proc, no taskset, or not allowed: run unpinned
  }
}

/**
 * Bun's or Deno's profiler flags (the same on both) when `variable` names a folder: a CPU profile
 * with its markdown summary, written when the server exits.
 */
function profileFlags(variable: "BUN_PROF" | "DENO_PROF"): string[] {
  const dir = process.env[variable];
  return dir ? ["--cpu-prof-md", `--cpu-prof-dir=${dir}`] : [];
}

/** The command line that runs `file` on `runtime`. */
export function command(runtime: Runtime, file: string, args: string[]): string[] {
  switch (runtime) {
    case "node":
      return [process.execPath, "--import", "tsx", file, ...args];
    case "deno":
      // DENO_PROF=<dir>: a V8 CPU profile of each Deno server, with a markdown summary.
      return [`${BIN}deno`, "run", "-A", ...profileFlags("DENO_PROF"), file, ...args];
    case "bun":
      // BUN_PROF=<dir>: a CPU profile of each Bun server, in markdown (Bun's --cpu-prof-md).
      return [`${BIN}bun`, ...profileFlags("BUN_PROF"), file, ...args];
  }
}

export interface RunningServer {
  port: number;
  pid: number;
  /** The runtime and its version, as the server reports it (`node 20.20.2`). */
  runtime: string;
  /** Server CPU time so far. */
  cpu(): CpuTimes;
  stop(): Promise<void>;
}

/** Starts a server and resolves once it listens (its JSON ready line on stdout). */
export function startServer(
  argv: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<RunningServer> {
  // taskset execs the server: the pid stays the server's.
  if (serverCpu !== undefined) argv = ["taskset", "-c", String(serverCpu), ...argv];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NODE_ENV: "production", ...env },
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`Cannot start bench server (${argv.slice(-2).join(" ")}): ${why}`));
    };
    const timer = setTimeout(() => fail("no ready line in time"), timeoutMs);
    child.on("exit", (code, signal) => fail(`exited early (${code ?? signal})`));
    child.stdout!.setEncoding("utf8").on("data", function onData(chunk: string) {
      out += chunk;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (!line) return;
      clearTimeout(timer);
      child.removeAllListeners("exit");
      child.stdout!.off("data", onData);
      child.stdout!.resume();
      const info = JSON.parse(line) as { port: number; pid: number; runtime: string };
      if (info.pid !== child.pid) {
        fail(`reported pid ${info.pid}, expected ${child.pid}`);
        return;
      }
      resolve({
        ...info,
        cpu: () => cpuTimes(info.pid),
        stop: () => stop(child),
      });
    });
  });
}

/** SIGTERM (servers exit cleanly on it, so `--cpu-prof` writes its profile), SIGKILL after 10 s. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

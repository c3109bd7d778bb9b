/**
 * Spawns app instances for the multi-process tests as real processes on Node, Bun or Deno (each
 * runtime's binary, whichever runtime runs the test), waits for their `listening <port>` line,
 * and stops them by PID. Also a browser-like HTTP client whose cookie jar is shared across
 * instances (one site behind a load balancer), and small polling helpers. Runs on Deno, Bun and
 * Node.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Socket as ClientSocket } from "socket.io-client";
import { Client } from "./cookie_jar.ts";
import { RUNTIME } from "./demo_process.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A runtime an instance process can run on. */
export type InstanceRuntime = "node" | "bun" | "deno";

/** The command line running `script` (a path from the repository root) on `runtime`. */
export function instanceCommand(runtime: InstanceRuntime, script: string): string[] {
  switch (runtime) {
    // Node itself when the tests run on Node; the `node` on PATH under Deno and Bun.
    case "node":
      return [RUNTIME === "Node" ? process.execPath : "node", "--import", "tsx", script];
    case "bun":
      return [`${root}node_modules/.bin/bun`, script];
    case "deno":
      return [`${root}node_modules/.bin/deno`, "run", "-A", script];
  }
}

/** A running instance process. */
export interface Instance {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number;
  readonly runtime: InstanceRuntime;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** True while the process runs. */
  alive(): boolean;
  /** SIGTERM by PID, SIGKILL after 3 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Starts `script` with `args` on `runtime`; resolves once it printed `listening <port>`. */
export function spawnInstance(
  runtime: InstanceRuntime,
  script: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<Instance> {
  const [cmd, ...cmdArgs] = instanceCommand(runtime, script);
  const child: ChildProcess = spawn(cmd!, [...cmdArgs, ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) process.kill(child.pid!, "SIGKILL");
      }, 3000);
      await exit;
      clearTimeout(timer);
    }
    child.stdout!.destroy();
    child.stderr!.destroy();
  };
  let settled = false;
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop().then(() => reject(new Error(`${runtime} instance: ${err.message}\n${output}`)));
    };
    const timer = setTimeout(
      () => fail(new Error(`no 'listening' line in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once("error", fail);
    void exit.then(() => fail(new Error("exited before it listened")));
    child.stderr!.on("data", (chunk) => (output += chunk));
    child.stdout!.on("data", (chunk) => {
      output += chunk;
      const match = /listening (\d+)/.exec(output);
      if (!match || settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeAllListeners("error");
      resolve({
        url: `http://127.0.0.1:${match[1]}`,
        pid: child.pid!,
        runtime,
        output: () => output,
        alive: () => !exited,
        stop,
      });
    });
  });
}

/** A browser: one cookie jar for every instance (they share one site). Use absolute URLs. */
export function browser(): Client {
  return new Client({ request: (url, init) => fetch(url, init) });
}

/** GETs a JSON document (no cookies). */
export async function getJson<V>(url: string): Promise<V> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return await res.json() as V;
}

/** Polls `probe` until it returns a value other than undefined (`timeoutMs`, then throws). */
export async function until<V>(
  what: string,
  probe: () => Promise<V | undefined> | V | undefined,
  timeoutMs = 5000,
): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Emits `event` and resolves with the acknowledgement (rejects after `timeoutMs`). */
export function ask<V>(socket: ClientSocket, event: string, timeoutMs = 5000): Promise<V> {
  return socket.timeout(timeoutMs).emitWithAck(event) as Promise<V>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs the demo as its users do: the command behind `npm run demo` (Node), `deno task demo`
 * (Deno) or `bun run demo` itself (Bun), on a free port (`PORT=0`), in its own process group.
 * Also a socket.io client and a cookie-jar HTTP client for talking to it. Runs on Deno, Bun and
 * Node.
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { io as ioc, type Socket as ClientSocket } from "socket.io-client";
import { Client } from "./cookie_jar.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The runtime running the tests. */
export const RUNTIME: "Deno" | "Bun" | "Node" = (() => {
  const versions = process.versions as Record<string, string | undefined>;
  return versions.deno ? "Deno" : versions.bun ? "Bun" : "Node";
})();

/** The command line the demo script of this runtime runs, with this runtime's binary. */
export function demoCommand(): string[] {
  if (RUNTIME === "Bun") return [process.execPath, "run", "demo"];
  if (RUNTIME === "Deno") {
    const task = JSON.parse(readFileSync(`${root}deno.json`, "utf8")).tasks.demo as string;
    const [bin, ...args] = task.split(" ");
    if (!bin?.endsWith("deno")) throw new Error(`deno.json's demo task does not run deno: ${task}`);
    return [process.execPath, ...args];
  }
  const script = JSON.parse(readFileSync(`${root}package.json`, "utf8")).scripts.demo as string;
  const [bin, ...args] = script.split(" ");
  if (bin !== "node") throw new Error(`package.json's demo script does not run node: ${script}`);
  return [process.execPath, ...args];
}

/** How a process ended. */
export interface Exit {
  code: number | null;
  signal: string | null;
}

/** A running demo process. */
export interface DemoProcess {
  url: string;
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Sends `signal` to the process and waits for its exit (`timeoutMs`, then it is killed). */
  stop(signal?: "SIGINT" | "SIGTERM", timeoutMs?: number): Promise<Exit>;
  /** Kills its whole process group if it still runs (cleanup after a failed test). */
  kill(): void;
}

/** Starts the demo on a free port; resolves once it printed its URL and start-up lines. */
export function spawnDemo(timeoutMs = 30_000): Promise<DemoProcess> {
  const [cmd, ...args] = demoCommand();
  const env: Record<string, string | undefined> = { ...process.env, PORT: "0" };
  // Inherited from `bun run test` these would make the Node demo hand over to Bun.
  delete env.npm_config_user_agent;
  delete env.npm_execpath;
  const child: ChildProcess = spawn(cmd!, args, {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: kill() reaches `bun run`'s children too
  });
  let out = "";
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => resolve(exit = { code, signal }));
  });
  const kill = (): void => {
    if (exit || child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch { /* already gone */ }
  };
  return new Promise<DemoProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`the demo did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Uint8Array | string): void => {
      out += String(chunk);
      const url = /unisession demo on .*: (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      if (url === undefined || !/Ctrl-C stops it/.test(out)) return;
      clearTimeout(timer);
      resolve({
        url,
        pid: child.pid!,
        output: () => out,
        async stop(signal = "SIGINT", stopTimeoutMs = 10_000) {
          // By PID: Deno's `child.kill(signal)` reports that signal as the exit cause even when
          // the child handled it and exited with code 0.
          if (!exit) process.kill(child.pid!, signal);
          let t: ReturnType<typeof setTimeout> | undefined;
          const late = new Promise<never>((_, rej) => {
            t = setTimeout(() => {
              kill();
              rej(new Error(`the demo did not exit within ${stopTimeoutMs} ms of ${signal}`));
            }, stopTimeoutMs);
          });
          try {
            return await Promise.race([exited, late]);
          } finally {
            clearTimeout(t);
          }
        },
        kill,
      });
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk) => (out += String(chunk)));
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${e.code ?? e.signal}) before it started:\n${out}`));
    });
  });
}

/** A browser tab's HTTP side: a cookie-jar client on `url` that does not follow redirects. */
export function httpClient(url: string, from?: Client): Client {
  return new Client(
    { request: (path, init) => fetch(url + path, { ...init, redirect: "manual" }) },
    from?.jar.clone(),
  );
}

/** Connects a socket.io client (WebSocket transport) with the given Cookie header. */
export function connectSocket(url: string, cookie?: string): Promise<ClientSocket> {
  const socket = ioc(url, {
    transports: ["websocket"],
    extraHeaders: cookie ? { cookie } : {},
    forceNew: true,
    reconnection: false,
    timeout: 5000,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

/** Resolves with the first `event` whose arguments pass `accept` (5 s timeout). */
export function waitForEvent<V>(
  socket: ClientSocket,
  event: string,
  accept: (value: V) => boolean = () => true,
  timeoutMs = 5000,
): Promise<V> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`timeout waiting for ${event}`));
    }, timeoutMs);
    const listener = (value: V): void => {
      if (!accept(value)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(value);
    };
    socket.on(event, listener);
  });
}

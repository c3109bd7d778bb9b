/**
 * A real, throw-away `redis-server` for tests: started on a random free port of 127.0.0.1 with
 * persistence off (`--save '' --appendonly no`; an append-only file on request, to restart it
 * with its data), awaited until it answers `PING`, and stopped by its PID. Runs on Deno, Bun and Node (node:child_process, node:net).
 *
 * When `redis-server` is not installed, {@linkcode redisSkipReason} names it so suites can skip;
 * under `CI=true` it returns `false`, so the suite runs and fails loudly instead.
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createConnection, createServer } from "node:net";
import process from "node:process";
import type { Redis } from "ioredis";

/** The program these tests need. */
export const REDIS_SERVER = "redis-server";

/** A running redis-server owned by the test that started it. */
export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Stops the server (SIGTERM, then SIGKILL after 3 s) and resolves once it has exited. */
  stop(): Promise<void>;
}

let available: boolean | undefined;

/**
 * `false` when redis-server can be used (or CI=true: then a missing program must fail the
 * tests), otherwise a skip message naming redis-server.
 */
export function redisSkipReason(): string | false {
  available ??= !spawnSync(REDIS_SERVER, ["--version"], { stdio: "ignore" }).error;
  if (available || process.env.CI === "true") return false;
  return `${REDIS_SERVER} is not installed (apt-get install redis-server); skipped outside CI`;
}

/** Options of {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** This port (to restart a stopped server where its clients reconnect). Default: a free one. */
  port?: number;
  /**
   * Persist to an append-only file in this directory, so a server started again on the same
   * directory has the data of the one stopped before (SIGTERM flushes the file). Default: no
   * persistence.
   */
  dir?: string;
}

/** Starts a redis-server on a free port; retries on a port taken in the meantime. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? await freePort();
    try {
      return await launch(port, options.dir);
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`Cannot start ${REDIS_SERVER}`, { cause: lastError });
}

async function launch(port: number, dir: string | undefined): Promise<RedisServer> {
  const persistence = dir === undefined
    ? ["--appendonly", "no"]
    : ["--dir", dir, "--appendonly", "yes"];
  const child = spawn(REDIS_SERVER, [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    ...persistence,
    "--loglevel",
    "warning",
  ], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  spawnError.catch(() => {});
  const pid = child.pid;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    child.stdout!.destroy();
    child.stderr!.destroy();
  };
  try {
    if (pid === undefined) await spawnError;
    await Promise.race([waitForPing(port, child), spawnError]);
  } catch (err) {
    await stop();
    throw new Error(`${REDIS_SERVER} did not start on port ${port}: ${output.trim()}`, {
      cause: err,
    });
  }
  return { port, pid: pid!, url: `redis://127.0.0.1:${port}`, stop };
}

/** Polls with a raw `PING` until the server answers `+PONG` (10 s at most). */
async function waitForPing(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    if (await ping(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error("no PONG within 10 s");
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
  });
}

/** A port the OS just handed out (closed again, so redis-server can take it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

/** Waits until `n` connections subscribe to `channel` (pub/sub does not queue messages). */
export async function waitForSubscribers(probe: Redis, channel: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Number(((await probe.pubsub("NUMSUB", channel)) as [string, number])[1]) < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} subscribers after 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Two app instances (`instance_server.ts`: Hono + socket.io + `@socket.io/redis-adapter` +
 * unisession on a RedisStore) sharing one redis-server, started as real processes, returned once
 * both have subscribed to the store's event channel and to the socket.io adapter's channels
 * (pub/sub does not queue: a message published before a subscription is lost).
 * @module
 */
import { Redis } from "ioredis";
import { type Instance, type InstanceRuntime, spawnInstance } from "./instance_process.ts";
import { waitForSubscribers } from "./redis_server.ts";

/** How to start a pair. */
export interface PairOptions {
  /** Runtimes of A and B. */
  runtimes: readonly [InstanceRuntime, InstanceRuntime];
  /** The socket.io adapter's `onDestroy`. */
  onDestroy: "disconnect" | "emit";
  /** The manager's `storeTimeout` (ms); default the library's. */
  storeTimeout?: number;
  /** Hide the store's event channel from the managers (`--no-store-events`). */
  noStoreEvents?: boolean;
}

/** The pub/sub channels each instance subscribes to (store events, socket.io adapter requests). */
export function pairChannels(prefix: string): string[] {
  return [`${prefix}events`, `${prefix}socket.io-request#/#`];
}

/** Waits until `n` instances subscribed to every channel of `prefix` (`storeEvents`: also the store's). */
export async function waitForInstances(
  redisPort: number,
  prefix: string,
  storeEvents = true,
  n = 2,
): Promise<void> {
  const probe = new Redis({ host: "127.0.0.1", port: redisPort });
  try {
    const channels = pairChannels(prefix).slice(storeEvents ? 0 : 1);
    for (const channel of channels) await waitForSubscribers(probe, channel, n);
  } finally {
    probe.disconnect();
  }
}

/** Two running instances and their key prefix. */
export interface Pair {
  a: Instance;
  b: Instance;
  prefix: string;
}

/** Starts A and B on a fresh key prefix of the server on `redisPort`. */
export async function startPair(
  redisPort: number,
  options: PairOptions,
): Promise<Pair> {
  const prefix = `multi:${crypto.randomUUID()}:`;
  const args = [
    "--redis",
    String(redisPort),
    "--prefix",
    prefix,
    "--on-destroy",
    options.onDestroy,
  ];
  if (options.storeTimeout !== undefined) {
    args.push("--store-timeout", String(options.storeTimeout));
  }
  if (options.noStoreEvents) args.push("--no-store-events");
  const started = await Promise.allSettled(
    options.runtimes.map((rt) => spawnInstance(rt, "tests/helpers/instance_server.ts", args)),
  );
  const up = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  try {
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    await waitForInstances(redisPort, prefix, !options.noStoreEvents);
  } catch (err) {
    await Promise.all(up.map((i) => i.stop()));
    throw err;
  }
  return { a: up[0]!, b: up[1]!, prefix };
}

/**
 * One app instance on Deno for the multi-process tests: the Hono app of `instance_app.ts` on
 * `Deno.serve` (127.0.0.1, a free port), sessions in a Deno KV file (`DenoKvStore`) that other
 * instances open too. Run it as `deno run -A tests/helpers/kv_instance_server.ts --kv <file>
 * --prefix <p>`; it prints `listening <port>` once ready and exits on SIGTERM.
 *
 * Cross-instance events go through the store's event log in KV (polled every `--poll <ms>`,
 * default the store's 500 ms; `watch()` only sees this process's own writes on a local file).
 * `--store-timeout <ms>` sets the manager's `storeTimeout` (default: the library's 10 s).
 * Unhandled rejections and uncaught errors are recorded (`GET /health`) and printed, never fatal.
 * @module
 */
import { parseArgs } from "node:util";
import { createSessions } from "../../mod.ts";
import { describeError } from "../../src/errors.ts";
import { DenoKvStore } from "../../stores/deno_kv.ts";
import { instanceApp, type InstanceData } from "./instance_app.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    kv: { type: "string" },
    prefix: { type: "string", default: "multi" },
    poll: { type: "string" },
    "store-timeout": { type: "string" },
  },
});
if (!values.kv) throw new TypeError("--kv <file> is required");

const unhandled: string[] = [];
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  unhandled.push(`unhandledRejection: ${describeError(e.reason)}`);
  console.error(`instance ${Deno.pid}: unhandled rejection:`, e.reason);
});
globalThis.addEventListener("error", (e) => {
  e.preventDefault();
  unhandled.push(`uncaughtException: ${describeError(e.error)}`);
  console.error(`instance ${Deno.pid}: uncaught exception:`, e.error);
});

const warnings: string[] = [];
const warn = (err: unknown) => {
  warnings.push(typeof err === "string" ? err : describeError(err));
  if (warnings.length > 5) warnings.shift();
};
const store = await DenoKvStore.open(values.kv, {
  prefix: [values.prefix!],
  pollIntervalMs: values.poll === undefined ? undefined : Number(values.poll),
  onError: warn,
});
const sessions = createSessions<InstanceData>({
  store,
  keys: ["a-secret-of-at-least-32-characters!!"],
  storeTimeout: values["store-timeout"] === undefined ? undefined : Number(values["store-timeout"]),
  logger: { warn, debug() {} },
});
const app = instanceApp(sessions, () => ({ unhandled, warnings }));

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening ${port}`),
}, app.fetch);

Deno.addSignalListener("SIGTERM", () => {
  setTimeout(() => Deno.exit(0), 1000);
  sessions.close();
  void server.shutdown().finally(() => {
    store.close();
    Deno.exit(0);
  });
});

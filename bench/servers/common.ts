/**
 * What every benchmark server shares: the secret, the variant argument, and the ready line the
 * runner waits for (`{"port":…,"pid":…,"runtime":…}` on stdout).
 * @module
 */

/** The signing/sealing secret of every library (unisession wants at least 32 characters). */
export const KEY = "bench-secret-of-at-least-32-characters!";
/** @hono/session's secret: 32 bytes, hex-encoded. */
export const HEX_KEY = "8f3b1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

interface RuntimeGlobals {
  Deno?: {
    args: string[];
    pid: number;
    version: { deno: string };
    addSignalListener(signal: "SIGTERM", handler: () => void): void;
    exit(code: number): never;
  };
  Bun?: { version: string };
  process?: { argv: string[]; pid: number; version: string; exit(code: number): never };
}
type NodeProcess = { on(signal: string, listener: () => void): void };
const g = globalThis as unknown as RuntimeGlobals;

/** The server's variant: its first command-line argument. */
export function variantArg(): string {
  const args = g.Deno ? g.Deno.args : g.process!.argv.slice(2);
  if (!args[0]) throw new Error("Cannot start a bench server: no variant given");
  return args[0];
}

/** `node 20.x`, `deno 2.x` or `bun 1.x`. */
export function runtimeName(): string {
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${g.process!.version.slice(1)}`;
}

/**
 * Node only, when `BENCH_CPU_PROFILE` names a file: SIGUSR2 starts the V8 CPU profiler and the
 * next SIGUSR2 stops it and writes the profile there, so the profile covers exactly the window
 * the runner measures (not startup or warm-up).
 */
async function profileOnSignal(): Promise<void> {
  if (g.Deno || g.Bun) return;
  const file = (g.process as unknown as { env: Record<string, string> }).env.BENCH_CPU_PROFILE;
  if (!file) return;
  const { Session } = await import("node:inspector");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result)))
    );
  await post("Profiler.enable");
  await post("Profiler.setSamplingInterval", { interval: 250 });
  let profiling = false;
  (g.process as unknown as NodeProcess).on("SIGUSR2", async () => {
    profiling = !profiling;
    if (profiling) await post("Profiler.start");
    else {
      const { profile } = await post("Profiler.stop") as { profile: unknown };
      writeFileSync(file, JSON.stringify(profile));
    }
  });
}
await profileOnSignal();

/** Tells the runner where the server listens and which process to measure. */
export function ready(port: number): void {
  const pid = g.Deno ? g.Deno.pid : g.process!.pid;
  // A clean exit on SIGTERM lets `--cpu-prof` (Node, Deno) and `bun --cpu-prof-md` write their
  // profiles.
  if (g.Deno) g.Deno.addSignalListener("SIGTERM", () => g.Deno!.exit(0));
  else (g.process as unknown as NodeProcess).on("SIGTERM", () => g.process!.exit(0));
  console.log(JSON.stringify({ port, pid, runtime: runtimeName() }));
}

/** Fails the start with a clear message for an unknown variant. */
export function unknownVariant(server: string, variant: string, known: string[]): never {
  throw new Error(
    `Cannot start the ${server} bench server: unknown variant "${variant}" (known: ${
      known.join(", ")
    })`,
  );
}

/**
 * `npm run demo` and `bun run demo` land here, both on Node: `bun run` starts the real `node` for
 * a script that says `node`. Started by npm (or by hand) the demo runs in this process; started by
 * `bun run`, it hands over to Bun (the binary that ran the script) so the demo runs on Bun.
 * (`deno task demo` runs main.ts on Deno directly.)
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const bun = process.env.npm_execpath;
if (process.env.npm_config_user_agent?.startsWith("bun/") && bun && !process.versions.bun) {
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  const child = spawn(bun, [main], { stdio: "inherit" });
  // Ctrl-C reaches both processes; a signal sent to this one alone is passed on.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("error", (err) => {
    console.error(`demo: cannot start Bun (${bun}): ${err.message}`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await import("./main.ts");
}

/**
 * The demo on http://127.0.0.1:3000 (`PORT` changes the port; `PORT=0` picks a free one):
 * `npm run demo` (Node), `deno task demo` (Deno), `bun run demo` (Bun). Ctrl-C stops it.
 * @module
 */
import process from "node:process";
import { startDemo } from "./server.ts";

function runtime(): string {
  const versions = process.versions as Record<string, string | undefined>;
  if (versions.deno) return `Deno ${versions.deno}`;
  if (versions.bun) return `Bun ${versions.bun}`;
  return `Node ${process.versions.node}`;
}

const port = Number(process.env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`demo: PORT must be a port number (0 picks a free one), got ${process.env.PORT}`);
  process.exit(2);
}

const demo = await startDemo({ port });
const client = demo.sessions.clientCookieName;
console.log(`unisession demo on ${runtime()}: ${demo.url}`);
console.log("  store:   MapStore (embedded, in memory: sessions end with the demo)");
console.log(
  `  cookies: ${demo.sessions.cookieName} (signed session id)` +
    (client ? `, ${client} (signed client id, bridges HTTP and sockets)` : "") +
    ", both HttpOnly",
);
console.log("  Ctrl-C stops it");

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  demo.close().then(() => {
    console.log("demo stopped");
    process.exit(0);
  }, (err) => {
    console.error("demo: could not stop cleanly:", err);
    process.exit(1);
  });
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

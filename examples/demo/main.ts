/** `npm run demo`: serves the demo on http://127.0.0.1:3000 (PORT to change); Ctrl-C stops it. */
import process from "node:process";
import { serve } from "@hono/node-server";
import { createDemoApp } from "./app.ts";

const port = Number(process.env.PORT ?? 3000);
const server = serve({ fetch: createDemoApp().fetch, port, hostname: "127.0.0.1" }, (info) => {
  console.log(`unisession demo: http://127.0.0.1:${info.port}  (store: MapStore, cookie: sid)`);
});

function stop(): void {
  console.log("\nstopping");
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

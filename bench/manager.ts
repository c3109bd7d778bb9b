/**
 * The floor under the HTTP rows: what the session manager alone costs per request, with no HTTP
 * server and no framework. A loop over 10 sessions in one MapStore (as the 10 visitors of
 * `npm run bench`, `bench/in_process.ts`): open the request's cookies, read or change `n`,
 * commit; and D, what `socket.withSession` does around an increment (without socket.io). The
 * same again with the data of a typical app in each session (a user object, a setting, a cart:
 * `APP_DATA`), and C, new sessions. Prints the best of 7 rounds of 100,000 requests, in µs per
 * request.
 *
 * Usage: `node --import tsx bench/manager.ts`, `deno run -A bench/manager.ts`, `bun bench/manager.ts`.
 * @module
 */
import * as mod from "../mod.ts";
import * as draft from "../src/socket_draft.ts";
import { APP_DATA, newSessionCase, type Run, visitorCases } from "./in_process.ts";

const cases = new Map<string, Run>([
  ...await visitorCases(mod, draft, "(n)", new mod.MapStore(), {}),
  ...await visitorCases(
    mod,
    draft,
    "(app data)",
    new mod.MapStore(),
    APP_DATA,
  ),
  ...await visitorCases(mod, draft, "(app data, signed in)", new mod.MapStore(), APP_DATA, true),
  ["C new (client-id cookie on: the default)", newSessionCase(mod)],
  ["C new (client: false)", newSessionCase(mod, { client: false })],
]);

const N = 100_000;
const best = new Map<string, number>();
for (let round = 0; round < 7; round++) {
  for (const [name, run] of cases) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await run(i);
    const us = (performance.now() - t0) * 1000 / N;
    best.set(name, Math.min(best.get(name) ?? Infinity, us));
  }
}
const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : `node ${process.versions.node}`;
console.log(`session manager alone, ${runtime}, best of 7 × ${N.toLocaleString("en")} requests:`);
for (const [name, us] of best) console.log(`  ${us.toFixed(2).padStart(6)} µs  ${name}`);

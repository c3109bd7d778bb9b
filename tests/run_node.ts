// Node 20 runner: `node --import tsx tests/run_node.ts [filter...]` imports every tests/*.test.ts
// into one process, so node:test runs the whole suite and prints one closing summary.
// Deno (`deno test -A tests/`) and Bun (`bun test ./tests/`) discover the same files themselves.
// Optional filters keep only the files whose name contains one of them.
import { readdirSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((name) => name.endsWith(".test.ts"))
  .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
  .sort();

if (files.length === 0) {
  console.error(`run_node: no tests/*.test.ts file matched ${JSON.stringify(filters)}`);
  process.exit(1);
}
for (const name of files) {
  await import(pathToFileURL(dir + name).href);
}

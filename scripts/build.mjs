#!/usr/bin/env node
// npm build: dist/ from the same .ts sources Deno/JSR use, with tsc 7 (tsconfig.json).
// Fails unless every package.json `exports` entry has its .js and .d.ts, and no emitted file
// still imports a relative `.ts` path.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = join(root, "dist");
const fail = (msg) => {
  console.error(`build: ${msg}`);
  process.exit(1);
};

rmSync(dist, { recursive: true, force: true });

const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
if (!existsSync(tsc)) fail("node_modules/typescript is missing: run `npm ci` first");
const started = performance.now();
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json")], {
  cwd: root,
  stdio: "inherit",
});
if (result.error) fail(`cannot run tsc: ${result.error.message}`);
if (result.status !== 0) {
  fail(`tsc -p tsconfig.json failed (exit ${result.status ?? result.signal})`);
}

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const missing = [];
for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
  const conditions = typeof target === "string" ? { default: target } : target;
  const js = conditions.import ?? conditions.default;
  const dts = conditions.types;
  if (typeof js !== "string" || !js.endsWith(".js")) missing.push(`${subpath}: no .js target`);
  if (typeof dts !== "string" || !dts.endsWith(".d.ts")) missing.push(`${subpath}: no types`);
  for (const file of [js, dts]) {
    if (typeof file === "string" && !existsSync(join(root, file))) {
      missing.push(`${subpath}: ${file} was not emitted`);
    }
  }
}
if (missing.length) fail(`package.json exports not satisfied by dist/:\n  ${missing.join("\n  ")}`);

// rewriteRelativeImportExtensions must have turned every relative `./x.ts` into `./x.js`.
const leftovers = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (/\.js$/.test(entry.name)) {
      const text = readFileSync(path, "utf8");
      const re = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+\.ts)["']/g;
      for (const m of text.matchAll(re)) {
        if (!m[1].endsWith(".d.ts")) leftovers.push(`${relative(root, path)}: ${m[1]}`);
      }
    }
  }
};
walk(dist);
if (leftovers.length) fail(`relative .ts imports left in dist/:\n  ${leftovers.join("\n  ")}`);

const ms = Math.round(performance.now() - started);
console.log(`build: dist/ ok (${Object.keys(pkg.exports ?? {}).length} entries, ${ms} ms)`);

#!/usr/bin/env node
// package.json (npm) and deno.json (JSR) must expose the same subpaths, each built from the same
// source file (./dist/X.js + ./dist/X.d.ts <-> ./X.ts), at the same version.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const readJson = (name) => JSON.parse(readFileSync(join(root, name), "utf8"));
const pkg = readJson("package.json");
const deno = readJson("deno.json");
const problems = [];

if (pkg.version !== deno.version) {
  problems.push(`version: package.json ${pkg.version} != deno.json ${deno.version}`);
}

const normalize = (exports) =>
  typeof exports === "string" || exports === undefined ? { ".": exports } : exports;
const npmExports = normalize(pkg.exports);
const denoExports = normalize(deno.exports);

// npm-only entries: JSR cannot publish ambient module declarations (`declare module "hono"`).
const NPM_ONLY = {
  "./hono/global": "./adapters/hono_global.ts",
  "./socket.io/global": "./adapters/socket_io_global.ts",
};

for (const subpath of new Set([...Object.keys(npmExports), ...Object.keys(denoExports)])) {
  const npm = npmExports[subpath];
  const src = denoExports[subpath] ?? NPM_ONLY[subpath];
  if (npm === undefined) {
    problems.push(`${subpath}: in deno.json only`);
    continue;
  }
  if (src === undefined) {
    problems.push(`${subpath}: in package.json only`);
    continue;
  }
  if (typeof src !== "string" || !/^\.\/.+\.ts$/.test(src) || src.endsWith(".d.ts")) {
    problems.push(`${subpath}: deno.json target ${JSON.stringify(src)} is not a ./*.ts file`);
    continue;
  }
  const conditions = typeof npm === "string" ? { default: npm } : npm;
  const stem = src.slice(2, -3);
  const wanted = { js: `./dist/${stem}.js`, types: `./dist/${stem}.d.ts` };
  const js = conditions.import ?? conditions.default;
  if (js !== wanted.js) {
    problems.push(`${subpath}: package.json default ${JSON.stringify(js)}, expected ${wanted.js}`);
  }
  if (conditions.types !== wanted.types) {
    problems.push(
      `${subpath}: package.json types ${
        JSON.stringify(conditions.types)
      }, expected ${wanted.types}`,
    );
  }
  const keys = Object.keys(conditions);
  if (keys.includes("types") && keys[0] !== "types") {
    problems.push(`${subpath}: "types" must be the first condition`);
  }
}

if (problems.length) {
  console.error(`check_exports: package.json and deno.json disagree:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(
  `check_exports: ${Object.keys(npmExports).length} subpaths match (version ${pkg.version})`,
);

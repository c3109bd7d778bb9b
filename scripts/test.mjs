#!/usr/bin/env node
// `npm test [-- deno|bun|node ...]`: the one node:test suite (tests/*.test.ts) on Deno, Bun and
// Node 20, in that order (Node last: CI reads its closing summary). Every selected runtime runs
// even after a failure; the exit code is non-zero if any of them failed or ran no test.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters as stripAnsi } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);

const lastInt = (text, re) => {
  const all = [...text.matchAll(re)];
  return all.length ? Number(all[all.length - 1][1]) : undefined;
};

const runtimes = {
  deno: {
    cmd: bin("deno"),
    args: ["test", "-A", "tests/"],
    // "ok | 12 passed (30 steps) | 0 failed | 1 ignored (1s)"
    counts: (out) => ({
      passed: lastInt(out, /(\d+) passed(?: \(\d+ steps?\))? \| \d+ failed/g),
      failed: lastInt(out, /\d+ passed(?: \(\d+ steps?\))? \| (\d+) failed/g),
      skipped: lastInt(out, /\| (\d+) ignored/g) ?? 0,
    }),
  },
  bun: {
    cmd: bin("bun"),
    args: ["test", "./tests/"],
    // " 12 pass\n 1 skip\n 0 fail\n"
    counts: (out) => ({
      passed: lastInt(out, /^\s*(\d+) pass$/gm),
      failed: lastInt(out, /^\s*(\d+) fail$/gm),
      skipped: (lastInt(out, /^\s*(\d+) skip$/gm) ?? 0) + (lastInt(out, /^\s*(\d+) todo$/gm) ?? 0),
    }),
  },
  node: {
    cmd: process.execPath,
    args: ["--import", "tsx", "--test-reporter=spec", "tests/run_node.ts"],
    // spec: "ℹ pass 12" / tap: "# pass 12"
    counts: (out) => {
      const failed = lastInt(out, /^[ℹ#] fail (\d+)$/gm);
      const cancelled = lastInt(out, /^[ℹ#] cancelled (\d+)$/gm) ?? 0;
      return {
        passed: lastInt(out, /^[ℹ#] pass (\d+)$/gm),
        failed: failed === undefined ? undefined : failed + cancelled,
        skipped: (lastInt(out, /^[ℹ#] skipped (\d+)$/gm) ?? 0) +
          (lastInt(out, /^[ℹ#] todo (\d+)$/gm) ?? 0),
      };
    },
  },
};

const selected = process.argv.slice(2);
const unknown = selected.filter((name) => !(name in runtimes));
if (unknown.length) {
  console.error(`test: unknown runtime ${unknown.join(", ")} (choose from deno, bun, node)`);
  process.exit(2);
}
const names = Object.keys(runtimes).filter((n) => selected.length === 0 || selected.includes(n));

function run(name) {
  const { cmd, args } = runtimes[name];
  const env = { ...process.env };
  if (process.stdout.isTTY && env.NO_COLOR === undefined) env.FORCE_COLOR ??= "1";
  return new Promise((resolve) => {
    if (!existsSync(cmd)) {
      resolve({ code: null, error: `${cmd} not found: run \`npm ci\` first`, out: "" });
      return;
    }
    console.log(`\n=== ${name}: ${[name === "node" ? "node" : name, ...args].join(" ")}\n`);
    const child = spawn(cmd, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.stderr.on("data", (chunk) => {
      out += chunk;
      process.stderr.write(chunk);
    });
    child.on("error", (error) => resolve({ code: null, error: error.message, out }));
    child.on(
      "close",
      (code, signal) => resolve({ code, error: signal ? `killed by ${signal}` : undefined, out }),
    );
  });
}

const results = [];
for (const name of names) {
  const started = performance.now();
  const { code, error, out } = await run(name);
  const seconds = (performance.now() - started) / 1000;
  const counts = runtimes[name].counts(stripAnsi(out));
  const known = counts.passed !== undefined && counts.failed !== undefined;
  let problem = error;
  if (!problem && code !== 0) problem = `exit code ${code}`;
  if (!problem && !known) problem = "no test summary found";
  if (!problem && counts.passed + counts.failed === 0) problem = "ran no test";
  results.push({ name, seconds, problem, known, ...counts });
}

const total = { passed: 0, failed: 0, skipped: 0 };
console.log("\n=== summary");
for (const r of results) {
  const counts = r.known ? `${r.passed} passed, ${r.failed} failed` : "no counts";
  const skipped = r.skipped ? `, ${r.skipped} skipped` : "";
  const status = r.problem ? `FAILED (${r.problem})` : "ok";
  console.log(
    `${r.name.padEnd(5)} ${counts}${skipped}  ${r.seconds.toFixed(2)} s  ${status}`,
  );
  total.passed += r.passed ?? 0;
  // A runtime that failed without reporting a failed test still counts as one failure.
  total.failed += Math.max(r.failed ?? 0, r.problem ? 1 : 0);
  total.skipped += r.skipped ?? 0;
}
const failedRuntimes = results.filter((r) => r.problem).map((r) => r.name);
if (failedRuntimes.length) console.log(`failed on: ${failedRuntimes.join(", ")}`);
console.log(
  `total: ${total.passed} passed, ${total.failed} failed` +
    (total.skipped ? `, ${total.skipped} skipped` : ""),
);
process.exitCode = failedRuntimes.length ? 1 : 0;

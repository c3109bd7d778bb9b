// The npm package as users get it: `npm run build`, `npm pack`, install the tarball into a scratch
// Node project with Koa, socket.io and Hono, then run the koa-io-session and hono-session README
// snippets there as written (only the package name and the port substituted; the hono-session
// snippet also gets the `Hono` import and a `serve()` it leaves out) against real HTTP and
// socket.io clients. Registered on Node only: it tests the npm build on Node, the runtime npm users run it
// on; Deno and Bun run the same adapter from source in tests/koa.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { io as ioc, type Socket } from "socket.io-client";
import { Client } from "./helpers/cookie_jar.ts";

const isNode = !("Deno" in globalThis) && !("Bun" in globalThis);
const root = fileURLToPath(new URL("..", import.meta.url));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** A port nobody listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Replaces `from` by `to` exactly once (so the snippet is otherwise unchanged). */
function substitute(code: string, from: string, to: string): string {
  const parts = code.split(from);
  assert.equal(parts.length, 2, `expected exactly one ${JSON.stringify(from)} in the snippet`);
  return parts.join(to);
}

interface App {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Runs a snippet file in the scratch project and waits until its port answers. */
async function run(dir: string, file: string, port: number): Promise<App> {
  const child: ChildProcess = spawn(process.execPath, [file], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${file} exited early:\n${out}`);
    try {
      await fetch(url + "/socket.io/?EIO=4&transport=polling");
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${file} did not listen on ${port}:\n${out}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    url,
    output: () => out,
    async stop() {
      process.kill(child.pid!, "SIGTERM");
      await exited;
    },
  };
}

function connect(url: string, cookie: string | undefined): Promise<Socket> {
  const socket = ioc(url, {
    transports: ["websocket"],
    extraHeaders: cookie ? { cookie } : {},
    forceNew: true,
    reconnection: false,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

if (isNode) {
  describe(
    "npm package: build, pack, install, run the koa-io-session and hono-session snippets as written",
    {
      timeout: 180_000,
    },
    () => {
      let dir: string;
      before(() => {
        execFileSync(process.execPath, [join(root, "scripts", "build.mjs")], { stdio: "pipe" });
        dir = mkdtempSync(join(tmpdir(), "unisession-consumer-"));
        const packed = execFileSync(npm, ["pack", "--silent", "--pack-destination", dir], {
          cwd: root,
          encoding: "utf8",
        }).trim().split("\n").pop()!;
        writeFileSync(
          join(dir, "package.json"),
          JSON.stringify({ name: "consumer", private: true, type: "module" }),
        );
        const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8"));
        const version = (name: string) => lock.packages[`node_modules/${name}`].version as string;
        // The same versions as this repository's lockfile: served from npm's cache when present.
        execFileSync(npm, [
          "install",
          "--prefer-offline",
          "--no-audit",
          "--no-fund",
          "--loglevel=error",
          join(dir, packed),
          `koa@${version("koa")}`,
          `socket.io@${version("socket.io")}`,
          `hono@${version("hono")}`,
          `@hono/node-server@${version("@hono/node-server")}`,
        ], { cwd: dir, stdio: "pipe" });
      }, { timeout: 150_000 });
      after(() => rmSync(dir, { recursive: true, force: true }));

      test("the v3 Quick Start: HTTP session, socket withSession, events, reset", async () => {
        const port = await freePort();
        let code = readFileSync(
          join(root, "tests", "fixtures", "koa-io-session-v3-quickstart.mjs"),
          "utf8",
        );
        code = substitute(code, `from "@randajan/koa-io-session"`, `from "unisession/koa"`);
        code = substitute(code, "http.listen(3000);", `http.listen(${port});`);
        writeFileSync(join(dir, "v3.mjs"), code);
        const app = await run(dir, "v3.mjs", port);
        try {
          const browser = new Client({ request: (p, init) => fetch(app.url + p, init) });
          const first = JSON.parse((await browser.get("/api/session")).body);
          assert.equal(first.ok, true);
          assert.equal(typeof first.clientId, "string");
          assert.equal(typeof first.sessionId, "string", "sessionId in the creating request");
          assert.equal(first.session.httpCount, 1);
          assert.equal(typeof first.session.createdAt, "number");
          assert.deepEqual(Object.keys(first.session).sort(), ["createdAt", "httpCount"]);
          const socket = await connect(app.url, browser.jar.header());
          const viaSocket = await socket.timeout(3000).emitWithAck("session:get");
          assert.deepEqual(viaSocket, {
            ok: true,
            sessionId: first.sessionId,
            session: first.session,
          });
          const second = JSON.parse((await browser.get("/api/session")).body);
          assert.equal(second.session.httpCount, 2);
          const disconnected = new Promise((resolve) => socket.once("disconnect", resolve));
          assert.deepEqual(JSON.parse((await browser.get("/api/session?reset=1")).body), {
            ok: true,
            from: "http:reset",
          });
          await disconnected;
          const late = await connect(app.url, browser.jar.header());
          assert.deepEqual(await late.timeout(3000).emitWithAck("session:get"), {
            ok: false,
            error: "missing-session",
          });
          late.close();
          const log = app.output();
          assert.match(log, /sessionSet \{[^}]*isNew: true,\s+isInit: true/);
          assert.match(log, /sessionDestroy \{[^}]*sessionId: '[^']+'/);
        } finally {
          await app.stop();
        }
      });

      for (const store of ["stateless (no options)", "new Map() store"] as const) {
        test(`hono-session's first example, ${store}: login, /me, logout`, async () => {
          const port = await freePort();
          let code = readFileSync(
            join(root, "tests", "fixtures", "hono-session-readme.mjs"),
            "utf8",
          );
          code = substitute(code, `from 'hono-session'`, `from 'unisession/hono'`);
          let prelude = `import { Hono } from "hono";\n`;
          if (store === "new Map() store") {
            // The README's "External stores" example: `const memoryStore = new Map()`.
            code = substitute(code, ".use(session())", ".use(session({ store: memoryStore }))");
            prelude += "const memoryStore = new Map()\n";
          }
          code = `${prelude}${code}\n` +
            `import { serve } from "@hono/node-server";\n` +
            `serve({ fetch: app.fetch, port: ${port}, hostname: "127.0.0.1" });\n`;
          writeFileSync(join(dir, "hono-session.mjs"), code);
          const app = await run(dir, "hono-session.mjs", port);
          try {
            const browser = new Client({ request: (p, init) => fetch(app.url + p, init) });
            assert.equal((await browser.get("/me")).status, 401);
            // The README's handlers return nothing: Hono itself answers 500 ("Context is not
            // finalized"), and the session is saved all the same, as with hono-session.
            const login = await browser.post("/login");
            assert.equal(login.status, 500);
            assert.ok(browser.jar.get("sid"), "the login set the session cookie");
            const me = await browser.get("/me");
            assert.deepEqual([me.status, me.body], [200, "..."]);
            await browser.post("/logout");
            assert.equal(browser.jar.get("sid"), undefined, "the logout expired the cookie");
            assert.equal((await browser.get("/me")).status, 401);
            const replay = await browser.get("/me", {
              headers: { cookie: `sid=${login.setCookies[0]!.value}` },
            });
            if (store === "new Map() store") {
              assert.equal(replay.status, 401, "the logged-out id is gone from the store");
            } else {
              // A sealed cookie cannot be revoked before it expires (as with hono-session).
              assert.match(app.output(), /random/i, "the generated secret is reported");
            }
          } finally {
            await app.stop();
          }
        });
      }

      test("the v1 Quick use: socket.sessionId and socket.session", async () => {
        const port = await freePort();
        let code = readFileSync(
          join(root, "tests", "fixtures", "koa-io-session-v1-quickuse.mjs"),
          "utf8",
        );
        code = substitute(code, `from "@randajan/koa-io-session"`, `from "unisession/koa"`);
        code += `\napp.use((ctx) => { ctx.session.user = "ada"; ctx.body = "ok"; });\n` +
          `server.listen(${port});\n`;
        writeFileSync(join(dir, "v1.mjs"), code);
        const app = await run(dir, "v1.mjs", port);
        try {
          const browser = new Client({ request: (p, init) => fetch(app.url + p, init) });
          await browser.get("/");
          const socket = await connect(app.url, browser.jar.header());
          await new Promise((resolve) => setTimeout(resolve, 100));
          socket.close();
          assert.match(app.output(), /session ID: [A-Za-z0-9_-]{24}\n/);
          assert.match(app.output(), /session data: \{ user: 'ada' \}/);
          assert.match(app.output(), /app\.keys was not set/, "missing keys are reported");
        } finally {
          await app.stop();
        }
      });
    },
  );
}

/** Runs the README's TypeScript code blocks: each must import and behave as described. */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Hono } from "hono";
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { io as ioc } from "socket.io-client";
import { redisSkipReason, startRedisServer } from "./helpers/redis_server.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const tmp = `${root}tests/.readme-tmp/`;
const readme = readFileSync(`${root}README.md`, "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

/** Writes a README block as a module, with the package specifiers mapped to the sources. */
// deno-lint-ignore no-explicit-any
async function load(i: number): Promise<{ default: Hono; http: HttpServer; [name: string]: any }> {
  mkdirSync(tmp, { recursive: true });
  const code = blocks[i]!
    .replaceAll('"unisession/hono/global"', `"${pathToFileURL(`${root}adapters/hono_global.ts`)}"`)
    .replaceAll('from "unisession/hono"', `from "${pathToFileURL(`${root}adapters/hono.ts`)}"`)
    .replaceAll('from "unisession/redis"', `from "${pathToFileURL(`${root}stores/redis.ts`)}"`)
    .replaceAll(
      'from "unisession/deno-kv"',
      `from "${pathToFileURL(`${root}stores/deno_kv.ts`)}"`,
    )
    .replaceAll('from "unisession/koa"', `from "${pathToFileURL(`${root}adapters/koa.ts`)}"`)
    .replaceAll(
      'from "unisession/socket.io"',
      `from "${pathToFileURL(`${root}adapters/socket_io.ts`)}"`,
    )
    .replaceAll(
      '"unisession/socket.io/global"',
      `"${pathToFileURL(`${root}adapters/socket_io_global.ts`)}"`,
    )
    .replaceAll('from "unisession"', `from "${pathToFileURL(`${root}mod.ts`)}"`);
  const file = `${tmp}block_${i}.ts`;
  writeFileSync(file, `import process from "node:process";\n${code}`);
  return await import(pathToFileURL(file).href);
}

function cookieOf(res: Response, prev = ""): string {
  const jar = new Map(prev ? prev.split("; ").map((p) => p.split("=") as [string, string]) : []);
  for (const sc of res.headers.getSetCookie()) {
    const [pair] = sc.split(";");
    const i = pair!.indexOf("=");
    const name = pair!.slice(0, i), value = pair!.slice(i + 1);
    if (value === "" || /Max-Age=0/.test(sc)) jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}

describe("README", () => {
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test("has the demo and test commands first", () => {
    const first = readme.slice(0, readme.indexOf("```sh") + 200);
    assert.match(first, /npm run demo/);
    assert.match(first, /npm test/);
  });

  test("Hono quick start: login, visit counter, logout", async () => {
    const { default: app } = await load(0);
    let res = await app.request("/me");
    assert.equal(res.status, 401);
    let cookie = cookieOf(res);
    res = await app.request("/login", { method: "POST", headers: { cookie } });
    cookie = cookieOf(res, cookie);
    res = await app.request("/me", { headers: { cookie } });
    assert.deepEqual(await res.json(), { userId: "ada", visits: 2 }); // the 401 visit counted too: regenerate keeps data
    res = await app.request("/logout", { method: "POST", headers: { cookie } });
    cookie = cookieOf(res, cookie);
    res = await app.request("/me", { headers: { cookie } });
    assert.equal(res.status, 401);
  });

  test("hono-session style quick start counts views in a sealed cookie", async () => {
    const { default: app } = await load(1);
    let res = await app.request("/");
    assert.equal(await res.text(), "views: 1");
    assert.match(res.headers.get("set-cookie")!, /^sid=Fe26\.2\*.*Max-Age=3600/);
    res = await app.request("/", { headers: { cookie: cookieOf(res) } });
    assert.equal(await res.text(), "views: 2");
  });

  test("Koa + socket.io quick start: HTTP and the socket count visits on one session", async () => {
    const { http } = await load(2);
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    let res = await fetch(url + "/");
    assert.deepEqual(await res.json(), { user: null, visits: 1 });
    let cookie = cookieOf(res);
    const socket = ioc(url, { transports: ["websocket"], extraHeaders: { cookie } });
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    assert.equal(await socket.emitWithAck("visit"), 2, "the socket shares the HTTP session");
    res = await fetch(url + "/login?name=grace", { headers: { cookie } });
    cookie = cookieOf(res, cookie);
    assert.deepEqual(await res.json(), { user: "grace", visits: 3 });
    assert.equal(await socket.emitWithAck("visit"), 4, "the socket followed the login");
    res = await fetch(url + "/", { headers: { cookie } });
    assert.deepEqual(await res.json(), { user: "grace", visits: 5 });
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    await fetch(url + "/logout", { headers: { cookie } });
    await gone;
    socket.close();
    await new Promise((resolve) => http.close(resolve));
  });

  const redisSkip = redisSkipReason();
  test("Redis section: sessions in a real redis-server", {
    skip: redisSkip || undefined,
  }, async () => {
    const server = await startRedisServer();
    process.env.REDIS_URL = server.url;
    try {
      const { sessions, store, client } = await load(3);
      const state = sessions.open(null);
      state.session.user = "ada";
      await sessions.commit(state);
      assert.deepEqual(await sessions.getById(state.id), { user: "ada" });
      assert.equal(await sessions.destroyById(state.id), true);
      sessions.close();
      await store.close();
      client.disconnect();
    } finally {
      delete process.env.REDIS_URL;
      await server.stop();
    }
  });

  test("Deno KV section: a KV file through DenoKvStore.open()", async () => {
    process.env.KV_PATH = `${tmp}sessions.kv`;
    try {
      const { sessions, store } = await load(4);
      const state = sessions.open(null);
      state.session.user = "ada";
      await sessions.commit(state);
      assert.deepEqual(await sessions.getById(state.id), { user: "ada" });
      sessions.close();
      store.close();
    } finally {
      delete process.env.KV_PATH;
    }
  });

  test("Server-Sent Events section: a change is streamed to the browser's event stream", async () => {
    const { default: app } = await load(5);
    let res = await app.request("/cart?item=apple", { method: "POST" });
    const cookie = cookieOf(res);
    res = await app.request("/session/events", { headers: { cookie } });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    await app.request("/cart?item=pear", { method: "POST", headers: { cookie } });
    let text = "";
    while (!text.includes("\n\n")) text += (await reader.read()).value;
    assert.match(text, /^event: sessionSet\ndata: .*"cart":\["apple","pear"\]/);
    await reader.cancel();
  });

  test("per-user section: three devices listed, one revoked, the others logged out", async () => {
    const { default: app } = await load(6);
    const login = async () => {
      const res = await app.request("/login?user=ada", {
        method: "POST",
        headers: { "user-agent": "device" },
      });
      return cookieOf(res);
    };
    const [a, b, c] = [await login(), await login(), await login()];
    let res = await app.request("/devices", { headers: { cookie: a } });
    const list = await res.json() as { sessionId: string; current: boolean; meta: unknown }[];
    assert.equal(list.length, 3);
    assert.equal(list.filter((d) => d.current).length, 1);
    assert.deepEqual(list[0]!.meta, { userAgent: "device" });
    const other = list.find((d) => !d.current)!.sessionId;
    res = await app.request(`/devices/revoke?id=${other}`, {
      method: "POST",
      headers: { cookie: a },
    });
    assert.deepEqual(await res.json(), { revoked: true });
    res = await app.request("/logout-others", { method: "POST", headers: { cookie: a } });
    assert.deepEqual(await res.json(), { ended: 1 });
    for (const cookie of [b, c]) {
      assert.equal((await app.request("/devices", { headers: { cookie } })).status, 401);
    }
    assert.equal((await app.request("/devices", { headers: { cookie: a } })).status, 200);
  });
});

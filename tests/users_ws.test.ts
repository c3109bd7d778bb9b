// Three devices of one user with native WebSockets (unisession/ws) on the runtime's own server
// (tests/helpers/ws_harness.ts): revoking one closes that device's socket with 4401 and ends its
// HTTP session; "log out everywhere except this one" closes the others. Its own file: the
// socket.io harness loads @hono/node-server, which replaces the global Response with its own
// class, and Deno.serve and Bun.serve refuse those responses (Bun runs every file in one process,
// so this file puts the runtime's Response back while it runs).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MapStore } from "../mod.ts";
import type { Client } from "./helpers/cookie_jar.ts";
import {
  startWsHarness,
  type TestSocket,
  useRuntimeResponse,
  type WhoAmI,
  within,
  type WsHarness,
} from "./helpers/ws_harness.ts";

describe("three devices of one user with native WebSockets (unisession/ws)", () => {
  let h: WsHarness;
  let restoreResponse: () => void = () => {};
  before(async () => {
    restoreResponse = useRuntimeResponse();
    h = await startWsHarness({
      manager: { store: new MapStore(), identify: (data) => data.user },
    });
  });
  after(async () => {
    await h?.close();
    restoreResponse();
  });

  test("revoke one → only its socket closes with 4401; all but this one → the others close", async () => {
    type WsDevice = { browser: Client; sessionId: string; socket: TestSocket };
    const devices: WsDevice[] = [];
    for (const name of ["laptop", "phone", "tablet"]) {
      const browser = h.browser();
      const res = await browser.post("/login?user=ada", { headers: { "user-agent": name } });
      const { sessionId } = JSON.parse(res.body) as { sessionId: string };
      const socket = await h.connect(browser.jar.header());
      const who = await socket.ask<WhoAmI>("whoami");
      assert.ok("ok" in who && who.ok.sessionId === sessionId, `${name}'s socket`);
      devices.push({ browser, sessionId, socket });
    }
    const [laptop, phone, tablet] = devices as [WsDevice, WsDevice, WsDevice];
    const alive = async (d: WsDevice) => {
      assert.equal(d.socket.isClosed, false);
      const who = await d.socket.ask<WhoAmI>("whoami");
      assert.ok("ok" in who && who.ok.sessionId === d.sessionId, "socket lost its session");
    };

    assert.equal(await h.manager.destroyById(phone.sessionId, { user: "ada" }), true);
    assert.equal((await within(phone.socket.closed, 3000, "phone closed")).code, 4401);
    await alive(laptop);
    await alive(tablet);

    assert.equal(await h.manager.destroyByUser("ada", { except: laptop.sessionId }), 1);
    assert.equal((await within(tablet.socket.closed, 3000, "tablet closed")).code, 4401);
    await alive(laptop);
    const http = JSON.parse((await tablet.browser.get("/session")).body);
    assert.equal(http.sessionId, null, "the tablet's HTTP session survived");
    laptop.socket.close();
  });
});

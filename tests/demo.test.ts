import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createDemoApp } from "../examples/demo/app.ts";

describe("demo app", () => {
  test("log in, count, log out", async () => {
    const app = createDemoApp();
    let res = await app.request("/login", {
      method: "POST",
      body: new URLSearchParams({ name: "ada" }),
    });
    assert.equal(res.status, 302);
    const cookie = res.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    await app.request("/count", { method: "POST", headers: { cookie } });
    res = await app.request("/api/session", { headers: { cookie } });
    const body = await res.json();
    assert.equal(body.name, "ada");
    assert.equal(body.count, 1);
    assert.match(
      await (await app.request("/", { headers: { cookie } })).text(),
      /Hello, <b id="name">ada<\/b>/,
    );
    await app.request("/logout", { method: "POST", headers: { cookie } });
    res = await app.request("/api/session", { headers: { cookie } });
    assert.equal((await res.json()).name, null);
  });
});

// manager.events(): the bridge events as a web ReadableStream; sessionEvents(): the same as
// Server-Sent Events of one browser through Hono.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { type BridgeEvent, createSessions, MapStore, type SessionManager } from "../mod.ts";
import { eventStream, MAX_BUFFERED_EVENTS } from "../src/event_stream.ts";
import type { SessionEventMap, SessionListener } from "../src/events.ts";
import { session, sessionEvents } from "../adapters/hono.ts";
import "../adapters/hono_global.ts";
import { Client } from "./helpers/cookie_jar.ts";

const KEY = "a-secret-of-at-least-32-characters!!";
const quiet = { warn() {} };

function manager(): SessionManager {
  return createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
}

/** One HTTP "request" through the manager. */
async function request(
  m: SessionManager,
  cookie: string,
  fn: (s: Record<string, unknown> & { regenerate(): Promise<void> }) => unknown,
): Promise<{ cookie: string; clientId: string; id: string }> {
  const state = m.open(cookie);
  await m.prepare(state);
  await fn(state.session as never);
  const { cookies } = await m.commit(state);
  const jar = new Map(
    cookie ? cookie.split("; ").map((p) => p.split("=") as [string, string]) : [],
  );
  for (const c of cookies) {
    const [pair] = c.split(";");
    const i = pair!.indexOf("=");
    if (pair!.slice(i + 1) === "") jar.delete(pair!.slice(0, i));
    else jar.set(pair!.slice(0, i), pair!.slice(i + 1));
  }
  return {
    cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; "),
    clientId: state.clientId!,
    id: state.id!,
  };
}

async function take(
  reader: ReadableStreamDefaultReader<BridgeEvent>,
  n: number,
): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const { value } = await reader.read();
    const e = value!;
    out.push(
      e.type === "cleanup"
        ? `cleanup ${e.count}`
        : e.type === "sessionSet"
        ? `set new=${e.isNew}`
        : `destroy ${e.reason}`,
    );
  }
  return out;
}

describe("manager.events()", () => {
  test("streams every event in order; a clientId filter follows the browser across login", async () => {
    const m = manager();
    const all = m.events().getReader();
    let r = await request(m, "", (s) => void (s.a = 1));
    const mine = m.events({ clientId: r.clientId }).getReader();
    const other = await request(m, "", (s) => void (s.b = 1)); // another browser
    r = await request(m, r.cookie, (s) => s.regenerate());
    await request(m, r.cookie, (s) => void (s.a = 2));
    await m.destroyById(r.id);
    await m.cleanup();
    assert.deepEqual(await take(all, 7), [
      "set new=true",
      "set new=true",
      "destroy regenerate",
      "set new=true",
      "set new=false",
      "destroy destroy",
      "cleanup 0",
    ]);
    assert.deepEqual(await take(mine, 4), [
      "destroy regenerate",
      "set new=true",
      "set new=false",
      "destroy destroy",
    ], "only this browser's events, none of the other one, no cleanup");
    await all.cancel();
    await mine.cancel();
    assert.ok(other.id);
  });

  test("sessionId and types filters", async () => {
    const m = manager();
    const r = await request(m, "", (s) => void (s.a = 1));
    const reader = m.events({ sessionId: r.id, types: ["sessionDestroy"] }).getReader();
    await request(m, r.cookie, (s) => void (s.a = 2));
    await request(m, "", (s) => void (s.z = 1));
    await m.destroyById(r.id);
    assert.deepEqual(await take(reader, 1), ["destroy destroy"]);
    await reader.cancel();
  });

  test("cancel removes the listeners; a reader that falls too far behind gets an error", async () => {
    const listeners = new Map<string, Set<unknown>>();
    const source = {
      on<K extends keyof SessionEventMap>(name: K, fn: SessionListener<K>) {
        (listeners.get(name) ?? listeners.set(name, new Set()).get(name)!).add(fn);
      },
      off<K extends keyof SessionEventMap>(name: K, fn: SessionListener<K>) {
        listeners.get(name)?.delete(fn);
      },
    };
    const count = () => [...listeners.values()].reduce((n, s) => n + s.size, 0);
    const stream = eventStream(source);
    assert.equal(count(), 3);
    await stream.cancel();
    assert.equal(count(), 0, "cancel() unsubscribes");

    const slow = eventStream(source);
    const emit = [...listeners.get("cleanup")!][0] as SessionListener<"cleanup">;
    for (let i = 0; i <= MAX_BUFFERED_EVENTS; i++) emit(i, { remote: false });
    assert.equal(count(), 0, "an overflowing stream unsubscribes");
    const reader = slow.getReader();
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, /fell 1024 events behind/);
  });

  test("rejects a filter that is not an object", () => {
    assert.throws(() => manager().events(null as never), TypeError);
  });
});

describe("sessionEvents() (Hono Server-Sent Events)", () => {
  function app(m: SessionManager) {
    return new Hono()
      .use(session(m))
      .get("/events", sessionEvents(m, { heartbeatMs: 0 }))
      .post("/set", (c) => {
        c.session.n = (c.session.n ?? 0) + 1;
        return c.text("ok");
      })
      .post("/logout", (c) => {
        c.session = null;
        return c.text("bye");
      });
  }

  async function readEvents(res: Response, n: number): Promise<{ event: string; data: unknown }[]> {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const out: { event: string; data: unknown }[] = [];
    while (out.length < n) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      let end;
      while ((end = text.indexOf("\n\n")) >= 0) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event) out.push({ event, data: JSON.parse(data!) });
      }
    }
    await reader.cancel();
    return out;
  }

  test("streams the browser's own changes with data, never another's, never the session id", async () => {
    const m = manager();
    const a = app(m);
    const browser = new Client(a);
    await browser.post("/set");
    const other = new Client(a);
    const res = await a.request("/events", { headers: { cookie: browser.jar.header()! } });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const received = readEvents(res, 3);
    await other.post("/set");
    await browser.post("/set");
    await browser.post("/set");
    await browser.post("/logout");
    const events = await received;
    assert.deepEqual(events, [
      { event: "sessionSet", data: { type: "sessionSet", isNew: false, data: { n: 2 } } },
      { event: "sessionSet", data: { type: "sessionSet", isNew: false, data: { n: 3 } } },
      { event: "sessionDestroy", data: { type: "sessionDestroy", reason: "destroy" } },
    ]);
  });

  test("401 without a session or client id", async () => {
    const m = createSessions({ keys: [KEY], logger: quiet }); // sealed: no client id
    const res = await app(m).request("/events");
    assert.equal(res.status, 401);
  });

  test("bad options are refused when the handler is made, not at the first request", () => {
    const m = createSessions({ store: new MapStore(), keys: [KEY], logger: quiet });
    const bad: [unknown, unknown, ErrorConstructor][] = [
      [m, { heartbeatMs: 2 ** 31 }, RangeError], // a timer that would fire every ms
      [m, { heartbeatMs: -1 }, RangeError],
      [m, { heartbeatMs: "1000" }, RangeError],
      [m, { includeData: "no" }, TypeError], // would have meant true
      [m, 5, TypeError],
      [undefined, {}, TypeError],
    ];
    for (const [manager, options, type] of bad) {
      assert.throws(
        () => sessionEvents(manager as SessionManager, options as object),
        type,
        JSON.stringify(options),
      );
    }
    assert.equal(
      typeof sessionEvents(m, { heartbeatMs: 2 ** 31 - 1, includeData: false }),
      "function",
    );
  });
});

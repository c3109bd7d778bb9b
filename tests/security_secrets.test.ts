/**
 * Secret handling (issue 5, part 7): across every hostile cookie on every path, CSRF refusals,
 * store failures and timeouts, oversized cookies and late writes, no key, cookie value, session
 * id, client id, CSRF token or CSRF secret appears in a log line (the `logger` option, with
 * `debug: true`, and anything written to the console) or in an error message, its causes, or
 * what a refused socket receives.
 *
 * Runs unchanged on Deno, Bun and Node.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { StoredRecord } from "../mod.ts";
import { HOSTILE } from "./helpers/hostile_cookies.ts";
import {
  cookieHeader,
  HTTP_PATHS,
  KEY,
  type Mode,
  OTHER_KEY,
  PATHS,
  startEnv,
} from "./helpers/security_env.ts";

/** Every string an error carries: class, message, `data`, and the same for its causes. */
function texts(err: unknown, depth = 0): string[] {
  if (depth > 5 || err === undefined || err === null) return [];
  if (typeof err !== "object") return [String(err)];
  const e = err as { name?: unknown; message?: unknown; data?: unknown; cause?: unknown };
  return [
    String(e.name),
    String(e.message),
    JSON.stringify(e.data ?? null),
    ...texts(e.cause, depth + 1),
  ];
}

/** Runs `fn` with every console method captured. */
async function captureConsole(lines: string[], fn: () => Promise<void>): Promise<void> {
  const methods = ["log", "info", "warn", "error", "debug"] as const;
  const saved = methods.map((m) => console[m]);
  for (const m of methods) {
    console[m] = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  }
  try {
    await fn();
  } finally {
    methods.forEach((m, i) => (console[m] = saved[i]!));
  }
}

test(
  "no key, cookie value, session id, client id or CSRF token/secret in any log line or error message",
  {
    timeout: 60_000,
  },
  async () => {
    const lines: string[] = [];
    const secrets = new Set<string>([KEY, OTHER_KEY, KEY.slice(0, 16), OTHER_KEY.slice(0, 16)]);
    /** Cookie values of a Cookie header (ids, signatures and sealed values among them). */
    const remember = (header: string | undefined) => {
      for (const pair of (header ?? "").split(/;\s*/)) {
        const value = pair.slice(pair.indexOf("=") + 1);
        if (value.length >= 16 && !/^x+$/.test(value)) {
          secrets.add(value);
          for (const part of value.split(/[.*]/)) if (part.length >= 16) secrets.add(part);
        }
      }
    };

    await captureConsole(lines, async () => {
      for (const mode of ["store", "sealed"] as const satisfies readonly Mode[]) {
        const env = await startEnv(mode);
        try {
          const valid = await env.login();
          secrets.add(valid.sessionId);
          remember(valid.header);
          // every hostile cookie, on every path, read and written
          for (const c of HOSTILE.filter((c) => c.modes.includes(mode))) {
            const header = await c.header(valid);
            remember(header);
            for (const path of PATHS) await env.probe(path, header);
            for (const path of HTTP_PATHS) {
              const w = await env.write(path, header);
              if (w.sessionId) secrets.add(w.sessionId);
              remember(cookieHeader(w.setCookies));
            }
          }
          // CSRF refusals (HTTP and, below, sockets)
          const tokenRes = await env.request("hono", "/token", { cookie: valid.header });
          const { token } = await tokenRes.json() as { token: string };
          secrets.add(token);
          if (mode === "store") {
            const rec = env.store!.get(valid.sessionId) as StoredRecord;
            secrets.add(rec.csrf!);
          }
          for (const path of ["hono", "koa"] as const) {
            await env.request(path, "/guarded/write", { method: "POST", cookie: valid.header });
            await env.request(path, "/guarded/write", {
              method: "POST",
              cookie: valid.header,
              headers: { "x-csrf-token": token.slice(1) },
            });
          }
          // a change after the response was sent
          const state = env.manager.open(valid.header);
          await env.manager.prepare(state);
          await env.manager.commit(state);
          try {
            state.session.late = 1;
          } catch (err) {
            env.errors.push(err);
          }
          // an oversized sealed cookie
          if (mode === "sealed") {
            const big = env.manager.open(valid.header);
            await env.manager.prepare(big);
            big.session.blob = "y".repeat(6000);
            await env.manager.commit(big).catch((err) => env.errors.push(err));
          }
          lines.push(...env.logs);
          for (const err of env.errors) lines.push(...texts(err));
        } finally {
          await env.close();
        }
      }

      // store failures and timeouts, and socket refusals (ERR_CSRF, ERR_STORE)
      let fault: "none" | "throw" | "hang" = "none";
      const map = new Map<string, StoredRecord>();
      const gate = <T>(fn: () => T): Promise<T> =>
        fault === "throw"
          ? Promise.reject(new Error("ECONNRESET"))
          : fault === "hang"
          ? new Promise<T>(() => {})
          : Promise.resolve(fn());
      const store = {
        get: (id: string) => gate(() => map.get(id)),
        set: (id: string, r: StoredRecord) => gate(() => void map.set(id, structuredClone(r))),
        delete: (id: string) => gate(() => void map.delete(id)),
      };
      const env = await startEnv("store", { store, storeTimeout: 100 }, { csrf: true });
      try {
        const valid = await env.login();
        secrets.add(valid.sessionId);
        remember(valid.header);
        for (const auth of [undefined, { csrf: "forged" }]) {
          await env.connect(valid.header, auth).then(
            (s) => s.close(),
            (err) => lines.push(...texts(err)),
          );
        }
        for (const f of ["throw", "hang"] as const) {
          fault = f;
          for (const path of PATHS) {
            await env.probe(path, valid.header).catch((err) => lines.push(...texts(err)));
          }
          await env.write("core", valid.header).catch((err) => lines.push(...texts(err)));
        }
        fault = "none";
        lines.push(...env.logs);
        for (const err of env.errors) lines.push(...texts(err));
      } finally {
        fault = "none";
        await env.close();
      }
    });

    // The capture is not empty: debug lines, refusals and errors were all seen.
    for (
      const expected of ["no session (signature)", "ERR_CSRF", "store failed", "did not answer"]
    ) {
      assert.ok(lines.some((l) => l.includes(expected)), `captured something with "${expected}"`);
    }
    assert.ok(secrets.size > 50, `collected ${secrets.size} secrets`);
    const leaks: string[] = [];
    for (const line of lines) {
      for (const s of secrets) {
        if (line.includes(s)) leaks.push(`${JSON.stringify(line.slice(0, 120))} contains a secret`);
      }
    }
    assert.deepEqual(leaks, []);
  },
);

/**
 * HTTP load generator: closed loops over raw keep-alive HTTP/1.1 connections (one request in
 * flight per connection), each connection a visitor with its own cookie jar that follows every
 * `Set-Cookie`. Every answer is checked against what the visitor's session must hold.
 *
 * Workloads (the routes of `servers/hono.ts`):
 * - `read` (A): `GET /read` on an existing session: the answer is the visitor's `n`
 * - `incr` (B): `POST /incr` on an existing session: the answer is `n + 1`
 * - `new` (C): `POST /new?n=K` without cookies: the answer is `K`, with a `Set-Cookie`
 * A bare server keeps no session: it must answer `0`, `1` and `K`.
 * @module
 */
import { connect, type Socket } from "node:net";
import { type LoadResult, Meter, type Phases } from "./meter.ts";

export type HttpWorkload = "read" | "incr" | "new";

export interface Reply {
  status: number;
  body: string;
  setCookie: string[];
}

/** One keep-alive HTTP/1.1 connection to 127.0.0.1; one request at a time. */
export class HttpConnection {
  #socket: Socket;
  #buffer = "";
  #waiter: { resolve(r: Reply): void; reject(e: Error): void } | undefined;
  #closed: Error | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.#buffer += chunk;
      this.#parse();
    });
    const close = (err?: Error) => {
      this.#closed ??= err ?? new Error("connection closed by the server");
      this.#waiter?.reject(this.#closed);
      this.#waiter = undefined;
    };
    socket.on("error", close);
    socket.on("close", () => close());
  }

  static open(port: number): Promise<HttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => resolve(new HttpConnection(socket)));
      socket.once("error", reject);
    });
  }

  request(method: "GET" | "POST", path: string, cookie?: string): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n`;
    if (cookie) head += `Cookie: ${cookie}\r\n`;
    if (method === "POST") head += "Content-Length: 0\r\n";
    this.#socket.write(`${head}\r\n`);
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  close(): void {
    this.#socket.destroy();
  }

  #parse(): void {
    const headEnd = this.#buffer.indexOf("\r\n\r\n");
    if (headEnd < 0 || !this.#waiter) return;
    const lines = this.#buffer.slice(0, headEnd).split("\r\n");
    const status = Number(lines[0]!.slice(9, 12));
    const setCookie: string[] = [];
    let length = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "set-cookie") setCookie.push(value);
      else if (name === "content-length") length = Number(value);
      else if (name === "transfer-encoding") chunked = value.toLowerCase().includes("chunked");
    }
    let body = "";
    let end = headEnd + 4;
    if (chunked) {
      for (;;) {
        const lineEnd = this.#buffer.indexOf("\r\n", end);
        if (lineEnd < 0) return;
        const size = parseInt(this.#buffer.slice(end, lineEnd), 16);
        if (this.#buffer.length < lineEnd + 2 + size + 2) return;
        body += this.#buffer.slice(lineEnd + 2, lineEnd + 2 + size);
        end = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      if (length < 0) length = 0; // every server here sends Content-Length or chunks
      if (this.#buffer.length < end + length) return;
      body = this.#buffer.slice(end, end + length);
      end += length;
    }
    this.#buffer = this.#buffer.slice(end);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter.resolve({ status, body, setCookie });
  }
}

/** A visitor's cookies: name → value, updated from `Set-Cookie` like a browser. */
export class CookieJar {
  #cookies = new Map<string, string>();
  #header: string | undefined;

  apply(setCookie: string[]): void {
    if (setCookie.length === 0) return;
    for (const line of setCookie) {
      const semi = line.indexOf(";");
      const pair = semi < 0 ? line : line.slice(0, semi);
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const attrs = semi < 0 ? "" : line.slice(semi).toLowerCase();
      const maxAge = /;\s*max-age=(-?\d+)/.exec(attrs);
      const expires = /;\s*expires=([^;]+)/.exec(attrs);
      const deleted = maxAge ? Number(maxAge[1]) <= 0 : expires !== null &&
        Date.parse(expires[1]!) <= Date.now();
      if (deleted) this.#cookies.delete(name);
      else this.#cookies.set(name, pair.slice(eq + 1).trim());
    }
    this.#header = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ") || undefined;
  }

  get header(): string | undefined {
    return this.#header;
  }
}

/** Why an answer is wrong, or undefined. */
function wrong(reply: Reply, expected: string, needCookie: boolean): string | undefined {
  if (reply.status !== 200) return `status ${reply.status} (${reply.body.slice(0, 80)})`;
  if (reply.body !== expected) return `answer "${reply.body.slice(0, 80)}", expected "${expected}"`;
  if (needCookie && reply.setCookie.length === 0) return "no Set-Cookie on a new session";
  return undefined;
}

export interface HttpLoadOptions extends Phases {
  port: number;
  workload: HttpWorkload;
  connections: number;
  /** The server keeps no session (the bare framework). */
  bare: boolean;
}

let nextK = 1;

/** Runs one workload against one server and checks every answer. */
export async function runHttp(o: HttpLoadOptions): Promise<LoadResult> {
  const meter = new Meter();
  const loops: Promise<void>[] = [];
  for (let i = 0; i < o.connections; i++) {
    const conn = await HttpConnection.open(o.port);
    const jar = new CookieJar();
    let n = 0;
    if (o.workload !== "new" && !o.bare) {
      // Each visitor gets its own session first.
      n = nextK++ * 1000;
      const reply = await conn.request("POST", `/new?n=${n}`);
      const error = wrong(reply, String(n), true);
      if (error) meter.fail(`creating a session: ${error}`);
      jar.apply(reply.setCookie);
    }
    loops.push(loop(conn, jar, n));
  }
  return meter.run(loops, o);

  async function loop(conn: HttpConnection, jar: CookieJar, n: number): Promise<void> {
    try {
      while (meter.running) {
        const started = performance.now();
        if (o.workload === "read") {
          const reply = await conn.request("GET", "/read", jar.header);
          jar.apply(reply.setCookie);
          meter.record(started, wrong(reply, o.bare ? "0" : String(n), false));
        } else if (o.workload === "incr") {
          const reply = await conn.request("POST", "/incr", jar.header);
          jar.apply(reply.setCookie);
          const error = wrong(reply, o.bare ? "1" : String(n + 1), false);
          if (!error) n++;
          meter.record(started, error);
        } else {
          const k = nextK++;
          const reply = await conn.request("POST", `/new?n=${k}`);
          meter.record(started, wrong(reply, String(k), !o.bare));
        }
      }
    } catch (err) {
      meter.fail(`connection failed: ${(err as Error).message}`);
    } finally {
      conn.close();
    }
  }
}

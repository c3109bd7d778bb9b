/**
 * socket.io load generator (workload D): each visitor creates its session over HTTP
 * (`POST /new?n=K`, cookies kept), opens a WebSocket to the socket.io server with those cookies,
 * then emits `incr` with an acknowledgement in a closed loop; every acknowledgement must be the
 * visitor's `n + 1`. A bare server counts per socket from 0.
 *
 * The client speaks socket.io's wire protocol (Engine.IO 4 / socket.io 5) over the `ws` package
 * instead of running `socket.io-client`: on this 2-core machine socket.io-client costs more CPU
 * per event than the server, so the server would idle between events and its CPU per event
 * would measure wake-ups instead of work. The server side is the real socket.io stack.
 * @module
 */
import WebSocket from "ws";
import { CookieJar, HttpConnection } from "./load_http.ts";
import { type LoadResult, Meter, type Phases } from "./meter.ts";

export interface SocketLoadOptions extends Phases {
  port: number;
  connections: number;
  bare: boolean;
}

/** One socket.io client socket on the default namespace: emit with ack, one at a time. */
class SocketIOClient {
  #ws: WebSocket;
  #nextAck = 0;
  #waiter: { id: number; resolve(v: unknown): void; reject(e: Error): void } | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on("message", (data) => this.#onPacket(String(data)));
    const fail = () => {
      this.#waiter?.reject(new Error("socket closed"));
      this.#waiter = undefined;
    };
    ws.on("close", fail);
    ws.on("error", fail);
  }

  /** Connects and joins the default namespace (Engine.IO open `0`, socket.io connect `40`). */
  static connect(port: number, cookie: string | undefined): Promise<SocketIOClient> {
    const url = `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
    const ws = new WebSocket(url, { headers: cookie ? { cookie } : {} });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("socket.io handshake timed out")), 10_000);
      ws.on("error", reject);
      ws.on("message", function handshake(data) {
        const packet = String(data);
        if (packet.startsWith("0")) ws.send("40"); // Engine.IO open → socket.io CONNECT
        else if (packet.startsWith("40")) {
          clearTimeout(timer);
          ws.off("message", handshake);
          ws.off("error", reject);
          resolve(new SocketIOClient(ws));
        } else if (packet.startsWith("44")) reject(new Error(`connect_error ${packet.slice(2)}`));
      });
    });
  }

  /** `socket.emitWithAck(event)`: EVENT `42<id>["event"]`, answered by ACK `43<id>[value]`. */
  emitWithAck(event: string): Promise<unknown> {
    const id = this.#nextAck++;
    this.#ws.send(`42${id}${JSON.stringify([event])}`);
    return new Promise((resolve, reject) => (this.#waiter = { id, resolve, reject }));
  }

  close(): void {
    this.#ws.close();
  }

  #onPacket(packet: string): void {
    if (packet === "2") return void this.#ws.send("3"); // Engine.IO ping → pong
    const waiter = this.#waiter;
    if (!packet.startsWith("43") || !waiter) return;
    const bracket = packet.indexOf("[");
    if (Number(packet.slice(2, bracket)) !== waiter.id) {
      waiter.reject(new Error(`unexpected ack packet ${packet.slice(0, 40)}`));
    } else waiter.resolve((JSON.parse(packet.slice(bracket)) as unknown[])[0]);
    this.#waiter = undefined;
  }
}

let nextK = 1;

/** Runs workload D against one server and checks every acknowledgement. */
export async function runSocket(o: SocketLoadOptions): Promise<LoadResult> {
  const meter = new Meter();
  const loops: Promise<void>[] = [];
  for (let i = 0; i < o.connections; i++) {
    const jar = new CookieJar();
    let n = 0;
    if (!o.bare) {
      n = nextK++ * 1000;
      const conn = await HttpConnection.open(o.port);
      const reply = await conn.request("POST", `/new?n=${n}`);
      conn.close();
      if (reply.status !== 200 || reply.body !== String(n) || reply.setCookie.length === 0) {
        meter.fail(`creating a session: status ${reply.status}, answer "${reply.body}"`);
      }
      jar.apply(reply.setCookie);
    }
    loops.push(loop(await SocketIOClient.connect(o.port, jar.header), n));
  }
  return meter.run(loops, o);

  async function loop(socket: SocketIOClient, n: number): Promise<void> {
    try {
      while (meter.running) {
        const started = performance.now();
        const answer = await socket.emitWithAck("incr");
        const expected = n + 1;
        if (answer === expected) {
          n++;
          meter.record(started, undefined);
        } else meter.record(started, `ack ${JSON.stringify(answer)}, expected ${expected}`);
      }
    } catch (err) {
      meter.fail(`socket failed: ${(err as Error).message}`);
    } finally {
      socket.close();
    }
  }
}

/**
 * The four workloads and how each is driven against a running server.
 * @module
 */
import { runHttp } from "./load_http.ts";
import { runSocket } from "./load_socket.ts";
import type { LoadResult } from "./meter.ts";
import type { RunningServer } from "./server_process.ts";

/** A read, B increment, C new session (HTTP); D socket.io ack with a session increment. */
export type Workload = "A" | "B" | "C" | "D";

export const WORKLOAD_NAMES: Record<Workload, string> = {
  A: "A read",
  B: "B increment",
  C: "C new",
  D: "D socket increment",
};
const HTTP_WORKLOAD = { A: "read", B: "incr", C: "new" } as const;

export interface Settings {
  warmupMs: number;
  durationMs: number;
  /** Concurrent connections (HTTP) or sockets (D), each its own visitor. */
  connections: number;
}

/** Runs one workload against a running server; `bare` servers keep no session. */
export function runWorkload(
  server: RunningServer,
  workload: Workload,
  bare: boolean,
  s: Settings,
  onWindow?: (edge: "open" | "close") => void,
): Promise<LoadResult> {
  const common = { ...s, port: server.port, bare, serverCpu: server.cpu, onWindow };
  return workload === "D"
    ? runSocket(common)
    : runHttp({ ...common, workload: HTTP_WORKLOAD[workload] });
}

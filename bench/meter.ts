import { type CpuTimes, machineCpuMicros } from "./server_process.ts";

/**
 * The measurement window shared by the HTTP and socket.io load generators: closed loops run
 * through a warm-up, then a measured window in which completed requests, their latencies and the
 * server's CPU time are counted. Every answer is checked in every phase; a wrong one is an error.
 * @module
 */

export interface LoadResult {
  /** Requests completed inside the measured window. */
  requests: number;
  /** Length of the measured window in ms. */
  wallMs: number;
  /** Server CPU time (user + system, all threads) spent inside the window, in µs. */
  cpuMicros: number;
  /** Its user and system parts, in µs. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  /**
   * CPU used during the window by processes other than the server and this load generator, in
   * cores (0.3 = 30 % of one core): other work on the machine that disturbs the measurement.
   */
  foreignCores: number;
  /** Latency percentiles in ms. */
  p50: number;
  p99: number;
  /** Wrong or failed answers in any phase (setup, warm-up, measure). */
  errors: number;
  /** The first wrong answer, for the report. */
  firstError: string | undefined;
}

export interface Phases {
  warmupMs: number;
  durationMs: number;
  /** The server's CPU time so far. */
  serverCpu(): CpuTimes;
  /** Called as the measured window opens and as it closes (the profiler's switch). */
  onWindow?(edge: "open" | "close"): void;
}

/** Counts one run. Loops ask `running` before each request and report through `record`. */
export class Meter {
  running = true;
  #measuring = false;
  #requests = 0;
  #latencies: number[] = [];
  #errors = 0;
  #firstError: string | undefined;

  /** Records one answer: its latency, and the error when it was wrong (`undefined` if right). */
  record(startedAt: number, error: string | undefined): void {
    if (error !== undefined) this.fail(error);
    if (!this.#measuring) return;
    this.#requests++;
    this.#latencies.push(performance.now() - startedAt);
  }

  /** Records a failure outside a timed request (setup, a broken connection). */
  fail(error: string): void {
    this.#errors++;
    this.#firstError ??= error;
  }

  /** Runs the loops through warm-up and the measured window, then stops them. */
  async run(loops: Promise<void>[] | (() => Promise<void>[]), phases: Phases): Promise<LoadResult> {
    const started = typeof loops === "function" ? loops() : loops;
    const all = Promise.all(started);
    keepPolling(all);
    const stoppedEarly = all.then(() => true);
    const wait = (ms: number) =>
      Promise.race([new Promise<boolean>((r) => setTimeout(() => r(false), ms)), stoppedEarly]);
    if (await wait(phases.warmupMs)) this.fail("every connection ended during the warm-up");
    phases.onWindow?.("open");
    const cpu0 = phases.serverCpu();
    const self0 = process.cpuUsage();
    const machine0 = machineCpuMicros();
    const t0 = performance.now();
    this.#measuring = true;
    const early = await wait(phases.durationMs);
    this.#measuring = false;
    const t1 = performance.now();
    const cpu1 = phases.serverCpu();
    const self = process.cpuUsage(self0);
    const machine = machineCpuMicros() - machine0;
    phases.onWindow?.("close");
    if (early) this.fail("every connection ended during the measured window");
    this.running = false;
    await all;
    const sorted = Float64Array.from(this.#latencies).sort();
    const at = (q: number) =>
      sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN;
    const server = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
    const foreign = machine - server - self.user - self.system;
    return {
      requests: this.#requests,
      wallMs: t1 - t0,
      cpuMicros: server,
      foreignCores: Math.max(0, foreign / ((t1 - t0) * 1000)),
      cpuUserMicros: cpu1.user - cpu0.user,
      cpuSystemMicros: cpu1.system - cpu0.system,
      p50: at(0.5),
      p99: at(0.99),
      errors: this.#errors,
      firstError: this.#firstError,
    };
  }
}

/**
 * Keeps this process polling (never asleep in `epoll_wait`) until `done` settles. On loopback a
 * response to a sleeping load generator makes the server's `writev` wake it: `perf` shows
 * `sock_def_readable` → `try_to_wake_up` inside the server's syscall, 10–12 µs per response on
 * this 2-vCPU VM (an inter-processor interrupt), a cost no remote client puts on a server. It
 * also grows as the server slows (the generator sleeps more often), so it inflated every
 * session's CPU per request against the bare framework's. A busy generator takes it away.
 */
function keepPolling(done: Promise<unknown>): void {
  let on = true;
  const stop = () => (on = false);
  done.then(stop, stop);
  const spin = () => {
    if (on) setImmediate(spin);
  };
  spin();
}

/**
 * Cross-instance session events over Deno KV: an event log under a key prefix, read by polling,
 * and woken up at once by `watch()` where it works. Used by {@linkcode DenoKvStore}.
 *
 * Why not `watch()` alone: on a local KV file, `watch()` only sees writes of the same process
 * (another process's `set()` is never reported), and `@deno/kv`'s `watch()` on Node is
 * unreliable. Polling reaches every process that shares the database; `watch()` (Deno, and
 * Deno Deploy's KV, where it spans isolates) only makes delivery immediate.
 * @module
 */
import type { StoreEvent } from "../src/store.ts";
import type { KvKey, KvLike } from "./deno_kv.ts";
import { retryBusy } from "./retry.ts";

/** Options of the event log of {@linkcode DenoKvStore}. */
export interface EventLogOptions {
  /**
   * How often subscribers poll the event log, in ms; `0` polls never (watch only, for Deno
   * Deploy, where `watch()` spans isolates; with `watch: false` too, no event arrives).
   * Default 500.
   */
  pollIntervalMs?: number;
  /**
   * Also watch the log's head key and poll as soon as it changes. Default: `true` on Deno,
   * `false` elsewhere (`@deno/kv`'s `watch()` is unreliable on Node).
   */
  watch?: boolean;
}

/** Events stay in the log this long (KV `expireIn`). */
const EVENT_TTL_MS = 60_000;
/**
 * Each poll re-reads events stamped up to this long before the previous poll, so an event whose
 * commit was slow, or whose publisher's clock lags by up to this much, is still delivered.
 */
const LOOKBACK_MS = 5_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The event log: `publish` appends `[...log, timestamp, random]` (and touches the head key);
 * subscribers list the log from shortly before their previous poll and deliver the entries they
 * have not seen. A poll woken by `watch()` lists only from the newest timestamp seen (with
 * interval polls to catch late entries): re-reading the whole look-back window on every wake-up
 * made a burst of events quadratic.
 */
export class KvEventLog {
  readonly #kv: KvLike;
  readonly #log: KvKey;
  readonly #head: KvKey;
  readonly #pollIntervalMs: number;
  readonly #watch: boolean;
  readonly #onError: (error: unknown) => void;
  readonly #attempts: number;
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  /** Keys delivered (or skipped) by this subscription, with their timestamps, for dedupe. */
  readonly #seen = new Map<string, number>();
  #running = false;
  #subscribedAt = 0;
  #lastPoll = 0;
  /** The newest timestamp seen: where a poll woken by `watch()` starts. */
  #newest = 0;
  #polling = false;
  #again = false;
  #againFull = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #reader: ReadableStreamDefaultReader<unknown> | undefined;

  constructor(
    kv: KvLike,
    log: KvKey,
    options: EventLogOptions,
    onError: (error: unknown) => void,
    attempts: number,
  ) {
    this.#attempts = attempts;
    this.#kv = kv;
    this.#log = log;
    this.#head = [...log.slice(0, -1), `${String(log[log.length - 1])}-head`];
    const interval = options.pollIntervalMs ?? 500;
    if (!(interval >= 0) || !Number.isFinite(interval)) {
      throw new RangeError("Cannot create DenoKvStore: pollIntervalMs must be 0 or more");
    }
    this.#pollIntervalMs = interval;
    this.#watch = options.watch ?? "Deno" in globalThis;
    this.#onError = onError;
  }

  /** Appends an event to the log. */
  async publish(event: StoreEvent): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(event));
    const stamp = Date.now();
    const random = randomPart();
    const result = await retryBusy(
      () =>
        this.#kv.atomic()
          .set([...this.#log, stamp, random], bytes, { expireIn: EVENT_TTL_MS })
          .set(this.#head, encoder.encode(`${stamp}:${random}`))
          .commit(),
      this.#attempts,
    );
    if (!result.ok) throw new Error("Cannot publish session event: KV commit failed");
  }

  /** Adds a listener; the first one starts polling (and watching). */
  subscribe(onEvent: (event: StoreEvent) => void): () => void {
    this.#listeners.add(onEvent);
    if (!this.#running) this.#start();
    return () => {
      if (this.#listeners.delete(onEvent) && this.#listeners.size === 0) this.stop();
    };
  }

  /** Stops polling and watching and drops every listener. */
  stop(): void {
    this.#listeners.clear();
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#reader?.cancel().catch(() => {});
    this.#reader = undefined;
    this.#seen.clear();
  }

  #start(): void {
    this.#running = true;
    this.#subscribedAt = this.#lastPoll = this.#newest = Date.now();
    if (this.#pollIntervalMs > 0) this.#schedule();
    if (this.#watch && typeof this.#kv.watch === "function") this.#startWatch();
  }

  #schedule(): void {
    if (!this.#running || this.#pollIntervalMs === 0) return;
    clearTimeout(this.#timer);
    this.#timer = unref(setTimeout(() => void this.#poll(true), this.#pollIntervalMs));
  }

  #startWatch(): void {
    let reader: ReadableStreamDefaultReader<unknown>;
    try {
      reader = this.#reader = this.#kv.watch!([this.#head]).getReader();
    } catch (err) {
      this.#onError(err);
      return;
    }
    const loop = async () => {
      while (this.#reader === reader) {
        const { done } = await reader.read();
        if (done || this.#reader !== reader) return;
        // Without interval polls (watch only), every poll must look back for late entries.
        void this.#poll(this.#pollIntervalMs === 0);
      }
    };
    loop().catch((err) => {
      if (this.#reader === reader) this.#onError(err);
    });
  }

  /**
   * One poll (or, when one is running, one more right after it): `full` looks back from the
   * previous full poll, otherwise it reads from the newest timestamp seen.
   */
  async #poll(full: boolean): Promise<void> {
    if (this.#polling) {
      this.#again = true;
      this.#againFull ||= full;
      return;
    }
    this.#polling = true;
    try {
      do {
        this.#again = false;
        await this.#readLog(full);
        full = this.#againFull;
        this.#againFull = false;
      } while (this.#again && this.#running);
    } catch (err) {
      if (this.#running) this.#onError(err);
    } finally {
      this.#polling = false;
      this.#schedule();
    }
  }

  async #readLog(full: boolean): Promise<void> {
    const startedAt = Date.now();
    const from = full ? this.#lastPoll - LOOKBACK_MS : this.#newest;
    const fresh: unknown[] = [];
    for await (const entry of this.#kv.list({ prefix: this.#log, start: [...this.#log, from] })) {
      const stamp = entry.key[this.#log.length];
      const id = `${String(stamp)}:${String(entry.key[this.#log.length + 1])}`;
      if (typeof stamp !== "number" || this.#seen.has(id)) continue;
      this.#seen.set(id, stamp);
      if (stamp > this.#newest) this.#newest = stamp;
      if (stamp >= this.#subscribedAt) fresh.push(entry.value);
    }
    if (!this.#running) return;
    if (full) {
      this.#lastPoll = startedAt;
      for (const [id, stamp] of this.#seen) if (stamp < from) this.#seen.delete(id);
    }
    for (const value of fresh) this.#deliver(value);
  }

  #deliver(value: unknown): void {
    let event: unknown;
    try {
      event = JSON.parse(decoder.decode(value as Uint8Array));
    } catch (err) {
      this.#onError(err);
      return;
    }
    if (!event || typeof event !== "object" || typeof (event as StoreEvent).type !== "string") {
      return;
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener(event as StoreEvent);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}

/** Lets the process exit while only this timer is pending (Node, Bun: `unref()`; Deno). */
function unref<T>(timer: T): T {
  if (typeof (timer as { unref?: unknown }).unref === "function") {
    (timer as { unref(): void }).unref();
  } else if (typeof timer === "number") {
    const deno = (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno;
    deno?.unrefTimer?.(timer);
  }
  return timer;
}

function randomPart(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

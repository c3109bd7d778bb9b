/**
 * Retry helpers shared by the bundled stores.
 * @module
 */

/**
 * A random, growing pause after a lost optimistic write (full jitter, at most 100 ms). The
 * stores try 50 times: with pauses of up to 100 ms that spans about 2.5 s, which a writer needs
 * when another process streams its own queue of writes to the same session (2,000 increments of
 * one session from two processes). With at most 25 ms (0.6 s in all), one of them lost 50 times
 * in a row in a CI run and failed with a StoreError.
 */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(100, 2 ** attempt);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * True for SQLite's "database is locked" (SQLITE_BUSY), which a local Deno KV file reports when
 * another handle or process is writing at the same moment: the write did not happen, and
 * trying again shortly after succeeds.
 */
export function isKvBusy(err: unknown): boolean {
  return err instanceof Error && /database is locked/i.test(err.message);
}

/** Runs a KV call again (up to `attempts` times in all) while the file is busy. */
export async function retryBusy<T>(fn: () => Promise<T>, attempts: number): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= attempts || !isKvBusy(err)) throw err;
      await backoff(attempt);
    }
  }
}

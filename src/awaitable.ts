/**
 * Values that may or may not be promises: the hot paths answer synchronously when the store
 * does (MapStore), and make a promise only when something is actually awaited.
 * @module
 */

/** True for a promise or any other thenable. */
export function isThenable<T>(x: T | PromiseLike<T>): x is PromiseLike<T> {
  return x !== null && (typeof x === "object" || typeof x === "function") &&
    typeof (x as PromiseLike<T>).then === "function";
}

/** What `fn` returns, as a promise: a value resolves it, a throw rejects it (never thrown). */
export function promiseOf<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/** `f(x)` now when `x` is a value; once it resolves (a promise) when it is a thenable. */
export function andThen<X, Y>(
  x: X | PromiseLike<X>,
  f: (x: X) => Y | PromiseLike<Y>,
): Y | Promise<Y> {
  return isThenable(x) ? Promise.resolve(x).then(f) : f(x) as Y | Promise<Y>;
}

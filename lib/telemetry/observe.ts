/**
 * Run the rest of the chain and observe how it settles, without changing the outcome: what
 * observation interceptors (monitor, tracing) do around `next()`.
 *
 * @module
 */
import type { Next } from "../core/interceptor.ts";

/**
 * Call `next()` and then `settled(value, error, failed)` before passing the result (or the
 * rejection) on unchanged. A synchronous throw from `next()` becomes a rejection. `settled` must
 * not throw (observation hooks catch their own errors).
 *
 * @example
 * ```ts
 * intercept(op, next) {
 *   return observe(next, (_value, _error, failed) => console.log(op.command, failed ? "failed" : "ok"));
 * }
 * ```
 */
export function observe(
  next: Next,
  settled: (value: unknown, error: unknown, failed: boolean) => void,
): Promise<unknown> {
  let running: Promise<unknown>;
  try {
    running = next();
  } catch (error) {
    running = Promise.reject(error);
  }
  return running.then(
    (value) => (settled(value, undefined, false), value),
    (error) => {
      settled(undefined, error, true);
      throw error;
    },
  );
}

/**
 * What a limit algorithm is: a small state machine that, after each sampling window, turns the
 * current limit and what the window measured into the next limit (Netflix concurrency-limits).
 *
 * @module
 */

/** What one sampling window measured on a lane. */
export interface LimitSample {
  /** Mean round-trip time of the queries that completed in the window (ms). */
  rttMs: number;
  /** Fastest round trip of the window (ms). */
  minRttMs: number;
  /** Most operations in flight at once during the window. */
  maxInFlight: number;
  /** Waiters in the queue when the window closed. */
  queued: number;
  /** Queries that completed in the window. */
  count: number;
  /** Signs of overload in the window: queue timeouts and operations that failed with a timeout. */
  drops: number;
}

/** A limit algorithm with its own state, one instance per lane. */
export interface LimitAlgorithm {
  /** `gradient`, `vegas`, `aimd` or `fixed`. */
  readonly name: string;
  /** The next limit (a real number; the caller rounds and clamps it to [min, max]). */
  next(limit: number, sample: LimitSample): number;
}

/**
 * `value` kept inside [min, max].
 *
 * @example
 * ```ts
 * clamp(30, 5, 25); // 25
 * ```
 */
export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

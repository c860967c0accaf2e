/**
 * Exponential backoff with "equal jitter": the delay doubles per step up to a cap, and half of
 * it is random, so many clients that failed together do not come back together.
 *
 * @module
 */

/** Computes the delay before step `n` (1-based). */
export type Backoff = (step: number) => number;

/** Options of {@link exponentialBackoff}. */
export interface BackoffOptions {
  /** Delay of the first step, in milliseconds. */
  readonly baseMs: number;
  /** Upper bound of any delay, in milliseconds. */
  readonly maxMs: number;
  /** Random source in [0, 1) (injected in tests). Default `Math.random`. */
  readonly random?: () => number;
  /**
   * Steps up to this one get their nominal delay with no jitter (default 0: every step is
   * jittered). The breaker uses 1, so its first recovery wait is exactly `recoveryMs`.
   */
  readonly exactSteps?: number;
}

/**
 * Exponential backoff: step `n` waits between half and all of `min(maxMs, baseMs * 2^(n-1))`,
 * and never less than `baseMs` (a cap below `baseMs` wins, though).
 *
 * @example
 * ```ts
 * const delay = exponentialBackoff({ baseMs: 50, maxMs: 1000 });
 * delay(1); // 50 … 50
 * delay(3); // 100 … 200
 * delay(9); // 500 … 1000
 * ```
 */
export function exponentialBackoff(options: BackoffOptions): Backoff {
  const { baseMs, maxMs, random = Math.random, exactSteps = 0 } = options;
  return (step) => {
    // 2^30 already exceeds any sensible cap; the bound keeps the power finite.
    const nominal = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(step - 1, 0), 30));
    if (step <= exactSteps) return nominal;
    const jittered = nominal / 2 + random() * (nominal / 2);
    return Math.min(maxMs, Math.max(baseMs, jittered));
  };
}

/**
 * The AIMD algorithm: additive increase while the lane is busy and healthy, multiplicative
 * decrease on drops (timeouts) or when latency crosses a threshold.
 *
 * @module
 */
import type { LimitAlgorithm, LimitSample } from "./algorithm.ts";

/** Options of {@link aimd}. */
export interface AimdOptions {
  /** Multiply the limit by this on a bad window, 0 < backoff < 1. Default 0.9. */
  backoffRatio?: number;
  /** A window whose mean RTT exceeds this is bad (ms, at most 2^31−1). Default 200. */
  latencyThresholdMs?: number;
}

/**
 * AIMD limit: `limit × backoffRatio` after a window with drops or a mean RTT above
 * `latencyThresholdMs`, `limit + 1` after a window that used at least half the limit.
 *
 * @example
 * ```ts
 * const algorithm = aimdLimit({ latencyThresholdMs: 200 });
 * algorithm.next(10, { rttMs: 250, minRttMs: 5, maxInFlight: 10, queued: 3, count: 20, drops: 0 }); // 9
 * ```
 */
export function aimdLimit(options: AimdOptions = {}): LimitAlgorithm {
  const backoff = options.backoffRatio ?? 0.9;
  const threshold = options.latencyThresholdMs ?? 200;
  return {
    name: "aimd",
    next(limit: number, sample: LimitSample): number {
      if (sample.drops > 0 || (sample.count > 0 && sample.rttMs > threshold)) return limit * backoff;
      if (sample.count > 0 && (sample.maxInFlight * 2 >= limit || sample.queued > 0)) return limit + 1;
      return limit;
    },
  };
}

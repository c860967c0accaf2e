/**
 * The Vegas algorithm (after TCP Vegas and Netflix concurrency-limits' VegasLimit): estimate
 * how many operations are queued at the server from the ratio of the no-load RTT to the
 * measured RTT, and keep that estimate between two thresholds.
 *
 * @module
 */
import type { LimitAlgorithm, LimitSample } from "./algorithm.ts";

/** Options of {@link vegas}. */
export interface VegasOptions {
  /** Growth cap per window: the next limit is at most `limit × growthFactor`. Default 1.8. */
  growthFactor?: number;
  /** Re-learn the no-load RTT every this many windows (the server may have become slower for good), 1 to 1 000 000. Default 1000. */
  probeEvery?: number;
}

/**
 * Vegas limit: `queue = limit × (1 − rttNoLoad / rtt)`; with `t = max(1, log10(limit))`,
 * grow by 6t when `queue ≤ t`, by t when `queue < 3t`, shrink by t when `queue > 6t`;
 * shrink by t on drops (timeouts).
 *
 * @example
 * ```ts
 * const algorithm = vegasLimit();
 * algorithm.next(10, { rttMs: 4, minRttMs: 1, maxInFlight: 10, queued: 0, count: 40, drops: 0 });
 * ```
 */
export function vegasLimit(options: VegasOptions = {}): LimitAlgorithm {
  const growthFactor = options.growthFactor ?? 1.8;
  const probeEvery = options.probeEvery ?? 1000;
  let rttNoLoad = Infinity;
  let windows = 0;
  return {
    name: "vegas",
    next(limit: number, sample: LimitSample): number {
      if (sample.count === 0 || !(sample.rttMs > 0)) return limit;
      if (++windows % probeEvery === 0) rttNoLoad = sample.minRttMs;
      else rttNoLoad = Math.min(rttNoLoad, sample.minRttMs);
      const step = Math.max(1, Math.log10(limit));
      if (sample.drops > 0) return limit - step;
      if (sample.maxInFlight * 2 < limit && sample.queued === 0) return limit;
      const queue = limit * (1 - rttNoLoad / sample.rttMs);
      let next = limit;
      if (queue <= step) next = limit + 6 * step;
      else if (queue < 3 * step) next = limit + step;
      else if (queue > 6 * step) next = limit - step;
      return Math.min(next, limit * growthFactor);
    },
  };
}

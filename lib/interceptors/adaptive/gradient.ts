/**
 * The gradient algorithm (after Netflix concurrency-limits' Gradient2): compare a short-term
 * RTT with a long-term one; while they agree, grow by a queue allowance; when the short-term RTT
 * rises, shrink in proportion.
 *
 * @module
 */
import { clamp, type LimitAlgorithm, type LimitSample } from "./algorithm.ts";

/** Options of {@link gradient}. */
export interface GradientOptions {
  /** How much slower than the long-term RTT the short-term RTT may get before the limit falls. Default 1.5. */
  tolerance?: number;
  /** Weight of the new target in the smoothed limit, 0 < smoothing ≤ 1. Default 0.2. */
  smoothing?: number;
  /** Windows the long-term RTT averages over (exponential), 1 to 1 000 000. Default 600. */
  longWindow?: number;
  /** Growth cap per window: the next limit is at most `limit × growthFactor`. Default 1.8. */
  growthFactor?: number;
}

/**
 * Gradient limit: `target = limit × gradient + √limit`, where
 * `gradient = clamp(tolerance × longRtt / shortRtt, 0.5, 1)`; the limit moves toward the target
 * by `smoothing` per window, at most ×`growthFactor`. The √limit term is the queue allowance
 * that lets the limit probe upward while latency holds. When the application uses less than
 * half the limit, the window says nothing about a higher one and the limit stays.
 *
 * @example
 * ```ts
 * const algorithm = gradientLimit({ tolerance: 1.5, smoothing: 0.2 });
 * let limit = 10;
 * limit = algorithm.next(limit, { rttMs: 2, minRttMs: 1, maxInFlight: 10, queued: 4, count: 50, drops: 0 });
 * ```
 */
export function gradientLimit(options: GradientOptions = {}): LimitAlgorithm {
  const tolerance = options.tolerance ?? 1.5;
  const smoothing = options.smoothing ?? 0.2;
  const growthFactor = options.growthFactor ?? 1.8;
  const longWindow = options.longWindow ?? 600;
  const warmup = 10;
  let longRtt = 0;
  let windows = 0;
  return {
    name: "gradient",
    next(limit: number, sample: LimitSample): number {
      if (sample.count === 0 || !(sample.rttMs > 0)) return limit;
      const shortRtt = sample.rttMs;
      windows++;
      // A plain mean over the first windows, then an exponential average over longWindow.
      const weight = windows <= warmup ? 1 / windows : 2 / (longWindow + 1);
      longRtt += (shortRtt - longRtt) * weight;
      // The server got much faster (a slowdown ended): let the baseline follow quickly.
      if (longRtt / shortRtt > 2) longRtt *= 0.95;
      if (sample.maxInFlight < limit / 2 && sample.queued === 0) return limit;
      const ratio = clamp((tolerance * longRtt) / shortRtt, 0.5, 1);
      const target = limit * ratio + Math.sqrt(limit);
      const smoothed = limit * (1 - smoothing) + target * smoothing;
      return Math.min(smoothed, limit * growthFactor);
    },
  };
}

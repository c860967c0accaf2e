/**
 * Forecasting the arrival rate: Holt's double exponential smoothing (level + trend), and the
 * bookkeeping that scores it against the naive last-value forecast (MAPE), so `stats()` shows
 * whether forecasting earns its keep on this workload.
 *
 * @module
 */

/** Options of {@link HoltForecaster}. */
export interface HoltOptions {
  /** Level smoothing, 0 < alpha ≤ 1. Default 0.8. */
  alpha?: number;
  /** Trend smoothing, 0 < beta ≤ 1. Default 0.5. */
  beta?: number;
  /** How many steps ahead forecasts are scored (the horizon in monitor intervals, ≥ 1). Default 1. */
  horizonSteps?: number;
}

/** How good the forecasts have been, next to the naive last-value forecast. */
export interface ForecastAccuracy {
  /** Mean absolute percentage error of Holt's forecasts (0.1 = 10 %); NaN before any score. */
  mape: number;
  /** The same for the naive forecast (next value = last value). */
  naiveMape: number;
  /**
   * Weighted error, Σ|error| / Σ actual, of Holt's forecasts: unlike MAPE it is not blown up
   * by near-idle steps (an idle second with 2 arrivals makes a 100/s forecast a 4900 % miss).
   */
  wape: number;
  /** The same for the naive forecast. */
  naiveWape: number;
  /** Forecasts scored (steps whose actual value was positive). */
  scored: number;
}

/**
 * Holt's linear method, one observation per step:
 * `level ← α·x + (1−α)(level + trend)`, `trend ← β(level − previousLevel) + (1−β)·trend`,
 * forecast `h` steps ahead = `level + h·trend` (never below 0).
 *
 * Every observation also scores the forecasts made `horizonSteps` earlier, Holt's and the naive
 * one, by absolute percentage error (steps whose actual value is 0 are not scored).
 *
 * @example
 * ```ts
 * const holt = new HoltForecaster({ horizonSteps: 3 });
 * for (const rate of [100, 120, 140, 160]) holt.observe(rate);
 * holt.forecast(3); // ≈ 220
 * holt.accuracy();   // { mape, naiveMape, wape, naiveWape, scored }
 * ```
 */
export class HoltForecaster {
  readonly #alpha: number;
  readonly #beta: number;
  readonly #horizon: number;
  #level = 0;
  #trend = 0;
  #observations = 0;
  /** Forecasts awaiting their actual value, oldest first: [holt, naive]. */
  readonly #pending: [number, number][] = [];
  #errorSum = 0;
  #naiveErrorSum = 0;
  #absoluteError = 0;
  #naiveAbsoluteError = 0;
  #actualSum = 0;
  #scored = 0;

  constructor(options: HoltOptions = {}) {
    this.#alpha = options.alpha ?? 0.8;
    this.#beta = options.beta ?? 0.5;
    this.#horizon = Math.max(1, Math.round(options.horizonSteps ?? 1));
  }

  /** Steps ahead that forecasts are scored at. */
  get horizonSteps(): number {
    return this.#horizon;
  }

  /** Feed the value of the step that just ended. */
  observe(value: number): void {
    if (this.#pending.length === this.#horizon) {
      const [predicted, naive] = this.#pending.shift()!;
      if (value > 0) {
        this.#errorSum += Math.abs(value - predicted) / value;
        this.#naiveErrorSum += Math.abs(value - naive) / value;
        this.#absoluteError += Math.abs(value - predicted);
        this.#naiveAbsoluteError += Math.abs(value - naive);
        this.#actualSum += value;
        this.#scored++;
      }
    }
    if (this.#observations === 0) {
      this.#level = value;
      this.#trend = 0;
    } else {
      const previous = this.#level;
      this.#level = this.#alpha * value + (1 - this.#alpha) * (this.#level + this.#trend);
      this.#trend = this.#beta * (this.#level - previous) + (1 - this.#beta) * this.#trend;
    }
    this.#observations++;
    this.#pending.push([this.forecast(this.#horizon), value]);
  }

  /** The value expected `steps` steps ahead (0 before any observation). */
  forecast(steps: number = this.#horizon): number {
    return Math.max(0, this.#level + steps * this.#trend);
  }

  /** Observations so far. */
  get observations(): number {
    return this.#observations;
  }

  /** MAPE (and WAPE) of Holt's and of the naive forecasts so far. */
  accuracy(): ForecastAccuracy {
    const scored = this.#scored;
    return {
      mape: scored === 0 ? NaN : this.#errorSum / scored,
      naiveMape: scored === 0 ? NaN : this.#naiveErrorSum / scored,
      wape: scored === 0 ? NaN : this.#absoluteError / this.#actualSum,
      naiveWape: scored === 0 ? NaN : this.#naiveAbsoluteError / this.#actualSum,
      scored,
    };
  }
}

/**
 * Connections needed for a request rate by Little's law, at a target utilization:
 * `ceil(ratePerSecond × latencyMs / 1000 / targetUtilization)`.
 *
 * Requests per second alone are not connections: the time each request holds a connection is
 * the factor that turns a rate into a pool size (docs/origins.md shows the formula this replaces).
 *
 * @example
 * ```ts
 * neededConnections(200, 20, 0.7); // 200/s × 0.02 s = 4 busy on average → 6 at 70 %
 * ```
 */
export function neededConnections(ratePerSecond: number, latencyMs: number, targetUtilization: number): number {
  if (!(ratePerSecond > 0) || !(latencyMs > 0)) return 0;
  return Math.ceil((ratePerSecond * latencyMs) / 1000 / targetUtilization);
}

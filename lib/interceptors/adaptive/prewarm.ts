/**
 * Pre-warming: open connections ahead of a forecast surge. postgres.js opens connections
 * lazily — a query takes an idle connection, else connects a closed one — so running `k`
 * concurrent `select 1` probes while fewer than `k` connections are open makes it connect the
 * rest. This file decides how many probes; the lane runs them on free permits only, so probes
 * never queue behind or ahead of real work, and never pipeline onto busy connections.
 *
 * @module
 */
import { neededConnections } from "./forecast.ts";

/** What the pre-warmer knows at a monitor tick. */
export interface PrewarmInput {
  /** Forecast arrival rate, `horizonMs` ahead (per second). */
  forecastRate: number;
  /** Mean time an operation holds a permit (ms). */
  holdMs: number;
  /** Little's-law target utilization (0.7). */
  targetUtilization: number;
  /** Connections worth having at most (the lane's limit). */
  ceiling: number;
  /** Connections known to be open (recent peak concurrency, see {@link WarmTracker}). */
  warm: number;
  /** Permits free now. */
  free: number;
}

/** The pre-warmer's decision. */
export interface PrewarmPlan {
  /** Connections Little's law asks for at the forecast rate (uncapped). */
  needed: number;
  /** `needed` capped at the ceiling. */
  target: number;
  /** Probes to run now. */
  probes: number;
}

/**
 * How many probes to run: enough to bring open connections up to what the forecast needs
 * (`ceil(rate × hold / targetUtilization)`, capped at the ceiling), within the free permits.
 *
 * @example
 * ```ts
 * planPrewarm({ forecastRate: 500, holdMs: 20, targetUtilization: 0.7, ceiling: 20, warm: 4, free: 16 });
 * // { needed: 15, target: 15, probes: 11 }
 * ```
 */
export function planPrewarm(input: PrewarmInput): PrewarmPlan {
  const needed = neededConnections(input.forecastRate, input.holdMs, input.targetUtilization);
  const target = Math.min(input.ceiling, needed);
  const probes = target > input.warm ? Math.max(0, Math.min(target - input.warm, input.free)) : 0;
  return { needed, target, probes };
}

/**
 * A lower bound on open connections: the peak concurrency of the last `memory` ticks. While
 * in flight stays within the pool size, each concurrent operation had its own connection, so
 * that many were open. The peak is forgotten after `memory` ticks because postgres.js may close
 * idle connections (`idle_timeout`, `max_lifetime`); forgetting errs toward an extra probe.
 *
 * @example
 * ```ts
 * const warm = new WarmTracker(60);
 * warm.saw(8);
 * warm.tick(); // start the next tick's peak
 * warm.value;  // 8
 * ```
 */
export class WarmTracker {
  readonly #peaks: number[];
  #index = 0;
  #current = 0;

  constructor(memory: number) {
    this.#peaks = new Array(Math.max(1, memory)).fill(0);
  }

  /** `concurrency` operations (or probes) were in flight at once. */
  saw(concurrency: number): void {
    if (concurrency > this.#current) this.#current = concurrency;
  }

  /** The most recent ticks' peak. */
  get value(): number {
    let peak = this.#current;
    for (const value of this.#peaks) if (value > peak) peak = value;
    return peak;
  }

  /** Close the current tick. */
  tick(): void {
    this.#peaks[this.#index] = this.#current;
    this.#index = (this.#index + 1) % this.#peaks.length;
    this.#current = 0;
  }
}

/**
 * What `breaker()` returns and reports: the interceptor's shape, its stats section and its
 * rejections.
 *
 * @module
 */
import type { HealthReport, Interceptor } from "../../core/interceptor.ts";
import type { CountedCategory } from "../../shared/failure-window.ts";
import type { Subscription } from "../../shared/listeners.ts";
import type { CircuitSnapshot, CircuitStateName, CircuitTransition } from "./circuit.ts";

/** A call the breaker turned away. */
export interface BreakerRejection {
  readonly lane: string;
  /** The category whose failures opened the circuit. */
  readonly category: CountedCategory;
  /** `open`, or `half-open` when every probe slot was taken. */
  readonly state: "open" | "half-open";
  readonly retryAfterMs: number;
}

/** One lane in `stats()`. */
export interface LaneBreakerStats {
  state: CircuitStateName;
  /** What opened it (open / half-open). */
  category?: CountedCategory;
  /** Until the next probe (open). */
  retryAfterMs?: number;
  /** Consecutive opens without a close. */
  opens: number;
  /** Probes running (half-open). */
  probes: number;
  /** Calls and counted failures in the sliding window. */
  window: { calls: number; failures: number; byCategory: Record<CountedCategory, number> };
  /** Lifetime counts. */
  transitions: number;
  rejections: number;
  activeProbes: { sent: number; answered: number };
}

/** `breaker().stats()`. */
export interface BreakerStats {
  lanes: Record<string, LaneBreakerStats>;
}

/** @deprecated Use `BreakerInterceptor`. */
export type Breaker = BreakerInterceptor;

/** The interceptor `breaker()` returns. */
export interface BreakerInterceptor extends Interceptor {
  readonly name: "breaker";
  /** Listen to state changes of any lane's circuit. */
  onStateChange(listener: (transition: CircuitTransition) => void): Subscription;
  /** Listen to rejected calls. */
  onReject(listener: (rejection: BreakerRejection) => void): Subscription;
  /** State of a lane's circuit (`closed` for a lane it has not seen). */
  state(lane: string): CircuitStateName;
  /**
   * Whether routing should send new work to the lane: with active probing (the default) only
   * once the circuit is closed; without it, whenever the circuit would admit a call.
   */
  laneAvailable(lane: string): boolean;
  stats(): BreakerStats;
  health(): HealthReport;
  /** Every lane's state, for `initialState` in another process or isolate. */
  toJSON(): Record<string, CircuitSnapshot>;
  close(): Promise<void>;
}

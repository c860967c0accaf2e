/**
 * The breaker's metrics (names under `pgpilot.`): the state of each lane's circuit as
 * a gauge (0 healthy/closed, 1 degraded/half-open, 2 failed/open), transitions and rejections as counters. Attributes are bounded:
 * pool, lane, state, category.
 *
 * @module
 */
import type { Attributes, Counter, Meter } from "@opentelemetry/api";
import { ATTR, BREAKER_ATTR, BREAKER_METRIC } from "../../telemetry/names.ts";

export { BREAKER_ATTR, BREAKER_METRIC } from "../../telemetry/names.ts";
import { reportHookError } from "../../shared/diag.ts";
import type { Circuit, CircuitStateName } from "./circuit.ts";
import type { CountedCategory } from "../../shared/failure-window.ts";



/**
 * Gauge value of each state.
 *
 * @example
 * ```ts
 * STATE_VALUE["half-open"]; // 1
 * ```
 */
export const STATE_VALUE: Readonly<Record<CircuitStateName, number>> = { closed: 0, "half-open": 1, open: 2 };

/**
 * Instruments of one breaker. Attribute objects are built once per lane (and category), so
 * recording allocates nothing.
 *
 * @example
 * ```ts
 * const telemetry = new BreakerTelemetry(pgpilotMeter(), "main", () => circuits.values());
 * telemetry.rejection("primary", "connection");
 * ```
 */
export class BreakerTelemetry {
  readonly #pool: string;
  readonly #transitions: Counter;
  readonly #rejections: Counter;
  /** Attribute objects per lane, built on first use. */
  readonly #lanes = new Map<string, LaneAttributes>();

  constructor(meter: Meter, pool: string, circuits: () => Iterable<Circuit>) {
    this.#pool = pool;
    this.#transitions = meter.createCounter(BREAKER_METRIC.TRANSITIONS, {
      description: "Circuit breaker state changes, by lane and new state",
      unit: "{transition}",
    });
    this.#rejections = meter.createCounter(BREAKER_METRIC.REJECTIONS, {
      description: "Calls rejected by an open or busy half-open circuit, without network I/O",
      unit: "{rejection}",
    });
    const state = meter.createObservableGauge(BREAKER_METRIC.STATE, {
      description: "Circuit breaker state per lane: 0 closed (healthy), 1 half-open (degraded), 2 open (failed)",
    });
    state.addCallback((result) => {
      try {
        for (const circuit of circuits()) result.observe(STATE_VALUE[circuit.state.name], this.#lane(circuit.lane).base);
      } catch (error) {
        reportHookError("breaker.metrics", error);
      }
    });
  }

  /** A lane's circuit changed state. */
  transition(lane: string, to: CircuitStateName): void {
    try {
      const attributes = this.#lane(lane);
      this.#transitions.add(1, (attributes.byState[to] ??= { ...attributes.base, [BREAKER_ATTR.STATE]: to }));
    } catch (error) {
      reportHookError("breaker.metrics", error);
    }
  }

  /** A call was rejected on `lane`, whose circuit `category` failures opened. */
  rejection(lane: string, category: CountedCategory): void {
    try {
      const attributes = this.#lane(lane);
      this.#rejections.add(
        1,
        (attributes.byCategory[category] ??= { ...attributes.base, [BREAKER_ATTR.CATEGORY]: category }),
      );
    } catch (error) {
      reportHookError("breaker.metrics", error);
    }
  }

  #lane(lane: string): LaneAttributes {
    let attributes = this.#lanes.get(lane);
    if (attributes === undefined) {
      const base = { [ATTR.POOL_NAME]: this.#pool, [ATTR.LANE]: lane };
      attributes = { base, byState: {}, byCategory: {} };
      this.#lanes.set(lane, attributes);
    }
    return attributes;
  }
}

interface LaneAttributes {
  base: Attributes;
  byState: Partial<Record<CircuitStateName, Attributes>>;
  byCategory: Partial<Record<CountedCategory, Attributes>>;
}

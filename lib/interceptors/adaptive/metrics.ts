/**
 * The adaptive interceptor's OpenTelemetry instruments (`pgpilot.adaptive.*`, `pgpilot.load.*`).
 * Gauges are observed at collection time from the lanes' state, so the hot path pays nothing;
 * counters are bumped only when a limit changes or a call is shed. The semconv
 * `db.client.connection.*` instruments belong to `monitor()`, which reads `pending()`/`limit()`.
 *
 * @module
 */
import type { Attributes, Meter } from "@opentelemetry/api";
import { ATTR, ADAPTIVE_METRIC } from "../../telemetry/names.ts";

export { ADAPTIVE_METRIC } from "../../telemetry/names.ts";
import { reportHookError } from "../../shared/diag.ts";


/** What the gauges read from one lane. */
export interface LaneGauges {
  readonly attributes: Attributes;
  limit(): number;
  queued(): number;
  loadFactor(): number;
  arrivalRate(): number;
  forecast(): number;
  neededConnections(): number;
  eventLoopLagMs(): number;
}

/** Counters the lanes bump. */
export interface AdaptiveCounters {
  adjustment(attributes: Attributes, direction: "up" | "down"): void;
  rejection(attributes: Attributes, reason: "timeout" | "saturated"): void;
  probes(attributes: Attributes, count: number): void;
}

/**
 * Create the instruments on `meter`; gauges observe `lanes()` at each collection.
 *
 * @example
 * ```ts
 * const counters = adaptiveInstruments(pgpilotMeter(), () => lanes.values());
 * counters.adjustment(lane.attributes, "down");
 * ```
 */
export function adaptiveInstruments(meter: Meter, lanes: () => Iterable<LaneGauges>): AdaptiveCounters {
  const limit = meter.createObservableGauge(ADAPTIVE_METRIC.LIMIT, {
    description: "Current concurrency limit of the lane: the effective pool size",
    unit: "{connection}",
  });
  const queued = meter.createObservableGauge(ADAPTIVE_METRIC.QUEUED, {
    description: "Operations waiting in pgpilot's queue for a permit",
    unit: "{request}",
  });
  const load = meter.createObservableGauge(ADAPTIVE_METRIC.LOAD_FACTOR, {
    description: "Demand (in flight + waiting, time-averaged) over the current limit, 0..1",
    unit: "1",
  });
  const arrivals = meter.createObservableGauge(ADAPTIVE_METRIC.ARRIVAL_RATE, {
    description: "Operations arriving per second over the last monitor interval",
    unit: "{request}/s",
  });
  const forecast = meter.createObservableGauge(ADAPTIVE_METRIC.FORECAST, {
    description: "Forecast arrival rate, horizonMs ahead (Holt's double exponential smoothing)",
    unit: "{request}/s",
  });
  const needed = meter.createObservableGauge(ADAPTIVE_METRIC.NEEDED_CONNECTIONS, {
    description: "Connections the forecast needs by Little's law at the target utilization",
    unit: "{connection}",
  });
  const lag = meter.createObservableGauge(ADAPTIVE_METRIC.EVENT_LOOP_LAG, {
    description: "How late the load monitor's timer fired: event-loop lag",
    unit: "s",
  });
  meter.addBatchObservableCallback((result) => {
    try {
      for (const lane of lanes()) {
        result.observe(limit, lane.limit(), lane.attributes);
        result.observe(queued, lane.queued(), lane.attributes);
        result.observe(load, lane.loadFactor(), lane.attributes);
        result.observe(arrivals, lane.arrivalRate(), lane.attributes);
        result.observe(forecast, lane.forecast(), lane.attributes);
        result.observe(needed, lane.neededConnections(), lane.attributes);
        result.observe(lag, lane.eventLoopLagMs() / 1000, lane.attributes);
      }
    } catch (error) {
      reportHookError("adaptive.observe", error);
    }
  }, [limit, queued, load, arrivals, forecast, needed, lag]);

  const adjustments = meter.createCounter(ADAPTIVE_METRIC.ADJUSTMENTS, {
    description: "Changes of the concurrency limit, by direction",
    unit: "{adjustment}",
  });
  const rejections = meter.createCounter(ADAPTIVE_METRIC.REJECTIONS, {
    description: "Calls refused by the adaptive limiter: queue timeout or queue full (shed)",
    unit: "{request}",
  });
  const probes = meter.createCounter(ADAPTIVE_METRIC.PREWARM_PROBES, {
    description: "select 1 probes run to open connections ahead of a forecast surge",
    unit: "{probe}",
  });
  const safe = (where: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      reportHookError(where, error);
    }
  };
  return {
    adjustment: (attributes, direction) =>
      safe("adaptive.adjustments", () => adjustments.add(1, { ...attributes, [ATTR.ADAPTIVE_DIRECTION]: direction })),
    rejection: (attributes, reason) =>
      safe("adaptive.rejections", () => rejections.add(1, { ...attributes, [ATTR.ADAPTIVE_REASON]: reason })),
    probes: (attributes, count) => safe("adaptive.probes", () => probes.add(count, attributes)),
  };
}

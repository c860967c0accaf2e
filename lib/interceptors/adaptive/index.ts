/**
 * `adaptive()`: an admission limiter in front of each lane's pool, with a FIFO queue, load
 * shedding, a limit that adapts to measured latency, a load monitor, arrival-rate forecasting
 * and pre-warming (docs/adaptive.md).
 *
 * postgres.js fixes `max` at creation and, past it, pipelines queries onto busy connections —
 * which, in 3.4.9, leaves the pool slower for good after a burst. So "adaptive pool size" here is
 * the number of permits in front of the pool: in flight never exceeds it. Plain statements are
 * pipelined onto connections the lane reserved (lib/pipeline/pipeline.ts), which keeps the gain
 * of pipelining without the slowdown.
 *
 * @module
 */
import type { MeterProvider } from "@opentelemetry/api";
import { Listeners, type Subscription } from "../../shared/listeners.ts";
import * as v from "valibot";
import { boundedInteger, durationMs, METER_PROVIDER, parseOptions } from "../../shared/config.ts";
import { ConfigError, PilotError } from "../../shared/errors.ts";
import type { HealthReport, Interceptor, Next, PilotContext } from "../../core/interceptor.ts";
import { poolSendOf } from "../../core/lanes.ts";
import type { Operation } from "../../core/operation.ts";
import { ATTR } from "../../telemetry/names.ts";
import { pgpilotMeter } from "../../telemetry/otel.ts";
import { reportHookError } from "../../shared/diag.ts";
import { ALGORITHM, type LimitStrategy, strategyOf } from "./strategies.ts";
import { AdaptiveLane, type AdaptiveLaneStats, type LimitChange } from "./lane.ts";
import { everyInterval } from "./load-monitor.ts";
import { adaptiveInstruments, type AdaptiveCounters } from "./metrics.ts";
import { Pipeline } from "../../pipeline/pipeline.ts";
import type { AbortSource } from "./limiter.ts";

/**
 * Pipelining is opt-in: with it on, a statement whose cached plan is invalidated by a schema
 * change (ALTER … TYPE) leaves its callers and the queries behind it unsettled (reproduced;
 * docs/adaptive.md). 16 is the depth measured best when it is on.
 */
const DEFAULT_PIPELINE_DEPTH = 0;

/** Highest `min`/`max`/`initial` accepted (a limit is capped by the pool's `max` anyway). */
const MAX_LIMIT = 100_000;

const fraction = v.pipe(v.number(), v.finite(), v.gtValue(0), v.maxValue(1));

const OPTIONS = v.strictObject({
  algorithm: v.optional(ALGORITHM, "gradient"),
  min: v.optional(boundedInteger(1, MAX_LIMIT)),
  max: v.optional(boundedInteger(1, MAX_LIMIT)),
  initial: v.optional(boundedInteger(1, MAX_LIMIT)),
  pipelineDepth: v.optional(boundedInteger(0, 1024), DEFAULT_PIPELINE_DEPTH),
  // Infinity stays allowed (documented); the limiter never arms a timer for it.
  queueTimeoutMs: v.optional(v.union([durationMs(0, { exclusive: true }), v.literal(Infinity)]), 30_000),
  maxQueue: v.optional(v.union([boundedInteger(0, 10_000_000), v.literal(Infinity)]), 1000),
  windowMs: v.optional(durationMs(1, { max: 3_600_000 }), 100),
  intervalMs: v.optional(durationMs(10, { max: 3_600_000 }), 1000),
  horizonMs: v.optional(durationMs(0, { max: 86_400_000 }), 3000),
  targetUtilization: v.optional(fraction, 0.7),
  prewarm: v.optional(v.boolean(), true),
  forecast: v.optional(v.strictObject({ alpha: v.optional(fraction, 0.8), beta: v.optional(fraction, 0.5) }), {}),
  meterProvider: v.optional(METER_PROVIDER),
});

/** Options of {@link adaptive}. All are optional; docs/adaptive.md explains each. */
export interface AdaptiveOptions {
  /**
   * How the limit adapts: a strategy with its own knobs — `gradient({ growthFactor, smoothing,
   * tolerance })` (default), `vegas({ growthFactor })`, `aimd({ backoffRatio, latencyThresholdMs })`,
   * `fixed()` — or a strategy's name for its defaults.
   */
  algorithm?: LimitStrategy | "gradient" | "vegas" | "aimd" | "fixed";
  /** Lowest limit, 1 to 100 000. Default 1. */
  min?: number;
  /**
   * Highest limit (operations in flight), at most 100 000. Default and cap: the lane's
   * postgres.js `max`, or when pipelining, the reservable connections × `pipelineDepth`.
   */
  max?: number;
  /** Limit at the start, at most 100 000. Default: `max`. */
  initial?: number;
  /**
   * Queries in flight per reserved connection: plain statements are pipelined onto up to
   * 4/5 of the pool's connections, reserved on demand (16 measured best). Default 0: off, because
   * a plan invalidated by a schema change hangs pipelined callers (docs/adaptive.md). At most 1024.
   */
  pipelineDepth?: number;
  /**
   * Longest wait for a permit, ms, at most 2^31−1 (what a timer can hold); `Infinity` waits
   * forever (no timer is armed). Default 30 000.
   */
  queueTimeoutMs?: number;
  /**
   * Most waiters per lane, at most 10 000 000 or `Infinity`; beyond, calls fail at once with
   * `PoolSaturatedError`. Default 1000.
   */
  maxQueue?: number;
  /** Shortest sampling window of the limit algorithm, ms (it also needs 10 query samples), 1 to 3 600 000 (1 h). Default 100. */
  windowMs?: number;
  /** Load monitor interval, ms, 10 to 3 600 000 (1 h). Default 1000. */
  intervalMs?: number;
  /** How far ahead the arrival rate is forecast, ms (rounded to whole intervals, at least one), at most 86 400 000 (1 day). Default 3000. */
  horizonMs?: number;
  /** Little's-law target utilization for pre-warming, 0 < u ≤ 1. Default 0.7. */
  targetUtilization?: number;
  /** Open connections ahead of a forecast surge. Default true. */
  prewarm?: boolean;
  /** Holt's smoothing factors for the arrival-rate forecast. Default `{ alpha: 0.8, beta: 0.5 }`. */
  forecast?: { alpha?: number; beta?: number };
  /** Where metrics go. Default: the provider given to `pilot()`, else the global one. */
  meterProvider?: MeterProvider;
}

/** `sql.stats().adaptive`. */
export interface AdaptiveStats {
  algorithm: string;
  lanes: Record<string, AdaptiveLaneStats>;
}

/** The adaptive interceptor, with what other interceptors and callers may ask it. */
export interface AdaptiveInterceptor extends Interceptor {
  readonly name: "adaptive";
  /** Operations waiting for a permit on `lane`. */
  pending(lane: string): number;
  /** Current limit (permits) of `lane`. */
  limit(lane: string): number;
  /** Operations holding a permit on `lane`. */
  inFlight(lane: string): number;
  /** False while `lane` is saturated (its queue is full or as long as its limit). */
  laneAvailable(lane: string): boolean;
  /**
   * Open connections on `lane` now by running up to `connections` concurrent `select 1` probes
   * on free permits. Resolves with how many probes ran.
   */
  prewarm(lane: string, connections: number): Promise<number>;
  /** Listen to limit changes; returns a handle whose `dispose()` stops listening. */
  onLimitChange(listener: (change: LimitChange) => void): Subscription;
  stats(): AdaptiveStats;
  health(): HealthReport;
}

/**
 * Adaptive concurrency in front of each lane's pool.
 *
 * - In flight never exceeds the lane's limit, which stays in [`min`, `max`]; `max` defaults to
 *   the lane's postgres.js `max`, or pipelined (`pipelineDepth` > 0), to the reservable
 *   connections × `pipelineDepth`.
 * - With `pipelineDepth` > 0, plain statements are pipelined onto a few reserved connections,
 *   at most `pipelineDepth` each; transactions, reservations and cursors use the pool.
 * - Callers beyond the limit wait in a FIFO queue: `PoolTimeoutError` after `queueTimeoutMs`,
 *   `PoolSaturatedError` at once when `maxQueue` are already waiting; an aborted operation
 *   (deadline, caller's signal, `query.cancel()`) leaves the queue with its abort reason.
 * - A transaction or reservation holds one permit for its whole life; its queries pass.
 * - Put it last in the chain, so deadlines and retries wrap the queue wait.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { pilot, adaptive } from "pgpilot";
 *
 * const sql = pilot(postgres(url, { max: 25 }), {
 *   interceptors: [adaptive({ min: 5, queueTimeoutMs: 5_000, maxQueue: 500 })],
 * });
 * sql.stats().adaptive.lanes.primary.limit;
 * ```
 */
export function adaptive(options?: AdaptiveOptions): AdaptiveInterceptor {
  const config = parseOptions("adaptive", OPTIONS, options);
  if (config.min !== undefined && config.max !== undefined && config.min > config.max) {
    throw new ConfigError("adaptive", [{ path: "min", message: `must be <= max (${config.max}) (got ${config.min})` }]);
  }
  const horizonSteps = Math.max(1, Math.round(config.horizonMs / config.intervalMs));
  const lanes = new Map<string, AdaptiveLane>();
  const listeners = new Listeners<LimitChange>("adaptive.onLimitChange");
  let context: PilotContext | undefined;
  let counters: AdaptiveCounters | undefined;
  let stopMonitor: (() => void) | undefined;

  const emit = (change: LimitChange) => {
    listeners.emit(change);
  };

  const strategy = strategyOf(config.algorithm);

  function createLane(name: string): AdaptiveLane {
    const info = context?.lanes.get(name);
    const poolMax = info?.max ?? config.max ?? 10;
    // A fifth of the pool (at least one connection) stays free for transactions, reservations
    // and cursors, which need a pool connection of their own.
    const maxConnections = poolMax - Math.max(1, Math.ceil(poolMax / 5));
    const pipeline = config.pipelineDepth > 0 && maxConnections > 0 && info?.reserve !== undefined
      ? new Pipeline({
        lane: name,
        depth: config.pipelineDepth,
        poolMax,
        maxConnections,
        reserve: info.reserve,
        fallback: poolSendOf(info),
      })
      : undefined;
    // Without pipelining each operation in flight holds a connection; with it, `depth` queries
    // share one, so as many more may be in flight.
    const ceiling = pipeline === undefined ? poolMax : Math.max(poolMax, maxConnections * config.pipelineDepth);
    const max = Math.min(config.max ?? ceiling, ceiling);
    const min = Math.min(config.min ?? 1, max);
    const lane = new AdaptiveLane({
      name,
      attributes: { [ATTR.POOL_NAME]: context?.name ?? "default", [ATTR.LANE]: name },
      min,
      max,
      poolMax,
      initial: config.initial ?? max,
      queueTimeoutMs: config.queueTimeoutMs,
      maxQueue: config.maxQueue,
      windowMs: config.windowMs,
      algorithm: strategy.create(),
      intervalMs: config.intervalMs,
      horizonSteps,
      forecast: { alpha: config.forecast.alpha, beta: config.forecast.beta },
      targetUtilization: config.targetUtilization,
      prewarm: config.prewarm,
      probe: info?.probe,
      pipeline,
      counters,
      onLimitChange: emit,
    });
    lanes.set(name, lane);
    return lane;
  }

  const laneOf = (name: string): AdaptiveLane => lanes.get(name) ?? createLane(name);

  const pending = (lane: string): number => lanes.get(lane)?.limiter.pending ?? 0;
  const laneAvailable = (lane: string): boolean => !(lanes.get(lane)?.saturated ?? false);

  const interceptor: AdaptiveInterceptor = {
    name: "adaptive",
    stage: "limit",
    provides: { queueDepth: pending, laneAvailable },

    attach(pilotContext: PilotContext): void {
      context = pilotContext;
      counters = adaptiveInstruments(pgpilotMeter(config.meterProvider ?? pilotContext.meterProvider), () => lanes.values());
      for (const name of pilotContext.lanes.keys()) createLane(name);
      stopMonitor = everyInterval(config.intervalMs, (lagMs) => {
        const now = performance.now();
        for (const lane of lanes.values()) {
          // A timer callback that throws would be an uncaught exception: report it instead.
          try {
            lane.tick(now, lagMs);
          } catch (error) {
            reportHookError("adaptive.monitor", error);
          }
        }
      });
    },

    intercept(op: Operation, next: Next): Promise<unknown> {
      // Children run on the connection their transaction or reservation holds a permit for;
      // LISTEN runs on postgres.js's own dedicated connection, outside the pool.
      if (op.parent !== undefined || op.kind === "listen") return next();
      const lane = lanes.get(op.lane) ?? laneOf(op.lane);
      lane.load.arrivals++;
      if (lane.limiter.tryAcquire()) return lane.run(op, next);
      return lane.limiter.acquire(abortSource(op)).then(() => lane.run(op, next));
    },

    pending,
    limit: (lane) => lanes.get(lane)?.limiter.limit ?? context?.lanes.get(lane)?.max ?? 0,
    inFlight: (lane) => lanes.get(lane)?.limiter.inFlight ?? 0,
    laneAvailable,
    prewarm: (lane, connections) => laneOf(lane).prewarm(connections),

    onLimitChange: (listener) => listeners.add(listener),

    stats(): AdaptiveStats {
      const stats: AdaptiveStats = { algorithm: strategy.name, lanes: {} };
      for (const lane of lanes.values()) stats.lanes[lane.name] = lane.stats();
      return stats;
    },

    health(): HealthReport {
      const reasons: string[] = [];
      for (const lane of lanes.values()) {
        if (lane.saturated) {
          reasons.push(`lane "${lane.name}" saturated: ${lane.limiter.pending} waiting for ${lane.limiter.limit} permits`);
        } else if (lane.recentlyRefused > 0) {
          reasons.push(`lane "${lane.name}" refused ${lane.recentlyRefused} calls (queue timeout or full) recently`);
        }
      }
      return reasons.length === 0
        ? { status: "healthy", score: 1 }
        : { status: "degraded", score: 0.5, reasons };
    },

    async close(): Promise<void> {
      stopMonitor?.();
      const released: Promise<void>[] = [];
      for (const lane of lanes.values()) {
        lane.limiter.drain(closedError());
        released.push(lane.closePipeline());
      }
      // Reserved connections go back to the pool as their queries settle; only then can
      // postgres.js's end() close them (pilot bounds this wait by close()'s timeout).
      await Promise.all(released);
    },
  };
  return interceptor;
}

/**
 * What can abort a waiting operation (a deadline, the caller's signal or `query.cancel()`, its
 * transaction), told through `op.onAbort()`: no `AbortController` per queued operation.
 */
function abortSource(op: Operation): AbortSource {
  return {
    get aborted() {
      return op.aborted;
    },
    get reason() {
      return op.abortReason;
    },
    subscribe: (listener) => op.onAbort(listener),
  };
}

function closedError(): PilotError {
  return new PilotError("CLOSED", "pilot closed while the operation waited for a connection");
}

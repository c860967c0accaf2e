/**
 * `affinity()`: routes each operation to a lane by what it is — writes and transactions to the
 * primary, reads to the read lanes, learned-slow patterns to the slow (analytics) lane, reads of
 * recently written tables back to the primary. The rules are in lib/interceptors/affinity/router.ts.
 *
 * @module
 */
import type { Counter } from "@opentelemetry/api";
import { Listeners, type Subscription } from "../../shared/listeners.ts";
import type { HealthReport, Interceptor, Next, PilotContext } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { type AffinityOptions, checkLanes, resolveAffinityOptions } from "./options.ts";
import { type PatternChange, type PatternEvidence, PatternTracker } from "./patterns.ts";
import { RecentWrites } from "./recent-writes.ts";
import { ROUTING_REASONS, type Route, Router, type RoutingReason } from "./router.ts";
import { type TouchedTables, touchedTables } from "./tables.ts";
import { ATTR, AFFINITY_METRIC } from "../../telemetry/names.ts";

export { AFFINITY_METRIC } from "../../telemetry/names.ts";
import { pgpilotMeter } from "../../telemetry/otel.ts";
import { connectionOf } from "../../core/dispatch.ts";
import { reportHookError } from "../../shared/diag.ts";

export type { AffinityOptions } from "./options.ts";
export type { PatternChange, PatternEvidence, PatternState } from "./patterns.ts";
export type { RoutingReason } from "./router.ts";


/**
 * The metric attribute that carries the routing reason.
 *
 * @example
 * ```ts
 * // Prometheus: sum by (pgpilot_affinity_reason) (rate(pgpilot_affinity_routed_total[5m]))
 * AFFINITY_REASON_ATTRIBUTE; // "pgpilot.affinity.reason"
 * ```
 */
export const AFFINITY_REASON_ATTRIBUTE: typeof ATTR.AFFINITY_REASON = ATTR.AFFINITY_REASON;

/** `sql.stats().affinity`. */
export interface AffinityStats {
  primary: string;
  reads: string[];
  slow: string | undefined;
  /** Root operations routed. */
  routed: number;
  /** Routed operations by lane and reason (lanes with none are omitted). */
  byLane: Record<string, Partial<Record<RoutingReason, number>>>;
  /** Share of routed operations that got the lane their rule wanted (misses are fallbacks); null before any. */
  hitRate: number | null;
  /** Operations that fell back because the lane their rule wanted was unavailable. */
  fallbacks: number;
  /** Share of read-only root queries served off the primary lane; null before any. */
  readOffload: number | null;
  /** Operations routed and not settled, per lane. */
  outstanding: Record<string, number>;
  /** Learned affinity: thresholds, and the evidence for each slow pattern. */
  patterns: {
    slowMs: number;
    recoverMs: number;
    minSamples: number;
    tracked: number;
    slowCount: number;
    slow: PatternEvidence[];
    /** The most recently evaluated fast patterns (up to 10). */
    recentFast: PatternEvidence[];
  };
  readYourWrites: { windowMs: number; tablesInWindow: number; everyTableInWindow: boolean };
}

/** The `affinity()` interceptor. */
export interface AffinityInterceptor extends Interceptor {
  readonly name: "affinity";
  stats(): AffinityStats;
  health(): HealthReport;
  /** Listen for learned patterns moving between fast and slow. */
  onPatternChange(listener: (change: PatternChange) => void): Subscription;
}

/**
 * Connection affinity: routes each operation to a lane.
 *
 * - Writes, transactions, `reserve()`, `listen()` and anything not provably read-only → primary.
 * - Read-only queries → the `reads` lanes, least outstanding requests first; when every read lane is
 *   unavailable (breaker open, limiter saturated) → primary, counted as `fallback`.
 * - Learned affinity: a pattern (fingerprint) whose p95 over a window of `minSamples` executions
 *   exceeds `slowMs` goes to the `slow` lane; it comes back only when a window's p95 falls below
 *   `recoverMs` (default `slowMs / 2`).
 * - Read-your-writes: for `readYourWritesMs` after a write to a table (a transaction's writes count
 *   when it settles), reads touching that table go to the primary.
 * - `sql.lane(name)`, `sql.with({ lane })` and a `pgpilot:lane=NAME` comment always win.
 *
 * Place it before the per-lane interceptors (deadline, retry, breaker, adaptive) so they act on the
 * chosen lane: `[tracing(), monitor(), affinity(), deadline(), retry(), breaker(), adaptive()]`.
 * One instance belongs to one `pilot()`.
 *
 * @example
 * ```ts
 * const sql = pilot({
 *   primary: postgres(PRIMARY_URL, { max: 16 }),
 *   replica: postgres(REPLICA_URL, { max: 16 }),
 *   analytics: postgres(PRIMARY_URL, { max: 3 }),
 * }, { interceptors: [monitor(), affinity({ reads: "replica", slow: "analytics", slowMs: 300 }), breaker()] });
 * await sql`select * from users where id = ${1}`;   // → replica
 * await sql`update users set seen = now() where id = ${1}`;   // → primary
 * sql.stats().affinity.hitRate;
 * ```
 */
export function affinity(options?: AffinityOptions): AffinityInterceptor {
  const config = resolveAffinityOptions(options);
  const listeners = new Listeners<PatternChange>("affinity.onPatternChange");
  const patterns = new PatternTracker({
    slowMs: config.slowMs,
    recoverMs: config.recoverMs,
    minSamples: config.minSamples,
    maxPatterns: config.maxPatterns,
    onChange: (change) => {
      listeners.emit(change);
    },
  });
  const recentWrites = new RecentWrites({ windowMs: config.readYourWritesMs, maxTables: config.maxWrittenTables });
  // Writes inside a transaction or reservation, marked when it settles.
  const pendingWrites = new WeakMap<Operation, Set<TouchedTables>>();
  let router: Router | undefined;
  let routedCounter: Counter | undefined;
  let learning = false;
  let readsRouted = 0;
  let readsOffPrimary = 0;

  // When each connection (postgres.js's per-connection `backend` object) last settled a query.
  const lastSettled = new WeakMap<object, number>();

  /**
   * The query's own time. From when it reached postgres.js (`dispatchedAt`): time queued in
   * pgpilot (adaptive) is the pool's load, not the pattern's cost. And when postgres.js pipelined
   * it onto a busy connection, from when the query ahead of it on that connection settled: a
   * fast query behind an analytic one would otherwise look slow itself.
   */
  function ownDuration(op: Operation, now: number): number {
    const connection = connectionOf(op);
    if (connection === undefined) return now - op.dispatchedAt;
    const previous = lastSettled.get(connection);
    lastSettled.set(connection, now);
    return now - (previous !== undefined && previous > op.dispatchedAt ? previous : op.dispatchedAt);
  }

  function settleRoot(op: Operation): void {
    if (op.kind === "query") {
      if (!op.dispatched) return;
      if (learning) {
        const duration = ownDuration(op, performance.now());
        if (op.readOnly) patterns.record(op.fingerprint, op.command, op.collection, duration);
      }
      if (!op.readOnly) recentWrites.mark(touchedTables(op.analysis));
      return;
    }
    const pending = pendingWrites.get(op);
    if (pending === undefined) return;
    pendingWrites.delete(op);
    for (const tables of pending) recentWrites.mark(tables);
  }

  function noteChildWrite(op: Operation): void {
    if (!op.dispatched) return;
    const parent = op.parent!;
    const tables = touchedTables(op.analysis);
    let pending = pendingWrites.get(parent);
    if (pending === undefined) pendingWrites.set(parent, (pending = new Set()));
    pending.add(tables);
    // A reserved connection autocommits each statement: its writes are visible now.
    if (parent.kind === "reserve") recentWrites.mark(tables);
  }

  function count(route: Route): void {
    route.count++;
    try {
      routedCounter?.add(1, route.attributes);
    } catch (error) {
      reportHookError("affinity.routed", error);
    }
  }

  const self: AffinityInterceptor = {
    name: "affinity",
    stage: "route",

    attach(context: PilotContext): void {
      const { reads, slow } = checkLanes(config, context.lanes, context.primaryLane);
      router = new Router({
        lanes: context.lanes,
        primary: context.primaryLane,
        reads,
        slow,
        patterns,
        recentWrites,
        available: (lane) => context.capabilities.laneAvailable(lane),
        attributes: { [ATTR.POOL_NAME]: context.name },
      });
      learning = slow !== undefined;
      try {
        const meter = pgpilotMeter(config.meterProvider ?? context.meterProvider);
        routedCounter = meter.createCounter(AFFINITY_METRIC.ROUTED, {
          description: "Operations routed to a lane, by lane and reason",
          unit: "{operation}",
        });
        const gauge = meter.createObservableGauge(AFFINITY_METRIC.SLOW_PATTERNS, {
          description: "Query patterns currently learned as slow (routed to the slow lane)",
          unit: "{pattern}",
        });
        const gaugeAttributes = { [ATTR.POOL_NAME]: context.name };
        gauge.addCallback((result) => result.observe(patterns.size.slow, gaugeAttributes));
      } catch (error) {
        reportHookError("affinity.meter", error);
      }
    },

    async intercept(op: Operation, next: Next): Promise<unknown> {
      if (op.parent !== undefined) {
        // Children run on their parent's lane; only their writes matter (read-your-writes).
        if (op.readOnly) return next();
        try {
          return await next();
        } finally {
          noteChildWrite(op);
        }
      }
      if (router === undefined) return next(); // not attached: used outside pilot()
      const route = router.route(op);
      const lane = route.lane;
      op.lane = lane.name;
      count(route);
      if (op.kind === "query" && op.readOnly) {
        readsRouted++;
        if (lane !== router.primary) readsOffPrimary++;
      }
      lane.outstanding++;
      try {
        return await next();
      } finally {
        lane.outstanding--;
        settleRoot(op);
      }
    },

    stats(): AffinityStats {
      const byLane: AffinityStats["byLane"] = {};
      const outstanding: Record<string, number> = {};
      let routed = 0;
      let fallbacks = 0;
      for (const lane of router?.lanes.values() ?? []) {
        outstanding[lane.name] = lane.outstanding;
        for (const reason of ROUTING_REASONS) {
          const n = lane.routes[reason].count;
          if (n === 0) continue;
          (byLane[lane.name] ??= {})[reason] = n;
          routed += n;
          if (reason === "fallback") fallbacks += n;
        }
      }
      const evidence = patterns.evidence(10);
      const size = patterns.size;
      const writes = recentWrites.snapshot();
      return {
        primary: router?.primary.name ?? "",
        reads: router?.reads.map((lane) => lane.name) ?? [],
        slow: router?.slow?.name,
        routed,
        byLane,
        hitRate: routed === 0 ? null : (routed - fallbacks) / routed,
        fallbacks,
        readOffload: readsRouted === 0 ? null : readsOffPrimary / readsRouted,
        outstanding,
        patterns: {
          slowMs: config.slowMs,
          recoverMs: config.recoverMs,
          minSamples: config.minSamples,
          tracked: size.tracked,
          slowCount: size.slow,
          slow: evidence.slow,
          recentFast: evidence.fast,
        },
        readYourWrites: {
          windowMs: config.readYourWritesMs,
          tablesInWindow: writes.tables,
          everyTableInWindow: writes.everything,
        },
      };
    },

    health(): HealthReport {
      if (router === undefined || router.anyReadLaneAvailable()) return { status: "healthy", score: 1 };
      return {
        status: "degraded",
        score: 0.5,
        reasons: ["every read lane is unavailable: reads are served by the primary"],
        details: { reads: router.reads.map((lane) => lane.name) },
      };
    },

    onPatternChange: (listener) => listeners.add(listener),
  };
  return self;
}

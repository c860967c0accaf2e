/**
 * The interceptor contract: what a link of the chain is, what pilot tells it when it is
 * attached, and what it may offer the other links (its capabilities).
 *
 * @module
 */
import type { MeterProvider, TracerProvider } from "@opentelemetry/api";
import type { ReservedSql } from "postgres";
import type { Operation } from "./operation.ts";

/** Runs the rest of the chain and, at its end, the operation itself. */
export type Next = () => Promise<unknown>;

/** Health vote of one interceptor. */
export type HealthStatus = "healthy" | "degraded" | "failed";

/** What an interceptor says about health; `sql.health()` combines them (worst wins). */
export interface HealthReport {
  status: HealthStatus;
  /** 0 (down) … 1 (perfect). */
  score?: number;
  /** Human-readable reasons for anything but healthy. */
  reasons?: string[];
  /** Extra facts shown under the interceptor's name. */
  details?: Record<string, unknown>;
}

/**
 * A link of the chain. `intercept` must call `next()` at most once — again only after an
 * earlier call rejected (that is how `retry()` works) — and return what it returns, or reject.
 *
 * @example
 * ```ts
 * const timing: Interceptor = {
 *   name: "timing",
 *   async intercept(op, next) {
 *     const start = performance.now();
 *     try { return await next(); }
 *     finally { console.log(op.command, performance.now() - start); }
 *   },
 * };
 * const sql = pilot(postgres(url), { interceptors: [timing] });
 * ```
 */
export interface Interceptor {
  readonly name: string;
  intercept(op: Operation, next: Next): Promise<unknown>;
  /** Its section of `sql.stats()`. */
  stats?(): unknown;
  /** Its vote in `sql.health()`. */
  health?(): HealthReport;
  /**
   * Called once when the pilot is created, with what it needs to know about the lanes and what
   * the other interceptors of the chain provide. An interceptor belongs to one pilot.
   */
  attach?(context: PilotContext): void;
  /** What this interceptor offers the others of its chain (handed over through `PilotContext`). */
  readonly provides?: Capabilities;
  /**
   * Where it belongs in the chain, for the order check at attach: pilot warns (OTel `diag`)
   * when an interceptor of a later stage comes before one of an earlier stage — for example
   * `monitor()` after `adaptive()` would not see the queue wait. Stages, outermost first:
   * `observe`, `route`, `budget`, `retry`, `admit`, `limit`.
   */
  readonly stage?: Stage;
  /** Set by interceptors that call `next()` again after it rejected (retry). */
  readonly retries?: boolean;
  /** Release timers and listeners. */
  close?(): Promise<void>;
}

/** Where an interceptor belongs in the chain, outermost first (see `Interceptor.stage`). */
export type Stage = "observe" | "route" | "budget" | "retry" | "admit" | "limit";

/** The stages in chain order (outermost first). */
export const STAGES: readonly Stage[] = ["observe", "route", "budget", "retry", "admit", "limit"];

/**
 * What one interceptor offers the others. pilot collects them at attach and hands the combined
 * view to every interceptor as `PilotContext.capabilities`; interceptors never look each other up.
 *
 * @example
 * ```ts
 * const gate: Interceptor = {
 *   name: "maintenance",
 *   provides: { laneAvailable: (lane) => lane !== "replica" || !maintenanceWindow() },
 *   intercept: (op, next) => next(),
 * };
 * ```
 */
export interface Capabilities {
  /** Operations waiting in this interceptor's queue for `lane` (adaptive). */
  queueDepth?(lane: string): number;
  /** The threshold (ms) above which an operation is a slow query (monitor). */
  readonly slowQueryMs?: number;
  /**
   * Whether `lane` should get new work now (false while its breaker is open or its limiter is
   * saturated). Routing (affinity) and retry ask before they pick a lane or try again.
   */
  laneAvailable?(lane: string): boolean;
}

/** The combined capabilities of the other interceptors of a chain, as one interceptor sees them. */
export interface ChainCapabilities {
  /** Operations waiting in the chain's queues for `lane` (0 when nothing queues). */
  queueDepth(lane: string): number;
  /** Whether some interceptor queues operations (so `queueDepth` means something). */
  readonly queues: boolean;
  /** The chain's slow-query threshold (ms), when an interceptor defines one. */
  readonly slowQueryMs: number | undefined;
  /** False when any other interceptor says `lane` should get no new work now. */
  laneAvailable(lane: string): boolean;
}

/** A lane as interceptors see it. */
export interface LaneInfo {
  readonly name: string;
  /** postgres.js `max` of the lane. */
  readonly max: number;
  /** `host:port` of the first host, for `server.address` / `server.port`. */
  readonly host: string;
  readonly port: number;
  /** Database name (`db.namespace`). */
  readonly database: string;
  /** Run `select 1` on this lane, bypassing the chain (used by breaker probes and pre-warming). */
  probe(): Promise<void>;
  /**
   * Run `select 1` on a fresh connection of its own (not the lane's pool), giving up after
   * `timeoutMs`; used by breaker probes, so a pool left unable to write after a server restart
   * cannot keep a circuit open. Optional so hand-made lanes (tests) need not have it.
   */
  ping?(timeoutMs: number): Promise<void>;
  /**
   * Reserve one connection of this lane's pool (postgres.js `sql.reserve()`), bypassing the
   * chain; the caller must `release()` it. `adaptive()` pipelines queries onto such connections
   * (without it, a lane is not pipelined). Optional so hand-made lanes (tests) need not have it.
   */
  reserve?(): Promise<ReservedSql<any>>;
}

/** What `pilot()` tells interceptors when it attaches them. */
export interface PilotContext {
  /** Pool name (`db.client.connection.pool.name`). */
  readonly name: string;
  readonly lanes: ReadonlyMap<string, LaneInfo>;
  /** The lane operations go to unless routed elsewhere. */
  readonly primaryLane: string;
  /** What the other interceptors of the chain provide (queue depth, slow-query threshold, lane availability). */
  readonly capabilities: ChainCapabilities;
  /** The meter provider given to `pilot()`; an interceptor's own `meterProvider` option wins. */
  readonly meterProvider: MeterProvider | undefined;
  /** The tracer provider given to `pilot()`; an interceptor's own `tracerProvider` option wins. */
  readonly tracerProvider: TracerProvider | undefined;
}

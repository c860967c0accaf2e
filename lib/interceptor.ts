/**
 * The interceptor contract (DESIGN §2).
 *
 * @module
 */
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
  /** Called once when the pilot is created, with what it needs to know about the lanes. */
  attach?(context: PilotContext): void;
  /**
   * Whether a lane should get new work now (false while its breaker is open or its limiter is
   * saturated). Routing (affinity) asks every interceptor that has this before it picks a lane.
   */
  laneAvailable?(lane: string): boolean;
  /** Set by interceptors that call `next()` again after it rejected (retry). */
  readonly retries?: boolean;
  /** Release timers and listeners. */
  close?(): Promise<void>;
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
  /** The other interceptors of the same chain, by name (affinity reads monitor and breaker). */
  readonly interceptors: ReadonlyMap<string, Interceptor>;
}

/**
 * One lane's adaptive state: its limiter, the sampling window that feeds the limit algorithm,
 * the load monitor's counters, the forecaster and the pre-warmer.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";
import { classify } from "../../shared/classify.ts";
import type { Next } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { reportHookError } from "../../shared/diag.ts";
import { clamp } from "./algorithm.ts";
import { HoltForecaster } from "./forecast.ts";
import { Limiter } from "./limiter.ts";
import { LoadWindow, type LoadSnapshot } from "./load-monitor.ts";
import { sendOf, sendThrough, sentQuery } from "../../core/dispatch.ts";
import { pipelinable } from "../../pipeline/eligibility.ts";
import { isPipelineSend, type ReservedConnection } from "../../pipeline/pipeline.ts";
import type { AdaptiveLaneStats, LaneSettings } from "./lane-types.ts";

export type { AdaptiveLaneStats, LaneSettings, LimitChange } from "./lane-types.ts";
import type { LaneGauges } from "./metrics.ts";
import { planPrewarm, type PrewarmPlan, WarmTracker } from "./prewarm.ts";

/** Windows need this many query samples before the algorithm hears about them. */
const MIN_WINDOW_SAMPLES = 10;
/** Remember peak concurrency this long when estimating open connections (ms). */
const WARM_MEMORY_MS = 60_000;

/**
 * The adaptive state of one lane.
 *
 * @example
 * ```ts
 * const lane = new AdaptiveLane(settings);
 * if (lane.limiter.tryAcquire()) await lane.run(op, next);
 * ```
 */
export class AdaptiveLane implements LaneGauges {
  readonly name: string;
  readonly attributes: Attributes;
  readonly limiter: Limiter;
  readonly load: LoadWindow;
  readonly #settings: LaneSettings;
  readonly #forecaster: HoltForecaster;
  readonly #warm: WarmTracker;
  #estimate: number;
  #up = 0;
  #down = 0;
  #timeouts = 0;
  #shed = 0;
  #aborted = 0;
  #refusedThisInterval = 0;
  #refusedLastInterval = 0;
  #probes = 0;
  #probeFailures = 0;
  #snapshot: LoadSnapshot | undefined;
  #plan: PrewarmPlan = { needed: 0, target: 0, probes: 0 };
  // The algorithm's sampling window.
  #windowStart: number;
  #count = 0;
  #rttSum = 0;
  #minRtt = Infinity;
  #maxInFlight = 0;
  #drops = 0;
  #tickPeak = 0;
  #windows = 0;
  /** Operations in flight on pool connections while pipelining (transactions, cursors, …). */
  #pooled = 0;

  constructor(settings: LaneSettings) {
    this.#settings = settings;
    this.name = settings.name;
    this.attributes = settings.attributes;
    this.#estimate = clamp(settings.initial, settings.min, settings.max);
    const now = performance.now();
    this.#windowStart = now;
    this.load = new LoadWindow(now);
    this.#forecaster = new HoltForecaster({ ...settings.forecast, horizonSteps: settings.horizonSteps });
    this.#warm = new WarmTracker(Math.ceil(WARM_MEMORY_MS / settings.intervalMs));
    this.limiter = new Limiter({
      lane: settings.name,
      limit: Math.floor(this.#estimate),
      queueTimeoutMs: settings.queueTimeoutMs,
      maxQueue: settings.maxQueue,
      onGranted: (waited) => (this.load.waitedMs += waited),
      onGiveUp: (outcome, waited) => this.#gaveUp(outcome, waited),
    });
  }

  /**
   * Run the rest of the chain with the permit this operation holds; give it back when the
   * operation settles. Queries feed the algorithm's RTT window; transactions, reservations,
   * cursors and forEach (held for as long as the caller works) count toward concurrency only.
   */
  run(op: Operation, next: Next): Promise<unknown> {
    const start = performance.now();
    const inFlight = this.limiter.inFlight;
    this.load.admit(start, inFlight - 1);
    if (inFlight > this.#maxInFlight) this.#maxInFlight = inFlight;
    if (inFlight > this.#tickPeak) this.#tickPeak = inFlight;
    // Cursors and forEach stream rows for as long as the caller reads: not a round trip.
    const query = op.query;
    const sampled = op.kind === "query" && query !== undefined && query.cursorFn === undefined &&
      query.forEachFn === undefined;
    const pipeline = this.#settings.pipeline;
    let connection: ReservedConnection | undefined;
    let overflow = false;
    if (pipeline !== undefined) {
      if (pipelinable(op)) connection = pipeline.pick(inFlight, this.#pooled, start);
      if (connection !== undefined) sendThrough(op, connection.send);
      else if (pipelinable(op) && pipeline.poolSend !== undefined) {
        // No reserved connection took it: the pool, unnamed (see Pipeline.poolSend). Not
        // counted as pool work that keeps the pipeline from reserving: it moves to reserved
        // connections as soon as there are some.
        sendThrough(op, pipeline.poolSend);
        overflow = true;
      } else {
        // A retried operation may still point at the connection its last attempt used.
        if (isPipelineSend(sendOf(op))) sendThrough(op, undefined);
        if (++this.#pooled + pipeline.held > this.#settings.poolMax) pipeline.yieldOne();
      }
    }
    const pooled = pipeline !== undefined && connection === undefined && !overflow;
    let result: Promise<unknown>;
    try {
      result = next();
    } catch (error) {
      this.#settle(start, sampled, error, op, connection, pooled);
      throw error;
    }
    return result.then(
      (value) => (this.#settle(start, sampled, undefined, op, connection, pooled), value),
      (error) => {
        this.#settle(start, sampled, error, op, connection, pooled);
        throw error;
      },
    );
  }

  #settle(
    start: number,
    sampled: boolean,
    error: unknown,
    op: Operation,
    connection: ReservedConnection | undefined,
    pooled: boolean,
  ): void {
    const end = performance.now();
    const pipeline = this.#settings.pipeline;
    if (connection !== undefined) pipeline!.settle(connection, sentQuery(op), error, end);
    else if (pooled) this.#pooled--;
    const held = end - start;
    this.load.finish(end, this.limiter.inFlight, held, error === undefined);
    if (error !== undefined && classify(error) === "timeout") this.#drops++;
    if (sampled) {
      this.#count++;
      this.#rttSum += held;
      if (held < this.#minRtt) this.#minRtt = held;
    }
    this.limiter.release();
    if (end - this.#windowStart >= this.#settings.windowMs && (this.#count >= MIN_WINDOW_SAMPLES || this.#drops > 0)) {
      this.#closeWindow(end);
    }
  }

  /** Hand the window to the algorithm and apply the limit it returns, within [min, max]. */
  #closeWindow(now: number): void {
    const { algorithm, min, max } = this.#settings;
    let proposed: number;
    try {
      proposed = algorithm.next(this.#estimate, {
        rttMs: this.#count === 0 ? 0 : this.#rttSum / this.#count,
        minRttMs: this.#minRtt,
        maxInFlight: this.#maxInFlight,
        queued: this.limiter.pending,
        count: this.#count,
        drops: this.#drops,
      });
    } catch (error) {
      reportHookError(`adaptive.${algorithm.name}`, error);
      proposed = this.#estimate;
    }
    this.#windows++;
    this.#windowStart = now;
    this.#count = this.#drops = this.#rttSum = 0;
    this.#minRtt = Infinity;
    this.#maxInFlight = this.limiter.inFlight;
    if (!Number.isFinite(proposed)) return;
    this.#estimate = clamp(proposed, min, Math.max(min, Math.min(max, this.#ceiling())));
    this.#apply(Math.floor(this.#estimate));
  }

  /**
   * The highest limit statements allow now. Pipelined, a connection carries fewer queries
   * while statements are slow (the pipeline's effective depth), so the limit's ceiling follows:
   * reservable connections × effective depth, never under the pool size.
   */
  #ceiling(): number {
    const { pipeline, poolMax, max } = this.#settings;
    if (pipeline === undefined) return max;
    return Math.min(max, Math.max(poolMax, pipeline.maxConnections * pipeline.effectiveDepth));
  }

  #apply(limit: number): void {
    const previous = this.limiter.limit;
    if (limit === previous) return;
    const direction = limit > previous ? "up" : "down";
    if (direction === "up") this.#up++;
    else this.#down++;
    this.limiter.setLimit(limit);
    this.#settings.counters?.adjustment(this.attributes, direction);
    this.#settings.onLimitChange({ lane: this.name, previous, limit, direction });
  }

  #gaveUp(outcome: "timeout" | "shed" | "aborted", waited: number): void {
    this.load.waitedMs += waited;
    if (outcome === "aborted") {
      this.#aborted++;
      return;
    }
    this.#refusedThisInterval++;
    if (outcome === "timeout") this.#timeouts++;
    else this.#shed++;
    this.#settings.counters?.rejection(this.attributes, outcome === "timeout" ? "timeout" : "saturated");
  }

  /** The monitor's tick: close the load interval, update the forecast, pre-warm if needed. */
  tick(now: number, lagMs: number): void {
    const limiter = this.limiter;
    this.#snapshot = this.load.close(now, {
      limit: limiter.limit,
      inFlight: limiter.inFlight,
      queued: limiter.pending,
      lagMs,
    });
    this.#refusedLastInterval = this.#refusedThisInterval;
    this.#refusedThisInterval = 0;
    this.#forecaster.observe(this.#snapshot.arrivalRate);
    this.#warm.saw(this.#tickPeak);
    this.#warm.tick();
    this.#tickPeak = limiter.inFlight;
    const pipeline = this.#settings.pipeline;
    this.#plan = planPrewarm({
      forecastRate: this.#forecaster.forecast(),
      holdMs: this.#snapshot.latencyMs.mean,
      targetUtilization: this.#settings.targetUtilization,
      ceiling: this.#settings.poolMax,
      warm: this.#warm.value,
      // Probes above the pool size would only be pipelined onto busy connections.
      free: limiter.pending > 0 ? 0 : Math.min(limiter.limit, this.#settings.poolMax) - limiter.inFlight,
    });
    if (pipeline !== undefined) {
      // Pipelined, the forecast's concurrency needs `depth` times fewer connections: reserve them.
      const target = this.#settings.prewarm ? Math.ceil(this.#plan.target / pipeline.effectiveDepth) : 0;
      pipeline.tick(target, this.#pooled);
      const ceiling = Math.max(this.#settings.min, this.#ceiling());
      if (this.#estimate > ceiling) {
        this.#estimate = ceiling;
        this.#apply(ceiling);
      }
    } else if (this.#settings.prewarm && this.#plan.probes > 0) this.prewarm(this.#plan.probes);
  }

  /**
   * Run up to `count` concurrent `select 1` probes on free permits, so postgres.js opens
   * connections that are closed. Resolves when they settled; returns how many ran.
   */
  prewarm(count: number): Promise<number> {
    const probe = this.#settings.probe;
    if (probe === undefined) return Promise.resolve(0);
    const running: Promise<void>[] = [];
    const room = Math.min(count, this.#settings.poolMax - this.limiter.inFlight - (this.#settings.pipeline?.held ?? 0));
    for (let i = 0; i < room && this.limiter.tryAcquire(); i++) {
      if (this.limiter.inFlight > this.#tickPeak) this.#tickPeak = this.limiter.inFlight;
      running.push(
        probe().then(
          () => this.limiter.release(),
          () => (this.#probeFailures++, this.limiter.release()),
        ),
      );
    }
    if (running.length === 0) return Promise.resolve(0);
    this.#probes += running.length;
    this.#settings.counters?.probes(this.attributes, running.length);
    return Promise.all(running).then(() => running.length);
  }

  /** Release the reserved connections (each once its queries settled); reserve no more. */
  closePipeline(): Promise<void> {
    return this.#settings.pipeline?.close() ?? Promise.resolve();
  }

  /** A full queue, or as many waiting as the limit admits: new work should go elsewhere. */
  get saturated(): boolean {
    const pending = this.limiter.pending;
    return pending > 0 && (pending >= this.limiter.maxQueue || pending >= this.limiter.limit);
  }

  /** Calls refused (timeout or shed) in the last full monitor interval and the current one. */
  get recentlyRefused(): number {
    return this.#refusedLastInterval + this.#refusedThisInterval;
  }

  // The gauges (LaneGauges) metrics read at collection.
  limit = (): number => this.limiter.limit;
  queued = (): number => this.limiter.pending;
  loadFactor = (): number => this.#snapshot?.loadFactor ?? 0;
  arrivalRate = (): number => this.#snapshot?.arrivalRate ?? 0;
  forecast = (): number => this.#forecaster.forecast();
  neededConnections = (): number => this.#plan.needed;
  eventLoopLagMs = (): number => this.#snapshot?.eventLoopLagMs ?? 0;

  /** This lane's section of `stats()`. */
  stats(): AdaptiveLaneStats {
    const limiter = this.limiter;
    return {
      algorithm: this.#settings.algorithm.name,
      limit: limiter.limit,
      min: this.#settings.min,
      max: this.#settings.max,
      inFlight: limiter.inFlight,
      pending: limiter.pending,
      maxQueue: limiter.maxQueue,
      saturated: this.saturated,
      windows: this.#windows,
      adjustments: { up: this.#up, down: this.#down },
      rejected: { timeout: this.#timeouts, saturated: this.#shed, aborted: this.#aborted },
      load: this.#snapshot,
      forecast: {
        arrivalRate: this.#forecaster.forecast(),
        horizonMs: this.#settings.horizonSteps * this.#settings.intervalMs,
        neededConnections: this.#plan.needed,
        accuracy: this.#forecaster.accuracy(),
      },
      prewarm: {
        enabled: this.#settings.prewarm,
        probes: this.#probes,
        failures: this.#probeFailures,
        warmConnections: this.#warm.value,
      },
      pipeline: this.#settings.pipeline?.stats(),
    };
  }
}

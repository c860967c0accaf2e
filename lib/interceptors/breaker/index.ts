/**
 * `breaker()`: a multi-level circuit breaker, one circuit per lane.
 *
 * Each failure is classified (lib/shared/classify.ts); `connection`, `timeout`, `transaction` and
 * `resource` failures count against their own threshold within a sliding window, and all of them
 * together against a failure rate. `client` errors (syntax, constraint violations, pgpilot's own
 * rejections) never count: they are the caller's bug, not the database's health.
 *
 * While a lane's circuit is open, calls to it fail at once with `CircuitOpenError` — no network
 * I/O. After the recovery time, half-open admits `halfOpenRequests` probes (the breaker's own
 * `select 1` when `activeProbing` is on); that many successes close it, one failure re-opens it
 * for longer. A transaction or reservation counts once, as a whole; its inner queries pass
 * through. A call the caller aborted counts as nothing; one a deadline aborted counts as a timeout.
 *
 * @module
 */
import { classify } from "../../shared/classify.ts";
import { CircuitOpenError, isPilotError } from "../../shared/errors.ts";
import type { HealthReport, Next, PilotContext } from "../../core/interceptor.ts";
import { guardDispatch } from "../../core/dispatch.ts";
import { type Operation, OperationSlot } from "../../core/operation.ts";
import { reportHookError } from "../../shared/diag.ts";
import { pgpilotMeter } from "../../telemetry/otel.ts";
import { Circuit, type CircuitSnapshot, type CircuitTransition, REJECTED } from "./circuit.ts";
import { Listeners } from "../../shared/listeners.ts";
import { type BreakerConfig, type BreakerOptions, parseBreakerOptions } from "./options.ts";
import { ActiveProbe } from "./probe.ts";
import { describeCause, isDeadline } from "./reasons.ts";
import { BreakerTelemetry } from "./telemetry.ts";
import type { CountedCategory } from "../../shared/failure-window.ts";
import type { BreakerInterceptor, BreakerRejection, BreakerStats } from "./types.ts";

export type { BreakerOptions } from "./options.ts";
export type { CircuitSnapshot, CircuitStateName, CircuitTransition } from "./circuit.ts";
export type { Subscription } from "../../shared/listeners.ts";
export type { CountedCategory } from "../../shared/failure-window.ts";
export { BREAKER_ATTR, BREAKER_METRIC } from "./telemetry.ts";
export type { Breaker, BreakerInterceptor, BreakerRejection, BreakerStats, LaneBreakerStats } from "./types.ts";

/** The failure of an attempt, judged once the operation has made its last attempt. */
interface PendingVerdict {
  circuit: Circuit;
  ticket: number;
  /** Undefined once a later attempt (or a deadline) has decided the outcome instead. */
  category: CountedCategory | undefined;
  error: unknown;
}

/** The deferred verdict of an operation that retry() may run again (one logical call, one outcome). */
const PENDING = new OperationSlot<PendingVerdict | undefined>("breaker.pending", undefined);

interface Lane {
  readonly circuit: Circuit;
  probe: ActiveProbe | undefined;
  transitions: number;
  rejections: number;
}

/**
 * Create a circuit breaker. Put it inside `retry()` (each attempt asks the breaker, and a
 * rejection is never retried) and inside `deadline()` (so an expired deadline counts as a timeout).
 *
 * @example
 * ```ts
 * const sql = pilot(postgres(url), {
 *   interceptors: [deadline({ timeoutMs: 2_000 }), retry(), breaker({ recoveryMs: 5_000 })],
 * });
 * try { await sql`select 1`; } catch (error) {
 *   if (error instanceof CircuitOpenError) console.log(`back in ${error.retryAfterMs} ms`);
 * }
 * ```
 */
export function breaker(options?: BreakerOptions): BreakerInterceptor {
  const config: BreakerConfig = parseBreakerOptions(options);
  const lanes = new Map<string, Lane>();
  const stateChanges = new Listeners<CircuitTransition>("breaker.onStateChange");
  const rejections = new Listeners<BreakerRejection>("breaker.onReject");
  let context: PilotContext | undefined;
  let telemetry: BreakerTelemetry | undefined;
  let closed = false;

  function laneOf(name: string): Lane {
    let lane = lanes.get(name);
    if (lane !== undefined) return lane;
    const circuit = new Circuit(name, config, config.initialState[name]);
    const created: Lane = { circuit, probe: undefined, transitions: 0, rejections: 0 };
    circuit.onTransition = (transition) => {
      created.transitions++;
      if (transition.to === "open") created.probe?.schedule();
      telemetry?.transition(transition.lane, transition.to);
      stateChanges.emit(transition);
    };
    lanes.set(name, created);
    lane = created;
    probeLane(name, lane);
    return lane;
  }

  /** Give the lane its active probe once pilot has told us how to reach it. */
  function probeLane(name: string, lane: Lane): void {
    const info = context?.lanes.get(name);
    if (!config.activeProbing || info === undefined || lane.probe !== undefined || closed) return;
    const ping = info.ping?.bind(info);
    lane.probe = ping === undefined
      ? new ActiveProbe(lane.circuit, () => info.probe(), config.probeTimeoutMs)
      : new ActiveProbe(lane.circuit, ping, config.probeTimeoutMs, true);
    if (lane.circuit.state.name === "open") lane.probe.schedule();
  }

  function reject(lane: Lane): Promise<never> {
    return Promise.reject(rejection(lane));
  }

  /** Count a rejection and build its error. */
  function rejection(lane: Lane): CircuitOpenError {
    const circuit = lane.circuit;
    const state = circuit.state;
    // Rejected means not closed, so a category is there.
    const category = state.name === "closed" ? "connection" : state.category;
    const retryAfterMs = circuit.retryAfterMs();
    lane.rejections++;
    telemetry?.rejection(circuit.lane, category);
    if (!rejections.empty) {
      rejections.emit({ lane: circuit.lane, category, state: state.name === "open" ? "open" : "half-open", retryAfterMs });
    }
    const cause = state.name === "closed" ? undefined : state.cause;
    return new CircuitOpenError(circuit.lane, category, retryAfterMs, cause);
  }

  /** Record how a call admitted with `ticket` ended in error. */
  function failed(circuit: Circuit, ticket: number, op: Operation, error: unknown): void {
    if (op.aborted) {
      aborted(circuit, ticket, op);
      return;
    }
    // pgpilot's own rejections from further in (a full queue, …) say nothing about the server.
    if (isPilotError(error)) {
      circuit.release(ticket);
      return;
    }
    const category = classify(error);
    if (category === "client") circuit.success(ticket);
    else if (op.repeating) defer(circuit, ticket, op, category, error);
    else circuit.failure(ticket, category, error);
  }

  /**
   * One logical call is one outcome: a failed attempt of an operation that an outer interceptor
   * may run again (retry) is judged when the operation has made its last attempt, and only if
   * no later attempt replaced its verdict.
   */
  function defer(circuit: Circuit, ticket: number, op: Operation, category: CountedCategory, error: unknown): void {
    const verdict = PENDING.get(op);
    if (verdict === undefined) {
      const created: PendingVerdict = { circuit, ticket, category, error };
      PENDING.set(op, created);
      op.onAttemptsDone(() => {
        PENDING.set(op, undefined);
        if (created.category !== undefined) created.circuit.failure(created.ticket, created.category, created.error);
      });
      return;
    }
    verdict.circuit = circuit;
    verdict.ticket = ticket;
    verdict.category = category;
    verdict.error = error;
  }

  /** A later attempt (or a deadline) decides the operation's outcome: drop the deferred one. */
  function supersede(op: Operation): void {
    const verdict = PENDING.get(op);
    if (verdict !== undefined) verdict.category = undefined;
  }

  /**
   * The call was aborted: by a deadline (a timeout, if the call had reached the database) or by
   * the caller (no verdict).
   */
  function aborted(circuit: Circuit, ticket: number, op: Operation): void {
    // pilot marks transactions, reservations and queries alike once they reach postgres.js;
    // a deadline that expired while still queued in pgpilot says nothing about the database.
    supersede(op);
    if (op.dispatched && isDeadline(op.abortReason)) circuit.failure(ticket, "timeout", op.abortReason);
    else circuit.release(ticket);
  }

  /**
   * Run an admitted call and record how it ended. An abort (a deadline) is judged at once,
   * because a call into a black hole never settles by itself.
   */
  function watched(lane: Lane, ticket: number, op: Operation, next: Next): Promise<unknown> {
    const circuit = lane.circuit;
    let judged = false;
    const stopWatching = op.onAbort(() => {
      if (judged) return;
      judged = true;
      aborted(circuit, ticket, op);
    });
    return next().then(
      (value) => {
        stopWatching();
        supersede(op);
        if (!judged) circuit.success(ticket);
        judged = true;
        return value;
      },
      (error) => {
        stopWatching();
        if (!judged) failed(circuit, ticket, op, error);
        judged = true;
        throw error;
      },
    );
  }

  /**
   * Right before dispatch: a call admitted while the circuit was closed, whose lane's circuit
   * opened while it waited in pgpilot's queue, is rejected without I/O.
   */
  function gate(op: Operation): unknown {
    const lane = lanes.get(op.lane);
    return lane === undefined || lane.circuit.state.name !== "open" ? undefined : rejection(lane);
  }

  // Lanes named in a persisted state exist from the start, so state() and stats() show them.
  for (const name of Object.keys(config.initialState)) laneOf(name);

  // With active probing the breaker tests a recovering lane itself: routing keeps user calls
  // off it until the probes have closed the circuit, instead of letting them probe a lane
  // that may still be down. Without it, user calls are the probes.
  function laneAvailable(lane: string): boolean {
    const circuit = lanes.get(lane)?.circuit;
    if (circuit === undefined) return true;
    return config.activeProbing ? circuit.state.name === "closed" : circuit.available();
  }

  return {
    name: "breaker",
    stage: "admit",
    provides: { laneAvailable },

    attach(attached) {
      context = attached;
      try {
        telemetry = new BreakerTelemetry(pgpilotMeter(config.meterProvider ?? attached.meterProvider), attached.name, () => circuits());
      } catch (error) {
        reportHookError("breaker.metrics", error);
      }
      for (const name of attached.lanes.keys()) laneOf(name);
      for (const [name, lane] of lanes) probeLane(name, lane);
    },

    intercept(op, next) {
      // A transaction or reservation was admitted as a whole; its queries pass through —
      // except a reservation's, which are judged one by one (a reservation lasts as long as
      // its holder wants, and ORMs such as kysely run everything on one).
      if (op.parent !== undefined && !op.onReservation) return next();
      // Never refuse to end a transaction: the connection would stay inside it.
      if (op.parent !== undefined && (op.command === "ROLLBACK" || op.command === "ABORT")) return next();
      const lane = laneOf(op.lane);
      const circuit = lane.circuit;
      // Probes on fresh connections decide when the lane is back; user calls are not probes.
      if (lane.probe?.fresh === true && circuit.state.name !== "closed") return reject(lane);
      // Another attempt of one logical call (retry) keeps its admission while nothing changed.
      const earlier = op.repeating ? PENDING.get(op) : undefined;
      let ticket: number;
      if (earlier !== undefined && earlier.circuit === circuit && earlier.ticket === circuit.epoch && earlier.category !== undefined) {
        ticket = earlier.ticket;
        earlier.category = undefined;
      } else {
        if (earlier !== undefined) earlier.category = undefined;
        ticket = circuit.admit();
        if (ticket === REJECTED) return reject(lane);
      }
      guardDispatch(op, gate);
      return watched(lane, ticket, op, next);
    },

    onStateChange: (listener) => stateChanges.add(listener),
    onReject: (listener) => rejections.add(listener),

    state: (lane) => lanes.get(lane)?.circuit.state.name ?? "closed",

    laneAvailable,

    stats() {
      const result: BreakerStats = { lanes: {} };
      for (const [name, lane] of lanes) {
        const circuit = lane.circuit;
        const state = circuit.state;
        result.lanes[name] = {
          state: state.name,
          ...(state.name === "closed" ? {} : { category: state.category }),
          ...(state.name === "open" ? { retryAfterMs: Math.round(circuit.retryAfterMs()) } : {}),
          opens: state.name === "closed" ? 0 : state.opens,
          probes: circuit.probes,
          window: circuit.window(),
          transitions: lane.transitions,
          rejections: lane.rejections,
          activeProbes: { sent: lane.probe?.sent ?? 0, answered: lane.probe?.answered ?? 0 },
        };
      }
      return result;
    },

    health() {
      let status: HealthReport["status"] = "healthy";
      const reasons: string[] = [];
      const details: Record<string, unknown> = {};
      for (const [name, { circuit }] of lanes) {
        const state = circuit.state;
        details[name] = state.name;
        if (state.name === "open") {
          status = "failed";
          reasons.push(
            `lane "${name}" circuit open after ${state.category} failures${describeCause(state.cause)}; ` +
              `next probe in ${Math.round(circuit.retryAfterMs())} ms`,
          );
        } else if (state.name === "half-open") {
          if (status === "healthy") status = "degraded";
          reasons.push(`lane "${name}" circuit half-open: probing after ${state.category} failures${describeCause(state.cause)}`);
        }
      }
      return { status, score: status === "healthy" ? 1 : status === "degraded" ? 0.5 : 0, reasons, details };
    },

    toJSON() {
      const snapshot: Record<string, CircuitSnapshot> = {};
      for (const [name, { circuit }] of lanes) snapshot[name] = circuit.toJSON();
      return snapshot;
    },

    close() {
      closed = true;
      for (const lane of lanes.values()) lane.probe?.close();
      stateChanges.clear();
      rejections.clear();
      return Promise.resolve();
    },
  };

  function* circuits(): Iterable<Circuit> {
    for (const lane of lanes.values()) yield lane.circuit;
  }
}

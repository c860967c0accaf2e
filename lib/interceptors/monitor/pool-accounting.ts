/**
 * Pool accounting postgres.js does not expose (it has no pool-stats API): pgpilot counts the
 * work it hands to each lane and derives the `db.client.connection.*` figures from it.
 *
 * Definitions (per lane):
 * - in flight: root operations (queries outside transactions, open transactions, live
 *   reservations) that have entered the chain and not settled. Children of a transaction or a
 *   reservation run on its connection and are not counted again.
 * - pending: operations waiting in pgpilot's own queue, as reported by the chain's `queueDepth`
 *   capability (`adaptive()` provides it); 0 when there is no queue in the chain.
 * - used: in flight − pending, capped at the lane's `max`. postgres.js pipelines queries onto busy
 *   connections and queues the rest, so more than `max` operations can be "in flight" while at
 *   most `max` connections are busy; "used" is that busy-connection count. A transaction or a
 *   reservation holds one connection for its whole life and counts as one.
 * - idle: `max` − used: capacity not in use. postgres.js opens connections lazily and closes idle
 *   ones after `idle_timeout`, so this is spare capacity, not the number of open idle sockets.
 *
 * The lane an operation is counted on is read when the figures are read (`op.lane` at that
 * moment), so routing by `affinity()` after the operation entered the chain is respected.
 *
 * @module
 */
import type { LaneInfo } from "../../core/interceptor.ts";
import { type Operation, OperationSlot } from "../../core/operation.ts";

/** Operations waiting for admission on a lane, from a queue in front of the pool. */
export type QueueDepth = (lane: string) => number;

/**
 * Index of an operation in the in-flight list of the accounting that holds it, -1 when in none.
 * A slot, not a Set: hashing a fresh object per query costs about 2 µs in JavaScriptCore.
 */
const IN_FLIGHT = new OperationSlot<number>("monitor.inFlight", -1);

/** The pool figures of one lane. */
export interface LaneUsage {
  max: number;
  inFlight: number;
  used: number;
  idle: number;
  pending: number;
}

/**
 * Tracks root operations in flight and derives used / idle / pending per lane.
 *
 * @example
 * ```ts
 * const pool = new PoolAccounting(context.lanes);
 * pool.begin(op);
 * pool.usage().primary; // { max: 10, inFlight: 1, used: 1, idle: 9, pending: 0 }
 * pool.end(op);
 * ```
 */
export class PoolAccounting {
  // Root operations in flight: an array indexed by the IN_FLIGHT slot (O(1) add and swap-remove,
  // no hashing). An operation another accounting already holds goes to the fallback set.
  readonly #open: Operation[] = [];
  readonly #elsewhere = new Set<Operation>();
  readonly #lanes: ReadonlyMap<string, LaneInfo>;
  readonly #queue: QueueDepth | undefined;

  constructor(lanes: ReadonlyMap<string, LaneInfo>, queue?: QueueDepth) {
    this.#lanes = lanes;
    this.#queue = queue;
  }

  /** True when a queue in front of the pool reports its length (adaptive() is in the chain). */
  get hasQueue(): boolean {
    return this.#queue !== undefined;
  }

  /** A root operation entered the chain. */
  begin(op: Operation): void {
    if (IN_FLIGHT.get(op) !== -1) {
      this.#elsewhere.add(op);
      return;
    }
    IN_FLIGHT.set(op, this.#open.length);
    this.#open.push(op);
  }

  /** A root operation settled. */
  end(op: Operation): void {
    const slot = IN_FLIGHT.get(op);
    if (slot === -1 || this.#open[slot] !== op) {
      this.#elsewhere.delete(op);
      return;
    }
    const last = this.#open.pop()!;
    if (last !== op) {
      this.#open[slot] = last;
      IN_FLIGHT.set(last, slot);
    }
    IN_FLIGHT.set(op, -1);
  }

  /** Operations waiting in pgpilot's queue for `lane` (0 without one; never throws). */
  pending(lane: string): number {
    const queue = this.#queue;
    if (queue === undefined) return 0;
    try {
      const value = queue(lane);
      return Number.isFinite(value) && value > 0 ? value : 0;
    } catch {
      return 0;
    }
  }

  /** Current figures of every lane. */
  usage(): Record<string, LaneUsage> {
    const inFlight = new Map<string, number>();
    for (const op of this.#open) inFlight.set(op.lane, (inFlight.get(op.lane) ?? 0) + 1);
    for (const op of this.#elsewhere) inFlight.set(op.lane, (inFlight.get(op.lane) ?? 0) + 1);
    const usage: Record<string, LaneUsage> = {};
    for (const lane of this.#lanes.values()) {
      const flying = inFlight.get(lane.name) ?? 0;
      const pending = this.pending(lane.name);
      const used = Math.min(lane.max, Math.max(0, flying - pending));
      usage[lane.name] = { max: lane.max, inFlight: flying, used, idle: lane.max - used, pending };
    }
    return usage;
  }
}

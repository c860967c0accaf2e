/**
 * The routing decision of `affinity()`: which lane an operation goes to, and why.
 *
 * Order of the rules (first match wins):
 * 1. an explicit lane (`sql.lane()`, `sql.with({ lane })`, a valid `pgpilot:lane` comment) → that lane;
 * 2. anything that is not a provably read-only query (writes, transactions, reserve, listen) → primary;
 * 3. a learned-slow pattern → the slow lane (unless read-your-writes applies and the slow lane is
 *    not the primary's own server); while the slow lane is unavailable, an available read lane
 *    other than the primary (`fallback`), else still the slow lane — never the primary, whose
 *    protection from this load is the point of the slow lane;
 * 4. a read touching a recently written table → the primary (or a read lane on the primary's server);
 * 5. any other read → the least loaded available read lane.
 * When every read lane is unavailable (breaker open, limiter saturated), reads fall back to the
 * primary, counted as `fallback`.
 *
 * @module
 */
import type { LaneInfo } from "../../core/interceptor.ts";
import type { Operation } from "../../core/operation.ts";
import { ATTR } from "../../telemetry/names.ts";
import { type LaneLoad, LeastOutstanding } from "./balancer.ts";
import type { PatternTracker } from "./patterns.ts";
import type { RecentWrites } from "./recent-writes.ts";
import { touchedTables } from "./tables.ts";

/** Why an operation went to its lane (the `pgpilot.affinity.reason` attribute). */
export type RoutingReason = "write" | "read" | "slow-pattern" | "read-your-writes" | "fallback" | "override";

/**
 * Every routing reason, in the order stats() lists them.
 *
 * @example
 * ```ts
 * ROUTING_REASONS.includes("fallback"); // true
 * ```
 */
export const ROUTING_REASONS: readonly RoutingReason[] = Object.freeze([
  "write",
  "read",
  "slow-pattern",
  "read-your-writes",
  "fallback",
  "override",
]);

/** One (lane, reason) pair, allocated once so that routing allocates nothing. */
export interface Route {
  readonly lane: RoutedLane;
  readonly reason: RoutingReason;
  /** False for `fallback`: the operation did not get the lane its rule wanted. */
  readonly preferred: boolean;
  /** Operations routed this way. */
  count: number;
  /** Metric attributes, built once. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** A lane with the router's bookkeeping. */
export interface RoutedLane extends LaneLoad {
  /** Served by the primary's own server (same host, port and database): sees its writes at once. */
  readonly consistent: boolean;
  readonly routes: Readonly<Record<RoutingReason, Route>>;
}

/** What the router needs. */
export interface RouterParts {
  lanes: ReadonlyMap<string, LaneInfo>;
  primary: string;
  reads: readonly string[];
  slow: string | undefined;
  patterns: PatternTracker;
  recentWrites: RecentWrites;
  /** Whether a lane may take new work now (asks breaker, adaptive, …). */
  available: (lane: string) => boolean;
  /** Extra metric attributes (the pool name). */
  attributes: Readonly<Record<string, string>>;
}

/**
 * Decides lanes. Built in `attach()`, once the lanes are known.
 *
 * @example
 * ```ts
 * const router = new Router({ lanes, primary: "primary", reads: ["replica"], slow: "analytics",
 *   patterns, recentWrites, available: () => true, attributes: {} });
 * const route = router.route(op); // e.g. { lane: replica, reason: "read" }
 * ```
 */
export class Router {
  /** Every lane, by name. */
  readonly lanes: ReadonlyMap<string, RoutedLane>;
  readonly primary: RoutedLane;
  readonly reads: readonly RoutedLane[];
  readonly slow: RoutedLane | undefined;
  readonly #consistentReads: readonly RoutedLane[];
  readonly #patterns: PatternTracker;
  readonly #recentWrites: RecentWrites;
  readonly #balancer = new LeastOutstanding();
  readonly #isAvailable: (lane: RoutedLane) => boolean;

  constructor(parts: RouterParts) {
    const primaryInfo = parts.lanes.get(parts.primary)!;
    const lanes = new Map<string, RoutedLane>();
    for (const info of parts.lanes.values()) lanes.set(info.name, routedLane(info, primaryInfo, parts.attributes));
    this.lanes = lanes;
    this.primary = lanes.get(parts.primary)!;
    this.reads = parts.reads.map((name) => lanes.get(name)!);
    this.slow = parts.slow === undefined ? undefined : lanes.get(parts.slow);
    this.#consistentReads = this.reads.filter((lane) => lane.consistent);
    this.#patterns = parts.patterns;
    this.#recentWrites = parts.recentWrites;
    const available = parts.available;
    this.#isAvailable = (lane) => available(lane.name);
  }

  /** The route for a root operation (children run on their parent's lane and are not routed). */
  route(op: Operation): Route {
    const requested = op.requestedLane;
    if (requested !== undefined) {
      // An unknown lane in a comment hint is ignored (pilot already refused unknown scoped lanes).
      const lane = this.lanes.get(requested);
      if (lane !== undefined) return lane.routes.override;
    }
    if (op.kind !== "query" || !op.readOnly) return this.primary.routes.write;

    const recent = this.#recentWrites.touches(touchedTables(op.analysis));
    const slow = this.slow;
    if (slow !== undefined && this.#patterns.isSlow(op.fingerprint)) {
      if (recent && !slow.consistent) return this.primary.routes["read-your-writes"];
      if (this.#isAvailable(slow)) return slow.routes["slow-pattern"];
      // Never onto the primary: protecting it from this load is what the slow lane is for. A
      // replica may take it; else it waits (or is refused) on its own lane.
      const spare = recent ? undefined : this.#pickRead(false);
      return spare !== undefined && spare !== this.primary ? spare.routes.fallback : slow.routes["slow-pattern"];
    }
    if (recent) return (this.#pickRead(true) ?? this.primary).routes["read-your-writes"];
    if (this.reads.length === 0) return this.primary.routes.read;
    const lane = this.#pickRead(false);
    return lane === undefined ? this.primary.routes.fallback : lane.routes.read;
  }

  /** True when at least one read lane may take work (or there are none). */
  anyReadLaneAvailable(): boolean {
    return this.reads.length === 0 || this.reads.some(this.#isAvailable);
  }

  /** Whether the named lane may take new work now. */
  isAvailable(lane: RoutedLane): boolean {
    return this.#isAvailable(lane);
  }

  #pickRead(consistentOnly: boolean): RoutedLane | undefined {
    const candidates = consistentOnly ? this.#consistentReads : this.reads;
    return candidates.length === 0 ? undefined : this.#balancer.pick(candidates, this.#isAvailable);
  }
}

function routedLane(info: LaneInfo, primary: LaneInfo, attributes: Readonly<Record<string, string>>): RoutedLane {
  const routes = {} as Record<RoutingReason, Route>;
  const lane: RoutedLane = {
    name: info.name,
    max: Math.max(1, info.max),
    outstanding: 0,
    consistent: info === primary ||
      (info.host === primary.host && info.port === primary.port && info.database === primary.database),
    routes,
  };
  for (const reason of ROUTING_REASONS) {
    routes[reason] = {
      lane,
      reason,
      preferred: reason !== "fallback",
      count: 0,
      attributes: Object.freeze({ ...attributes, [ATTR.LANE]: info.name, [ATTR.AFFINITY_REASON]: reason }),
    };
  }
  return lane;
}

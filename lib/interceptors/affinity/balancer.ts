/**
 * Least-outstanding-requests balancing across several lanes that can serve the same operation
 * (read replicas). Outstanding work is what affinity itself routed and has not settled yet,
 * relative to each lane's pool size, so a replica with `max: 20` takes twice the share of one
 * with `max: 10`. Ties rotate, so equal idle replicas share the work evenly.
 *
 * @module
 */

/** A lane as the balancer sees it. */
export interface LaneLoad {
  readonly name: string;
  /** Pool size (postgres.js `max`), at least 1. */
  readonly max: number;
  /** Operations routed here and not settled yet. */
  outstanding: number;
}

/**
 * Picks among candidate lanes the one with the least outstanding work per connection.
 *
 * @example
 * ```ts
 * const balancer = new LeastOutstanding();
 * const lanes = [{ name: "a", max: 10, outstanding: 3 }, { name: "b", max: 10, outstanding: 1 }];
 * balancer.pick(lanes, () => true)?.name; // "b"
 * ```
 */
export class LeastOutstanding {
  #turn = 0;

  /** The least loaded lane for which `available` is true, or undefined when none is. */
  pick<L extends LaneLoad>(candidates: readonly L[], available: (lane: L) => boolean): L | undefined {
    const count = candidates.length;
    if (count === 1) return available(candidates[0]!) ? candidates[0] : undefined;
    // Start at a rotating position so that ties go round-robin.
    const start = this.#turn = (this.#turn + 1) % count;
    let best: L | undefined;
    let bestLoad = Infinity;
    for (let offset = 0; offset < count; offset++) {
      const lane = candidates[(start + offset) % count]!;
      const load = lane.outstanding / lane.max;
      if (load < bestLoad && available(lane)) {
        best = lane;
        bestLoad = load;
      }
    }
    return best;
  }
}

/**
 * The load monitor: per-lane counters the hot path bumps, turned into a snapshot every
 * `intervalMs` (rates, utilization, latency percentiles, error rate, load factor), and a
 * runtime-agnostic event-loop lag probe (timer drift). No host CPU or memory sampling: the
 * application host's load says nothing about the database.
 *
 * @module
 */

/** What one monitor interval saw on a lane. */
export interface LoadSnapshot {
  /** Operations that arrived per second (admitted, queued or shed). */
  arrivalRate: number;
  /** Operations that finished per second (successes and failures). */
  completionRate: number;
  /** In flight when the interval ended. */
  inFlight: number;
  /** Queued when the interval ended. */
  queued: number;
  /** Time-averaged operations in flight over the interval. */
  meanInFlight: number;
  /** Time-averaged waiters over the interval (total wait time / interval). */
  meanQueued: number;
  /** `meanInFlight / limit`, 0…1. */
  utilization: number;
  /** Hold time of operations that finished (ms): a permit from grant to settle. */
  latencyMs: { mean: number; p50: number; p95: number };
  /** Failed / finished, 0…1. */
  errorRate: number;
  /** How late the monitor's own timer fired (ms): event-loop lag. */
  eventLoopLagMs: number;
  /** `min(1, (meanInFlight + max(meanQueued, queued)) / limit)`: demand over the current limit. */
  loadFactor: number;
}

/** Latency samples kept per interval; beyond this, the most recent ones. */
const RING = 1024;

/**
 * Counters of one lane for the current interval. The hot path only increments numbers and
 * writes one slot of a preallocated ring.
 *
 * @example
 * ```ts
 * const window = new LoadWindow(performance.now());
 * window.arrivals++;
 * window.admit(performance.now(), 0);
 * window.finish(performance.now(), 1, 3.2, true);
 * const snapshot = window.close(performance.now(), { limit: 10, queued: 0, lagMs: 0 });
 * ```
 */
export class LoadWindow {
  arrivals = 0;
  completions = 0;
  errors = 0;
  /** Total wait of waiters that left the queue in this interval (ms). */
  waitedMs = 0;
  #started: number;
  #lastChange: number;
  #area = 0;
  #holdSum = 0;
  readonly #ring = new Float64Array(RING);
  #ringCount = 0;
  #sorted = new Float64Array(RING);
  #lastLatency = { mean: 0, p50: 0, p95: 0 };

  constructor(now: number) {
    this.#started = now;
    this.#lastChange = now;
  }

  /** An operation got a permit at `now`; `inFlightBefore` were in flight until then. */
  admit(now: number, inFlightBefore: number): void {
    this.#area += inFlightBefore * (now - this.#lastChange);
    this.#lastChange = now;
  }

  /** An operation held its permit for `heldMs` and settled at `now`. */
  finish(now: number, inFlightBefore: number, heldMs: number, ok: boolean): void {
    this.#area += inFlightBefore * (now - this.#lastChange);
    this.#lastChange = now;
    this.completions++;
    if (!ok) this.errors++;
    this.#holdSum += heldMs;
    this.#ring[this.#ringCount++ & (RING - 1)] = heldMs;
  }

  /** End the interval: summarize it and start the next one. */
  close(now: number, state: { limit: number; inFlight: number; queued: number; lagMs: number }): LoadSnapshot {
    const elapsed = Math.max(1e-3, now - this.#started);
    this.#area += state.inFlight * (now - this.#lastChange);
    const meanInFlight = this.#area / elapsed;
    const meanQueued = this.waitedMs / elapsed;
    const seconds = elapsed / 1000;
    const limit = Math.max(1, state.limit);
    const snapshot: LoadSnapshot = {
      arrivalRate: this.arrivals / seconds,
      completionRate: this.completions / seconds,
      inFlight: state.inFlight,
      queued: state.queued,
      meanInFlight,
      meanQueued,
      utilization: Math.min(1, meanInFlight / limit),
      latencyMs: this.#latency(),
      errorRate: this.completions === 0 ? 0 : this.errors / this.completions,
      eventLoopLagMs: state.lagMs,
      // Waiters still queued have not added their wait yet; count them as present.
      loadFactor: loadFactor(meanInFlight, Math.max(meanQueued, state.queued), limit),
    };
    this.#started = this.#lastChange = now;
    this.#area = this.#holdSum = this.waitedMs = 0;
    this.arrivals = this.completions = this.errors = this.#ringCount = 0;
    return snapshot;
  }

  /** Percentiles of this interval's hold times; the last interval's when nothing finished. */
  #latency(): { mean: number; p50: number; p95: number } {
    const count = Math.min(this.#ringCount, RING);
    if (count === 0) return this.#lastLatency;
    const sorted = this.#sorted.subarray(0, count);
    sorted.set(this.#ring.subarray(0, count));
    sorted.sort();
    const at = (q: number) => sorted[Math.min(count - 1, Math.floor(q * count))]!;
    this.#lastLatency = { mean: this.#holdSum / this.completions, p50: at(0.5), p95: at(0.95) };
    return this.#lastLatency;
  }
}

/**
 * The load factor: demand (operations in flight plus waiting, time-averaged) over the current
 * limit, capped at 1. 0 is idle; 0.5 means half the permits were busy on average; 1 means
 * every permit was busy or work was waiting for one.
 *
 * @example
 * ```ts
 * loadFactor(5, 0, 10); // 0.5
 * loadFactor(10, 4, 10); // 1
 * ```
 */
export function loadFactor(meanInFlight: number, meanQueued: number, limit: number): number {
  return Math.min(1, Math.max(0, (meanInFlight + meanQueued) / Math.max(1, limit)));
}

/**
 * A repeating timer that also measures event-loop lag: how much later than scheduled each tick
 * fires (timer drift — the same signal on every runtime). The timer is unref'd so it never
 * keeps a process alive.
 *
 * @example
 * ```ts
 * const stop = everyInterval(1000, (lagMs) => console.log(`loop lag ${lagMs} ms`));
 * stop();
 * ```
 */
export function everyInterval(intervalMs: number, tick: (lagMs: number) => void): () => void {
  let expected = performance.now() + intervalMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const run = () => {
    const now = performance.now();
    const lag = Math.max(0, now - expected);
    expected = now + intervalMs;
    try {
      tick(lag);
    } finally {
      if (!stopped) schedule();
    }
  };
  const schedule = () => {
    timer = setTimeout(run, intervalMs);
    (timer as { unref?: () => void }).unref?.();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * Recent activity over a sliding window of one-second slots: rates, error share and latency
 * percentiles of the last N seconds, not of all time. `sql.stats()` reports queries per second
 * from it and `health()` votes on it, so an incident an hour ago does not haunt the vote.
 *
 * @module
 */
import { LogHistogram } from "./log-histogram.ts";

interface Slot {
  second: number;
  calls: number;
  failures: number;
  rejected: number;
  latency: LogHistogram;
}

/** What a sliding window holds right now. */
export interface WindowSnapshot {
  /** Seconds the figures cover (the window, or less just after start). */
  seconds: number;
  calls: number;
  /** Failures that count against health (not the caller's own mistakes); `rejected` included. */
  failures: number;
  /** Calls pgpilot turned away without I/O (an open circuit): failures, without a latency. */
  rejected: number;
  /** Calls per second over `seconds`. */
  perSecond: number;
  /** Share of calls that failed, 0…1. */
  failureRate: number;
  /** Latency of the calls in the window, merged. */
  latency: LogHistogram;
}

/**
 * Counts and latencies of the last `seconds` seconds, in a ring of one-second slots.
 * Recording is O(1); a snapshot merges the slots (O(window)).
 *
 * @example
 * ```ts
 * const window = new SlidingWindow(60);
 * window.record(performance.now(), 12, false);
 * window.snapshot(performance.now()).calls; // 1
 * ```
 */
export class SlidingWindow {
  readonly #slots: Slot[];
  readonly #createdAt: number;

  /** @param seconds window length; `createdAt` (ms, `performance.now()` clock) bounds early coverage. */
  constructor(readonly seconds: number, createdAt: number = performance.now()) {
    this.#createdAt = createdAt;
    this.#slots = Array.from({ length: seconds }, () => ({
      second: -1,
      calls: 0,
      failures: 0,
      rejected: 0,
      latency: new LogHistogram(),
    }));
  }

  /** Record a call that ended at `atMs`; `durationMs` undefined records no latency. */
  record(atMs: number, durationMs: number | undefined, failed: boolean, rejected = false): void {
    const slot = this.#slotAt(atMs);
    slot.calls++;
    if (failed || rejected) slot.failures++;
    if (rejected) slot.rejected++;
    if (durationMs !== undefined) slot.latency.record(durationMs);
  }

  /** The window's figures as of `atMs`. */
  snapshot(atMs: number): WindowSnapshot {
    const now = Math.floor(atMs / 1000);
    const latency = new LogHistogram();
    let calls = 0;
    let failures = 0;
    let rejected = 0;
    for (const slot of this.#slots) {
      if (slot.second <= now - this.seconds || slot.second > now) continue;
      calls += slot.calls;
      failures += slot.failures;
      rejected += slot.rejected;
      latency.merge(slot.latency);
    }
    const seconds = Math.min(this.seconds, Math.max(1, (atMs - this.#createdAt) / 1000));
    return {
      seconds,
      calls,
      failures,
      rejected,
      perSecond: calls / seconds,
      failureRate: calls === 0 ? 0 : failures / calls,
      latency,
    };
  }

  #slotAt(atMs: number): Slot {
    const second = Math.floor(atMs / 1000);
    const slot = this.#slots[second % this.seconds]!;
    if (slot.second !== second) {
      slot.second = second;
      slot.calls = 0;
      slot.failures = 0;
      slot.rejected = 0;
      slot.latency.reset();
    }
    return slot;
  }
}

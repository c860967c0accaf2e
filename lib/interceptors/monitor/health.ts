/**
 * `monitor()`'s vote in `sql.health()`: error rate and latency over the sliding window, and pool
 * saturation right now. Breaker and adaptive add their own votes.
 *
 * @module
 */
import type { HealthReport, HealthStatus } from "../../core/interceptor.ts";
import type { WindowSnapshot } from "../../shared/sliding-window.ts";
import type { LaneUsage } from "./pool-accounting.ts";

/** Thresholds of the vote (`monitor({ health })`). */
export interface HealthThresholds {
  /** p95 latency over the window above this (ms, at most 2^31−1) → degraded. */
  latencyMs: number;
  /** Share of failed operations over the window at or above this → degraded. */
  errorRateDegraded: number;
  /** … at or above this → failed. */
  errorRateFailed: number;
  /** Share of a lane's connections in use at or above this, with work waiting → degraded. */
  utilizationDegraded: number;
  /** Fewer operations than this in the window: no vote on error rate or latency (too few to judge); 1 to 1 000 000. */
  minCalls: number;
  /**
   * This many operations in a row failed on a lane, with no success between them → failed,
   * whatever the error (a wrong database, a missing role, a rejected password, no permission):
   * a lane where every call fails is down for its callers. Errors about a statement or its data
   * (classes 21, 22, 23, 42 but 42501, 44, P0) neither count nor break a streak; a rejection by
   * an open circuit neither (the breaker votes on its own). Default 5.
   */
  failingStreak: number;
}

/** Operations in a row that failed on one lane, and the latest error. */
export interface FailingStreak {
  failures: number;
  /** `message (code)` of the latest failure. */
  error: string;
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, failed: 2 };
const round = (value: number, digits = 3): number => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Judge the window and the pool. Failures counted here exclude the caller's own mistakes
 * (category `client`: syntax errors, constraint violations): they say nothing about the database.
 *
 * @example
 * ```ts
 * const vote = monitorHealth(window.snapshot(performance.now()), pool.usage(), thresholds);
 * vote.status; // "healthy"
 * ```
 */
export function monitorHealth(
  window: WindowSnapshot,
  usage: Record<string, LaneUsage>,
  thresholds: HealthThresholds,
  streaks: ReadonlyMap<string, FailingStreak> = new Map(),
): HealthReport {
  let status: HealthStatus = "healthy";
  let score = 1;
  const reasons: string[] = [];
  const vote = (next: HealthStatus, nextScore: number, reason: string) => {
    if (RANK[next] > RANK[status]) status = next;
    score = Math.min(score, nextScore);
    reasons.push(reason);
  };

  const p95 = window.latency.quantile(0.95);
  const judged = window.calls >= thresholds.minCalls;
  const seconds = Math.round(window.seconds);
  if (judged && window.failureRate >= thresholds.errorRateDegraded) {
    const failed = window.failureRate >= thresholds.errorRateFailed;
    vote(
      failed ? "failed" : "degraded",
      Math.max(0, 1 - window.failureRate),
      `error rate ${percent(window.failureRate)} over the last ${seconds} s ` +
        `(${window.failures} of ${window.calls}; ${failed ? "failed" : "degraded"} at ` +
        `${percent(failed ? thresholds.errorRateFailed : thresholds.errorRateDegraded)})`,
    );
  }
  if (judged && window.latency.count > 0 && p95 > thresholds.latencyMs) {
    vote(
      "degraded",
      Math.min(1, thresholds.latencyMs / p95),
      `p95 latency ${Math.round(p95)} ms over the last ${seconds} s is above ${thresholds.latencyMs} ms`,
    );
  }
  for (const [lane, streak] of streaks) {
    if (streak.failures >= thresholds.failingStreak) {
      vote("failed", 0, `lane ${lane}: the last ${streak.failures} operations all failed: ${streak.error}`);
    }
  }
  for (const [lane, figures] of Object.entries(usage)) {
    const utilization = figures.max === 0 ? 0 : figures.used / figures.max;
    const waiting = figures.pending > 0 || figures.inFlight > figures.max;
    if (utilization >= thresholds.utilizationDegraded && waiting) {
      vote(
        "degraded",
        0.5,
        `lane ${lane}: ${figures.used} of ${figures.max} connections in use and ` +
          `${Math.max(figures.pending, figures.inFlight - figures.max)} operations waiting`,
      );
    }
  }

  return {
    status,
    score: round(score),
    reasons,
    details: {
      windowSeconds: seconds,
      operations: window.calls,
      failures: window.failures,
      errorRate: round(window.failureRate, 4),
      ...(window.rejected > 0 ? { rejected: window.rejected } : {}),
      p95Ms: round(p95),
      lanes: usage,
    },
  };
}

function percent(share: number): string {
  return `${round(share * 100, 1)}%`;
}

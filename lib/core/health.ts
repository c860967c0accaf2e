/**
 * `sql.health()`: every interceptor votes, the worst vote wins.
 *
 * @module
 */
import type { HealthReport, HealthStatus, Interceptor } from "./interceptor.ts";
import { reportHookError } from "../shared/diag.ts";

/** The combined health of a pilot. */
export interface PilotHealth {
  status: HealthStatus;
  /** The lowest score of any vote, 0 … 1. */
  score: number;
  /** Reasons of every non-healthy vote, prefixed with the interceptor's name. */
  reasons: string[];
  /** Each interceptor's own report, by name. */
  checks: Record<string, HealthReport>;
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, failed: 2 };
const DEFAULT_SCORE: Record<HealthStatus, number> = { healthy: 1, degraded: 0.5, failed: 0 };

/**
 * Combine the votes of the interceptors that have `health()`.
 *
 * @example
 * ```ts
 * combineHealth([monitor(), breaker()]).status; // "healthy"
 * ```
 */
export function combineHealth(interceptors: readonly Interceptor[], closed = false): PilotHealth {
  const combined: PilotHealth = { status: "healthy", score: 1, reasons: [], checks: {} };
  if (closed) {
    combined.status = "failed";
    combined.score = 0;
    combined.reasons.push("pilot: closed");
  }
  for (const interceptor of interceptors) {
    if (interceptor.health === undefined) continue;
    let vote: HealthReport;
    try {
      vote = interceptor.health();
    } catch (error) {
      reportHookError(`${interceptor.name}.health`, error);
      continue;
    }
    combined.checks[interceptor.name] = vote;
    if (RANK[vote.status] > RANK[combined.status]) combined.status = vote.status;
    combined.score = Math.min(combined.score, vote.score ?? DEFAULT_SCORE[vote.status]);
    for (const reason of vote.reasons ?? []) combined.reasons.push(`${interceptor.name}: ${reason}`);
  }
  return combined;
}

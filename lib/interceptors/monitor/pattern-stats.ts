/**
 * Per-pattern statistics on the client side, like `pg_stat_statements`: one entry per query
 * fingerprint (the normalized statement), with calls, errors, rows, total/min/max/mean and
 * p95/p99 from a log-scale histogram.
 *
 * Memory is bounded. Eviction policy: the table may grow to `maxPatterns` plus a quarter; when it
 * goes past that, it is sorted by total time and the lightest entries are dropped until
 * `maxPatterns` remain. So the patterns that cost the database the most time survive, a flood of
 * one-off statements (built SQL with inlined values) cannot grow it, and the cost of eviction is
 * amortized over a quarter of `maxPatterns` new patterns. A newcomer survives at least until the
 * next eviction; what is dropped is counted in `evicted` (patterns) and `evictedCalls`.
 *
 * @module
 */
import type { OperationAnalysis } from "../../core/operation.ts";
import { LogHistogram } from "../../shared/log-histogram.ts";

/** One pattern as `stats()` shows it. No SQL text unless asked for, never a value. */
export interface PatternSnapshot {
  /** FNV-1a 64 of the normalized statement (16 hex digits). */
  fingerprint: string;
  command: string;
  collection: string | undefined;
  calls: number;
  errors: number;
  slow: number;
  /** Rows returned or affected (postgres.js `count`), summed. */
  rows: number;
  totalMs: number;
  minMs: number;
  maxMs: number;
  meanMs: number;
  p95Ms: number;
  p99Ms: number;
  /** Normalized text (literals and parameters as `?`), only with `includeText`. */
  text?: string;
}

class PatternEntry {
  calls = 0;
  errors = 0;
  slow = 0;
  rows = 0;
  constructor(readonly analysis: OperationAnalysis, readonly latency: LogHistogram) {}
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

/**
 * Bounded table of per-fingerprint statistics (see the module note for the eviction policy).
 *
 * @example
 * ```ts
 * const patterns = new PatternStats(1000);
 * patterns.record(op.analysis, 3.2, false, 1, false);
 * patterns.top(10)[0].calls; // 1
 * ```
 */
export class PatternStats {
  readonly #entries = new Map<string, PatternEntry>();
  readonly #highWater: number;
  // Histograms of evicted entries, reused: allocating a typed array costs microseconds in some
  // engines, and a flood of one-off statements would allocate one per statement.
  readonly #spare: LogHistogram[] = [];
  /** Patterns dropped by eviction so far. */
  evicted: number = 0;
  /** Calls of the patterns dropped by eviction. */
  evictedCalls: number = 0;

  constructor(readonly maxPatterns: number) {
    this.#highWater = maxPatterns + Math.max(1, Math.ceil(maxPatterns / 4));
  }

  /** Patterns currently tracked (at most `maxPatterns` × 1.25). */
  get size(): number {
    return this.#entries.size;
  }

  /** Record one execution of the pattern of `analysis`. */
  record(analysis: OperationAnalysis, durationMs: number, failed: boolean, rows: number, slow: boolean): void {
    let entry = this.#entries.get(analysis.fingerprint);
    const added = entry === undefined;
    if (entry === undefined) {
      entry = new PatternEntry(analysis, this.#spare.pop() ?? new LogHistogram());
      this.#entries.set(analysis.fingerprint, entry);
    }
    entry.calls++;
    if (failed) entry.errors++;
    if (slow) entry.slow++;
    entry.rows += rows;
    entry.latency.record(durationMs);
    if (added && this.#entries.size > this.#highWater) this.#evict();
  }

  /**
   * The `limit` patterns with the most total time, heaviest first.
   *
   * @example
   * ```ts
   * patterns.top(5, { includeText: true }).map((p) => `${p.totalMs} ms  ${p.text}`);
   * ```
   */
  top(limit: number, options?: { includeText?: boolean }): PatternSnapshot[] {
    return [...this.#entries.values()]
      .sort((a, b) => b.latency.sum - a.latency.sum)
      .slice(0, limit)
      .map((entry) => snapshotOf(entry, options?.includeText === true));
  }

  /** Forget everything. */
  clear(): void {
    this.#entries.clear();
    this.evicted = 0;
    this.evictedCalls = 0;
  }

  /** Drop the lightest entries (by total time) down to `maxPatterns`. */
  #evict(): void {
    const excess = this.#entries.size - this.maxPatterns;
    const sums = new Float64Array(this.#entries.size);
    let index = 0;
    for (const entry of this.#entries.values()) sums[index++] = entry.latency.sum;
    sums.sort(); // numeric sort of a typed array: no comparator calls
    const cutoff = sums[excess - 1]!;
    let dropping = excess;
    // Everything lighter than the cutoff goes; then entries equal to it, until enough are gone.
    for (const strictly of [true, false]) {
      for (const [fingerprint, entry] of this.#entries) {
        if (dropping === 0) return;
        const sum = entry.latency.sum;
        if (strictly ? sum < cutoff : sum === cutoff) {
          this.#entries.delete(fingerprint);
          this.evicted++;
          this.evictedCalls += entry.calls;
          entry.latency.reset();
          this.#spare.push(entry.latency);
          dropping--;
        }
      }
    }
  }
}

function snapshotOf(entry: PatternEntry, includeText: boolean): PatternSnapshot {
  const { analysis, latency } = entry;
  const snapshot: PatternSnapshot = {
    fingerprint: analysis.fingerprint,
    command: analysis.command,
    collection: analysis.collection,
    calls: entry.calls,
    errors: entry.errors,
    slow: entry.slow,
    rows: entry.rows,
    totalMs: round(latency.sum),
    minMs: round(latency.count === 0 ? 0 : latency.min),
    maxMs: round(latency.max),
    meanMs: round(latency.mean),
    p95Ms: round(latency.quantile(0.95)),
    p99Ms: round(latency.quantile(0.99)),
  };
  if (includeText) snapshot.text = analysis.normalized;
  return snapshot;
}

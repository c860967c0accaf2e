/**
 * Learned affinity: which query patterns (fingerprints) are slow enough to belong on the slow
 * lane, from their own observed latency, with hysteresis so a pattern does not flap.
 *
 * Each pattern collects durations in a tumbling window of `minSamples` executions. When a window
 * is full its p95 is compared with the thresholds:
 * - a fast pattern becomes slow when the window's p95 is above `slowMs`;
 * - a slow pattern becomes fast again when the window's p95 is below `recoverMs` (≤ `slowMs`).
 * Between the two thresholds nothing changes. Work per execution is one array write; the p95
 * (a sort of `minSamples` numbers) is computed once per window.
 *
 * @module
 */

/** Whether a pattern belongs on the slow lane. */
export type PatternState = "fast" | "slow";

/** What the tracker knows about one pattern, as shown in `stats()` (no SQL text). */
export interface PatternEvidence {
  /** Fingerprint of the normalized statement. */
  readonly fingerprint: string;
  /** `SELECT`, … */
  readonly command: string;
  /** Main table, when the analysis found one. */
  readonly collection: string | undefined;
  readonly state: PatternState;
  /** p95 of the last complete window, in milliseconds (undefined before the first window). */
  readonly lastWindowP95Ms: number | undefined;
  /** Executions observed since the pattern was first seen (or re-seen after eviction). */
  readonly samples: number;
  /** Complete windows evaluated. */
  readonly windows: number;
  /** Times the pattern changed state. */
  readonly changes: number;
  /** Milliseconds since the last state change (or since first seen). */
  readonly stateAgeMs: number;
}

/** A state change, for `onPatternChange` listeners. */
export interface PatternChange {
  readonly fingerprint: string;
  readonly command: string;
  readonly collection: string | undefined;
  readonly from: PatternState;
  readonly to: PatternState;
  /** The window p95 that caused the change, in milliseconds. */
  readonly p95Ms: number;
  /** Samples in that window. */
  readonly windowSamples: number;
}

/** Settings of a `PatternTracker`. */
export interface PatternTrackerOptions {
  /** A window p95 above this makes a pattern slow. */
  slowMs: number;
  /** A window p95 below this makes a slow pattern fast again. */
  recoverMs: number;
  /** Executions per window. */
  minSamples: number;
  /** Most patterns tracked; beyond it the least recently evaluated fast pattern is forgotten. */
  maxPatterns: number;
  /** Clock in milliseconds (injectable for tests). */
  now?: () => number;
  /** Called on every state change. */
  onChange?: (change: PatternChange) => void;
}

class Pattern {
  state: PatternState = "fast";
  filled = 0;
  samples = 0;
  windows = 0;
  changes = 0;
  lastWindowP95Ms: number | undefined = undefined;
  readonly window: Float64Array;
  changedAt: number;

  constructor(
    readonly fingerprint: string,
    readonly command: string,
    readonly collection: string | undefined,
    size: number,
    now: number,
  ) {
    this.window = new Float64Array(size);
    this.changedAt = now;
  }
}

/**
 * Per-fingerprint latency windows and the fast/slow decision with hysteresis.
 *
 * @example
 * ```ts
 * const tracker = new PatternTracker({ slowMs: 500, recoverMs: 250, minSamples: 20, maxPatterns: 1000 });
 * tracker.record("a1b2c3d4e5f60718", "SELECT", "events", 812);
 * tracker.isSlow("a1b2c3d4e5f60718"); // false until a full window of 20 has p95 > 500
 * ```
 */
export class PatternTracker {
  readonly #patterns = new Map<string, Pattern>();
  readonly #options: PatternTrackerOptions;
  readonly #now: () => number;
  #slowCount = 0;

  constructor(options: PatternTrackerOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** True when the pattern currently belongs on the slow lane. */
  isSlow(fingerprint: string): boolean {
    // Most applications have no slow pattern at all: skip the lookup then.
    if (this.#slowCount === 0) return false;
    return this.#patterns.get(fingerprint)?.state === "slow";
  }

  /** Record one execution's duration (milliseconds). */
  record(fingerprint: string, command: string, collection: string | undefined, durationMs: number): void {
    let pattern = this.#patterns.get(fingerprint);
    if (pattern === undefined) {
      if (this.#patterns.size >= this.#options.maxPatterns) this.#evict();
      pattern = new Pattern(fingerprint, command, collection, this.#options.minSamples, this.#now());
      this.#patterns.set(fingerprint, pattern);
    }
    pattern.window[pattern.filled++] = durationMs;
    pattern.samples++;
    if (pattern.filled === pattern.window.length) this.#evaluate(pattern);
  }

  /** Patterns tracked, and how many of them are slow. */
  get size(): { tracked: number; slow: number } {
    return { tracked: this.#patterns.size, slow: this.#slowCount };
  }

  /**
   * Evidence for the slow patterns and for the `limit` most recently evaluated fast ones,
   * newest first.
   */
  evidence(limit: number): { slow: PatternEvidence[]; fast: PatternEvidence[] } {
    const now = this.#now();
    const slow: PatternEvidence[] = [];
    const fast: PatternEvidence[] = [];
    const patterns = [...this.#patterns.values()].reverse();
    for (const pattern of patterns) {
      if (pattern.state === "slow") slow.push(describe(pattern, now));
      else if (fast.length < limit) fast.push(describe(pattern, now));
    }
    return { slow, fast };
  }

  #evaluate(pattern: Pattern): void {
    const p95 = percentile95(pattern.window);
    pattern.filled = 0;
    pattern.windows++;
    pattern.lastWindowP95Ms = p95;
    // Re-insert so the map's order is "least recently evaluated first" for eviction.
    this.#patterns.delete(pattern.fingerprint);
    this.#patterns.set(pattern.fingerprint, pattern);
    const { slowMs, recoverMs } = this.#options;
    const from = pattern.state;
    if (from === "fast" && p95 > slowMs) pattern.state = "slow";
    else if (from === "slow" && p95 < recoverMs) pattern.state = "fast";
    else return;
    this.#slowCount += pattern.state === "slow" ? 1 : -1;
    pattern.changes++;
    pattern.changedAt = this.#now();
    this.#options.onChange?.({
      fingerprint: pattern.fingerprint,
      command: pattern.command,
      collection: pattern.collection,
      from,
      to: pattern.state,
      p95Ms: p95,
      windowSamples: pattern.window.length,
    });
  }

  /** Forget the least recently evaluated fast pattern (slow ones are the learning worth keeping). */
  #evict(): void {
    let victim: Pattern | undefined;
    for (const pattern of this.#patterns.values()) {
      if (pattern.state === "fast") {
        victim = pattern;
        break;
      }
      victim ??= pattern;
    }
    if (victim === undefined) return;
    this.#patterns.delete(victim.fingerprint);
    if (victim.state === "slow") this.#slowCount--;
  }
}

/**
 * p95 by the nearest-rank method (the value at rank ⌈0.95·n⌉).
 *
 * @example
 * ```ts
 * percentile95(Float64Array.from({ length: 20 }, (_, i) => i + 1)); // 19
 * ```
 */
export function percentile95(values: Float64Array): number {
  const sorted = values.slice().sort();
  return sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)]!;
}

function describe(pattern: Pattern, now: number): PatternEvidence {
  return {
    fingerprint: pattern.fingerprint,
    command: pattern.command,
    collection: pattern.collection,
    state: pattern.state,
    lastWindowP95Ms: pattern.lastWindowP95Ms === undefined ? undefined : round(pattern.lastWindowP95Ms),
    samples: pattern.samples,
    windows: pattern.windows,
    changes: pattern.changes,
    stateAgeMs: Math.round(now - pattern.changedAt),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

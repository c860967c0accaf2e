/**
 * A small log-scale histogram for client-side percentiles (p95, p99) with bounded memory.
 *
 * Bucket `i` holds durations in (`2^((i-1)/4)`, `2^(i/4)`] microseconds: four buckets per
 * doubling, 128 buckets from 1 µs to about 71 minutes, 512 bytes. A quantile is reported as the
 * geometric middle of its bucket, so it is within ±9% of the true value (and clamped to the
 * observed min/max). That is the trade pg_stat_statements-like per-pattern stats need: thousands
 * of patterns, each with fixed memory and O(1) recording.
 *
 * @module
 */

const BUCKETS = 128;
const PER_DOUBLING = 4;
/** Smallest resolved duration, in milliseconds (1 µs). */
const FLOOR_MS = 0.001;

/**
 * Fixed-memory log-scale histogram of durations in milliseconds.
 *
 * @example
 * ```ts
 * const histogram = new LogHistogram();
 * for (const ms of [1, 2, 3, 50]) histogram.record(ms);
 * histogram.quantile(0.5); // ≈ 2 (±9%)
 * histogram.count; // 4
 * ```
 */
export class LogHistogram {
  /** Counts per bucket. */
  readonly counts: Uint32Array = new Uint32Array(BUCKETS);
  /** Number of recorded values. */
  count: number = 0;
  /** Sum of recorded values (ms). */
  sum: number = 0;
  /** Smallest recorded value (ms); `Infinity` when empty. */
  min: number = Infinity;
  /** Largest recorded value (ms); 0 when empty. */
  max: number = 0;

  /** Record one duration in milliseconds (negative and NaN count as 0). */
  record(ms: number): void {
    const value = ms > 0 ? ms : 0;
    this.counts[bucketOf(value)]!++;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  /** Mean of recorded values (ms), 0 when empty. */
  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /**
   * Estimated `q` quantile (0…1) in milliseconds, 0 when empty.
   *
   * @example
   * ```ts
   * const histogram = new LogHistogram();
   * histogram.record(10);
   * histogram.quantile(0.99); // 10 (clamped to the observed range)
   * ```
   */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, middleOf(index)));
    }
    return this.max;
  }

  /** Add another histogram's values to this one. */
  merge(other: LogHistogram): void {
    if (other.count === 0) return;
    for (let index = 0; index < BUCKETS; index++) this.counts[index]! += other.counts[index]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  /** Forget every value. */
  reset(): void {
    if (this.count === 0) return;
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }
}

function bucketOf(ms: number): number {
  if (ms <= FLOOR_MS) return 0;
  const index = Math.ceil(Math.log2(ms / FLOOR_MS) * PER_DOUBLING);
  return index < BUCKETS ? index : BUCKETS - 1;
}

function middleOf(index: number): number {
  return index === 0 ? FLOOR_MS : FLOOR_MS * 2 ** ((index - 0.5) / PER_DOUBLING);
}

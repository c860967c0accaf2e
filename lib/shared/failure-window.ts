/**
 * A sliding time window of call outcomes, for the breaker's thresholds: how many failures of
 * each category, and how many calls, happened in the last `windowMs`.
 *
 * The window is a ring of buckets, so recording is O(1) and memory is fixed; a bucket drops
 * out as a whole, which makes the window slide in steps of `windowMs / buckets`.
 *
 * @module
 */

/** The failure categories the breaker counts (`client` never counts). */
export type CountedCategory = "connection" | "timeout" | "transaction" | "resource";

const SLOT: Record<CountedCategory, number> = { connection: 0, timeout: 1, transaction: 2, resource: 3 };
const CALLS = 4;
const FAILURES = 5;
const FIELDS = 6;

/**
 * Counts of calls and failures per category over the last `windowMs` milliseconds.
 *
 * @example
 * ```ts
 * const window = new FailureWindow(10_000, 10);
 * window.success(Date.now());
 * window.failure("connection", Date.now());
 * window.count("connection"); // 1
 * window.failureRate(); // 0.5
 * ```
 */
export class FailureWindow {
  readonly #bucketMs: number;
  readonly #buckets: number;
  /** `buckets` rows of FIELDS counters. */
  readonly #counts: Float64Array;
  /** Running sums over every bucket. */
  readonly #totals = new Float64Array(FIELDS);
  /** Absolute number (time / bucketMs) of the newest bucket. */
  #head = -Infinity;

  constructor(windowMs: number, buckets = 10) {
    this.#buckets = buckets;
    this.#bucketMs = windowMs / buckets;
    this.#counts = new Float64Array(buckets * FIELDS);
  }

  /** Record a call that did not fail (a client error counts here: the database answered). */
  success(now: number): void {
    const row = this.#advance(now);
    this.#counts[row + CALLS]!++;
    this.#totals[CALLS]!++;
  }

  /** Record a failed call of a counted category. */
  failure(category: CountedCategory, now: number): void {
    const row = this.#advance(now);
    const slot = SLOT[category];
    this.#counts[row + slot]!++;
    this.#counts[row + CALLS]!++;
    this.#counts[row + FAILURES]!++;
    this.#totals[slot]!++;
    this.#totals[CALLS]!++;
    this.#totals[FAILURES]!++;
  }

  /** Failures of `category` in the window (as of the last record). */
  count(category: CountedCategory): number {
    return this.#totals[SLOT[category]]!;
  }

  /** Calls in the window. */
  get calls(): number {
    return this.#totals[CALLS]!;
  }

  /** Failures (all counted categories) in the window. */
  get failures(): number {
    return this.#totals[FAILURES]!;
  }

  /** Failures / calls, 0 when there were no calls. */
  failureRate(): number {
    const calls = this.#totals[CALLS]!;
    return calls === 0 ? 0 : this.#totals[FAILURES]! / calls;
  }

  /** Bring the window up to `now` (dropping old buckets) without recording anything. */
  slide(now: number): void {
    this.#advance(now);
  }

  /** Forget everything. */
  reset(): void {
    this.#counts.fill(0);
    this.#totals.fill(0);
    this.#head = -Infinity;
  }

  /** Move the head to the bucket of `now`, clearing the buckets it passes; returns its row. */
  #advance(now: number): number {
    const bucket = Math.floor(now / this.#bucketMs);
    // A clock that went backwards records into the newest bucket rather than corrupting the ring.
    if (bucket > this.#head) {
      const stale = Math.min(bucket - this.#head, this.#buckets);
      for (let i = 0; i < stale; i++) this.#clear(this.#row(bucket - i));
      this.#head = bucket;
    }
    return this.#row(this.#head);
  }

  #row(bucket: number): number {
    const buckets = this.#buckets;
    return (((bucket % buckets) + buckets) % buckets) * FIELDS;
  }

  #clear(row: number): void {
    const counts = this.#counts;
    const totals = this.#totals;
    for (let field = 0; field < FIELDS; field++) {
      totals[field]! -= counts[row + field]!;
      counts[row + field] = 0;
    }
  }
}

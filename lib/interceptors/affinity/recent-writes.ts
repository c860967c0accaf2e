/**
 * Read-your-writes: which tables were written in the last `windowMs`, so that reads touching
 * them go to the primary instead of a replica that may not have replayed the write yet.
 *
 * The window should cover the replicas' usual replay lag; a replica lagging further behind than
 * the window can still serve a read that misses the write.
 *
 * @module
 */
import type { TouchedTables } from "./tables.ts";

/** Settings of a `RecentWrites`. */
export interface RecentWritesOptions {
  /** How long after a write its tables stay "recently written". */
  windowMs: number;
  /**
   * Most tables remembered at once. Beyond it (after dropping expired ones) the store stops
   * telling tables apart and treats every table as written until the window passes: never
   * unsafe, and memory stays bounded.
   */
  maxTables: number;
  /** Clock in milliseconds (injectable for tests). */
  now?: () => number;
}

/**
 * Tables written recently, each with the time its window ends.
 *
 * @example
 * ```ts
 * const writes = new RecentWrites({ windowMs: 1000, maxTables: 10_000 });
 * writes.mark(touchedTables(analyzeSql("update orders set paid = true where id = $1")));
 * writes.touches(touchedTables(analyzeSql("select * from orders where id = $1"))); // true for 1 s
 * ```
 */
export class RecentWrites {
  readonly #until = new Map<string, number>();
  readonly #windowMs: number;
  readonly #maxTables: number;
  readonly #now: () => number;
  /** Window end of a write to unknown tables: every table counts as written until then. */
  #everythingUntil = 0;
  /** Latest window end of any write; when it has passed nothing is recent. */
  #latest = 0;

  constructor(options: RecentWritesOptions) {
    this.#windowMs = options.windowMs;
    this.#maxTables = options.maxTables;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Record a completed write (or a resolved transaction's writes). */
  mark(tables: TouchedTables): void {
    if (this.#windowMs === 0) return;
    if (tables.writesUnknown) return this.markEverything();
    if (tables.keys.length === 0) return; // SET, nextval(), advisory locks: no table data written
    const until = this.#now() + this.#windowMs;
    this.#latest = until;
    for (const key of tables.keys) {
      this.#until.delete(key); // keep the map ordered by window end, oldest first
      this.#until.set(key, until);
    }
    if (this.#until.size > this.#maxTables) this.#prune(until - this.#windowMs);
  }

  /** Record writes to unknown tables. */
  markEverything(): void {
    if (this.#windowMs === 0) return;
    this.#latest = this.#everythingUntil = this.#now() + this.#windowMs;
  }

  /** True when a read of these tables must go to the primary. */
  touches(tables: TouchedTables): boolean {
    if (this.#latest === 0) return false;
    const now = this.#now();
    if (now >= this.#latest) {
      // Nothing is recent any more: forget it all at once, and skip the clock next time.
      this.#until.clear();
      this.#latest = 0;
      this.#everythingUntil = 0;
      return false;
    }
    if (tables.dynamic || now < this.#everythingUntil) return true;
    for (const key of tables.keys) {
      const until = this.#until.get(key);
      if (until !== undefined && now < until) return true;
    }
    return false;
  }

  /** Snapshot for stats(): tables inside their window, and whether every table counts as written. */
  snapshot(): { tables: number; everything: boolean } {
    const now = this.#now();
    let tables = 0;
    for (const until of this.#until.values()) if (now < until) tables++;
    return { tables, everything: now < this.#everythingUntil };
  }

  #prune(now: number): void {
    // Oldest window ends come first (mark() re-inserts), so stop at the first live one.
    for (const [key, until] of this.#until) {
      if (until > now) break;
      this.#until.delete(key);
    }
    if (this.#until.size > this.#maxTables) {
      this.#everythingUntil = this.#latest;
      this.#until.clear();
    }
  }
}

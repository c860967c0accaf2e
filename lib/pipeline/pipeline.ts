/**
 * The pipeline of one lane: which reserved connection each plain query is written to, when to
 * reserve another and when to give one back. lib/pipeline/connection.ts says why reserved
 * connections, and which postgres.js internals the writing relies on.
 *
 * @module
 */
import type { ReservedSql } from "postgres";
import type { RawQuery } from "../core/postgres-internals.ts";
import { reportHookError } from "../shared/diag.ts";
import { classify } from "../shared/classify.ts";
import { type PgConnection, PIPELINE_WAIT_MS, ReservedConnection, STALL_MS } from "./connection.ts";

export { isPipelineSend, PIPELINE_WAIT_MS, ReservedConnection, STALL_MS } from "./connection.ts";

/** Options of a {@link Pipeline}. */
export interface PipelineOptions {
  /** Lane name, for messages. */
  lane: string;
  /** Queries in flight per reserved connection before another is reserved. */
  depth: number;
  /** The lane's postgres.js `max`. */
  poolMax: number;
  /** Most connections reserved at once (the rest of the pool stays for transactions and the like). */
  maxConnections: number;
  /** Reserve one connection of the lane's pool. */
  reserve: () => Promise<ReservedSql<any>>;
  /** The lane's pool handler, for queries a lost connection never sent. */
  fallback?: (query: RawQuery) => void;
}

/** A lane's pipeline section of `stats()`. */
export interface PipelineStats {
  depth: number;
  maxConnections: number;
  /** Reserved connections taking queries now. */
  connections: number;
  /** Reservations under way. */
  reserving: number;
  /** Queries in flight on reserved connections. */
  inFlight: number;
  /** Backend pids of the reserved connections. */
  pids: number[];
  /** Queries per connection now: `depth`, less while statements are slow (see {@link Pipeline}). */
  effectiveDepth: number;
  /** Shortest time between completions on one connection, last monitor interval (ms). */
  serviceMs: number;
  /** Totals since start: reservations made, released, lost to connection errors, failed. */
  reserved: number;
  released: number;
  lost: number;
  failures: number;
}

/**
 * The reserved connections of one lane and the routing of queries over them: each query goes
 * to the least-loaded connection (the pool only while none is reserved yet); one more is
 * reserved when every connection carries its depth of queries and the lane has that much
 * demand; surplus connections are released at the monitor tick; a connection that fails with a
 * connection error is dropped and replaced on demand.
 *
 * Pipelining pays when statements are short: one write and one read carry many of them. A
 * slow statement makes every query behind it on the same connection wait. So the depth used is
 * `depth` only while a query would wait at most {@link PIPELINE_WAIT_MS} behind the others:
 * `clamp(floor(PIPELINE_WAIT_MS / serviceMs), 1, depth)`, where `serviceMs` is the shortest
 * time, in the last monitor interval, between a completion and the one before it on the same
 * connection (or the query's send, when the connection was idle). A connection runs its
 * statements one after the other, so when the client reads promptly that gap is at least the
 * statement's execution time. It is near zero when statements are short, and it is not the
 * per-connection throughput (which falls as connections are added, and would feed back). A busy
 * event loop that reads several completions at once also makes it near zero: that errs toward
 * full depth for statements of a few milliseconds, which the stall check below then bounds.
 * A connection that has completed nothing for {@link STALL_MS} while carrying queries counts
 * as full, so the first slow statements already spread out.
 *
 * @example
 * ```ts
 * const pipeline = new Pipeline({ lane: "primary", depth: 10, poolMax: 10, maxConnections: 8, reserve: () => sql.reserve() });
 * const connection = pipeline.pick(inFlight, 0, performance.now()); // undefined: send through the pool
 * if (connection) sendThrough(op, connection.send);
 * ```
 */
export class Pipeline {
  readonly depth: number;
  readonly maxConnections: number;
  /** Queries in flight on reserved connections. */
  load = 0;
  readonly #options: PipelineOptions;
  #connections: ReservedConnection[] = [];
  /** Reserved and not yet given back (includes draining and lost ones still busy). */
  #held = 0;
  #reserving = 0;
  #serviceMs = 0;
  #minGap = Infinity;
  #peak = 0;
  #closed = false;
  #whenDrained: (() => void) | undefined;
  #failedRecently = false;
  #reserved = 0;
  #released = 0;
  #lost = 0;
  #failures = 0;

  constructor(options: PipelineOptions) {
    this.#options = options;
    this.depth = options.depth;
    this.maxConnections = options.maxConnections;
  }

  /** Queries per connection while statements are as slow as they have been lately. */
  get effectiveDepth(): number {
    if (this.#serviceMs <= 0) return this.depth;
    return Math.max(1, Math.min(this.depth, Math.floor(PIPELINE_WAIT_MS / this.#serviceMs)));
  }

  /** Connections reserved (or being reserved) and not yet given back to the pool. */
  get held(): number {
    return this.#held + this.#reserving;
  }

  /**
   * The connection for the next query: the least-loaded one that accepts queries, or
   * undefined (send it through the pool). `demand` is the lane's operations in flight,
   * `pooled` those running on pool connections: a new reservation must leave them room.
   */
  pick(demand: number, pooled: number, now: number): ReservedConnection | undefined {
    let best: ReservedConnection | undefined;
    // A live connection that waits for a statement description: its queries wait with it,
    // which beats pipelining them onto the pool's busy connections.
    let waiting: ReservedConnection | undefined;
    let stale = false;
    for (const connection of this.#connections) {
      if (!connection.accepting) {
        if (!connection.alive) stale = true;
        else if (!connection.draining && (waiting === undefined || connection.load < waiting.load)) waiting = connection;
        continue;
      }
      if (best === undefined || connection.load < best.load) best = connection;
    }
    if (stale) this.#dropClosed();
    const depth = this.effectiveDepth;
    if (best === undefined || best.load >= depth) this.#grow(Math.ceil(demand / depth), pooled);
    else if (best.load > 0 && now - best.progressAt > STALL_MS) this.#grow(this.held + 1, pooled);
    best ??= waiting;
    if (best === undefined) return undefined;
    if (best.load++ === 0) best.progressAt = now;
    if (++this.load > this.#peak) this.#peak = this.load;
    return best;
  }

  /** A query routed to `connection` settled, with `error` when it failed. */
  settle(connection: ReservedConnection, query: RawQuery | undefined, error: unknown, now: number): void {
    this.load--;
    // Lost first: settling unblocks the queries waiting behind this one, and they must not be
    // written to a dead connection.
    if (error !== undefined && !connection.lost && classify(error) === "connection") {
      connection.lost = true;
      this.#lost++;
      this.#remove(connection);
      connection.failDeferred();
    }
    // Since the last completion (or since it was sent to an idle connection): at least this
    // statement's execution time.
    const gap = connection.settled(query, now);
    if (gap < this.#minGap) this.#minGap = gap;
    if (connection.load === 0 && (connection.draining || connection.lost || this.#closed)) this.#giveBack(connection);
  }

  /** Pool work needs a connection: stop using the least-loaded reserved one, release it when idle. */
  yieldOne(): void {
    let best: ReservedConnection | undefined;
    for (const connection of this.#connections) {
      if (!connection.draining && (best === undefined || connection.load < best.load)) best = connection;
    }
    if (best !== undefined) this.#drain(best);
  }

  /**
   * The monitor's tick: keep as many connections as the interval's peak load needs (at the
   * effective depth each), or `target` if that is more (the pre-warmer's forecast); release the rest.
   * Reserve up to `target` ahead of demand when the pool has room.
   */
  tick(target: number, pooled: number): void {
    this.#failedRecently = false;
    if (this.#minGap !== Infinity) this.#serviceMs = this.#minGap;
    this.#minGap = Infinity;
    this.#dropClosed();
    const wanted = Math.min(this.maxConnections, Math.max(Math.ceil(this.#peak / this.effectiveDepth), target));
    this.#peak = this.load;
    let active = 0;
    for (const connection of this.#connections) if (!connection.draining) active++;
    while (active > wanted) {
      let idlest: ReservedConnection | undefined;
      for (const connection of this.#connections) {
        if (!connection.draining && (idlest === undefined || connection.load < idlest.load)) idlest = connection;
      }
      this.#drain(idlest!);
      active--;
    }
    for (let i = active + this.#reserving; i < target; i++) this.#grow(target, pooled);
  }

  /**
   * Stop reserving; release every connection once its queries settled. Resolves when none is
   * held or being reserved any more: postgres.js's `end()` cannot end a connection that is
   * still reserved, so the pool must only be ended after this.
   */
  close(): Promise<void> {
    this.#closed = true;
    for (const connection of [...this.#connections]) this.#drain(connection);
    return new Promise((resolve) => {
      this.#whenDrained = resolve;
      this.#checkDrained();
    });
  }

  #checkDrained(): void {
    if (this.#closed && this.#held === 0 && this.#reserving === 0) this.#whenDrained?.();
  }

  stats(): PipelineStats {
    let connections = 0;
    for (const connection of this.#connections) if (!connection.draining) connections++;
    return {
      depth: this.depth,
      maxConnections: this.maxConnections,
      effectiveDepth: this.effectiveDepth,
      serviceMs: this.#serviceMs,
      connections,
      reserving: this.#reserving,
      inFlight: this.load,
      pids: this.#connections.filter((connection) => connection.alive).map((connection) => connection.pid),
      reserved: this.#reserved,
      released: this.#released,
      lost: this.#lost,
      failures: this.#failures,
    };
  }

  #drain(connection: ReservedConnection): void {
    connection.draining = true;
    if (connection.load === 0) this.#giveBack(connection);
  }

  #giveBack(connection: ReservedConnection): void {
    this.#remove(connection);
    connection.release();
    this.#held--;
    this.#released++;
    this.#checkDrained();
  }

  #remove(connection: ReservedConnection): void {
    const index = this.#connections.indexOf(connection);
    if (index !== -1) this.#connections.splice(index, 1);
  }

  /** Connections postgres.js closed while idle (no query of ours saw the error). */
  #dropClosed(): void {
    for (const connection of [...this.#connections]) {
      if (connection.alive) continue;
      if (!connection.lost) this.#lost++;
      connection.lost = true;
      this.#remove(connection);
      connection.failDeferred();
      if (connection.load === 0) this.#giveBack(connection);
    }
  }

  /** Reserve one more connection if fewer than `wanted` are held and the pool has room for it. */
  #grow(wanted: number, pooled: number): void {
    if (this.#closed || this.#failedRecently) return;
    // Lost and draining connections are on their way out: they do not count toward `wanted`,
    // but they still hold pool connections until their queries settled.
    let taking = this.#reserving;
    for (const connection of this.#connections) if (!connection.draining) taking++;
    const held = this.#held + this.#reserving;
    wanted = Math.min(this.maxConnections, wanted);
    if (taking >= wanted || held >= this.maxConnections || held + pooled >= this.#options.poolMax) return;
    this.#reserving++;
    this.#open().then(
      (connection) => {
        this.#reserving--;
        if (connection === undefined) return this.#checkDrained();
        this.#held++;
        this.#reserved++;
        this.#connections.push(connection);
        if (this.#closed) this.#drain(connection);
      },
      (error) => {
        this.#reserving--;
        // A reservation cut short by close() is expected, not worth a report.
        if (this.#closed) return this.#checkDrained();
        this.#failures++;
        this.#failedRecently = true;
        reportHookError("adaptive.reserve", error);
      },
    );
  }

  /**
   * Reserve a connection and learn its connection object from the first query's `onexecute`.
   * Resolves undefined (nothing held) when the object could not be learned.
   */
  async #open(): Promise<ReservedConnection | undefined> {
    const sql = await this.#options.reserve();
    let connection: PgConnection | undefined;
    const onexecute = (value: PgConnection) => {
      connection = value;
      return true;
    };
    let pid: number;
    try {
      const rows = await sql.unsafe("select pg_backend_pid() as pid", [], { onexecute } as never);
      pid = Number(rows[0]?.pid);
    } catch (error) {
      // A closed connection is already back in the pool; releasing it would mark it open.
      if (connection?.reserved) sql.release();
      throw error;
    }
    if (connection === undefined || typeof connection.execute !== "function" || !connection.reserved) {
      sql.release();
      this.#failures++;
      this.#failedRecently = true;
      return undefined;
    }
    return new ReservedConnection(this.#options.lane, sql, connection, pid, this.#options.fallback);
  }
}

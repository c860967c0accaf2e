/**
 * One reserved connection of a pipeline: a lane's plain queries are spread over a few
 * connections taken out of the pool with `sql.reserve()`, several in flight on each.
 *
 * Why reserved connections and not postgres.js's own pipelining: the pool pipelines by taking
 * busy connections with `Queue.shift()`, which leaves dead slots that every later state change
 * scans (docs/adaptive.md), so a pool that pipelined stays slow. A reserved connection sits
 * outside the pool's queues; writing queries to it never touches them.
 *
 * Why `execute()` on the connection and not the reserved `sql`'s own handler: that handler
 * stops pipelining as soon as a write meets back-pressure (a batch over 1 KiB) and then sends
 * one query per round trip until the connection is idle again, which under steady load it
 * never is. Writing past back-pressure is what the pool does too; only a query that must be
 * described first (or a cursor) has to be the last one on the wire until it completes.
 *
 * postgres.js 3.4 internals this relies on (src/connection.js, src/index.js):
 * - a query's `onexecute` option is called with the connection object when it is sent;
 * - `connection.execute(query)` writes a query behind those already sent, and sets
 *   `query.describeFirst` when the statement must be described before it can be bound;
 * - `connection.reserved` is the function `sql.reserve()` installed. postgres.js sets it to
 *   null when the connection closes (and when it is released), so identity with the value seen
 *   at reservation tells whether the reservation still owns a live connection.
 *
 * @module
 */
import type { ReservedSql } from "postgres";
import type { RawQuery } from "../core/postgres-internals.ts";
import { reportHookError } from "../shared/diag.ts";

/** The postgres.js connection object, as far as this file uses it. */
export interface PgConnection {
  execute(query: RawQuery): unknown;
  reserved: unknown;
}

/**
 * How long a query may wait behind the others on its connection before pipelining costs more
 * than it saves (ms). A short statement takes tens of microseconds on the server, so at this
 * wait the default depth holds; statements slower than this get a connection each.
 */
export const PIPELINE_WAIT_MS = 2;
/**
 * A connection with queries that has completed none for this long is busy with a slow
 * statement: the next query goes to another connection, or one more is reserved (ms). Longer
 * than the wait above, so event-loop pauses of a loaded machine do not look like slow statements.
 */
export const STALL_MS = 20;

/** The send functions of reserved connections, to tell them from other `op.via` values. */
const SENDS = new WeakSet<(query: RawQuery) => void>();

/** True when `via` is a reserved connection's send (set by a pipeline, not by `file()`). */
export function isPipelineSend(via: ((query: RawQuery) => void) | undefined): boolean {
  return via !== undefined && SENDS.has(via);
}

/** A query sent to a connection that is gone: a connection error, so `retry()` may retry reads. */
function connectionLost(lane: string): Error {
  return Object.assign(new Error(`lane "${lane}": reserved connection closed before the query was sent`), {
    code: "CONNECTION_CLOSED",
  });
}

/**
 * One reserved connection: its postgres.js reservation, the connection object and the queries
 * in flight on it.
 */
export class ReservedConnection {
  /** Queries handed to it and not settled yet. */
  load = 0;
  /** Backend process id (`pg_backend_pid()`). */
  readonly pid: number;
  /** Takes no new queries: surplus or lost; released once its queries settled. */
  draining = false;
  /** Failed with a connection error, or postgres.js closed it. */
  lost = false;
  /** When it last completed a query, or was handed one while idle (ms, `performance.now()`). */
  progressAt = 0;
  /** Hands a query to this connection; becomes the operation's `op.via`. */
  readonly send: (query: RawQuery) => void;
  readonly #lane: string;
  readonly #sql: ReservedSql<any>;
  readonly #connection: PgConnection;
  readonly #token: unknown;
  /** Where a query goes that was never written because the connection is gone: the pool. */
  readonly #fallback: ((query: RawQuery) => void) | undefined;
  /** A query that must be the last one on the wire until it settles (describe first, cursor). */
  #blocking: RawQuery | undefined;
  /** Queries that arrived while `#blocking` was out; sent together when it settles. */
  #deferred: RawQuery[] = [];
  #released = false;

  constructor(
    lane: string,
    sql: ReservedSql<any>,
    connection: PgConnection,
    pid: number,
    fallback?: (query: RawQuery) => void,
  ) {
    this.#lane = lane;
    this.#fallback = fallback;
    this.#sql = sql;
    this.#connection = connection;
    this.#token = connection.reserved;
    this.pid = pid;
    this.send = (query) => {
      if (!this.alive) return this.#reroute(query);
      if (this.#blocking !== undefined) {
        this.#deferred.push(query);
        return;
      }
      this.#write(query);
    };
    SENDS.add(this.send);
  }

  /** Still the live connection this reservation holds. */
  get alive(): boolean {
    return !this.lost && this.#connection.reserved === this.#token;
  }

  /** Can take another query now without waiting. */
  get accepting(): boolean {
    return !this.draining && this.#blocking === undefined && this.alive;
  }

  #write(query: RawQuery): void {
    this.#connection.execute(query);
    const sent = query as RawQuery & { describeFirst?: boolean };
    if (sent.describeFirst === true || sent.cursorFn !== undefined) this.#blocking = query;
  }

  /**
   * `query` (the one sent for an operation routed here) settled at `now`. Returns the time
   * since the connection last made progress: how long a query waits behind the one before it.
   */
  settled(query: RawQuery | undefined, now: number): number {
    const gap = now - this.progressAt;
    this.progressAt = now;
    this.load--;
    this.#unblock(query);
    return gap;
  }

  #unblock(query: RawQuery | undefined): void {
    if (query === undefined || query !== this.#blocking) return;
    this.#blocking = undefined;
    while (this.#deferred.length > 0 && this.#blocking === undefined) {
      const next = this.#deferred.shift()!;
      if (this.alive) this.#write(next);
      else this.#reroute(next);
    }
  }

  /** The connection is gone: the queries still waiting to be sent go to the pool instead. */
  failDeferred(): void {
    for (const query of this.#deferred.splice(0)) this.#reroute(query);
  }

  /**
   * A query that never reached this connection: nothing was written, so it is safe to send it
   * through the pool (a write too). Without a pool handler it fails as a connection error.
   */
  #reroute(query: RawQuery): void {
    if (this.#fallback !== undefined) this.#fallback(query);
    else query.reject(connectionLost(this.#lane));
  }

  /**
   * Give the connection back to the pool, unless postgres.js already took it back (it closed):
   * releasing a closed connection would put it among the pool's open ones.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#connection.reserved !== this.#token) return;
    try {
      this.#sql.release();
    } catch (error) {
      reportHookError("adaptive.release", error);
    }
  }
}

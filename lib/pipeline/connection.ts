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
 * Everything this relies on inside postgres.js (the connection object, how it writes and builds
 * queries, its statement cache) is in ../core/postgres-internals.ts; the first reservation checks
 * it, and pipelining turns itself off (one diag warning) when it does not match.
 *
 * Statements cached on a connection can be refused by the server before they run (0A000 "cached
 * plan must not change result type" after `ALTER … TYPE`, 26000 after `DEALLOCATE ALL`/`DISCARD
 * ALL`). postgres.js's own re-prepare is unsafe behind other pipelined queries, so it is turned
 * off for queries written here (`writeQuery`); instead the connection re-describes the
 * statement once (nothing is written behind the describe until it completes) and writes the
 * refused queries again. They had not run, so this is safe for writes too.
 *
 * @module
 */
import type { ReservedSql } from "postgres";
import {
  describeCopy,
  isStaleStatement,
  onConnectionClose,
  type PgConnection,
  type RawQuery,
  resetForResend,
  statementOf,
  writeQuery,
  type Written,
} from "../core/postgres-internals.ts";
import { reportHookError } from "../shared/diag.ts";
import { classify } from "../shared/classify.ts";

export type { PgConnection } from "../core/postgres-internals.ts";

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

/**
 * How many times a query refused before it ran (stale cached statement) is written again. More
 * than one so that schema changes in quick succession do not fail callers; bounded so that they
 * cannot keep a query going round forever.
 */
export const MAX_RESENDS = 3;

/** The send functions of reserved connections, to tell them from other `op.via` values. */
const SENDS = new WeakSet<(query: RawQuery) => void>();

/** Count `send` among the pipeline's sends (a reserved connection's, or its pool send). */
export function markPipelineSend(send: (query: RawQuery) => void): void {
  SENDS.add(send);
}

/** True when `via` is a reserved connection's send (set by a pipeline, not by `file()`). */
export function isPipelineSend(via: ((query: RawQuery) => void) | undefined): boolean {
  return via !== undefined && SENDS.has(via);
}

/** The re-describe of a statement is under way. */
const PENDING = Symbol("pending");

/**
 * A query sent to a connection that is gone (or that postgres.js closed under it without an
 * answer, `cause` its error): a connection error, so `retry()` may retry reads.
 */
function connectionLost(lane: string, cause?: unknown): Error {
  const what = cause === undefined ? "closed before the query was sent" : "closed before the query was answered";
  return Object.assign(new Error(`lane "${lane}": reserved connection ${what}`), { code: "CONNECTION_CLOSED", cause });
}

/**
 * One reserved connection: its postgres.js reservation, the connection object and the queries
 * in flight on it.
 */
export class ReservedConnection {
  /** Queries handed to it and not settled yet. */
  load = 0;
  /** Statement descriptions of its own in flight (re-preparing a refused statement). */
  internal = 0;
  /** Backend process id (`pg_backend_pid()`). */
  readonly pid: number;
  /** Takes no new queries: surplus or lost; released once its queries settled. */
  draining = false;
  /** Failed with a connection error, or postgres.js closed it. */
  lost = false;
  /** Given back to the pool (or found closed): counted out of the pipeline's held connections. */
  givenBack = false;
  /** When it last completed a query, or was handed one while idle (ms, `performance.now()`). */
  progressAt = 0;
  /** Queries written again after the server refused their cached statement before running them. */
  resent = 0;
  /** Hands a query to this connection; becomes the operation's `op.via`. */
  readonly send: (query: RawQuery) => void;
  readonly #lane: string;
  readonly #sql: ReservedSql<any>;
  readonly #connection: PgConnection;
  readonly #token: unknown;
  /** Where a query goes that was never written because the connection is gone: the pool. */
  readonly #fallback: ((query: RawQuery) => void) | undefined;
  /** Called when a description of its own settled and nothing is in flight any more. */
  readonly #onIdle: ((connection: ReservedConnection) => void) | undefined;
  /** A query that must be the last one on the wire until it settles (describe first, cursor). */
  #blocking: RawQuery | undefined;
  /** Queries that arrived while `#blocking` was out; sent together when it settles. */
  #deferred: RawQuery[] = [];
  /** Queries written bound to a cached statement: which one (to re-send them if it is refused). */
  readonly #bound = new WeakMap<RawQuery, Written>();
  readonly #resends = new WeakMap<RawQuery, number>();
  /** Describe-only queries of its own (re-preparing a statement). */
  readonly #describes = new WeakSet<RawQuery>();
  /**
   * Per statement signature: the statement the last re-describe cached, or PENDING while it
   * runs. A query refused while bound to an older statement is simply written again.
   */
  readonly #fresh = new Map<string, unknown>();
  #released = false;
  /**
   * Queries written to this connection whose answer has not arrived: the callers' and our own
   * describes. When postgres.js closes the connection, those still here
   * are orphans (see `onConnectionClose`) and are rejected as connection errors.
   */
  // An array, not a Set (hashing a fresh query per call costs µs): answers come in write order.
  readonly #owed: RawQuery[] = [];
  /** A query failed with a connection error, or postgres.js closed it: write nothing more. */
  #broken = false;
  readonly #unhook: () => void;

  constructor(
    lane: string,
    sql: ReservedSql<any>,
    connection: PgConnection,
    pid: number,
    fallback?: (query: RawQuery) => void,
    onIdle?: (connection: ReservedConnection) => void,
  ) {
    this.#lane = lane;
    this.#fallback = fallback;
    this.#onIdle = onIdle;
    this.#sql = sql;
    this.#connection = connection;
    this.#token = connection.reserved;
    this.#unhook = onConnectionClose(connection, (error) => this.#closed(error));
    this.pid = pid;
    this.send = (query) => {
      this.#intercept(query);
      this.#route(query);
    };
    SENDS.add(this.send);
  }

  /** Still the live connection this reservation holds. */
  get alive(): boolean {
    return !this.lost && !this.#broken && this.#connection.reserved === this.#token;
  }

  /** Can take another query now without waiting. */
  get accepting(): boolean {
    return !this.draining && this.#blocking === undefined && this.alive;
  }

  /** Nothing of ours or of callers in flight on it. */
  get idle(): boolean {
    return this.load === 0 && this.internal === 0;
  }

  #route(query: RawQuery): void {
    if (!this.alive) return this.#reroute(query);
    if (this.#blocking !== undefined) {
      this.#deferred.push(query);
      return;
    }
    this.#write(query);
  }

  #write(query: RawQuery): void {
    const written = writeQuery(this.#connection, query);
    if (written === undefined) return; // cancelled before it was written, or rejected by postgres.js
    this.#owed.push(query);
    if (written.signature !== undefined) this.#bound.set(query, written);
    if (written.blocking) this.#blocking = query;
  }

  /**
   * See the server's refusals of a cached statement before the caller does: postgres.js's
   * `reject` (captured by pilot) is wrapped so that such a query is written again instead.
   */
  #intercept(query: RawQuery): void {
    const reject = query.reject;
    query.reject = (error) => {
      if (this.#resend(query, error)) return;
      this.#settledOwed(query);
      // Synchronously, inside postgres.js's error handler: the socket failed, and until its
      // 'close' arrives `connection.reserved` still looks live. Nothing more may be written.
      if (classify(error) === "connection") this.#broken = true;
      reject(error);
    };
  }

  /** `query` is answered (or given up): it is owed nothing more. */
  #settledOwed(query: RawQuery): void {
    const index = this.#owed.indexOf(query);
    if (index >= 0) this.#owed.splice(index, 1);
  }

  /**
   * postgres.js closed the connection (its close handler, after its own rejections): what is
   * still owed an answer never gets one from it. Those queries may have run, so they fail as
   * connection errors (`retry()` may retry reads); the ones not written yet go to the pool.
   */
  #closed(error: unknown): void {
    this.#broken = true;
    // Runs inside postgres.js's close handler: a throw would keep it from reconnecting for the
    // pool's queued queries. The queries not written yet go to the pool afterwards: sent from in
    // here, the pool would hand one to this very connection, which it is about to reconnect.
    try {
      for (const query of this.#owed.splice(0)) query.reject(connectionLost(this.#lane, error));
    } catch (thrown) {
      reportHookError("adaptive.closed", thrown);
    }
    queueMicrotask(() => this.failDeferred());
  }

  /** Write a query again that the server refused before running it. False: let it fail. */
  #resend(query: RawQuery, error: unknown): boolean {
    if (!isStaleStatement(error) || query.cancelled) return false;
    const bound = this.#bound.get(query);
    if (bound === undefined) return false;
    this.#bound.delete(query);
    const count = this.#resends.get(query) ?? 0;
    if (count >= MAX_RESENDS) return false;
    this.#resends.set(query, count + 1);
    this.resent++;
    resetForResend(query);
    if (this.alive) {
      const fresh = this.#fresh.get(bound.signature!);
      if (fresh === undefined || fresh === bound.statement) this.#redescribe(bound.signature!, query);
    }
    this.#route(query);
    return true;
  }

  /**
   * Replace the connection's cached statement for `signature` (postgres.js's describe-only
   * query drops it and caches the new one). Written like any statement described first: the
   * queries handed over meanwhile wait behind it, the refused one among them.
   */
  #redescribe(signature: string, query: RawQuery): void {
    let copy: RawQuery;
    try {
      copy = describeCopy(this.#sql as unknown as (...args: any[]) => unknown, query);
    } catch (error) {
      reportHookError("adaptive.redescribe", error);
      return;
    }
    this.#describes.add(copy);
    this.#fresh.set(signature, PENDING);
    this.internal++;
    const done = (ok: boolean) => {
      this.#settledOwed(copy);
      if (ok) this.#fresh.set(signature, statementOf(copy));
      else this.#fresh.delete(signature);
      this.internal--;
      this.#unblock(copy);
      if (this.idle) this.#onIdle?.(this);
    };
    copy.then(() => done(true), () => done(false));
    this.#route(copy);
  }

  /**
   * `query` (the one sent for an operation routed here) settled at `now`. Returns the time
   * since the connection last made progress: how long a query waits behind the one before it.
   */
  settled(query: RawQuery | undefined, now: number): number {
    const gap = now - this.progressAt;
    this.progressAt = now;
    this.load--;
    // Removed here rather than by wrapping each query's resolve (one closure fewer per query);
    // an operation a deadline answered early is owed nothing either: its caller has an answer.
    if (query !== undefined) this.#settledOwed(query);
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
   * through the pool (a write too). Without a pool handler it fails as a connection error. A
   * query cancelled meanwhile was already answered (57014) and is never written; a describe of
   * our own has nothing to do elsewhere.
   */
  #reroute(query: RawQuery): void {
    this.#settledOwed(query);
    if (query.cancelled) return;
    if (this.#describes.has(query) || this.#fallback === undefined) query.reject(connectionLost(this.#lane));
    else this.#fallback(query);
  }

  /**
   * Give the connection back to the pool, unless postgres.js already took it back (it closed):
   * releasing a closed connection would put it among the pool's open ones.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#unhook();
    if (this.#connection.reserved !== this.#token) return;
    try {
      this.#sql.release();
    } catch (error) {
      reportHookError("adaptive.release", error);
    }
  }
}

/**
 * The parts of a postgres.js `Query` pgpilot relies on (postgres.js 3.4, src/query.js).
 *
 * A query is a lazy Promise subclass: `then/catch/finally/execute/forEach` call `handle()`,
 * which runs `query.handler(query)` exactly once. The connection settles it through the
 * instance fields `resolve` / `reject`. pgpilot swaps `handler` (to run the chain when the
 * query really starts), `canceller` (so `.cancel()` reaches queued operations too) and, while
 * the query runs, `resolve` / `reject` (so the chain sees the outcome before the caller does).
 *
 * @module
 */

/** Settles a postgres.js query. */
export type Settle = (value: any) => void;

/** A postgres.js `Query` instance, seen from the inside. */
export interface RawQuery extends Promise<unknown> {
  handler: (query: RawQuery) => void;
  canceller: ((query: RawQuery) => Promise<void>) | null;
  resolve: Settle;
  reject: Settle;
  active: boolean;
  cancelled: unknown;
  executed: boolean;
  tagged: boolean;
  strings: readonly string[] & { raw?: readonly string[] };
  args: unknown[];
  options: Record<string, unknown>;
  isRaw?: boolean | "values";
  cursorFn?: unknown;
  cursorRows?: number;
  forEachFn?: unknown;
  onlyDescribe?: boolean;
  cancel(): unknown;
}

/**
 * Make the chain see a running query's outcome first: the connection's calls to
 * `resolve` / `reject` go to `onResolve` / `onReject` instead of the caller.
 *
 * A cursor replaces `resolve` / `reject` for every batch it fetches, so for cursors the
 * fields become accessors: postgres.js's assignments land in `current` (what the caller's
 * pending iteration waits on) while its calls come to us.
 */
export function captureSettlement(query: RawQuery, onResolve: Settle, onReject: Settle): void {
  const cursor = cursorTarget(query);
  if (cursor !== undefined) {
    cursor.captureResolve = onResolve;
    cursor.captureReject = onReject;
    return;
  }
  query.resolve = (value) => ((query.active = false), onResolve(value));
  query.reject = (error) => ((query.active = false), onReject(error));
}

interface CursorSlots {
  currentResolve: Settle;
  currentReject: Settle;
  captureResolve: Settle | undefined;
  captureReject: Settle | undefined;
}

const CURSOR = Symbol("pgpilot.cursor");

function cursorTarget(query: RawQuery): CursorSlots | undefined {
  return (query as unknown as Record<symbol, CursorSlots | undefined>)[CURSOR];
}

/**
 * The functions that settle what the caller is waiting on. For a plain query these are the
 * original `resolve` / `reject`; for a cursor they follow postgres.js's reassignments.
 * Call before the query is dispatched.
 */
export function callerSettlement(query: RawQuery): [Settle, Settle] {
  if (query.cursorFn === undefined) return [query.resolve, query.reject];
  const slots: CursorSlots = {
    currentResolve: query.resolve,
    currentReject: query.reject,
    captureResolve: undefined,
    captureReject: undefined,
  };
  (query as unknown as Record<symbol, CursorSlots>)[CURSOR] = slots;
  Object.defineProperty(query, "resolve", {
    configurable: true,
    get: () =>
      slots.captureResolve === undefined
        ? slots.currentResolve
        : (value: unknown) => ((query.active = false), slots.captureResolve!(value)),
    set: (fn: Settle) => (slots.currentResolve = fn),
  });
  Object.defineProperty(query, "reject", {
    configurable: true,
    get: () =>
      slots.captureReject === undefined
        ? slots.currentReject
        : (error: unknown) => ((query.active = false), slots.captureReject!(error)),
    set: (fn: Settle) => (slots.currentReject = fn),
  });
  return [(value) => slots.currentResolve(value), (error) => slots.currentReject(error)];
}

/**
 * The error postgres.js gives a query cancelled before it was sent (same code and message),
 * for queries cancelled while they wait in pgpilot's chain.
 */
export function cancelledError(): Error {
  return Object.assign(new Error("57014: canceling statement due to user request"), { code: "57014" });
}

// ---- the connection of a reserved postgres.js `sql`, for pipelining -------------------------
//
// postgres.js 3.4 (src/connection.js) as pgpilot's pipeline relies on it:
// - a query's `onexecute` option is called with the connection object when it is written;
// - `connection.execute(query)` builds the query (`build()`: `prepare`, `prepared`, `signature`,
//   `statement`, `describeFirst`) and writes it behind those already sent; `query.state` is set
//   and `query.active` becomes true when the query is the one the replies are for;
// - `connection.reserved` is the function `sql.reserve()` installed; postgres.js sets it to null
//   when the connection closes or is released;
// - on ReadyForQuery after an ErrorResponse whose `routine` is one of RE_PREPARE_ROUTINES,
//   postgres.js re-executes a query built `prepared` (statement cached on the connection) by
//   itself: it deletes the cached statement and writes Parse/Describe/Flush (no Sync) at the end
//   of the wire. With other queries pipelined behind, that is unsafe (see {@link writeQuery});
// - a query built with `onlyDescribe` deletes the connection's cached statement for its
//   signature, caches the one it describes, and resolves with it;
// - when the socket closes, `closed()` rejects what it still owes (unless the close came with an
//   error: then only what the socket's 'error' event found — see {@link onConnectionClose}), then
//   the pool's `onclose(c)` sets `c.reserved = null` and calls `c.onclose(error)` once
//   (the hook `sql.begin()` uses), before the connection is reconnected for queued work.

/** The postgres.js connection object, as far as pgpilot uses it. */
export interface PgConnection {
  execute(query: RawQuery): unknown;
  reserved: unknown;
  onclose?: ((error: unknown) => void) | null;
}

/**
 * Call `fn` when postgres.js closes `connection` (the pool's `c.onclose` hook, called once,
 * synchronously in its close handler, after its own rejections and before the connection is
 * reconnected for other work). Returns a function that removes the hook if it is still ours.
 *
 * Why pgpilot needs it (postgres.js 3.4.9): when the socket fails with an error (EPIPE,
 * ECONNRESET — how a terminated backend often shows on Linux), the 'error' event rejects the
 * queries sent so far, but `connection.reserved` stays set until 'close' arrives; a query written
 * in between is pushed onto the connection's list, and `closed(hadError = true)` rejects nothing.
 * That query would never settle (or, once the connection reconnects, be resolved with the startup
 * reply as its result). Queries still owed an answer when this fires are orphans.
 */
export function onConnectionClose(connection: PgConnection, fn: (error: unknown) => void): () => void {
  const hook = (error: unknown) => fn(error);
  connection.onclose = hook;
  return () => {
    if (connection.onclose === hook) connection.onclose = null;
  };
}

/** A query after postgres.js built and wrote it. */
interface BuiltQuery extends RawQuery {
  prepare?: boolean;
  prepared?: boolean;
  signature?: string | false;
  statement?: { name?: string; types?: unknown[] };
  describeFirst?: boolean;
  parameters?: unknown[];
  retried?: unknown;
  state?: unknown;
}

/** Server routines of errors raised before a statement runs, for which postgres.js re-prepares. */
const RE_PREPARE_ROUTINES = new Set(["FetchPreparedStatement", "RevalidateCachedQuery", "transformAssignedExpr"]);

/** What {@link writeQuery} learned about a query it wrote. */
export interface Written {
  /** Must be the last query on the wire until it settles (statement described first, cursor). */
  blocking: boolean;
  /** Bound to a statement cached on the connection: key of that cache entry, else undefined. */
  signature: string | undefined;
  /** The cached statement it was bound to (identity tells re-described statements apart). */
  statement: unknown;
}

/**
 * Write `query` to `connection` behind the queries already on it. postgres.js would re-prepare
 * a cached statement by itself when the server rejects it (0A000 "cached plan must not change
 * result type", 26000 "prepared statement does not exist"): it writes Parse/Describe without a
 * Sync behind the queries already pipelined and hands the describe's replies to whichever query
 * is current, so callers get another's rows or hang. Clearing `prepared` once the query is on the
 * wire turns that path off: the query fails with the server's error, which pgpilot's pipeline
 * handles itself ({@link isStaleStatement}, {@link describeCopy}). `prepared` is read only when
 * the buffer is built (done) and in that retry check.
 *
 * Returns undefined when postgres.js did not write the query (it was cancelled first).
 */
export function writeQuery(connection: PgConnection, query: RawQuery): Written | undefined {
  const built = query as BuiltQuery;
  if (built.cancelled) return undefined;
  connection.execute(query);
  if (built.state === undefined || built.state === null) return undefined;
  const prepared = built.prepared === true;
  built.prepared = false;
  return {
    blocking: built.describeFirst === true || built.cursorFn !== undefined,
    signature: prepared && typeof built.signature === "string" ? built.signature : undefined,
    statement: prepared ? built.statement : undefined,
  };
}

/**
 * True when `error` is the server refusing a cached statement before running it (the errors
 * postgres.js would re-prepare for): the query did not execute, so sending it again is safe.
 */
export function isStaleStatement(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    RE_PREPARE_ROUTINES.has((error as { routine?: unknown }).routine as string);
}

/**
 * Make a query that failed before it ran ready to be written again: fresh parameters (postgres.js
 * serializes them in place when it binds), no server state (so a cancel meanwhile stays on the
 * client: `cancelled`, never a cancel request to a backend that runs someone else's query).
 */
export function resetForResend(query: RawQuery): void {
  const built = query as BuiltQuery;
  built.parameters = undefined;
  built.state = undefined;
  built.active = false;
}

/**
 * A describe-only copy of `query` made with `sql` (the reserved connection's postgres.js `sql`),
 * not yet written: written with {@link writeQuery}, it drops the connection's cached statement
 * for the query's signature and caches a fresh one (postgres.js `onlyDescribe`). It is written
 * like a statement described first: nothing may be written behind it until it settles.
 */
export function describeCopy(sql: (...args: any[]) => unknown, query: RawQuery): RawQuery {
  const copy = (query.tagged
    ? sql(query.strings, ...query.args)
    : (sql as unknown as { unsafe: (...args: unknown[]) => unknown }).unsafe(query.strings[0], query.args, { ...query.options })) as RawQuery;
  copy.executed = true; // never through its handler: pgpilot writes it
  copy.onlyDescribe = true;
  copy.options.prepare = true;
  return copy;
}

/**
 * Check, on a reserved connection's first query (`select … $1`, written through `onexecute`),
 * that postgres.js has the internals the pipeline relies on. Returns what is missing, or
 * undefined when everything matches.
 */
export function checkConnectionInternals(connection: unknown, probe: RawQuery): string | undefined {
  const c = connection as Partial<PgConnection> | undefined;
  if (c === undefined || c === null) return "the connection object (onexecute) was not passed";
  if (typeof c.execute !== "function") return "connection.execute is not a function";
  if (typeof c.reserved !== "function") return "connection.reserved is not the reservation's function";
  if (c.onclose !== undefined && c.onclose !== null && typeof c.onclose !== "function") return "connection.onclose is not a hook";
  const built = probe as BuiltQuery;
  if (typeof built.prepare !== "boolean" || typeof built.prepared !== "boolean") return "query.prepare/prepared are not set by build()";
  if (built.prepare && typeof built.signature !== "string") return "query.signature is not set by build()";
  if (typeof built.describeFirst !== "boolean" && typeof built.describeFirst !== "number") return "query.describeFirst is not set by build()";
  if (typeof built.statement !== "object" || built.statement === null || typeof built.statement.name !== "string") return "query.statement is not set by build()";
  if (built.state === undefined || built.state === null) return "query.state is not set by execute()";
  if (typeof (probe as unknown as { describe?: unknown }).describe !== "function") return "query.describe() is missing";
  return undefined;
}

/** The statement object postgres.js built for a query (identity only). */
export function statementOf(query: RawQuery): unknown {
  return (query as BuiltQuery).statement;
}

/**
 * Send `query` as an unnamed statement (Parse/Bind/Execute each time, nothing cached on the
 * connection). Used for pipelinable queries that go through the pool while a pipeline is on:
 * the pool writes queries behind others on busy connections, and postgres.js's own re-prepare of
 * a cached statement the server refused (0A000 after `ALTER … TYPE`, 26000) is unsafe there — it
 * writes Parse/Describe without a Sync behind the queries already sent, and callers hang or get
 * another's rows. An unnamed statement is never re-prepared: it is planned afresh on every send.
 * The options object is replaced, not changed (`unsafe()` callers may share one).
 */
export function unprepared(query: RawQuery): void {
  if (query.options.prepare === false) return;
  query.options = { ...query.options, prepare: false };
}

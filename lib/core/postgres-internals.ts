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

/**
 * The chain: composed once, when `pilot()` is called (hono's `compose`, cockatiel's `wrap`).
 *
 * @module
 */
import { PilotError } from "../shared/errors.ts";
import type { Interceptor, Next } from "./interceptor.ts";
import type { Operation } from "./operation.ts";

/** Runs one operation through the whole chain. */
export type Chain = (op: Operation) => Promise<unknown>;

/**
 * Compose interceptors around a terminal step. The first interceptor is the outermost.
 *
 * `next()` may be called once. An interceptor that declares `retries: true` may call it again,
 * but only after the previous call rejected; any other second call throws
 * `PilotError("NEXT_CALLED_TWICE")`. Ordinary interceptors pay nothing for that bookkeeping.
 *
 * @example
 * ```ts
 * const run = compose([monitor(), breaker()], (op) => execute(op));
 * await run(op);
 * ```
 */
export function compose(interceptors: readonly Interceptor[], terminal: Chain): Chain {
  const count = interceptors.length;
  if (count === 0) return (op) => (op.attempt++, terminal(op));

  const reentrant = interceptors.map((interceptor) => interceptor.retries === true);

  function dispatch(op: Operation, index: number): Promise<unknown> {
    if (index === count) {
      op.attempt++;
      return terminal(op);
    }
    const interceptor = interceptors[index]!;
    const next = reentrant[index] ? reentrantNext(op, index) : onceNext(op, index);
    try {
      return interceptor.intercept(op, next);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function onceNext(op: Operation, index: number): Next {
    let called = false;
    return () => {
      if (called) throw twice(interceptors[index]!);
      called = true;
      return dispatch(op, index + 1);
    };
  }

  function reentrantNext(op: Operation, index: number): Next {
    // 0: never called, 1: pending, 2: resolved, 3: rejected (may be called again)
    let state = 0;
    return () => {
      if (state === 1 || state === 2) throw twice(interceptors[index]!);
      state = 1;
      return dispatch(op, index + 1).then(
        (value) => ((state = 2), value),
        (error) => {
          state = 3;
          throw error;
        },
      );
    };
  }

  return (op) => dispatch(op, 0);
}

function twice(interceptor: Interceptor): PilotError {
  return new PilotError(
    "NEXT_CALLED_TWICE",
    `interceptor "${interceptor.name}" called next() twice for one operation`,
  );
}

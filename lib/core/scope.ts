/**
 * `sql.with()` and `sql.lane()`: checking a call scope against the chain it will run through,
 * so an option nothing in the chain would honour is refused at the call instead of ignored.
 *
 * @module
 */
import * as v from "valibot";
import { durationMs, parseOptions } from "../shared/config.ts";
import { ConfigError } from "../shared/errors.ts";
import type { Interceptor } from "./interceptor.ts";
import type { CallScope } from "./operation.ts";

const SCOPE = v.strictObject({
  lane: v.optional(v.string()),
  signal: v.optional(v.instance(AbortSignal)),
  timeoutMs: v.optional(durationMs(0, { exclusive: true })),
});

/** Checks call scopes for one pilot: its lanes and its chain. */
export interface ScopeChecker {
  /** `sql.with(next)` on a sql already scoped by `current`: the merged scope, or a `ConfigError`. */
  with(current: CallScope | undefined, next: unknown): CallScope;
  /** `scope` after checking that its lane exists. */
  check(scope: CallScope): CallScope;
  /** The error for a lane that does not exist. */
  unknownLane(name: string): ConfigError;
}

/**
 * A checker for the scopes of one pilot. `timeoutMs` needs an interceptor of stage `budget`
 * (`deadline()`, or your own) in the chain: without one it would be silently ignored, so it is
 * refused with a `ConfigError` that says what to add.
 *
 * @example
 * ```ts
 * const scopes = scopeChecker(["primary"], [monitor()]);
 * scopes.with(undefined, { timeoutMs: 500 }); // ConfigError: sql.with: timeoutMs: … add deadline() …
 * ```
 */
export function scopeChecker(laneNames: Iterable<string>, interceptors: readonly Interceptor[]): ScopeChecker {
  const lanes = new Set(laneNames);
  const budgets = interceptors.some((interceptor) => interceptor.stage === "budget");
  const unknownLane = (name: string): ConfigError =>
    new ConfigError("pilot", [{ path: "lane", message: `no lane named "${name}" (lanes: ${[...lanes].join(", ")})` }]);
  const check = (scope: CallScope): CallScope => {
    if (scope.lane !== undefined && !lanes.has(scope.lane)) throw unknownLane(scope.lane);
    return scope;
  };
  return {
    unknownLane,
    check,
    with(current, next) {
      const parsed = parseOptions("sql.with", SCOPE, next);
      if (parsed.timeoutMs !== undefined && !budgets) {
        throw new ConfigError("sql.with", [{
          path: "timeoutMs",
          message: `no interceptor of this pilot enforces a time budget (stage "budget"), so it would be ignored: ` +
            `add deadline() to pilot()'s interceptors (before retry() and breaker()), or leave timeoutMs out`,
        }]);
      }
      return check({ ...current, ...parsed });
    },
  };
}

/**
 * Whether a lane can take new work, according to every interceptor of the chain that has a
 * view on it (`laneAvailable`: the breaker while its circuit is open, the limiter while
 * saturated). Shared by routing (affinity) and retry.
 *
 * @module
 */
import type { Interceptor, PilotContext } from "./interceptor.ts";
import { reportHookError } from "../shared/diag.ts";

/**
 * Build the check once, at attach time, from the other interceptors of the chain. A throwing
 * `laneAvailable` is reported through OTel `diag` and counts as available.
 *
 * @example
 * ```ts
 * attach(context) { available = laneAvailability(context, this); }
 * if (!available("replica")) routeToPrimary();
 * ```
 */
export function laneAvailability(context: PilotContext, self: Interceptor): (lane: string) => boolean {
  const gates = [...context.interceptors.values()].filter(
    (other) => other !== self && typeof other.laneAvailable === "function",
  );
  return (lane) => {
    for (const gate of gates) {
      try {
        if (gate.laneAvailable!(lane) === false) return false;
      } catch (error) {
        reportHookError(`${gate.name}.laneAvailable`, error);
      }
    }
    return true;
  };
}

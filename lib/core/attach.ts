/**
 * Attaching a chain: every interceptor gets the lanes, the providers and what the *other*
 * interceptors offer (their capabilities). Duplicate names are refused; an order that defeats
 * an interceptor is reported through OTel `diag`.
 *
 * @module
 */
import { diag, type MeterProvider, type TracerProvider } from "@opentelemetry/api";
import { ConfigError } from "../shared/errors.ts";
import { reportHookError } from "../shared/diag.ts";
import { type ChainCapabilities, type Interceptor, type LaneInfo, type PilotContext, STAGES } from "./interceptor.ts";

/** What `attachChain()` needs besides the interceptors. */
export interface ChainSetting {
  readonly name: string;
  readonly lanes: ReadonlyMap<string, LaneInfo>;
  readonly primaryLane: string;
  readonly meterProvider: MeterProvider | undefined;
  readonly tracerProvider: TracerProvider | undefined;
}

/** Which pilot an interceptor instance belongs to: one instance serves one chain. */
const owners = new WeakMap<Interceptor, string>();

/**
 * Check the chain and call every interceptor's `attach()` with its own context.
 *
 * @example
 * ```ts
 * attachChain([monitor(), breaker()], { name: "main", lanes, primaryLane: "primary", meterProvider: undefined, tracerProvider: undefined });
 * ```
 */
export function attachChain(interceptors: readonly Interceptor[], setting: ChainSetting): void {
  refuseDuplicates(interceptors, setting.name);
  warnAboutOrder(interceptors);
  try {
    for (const interceptor of interceptors) {
      if (interceptor.attach === undefined) continue;
      interceptor.attach({ ...setting, capabilities: capabilitiesFor(interceptors, interceptor) } satisfies PilotContext);
    }
  } catch (error) {
    // The pilot was not created: its interceptors may serve another one.
    detachChain(interceptors);
    throw error;
  }
}

function refuseDuplicates(interceptors: readonly Interceptor[], pilotName: string): void {
  const seen = new Set<string>();
  const issues: { path: string; message: string }[] = [];
  interceptors.forEach((interceptor, index) => {
    if (seen.has(interceptor.name)) {
      issues.push({
        path: `interceptors[${index}]`,
        message: `a second interceptor named "${interceptor.name}": names must be unique (stats() and health() are keyed by name)`,
      });
    }
    seen.add(interceptor.name);
    const owner = owners.get(interceptor);
    if (owner !== undefined) {
      issues.push({
        path: `interceptors[${index}]`,
        message: `"${interceptor.name}" is already attached to pilot "${owner}": an interceptor belongs to one pilot, create one per pilot`,
      });
    }
  });
  if (issues.length > 0) throw new ConfigError("pilot", issues);
  for (const interceptor of interceptors) owners.set(interceptor, pilotName);
}

/** Forget an interceptor's pilot (when that pilot is closed), so it may be attached again. */
export function detachChain(interceptors: readonly Interceptor[]): void {
  for (const interceptor of interceptors) owners.delete(interceptor);
}

const WHY: Record<string, string> = {
  observe: "it will not see the time spent in the stages inside it (queue wait, retries) nor their rejections",
  route: "the lane is chosen after admission was decided for another lane",
  budget: "the time budget will not cover the stages outside it",
  retry: "the stages outside it see each attempt instead of the whole call",
  admit: "it admits work the limiter already queued",
  limit: "",
};

function warnAboutOrder(interceptors: readonly Interceptor[]): void {
  let latest = -1;
  let latestName = "";
  for (const interceptor of interceptors) {
    if (interceptor.stage === undefined) continue;
    const rank = STAGES.indexOf(interceptor.stage);
    if (rank < latest) {
      diag.warn(
        `pgpilot: "${interceptor.name}" (${interceptor.stage}) comes after "${latestName}" (${STAGES[latest]}): ` +
          `${WHY[interceptor.stage]}. Recommended order: tracing, monitor, affinity, deadline, retry, breaker, adaptive.`,
      );
    } else {
      latest = rank;
      latestName = interceptor.name;
    }
  }
}

/** The capabilities of every interceptor but `self`, combined. A throwing capability is reported and ignored. */
function capabilitiesFor(interceptors: readonly Interceptor[], self: Interceptor): ChainCapabilities {
  const others = interceptors.filter((other) => other !== self && other.provides !== undefined);
  const gates = others.filter((other) => typeof other.provides!.laneAvailable === "function");
  const queues = others.filter((other) => typeof other.provides!.queueDepth === "function");
  const slow = others.find((other) => typeof other.provides!.slowQueryMs === "number");
  return {
    queues: queues.length > 0,
    slowQueryMs: slow?.provides?.slowQueryMs,
    queueDepth(lane) {
      let depth = 0;
      for (const queue of queues) {
        try {
          depth += queue.provides!.queueDepth!(lane);
        } catch (error) {
          reportHookError(`${queue.name}.queueDepth`, error);
        }
      }
      return depth;
    },
    laneAvailable(lane) {
      for (const gate of gates) {
        try {
          if (gate.provides!.laneAvailable!(lane) === false) return false;
        } catch (error) {
          reportHookError(`${gate.name}.laneAvailable`, error);
        }
      }
      return true;
    },
  };
}

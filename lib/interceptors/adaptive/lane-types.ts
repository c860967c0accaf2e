/**
 * The shapes an adaptive lane is built from and reports: its settings, its stats section and
 * its limit changes.
 *
 * @module
 */
import type { Attributes } from "@opentelemetry/api";
import type { Pipeline, PipelineStats } from "../../pipeline/pipeline.ts";
import type { LimitAlgorithm } from "./algorithm.ts";
import type { ForecastAccuracy } from "./forecast.ts";
import type { LoadSnapshot } from "./load-monitor.ts";
import type { AdaptiveCounters } from "./metrics.ts";

/** A change of a lane's limit, for `onLimitChange` listeners. */
export interface LimitChange {
  lane: string;
  previous: number;
  limit: number;
  direction: "up" | "down";
}

/** Everything a lane needs, resolved from the options and the lane's pool. */
export interface LaneSettings {
  name: string;
  attributes: Attributes;
  min: number;
  max: number;
  /** The lane's postgres.js `max`: pre-warming never asks for more connections than this. */
  poolMax: number;
  initial: number;
  queueTimeoutMs: number;
  maxQueue: number;
  windowMs: number;
  algorithm: LimitAlgorithm;
  intervalMs: number;
  horizonSteps: number;
  forecast: { alpha: number; beta: number };
  targetUtilization: number;
  prewarm: boolean;
  probe: (() => Promise<void>) | undefined;
  /** Reserved connections that plain queries are pipelined onto; undefined when not pipelining. */
  pipeline: Pipeline | undefined;
  counters: AdaptiveCounters | undefined;
  onLimitChange: (change: LimitChange) => void;
}

/** A lane's section of `stats()`. */
export interface AdaptiveLaneStats {
  algorithm: string;
  limit: number;
  min: number;
  max: number;
  inFlight: number;
  pending: number;
  maxQueue: number;
  saturated: boolean;
  /** Sampling windows the algorithm has seen. */
  windows: number;
  adjustments: { up: number; down: number };
  rejected: { timeout: number; saturated: number; aborted: number };
  load: LoadSnapshot | undefined;
  forecast: {
    arrivalRate: number;
    horizonMs: number;
    neededConnections: number;
    accuracy: ForecastAccuracy;
  };
  prewarm: { enabled: boolean; probes: number; failures: number; warmConnections: number };
  /** Reserved connections and the queries on them; undefined with `pipelineDepth: 0`. */
  pipeline: PipelineStats | undefined;
}

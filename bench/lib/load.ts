/**
 * Load generators for benchmarks: closed loop (N workers, each issues the next call when the
 * previous one settles) and open loop (arrivals at a fixed rate, whatever the latency).
 * Both stop by themselves after `durationMs`.
 */
import { Samples, type Summary } from "./stats.ts";

export interface LoadResult {
  durationMs: number;
  completed: number;
  failed: number;
  /** Completed calls per second. */
  throughput: number;
  latency: Summary;
  failedLatency: Summary;
  /** Failure counts by error code (or name). */
  errors: Record<string, number>;
  /** Per-second buckets: completed, failed and p99 of completed calls. */
  timeline: { second: number; completed: number; failed: number; p99: number }[];
  /** Most calls in flight at once. */
  peakInFlight: number;
}

class Recorder {
  ok = new Samples();
  bad = new Samples();
  errors: Record<string, number> = {};
  buckets = new Map<number, { completed: number; failed: number; samples: Samples }>();
  inFlight = 0;
  peakInFlight = 0;
  constructor(readonly start: number) {}

  async measure(call: () => Promise<unknown>): Promise<void> {
    const begin = performance.now();
    this.inFlight++;
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight;
    let failed = false;
    let code = "";
    try {
      await call();
    } catch (error) {
      failed = true;
      code = String((error as { code?: unknown })?.code ?? (error as Error)?.name ?? "Error");
    }
    this.inFlight--;
    const end = performance.now();
    const ms = end - begin;
    const second = Math.floor((end - this.start) / 1000);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = { completed: 0, failed: 0, samples: new Samples() }));
    if (failed) {
      this.bad.record(ms);
      this.errors[code] = (this.errors[code] ?? 0) + 1;
      bucket.failed++;
    } else {
      this.ok.record(ms);
      bucket.completed++;
      bucket.samples.record(ms);
    }
  }

  result(durationMs: number): LoadResult {
    const latency = this.ok.summary();
    return {
      durationMs,
      completed: latency.count,
      failed: this.bad.values.length,
      throughput: latency.count / (durationMs / 1000),
      latency,
      failedLatency: this.bad.summary(),
      errors: this.errors,
      timeline: [...this.buckets.entries()].sort((a, b) => a[0] - b[0]).map(([second, b]) => ({
        second,
        completed: b.completed,
        failed: b.failed,
        p99: b.samples.summary().p99,
      })),
      peakInFlight: this.peakInFlight,
    };
  }
}

/**
 * `workers` concurrent loops calling `call(worker, iteration)` until `durationMs` has passed
 * (or each worker has made `callsPerWorker` calls, when given).
 */
export async function closedLoop(options: {
  workers: number;
  durationMs?: number;
  callsPerWorker?: number;
  call: (worker: number, iteration: number) => Promise<unknown>;
}): Promise<LoadResult> {
  const start = performance.now();
  const stopAt = options.durationMs === undefined ? Infinity : start + options.durationMs;
  const limit = options.callsPerWorker ?? Infinity;
  const recorder = new Recorder(start);
  await Promise.all(
    Array.from({ length: options.workers }, async (_, worker) => {
      for (let i = 0; i < limit && performance.now() < stopAt; i++) {
        await recorder.measure(() => options.call(worker, i));
      }
    }),
  );
  return recorder.result(performance.now() - start);
}

/**
 * Open loop: `ratePerSecond` arrivals spread evenly (in 5 ms ticks) for `durationMs`; each
 * arrival calls `call(i)` without waiting for earlier ones. Resolves when every call settled.
 */
export async function openLoop(options: {
  ratePerSecond: number;
  durationMs: number;
  call: (i: number) => Promise<unknown>;
}): Promise<LoadResult> {
  const start = performance.now();
  const recorder = new Recorder(start);
  const pending: Promise<void>[] = [];
  let issued = 0;
  await new Promise<void>((done) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      const due = Math.min(options.ratePerSecond * (options.durationMs / 1000), Math.floor((elapsed / 1000) * options.ratePerSecond));
      while (issued < due) {
        const i = issued++;
        pending.push(recorder.measure(() => options.call(i)));
      }
      if (elapsed >= options.durationMs) done();
      else setTimeout(tick, 5);
    };
    tick();
  });
  await Promise.all(pending);
  return recorder.result(options.durationMs);
}

/**
 * Forecasting, Little's law, pre-warm planning and the load window on deterministic synthetic
 * data (pure logic, no database).
 */
import { describe, expect, test } from "bun:test";
import { HoltForecaster, neededConnections } from "../../../lib/interceptors/adaptive/forecast.ts";
import { everyInterval, loadFactor, LoadWindow } from "../../../lib/interceptors/adaptive/load-monitor.ts";
import { planPrewarm, WarmTracker } from "../../../lib/interceptors/adaptive/prewarm.ts";

/** A seeded linear congruential generator: the same "noise" on every run. */
function noise(seed: number, amplitude: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return 1 + amplitude * ((state / 2147483648) * 2 - 1);
  };
}

const TRACES = {
  ramp: Array.from({ length: 60 }, (_, i) => 50 + 20 * i),
  step: Array.from({ length: 60 }, (_, i) => (i < 30 ? 100 : 400)),
  periodic: Array.from({ length: 240 }, (_, i) => 500 + 300 * Math.sin((2 * Math.PI * i) / 60)),
};

function score(trace: number[], horizonSteps: number) {
  const holt = new HoltForecaster({ horizonSteps });
  for (const value of trace) holt.observe(value);
  return holt.accuracy();
}

describe("HoltForecaster", () => {
  for (const name of ["ramp", "periodic"] as const) {
    for (const horizon of [1, 3]) {
      test(`${name}, ${horizon} step(s) ahead: MAPE at most 0.7× the naive forecast's`, () => {
        const accuracy = score(TRACES[name], horizon);
        expect(accuracy.scored).toBe(TRACES[name].length - horizon);
        expect(accuracy.mape).toBeLessThanOrEqual(0.7 * accuracy.naiveMape);
      });
    }
    test(`${name} with ±5 % deterministic noise: still at most 0.7× naive`, () => {
      const jitter = noise(42, 0.05);
      const accuracy = score(TRACES[name].map((x) => x * jitter()), 3);
      expect(accuracy.mape).toBeLessThanOrEqual(0.7 * accuracy.naiveMape);
    });
  }

  test("step: the trend overshoots after the jump, so Holt loses to naive there (reported, not hidden)", () => {
    const accuracy = score(TRACES.step, 3);
    expect(accuracy.mape).toBeGreaterThan(accuracy.naiveMape);
    expect(accuracy.wape).toBeGreaterThan(0);
  });

  test("a ramp is extrapolated ahead of the last value", () => {
    const holt = new HoltForecaster({ horizonSteps: 3 });
    for (const value of TRACES.ramp.slice(0, 20)) holt.observe(value);
    const last = TRACES.ramp[19]!;
    expect(holt.forecast(3)).toBeGreaterThan(last);
    expect(holt.forecast(3)).toBeCloseTo(last + 60, -1);
  });

  test("never forecasts a negative rate; scores nothing before the horizon or on zero actuals", () => {
    const holt = new HoltForecaster({ horizonSteps: 2 });
    for (const value of [100, 50, 0, 0]) holt.observe(value);
    expect(holt.forecast()).toBeGreaterThanOrEqual(0);
    expect(holt.accuracy().scored).toBe(0);
    expect(new HoltForecaster().accuracy().mape).toBeNaN();
  });
});

describe("Little's law", () => {
  test("connections = rate × hold time / target utilization, rounded up", () => {
    expect(neededConnections(200, 20, 0.7)).toBe(6);
    expect(neededConnections(1000, 1, 1)).toBe(1);
    expect(neededConnections(0, 20, 0.7)).toBe(0);
    expect(neededConnections(100, 0, 0.7)).toBe(0);
  });

  test("pre-warm plans probes up to the target, within the ceiling and the free permits", () => {
    const input = { forecastRate: 500, holdMs: 20, targetUtilization: 0.7, ceiling: 20, warm: 4, free: 16 };
    expect(planPrewarm(input)).toEqual({ needed: 15, target: 15, probes: 11 });
    expect(planPrewarm({ ...input, ceiling: 10 }).probes).toBe(6);
    expect(planPrewarm({ ...input, free: 3 }).probes).toBe(3);
    expect(planPrewarm({ ...input, warm: 15 }).probes).toBe(0);
    expect(planPrewarm({ ...input, forecastRate: 0 }).probes).toBe(0);
  });

  test("WarmTracker remembers the peak for `memory` ticks, then forgets it", () => {
    const warm = new WarmTracker(3);
    warm.saw(8);
    warm.tick();
    warm.saw(2);
    warm.tick();
    expect(warm.value).toBe(8);
    warm.tick();
    warm.tick();
    expect(warm.value).toBe(2);
    warm.tick();
    expect(warm.value).toBe(0);
  });
});

describe("LoadWindow", () => {
  test("rates, time-averaged in-flight, utilization, percentiles, error rate and load factor", () => {
    const window = new LoadWindow(0);
    // Two operations: one held 0–500 ms, one 250–750 ms; 4 arrivals in 1 s; one failed.
    window.arrivals = 4;
    window.admit(0, 0);
    window.admit(250, 1);
    window.finish(500, 2, 500, true);
    window.finish(750, 1, 500, false);
    const snapshot = window.close(1000, { limit: 2, inFlight: 0, queued: 0, lagMs: 3 });
    expect(snapshot.arrivalRate).toBe(4);
    expect(snapshot.completionRate).toBe(2);
    expect(snapshot.meanInFlight).toBeCloseTo(1, 6);
    expect(snapshot.utilization).toBeCloseTo(0.5, 6);
    expect(snapshot.latencyMs).toEqual({ mean: 500, p50: 500, p95: 500 });
    expect(snapshot.errorRate).toBe(0.5);
    expect(snapshot.eventLoopLagMs).toBe(3);
    expect(snapshot.loadFactor).toBeCloseTo(0.5, 6);
    // The next interval starts empty.
    const idle = window.close(2000, { limit: 2, inFlight: 0, queued: 0, lagMs: 0 });
    expect(idle.arrivalRate).toBe(0);
    expect(idle.meanInFlight).toBe(0);
  });

  test("waiting work pushes the load factor to 1", () => {
    expect(loadFactor(5, 0, 10)).toBe(0.5);
    expect(loadFactor(10, 4, 10)).toBe(1);
    const window = new LoadWindow(0);
    window.admit(0, 0);
    expect(window.close(100, { limit: 1, inFlight: 1, queued: 3, lagMs: 0 }).loadFactor).toBe(1);
  });

  test("everyInterval measures timer drift and stops", async () => {
    const lags: number[] = [];
    let stop = () => {};
    await new Promise<void>((done) => {
      stop = everyInterval(10, (lag) => {
        lags.push(lag);
        if (lags.length === 3) done();
      });
    });
    stop();
    expect(lags.length).toBe(3);
    for (const lag of lags) expect(lag).toBeGreaterThanOrEqual(0);
  });
});

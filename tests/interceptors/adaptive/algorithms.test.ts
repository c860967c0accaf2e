/**
 * Limit algorithms as pure functions of their windows: they fall when RTT rises, rise when it
 * holds, respect the growth cap, and — driven through the clamp the lane applies — never leave
 * [min, max].
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { aimdLimit as aimd } from "../../../lib/interceptors/adaptive/aimd.ts";
import { clamp, type LimitAlgorithm, type LimitSample } from "../../../lib/interceptors/adaptive/algorithm.ts";
import { fixedLimit as fixed } from "../../../lib/interceptors/adaptive/fixed.ts";
import { gradientLimit as gradient } from "../../../lib/interceptors/adaptive/gradient.ts";
import { vegasLimit as vegas } from "../../../lib/interceptors/adaptive/vegas.ts";

const busy = (rttMs: number, limit: number, extra: Partial<LimitSample> = {}): LimitSample => ({
  rttMs,
  minRttMs: rttMs * 0.8,
  maxInFlight: Math.ceil(limit),
  queued: 5,
  count: 50,
  drops: 0,
  ...extra,
});

/** Run `windows` windows of `rtt` through the algorithm the way the lane does (clamped). */
function drive(algorithm: LimitAlgorithm, start: number, rtt: number, windows: number, min = 1, max = 50): number[] {
  const limits: number[] = [];
  let limit = start;
  for (let i = 0; i < windows; i++) {
    limit = clamp(algorithm.next(limit, busy(rtt, limit)), min, max);
    limits.push(limit);
  }
  return limits;
}

describe("gradient", () => {
  test("holds or grows while RTT is steady, falls when it rises, rises again when it recovers", () => {
    const g = gradient();
    const steady = drive(g, 10, 1, 30);
    expect(steady.at(-1)!).toBeGreaterThan(10);
    const top = steady.at(-1)!;
    const slow = drive(g, top, 20, 30);
    expect(slow.at(-1)!).toBeLessThan(top / 2);
    const bottom = slow.at(-1)!;
    const recovered = drive(g, bottom, 1, 60);
    expect(recovered.at(-1)!).toBeGreaterThan(bottom * 2);
  });

  test("growth per window is capped by growthFactor", () => {
    const g = gradient({ growthFactor: 1.1, smoothing: 1 });
    g.next(4, busy(1, 4));
    expect(g.next(4, busy(1, 4))).toBeLessThanOrEqual(4 * 1.1);
  });

  test("an application-limited window (under half the limit used, nothing queued) changes nothing", () => {
    const g = gradient();
    g.next(20, busy(1, 20));
    expect(g.next(20, busy(50, 20, { maxInFlight: 5, queued: 0 }))).toBe(20);
  });

  test("an empty window changes nothing", () => {
    expect(gradient().next(7, busy(1, 7, { count: 0 }))).toBe(7);
  });
});

describe("vegas", () => {
  test("grows while the RTT stays at its no-load value and shrinks when a queue builds", () => {
    const algorithm = vegas();
    const grown = drive(algorithm, 10, 1, 10);
    expect(grown.at(-1)!).toBeGreaterThan(10);
    const shrunk = drive(algorithm, grown.at(-1)!, 10, 30);
    expect(shrunk.at(-1)!).toBeLessThan(grown.at(-1)!);
  });

  test("drops shrink the limit", () => {
    expect(vegas().next(20, busy(1, 20, { drops: 1 }))).toBeLessThan(20);
  });
});

describe("aimd", () => {
  test("adds one per healthy busy window, backs off on slow windows and drops", () => {
    const algorithm = aimd({ latencyThresholdMs: 100, backoffRatio: 0.5 });
    expect(algorithm.next(10, busy(5, 10))).toBe(11);
    expect(algorithm.next(10, busy(150, 10))).toBe(5);
    expect(algorithm.next(10, busy(5, 10, { drops: 2 }))).toBe(5);
    expect(algorithm.next(10, busy(5, 10, { maxInFlight: 2, queued: 0 }))).toBe(10);
  });
});

describe("fixed", () => {
  test("never moves", () => {
    expect(drive(fixed(), 8, 100, 5)).toEqual([8, 8, 8, 8, 8]);
  });
});

describe("bounds", () => {
  const algorithms = { gradient, vegas, aimd, fixed } as const;
  test("for random RTT sequences every algorithm stays within [min, max] after the clamp", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(algorithms) as (keyof typeof algorithms)[])),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 40 }),
        fc.array(
          fc.record({
            rtt: fc.double({ min: 0.01, max: 1000, noNaN: true }),
            used: fc.double({ min: 0, max: 1, noNaN: true }),
            queued: fc.nat(50),
            drops: fc.nat(3),
            count: fc.nat(100),
          }),
          { maxLength: 80 },
        ),
        (name, min, span, windows) => {
          const max = min + span;
          const algorithm = algorithms[name]();
          let limit = max;
          for (const w of windows) {
            const next = algorithm.next(limit, {
              rttMs: w.rtt,
              minRttMs: w.rtt / 2,
              maxInFlight: Math.round(limit * w.used),
              queued: w.queued,
              count: w.count,
              drops: w.drops,
            });
            expect(Number.isFinite(next)).toBe(true);
            limit = clamp(next, min, max);
            expect(limit).toBeGreaterThanOrEqual(min);
            expect(limit).toBeLessThanOrEqual(max);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

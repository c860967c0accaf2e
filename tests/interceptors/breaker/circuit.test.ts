/**
 * The breaker's pure parts: the circuit state machine, the sliding window and the backoff,
 * driven by an injected clock and random source.
 */
import { describe, expect, test } from "bun:test";
import { exponentialBackoff } from "../../../lib/shared/backoff.ts";
import { Circuit, type CircuitOptions, type CircuitTransition, REJECTED } from "../../../lib/interceptors/breaker/circuit.ts";
import { FailureWindow } from "../../../lib/shared/failure-window.ts";

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

const OPTIONS: CircuitOptions = {
  thresholds: { connection: 5, timeout: 8, transaction: 7, resource: 15 },
  windowMs: 10_000,
  failureRate: 0.5,
  minimumVolume: 20,
  recoveryMs: 1_000,
  maxRecoveryMs: 8_000,
  halfOpenRequests: 2,
  random: () => 1,
};

function circuit(overrides: Partial<CircuitOptions> = {}) {
  const time = clock();
  const transitions: CircuitTransition[] = [];
  const c = new Circuit("primary", { ...OPTIONS, now: time.now, ...overrides });
  c.onTransition = (t) => transitions.push(t);
  return { c, time, transitions };
}

/** Admit and fail `n` calls of a category. */
function fail(c: Circuit, category: "connection" | "timeout" | "transaction" | "resource", n: number) {
  for (let i = 0; i < n; i++) c.failure(c.admit(), category);
}

describe("sliding window", () => {
  test("counts per category and drops what left the window", () => {
    const w = new FailureWindow(1_000, 10);
    w.failure("connection", 0);
    w.failure("connection", 450);
    w.success(500);
    expect(w.count("connection")).toBe(2);
    expect(w.calls).toBe(3);
    expect(w.failureRate()).toBeCloseTo(2 / 3);
    w.slide(1_050); // the bucket of t=0 left; 450 and 500 are still in
    expect(w.count("connection")).toBe(1);
    expect(w.calls).toBe(2);
    w.slide(10_000);
    expect(w.calls).toBe(0);
    expect(w.failures).toBe(0);
  });

  test("a clock that goes backwards records into the newest bucket", () => {
    const w = new FailureWindow(1_000, 10);
    w.failure("timeout", 5_000);
    w.failure("timeout", 4_000);
    expect(w.count("timeout")).toBe(2);
  });
});

describe("backoff", () => {
  test("doubles up to the cap, half of it random, exact for the first steps when asked", () => {
    const low = exponentialBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0 });
    const high = exponentialBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6].map(low)).toEqual([100, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5].map((n) => Math.round(high(n)))).toEqual([100, 200, 400, 800, 1_000]);
    const exact = exponentialBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0, exactSteps: 1 });
    expect(exact(1)).toBe(100);
    expect(exact(2)).toBe(100);
    expect(exponentialBackoff({ baseMs: 1, maxMs: 10 })(1e9)).toBeLessThanOrEqual(10);
  });
});

describe("circuit", () => {
  test("each category opens at its own threshold", () => {
    for (const [category, threshold] of [["connection", 5], ["timeout", 8], ["transaction", 7], ["resource", 15]] as const) {
      const { c } = circuit({ minimumVolume: 1_000 });
      fail(c, category, threshold - 1);
      expect(c.state.name).toBe("closed");
      fail(c, category, 1);
      expect(c.state).toMatchObject({ name: "open", category, opens: 1 });
    }
  });

  test("categories do not add up toward each other's thresholds", () => {
    const { c } = circuit({ minimumVolume: 1_000 });
    fail(c, "connection", 4);
    fail(c, "timeout", 7);
    fail(c, "transaction", 6);
    expect(c.state.name).toBe("closed");
  });

  test("failures older than the window are forgotten", () => {
    const { c, time } = circuit();
    fail(c, "connection", 4);
    time.advance(11_000);
    fail(c, "connection", 4);
    expect(c.state.name).toBe("closed");
    fail(c, "connection", 1);
    expect(c.state.name).toBe("open");
  });

  test("the failure rate opens it only with the minimum volume", () => {
    const { c } = circuit({ thresholds: { connection: 100, timeout: 100, transaction: 100, resource: 100 }, minimumVolume: 10 });
    for (let i = 0; i < 4; i++) c.success(c.admit());
    fail(c, "resource", 4); // 4 of 8: rate 0.5 but volume 8 < 10
    expect(c.state.name).toBe("closed");
    c.success(c.admit()); // 4 of 9
    fail(c, "resource", 1); // 5 of 10 = 0.5
    expect(c.state).toMatchObject({ name: "open", category: "resource" });
  });

  test("open rejects until the recovery time, then half-open admits exactly halfOpenRequests", () => {
    const { c, time, transitions } = circuit();
    fail(c, "connection", 5);
    expect(c.admit()).toBe(REJECTED);
    expect(c.retryAfterMs()).toBe(1_000);
    expect(c.available()).toBe(false);
    time.advance(999);
    expect(c.admit()).toBe(REJECTED);
    time.advance(1);
    expect(c.available()).toBe(true);
    const a = c.admit();
    const b = c.admit();
    expect(c.state.name).toBe("half-open");
    expect([a, b].every((t) => t !== REJECTED)).toBe(true);
    for (let i = 0; i < 50; i++) expect(c.admit()).toBe(REJECTED);
    expect(c.available()).toBe(false);
    c.success(a);
    // One success: still half-open, and the slot it used is not handed out again.
    expect(c.state.name).toBe("half-open");
    expect(c.admit()).toBe(REJECTED);
    c.success(b);
    expect(c.state.name).toBe("closed");
    expect(transitions.map((t) => `${t.from}>${t.to}`)).toEqual(["closed>open", "open>half-open", "half-open>closed"]);
    expect(transitions[0]).toMatchObject({ lane: "primary", category: "connection", retryAfterMs: 1_000 });
  });

  test("a failed probe re-opens with a doubled, capped wait; a close resets it", () => {
    const { c, time } = circuit();
    fail(c, "connection", 5);
    const waits: number[] = [];
    for (let round = 0; round < 6; round++) {
      time.advance(c.retryAfterMs());
      c.failure(c.admit(), "timeout");
      expect(c.state).toMatchObject({ name: "open", category: "timeout", opens: round + 2 });
      waits.push(c.retryAfterMs());
    }
    expect(waits).toEqual([2_000, 4_000, 8_000, 8_000, 8_000, 8_000]);
    time.advance(c.retryAfterMs());
    c.success(c.admit());
    c.success(c.admit());
    expect(c.state.name).toBe("closed");
    fail(c, "connection", 5);
    expect(c.retryAfterMs()).toBe(1_000);
  });

  test("outcomes of calls admitted before a transition are ignored", () => {
    const { c, time } = circuit();
    const early = Array.from({ length: 10 }, () => c.admit());
    for (const ticket of early.slice(0, 5)) c.failure(ticket, "connection");
    expect(c.state.name).toBe("open");
    time.advance(1_000);
    const probe = c.admit();
    // Late failures of calls from the closed period must not re-open the half-open circuit.
    for (const ticket of early.slice(5)) c.failure(ticket, "connection");
    expect(c.state.name).toBe("half-open");
    c.success(probe);
    // … nor late successes count as probes.
    c.success(early[0]!);
    expect(c.state.name).toBe("half-open");
  });

  test("release gives a probe slot back without a verdict", () => {
    const { c, time } = circuit({ halfOpenRequests: 1 });
    fail(c, "connection", 5);
    time.advance(1_000);
    const probe = c.admit();
    expect(c.admit()).toBe(REJECTED);
    c.release(probe);
    expect(c.state.name).toBe("half-open");
    const again = c.admit();
    expect(again).not.toBe(REJECTED);
    c.success(again);
    expect(c.state.name).toBe("closed");
  });

  test("toJSON and a restored circuit agree", () => {
    const { c, time } = circuit();
    expect(c.toJSON()).toEqual({ state: "closed" });
    fail(c, "timeout", 8);
    const snapshot = c.toJSON();
    expect(snapshot).toEqual({ state: "open", category: "timeout", until: time.now() + 1_000, opens: 1 });
    const restored = new Circuit("primary", { ...OPTIONS, now: time.now }, JSON.parse(JSON.stringify(snapshot)));
    expect(restored.admit()).toBe(REJECTED);
    expect(restored.retryAfterMs()).toBe(1_000);
    time.advance(1_000);
    restored.failure(restored.admit(), "timeout");
    // The restored count of opens continues: the next wait is the doubled one.
    expect(restored.toJSON()).toMatchObject({ state: "open", opens: 2, until: time.now() + 2_000 });
  });
});

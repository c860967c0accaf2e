/**
 * breaker() as an interceptor, without a database: what counts and what does not, admission
 * of transactions and their children, aborts, events, metrics, stats, health, persistence and
 * configuration. The real outages are in outage.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { markUnreachable } from "../../../lib/shared/classify.ts";
import { attachChain } from "../../../lib/core/attach.ts";
import { compose } from "../../../lib/core/compose.ts";
import { CircuitOpenError, ConfigError, DeadlineExceededError, PilotError } from "../../../lib/shared/errors.ts";
import type { Interceptor } from "../../../lib/core/interceptor.ts";
import { breaker } from "../../../lib/interceptors/breaker/index.ts";
import { retry } from "../../../lib/interceptors/retry/index.ts";
import { NO_SQL, Operation, type OperationKind } from "../../../lib/core/operation.ts";
import { metricReader, settled } from "../../support/kit.ts";

const READ = Object.freeze({ ...NO_SQL("UNKNOWN"), command: "SELECT", readOnly: true });

function op(kind: OperationKind = "query", parent?: Operation, lane = "primary"): Operation {
  const operation = new Operation(kind, kind === "query" ? READ : NO_SQL("BEGIN"), lane, parent, undefined, undefined);
  operation.dispatched = true;
  return operation;
}

const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
const unique = () => Object.assign(new Error("duplicate key"), { code: "23505" });

/** A chain whose terminal fails with whatever `outcome` returns (or resolves when it returns undefined). */
function chain(interceptors: Interceptor[], outcome: (op: Operation) => unknown = () => undefined) {
  let reached = 0;
  const run = compose(interceptors, async (operation) => {
    reached++;
    const error = outcome(operation);
    if (error !== undefined) throw error;
    return "ok";
  });
  return { run, reached: () => reached };
}

describe("breaker interceptor", () => {
  test("client errors never count, at any rate; counted categories do", async () => {
    const guard = breaker();
    const { run } = chain([guard], unique);
    for (let i = 0; i < 500; i++) expect((await settled(run(op())))?.code).toBe("23505");
    expect(guard.state("primary")).toBe("closed");
    expect(guard.stats().lanes.primary!.window).toMatchObject({ calls: 500, failures: 0 });
    const failing = chain([guard], refused);
    for (let i = 0; i < 5; i++) await settled(failing.run(op()));
    expect(guard.state("primary")).toBe("open");
  });

  test("routing: with active probing a recovering lane stays unavailable until the circuit closes", async () => {
    const probing = breaker({ recoveryMs: 1 });
    const passive = breaker({ recoveryMs: 1, activeProbing: false });
    for (const guard of [probing, passive]) {
      const { run } = chain([guard], refused);
      for (let i = 0; i < 5; i++) await settled(run(op()));
      expect(guard.state("primary")).toBe("open");
    }
    await Bun.sleep(5); // past recoveryMs: the circuit would admit a probe now
    expect(passive.laneAvailable("primary")).toBe(true); // user calls are the probes
    expect(probing.laneAvailable("primary")).toBe(false); // no pilot attached: nothing probed, still not closed
    await Promise.all([probing.close(), passive.close()]);
  });

  test("while open: CircuitOpenError without reaching the terminal, with lane, category and retryAfterMs", async () => {
    const guard = breaker({ recoveryMs: 60_000 });
    const rejections: unknown[] = [];
    guard.onReject((rejection) => rejections.push(rejection));
    const { run, reached } = chain([guard], refused);
    for (let i = 0; i < 5; i++) await settled(run(op()));
    expect(reached()).toBe(5);
    const error = await settled(run(op()));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ code: "CIRCUIT_OPEN", lane: "primary", category: "connection" });
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(error.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(reached()).toBe(5);
    expect(rejections).toEqual([expect.objectContaining({ lane: "primary", category: "connection", state: "open" })]);
    expect(guard.laneAvailable("primary")).toBe(false);
    expect(guard.laneAvailable("replica")).toBe(true);
    // Lanes are independent.
    expect(await run(op("query", undefined, "replica")).catch(() => "rejected")).toBe("rejected"); // refused, but admitted
    expect(guard.state("replica")).toBe("closed");
  });

  test("a transaction counts once; its inner queries pass through uncounted, even while open", async () => {
    const guard = breaker({ thresholds: { connection: 2 } });
    const { run, reached } = chain([guard], (operation) => (operation.parent === undefined ? undefined : refused()));
    const tx = op("transaction");
    // Ten failing inner queries of one transaction: not ten failures.
    for (let i = 0; i < 10; i++) await settled(run(op("query", tx)));
    expect(guard.stats().lanes.primary?.window.failures ?? 0).toBe(0);
    const failingTx = chain([guard], refused);
    await settled(failingTx.run(op("transaction")));
    expect(guard.stats().lanes.primary!.window.byCategory.connection).toBe(1);
    await settled(failingTx.run(op("transaction")));
    expect(guard.state("primary")).toBe("open");
    // A transaction admitted before it opened finishes its inner queries.
    const inner = chain([guard]);
    expect(await inner.run(op("query", tx))).toBe("ok");
    expect(inner.reached()).toBe(1);
    expect(reached()).toBe(10);
  });

  test("a call the caller aborted counts as nothing; one a deadline aborted counts as a timeout", async () => {
    const guard = breaker({ thresholds: { timeout: 1, connection: 1 } });
    const { run } = chain([guard], (operation) => operation.signal.reason);
    const cancelled = op();
    cancelled.abort(Object.assign(new Error("canceling statement due to user request"), { code: "57014" }));
    await settled(run(cancelled));
    const byCaller = op();
    byCaller.abort(new Error("caller gave up"));
    await settled(run(byCaller));
    expect(guard.state("primary")).toBe("closed");
    const late = op();
    late.abort(new DeadlineExceededError(100));
    await settled(run(late));
    expect(guard.state("primary")).toBe("open");
    expect(guard.stats().lanes.primary).toMatchObject({ category: "timeout" });
  });

  test("a deadline counts at once even when the call never settles (a black hole)", async () => {
    const guard = breaker({ thresholds: { timeout: 2 } });
    const run = compose([guard], () => new Promise(() => {}));
    const hung = [op(), op()];
    for (const operation of hung) void run(operation);
    // What deadline() does on expiry: the calls were sent (a black hole), so they count as timeouts.
    for (const operation of hung) {
      operation.dispatched = true;
      operation.abort(new DeadlineExceededError(50));
    }
    expect(guard.state("primary")).toBe("open");
  });

  test("pgpilot's own rejections further in (queue full) give no verdict, nor do undispatched deadline aborts", async () => {
    const guard = breaker({ thresholds: { timeout: 1 }, recoveryMs: 1 });
    const { run } = chain([guard], () => new PilotError("POOL_SATURATED", "full"));
    for (let i = 0; i < 50; i++) await settled(run(op()));
    const queued = new Operation("query", READ, "primary", undefined, undefined, undefined);
    queued.abort(new DeadlineExceededError(10));
    await settled(chain([guard], (operation) => operation.signal.reason).run(queued));
    expect(guard.stats().lanes.primary!.window).toMatchObject({ calls: 0, failures: 0 });
    expect(guard.state("primary")).toBe("closed");
  });

  test("half-open admits exactly halfOpenRequests concurrent calls", async () => {
    const guard = breaker({ recoveryMs: 1, halfOpenRequests: 3 });
    let fail = true;
    const release: (() => void)[] = [];
    const run = compose([guard], () => (fail ? Promise.reject(refused()) : new Promise((resolve) => release.push(() => resolve("ok")))));
    for (let i = 0; i < 5; i++) await settled(run(op()));
    fail = false;
    await Bun.sleep(5);
    const outcomes = Array.from({ length: 50 }, () => settled(run(op())));
    expect(release).toHaveLength(3);
    expect(guard.state("primary")).toBe("half-open");
    for (const done of release) done();
    const errors = await Promise.all(outcomes);
    expect(errors.filter((e) => e === undefined)).toHaveLength(3);
    expect(errors.filter((e) => e instanceof CircuitOpenError)).toHaveLength(47);
    expect(guard.state("primary")).toBe("closed");
  });

  test("retry never retries through an open breaker", async () => {
    const guard = breaker({ initialState: { primary: { state: "open", category: "connection", until: Date.now() + 60_000, opens: 1 } } });
    const retries = retry({ baseDelayMs: 0 });
    const { run, reached } = chain([retries, guard]);
    const error = await settled(run(op()));
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(reached()).toBe(0);
    expect(retries.stats().retries.connection).toBe(0);
  });

  test("one logical call is one outcome: retry attempts inside it count once", async () => {
    // A whole transaction is re-run on a serialization failure (a counted "transaction" failure).
    const lost = () => Object.assign(new Error("could not serialize access"), { code: "40001" });
    const guard = breaker({ thresholds: { transaction: 2 }, activeProbing: false });
    const retries = retry({ maxAttempts: 3, baseDelayMs: 0 });
    const tx = () => op("transaction");
    // Every attempt fails: three attempts, one failed call.
    const failing = chain([retries, guard], lost);
    expect((await settled(failing.run(tx())))?.code).toBe("40001");
    expect(failing.reached()).toBe(3);
    expect(retries.stats().exhausted).toBe(1);
    expect(guard.stats().lanes.primary!.window).toMatchObject({ calls: 1, failures: 1 });
    expect(guard.state("primary")).toBe("closed");
    // A call that fails once and then succeeds is one success.
    let attempts = 0;
    const flaky = chain([retries, guard], () => (++attempts === 1 ? lost() : undefined));
    expect(await flaky.run(tx())).toBe("ok");
    expect(guard.stats().lanes.primary!.window).toMatchObject({ calls: 2, failures: 1 });
    // The second failed logical call reaches the threshold of 2.
    expect((await settled(failing.run(tx())))?.code).toBe("40001");
    expect(guard.state("primary")).toBe("open");
    // Once open, a retry stops: no attempt reaches the database through the open circuit.
    const before = failing.reached();
    expect(await settled(failing.run(tx()))).toBeInstanceOf(CircuitOpenError);
    expect(failing.reached()).toBe(before);
  });

  test("CircuitOpenError.cause is the failure that opened the circuit; health names it", async () => {
    const missing = () =>
      Object.assign(new Error('database "nope" does not exist'), { code: "3D000", severity: "FATAL" });
    const guard = breaker({ thresholds: { connection: 2 }, activeProbing: false });
    const { run } = chain([guard], () => markUnreachable(missing()));
    for (let i = 0; i < 2; i++) expect((await settled(run(op())))?.code).toBe("3D000");
    const rejected = await settled(run(op()));
    expect(rejected).toBeInstanceOf(CircuitOpenError);
    expect((rejected as CircuitOpenError).cause).toMatchObject({ code: "3D000" });
    expect((rejected as CircuitOpenError).message).toContain('database "nope" does not exist');
    expect(guard.health().reasons!.join(" ")).toContain('database \\"nope\\" does not exist');
    // The same SQLSTATE from a statement (DROP DATABASE nope) is the caller's mistake.
    const fresh = breaker({ thresholds: { connection: 1 }, activeProbing: false });
    const statement = chain([fresh], missing);
    for (let i = 0; i < 3; i++) await settled(statement.run(op()));
    expect(fresh.state("primary")).toBe("closed");
  });

  test("events, a throwing listener, stats, health and toJSON round trip", async () => {
    const guard = breaker({ recoveryMs: 1, halfOpenRequests: 1 });
    const changes: string[] = [];
    guard.onStateChange(() => {
      throw new Error("listener bug");
    });
    const subscription = guard.onStateChange((t) => changes.push(`${t.from}>${t.to}`));
    let fail = true;
    const { run } = chain([guard], () => (fail ? refused() : undefined));
    expect(guard.health().status).toBe("healthy");
    for (let i = 0; i < 5; i++) expect((await settled(run(op())))?.code).toBe("ECONNREFUSED");
    expect(guard.health()).toMatchObject({ status: "failed", score: 0 });
    expect(guard.health().reasons![0]).toContain("connection");
    const snapshot = JSON.parse(JSON.stringify(guard));
    expect(snapshot.primary).toMatchObject({ state: "open", category: "connection", opens: 1 });
    const restored = breaker({ initialState: snapshot, recoveryMs: 1 });
    expect(restored.state("primary")).toBe("open");
    await Bun.sleep(5);
    fail = false;
    expect(await run(op())).toBe("ok");
    expect(changes).toEqual(["closed>open", "open>half-open", "half-open>closed"]);
    subscription.dispose();
    expect(guard.stats().lanes.primary).toMatchObject({ state: "closed", transitions: 3, rejections: 0 });
  });

  test("metrics: state gauge per lane, transitions and rejections by category", async () => {
    const reader = metricReader();
    const guard = breaker({ meterProvider: reader.meterProvider, recoveryMs: 60_000 });
    attachChain([guard], {
      name: "main",
      primaryLane: "primary",
      meterProvider: undefined,
      tracerProvider: undefined,
      lanes: new Map([["primary", { name: "primary", max: 1, host: "h", port: 1, database: "d", probe: async () => {} }]]),
    });
    const { run } = chain([guard], refused);
    for (let i = 0; i < 7; i++) await settled(run(op()));
    const metrics = await reader.values();
    expect(metrics.get("pgpilot.breaker.state")!.map((p) => [p.attributes["pgpilot.lane"], p.value])).toEqual([
      ["primary", 2],
    ]);
    expect(metrics.get("pgpilot.breaker.transitions")!.map((p) => [p.attributes["pgpilot.breaker.state"], p.value]))
      .toEqual([["open", 1]]);
    const rejections = metrics.get("pgpilot.breaker.rejections")!;
    expect(rejections.map((p) => [p.attributes["pgpilot.failure.category"], p.attributes["db.client.connection.pool.name"], p.value]))
      .toEqual([["connection", "main", 2]]);
    await guard.close();
    await reader.shutdown();
  });

  test("bad options are a ConfigError naming the field", () => {
    expect(() => breaker({ halfOpenRequests: 0 })).toThrow(/halfOpenRequests/);
    expect(() => breaker({ thresholds: { connection: 1.5 } })).toThrow(/thresholds\.connection/);
    expect(() => breaker({ thresholds: { query: 3 } } as any)).toThrow(/query/);
    expect(() => breaker({ failureRate: 0 })).toThrow(/failureRate/);
    expect(() => breaker({ recoveryMs: 5_000, maxRecoveryMs: 1_000 })).toThrow(/maxRecoveryMs/);
    expect(() => breaker({ initialState: { primary: { state: "open" } } } as any)).toThrow(ConfigError);
    expect(() => breaker({ recovery_timeout: 90 } as any)).toThrow(/recovery_timeout/);
  });
});

/**
 * adaptive() against the real PostgreSQL: the limit holds at the server, every caller settles
 * in FIFO order, queue timeout / shedding / aborts, transactions and reservations under a
 * limit of 1, the limit following a slowed server (pg_sleep load), pre-warming, config.
 */
import { afterAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ADAPTIVE_METRIC } from "../../../lib/interceptors/adaptive/metrics.ts";
import { adaptive, type AdaptiveInterceptor } from "../../../lib/interceptors/adaptive/index.ts";
import { gradient } from "../../../lib/interceptors/adaptive/strategies.ts";
import type { Interceptor } from "../../../lib/core/interceptor.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { ConfigError, PoolSaturatedError, PoolTimeoutError } from "../../../lib/shared/errors.ts";
import { testUrl } from "../../support/db.ts";
import { cleanupAfterEach, metricReader, until } from "../../support/kit.ts";

const url = testUrl();
/** What each test started (pools, workers, providers): stopped after that test, newest first. */
const cleanup = cleanupAfterEach();

/** A raw connection for watching the server (pg_stat_activity), outside every pool under test. */
const observer = postgres(url, { max: 1, onnotice: () => {} });
afterAll(() => observer.end({ timeout: 1 }));

let appCounter = 0;
function appName(): string {
  return `adaptive_${process.pid}_${++appCounter}_${Math.random().toString(36).slice(2, 6)}`;
}

function make(options: Parameters<typeof adaptive>[0], pool: { max: number; url?: string } = { max: 10 }, extra: Interceptor[] = []) {
  const application = appName();
  const limiter = adaptive(options);
  const sql = pilot(
    postgres(pool.url ?? url, { max: pool.max, onnotice: () => {}, connection: { application_name: application } }),
    { interceptors: [limiter, ...extra] },
  );
  cleanup.track(sql);
  return { sql, limiter, application };
}

async function backends(application: string, state?: string): Promise<number> {
  const rows = state === undefined
    ? await observer`select count(*)::int as n from pg_stat_activity where application_name = ${application}`
    : await observer`select count(*)::int as n from pg_stat_activity where application_name = ${application} and state = ${state}`;
  return rows[0]!.n as number;
}

/** Runs after adaptive: records the order in which operations got through. */
function admissions(): Interceptor & { order: unknown[] } {
  const order: unknown[] = [];
  return {
    name: "admissions",
    order,
    intercept(op, next) {
      order.push(op.query?.args[0]);
      return next();
    },
  };
}

/** postgres.js queries are lazy: start one now, keep the promise. */
function started<T extends Promise<unknown> & { execute(): unknown }>(query: T): T {
  query.execute();
  return query;
}

describe("admission", () => {
  /**
   * With pipelining (`pipelineDepth: 16`), queries share reserved connections: the server's active
   * backends stay within the limit all the same. The pool may open a few more connections than
   * the limit in all (the first queries go through it while the first reservations are made),
   * never more than its max. Without pipelining, it is never asked for more than the limit.
   */
  for (const pipelineDepth of [undefined, 16]) {
    test(`200 concurrent callers, max 10 (pool 20), pipelineDepth ${pipelineDepth ?? "default (0)"}: the server never sees more than 10 active, all settle, FIFO`, async () => {
      const order = admissions();
      const { sql, limiter, application } = make({ max: 10, prewarm: false, pipelineDepth }, { max: 20 }, [order]);
      const limits: number[] = [];
      limiter.onLimitChange((change) => limits.push(change.limit));
      let settled = false;
      const calls = Array.from({ length: 200 }, (_, i) => sql`select ${i}::int as i, pg_sleep(0.01)`.then((rows) => rows[0]!.i));
      const all = Promise.allSettled(calls).finally(() => (settled = true));
      let peakActive = 0;
      let samples = 0;
      while (!settled) {
        peakActive = Math.max(peakActive, await backends(application, "active"));
        samples++;
      }
      const results = await all;
      expect(results.every((r) => r.status === "fulfilled")).toBe(true);
      expect(results.map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual(calls.map((_, i) => i));
      expect(samples).toBeGreaterThan(1);
      expect(peakActive).toBeGreaterThan(0);
      expect(peakActive).toBeLessThanOrEqual(10);
      expect(await backends(application)).toBeLessThanOrEqual(pipelineDepth === undefined ? 10 : 20);
      expect(order.order).toEqual(calls.map((_, i) => i));
      for (const limit of limits) expect(limit).toBeLessThanOrEqual(10);
      expect(limiter.inFlight("primary")).toBe(0);
      expect(limiter.pending("primary")).toBe(0);
    }, 30_000);
  }

  test("queue timeout: PoolTimeoutError with the lane, the wait and the limit", async () => {
    const { sql } = make({ algorithm: "fixed", max: 1, queueTimeoutMs: 50, prewarm: false });
    const slow = started(sql`select pg_sleep(0.4)`);
    const error = await sql`select 1`.catch((e) => e);
    await slow;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error.code).toBe("POOL_TIMEOUT");
    expect(error.message).toMatch(/^lane "primary": waited \d+ ms for a connection \(limit 1, 0 queued\)$/);
    expect(error.waitedMs).toBeGreaterThanOrEqual(50);
    expect(sql.stats().adaptive).toMatchObject({ lanes: { primary: { rejected: { timeout: 1 } } } });
    // Nothing waits now, but the lane refused a call in this monitor interval.
    expect(sql.health().status).toBe("degraded");
    expect(sql.health().reasons).toEqual(['adaptive: lane "primary" refused 1 calls (queue timeout or full) recently']);
    expect([...await sql`select 2 as x`]).toEqual([{ x: 2 }]);
  });

  test("saturation: the call beyond maxQueue fails at once with PoolSaturatedError and the numbers", async () => {
    const { sql, limiter } = make({ algorithm: "fixed", max: 1, maxQueue: 2, prewarm: false });
    let slowDone = false;
    const slow = sql`select pg_sleep(0.3)`.then(() => (slowDone = true));
    const queued = [started(sql`select 1`), started(sql`select 2`)];
    const error = await sql`select 3`.catch((e) => e);
    expect(slowDone).toBe(false);
    expect(error).toBeInstanceOf(PoolSaturatedError);
    expect(error.message).toBe('lane "primary" saturated: 1 in flight and 2 queued (maxQueue)');
    expect(limiter.laneAvailable("primary")).toBe(false);
    expect(sql.health().status).toBe("degraded");
    expect(sql.health().reasons.join()).toContain('lane "primary" saturated: 2 waiting for 1 permits');
    await Promise.all([slow, ...queued]);
    expect(limiter.laneAvailable("primary")).toBe(true);
  });

  test("aborted waiters leave the queue: caller signal, query.cancel(); nothing reaches the server", async () => {
    const order = admissions();
    const { sql, limiter } = make({ algorithm: "fixed", max: 1, prewarm: false }, { max: 10 }, [order]);
    const slow = started(sql`select ${"slow"}::text, pg_sleep(0.3)`);
    const controller = new AbortController();
    const reason = new Error("caller gave up");
    const bySignal = sql.with({ signal: controller.signal })`select ${"signal"}::text`.catch((e) => e);
    const cancellable = sql`select ${"cancel"}::text`;
    const byCancel = cancellable.catch((e) => e);
    const kept = started(sql`select ${"kept"}::text as v`);
    await Bun.sleep(0);
    expect(limiter.pending("primary")).toBe(3);
    controller.abort(reason);
    cancellable.cancel();
    expect(await bySignal).toBe(reason);
    expect((await byCancel).code).toBe("57014");
    expect(limiter.pending("primary")).toBe(1);
    await slow;
    expect([...await kept]).toEqual([{ v: "kept" }]);
    expect(order.order).toEqual(["slow", "kept"]);
    expect(sql.stats().adaptive).toMatchObject({ lanes: { primary: { rejected: { aborted: 2 } } } });
  });

  test("limit 1: a transaction's own queries pass; others wait for the whole transaction", async () => {
    const { sql, limiter } = make({ algorithm: "fixed", max: 1, prewarm: false });
    const events: string[] = [];
    const tx = sql.begin(async (tx) => {
      await tx`select 1`;
      events.push("tx first");
      await Bun.sleep(20);
      await tx`select 2`;
      const [a, b] = await Promise.all([tx`select 3 as v`, tx`select 4 as v`]);
      events.push("tx last");
      return [a![0]!.v, b![0]!.v];
    });
    const outside = sql`select 5`.then(() => events.push("outside"));
    expect(await tx).toEqual([3, 4]);
    await outside;
    expect(events).toEqual(["tx first", "tx last", "outside"]);
    expect(limiter.inFlight("primary")).toBe(0);
  });

  test("close() rejects the operations still waiting with a CLOSED error; the running one finishes", async () => {
    const { sql } = make({ algorithm: "fixed", max: 1, prewarm: false });
    const running = started(sql`select pg_sleep(0.1) as slept`);
    const waiting = sql`select 1`.catch((e) => e);
    await Bun.sleep(0);
    const closing = sql.close({ timeout: 1 });
    const error = await waiting;
    expect(error.code).toBe("CLOSED");
    expect(error.message).toBe("pilot closed while the operation waited for a connection");
    expect((await running).length).toBe(1);
    await closing;
  });

  test("limit 1: a reservation holds its permit until release", async () => {
    const { sql, limiter } = make({ algorithm: "fixed", max: 1, prewarm: false });
    const reserved = await sql.reserve();
    expect([...await reserved`select 1 as v`]).toEqual([{ v: 1 }]);
    let outsideDone = false;
    const outside = sql`select 2`.then(() => (outsideDone = true));
    await reserved`select pg_sleep(0.05)`;
    expect(outsideDone).toBe(false);
    expect(limiter.pending("primary")).toBe(1);
    reserved.release();
    await outside;
    expect(limiter.inFlight("primary")).toBe(0);
  });
});

describe("adapting", () => {
  test("the limit falls when the server slows (pg_sleep) and rises after, never leaving [min, max]", async () => {
    const { sql, limiter } = make({ min: 2, max: 10, windowMs: 20, prewarm: false }, { max: 10 });
    const seen: number[] = [limiter.limit("primary")];
    limiter.onLimitChange((change) => seen.push(change.limit));
    // Seconds every query sleeps on the server: the "database slowdown" switch.
    let delay = 0;
    let running = true;
    cleanup.defer(() => (running = false));
    const failures: unknown[] = [];
    const workers = Array.from({ length: 20 }, async () => {
      while (running) {
        await sql`select pg_sleep(${delay})`.catch(async (error) => {
          failures.push(error);
          await Bun.sleep(10);
        });
      }
    });
    try {
      // A baseline first: the long-term RTT is learned over the first windows.
      const windows = () => sql.stats().adaptive.lanes.primary!.windows;
      await until(() => windows() >= 30, { message: "30 sampling windows", timeoutMs: 30_000 });
      const before = limiter.limit("primary");
      delay = 0.3;
      await until(() => limiter.limit("primary") <= before - 3, { message: "the limit to fall by 3", timeoutMs: 30_000 });
      const lowest = Math.min(...seen);
      delay = 0;
      await until(() => limiter.limit("primary") >= lowest + 2, { message: "the limit to rise by 2", timeoutMs: 30_000 });
    } finally {
      running = false;
      await Promise.all(workers);
    }
    expect(failures).toEqual([]);
    for (const limit of seen) {
      expect(limit).toBeGreaterThanOrEqual(2);
      expect(limit).toBeLessThanOrEqual(10);
    }
    const stats = sql.stats().adaptive;
    expect(stats.lanes.primary!.adjustments.down).toBeGreaterThan(0);
    expect(stats.lanes.primary.adjustments.up).toBeGreaterThan(0);
  }, 70_000);
});

describe("pre-warming", () => {
  test("prewarm(lane, n) opens n connections on an idle pool", async () => {
    const { limiter, application } = make({ prewarm: false }, { max: 10 });
    expect(await backends(application)).toBe(0);
    expect(await limiter.prewarm("primary", 6)).toBe(6);
    expect(await backends(application)).toBe(6);
  });

  /**
   * An open-loop ramp of 20 ms queries, arrivals spread over 10 ms steps. postgres.js opens
   * connections lazily, so without pre-warming the backends never outnumber the load's own
   * peak concurrency; with it, the forecast opens more before the ramp peaks. Backends are
   * compared with the peak as it stands when the count returns (never an earlier, lower one).
   */
  async function ramp(prewarm: boolean): Promise<{ ahead: boolean; beyondLoad: number }> {
    // Probe pre-warming of the pool itself: pipelined lanes reserve connections instead.
    const { sql, application } = make({ prewarm, intervalMs: 100, horizonMs: 300, pipelineDepth: 0 }, { max: 20 });
    let outstanding = 0;
    let peak = 0;
    const calls: Promise<unknown>[] = [];
    const checks: Promise<void>[] = [];
    let ahead = false;
    let beyondLoad = -Infinity;
    const steps = 200; // 200 × 10 ms = 2 s, rate 20/s → 400/s
    let due = 0;
    for (let step = 0; step < steps; step++) {
      due += (20 + (380 * step) / (steps - 1)) / 100;
      for (; due >= 1; due--) {
        outstanding++;
        peak = Math.max(peak, outstanding);
        calls.push(sql`select pg_sleep(0.02)`.finally(() => outstanding--));
      }
      if (step >= steps / 4 && step < (3 * steps) / 4 && step % 10 === 0) {
        checks.push(backends(application).then((open) => {
          beyondLoad = Math.max(beyondLoad, open - peak);
          if (open > peak) ahead = true;
        }));
      }
      await Bun.sleep(10);
    }
    await Promise.all([...calls, ...checks]);
    return { ahead, beyondLoad };
  }

  test("a forecast ramp opens connections before the load needs them; without pre-warm it never does", async () => {
    const without = await ramp(false);
    expect(without.beyondLoad).toBeLessThanOrEqual(0);
    const withPrewarm = await ramp(true);
    expect(withPrewarm.ahead).toBe(true);
  }, 30_000);
});

describe("metrics", () => {
  test("limit, queue, load, forecast gauges and the adjustment / rejection counters, per lane", async () => {
    const reader = metricReader();
    cleanup.defer(() => reader.shutdown());
    const { sql } = make({ algorithm: "fixed", max: 1, maxQueue: 0, intervalMs: 50, meterProvider: reader.meterProvider, prewarm: false });
    const slow = started(sql`select pg_sleep(0.2)`);
    expect((await sql`select 1`.catch((e) => e)).code).toBe("POOL_SATURATED");
    await slow;
    await Bun.sleep(120);
    const metrics = await reader.values();
    for (const name of Object.values(ADAPTIVE_METRIC)) {
      expect(name.startsWith("pgpilot.")).toBe(true);
      expect(name.endsWith("_count") || name.endsWith(".count")).toBe(false);
    }
    const lane = { "db.client.connection.pool.name": "default", "pgpilot.lane": "primary" };
    expect(metrics.get(ADAPTIVE_METRIC.LIMIT)).toEqual([{ attributes: lane, value: 1 }]);
    expect(metrics.get(ADAPTIVE_METRIC.QUEUED)).toEqual([{ attributes: lane, value: 0 }]);
    expect(metrics.get(ADAPTIVE_METRIC.REJECTIONS)).toEqual([
      { attributes: { ...lane, "pgpilot.adaptive.reason": "saturated" }, value: 1 },
    ]);
    for (const name of [ADAPTIVE_METRIC.LOAD_FACTOR, ADAPTIVE_METRIC.ARRIVAL_RATE, ADAPTIVE_METRIC.FORECAST, ADAPTIVE_METRIC.EVENT_LOOP_LAG]) {
      const points = metrics.get(name)!;
      expect(points.length).toBe(1);
      expect(points[0]!.value).toBeGreaterThanOrEqual(0);
    }
  });
});

describe("options and reports", () => {
  test("bad options throw ConfigError naming the field", () => {
    expect(() => adaptive({ min: 0 })).toThrow(ConfigError);
    expect(() => adaptive({ algorithm: "magic" as never })).toThrow(/algorithm/);
    expect(() => adaptive({ min: 9, max: 3 })).toThrow(/min: must be <= max \(3\)/);
    expect(() => adaptive({ algorithm: gradient({ growthFactor: 1 }) })).toThrow(/growthFactor/);
    expect(() => adaptive({ growthFactor: 1.5 } as never)).toThrow(/growthFactor/);
    expect(() => adaptive({ targetUtilization: 1.5 })).toThrow(/targetUtilization/);
    expect(() => adaptive({ nope: 1 } as never)).toThrow(/nope/);
  });

  test("max is capped at the pool's max; pipelined, at the reservable connections × pipelineDepth", () => {
    const capped = make({ max: 50, pipelineDepth: 0 }, { max: 4 }).limiter as AdaptiveInterceptor;
    expect(capped.limit("primary")).toBe(4);
    // Pool 4: one connection stays for transactions, 3 may be reserved, 3 queries each.
    const deeper = make({ pipelineDepth: 3 }, { max: 4 }).limiter;
    expect(deeper.limit("primary")).toBe(9);
    const explicit = make({ max: 6, pipelineDepth: 3 }, { max: 4 }).limiter;
    expect(explicit.limit("primary")).toBe(6);
    // A pool of one connection has none to reserve: not pipelined, capped at the pool.
    const single = make({ pipelineDepth: 16 }, { max: 1 });
    expect(single.limiter.limit("primary")).toBe(1);
    expect((single.sql.stats().adaptive as { lanes: Record<string, any> }).lanes.primary.pipeline).toBeUndefined();
  });

  test("stats() and health() of an idle lane", async () => {
    const { sql } = make({ prewarm: false }, { max: 5 });
    await sql`select 1`;
    const lane = (sql.stats().adaptive as { lanes: Record<string, any> }).lanes.primary;
    // Not pipelined by default: the limit is the pool's max.
    expect(lane).toMatchObject({ algorithm: "gradient", limit: 5, min: 1, max: 5, inFlight: 0, pending: 0, saturated: false });
    expect(lane.pipeline).toBeUndefined();
    // Pipelined, pool 5: 4 connections may be reserved, 16 queries each.
    const piped = make({ prewarm: false, pipelineDepth: 16 }, { max: 5 });
    await piped.sql`select 1`;
    const pipedLane = (piped.sql.stats().adaptive as { lanes: Record<string, any> }).lanes.primary;
    expect(pipedLane).toMatchObject({ limit: 64, max: 64 });
    expect(pipedLane.pipeline).toMatchObject({ depth: 16, maxConnections: 4, inFlight: 0, failures: 0, lost: 0 });
    expect(sql.health().status).toBe("healthy");
    expect(JSON.stringify(sql.stats())).not.toContain("select");
  });
});

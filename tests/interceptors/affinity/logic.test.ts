/**
 * Pure logic of affinity(): the learned-pattern state machine, the read-your-writes store, table
 * keys, least-outstanding balancing and option validation. Plain unit tests with an injected clock.
 */
import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ConfigError } from "../../../lib/shared/errors.ts";
import { LeastOutstanding } from "../../../lib/interceptors/affinity/balancer.ts";
import { type PatternChange, percentile95, PatternTracker } from "../../../lib/interceptors/affinity/patterns.ts";
import { RecentWrites } from "../../../lib/interceptors/affinity/recent-writes.ts";
import { tableKey, touchedTables } from "../../../lib/interceptors/affinity/tables.ts";
import { analyzeSql } from "../../../lib/sql/analyze.ts";
import { affinity } from "../../../lib/interceptors/affinity/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";

function tracker(changes: PatternChange[] = [], maxPatterns = 100, minSamples = 10) {
  let clock = 0;
  const patterns = new PatternTracker({
    slowMs: 100,
    recoverMs: 50,
    minSamples,
    maxPatterns,
    now: () => clock,
    onChange: (change) => changes.push(change),
  });
  const feed = (fingerprint: string, ms: number, times: number) => {
    for (let i = 0; i < times; i++) {
      clock += 1;
      patterns.record(fingerprint, "SELECT", "events", ms);
    }
  };
  return { patterns, feed };
}

describe("learned patterns (hysteresis)", () => {
  test("p95 is the nearest-rank 95th percentile", () => {
    expect(percentile95(Float64Array.from({ length: 20 }, (_, i) => i + 1))).toBe(19);
    expect(percentile95(Float64Array.from([5]))).toBe(5);
    expect(percentile95(Float64Array.from([1, 2, 3, 4, 100, 6, 7, 8, 9, 10]))).toBe(100);
  });

  test("a pattern moves to slow only after a full window whose p95 exceeds slowMs", () => {
    const changes: PatternChange[] = [];
    const { patterns, feed } = tracker(changes);
    feed("a", 500, 9);
    expect(patterns.isSlow("a")).toBe(false); // 9 samples < minSamples
    feed("a", 500, 1);
    expect(patterns.isSlow("a")).toBe(true);
    expect(changes).toEqual([{
      fingerprint: "a",
      command: "SELECT",
      collection: "events",
      from: "fast",
      to: "slow",
      p95Ms: 500,
      windowSamples: 10,
    }]);
  });

  test("p95, not max: with 20 samples per window one outlier does not move a pattern, two do", () => {
    const { patterns, feed } = tracker([], 100, 20);
    feed("a", 1, 19);
    feed("a", 1000, 1);
    expect(patterns.isSlow("a")).toBe(false);
    feed("a", 1, 18);
    feed("a", 1000, 2);
    expect(patterns.isSlow("a")).toBe(true);
  });

  test("between recoverMs and slowMs nothing changes, in either state", () => {
    const { patterns, feed } = tracker();
    feed("a", 80, 50); // below slowMs: stays fast
    expect(patterns.isSlow("a")).toBe(false);
    feed("a", 150, 10);
    expect(patterns.isSlow("a")).toBe(true);
    feed("a", 80, 50); // above recoverMs: stays slow
    expect(patterns.isSlow("a")).toBe(true);
    feed("a", 40, 9);
    expect(patterns.isSlow("a")).toBe(true); // window not complete yet
    feed("a", 40, 1);
    expect(patterns.isSlow("a")).toBe(false);
  });

  test("evidence lists slow patterns with their window p95, no SQL text", () => {
    const { patterns, feed } = tracker();
    feed("slow", 300, 10);
    feed("fast", 2, 10);
    const evidence = patterns.evidence(10);
    expect(evidence.slow.map((e) => [e.fingerprint, e.state, e.lastWindowP95Ms, e.samples, e.windows])).toEqual([
      ["slow", "slow", 300, 10, 1],
    ]);
    expect(evidence.fast.map((e) => e.fingerprint)).toEqual(["fast"]);
    expect(patterns.size).toEqual({ tracked: 2, slow: 1 });
  });

  test("the number of patterns is bounded; slow patterns are kept over fast ones", () => {
    const { patterns, feed } = tracker([], 3);
    feed("slow", 300, 10);
    for (let i = 0; i < 20; i++) feed(`fast-${i}`, 1, 1);
    expect(patterns.size).toEqual({ tracked: 3, slow: 1 });
    expect(patterns.isSlow("slow")).toBe(true);
  });
});

describe("read-your-writes store", () => {
  function store(windowMs = 1000, maxTables = 100) {
    const clock = { now: 0 };
    return { clock, writes: new RecentWrites({ windowMs, maxTables, now: () => clock.now }) };
  }
  const t = (sql: string) => touchedTables(analyzeSql(sql));

  test("a written table is recent for windowMs, other tables are not", () => {
    const { clock, writes } = store();
    expect(writes.touches(t("select * from orders"))).toBe(false);
    writes.mark(t("update orders set paid = true where id = $1"));
    expect(writes.touches(t("select * from public.ORDERS where id = $1"))).toBe(true);
    expect(writes.touches(t("select * from users o join orders x on true"))).toBe(true);
    expect(writes.touches(t("select * from users"))).toBe(false);
    clock.now = 999;
    expect(writes.touches(t("select * from orders"))).toBe(true);
    clock.now = 1000;
    expect(writes.touches(t("select * from orders"))).toBe(false);
    expect(writes.snapshot()).toEqual({ tables: 0, everything: false });
  });

  test("writes to unknown tables make every table recent; SET and nextval() do not", () => {
    const { clock, writes } = store();
    writes.mark(t("set search_path = public"));
    writes.mark(t("select nextval('s')"));
    expect(writes.touches(t("select * from users"))).toBe(false);
    writes.mark(t("insert into $1 values ($2)"));
    expect(writes.touches(t("select * from users"))).toBe(true);
    expect(writes.snapshot().everything).toBe(true);
    clock.now = 2000;
    writes.mark(t("call archive_everything()"));
    expect(writes.touches(t("select 1"))).toBe(true);
  });

  test("a read of a table given by a parameter counts as touching any recent write", () => {
    const { writes } = store();
    const dynamicRead = t("select * from $1 where id = $2");
    expect(dynamicRead.dynamic).toBe(true);
    expect(writes.touches(dynamicRead)).toBe(false);
    writes.mark(t("delete from sessions where id = $1"));
    expect(writes.touches(dynamicRead)).toBe(true);
  });

  test("memory is bounded: past maxTables every table counts as written until the window ends", () => {
    const { clock, writes } = store(1000, 3);
    for (const name of ["a", "b", "c", "d"]) writes.mark(t(`insert into ${name} values (1)`));
    expect(writes.touches(t("select * from zzz"))).toBe(true);
    clock.now = 1000;
    expect(writes.touches(t("select * from zzz"))).toBe(false);
  });

  test("windowMs 0 turns it off", () => {
    const { writes } = store(0);
    writes.mark(t("insert into a values (1)"));
    expect(writes.touches(t("select * from a"))).toBe(false);
  });

  test("table keys: last name part, lower-cased", () => {
    expect(tableKey("public.Orders")).toBe("orders");
    expect(t('select * from "S"."T" join u using (id)').keys).toEqual(["t", "u"]);
  });
});

describe("least outstanding", () => {
  test("picks the lowest outstanding per connection among available lanes, ties rotate", () => {
    const balancer = new LeastOutstanding();
    const a = { name: "a", max: 10, outstanding: 5 };
    const b = { name: "b", max: 20, outstanding: 6 }; // 0.3 < 0.5
    expect(balancer.pick([a, b], () => true)?.name).toBe("b");
    expect(balancer.pick([a, b], (lane) => lane.name === "a")?.name).toBe("a");
    expect(balancer.pick([a, b], () => false)).toBeUndefined();
    a.outstanding = 0;
    b.outstanding = 0;
    const picks = Array.from({ length: 4 }, () => balancer.pick([a, b], () => true)!.name);
    expect(picks.filter((name) => name === "a").length).toBe(2);
  });
});

describe("options", () => {
  test("bad values throw ConfigError naming the field", () => {
    expect(() => affinity({ slowMs: 0 })).toThrow(ConfigError);
    expect(() => affinity({ slowMs: 0 })).toThrow(/slowMs/);
    expect(() => affinity({ minSamples: 1.5 })).toThrow(/minSamples/);
    expect(() => affinity({ slowMs: 100, recoverMs: 200 })).toThrow(/recoverMs/);
    expect(() => affinity({ readYourWritesMs: -1 })).toThrow(/readYourWritesMs/);
    expect(() => affinity({ reads: "" })).toThrow(/reads/);
    expect(() => affinity({ nope: 1 } as never)).toThrow(/nope/);
  });

  test("unknown lanes are refused when pilot() is created, before any query", async () => {
    const lanes = () => ({ primary: postgres({ max: 1 }), replica: postgres({ max: 1 }) });
    expect(() => pilot(lanes(), { interceptors: [affinity({ reads: "replcia" })] })).toThrow(
      /reads: no lane named "replcia"/,
    );
    expect(() => pilot(lanes(), { interceptors: [affinity({ reads: ["replica", "x"], slow: "analytics" })] })).toThrow(
      /slow: no lane named "analytics".*reads\[1\]: no lane named "x"/,
    );
    const once = affinity();
    const sql = pilot(lanes(), { interceptors: [once] });
    expect(() => pilot(lanes(), { interceptors: [once] })).toThrow(/one pilot/);
    await sql.close({ timeout: 1 });
  });

  test("default read lanes: every lane but the primary and the slow lane", async () => {
    const sql = pilot(
      { main: postgres({ max: 1 }), r1: postgres({ max: 1 }), r2: postgres({ max: 1 }), olap: postgres({ max: 1 }) },
      { interceptors: [affinity({ slow: "olap" })] },
    );
    const stats = sql.stats().affinity as { primary: string; reads: string[]; slow: string };
    expect([stats.primary, stats.reads, stats.slow]).toEqual(["main", ["r1", "r2"], "olap"]);
    await sql.close({ timeout: 1 });
  });
});

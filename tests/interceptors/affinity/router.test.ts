/**
 * The routing rules of affinity() as a pure function of the operation, the learned patterns,
 * the recent writes and lane availability (no database: the lanes here are never queried).
 */
import { describe, expect, test } from "bun:test";
import type { LaneInfo } from "../../../lib/core/interceptor.ts";
import { NO_SQL, Operation } from "../../../lib/core/operation.ts";
import { PatternTracker } from "../../../lib/interceptors/affinity/patterns.ts";
import { RecentWrites } from "../../../lib/interceptors/affinity/recent-writes.ts";
import { Router } from "../../../lib/interceptors/affinity/router.ts";
import { touchedTables } from "../../../lib/interceptors/affinity/tables.ts";
import { analyzeUnsafe } from "../../../lib/sql/cache.ts";

const lane = (name: string, port: number, max = 10): LaneInfo => ({
  name,
  max,
  host: "db",
  port,
  database: "app",
  probe: () => Promise.resolve(),
});

function setup(options: { reads?: string[]; slow?: string; down?: string[] } = {}) {
  const lanes = new Map<string, LaneInfo>([
    ["primary", lane("primary", 5432)],
    ["r1", lane("r1", 5433)],
    ["r2", lane("r2", 5434)],
    ["olap", lane("olap", 5432, 3)], // same server as the primary
    ["olap-replica", lane("olap-replica", 5435, 3)],
  ]);
  const clock = { now: 0 };
  const patterns = new PatternTracker({ slowMs: 100, recoverMs: 50, minSamples: 2, maxPatterns: 10, now: () => clock.now });
  const recentWrites = new RecentWrites({ windowMs: 1000, maxTables: 100, now: () => clock.now });
  const down = new Set(options.down ?? []);
  const router = new Router({
    lanes,
    primary: "primary",
    reads: options.reads ?? ["r1", "r2"],
    slow: "slow" in options ? options.slow : "olap",
    patterns,
    recentWrites,
    available: (name) => !down.has(name),
    attributes: { "db.client.connection.pool.name": "test" },
  });
  const query = (text: string, lane?: string) =>
    new Operation("query", analyzeUnsafe(text), "primary", undefined, undefined, lane ? { lane } : undefined);
  const route = (op: Operation) => {
    const chosen = router.route(op);
    return `${chosen.lane.name}:${chosen.reason}`;
  };
  const makeSlow = (text: string) => {
    const analysis = analyzeUnsafe(text);
    patterns.record(analysis.fingerprint, analysis.command, analysis.collection, 500);
    patterns.record(analysis.fingerprint, analysis.command, analysis.collection, 500);
  };
  const write = (text: string) => recentWrites.mark(touchedTables(analyzeUnsafe(text)));
  return { router, query, route, makeSlow, write, down, clock };
}

describe("routing rules", () => {
  test("writes, non-read-only statements, transactions and reserve go to the primary", () => {
    const { route, query } = setup();
    expect(route(query("update t set x = 1"))).toBe("primary:write");
    expect(route(query("select nextval('s')"))).toBe("primary:write");
    expect(route(query("select * from t for update"))).toBe("primary:write");
    expect(route(new Operation("transaction", NO_SQL("BEGIN"), "primary", undefined, undefined, undefined)))
      .toBe("primary:write");
    expect(route(new Operation("reserve", NO_SQL("RESERVE"), "primary", undefined, undefined, undefined)))
      .toBe("primary:write");
    expect(route(new Operation("query", NO_SQL("LISTEN"), "primary", undefined, undefined, undefined)))
      .toBe("primary:write");
  });

  test("reads are spread over the read lanes; explicit lanes and valid hints win, unknown hints are ignored", () => {
    const { route, query } = setup();
    const seen = new Set(Array.from({ length: 4 }, () => route(query("select * from t"))));
    expect([...seen].sort()).toEqual(["r1:read", "r2:read"]);
    expect(route(query("update t set x = 1", "r1"))).toBe("r1:override");
    expect(route(query("/* pgpilot:lane=olap */ select 1"))).toBe("olap:override");
    expect(route(query("/* pgpilot:lane=missing */ select 1"))).toMatch(/^r[12]:read$/);
  });

  test("reads fall back to the primary only when every read lane is unavailable", () => {
    const { route, query, down } = setup({ down: ["r1"] });
    expect(route(query("select 1"))).toBe("r2:read");
    down.add("r2");
    expect(route(query("select 1"))).toBe("primary:fallback");
  });

  test("without read lanes, reads stay on the primary (not a fallback)", () => {
    const { route, query } = setup({ reads: [] });
    expect(route(query("select 1"))).toBe("primary:read");
  });

  test("slow patterns go to the slow lane; while it is unavailable to a read lane, never the primary", () => {
    const { route, query, makeSlow, down } = setup();
    makeSlow("select sum(x) from big");
    expect(route(query("select sum(x) from big"))).toBe("olap:slow-pattern");
    down.add("olap");
    expect(route(query("select sum(x) from big"))).toMatch(/^r[12]:fallback$/);
    down.add("r1").add("r2");
    expect(route(query("select sum(x) from big"))).toBe("olap:slow-pattern");
    const noReplicas = setup({ reads: [], down: ["olap"] });
    noReplicas.makeSlow("select sum(x) from big");
    expect(noReplicas.route(noReplicas.query("select sum(x) from big"))).toBe("olap:slow-pattern");
  });

  test("read-your-writes: reads of a written table go to the primary; a slow lane on the primary's server keeps its patterns", () => {
    const { route, query, makeSlow, write, clock } = setup();
    write("insert into orders values (1)");
    expect(route(query("select * from orders"))).toBe("primary:read-your-writes");
    expect(route(query("select * from customers"))).toMatch(/^r[12]:read$/);
    makeSlow("select sum(total) from orders");
    expect(route(query("select sum(total) from orders"))).toBe("olap:slow-pattern"); // olap is the primary's server
    clock.now = 1000;
    expect(route(query("select * from orders"))).toMatch(/^r[12]:read$/);

    const replicaOlap = setup({ slow: "olap-replica" });
    replicaOlap.write("insert into orders values (1)");
    replicaOlap.makeSlow("select sum(total) from orders");
    expect(replicaOlap.route(replicaOlap.query("select sum(total) from orders"))).toBe("primary:read-your-writes");
  });

  test("a read lane on the primary's own server may serve read-your-writes reads", () => {
    const { route, query, write } = setup({ reads: ["r1", "olap"] });
    write("update orders set paid = true");
    expect(route(query("select * from orders"))).toBe("olap:read-your-writes");
  });
});

/** The test kit itself: until, settled, Cleanup, metricReader. No database. */
import { describe, expect, test } from "bun:test";
import { Cleanup, metricReader, settled, until } from "./kit.ts";

describe("until", () => {
  test("resolves with the condition's first truthy value", async () => {
    let calls = 0;
    const value = await until(() => (++calls >= 3 ? { calls } : undefined), { message: "three calls" });
    expect(value).toEqual({ calls: 3 });
  });

  test("awaits async conditions", async () => {
    let n = 0;
    expect(await until(async () => ++n === 2, { message: "n to be 2" })).toBe(true);
  });

  test("fails with what it waited for after timeoutMs", async () => {
    const error = await settled(until(() => false, { message: "a fact that never holds", timeoutMs: 20 }));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe("timed out after 20 ms waiting for a fact that never holds");
  });
});

test("settled: the rejection's error, or undefined; never rejects", async () => {
  const boom = new Error("boom");
  expect(await settled(Promise.reject(boom))).toBe(boom);
  expect(await settled(Promise.resolve(1))).toBeUndefined();
});

describe("Cleanup", () => {
  test("runs every task newest first, closes tracked pilots and postgres.js sqls, and forgets them", async () => {
    const order: string[] = [];
    const cleanup = new Cleanup();
    cleanup.defer(() => order.push("first"));
    const pilotLike = cleanup.track({ close: async (o: { timeout: number }) => void order.push(`close ${o.timeout}`) });
    cleanup.track({ end: async (o: { timeout: number }) => void order.push(`end ${o.timeout}`) });
    cleanup.defer(async () => void order.push("last"));
    expect(typeof pilotLike.close).toBe("function");
    await cleanup.run();
    expect(order).toEqual(["last", "end 1", "close 1", "first"]);
    await cleanup.run();
    expect(order).toHaveLength(4);
  });

  test("a failing task does not stop the others; run() then throws the first failure", async () => {
    const ran: number[] = [];
    const cleanup = new Cleanup();
    cleanup.defer(() => ran.push(1));
    cleanup.defer(() => {
      throw new Error("second");
    });
    cleanup.defer(async () => {
      ran.push(3);
      throw new Error("third");
    });
    const error = await settled(cleanup.run());
    expect(error?.message).toBe("third");
    expect(ran).toEqual([3, 1]);
  });
});

test("metricReader: what a meter records, collected by hand", async () => {
  const reader = metricReader();
  const counter = reader.meterProvider.getMeter("kit").createCounter("kit.calls");
  counter.add(2, { lane: "primary" });
  counter.add(1, { lane: "replica" });
  const values = await reader.values();
  expect(values.get("kit.calls")).toEqual([
    { attributes: { lane: "primary" }, value: 2 },
    { attributes: { lane: "replica" }, value: 1 },
  ]);
  expect((await reader.points("kit.calls")).map((point) => point.value)).toEqual([2, 1]);
  expect(await reader.points("kit.none")).toEqual([]);
  await reader.shutdown();
});

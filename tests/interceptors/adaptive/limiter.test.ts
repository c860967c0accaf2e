/**
 * The limiter on its own (pure logic, no database): permits, FIFO order, queue timeout,
 * load shedding, aborts, limit changes — and a fast-check property over random sequences.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Limiter } from "../../../lib/interceptors/adaptive/limiter.ts";
import { isPilotError, PoolSaturatedError, PoolTimeoutError } from "../../../lib/shared/errors.ts";

const flush = async () => {
  for (let i = 0; i < 4; i++) await Promise.resolve();
};

function limiter(limit: number, extra: Partial<ConstructorParameters<typeof Limiter>[0]> = {}): Limiter {
  return new Limiter({ lane: "primary", limit, queueTimeoutMs: Infinity, maxQueue: Infinity, ...extra });
}

describe("Limiter", () => {
  test("admits up to the limit, then queues; releases hand permits over in arrival order", async () => {
    const l = limiter(2);
    expect(l.tryAcquire()).toBe(true);
    expect(l.tryAcquire()).toBe(true);
    expect(l.tryAcquire()).toBe(false);
    const order: number[] = [];
    const waits = [1, 2, 3].map((i) => l.acquire().then(() => order.push(i)));
    expect(l.pending).toBe(3);
    l.release();
    await flush();
    expect(order).toEqual([1]);
    expect(l.inFlight).toBe(2);
    l.release();
    l.release();
    await Promise.all(waits);
    expect(order).toEqual([1, 2, 3]);
    expect(l.inFlight).toBe(2);
    expect(l.pending).toBe(0);
  });

  test("a newcomer never overtakes a waiter, even when a permit is momentarily free", async () => {
    const l = limiter(1);
    expect(l.tryAcquire()).toBe(true);
    const first = l.acquire();
    expect(l.tryAcquire()).toBe(false);
    l.release();
    // The permit went to the waiter synchronously: nothing is free for a newcomer.
    expect(l.tryAcquire()).toBe(false);
    await first;
    expect(l.inFlight).toBe(1);
  });

  test("raising the limit admits waiters at once; lowering it lets in-flight drain first", async () => {
    const l = limiter(1);
    l.tryAcquire();
    const waits = [l.acquire(), l.acquire(), l.acquire()];
    l.setLimit(3);
    expect(l.inFlight).toBe(3);
    expect(l.pending).toBe(1);
    l.setLimit(1);
    l.release();
    l.release();
    expect(l.inFlight).toBe(1);
    expect(l.pending).toBe(1);
    l.release();
    await Promise.all(waits);
    expect(l.inFlight).toBe(1);
    expect(l.pending).toBe(0);
  });

  test("a waiter times out with PoolTimeoutError naming the lane, the wait and the limit", async () => {
    let clock = 0;
    const l = limiter(1, { queueTimeoutMs: 20, now: () => clock });
    l.tryAcquire();
    const waiting = l.acquire();
    clock = 25;
    const error = await waiting.catch((e) => e);
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(isPilotError(error) && error.code).toBe("POOL_TIMEOUT");
    expect(error.message).toBe('lane "primary": waited 25 ms for a connection (limit 1, 0 queued)');
    expect(l.pending).toBe(0);
    expect(l.inFlight).toBe(1);
  });

  test("timeouts expire the oldest first and leave younger waiters queued", async () => {
    let clock = 0;
    const l = limiter(1, { queueTimeoutMs: 30, now: () => clock });
    l.tryAcquire();
    const old = l.acquire().catch((e) => e);
    clock = 20;
    const young = l.acquire();
    clock = 31;
    expect(await old).toBeInstanceOf(PoolTimeoutError);
    expect(l.pending).toBe(1);
    l.release();
    await young;
    expect(l.inFlight).toBe(1);
  });

  test("a full queue sheds at once with PoolSaturatedError giving the numbers", async () => {
    const outcomes: string[] = [];
    const l = limiter(1, { maxQueue: 2, onGiveUp: (outcome) => outcomes.push(outcome) });
    l.tryAcquire();
    const queued = [l.acquire(), l.acquire()];
    const error = await l.acquire().catch((e) => e);
    expect(error).toBeInstanceOf(PoolSaturatedError);
    expect(error.code).toBe("POOL_SATURATED");
    expect(error.message).toBe('lane "primary" saturated: 1 in flight and 2 queued (maxQueue)');
    expect(outcomes).toEqual(["shed"]);
    expect(l.pending).toBe(2);
    l.release();
    l.release();
    await Promise.all(queued);
  });

  test("maxQueue 0 admits or sheds, never queues", async () => {
    const l = limiter(1, { maxQueue: 0 });
    l.tryAcquire();
    expect(await l.acquire().catch((e) => e.code)).toBe("POOL_SATURATED");
    expect(l.pending).toBe(0);
  });

  test("an aborted waiter leaves the queue with the signal's reason; the others keep their order", async () => {
    const l = limiter(1);
    l.tryAcquire();
    const controller = new AbortController();
    const order: string[] = [];
    const a = l.acquire().then(() => order.push("a"));
    const b = l.acquire(controller.signal).catch((e) => e);
    const c = l.acquire().then(() => order.push("c"));
    const reason = new Error("gave up");
    controller.abort(reason);
    expect(await b).toBe(reason);
    expect(l.pending).toBe(2);
    l.release();
    await a;
    l.release();
    await c;
    expect(order).toEqual(["a", "c"]);
  });

  test("an already aborted signal is refused without queueing", async () => {
    const l = limiter(1);
    l.tryAcquire();
    const reason = new Error("late");
    expect(await l.acquire(AbortSignal.abort(reason)).catch((e) => e)).toBe(reason);
    expect(l.pending).toBe(0);
  });

  test("a granted waiter's abort listener is removed", async () => {
    const l = limiter(1);
    l.tryAcquire();
    const controller = new AbortController();
    const waiting = l.acquire(controller.signal);
    l.release();
    await waiting;
    controller.abort(new Error("after grant"));
    expect(l.inFlight).toBe(1);
    expect(l.pending).toBe(0);
  });

  test("drain rejects every waiter", async () => {
    const l = limiter(1);
    l.tryAcquire();
    const waits = [l.acquire().catch((e) => e), l.acquire().catch((e) => e)];
    const reason = new Error("closed");
    l.drain(reason);
    expect(await Promise.all(waits)).toEqual([reason, reason]);
    expect(l.pending).toBe(0);
  });
});

/** One step of a random scenario. */
type Step =
  | { kind: "arrive"; abortable: boolean }
  | { kind: "complete"; pick: number }
  | { kind: "abort"; pick: number }
  | { kind: "limit"; value: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("arrive" as const), abortable: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("complete" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("abort" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("limit" as const), value: fc.integer({ min: 1, max: 6 }) }) },
);

describe("Limiter properties", () => {
  test("for random arrivals, completions, aborts and limit changes the invariants hold", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 6 }),
        fc.array(step, { maxLength: 60 }),
        async (initial, maxQueue, steps) => {
          const violations: string[] = [];
          const l: Limiter = limiter(initial, {
            maxQueue,
            onGranted: () => {
              if (l.inFlight > l.limit) violations.push(`granted above the limit: ${l.inFlight} > ${l.limit}`);
            },
          });
          let nextId = 0;
          const holding: number[] = [];
          const waiting: { id: number; controller: AbortController | undefined }[] = [];
          const grantOrder: number[] = [];
          const arrivalOrder: number[] = [];

          for (const s of steps) {
            if (s.kind === "arrive") {
              const id = nextId++;
              if (l.tryAcquire()) {
                if (l.inFlight > l.limit) violations.push("tryAcquire above the limit");
                holding.push(id);
                continue;
              }
              if (l.pending >= maxQueue) {
                const code = await l.acquire().catch((e) => e.code);
                if (code !== "POOL_SATURATED") violations.push(`full queue did not shed: ${code}`);
                continue;
              }
              const controller = s.abortable ? new AbortController() : undefined;
              arrivalOrder.push(id);
              waiting.push({ id, controller });
              l.acquire(controller?.signal).then(
                () => {
                  grantOrder.push(id);
                  holding.push(id);
                  waiting.splice(waiting.findIndex((w) => w.id === id), 1);
                },
                () => {
                  arrivalOrder.splice(arrivalOrder.indexOf(id), 1);
                  waiting.splice(waiting.findIndex((w) => w.id === id), 1);
                },
              );
            } else if (s.kind === "complete") {
              if (holding.length === 0) continue;
              holding.splice(s.pick % holding.length, 1);
              l.release();
            } else if (s.kind === "abort") {
              const abortable = waiting.filter((w) => w.controller !== undefined && !w.controller.signal.aborted);
              if (abortable.length === 0) continue;
              abortable[s.pick % abortable.length]!.controller!.abort(new Error("abort"));
            } else {
              l.setLimit(s.value);
            }
            await flush();
            if (l.inFlight !== holding.length) violations.push(`inFlight ${l.inFlight} != holders ${holding.length}`);
            if (l.pending !== waiting.length) violations.push(`pending ${l.pending} != waiters ${waiting.length}`);
            if (l.pending > maxQueue) violations.push(`pending ${l.pending} > maxQueue ${maxQueue}`);
            // Work-conserving: nobody waits while a permit is free.
            if (l.pending > 0 && l.inFlight < l.limit) violations.push(`idle permit while ${l.pending} wait`);
          }
          // Grants follow arrival order (aborted waiters removed).
          const expected = arrivalOrder.slice(0, grantOrder.length);
          if (grantOrder.join() !== expected.join()) violations.push(`order ${grantOrder} vs ${expected}`);
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

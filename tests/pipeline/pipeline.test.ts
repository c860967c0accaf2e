/**
 * The pipeline's bookkeeping without a server: fake reservations whose connection object
 * records what is written to it. Growth with demand, the reservable maximum, room for pool
 * work, describe-first ordering, lost and closed connections, trimming at the tick, close().
 */
import { describe, expect, test } from "bun:test";
import { Pipeline, type ReservedConnection } from "../../lib/pipeline/pipeline.ts";
import type { RawQuery } from "../../lib/core/postgres-internals.ts";

interface FakeConnection {
  reserved: unknown;
  onclose?: ((error: unknown) => void) | null;
  written: FakeQuery[];
  execute(query: FakeQuery): boolean;
}

interface FakeQuery {
  name: string;
  describeFirst?: boolean;
  cursorFn?: unknown;
  error?: unknown;
  reject(error: unknown): void;
}

/** A postgres.js reservation as far as the pipeline uses it. */
function fakeReservation(pid: number, describes: Set<string>) {
  const connection: FakeConnection = {
    reserved: () => {},
    written: [],
    execute(query) {
      if ((query as { cancelled?: unknown }).cancelled) return true;
      this.written.push(query);
      // What postgres.js's build() and execute() set (lib/core/postgres-internals.ts relies on them).
      Object.assign(query, { state: {}, prepare: true, prepared: false, signature: query.name, statement: { name: "" } });
      // postgres.js sets describeFirst while it builds a statement it has not prepared.
      query.describeFirst = describes.has(query.name);
      return true;
    },
  };
  const reservation = {
    connection,
    released: false,
    unsafe(_text: string, _args: unknown[], options: { onexecute(connection: FakeConnection): boolean }) {
      const probe = Object.assign(Promise.resolve([{ pid }]), { name: "probe", describe() {}, reject() {} });
      connection.execute(probe as never);
      connection.written.pop(); // the reservation's own query, not one of the test's
      options.onexecute(connection);
      return probe;
    },
    release() {
      reservation.released = true;
      connection.reserved = null;
    },
  };
  return reservation;
}

function setup(options: { depth?: number; poolMax?: number; maxConnections?: number } = {}) {
  const reservations: ReturnType<typeof fakeReservation>[] = [];
  const describes = new Set<string>();
  const pipeline = new Pipeline({
    lane: "primary",
    depth: options.depth ?? 2,
    poolMax: options.poolMax ?? 10,
    maxConnections: options.maxConnections ?? 3,
    reserve: () => {
      const reservation = fakeReservation(100 + reservations.length, describes);
      reservations.push(reservation);
      return Promise.resolve(reservation as never);
    },
  });
  return { pipeline, reservations, describes };
}

function query(name: string): FakeQuery & RawQuery {
  const fake: FakeQuery = {
    name,
    reject(error) {
      fake.error = error;
    },
  };
  return fake as FakeQuery & RawQuery;
}

/** Let the fake reservations (promises) resolve. */
const settleReservations = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("Pipeline", () => {
  test("the first query goes through the pool and reserves a connection; later ones share it up to the depth", async () => {
    const { pipeline, reservations } = setup({ depth: 2 });
    expect(pipeline.pick(1, 0, 0)).toBeUndefined();
    expect(pipeline.held).toBe(1);
    await settleReservations();
    expect(pipeline.stats()).toMatchObject({ connections: 1, pids: [100], reserved: 1 });
    const a = pipeline.pick(1, 0, 1)!;
    const b = pipeline.pick(2, 0, 1)!;
    expect(a).toBe(b);
    expect(a.load).toBe(2);
    expect(reservations.length).toBe(1);
    // At its depth with demand for more: one more is reserved; meanwhile the query still goes to it.
    expect(pipeline.pick(3, 0, 1)).toBe(a);
    expect(reservations.length).toBe(2);
    await settleReservations();
    const c = pipeline.pick(4, 0, 1)!;
    expect(c).not.toBe(a);
    expect(pipeline.load).toBe(4);
  });

  test("never more than maxConnections, and never into the room pool work needs", async () => {
    const { pipeline, reservations } = setup({ depth: 1, poolMax: 10, maxConnections: 3 });
    for (let i = 1; i <= 50; i++) pipeline.pick(i, 0, 0);
    expect(reservations.length).toBe(3);
    const crowded = setup({ depth: 1, poolMax: 10, maxConnections: 8 });
    for (let i = 1; i <= 50; i++) crowded.pipeline.pick(i, 9, 0);
    // 9 operations on pool connections, pool of 10: one connection left to reserve.
    expect(crowded.reservations.length).toBe(1);
  });

  test("a statement described first is the last one on the wire until it settles; the queries after it are written then", async () => {
    const { pipeline, reservations, describes } = setup({ depth: 8, maxConnections: 1 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    describes.add("new");
    const first = pipeline.pick(1, 0, 0)!;
    const described = query("new");
    first.send(described);
    const later = [query("a"), query("b")];
    for (const q of later) pipeline.pick(2, 0, 0)!.send(q);
    const wire = reservations[0]!.connection.written;
    expect(wire.map((q) => q.name)).toEqual(["new"]);
    pipeline.settle(first, described, undefined, 1);
    expect(wire.map((q) => q.name)).toEqual(["new", "a", "b"]);
  });

  test("a connection error: the connection takes no more queries, its waiting queries fail, it is released once idle", async () => {
    const { pipeline, reservations } = setup({ depth: 4, maxConnections: 2 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    const connection = pipeline.pick(1, 0, 0)!;
    const other = pipeline.pick(2, 0, 0)!;
    expect(other).toBe(connection);
    const failed = query("x");
    connection.send(failed);
    pipeline.settle(connection, failed, Object.assign(new Error("gone"), { code: "CONNECTION_CLOSED" }), 1);
    expect(pipeline.stats()).toMatchObject({ lost: 1, connections: 0 });
    expect(reservations[0]!.released).toBe(false);
    // Nothing is taking queries now: the next query goes through the pool, and a replacement
    // is reserved while the lost connection still holds its pool slot.
    expect(pipeline.pick(1, 0, 2)).toBeUndefined();
    expect(reservations.length).toBe(2);
    await settleReservations();
    expect(pipeline.pick(2, 0, 2)).not.toBe(connection);
    pipeline.settle(other, undefined, Object.assign(new Error("gone"), { code: "CONNECTION_CLOSED" }), 2);
    expect(reservations[0]!.released).toBe(true);
    expect(pipeline.stats()).toMatchObject({ released: 1, connections: 1, pids: [101] });
    // A query sent to it after all fails as a connection error, never reaches the socket.
    const late = query("late");
    connection.send(late);
    expect((late.error as { code?: string }).code).toBe("CONNECTION_CLOSED");
  });

  test("a query failing with a connection error stops writes to its connection at once, before the pipeline hears of it", async () => {
    const { pipeline, reservations } = setup({ depth: 4, maxConnections: 1 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    const connection = pipeline.pick(1, 0, 0)!;
    const first = query("first");
    connection.send(first);
    // postgres.js's socket 'error' handler rejects what was sent; connection.reserved stays set
    // until the socket's 'close'.
    first.reject(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    expect(connection.alive).toBe(false);
    const next = query("next");
    connection.send(next);
    expect(reservations[0]!.connection.written.map((q) => q.name)).toEqual(["first"]);
    expect((next.error as { code?: string }).code).toBe("CONNECTION_CLOSED");
  });

  test("queries still owed an answer when postgres.js closes the connection fail as connection errors", async () => {
    const { pipeline, reservations } = setup({ depth: 4, maxConnections: 1 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    const connection = pipeline.pick(1, 0, 0)!;
    const owed = [query("a"), query("b")];
    for (const q of owed) connection.send(q);
    const answered = query("c");
    connection.send(answered);
    answered.reject(Object.assign(new Error("division by zero"), { code: "22012" }));
    // postgres.js's close handler after a socket error rejects nothing more (closed(hadError)),
    // then the pool's onclose clears `reserved` and calls the connection's onclose hook.
    const fake = reservations[0]!.connection;
    fake.reserved = null;
    fake.onclose?.(Object.assign(new Error("closed"), { code: "CONNECTION_CLOSED" }));
    expect(owed.map((q) => (q.error as { code?: string } | undefined)?.code)).toEqual(["CONNECTION_CLOSED", "CONNECTION_CLOSED"]);
    expect((answered.error as { code?: string }).code).toBe("22012");
    expect(connection.alive).toBe(false);
  });

  test("a connection postgres.js closed while idle is dropped at the next pick, without a release", async () => {
    const { pipeline, reservations } = setup({ depth: 4, maxConnections: 2 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    reservations[0]!.connection.reserved = null; // what postgres.js's onclose does
    expect(pipeline.pick(1, 0, 1)).toBeUndefined();
    expect(pipeline.stats()).toMatchObject({ lost: 1, connections: 0 });
    expect(reservations[0]!.released).toBe(false);
    await settleReservations();
    expect(pipeline.stats().pids).toEqual([101]);
  });

  test("the tick keeps what the interval's peak needed and releases the rest once idle", async () => {
    const { pipeline, reservations } = setup({ depth: 1, maxConnections: 3 });
    for (let i = 1; i <= 3; i++) pipeline.pick(i, 0, 0);
    await settleReservations();
    const busy = pipeline.pick(1, 0, 0)!;
    pipeline.tick(0, 0); // peak 1 this interval → keep 1 (the busy one: the idlest are drained first)
    expect(pipeline.stats().connections).toBe(1);
    expect(reservations.filter((r) => r.released).length).toBe(2);
    pipeline.settle(busy, undefined, undefined, 1);
    pipeline.tick(0, 0); // peak 1 again (the settled query): still 1
    pipeline.tick(0, 0); // idle for a whole interval: none needed
    expect(pipeline.stats()).toMatchObject({ connections: 0, released: 3 });
  });

  test("close() releases idle connections at once and busy ones when their last query settles; reserves nothing after", async () => {
    const { pipeline, reservations } = setup({ depth: 1, maxConnections: 2 });
    pipeline.pick(1, 0, 0);
    pipeline.pick(2, 0, 0);
    await settleReservations();
    const busy = pipeline.pick(1, 0, 0)!;
    pipeline.close();
    expect(reservations.filter((r) => r.released).length).toBe(1);
    expect(pipeline.pick(5, 0, 0)).toBeUndefined();
    pipeline.settle(busy, undefined, undefined, 1);
    expect(reservations.every((r) => r.released)).toBe(true);
    expect(reservations.length).toBe(2);
  });

  test("slow statements: a stalled connection gets company, and the depth falls with the shortest completion gap", async () => {
    const { pipeline, reservations } = setup({ depth: 10, maxConnections: 4 });
    pipeline.pick(1, 0, 0);
    await settleReservations();
    const stalled: ReservedConnection = pipeline.pick(1, 0, 0)!;
    // Nothing completed on it for 25 ms while it carries a query: reserve another.
    pipeline.pick(2, 0, 25);
    expect(reservations.length).toBe(2);
    pipeline.settle(stalled, undefined, undefined, 500);
    pipeline.settle(stalled, undefined, undefined, 1000);
    pipeline.tick(0, 0);
    // Shortest gap 500 ms: one query per connection.
    expect(pipeline.effectiveDepth).toBe(1);
    expect(pipeline.stats().serviceMs).toBe(500);
  });
});

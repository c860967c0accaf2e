/**
 * Type tests for `PilotSql`, checked at compile time by `tsc -p tsconfig.json --noEmit` (a step of
 * `npm test`): a pilot is assignable wherever postgres.js's `Sql` is expected, tagged templates
 * keep postgres.js's row types, and `stats()` sections are typed by the interceptors given to
 * pilot(). The bun test below runs the same code against the real server, so the compile-time
 * claims are about code that works.
 *
 * An assertion that fails makes tsc fail; `// @ts-expect-error` lines assert that something does
 * NOT compile (and fail tsc when it starts compiling).
 */
import { expect, test } from "bun:test";
import postgres, { type RowList, type Sql, type TransactionSql } from "postgres";
import {
  adaptive,
  type AdaptiveStats,
  affinity,
  type AffinityStats,
  breaker,
  type BreakerStats,
  monitor,
  type MonitorStats,
  pilot,
  type PilotSql,
  retry,
  type RetryStats,
} from "../../mod.ts";
import { testUrl } from "../support/db.ts";
import { Cleanup } from "../support/kit.ts";

/** `true` when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** Compiles only when given `true`. */
function assertType<_T extends true>(): void {}

// Code written against postgres.js alone (`Sql` is postgres.js's `Sql<{}>`): it knows nothing of pgpilot.
async function countRows(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from (values (1), (2), (3)) as t(x)`;
  return row!.n;
}
async function inTransaction(sql: Sql): Promise<string> {
  return await sql.begin(async (tx: TransactionSql) => {
    const [row] = await tx<{ word: string }[]>`select 'inside' as word`;
    return row!.word;
  });
}
async function withCustomTypes(sql: Sql<{ bigint: bigint }>): Promise<bigint> {
  const [row] = await sql<{ big: bigint }[]>`select 9007199254740993::int8 as big`;
  return row!.big;
}

/** Compile-time only: never called. */
function compileTime(url: string): void {
  const raw = postgres(url);
  const sql = pilot(raw);

  // PilotSql<Sql> is a Sql: it goes where postgres.js's Sql is expected …
  const asSql: Sql = sql;
  void countRows(sql);
  void inTransaction(sql);
  // … and so do the derived sqls.
  void countRows(sql.with({ signal: AbortSignal.timeout(1_000) }));
  void countRows(sql.lane("primary"));
  assertType<Equal<typeof sql, PilotSql<Sql>>>();
  assertType<Equal<ReturnType<typeof sql.with>, PilotSql<Sql>>>();
  assertType<Equal<ReturnType<typeof sql.lane>, PilotSql<Sql>>>();

  // Custom types survive: a pilot over Sql<{ bigint: bigint }> is one.
  const typed = pilot(postgres(url, { types: { bigint: postgres.BigInt } }));
  void withCustomTypes(typed);
  // … and lanes give the lanes' type.
  const laned = pilot({ primary: postgres(url), replica: postgres(url) });
  void countRows(laned);

  // Tagged templates keep postgres.js's row types, exactly.
  const rows = sql<{ id: number; name: string }[]>`select 1 as id, 'a' as name`;
  const rawRows = raw<{ id: number; name: string }[]>`select 1 as id, 'a' as name`;
  assertType<Equal<typeof rows, typeof rawRows>>();
  assertType<Equal<Awaited<typeof rows>, RowList<{ id: number; name: string }[]>>>();
  const untyped = sql`select 1`;
  assertType<Equal<typeof untyped, ReturnType<typeof raw<postgres.Row[]>>>>();
  const inTx = sql.begin(async (tx) => tx<{ ok: boolean }[]>`select true as ok`);
  assertType<Equal<Awaited<typeof inTx>[number], { ok: boolean }>>();
  const rawTx = raw.begin(async (tx) => tx<{ ok: boolean }[]>`select true as ok`);
  // The same promise type both ways (checked by assignment: tsc builds these mapped types twice).
  const sameAsRaw: typeof rawTx = inTx;
  const sameAsPilot: typeof inTx = rawTx;
  void [sameAsRaw, sameAsPilot];

  // pgpilot's additions are there, and are not postgres.js's.
  void sql.close({ timeout: 1 });
  void sql.health().status;
  // @ts-expect-error a plain postgres.js sql has no stats()
  void raw.stats;
  void asSql;

  // stats(): each section typed by the interceptor given to pilot() (not `unknown`, not `any`) …
  const full = pilot(raw, { interceptors: [monitor(), affinity(), retry(), breaker(), adaptive()] });
  const stats = full.stats();
  const name: string = stats.name;
  const primaryLane: string = stats.primaryLane;
  const max: number | undefined = stats.lanes.primary?.max;
  void [name, primaryLane, max];
  assertType<Equal<typeof stats.monitor, MonitorStats>>();
  assertType<Equal<typeof stats.affinity, AffinityStats>>();
  assertType<Equal<typeof stats.retry, RetryStats>>();
  assertType<Equal<typeof stats.breaker, BreakerStats>>();
  assertType<Equal<typeof stats.adaptive, AdaptiveStats>>();
  const queries: number = stats.monitor.totals.queries;
  void queries;
  // … kept by with() and lane() …
  assertType<Equal<ReturnType<ReturnType<typeof full.with>["stats"]>["monitor"], MonitorStats>>();
  assertType<Equal<ReturnType<ReturnType<typeof full.lane>["stats"]>["adaptive"], AdaptiveStats>>();
  // … and not `any`: a section is not a string; without that interceptor it is unknown.
  // @ts-expect-error a stats() section is not any
  const notAny: string = stats.monitor;
  void notAny;
  assertType<Equal<ReturnType<typeof sql.stats>["monitor"], unknown>>();
}
void compileTime;

const cleanup = new Cleanup();

test("a pilot runs code written for postgres.js's Sql: queries, transactions, custom types", async () => {
  const sql = pilot(postgres(testUrl(), { max: 2, onnotice: () => {} }));
  cleanup.track(sql);
  const typed = pilot(postgres(testUrl(), { max: 1, onnotice: () => {}, types: { bigint: postgres.BigInt } }));
  cleanup.track(typed);
  try {
    expect(await countRows(sql)).toBe(3);
    // A scoped sql (timeoutMs would be refused here: this chain has no deadline()).
    expect(await countRows(sql.with({ signal: new AbortController().signal }))).toBe(3);
    expect(await inTransaction(sql)).toBe("inside");
    expect(await withCustomTypes(typed)).toBe(9007199254740993n);
  } finally {
    await cleanup.run();
  }
});

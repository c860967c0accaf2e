/**
 * What the ORM integration suites share: the recommended interceptor stack on a fresh pilot (with
 * an in-memory trace exporter and a metric reader), an error's comparable shape, and the server
 * objects that inject failures (a function failing once with 40001, one always failing with 40001,
 * a slow function that leaves a mark only if it runs to completion).
 */
import { afterAll, beforeAll } from "bun:test";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import postgres, { type Sql } from "postgres";
import {
  adaptive,
  affinity,
  breaker,
  createMetricProducer,
  deadline,
  monitor,
  pilot,
  retry,
  tracing,
} from "../../mod.ts";
import { testUrl } from "../support/db.ts";
import { until } from "../support/kit.ts";

/** A MetricReader collected by hand; it also collects monitor()'s locally aggregated histograms. */
class ManualReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

export interface StackOptions {
  /** deadline({ timeoutMs }); default: deadline()'s own default. */
  timeoutMs?: number;
  /** A second lane "replica" (the same server) next to "primary", for affinity(). */
  replica?: boolean;
}

/** A raw postgres.js client (no pgpilot). */
export function rawSql(max = 10): Sql<any> {
  return postgres(testUrl(), { max, onnotice: () => {} });
}

/**
 * A pilot with the recommended stack
 * `[tracing(), monitor(), affinity(), deadline(), retry(), breaker(), adaptive()]`, tracing to an
 * in-memory exporter and monitor to a MeterProvider with a reader.
 */
export function pilotStack(options: StackOptions = {}, max = 10) {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const metricProducer = createMetricProducer();
  const reader = new ManualReader({ metricProducers: [metricProducer] });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const interceptors = {
    tracing: tracing({ tracerProvider }),
    monitor: monitor({ meterProvider, metricProducer }),
    affinity: affinity(),
    deadline: deadline(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    retry: retry({ baseDelayMs: 1, maxDelayMs: 10 }),
    breaker: breaker(),
    adaptive: adaptive(),
  } as const;
  const client = () => postgres(testUrl(), { max, onnotice: () => {} });
  const config = {
    name: "integrations",
    interceptors: [
      interceptors.tracing,
      interceptors.monitor,
      interceptors.affinity,
      interceptors.deadline,
      interceptors.retry,
      interceptors.breaker,
      interceptors.adaptive,
    ],
  };
  const sql = options.replica ? pilot({ primary: client(), replica: client() }, config) : pilot(client(), config);
  return {
    sql,
    ...interceptors,
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    async close(): Promise<void> {
      await sql.close({ timeout: 1 });
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}

export type Stack = ReturnType<typeof pilotStack>;

/** What two errors must share to be "identical": class name, code, message (and detail), along the cause chain. */
export interface ErrorShape {
  name: string;
  code: unknown;
  message: string;
  detail: unknown;
  cause?: ErrorShape;
}

export function errorShape(error: unknown, depth = 0): ErrorShape {
  if (typeof error !== "object" || error === null) return { name: typeof error, code: undefined, message: String(error), detail: undefined };
  const e = error as { constructor?: { name?: string }; code?: unknown; message?: unknown; detail?: unknown; cause?: unknown };
  const shape: ErrorShape = { name: e.constructor?.name ?? "Object", code: e.code, message: String(e.message), detail: e.detail };
  if (e.cause !== undefined && depth < 5) shape.cause = errorShape(e.cause, depth + 1);
  return shape;
}

/** The errors along `error`'s cause chain (itself first). */
export function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && e !== null && chain.length < 10; e = (e as { cause?: unknown }).cause) chain.push(e);
  return chain;
}

/** `{ ok: value }` or `{ error: shape }`: what a scenario produced, comparable with toEqual. */
export async function outcome(run: () => Promise<unknown>): Promise<{ ok: unknown } | { error: ErrorShape }> {
  try {
    return { ok: await run() };
  } catch (error) {
    return { error: errorShape(error) };
  }
}

/**
 * Server objects that inject failures, named with `prefix`:
 * - `${prefix}_fail_once()`: raises SQLSTATE 40001 the first time after `resetFailOnce()`, then returns 1
 *   (a sequence counts calls: nextval is not rolled back with the transaction).
 * - `${prefix}_fail_always()`: always raises 40001.
 * - `${prefix}_slow(tag)`: pg_sleep(2.5), then inserts `tag` into `${prefix}_marks`; a mark exists only
 *   if the statement ran to completion.
 */
export function failureKit(admin: Sql<any>, prefix: string) {
  const seq = `${prefix}_attempts`;
  const marks = `${prefix}_marks`;
  return {
    marks,
    async create(): Promise<void> {
      await admin.unsafe(`drop table if exists ${marks}`);
      await admin.unsafe(`create table ${marks} (tag text not null)`);
      await admin.unsafe(`drop sequence if exists ${seq}`);
      await admin.unsafe(`create sequence ${seq}`);
      await admin.unsafe(`
        create or replace function ${prefix}_fail_once() returns int language plpgsql as $$
        begin
          if nextval('${seq}') = 1 then
            raise exception 'could not serialize access (injected)' using errcode = '40001';
          end if;
          return 1;
        end $$`);
      await admin.unsafe(`
        create or replace function ${prefix}_fail_always() returns int language plpgsql as $$
        begin
          raise exception 'could not serialize access (injected)' using errcode = '40001';
        end $$`);
      await admin.unsafe(`
        create or replace function ${prefix}_slow(tag text) returns int language plpgsql as $$
        begin
          perform pg_sleep(2.5);
          insert into ${marks} values (tag);
          return 1;
        end $$`);
    },
    async resetFailOnce(): Promise<void> {
      await admin.unsafe(`alter sequence ${seq} restart with 1`);
    },
    /** Calls of `_fail_once()` since the last reset. */
    async failOnceCalls(): Promise<number> {
      const [row] = await admin.unsafe(`select case when is_called then last_value else 0 end::int as n from ${seq}`);
      return row!.n as number;
    },
    /** Waits until a backend is running a statement containing `tag` (it reached the server). */
    async slowStarted(tag: string): Promise<void> {
      await until(async () => {
        const rows = await admin`
          select 1 from pg_stat_activity
          where state = 'active' and query like ${"%" + tag + "%"} and pid <> pg_backend_pid()`;
        return rows.length > 0;
      }, { message: `a backend running ${tag}` });
    },
    /**
     * Waits until no backend is running a statement containing `tag`, then says whether the slow
     * function completed (left its mark). Cancelled on the server → false.
     */
    async slowCompleted(tag: string): Promise<boolean> {
      await until(async () => {
        const rows = await admin`
          select 1 from pg_stat_activity
          where state = 'active' and query like ${"%" + tag + "%"} and pid <> pg_backend_pid()`;
        return rows.length === 0;
      }, { message: `no backend running ${tag}` });
      const rows = await admin.unsafe(`select 1 from ${marks} where tag = $1`, [tag]);
      return rows.length > 0;
    },
    async drop(): Promise<void> {
      await admin.unsafe(`drop function if exists ${prefix}_fail_once(), ${prefix}_fail_always(), ${prefix}_slow(text)`);
      await admin.unsafe(`drop table if exists ${marks}`);
      await admin.unsafe(`drop sequence if exists ${seq}`);
    },
  };
}

/**
 * What both ORM suites share: an admin connection, the failure kit, the users/posts tables
 * (`${prefix}_users`, `${prefix}_posts`), a raw client and a pilot with the recommended stack,
 * created and dropped by the suite's hooks. `closers` takes what a test opens itself.
 */
export function integrationFixture(prefix: string) {
  const admin = rawSql(2);
  const kit = failureKit(admin, prefix);
  const closers: (() => Promise<unknown>)[] = [];
  const users = `${prefix}_users`;
  const posts = `${prefix}_posts`;
  const raw = rawSql();
  const piloted = pilotStack();
  closers.push(() => raw.end({ timeout: 1 }), () => piloted.close());

  beforeAll(async () => {
    await admin.unsafe(`drop table if exists ${posts}, ${users}`);
    await admin.unsafe(`create table ${users} (id serial primary key, name text not null unique, age int)`);
    await admin.unsafe(
      `create table ${posts} (id serial primary key, user_id int not null references ${users} (id), title text not null)`,
    );
    await kit.create();
  });

  afterAll(async () => {
    for (const close of closers) await close();
    await admin.unsafe(`drop table if exists ${posts}, ${users}`);
    await kit.drop();
    await admin.end({ timeout: 1 });
  });

  /** A fresh data set: three users, three posts. */
  async function reset(): Promise<void> {
    await admin.unsafe(`truncate ${posts}, ${users} restart identity`);
    await admin.unsafe(`insert into ${users} (name, age) values ('ada', 36), ('bob', 41), ('cy', null)`);
    await admin.unsafe(`insert into ${posts} (user_id, title) values (1, 'a1'), (1, 'a2'), (2, 'b1')`);
  }

  return { admin, kit, closers, raw, piloted, reset };
}

/**
 * A seeded, reproducible randomized stress run of pipelined calls with faults injected at random
 * moments (issue 12, item 3). Used by tests/pipeline/pipeline-stress.test.ts (short) and
 * bench/pipeline-stress.ts (long).
 *
 * Every call carries its own marker (`select $1::int`, `insert … returning`), so a caller can
 * tell its own answer from another's. Faults, from a separate session at random moments:
 * `ALTER … TYPE` flips of a column the reads and the inserts use (cached plans invalidated),
 * `pg_terminate_backend` of a reserved connection, statements failing mid-pipeline (division by
 * zero), `query.cancel()`, `AbortSignal` aborts and `deadline()` expiries at random delays.
 *
 * Counted: calls, unsettled (not settled within `settleMs` — generous, not a timing
 * threshold), swapped (a caller got rows that are not its own, or rows where it was owed an
 * error), lost (an insert acknowledged to its caller missing afterwards). The seed is printed;
 * `PGPILOT_STRESS_SEED` replays a run (same seed, same sequence of calls and faults; the
 * interleaving with the server still varies).
 */
import postgres from "postgres";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { deadline } from "../../lib/interceptors/deadline/index.ts";
import { pilot } from "../../lib/core/pilot.ts";

export interface StressOptions {
  url: string;
  calls: number;
  seed?: number;
  workers?: number;
  pipelineDepth?: number;
  max?: number;
  /** A call not settled after this long counts as unsettled (ms). */
  settleMs?: number;
  /** Mean pause between two faults (ms). */
  faultEveryMs?: number;
  log?: (line: string) => void;
  /** Only these fault kinds ("alter-read", "alter-write", "terminate"); all by default. */
  faults?: string[];
}

export interface StressTotals {
  seed: number;
  calls: number;
  ok: number;
  /** Errors by code (expected ones included: 22012, 57014, deadline, connection loss). */
  errors: Record<string, number>;
  unsettled: number;
  swapped: number;
  lost: number;
  acknowledgedInserts: number;
  faults: Record<string, number>;
  resent: number;
  /** Longest time a call took to settle (ms): reported, never asserted. */
  slowestMs: number;
  examples: string[];
}

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROWS = 200;

export function stressSeed(): number {
  const fromEnv = globalThis.process?.env?.PGPILOT_STRESS_SEED;
  return fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

export async function runStress(options: StressOptions): Promise<StressTotals> {
  const seed = options.seed ?? stressSeed();
  const log = options.log ?? (() => {});
  log(`pipeline stress: seed ${seed} (PGPILOT_STRESS_SEED=${seed} to replay), ${options.calls} calls`);
  const random = prng(seed);
  const faultRandom = prng(seed ^ 0x9e3779b9);
  const settleMs = options.settleMs ?? 30_000;
  const totals: StressTotals = {
    seed,
    calls: 0,
    ok: 0,
    errors: {},
    unsettled: 0,
    swapped: 0,
    lost: 0,
    acknowledgedInserts: 0,
    faults: {},
    resent: 0,
    slowestMs: 0,
    examples: [],
  };
  const suffix = `${seed.toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  const reads = `stress_r_${suffix}`;
  const writes = `stress_w_${suffix}`;
  const admin = postgres(options.url, { max: 2, onnotice: () => {} });
  await admin.unsafe(`create table ${reads} (id int primary key, v int not null)`);
  await admin.unsafe(`insert into ${reads} select g, g * 10 from generate_series(1, ${ROWS}) g`);
  await admin.unsafe(`create table ${writes} (marker int primary key, v int not null)`);

  const sql = pilot(postgres(options.url, { max: options.max ?? 6, onnotice: () => {} }), {
    interceptors: [deadline({ timeoutMs: settleMs }), adaptive({ prewarm: false, pipelineDepth: options.pipelineDepth ?? 16 })],
  });
  const acknowledged: number[] = [];
  const swap = (what: string) => {
    totals.swapped++;
    if (totals.examples.length < 10) totals.examples.push(what);
  };
  const failed = (error: unknown) => {
    const code = String((error as { code?: unknown })?.code ?? (error as Error)?.name ?? "unknown");
    totals.errors[code] = (totals.errors[code] ?? 0) + 1;
  };

  let next = 0;
  let done = false;
  const pids = (): number[] => (sql.stats() as any).adaptive?.lanes?.primary?.pipeline?.pids ?? [];

  // One call: kind and timing from the seeded sequence.
  async function call(marker: number): Promise<void> {
    const r = random();
    const id = 1 + Math.floor(random() * ROWS);
    const interrupt = random();
    const delay = Math.floor(random() * 3);
    let scoped: any = sql;
    let controller: AbortController | undefined;
    if (interrupt < 0.03) {
      controller = new AbortController();
      scoped = sql.with({ signal: controller.signal });
    } else if (interrupt < 0.05) {
      scoped = sql.with({ timeoutMs: 1 + delay });
    }
    let query: any;
    let check: (rows: any) => void;
    let owedError = false;
    if (r < 0.45) {
      query = scoped`select ${marker}::int as m, v from ${sql(reads)} where id = ${id}`;
      check = (rows) => {
        if (rows.length !== 1 || rows[0].m !== marker || Number(rows[0].v) !== id * 10) {
          swap(`read ${marker}/${id}: ${JSON.stringify(rows.slice?.(0, 2) ?? rows)}`);
        }
      };
    } else if (r < 0.65) {
      query = scoped`select ${marker}::int as m, ${"t" + marker}::text as t`;
      check = (rows) => {
        if (rows.length !== 1 || rows[0].m !== marker || rows[0].t !== "t" + marker) swap(`marker ${marker}: ${JSON.stringify(rows)}`);
      };
    } else if (r < 0.9) {
      query = scoped`insert into ${sql(writes)} (marker, v) values (${marker}, ${marker % 1000}) returning marker, v`;
      check = (rows) => {
        if (rows.length !== 1 || rows[0].marker !== marker || Number(rows[0].v) !== marker % 1000) {
          swap(`insert ${marker}: ${JSON.stringify(rows)}`);
        } else acknowledged.push(marker);
      };
    } else {
      owedError = true;
      query = scoped`select ${marker}::int / ${0}::int as m`;
      check = (rows) => swap(`division by zero ${marker} answered with ${JSON.stringify(rows)}`);
    }
    if (controller !== undefined) setTimeout(() => controller!.abort(new Error("aborted by the stress test")), delay);
    else if (interrupt > 0.98) setTimeout(() => query.cancel(), delay);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const began = performance.now();
    const bound = new Promise<"unsettled">((resolve) => (timer = setTimeout(() => resolve("unsettled"), settleMs + 5_000)));
    const outcome = await Promise.race([
      query.then((rows: unknown) => ({ rows }), (error: unknown) => ({ error })),
      bound,
    ]);
    clearTimeout(timer);
    totals.calls++;
    const took = performance.now() - began;
    if (took > totals.slowestMs) totals.slowestMs = took;
    if (outcome === "unsettled") {
      totals.unsettled++;
      if (totals.examples.length < 10) totals.examples.push(`unsettled: call ${marker}`);
      return;
    }
    if ("error" in outcome) {
      failed(outcome.error);
      return;
    }
    check(outcome.rows);
    if (!owedError) totals.ok++;
  }

  async function worker(): Promise<void> {
    while (!done) {
      const marker = ++next;
      if (marker > options.calls) return;
      await call(marker);
    }
  }

  async function faults(): Promise<void> {
    let big = false;
    const mean = options.faultEveryMs ?? 150;
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, Math.floor(faultRandom() * 2 * mean)));
      if (done) return;
      const f = faultRandom();
      const kind = f < 0.5 ? "alter-read" : f < 0.75 ? "alter-write" : "terminate";
      if (options.faults !== undefined && !options.faults.includes(kind)) continue;
      totals.faults[kind] = (totals.faults[kind] ?? 0) + 1;
      try {
        if (kind === "alter-read") {
          big = !big;
          await admin.unsafe(`alter table ${reads} alter column v type ${big ? "bigint" : "int"}`);
        } else if (kind === "alter-write") {
          await admin.unsafe(`alter table ${writes} alter column v type ${faultRandom() < 0.5 ? "bigint" : "int"}`);
        } else {
          const candidates = pids();
          if (candidates.length > 0) {
            const pid = candidates[Math.floor(faultRandom() * candidates.length)];
            await admin`select pg_terminate_backend(${pid})`;
          }
        }
      } catch (error) {
        log(`fault ${kind} failed: ${String(error)}`);
      }
    }
  }

  const started = performance.now();
  const progress = setInterval(() => {
    const lane = (sql.stats() as any).adaptive?.lanes?.primary;
    log(`  … ${totals.calls} calls settled, ${next} started, in flight ${lane?.inFlight}, pending ${lane?.pending}, pipeline ${JSON.stringify(lane?.pipeline)}`);
  }, 5_000);
  const faulting = faults();
  await Promise.all(Array.from({ length: options.workers ?? 30 }, worker));
  done = true;
  await faulting;
  clearInterval(progress);
  totals.resent = (sql.stats() as any).adaptive?.lanes?.primary?.pipeline?.resent ?? 0;
  await sql.close({ timeout: 5 });

  const stored = new Set((await admin.unsafe(`select marker from ${writes}`)).map((row: any) => row.marker as number));
  for (const marker of acknowledged) if (!stored.has(marker)) totals.lost++;
  totals.acknowledgedInserts = acknowledged.length;
  await admin.unsafe(`drop table ${reads}; drop table ${writes}`, [], { simple: true } as never);
  await admin.end({ timeout: 5 });
  log(
    `pipeline stress: seed ${seed}, ${totals.calls} calls in ${Math.round(performance.now() - started)} ms: ` +
      `${totals.ok} ok, unsettled ${totals.unsettled}, swapped ${totals.swapped}, lost ${totals.lost} ` +
      `(of ${totals.acknowledgedInserts} acknowledged inserts), resent ${totals.resent}, slowest call ${Math.round(totals.slowestMs)} ms, ` +
      `errors ${JSON.stringify(totals.errors)}, faults ${JSON.stringify(totals.faults)}` +
      (totals.examples.length > 0 ? `\n  ${totals.examples.join("\n  ")}` : ""),
  );
  return totals;
}

/**
 * Recovery probe (issue 14): 25 writers inserting; the server is stopped with
 * `pg_ctl stop -m immediate` at 2 s and started again at 6 s. "Recovery" = time from
 * `pg_ctl start` returning to the first acknowledged write. Raw postgres.js, pilot + breaker
 * and the full stack run in the same script, interleaved, on one server.
 *
 *   bun bench/probes/recovery.ts [--cycles 10] [--modes raw,breaker,full] [--after 20]
 */
import process from "node:process";
import postgres from "postgres";
import { adaptive, breaker, deadline, monitor, pilot, retry, tracing } from "../../mod.ts";
import { startPostgres } from "../../tests/support/postgres.ts";

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const cycles = Number(arg("cycles", "5"));
const modes = arg("modes", "raw,breaker,full").split(",");
const afterS = Number(arg("after", "20"));
const writersN = Number(arg("writers", "25"));

let uncaught: string[] = [];
process.on("uncaughtException", (error) => uncaught.push(String((error as Error)?.message ?? error)));
process.on("unhandledRejection", (error) => uncaught.push("rejection: " + String((error as Error)?.message ?? error)));

const quiet = { onnotice: () => {} };
const server = await startPostgres({ name: "recovery-probe" });
const admin = postgres(server.url, { max: 1, ...quiet });
await admin`create table writes (id text primary key, writer int not null, at timestamptz default now())`;
await admin.end();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  mode: string;
  cycle: number;
  recoveryMs: number | undefined;
  closedMs: number | undefined;
  reopened: number;
  acked: number;
  lost: number;
  unsettled: number;
  uncaught: string[];
  errors: Record<string, number>;
  health?: string;
  firstAdmitted?: string;
}

function make(mode: string) {
  const raw = postgres(server.url, { max: 10, connect_timeout: 2, ...quiet });
  if (mode === "raw") return { sql: raw as any, guard: undefined };
  const guard = breaker({ recoveryMs: 1000 });
  const interceptors = mode === "breaker"
    ? [guard]
    : [tracing(), monitor(), deadline({ timeoutMs: 5_000 }), retry(), guard, adaptive()];
  return { sql: pilot(raw, { interceptors }) as any, guard };
}

async function cycle(mode: string, n: number): Promise<Result> {
  uncaught = [];
  const { sql, guard } = make(mode);
  const transitions: { at: number; to: string; category?: string; retryAfterMs?: number }[] = [];
  guard?.onStateChange((t) => transitions.push({ at: performance.now(), to: t.to, category: t.category, retryAfterMs: t.retryAfterMs }));
  const acked: { id: string; at: number }[] = [];
  const errors: Record<string, number> = {};
  // Outcome of the first call that started after the circuit closed (after the restart).
  let closedAt: number | undefined;
  let firstAdmitted: string | undefined;
  let restarted: number | undefined;
  guard?.onStateChange((t) => {
    if (t.to === "closed" && restarted !== undefined) closedAt ??= performance.now();
  });
  let stop = false;
  let inflight = 0;
  const writer = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const id = `${mode}-${n}-${w}-${i}`;
      inflight++;
      const began = performance.now();
      const watch = (closedAt !== undefined && began >= closedAt) || (mode === "raw" && restarted !== undefined && began >= restarted);
      try {
        await sql`insert into writes ${sql({ id, writer: w })}`;
        acked.push({ id, at: performance.now() });
        if (watch) firstAdmitted ??= "ok";
      } catch (error) {
        const code = (error as { code?: string }).code ?? (error as Error).name;
        if (watch && code !== "CIRCUIT_OPEN") firstAdmitted ??= code;
        errors[code] = (errors[code] ?? 0) + 1;
        await sleep(10);
      } finally {
        inflight--;
      }
    }
  };
  const t0 = performance.now();
  const writers = Array.from({ length: writersN }, (_, w) => writer(w));
  await sleep(2_000);
  await server.stop("immediate");
  await sleep(Math.max(0, 6_000 - (performance.now() - t0)));
  await server.start();
  const started = performance.now();
  restarted = started;
  let first: number | undefined;
  while (performance.now() - started < afterS * 1000) {
    const hit = acked.find((a) => a.at >= started);
    if (hit) {
      first = hit.at;
      break;
    }
    await sleep(5);
  }
  // Run on a little, to see the circuit close (or re-open) after the first success.
  await sleep(2_000);
  stop = true;
  const settled = await Promise.race([Promise.all(writers).then(() => true), sleep(15_000).then(() => false)]);
  const closeAt = transitions.find((t) => t.at >= started && t.to === "closed")?.at;
  const reopened = first === undefined ? 0 : transitions.filter((t) => t.at > first! && t.to === "open").length;
  const health = mode === "raw" ? undefined : sql.health().status;
  await (mode === "raw" ? sql.end({ timeout: 1 }) : sql.close({ timeout: 1 }));
  const check = postgres(server.url, { max: 1, ...quiet });
  const stored = new Set((await check`select id from writes where id like ${`${mode}-${n}-%`}`).map((r: any) => r.id));
  await check.end();
  return {
    mode,
    cycle: n,
    recoveryMs: first === undefined ? undefined : Math.round(first - started),
    closedMs: closeAt === undefined ? undefined : Math.round(closeAt - started),
    reopened,
    acked: acked.length,
    lost: acked.filter((a) => !stored.has(a.id)).length,
    unsettled: settled ? 0 : inflight,
    uncaught: [...new Set(uncaught)],
    errors,
    health,
    firstAdmitted,
    ...(process.env.TRACE ? { path: transitions.map((t) => `${Math.round(t.at - started)}:${t.to}${t.to === "open" ? `(${t.category},${Math.round(t.retryAfterMs ?? 0)})` : ""}`).join(" ") } : {}),
  };
}

const results: Result[] = [];
try {
  for (let n = 0; n < cycles; n++) {
    for (const mode of modes) {
      const r = await cycle(mode, n);
      results.push(r);
      console.log(JSON.stringify(r));
    }
  }
} finally {
  await server.destroy();
}
for (const mode of modes) {
  const rs = results.filter((r) => r.mode === mode);
  const rec = rs.map((r) => r.recoveryMs);
  const ok = rec.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  console.log(
    `${mode.padEnd(8)} recovered ${ok.length}/${rs.length}; ms: ${rec.map((x) => x ?? "none").join(", ")}; ` +
      `median ${ok[Math.floor(ok.length / 2)] ?? "-"}, max ${ok.at(-1) ?? "-"}; ` +
      `closed ms: ${rs.map((r) => r.closedMs ?? "-").join(", ")}; re-opened after first success: ${rs.filter((r) => r.reopened > 0).length}; ` +
      `first call after close: ${rs.map((r) => r.firstAdmitted ?? "-").join(",")}; uncaught in ${rs.filter((r) => r.uncaught.length > 0).length}; lost ${rs.reduce((s, r) => s + r.lost, 0)}; unsettled ${rs.reduce((s, r) => s + r.unsettled, 0)}`,
  );
}
process.exit(0);

/**
 * `npm run demo`: pgpilot's full stack against a real PostgreSQL, under a load that ramps,
 * bursts and survives an outage, with a live terminal view, /metrics and /health/database.
 *
 *   npm run demo                      # 60 s; starts its own PostgreSQL (+ a streaming replica)
 *   npm run demo -- --duration 20     # shorter
 *   DATABASE_URL=postgres://… npm run demo   # your server (no outage injected: it is not ours to stop)
 *
 * Ctrl-C stops the load, closes the pools and removes every server the demo started.
 */
import postgres from "postgres";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { adaptive, affinity, breaker, deadline, monitor, pilot, retry, tracing } from "../mod.ts";
import { createPrometheusExporter } from "../lib/prometheus.ts";
import { type PostgresServer, startPostgres, startReplica } from "../tests/support/postgres.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const index = args.indexOf(`--${name}`);
  const inline = args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const value = Number(inline ?? (index >= 0 ? args[index + 1] : undefined));
  return Number.isFinite(value) ? value : fallback;
};
const durationSeconds = option("duration", 60);
const port = option("port", 9464);
const tty = process.stdout.isTTY === true;
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;

// ---- servers ---------------------------------------------------------------------------
const servers: PostgresServer[] = [];
let primaryUrl = process.env.DATABASE_URL;
let primaryServer: PostgresServer | undefined;
let replicaUrl: string | undefined;
if (!primaryUrl) {
  say("starting a throwaway PostgreSQL…");
  primaryServer = await startPostgres({ name: "demo" });
  servers.push(primaryServer);
  primaryUrl = primaryServer.url;
  try {
    const replica = await startReplica(primaryServer);
    servers.push(replica);
    replicaUrl = replica.url;
    say(`streaming replica on port ${replica.port}`);
  } catch (error) {
    say(`no replica (${(error as Error).message.split("\n")[0]}): reads stay on the primary`);
  }
}

// ---- schema ----------------------------------------------------------------------------
const admin = postgres(primaryUrl, { max: 1, onnotice: () => {} });
await admin`drop table if exists demo_events, demo_accounts`;
await admin`create table demo_accounts (id int primary key, balance bigint not null, updated_at timestamptz not null default now())`;
await admin`insert into demo_accounts select g, 1000 from generate_series(1, 5000) g`;
await admin`create table demo_events (id bigserial primary key, account_id int not null, amount int not null, created_at timestamptz not null default now())`;
await admin`insert into demo_events (account_id, amount) select 1 + g % 5000, (g % 200) - 100 from generate_series(1, 200000) g`;
await admin`analyze demo_accounts; analyze demo_events`.simple();
await admin.end({ timeout: 1 });

// ---- OpenTelemetry and pgpilot -----------------------------------------------------------
const exporter = await createPrometheusExporter({ host: "127.0.0.1", port });
const meterProvider = new MeterProvider({ readers: [exporter.reader] });
const tracerProvider = new BasicTracerProvider();
const monitoring = monitor({ slowQueryMs: 100, meterProvider });
const circuit = breaker({ recoveryMs: 2000, meterProvider });
const limiter = adaptive({ min: 2, queueTimeoutMs: 3000, maxQueue: 400, meterProvider });
const routing = affinity({
  ...(replicaUrl ? { reads: ["replica"] } : {}),
  slow: "analytics",
  slowMs: 40,
  minSamples: 20,
  meterProvider,
});
const lanes: Record<string, postgres.Sql<any>> = {
  primary: postgres(primaryUrl, { max: 12, onnotice: () => {}, connect_timeout: 2 }),
  analytics: postgres(primaryUrl, { max: 2, onnotice: () => {}, connect_timeout: 2 }),
};
if (replicaUrl) lanes.replica = postgres(replicaUrl, { max: 8, onnotice: () => {}, connect_timeout: 2 });
const sql = pilot(lanes, {
  name: "demo",
  primary: "primary",
  interceptors: [
    tracing({ tracerProvider }),
    monitoring,
    routing,
    deadline({ timeoutMs: 2000 }),
    retry({ meterProvider }),
    circuit,
    limiter,
  ],
});
exporter.serveHealth(() => sql.health());
say(`metrics on http://127.0.0.1:${exporter.port}/metrics, health on http://127.0.0.1:${exporter.port}/health/database`);

const transitions: string[] = [];
circuit.onStateChange((t) => transitions.push(`${elapsed().toFixed(1)}s ${t.lane}: ${t.from} → ${t.to}`));

// ---- load ----------------------------------------------------------------------------------
type Phase = { name: string; until: number; workers: (t: number) => number; outage?: boolean };
const D = durationSeconds;
const phases: Phase[] = [
  { name: "ramp", until: 0.25 * D, workers: (t) => Math.max(2, Math.round((t / (0.25 * D)) * 24)) },
  { name: "steady", until: 0.4 * D, workers: () => 24 },
  { name: "burst", until: 0.5 * D, workers: () => 80 },
  { name: "outage", until: 0.65 * D, workers: () => 24, outage: primaryServer !== undefined },
  { name: "recovery", until: D, workers: () => 16 },
];
const phaseAt = (t: number) => phases.find((p) => t < p.until) ?? phases.at(-1)!;

let stopping = false;
const counts = { ok: 0, failed: 0, byCode: new Map<string, number>() };
let windowOk = 0;
let outageStartedAt: number | undefined;
let outageEndedAt: number | undefined;
let firstSuccessAfterOutage: number | undefined;

async function work(worker: number): Promise<void> {
  let i = 0;
  while (!stopping) {
    const t = elapsed();
    if (worker >= phaseAt(t).workers(t)) {
      await Bun.sleep(50);
      continue;
    }
    const id = 1 + ((worker * 7919 + i++ * 104729) % 5000);
    const pick = i % 20;
    try {
      if (pick < 13) await sql`select id, balance from demo_accounts where id = ${id}`;
      else if (pick < 16) await sql`update demo_accounts set balance = balance + 1, updated_at = now() where id = ${id}`;
      else if (pick < 18) {
        await sql.begin(async (tx) => {
          await tx`update demo_accounts set balance = balance - 5 where id = ${id}`;
          await tx`update demo_accounts set balance = balance + 5 where id = ${1 + (id % 5000)}`;
          await tx`insert into demo_events (account_id, amount) values (${id}, -5)`;
        });
      } else if (pick < 19) await sql`select account_id, sum(amount)::bigint as total from demo_events where account_id between ${id} and ${id + 50} group by account_id`;
      else await sql`select count(*)::int as n, avg(amount)::float as mean from demo_events where amount > ${(id % 50) - 100}`;
      counts.ok++;
      windowOk++;
      if (outageEndedAt !== undefined && firstSuccessAfterOutage === undefined && phaseAt(elapsed()).name === "recovery") {
        firstSuccessAfterOutage = elapsed();
      }
    } catch (error) {
      counts.failed++;
      const code = String((error as { code?: unknown }).code ?? (error as Error).name);
      counts.byCode.set(code, (counts.byCode.get(code) ?? 0) + 1);
      await Bun.sleep(5);
    }
  }
}

async function outage(): Promise<void> {
  const phase = phases.find((p) => p.outage);
  if (!phase || !primaryServer) return;
  const startAt = phases[phases.indexOf(phase) - 1]!.until;
  while (!stopping && elapsed() < startAt) await Bun.sleep(50);
  if (stopping) return;
  outageStartedAt = elapsed();
  await primaryServer.stop("immediate");
  while (!stopping && elapsed() < phase.until - 0.1 * (phase.until - startAt)) await Bun.sleep(50);
  await primaryServer.start();
  outageEndedAt = elapsed();
}

// ---- live view -----------------------------------------------------------------------------
let lines = 0;
function render(final = false): void {
  const stats = sql.stats() as Record<string, any>;
  const m = stats.monitor;
  const a = stats.adaptive?.lanes ?? {};
  const b = stats.breaker?.lanes ?? {};
  const f = stats.affinity;
  const t = elapsed();
  const phase = phaseAt(t);
  const out: string[] = [];
  out.push(`pgpilot demo  t=${t.toFixed(0).padStart(3)}s/${D}s  phase=${phase.name.padEnd(8)} workers=${String(Math.min(80, phase.workers(t))).padStart(2)}  health=${sql.health().status}`);
  out.push(`  ok/s ${String(windowOk).padStart(6)}   total ok ${counts.ok}  failed ${counts.failed}   p95 ${m.window.p95Ms.toFixed(1)} ms   slow ${m.slow.count}`);
  for (const lane of Object.keys(lanes)) {
    const l = a[lane];
    const load = l?.load?.loadFactor;
    const routed = Object.entries(f?.byLane?.[lane] ?? {}).map(([reason, n]) => `${reason}:${n}`).join(" ");
    out.push(`  ${lane.padEnd(9)} breaker=${(b[lane]?.state ?? "closed").padEnd(9)} limit=${String(l?.limit ?? "-").padStart(2)} in-flight=${String(l?.inFlight ?? 0).padStart(2)} queued=${String(l?.pending ?? 0).padStart(3)} load=${load === undefined ? "-" : load.toFixed(2)}  ${routed}`);
  }
  windowOk = 0;
  if (tty && !final) {
    if (lines) process.stdout.write(`\x1b[${lines}A`);
    process.stdout.write(out.map((l) => `\x1b[2K${l}`).join("\n") + "\n");
    lines = out.length;
  } else if (final || Math.round(t) % 5 === 0) console.log(out.join("\n"));
}

// ---- run -----------------------------------------------------------------------------------
async function shutdown(code: number): Promise<never> {
  stopping = true;
  await sql.close({ timeout: 2 }).catch(() => {});
  await exporter.close().catch(() => {});
  await meterProvider.shutdown().catch(() => {});
  for (const server of servers.reverse()) await server.destroy().catch(() => {});
  process.exit(code);
}
process.once("SIGINT", () => void shutdown(130));
process.once("SIGTERM", () => void shutdown(143));

const view = setInterval(render, 1000);
const workers = Array.from({ length: 80 }, (_, w) => work(w));
const injected = outage();
while (elapsed() < D) await Bun.sleep(100);
stopping = true;
await Promise.all([...workers, injected]);
clearInterval(view);
render(true);

const stats = sql.stats() as Record<string, any>;
console.log("\nsummary");
console.log(`  operations: ${counts.ok} ok, ${counts.failed} failed (${[...counts.byCode].map(([c, n]) => `${c} ${n}`).join(", ") || "none"})`);
console.log(`  latency (all time): p50 ${stats.monitor.latency.p50Ms.toFixed(1)} ms, p95 ${stats.monitor.latency.p95Ms.toFixed(1)} ms, p99 ${stats.monitor.latency.p99Ms.toFixed(1)} ms`);
if (outageStartedAt !== undefined) {
  console.log(`  outage: primary stopped at ${outageStartedAt.toFixed(1)} s, back at ${outageEndedAt?.toFixed(1)} s` +
    (firstSuccessAfterOutage ? `, first success in recovery at ${firstSuccessAfterOutage.toFixed(1)} s` : ""));
}
console.log(`  breaker transitions: ${transitions.length ? transitions.join("; ") : "none"}`);
console.log(`  affinity: hit rate ${stats.affinity.hitRate?.toFixed(3)}, read offload ${stats.affinity.readOffload?.toFixed(3)}, slow patterns ${stats.affinity.patterns.slowCount}`);
console.log(`  health: ${JSON.stringify(sql.health().status)}`);
await shutdown(0);

function say(message: string): void {
  console.log(message);
}

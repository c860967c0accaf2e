/**
 * Outage (issue 4): steady load against a database that goes away for 10 s, raw postgres.js vs
 * pgpilot with `deadline()` + `breaker()`, side by side in one run (raw, pgpilot, then pgpilot,
 * raw), on a PostgreSQL and a fault proxy of the scenario's own:
 *
 * (a) server stopped (`pg_ctl stop -m immediate`, then `start`): connections are refused at
 *     once, so both fail fast; what differs is the error storm reaching the network and the
 *     time to recover once the server is back.
 * (b) network blackhole through the TCP fault proxy: bytes vanish, as when a host or a link
 *     dies. It ends with every proxied connection reset, as when the dead host comes back
 *     (its TCP state is gone). Raw calls hang until then; pgpilot's deadline fails them, the
 *     breaker opens on those timeouts, and from then on calls are rejected without I/O.
 *
 * Load: an open loop of `select 1` at a fixed rate (arrivals do not wait for earlier calls, so
 * calls that hang pile up — "in flight"). Both clients: postgres.js `max: 10`,
 * `connect_timeout: 5` (so a connect the dying server accepted but never answered gives up in
 * bounded time in both).
 */
import postgres from "postgres";
import { breaker } from "../../lib/interceptors/breaker/index.ts";
import { deadline } from "../../lib/interceptors/deadline/index.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { type FaultProxy, startFaultProxy } from "../../tests/support/fault-proxy.ts";
import { type PostgresServer, startPostgres } from "../../tests/support/postgres.ts";
import type { BenchContext, Chart, Scenario, Table } from "../lib/scenario.ts";
import { fmt, Samples } from "../lib/stats.ts";

type Fault = "stopped" | "blackhole";
type Client = "raw" | "pgpilot";

const RATE_PER_SECOND = 500;
const MAX = 10;
const DEADLINE_MS = 500;
const BREAKER = { recoveryMs: 500, maxRecoveryMs: 2_000, probeTimeoutMs: 500 } as const;

interface Phases {
  beforeMs: number;
  outageMs: number;
  /** Longest wait for the first success after the fault ends. */
  recoverMaxMs: number;
  /** Load kept up after the first success. */
  afterMs: number;
  /** How long to wait for calls still in flight when the load stops. */
  drainMs: number;
}

interface Call {
  start: number;
  end: number;
  ok: boolean;
  code: string;
}

interface Run {
  client: Client;
  fault: Fault;
  outageSeconds: number;
  calls: number;
  failed: number;
  /** Failed calls that were not CIRCUIT_OPEN rejections: they went to the network. */
  networkFailures: number;
  rejections: number;
  failedP50: number;
  failedP99: number;
  rejectionP99: number;
  peakInFlight: number;
  /** From the fault's end (server accepting again / connections reset) to the first success. */
  recoveryMs: number | undefined;
  /** Calls still unsettled `drainMs` after the load stopped (left out of the latencies). */
  hung: number;
  /** Longest time any settled call took. */
  longestMs: number;
  errors: Record<string, number>;
  inFlight: [number, number][];
}

export const scenario: Scenario = {
  name: "outage",
  title: "Outage: server stopped and network blackhole, raw postgres.js vs pgpilot (deadline + breaker)",
  quick: true,
  async run(context: BenchContext) {
    const phases: Phases = context.quick
      ? { beforeMs: 1_000, outageMs: 3_000, recoverMaxMs: 3_000, afterMs: 500, drainMs: 1_000 }
      : { beforeMs: 1_000, outageMs: 10_000, recoverMaxMs: 5_000, afterMs: 500, drainMs: 1_000 };
    const server = await startPostgres({ name: "bench-outage" });
    const proxy = await startFaultProxy({ target: { host: server.host, port: server.port } });
    const plan: [Fault, Client][] = [
      ["stopped", "raw"],
      ["stopped", "pgpilot"],
      ["blackhole", "pgpilot"],
      ["blackhole", "raw"],
    ];
    const runs: Run[] = [];
    try {
      for (const [index, [fault, client]] of plan.entries()) {
        context.progress(index / plan.length, `${fault} ${client}`);
        const run = await measure(fault, client, server, proxy, phases);
        context.log(
          `${fault} ${client}: ${run.calls} calls, ${run.failed} failed (${run.rejections} rejected), ` +
            `recovery ${run.recoveryMs === undefined ? "none" : Math.round(run.recoveryMs) + " ms"}, errors ${JSON.stringify(run.errors)}`,
        );
        runs.push(run);
      }
    } finally {
      await proxy.close();
      await server.destroy();
    }
    const cost = await rejectionCost(context.quick ? 5_000 : 20_000);
    context.log(`rejection with the circuit open: p50 ${fmt(cost.p50 * 1000, 1)} µs, p99 ${fmt(cost.p99 * 1000, 1)} µs`);
    return {
      tables: [
        ...(["stopped", "blackhole"] as const).map((fault) => table(fault, runs, phases)),
        {
          title: "Cost of a rejection with the circuit open (no load, no I/O)",
          columns: ["calls", "p50 µs", "p99 µs", "max µs"],
          rows: [[cost.count, fmt(cost.p50 * 1000, 1), fmt(cost.p99 * 1000, 1), fmt(cost.max * 1000, 0)]],
          note: "Sequential awaited `select 1` calls through pgpilot (deadline + breaker) whose lane's circuit is open: " +
            "the time from the call to its CircuitOpenError. Under the outage load above, the caller-observed rejection " +
            "latency also holds event-loop delay from everything else in the process (load generator, postgres.js, the " +
            "in-process fault proxy).",
        },
      ],
      charts: (["stopped", "blackhole"] as const).map((fault) => chart(fault, runs)),
      data: { phases, rate: RATE_PER_SECOND, max: MAX, deadlineMs: DEADLINE_MS, breaker: BREAKER, runs },
    };
  },
};

async function measure(fault: Fault, client: Client, server: PostgresServer, proxy: FaultProxy, phases: Phases): Promise<Run> {
  // (a) connects straight to the server, so a stopped server really refuses connections;
  // (b) goes through the proxy, which does the blackholing.
  const url = fault === "stopped" ? server.url : proxy.url(server.url);
  const raw = postgres(url, { max: MAX, connect_timeout: 5, onnotice: () => {} });
  const sql = client === "raw" ? raw : pilot(raw, {
    interceptors: [deadline({ timeoutMs: DEADLINE_MS }), breaker({ ...BREAKER })],
  });
  await Promise.all(Array.from({ length: MAX }, () => raw`select 1`));

  const calls: Call[] = [];
  const pending = new Set<Promise<void>>();
  const inFlight: [number, number][] = [];
  let peak = 0;
  const origin = performance.now();
  const issue = () => {
    const call: Call = { start: performance.now(), end: 0, ok: false, code: "" };
    calls.push(call);
    const done = sql`select 1`.then(
      () => void (call.ok = true),
      (error: { code?: unknown; name?: string }) => void (call.code = String(error?.code ?? error?.name ?? "Error")),
    ).finally(() => {
      call.end = performance.now();
      pending.delete(done);
    });
    pending.add(done);
    if (pending.size > peak) peak = pending.size;
  };

  // The open loop: arrivals every 5 ms tick at the fixed rate, and an in-flight sample per 100 ms.
  let issued = 0;
  let running = true;
  const loop = (async () => {
    let lastSample = 0;
    while (running) {
      const elapsed = performance.now() - origin;
      const due = Math.floor((elapsed / 1000) * RATE_PER_SECOND);
      while (issued < due) (issued++, issue());
      if (elapsed - lastSample >= 100) {
        inFlight.push([Math.round(elapsed) / 1000, pending.size]);
        lastSample = elapsed;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  await sleep(phases.beforeMs);
  if (fault === "stopped") await server.stop("immediate");
  else proxy.blackhole(true);
  const outageStart = performance.now();
  await sleep(phases.outageMs - (performance.now() - outageStart));
  if (fault === "stopped") await server.start();
  else {
    proxy.blackhole(false);
    proxy.resetAll();
  }
  const backAt = performance.now();
  const outageSeconds = (backAt - outageStart) / 1000;
  const firstSuccess = () => calls.find((call) => call.ok && call.end > backAt);
  // postgres.js's own reconnect backoff (up to 20 s after repeated failures) decides when raw recovers.
  while (firstSuccess() === undefined && performance.now() - backAt < phases.recoverMaxMs) await sleep(10);
  await sleep(phases.afterMs);
  running = false;
  await loop;
  const hung = await drain(pending, phases.drainMs);
  // Calls still hanging now are counted as hung; closing the client settles them, unmeasured.
  const settled = calls.filter((call) => call.end > 0);
  if (client === "pgpilot") await (sql as ReturnType<typeof pilot>).close({ timeout: 1 });
  else await raw.end({ timeout: 1 });

  const failedSamples = new Samples();
  const rejectionSamples = new Samples();
  const errors: Record<string, number> = {};
  let networkFailures = 0;
  let longestMs = 0;
  for (const call of settled) {
    const ms = call.end - call.start;
    if (ms > longestMs) longestMs = ms;
    if (call.ok) continue;
    failedSamples.record(ms);
    errors[call.code] = (errors[call.code] ?? 0) + 1;
    if (call.code === "CIRCUIT_OPEN") rejectionSamples.record(ms);
    else networkFailures++;
  }
  const failed = failedSamples.summary();
  const rejected = rejectionSamples.summary();
  const success = firstSuccess();
  return {
    client,
    fault,
    outageSeconds,
    calls: calls.length,
    failed: failed.count,
    networkFailures,
    rejections: rejected.count,
    failedP50: failed.p50,
    failedP99: failed.p99,
    rejectionP99: rejected.p99,
    peakInFlight: peak,
    recoveryMs: success === undefined ? undefined : success.end - backAt,
    hung,
    longestMs,
    errors,
    inFlight,
  };
}

function table(fault: Fault, runs: Run[], phases: Phases): Table {
  const rows = runs.filter((run) => run.fault === fault).map((run) => [
    run.client === "raw" ? "postgres.js" : "pgpilot",
    run.calls,
    run.failed,
    fmt(run.networkFailures / run.outageSeconds),
    run.rejections,
    fmt(run.failedP50, 2),
    fmt(run.failedP99, 2),
    run.rejections === 0 ? "—" : fmt(run.rejectionP99, 2),
    run.peakInFlight,
    run.hung,
    fmt(run.longestMs, 0),
    run.recoveryMs === undefined ? `> ${fmt(phases.recoverMaxMs, 0)}` : fmt(run.recoveryMs, 0),
  ]);
  const seconds = phases.outageMs / 1000;
  return {
    title: fault === "stopped"
      ? `(a) server stopped for ${seconds} s (immediate), ${RATE_PER_SECOND} calls/s`
      : `(b) network blackhole for ${seconds} s, then connections reset, ${RATE_PER_SECOND} calls/s`,
    columns: [
      "client",
      "calls",
      "failed",
      "failures reaching the network /s",
      "rejected (CIRCUIT_OPEN)",
      "failed p50 ms",
      "failed p99 ms",
      "rejection p99 ms",
      "peak in flight",
      "hung at end",
      "longest call ms",
      "recovery ms",
    ],
    rows,
    note: `Open loop of \`select 1\` at ${RATE_PER_SECOND}/s; postgres.js max ${MAX}, connect_timeout 5 s. ` +
      `pgpilot: deadline ${DEADLINE_MS} ms, breaker recoveryMs ${BREAKER.recoveryMs} (exponential up to ` +
      `${BREAKER.maxRecoveryMs}), halfOpenRequests 2, active probing (probe timeout ${BREAKER.probeTimeoutMs} ms). ` +
      "Failures reaching the network: failed calls other than CIRCUIT_OPEN, per second of outage. Hung at end: calls " +
      `still unsettled ${phases.drainMs / 1000} s after the load stopped (left out of the latencies). Recovery: from ` +
      (fault === "stopped" ? "`pg_ctl start` returning" : "the end of the blackhole (connections reset)") +
      " to the first successful call; pgpilot's is bounded by the breaker's current wait (≤ maxRecoveryMs) plus its probes.",
  };
}

function chart(fault: Fault, runs: Run[]): Chart {
  return {
    title: `Calls in flight, ${fault === "stopped" ? "(a) server stopped" : "(b) network blackhole"}`,
    xLabel: "seconds",
    yLabel: "calls in flight",
    series: runs.filter((run) => run.fault === fault).map((run) => ({
      name: run.client === "raw" ? "postgres.js" : "pgpilot",
      points: run.inFlight,
    })),
  };
}

/** Time `count` rejections of an open circuit, one after another (the lane is never contacted). */
async function rejectionCost(count: number) {
  const raw = postgres("postgres://nobody@127.0.0.1:1/none", { max: 1, onnotice: () => {} });
  const sql = pilot(raw, {
    interceptors: [
      deadline({ timeoutMs: DEADLINE_MS }),
      breaker({ initialState: { primary: { state: "open", category: "connection", until: Date.now() + 3_600_000, opens: 1 } } }),
    ],
  });
  const samples = new Samples();
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await sql`select 1`.then(() => {
      throw new Error("the circuit was supposed to be open");
    }, (error: { code?: string }) => {
      if (error.code !== "CIRCUIT_OPEN") throw error;
    });
    samples.record(performance.now() - start);
  }
  await sql.close({ timeout: 0 });
  return samples.summary();
}

/** Wait for every pending call, at most `ms`; returns how many were still pending. */
async function drain(pending: Set<Promise<void>>, ms: number): Promise<number> {
  const deadlineAt = performance.now() + ms;
  while (pending.size > 0 && performance.now() < deadlineAt) await sleep(20);
  return pending.size;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

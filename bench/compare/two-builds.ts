/**
 * Two builds of pgpilot side by side in one run: raw postgres.js, build A and build B, each
 * without interceptors and with the full stack, in interleaved rounds on fresh pools, as ratios
 * to raw. For checking that a refactor kept the chain's cost (issue 11: layout before / after).
 *
 *   bun bench/compare/two-builds.ts <path to build A's mod.ts> [rounds]
 *
 * Build B is this checkout. Both must resolve the same `postgres` and `@opentelemetry/*`
 * packages (a worktree with node_modules linked to this one's).
 */
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import postgres from "postgres";
import { startPostgres } from "../../tests/support/postgres.ts";
import * as current from "../../mod.ts";

const other = await import(process.argv[2]!);
const rounds = Number(process.argv[3] ?? 5);
type Build = typeof current;
const builds: Record<string, Build> = { A: other as Build, B: current };

function stack(build: Build) {
  const meterProvider = new MeterProvider();
  const tracerProvider = new BasicTracerProvider();
  return [
    build.tracing({ tracerProvider }),
    build.monitor({ meterProvider }),
    build.deadline({ timeoutMs: 5000 }),
    build.retry({ meterProvider }),
    build.breaker({ meterProvider }),
    build.adaptive({ meterProvider, pipelineDepth: 16 } as never),
  ];
}

const server = await startPostgres({ name: "two-builds", settings: { max_connections: 100 } });
const variants: Record<string, (url: string) => { sql: any; end: () => Promise<void> }> = {
  raw: (url) => {
    const sql = postgres(url, { max: 10 });
    return { sql, end: () => sql.end({ timeout: 1 }) };
  },
};
for (const [name, build] of Object.entries(builds)) {
  variants[`${name} no interceptors`] = (url) => {
    const sql = build.pilot(postgres(url, { max: 10 }), { interceptors: [] });
    return { sql, end: () => sql.close({ timeout: 1 }) };
  };
  variants[`${name} full stack`] = (url) => {
    const sql = build.pilot(postgres(url, { max: 10 }), { interceptors: stack(build) as never });
    return { sql, end: () => sql.close({ timeout: 1 }) };
  };
}

async function measure(make: (url: string) => { sql: any; end: () => Promise<void> }, workers: number, ms: number): Promise<number> {
  const { sql, end } = make(server.url);
  await sql`select 1`;
  let done = 0;
  const stopAt = performance.now() + ms;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (performance.now() < stopAt) {
      await sql`select 1`;
      done++;
    }
  }));
  await end();
  return done / (ms / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  // WORKERS=50 ONLY="full stack" narrows a run (a quick bisect).
  const only = process.env.ONLY;
  for (const workers of (process.env.WORKERS ?? "10,50").split(",").map(Number)) {
    const ratios: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round++) {
      const raw = await measure(variants.raw!, workers, 1500);
      for (const [name, make] of Object.entries(variants)) {
        if (name === "raw" || (only !== undefined && !name.includes(only))) continue;
        (ratios[name] ??= []).push((await measure(make, workers, 1500)) / raw);
      }
    }
    console.log(`select 1, ${workers} workers, max 10, ${rounds} rounds (median ratio to raw postgres.js in the same round):`);
    for (const [name, values] of Object.entries(ratios)) {
      console.log(`  ${name.padEnd(22)} ${(median(values) * 100).toFixed(1)}%   rounds: ${values.map((v) => (v * 100).toFixed(0)).join(" ")}`);
    }
  }
} finally {
  await server.stop();
}

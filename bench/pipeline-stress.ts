/**
 * The long pipeline stress run (issue 12): `bun bench/pipeline-stress.ts [--calls 100000]
 * [--depth 16]
 * [--fault-every 150] [--faults alter-read,alter-write,terminate]`. Uses DATABASE_URL or starts a throwaway PostgreSQL. PGPILOT_STRESS_SEED replays
 * a seed. Exits 1 when a call was unsettled, swapped or lost.
 */
import process from "node:process";
import { startPostgres } from "../tests/support/postgres.ts";
import { runStress } from "../tests/support/pipeline-stress.ts";

const arg = (name: string, fallback: number): number => {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
};
const server = process.env.DATABASE_URL ? undefined : await startPostgres({ name: "pipeline-stress" });
try {
  const totals = await runStress({
    url: process.env.DATABASE_URL ?? server!.url,
    calls: arg("calls", 100_000),
    pipelineDepth: arg("depth", 16),
    faultEveryMs: arg("fault-every", 150),
    faults: process.argv.includes("--faults") ? process.argv[process.argv.indexOf("--faults") + 1]!.split(",") : undefined,
    log: (line) => console.log(line),
  });
  process.exitCode = totals.unsettled + totals.swapped + totals.lost === 0 ? 0 : 1;
} finally {
  await server?.destroy();
}

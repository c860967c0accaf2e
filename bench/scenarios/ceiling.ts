/**
 * The machine's ceiling, for context: pgbench (C, libpq) on the same server, `-S` (select-only
 * TPC-B) and `select 1`, 10 clients. Every other scenario's figures read against these.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import { ensurePostgresBinaries } from "../../tests/support/postgres.ts";
import type { Scenario } from "../lib/scenario.ts";
import { fmt } from "../lib/stats.ts";

const run = promisify(execFile);

export const scenario: Scenario = {
  name: "ceiling",
  title: "Ceiling: pgbench on the same server",
  quick: true,
  async run(context) {
    const bindir = ensurePostgresBinaries();
    const pgbench = join(bindir, "pgbench");
    const admin = postgres(context.url, { max: 1, onnotice: () => {} });
    const [{ exists }] = await admin`select count(*)::int as exists from pg_database where datname = 'pgbench'`;
    if (!exists) await admin`create database pgbench`;
    await admin.end({ timeout: 1 });
    const url = new URL(context.url);
    const connection = ["-h", url.hostname, "-p", url.port, "-U", url.username || "postgres"];
    await run(pgbench, ["-i", "-q", "-s", "1", ...connection, "pgbench"], { env: { ...process.env, PGPASSWORD: url.password } });
    const dir = mkdtempSync(join(tmpdir(), "pgbench-"));
    writeFileSync(join(dir, "select1.sql"), "select 1;\n");
    const seconds = context.quick ? 2 : 5;
    const rows: (string | number)[][] = [];
    for (const [label, script] of [["pgbench -S (select-only TPC-B)", ["-S"]], ["pgbench select 1", ["-f", join(dir, "select1.sql")]]] as const) {
      context.progress(rows.length / 2, label);
      const { stdout } = await run(pgbench, [...script, "-c", "10", "-j", "2", "-T", String(seconds), "-M", "prepared", ...connection, "pgbench"], {
        env: { ...process.env, PGPASSWORD: url.password },
      });
      const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
      const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1] ?? NaN);
      rows.push([label, fmt(tps, 0), fmt(latency, 3)]);
    }
    return {
      tables: [{
        title: `pgbench, 10 clients, 2 threads, prepared, ${seconds} s`,
        columns: ["client", "transactions/s", "mean latency ms"],
        rows,
        note: "pgbench is a C client using libpq; client and server share the machine's cores.",
      }],
    };
  },
};

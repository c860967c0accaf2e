/**
 * `npm run bench`: starts its own PostgreSQL, runs every scenario in bench/scenarios/, prints
 * the tables and writes bench/results/ (JSON per run, a Markdown summary, SVG charts).
 *
 *   npm run bench                      all scenarios (under 15 minutes on 2 cores)
 *   npm run bench -- --quick           the reduced set (CI smoke, under two minutes)
 *   npm run bench -- --only overhead,outage
 *   npm run bench -- --list
 *   npm run bench -- --write-docs      also write docs/PERFORMANCE.md (+ docs/perf/*.svg) from this run
 *
 * With BENCH_DATABASE_URL set it uses that server instead (scenarios that stop the server
 * start their own).
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { type PostgresServer, startPostgres } from "../tests/support/postgres.ts";
import { renderCharts } from "./lib/charts.ts";
import { renderMarkdown } from "./lib/report.ts";
import type { BenchContext, Scenario, ScenarioReport } from "./lib/scenario.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.find((a) => a.startsWith("--only"))?.split("=")[1] ?? args[args.indexOf("--only") + 1];
const filter = args.includes("--only") || args.some((a) => a.startsWith("--only=")) ? new Set(only?.split(",")) : undefined;
// Under Node this file runs as bench/.node/run.js, built by `npm run bench:node`: scenarios are
// .js files next to it, results still go to bench/results.
const here = dirname(fileURLToPath(import.meta.url));
const built = basename(here) === ".node";
const resultsDir = join(built ? dirname(here) : here, "results");

const scenarios: Scenario[] = [];
const extension = built ? ".js" : ".ts";
for (const file of readdirSync(join(here, "scenarios")).filter((f) => f.endsWith(extension)).sort()) {
  const module = await import(join(here, "scenarios", file));
  const scenario = module.scenario as Scenario | undefined;
  if (scenario === undefined) throw new Error(`bench/scenarios/${file} does not export "scenario"`);
  scenarios.push(scenario);
}
scenarios.sort((a, b) => order(a.name) - order(b.name));

if (args.includes("--list")) {
  for (const s of scenarios) console.log(`${s.name.padEnd(22)} ${s.quick ? "quick" : "     "}  ${s.title}`);
  process.exit(0);
}

const selected = scenarios.filter((s) => (filter ? filter.has(s.name) : quick ? s.quick : true));
if (selected.length === 0) {
  console.error(`no scenario selected (have: ${scenarios.map((s) => s.name).join(", ")})`);
  process.exit(2);
}

const runtime = typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.versions.node}`;
let server: PostgresServer | undefined;
let url = process.env.BENCH_DATABASE_URL;
if (!url) {
  server = await startPostgres({ name: "bench", settings: { max_connections: 300, shared_buffers: "256MB" } });
  url = server.url;
}
const stopServer = () => server?.destroySync();
process.on("SIGINT", () => (stopServer(), process.exit(130)));
process.on("SIGTERM", () => (stopServer(), process.exit(143)));

const probe = postgres(url, { max: 1, onnotice: () => {} });
const [{ version: serverVersion }] = await probe`select current_setting('server_version') as version`;
await probe.end({ timeout: 1 });

const environment = {
  date: new Date().toISOString(),
  runtime,
  node: process.versions.node,
  cpu: cpus()[0]?.model ?? "unknown",
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  postgres: serverVersion as string,
  quick,
};
console.log(`pgpilot bench — ${environment.runtime}, PostgreSQL ${environment.postgres}, ${environment.cores} × ${environment.cpu}${quick ? ", quick" : ""}`);

const tty = process.stdout.isTTY === true;
const results: { name: string; title: string; seconds: number; report?: ScenarioReport; error?: string }[] = [];
let failed = 0;
for (const [index, scenario] of selected.entries()) {
  const label = `[${index + 1}/${selected.length}] ${scenario.name}`;
  const started = performance.now();
  const context: BenchContext = {
    quick,
    server: server ?? externalServer(url),
    url,
    runtime,
    log: (message) => {
      if (tty) process.stdout.write("\r\x1b[2K");
      console.log(`  ${message}`);
    },
    progress: (fraction, detail) => {
      if (!tty) return;
      const width = 24;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      const elapsed = ((performance.now() - started) / 1000).toFixed(0);
      process.stdout.write(`\r\x1b[2K${label} ${"█".repeat(filled)}${"░".repeat(width - filled)} ${Math.round(fraction * 100)}% ${elapsed}s ${detail ?? ""}`);
    },
  };
  console.log(`${label} — ${scenario.title}`);
  try {
    const report = await scenario.run(context);
    const seconds = (performance.now() - started) / 1000;
    if (tty) process.stdout.write("\r\x1b[2K");
    results.push({ name: scenario.name, title: scenario.title, seconds, report });
    console.log(renderMarkdown([{ name: scenario.name, title: scenario.title, report }], { headings: false }));
    console.log(`  (${seconds.toFixed(1)} s)\n`);
  } catch (error) {
    failed++;
    if (tty) process.stdout.write("\r\x1b[2K");
    const message = error instanceof Error ? error.stack ?? error.message : String(error);
    console.error(`  ${scenario.name} failed: ${message}`);
    results.push({ name: scenario.name, title: scenario.title, seconds: (performance.now() - started) / 1000, error: message });
  }
}

mkdirSync(resultsDir, { recursive: true });
const stamp = environment.date.replace(/[:.]/g, "-");
const tag = runtime.split(" ")[0];
const jsonPath = join(resultsDir, `run-${tag}-${stamp}.json`);
writeFileSync(jsonPath, JSON.stringify({ environment, results }, null, 2));
const charts = await renderCharts(results, resultsDir, tag!);
const markdown = `# pgpilot benchmark results\n\n${describeEnvironment()}\n\n` +
  renderMarkdown(results.filter((r) => r.report).map((r) => ({ name: r.name, title: r.title, report: r.report! })), {
    headings: true,
    charts,
  });
writeFileSync(join(resultsDir, `latest-${tag}.md`), markdown);
console.log(`wrote ${basename(jsonPath)}, latest-${tag}.md${charts.size ? ` and ${charts.size} charts` : ""} in bench/results/`);

if (args.includes("--write-docs")) writePerformanceDoc(markdown, charts);

await server?.destroy();
process.exit(failed ? 1 : 0);

/**
 * docs/PERFORMANCE.md from this run: the same Markdown with the charts copied to docs/perf/.
 * Only a full run on a quiet machine should be published this way.
 */
function writePerformanceDoc(markdown: string, charts: Map<string, string>): void {
  const docs = join(resultsDir, "..", "..", "docs");
  mkdirSync(join(docs, "perf"), { recursive: true });
  let body = markdown.replace(/^# pgpilot benchmark results/, "# pgpilot performance");
  for (const file of charts.values()) {
    copyFileSync(join(resultsDir, file), join(docs, "perf", file));
    body = body.replaceAll(`](${file})`, `](perf/${file})`);
  }
  const preface = "Generated by `npm run bench -- --write-docs` from one real run; rerun it to check these figures " +
    "on your machine. Ratios matter more than absolute numbers: client and server share the same cores.\n\n";
  writeFileSync(join(docs, "PERFORMANCE.md"), body.replace(/\n\n/, `\n\n${preface}`));
  console.log("wrote docs/PERFORMANCE.md");
}

function describeEnvironment(): string {
  const e = environment;
  return `Measured ${e.date.slice(0, 10)} on ${e.cores} × ${e.cpu} (${e.memoryGiB} GiB), ${e.runtime}, PostgreSQL ${e.postgres}` +
    ` on the same machine (loopback)${e.quick ? ", quick mode (shortened phases)" : ""}. Every comparison ran side by side in one process run.`;
}

/** A server handle for BENCH_DATABASE_URL: scenarios that stop/start must start their own. */
function externalServer(url: string): PostgresServer {
  const parsed = new URL(url);
  const refuse = () => Promise.reject(new Error("BENCH_DATABASE_URL is external: this scenario must start its own server"));
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 5432),
    url,
    dataDir: "",
    stop: refuse,
    start: refuse,
    destroy: async () => {},
    destroySync: () => {},
    psql: refuse,
  };
}

/** Scenarios in reading order: the overhead first, then the issues' scenarios. */
function order(name: string): number {
  const preferred = ["ceiling", "overhead", "observability-overhead", "seed-methodology", "post-burst", "overload", "outage", "mixed-workload"];
  const index = preferred.indexOf(name);
  return index === -1 ? preferred.length : index;
}

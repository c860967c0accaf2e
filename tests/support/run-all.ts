/**
 * `npm test`: every check in one run, ending with one line `N passed, N failed`.
 *
 * Where a test file goes (tests/ mirrors lib/) and the shared test kit: tests/support/README.md.
 *
 *   1. PostgreSQL: start one (unless DATABASE_URL is set) and pass DATABASE_URL to every child.
 *   2. bun test (JUnit report in .tmp/junit.xml, console output as usual): one check per test.
 *   3. typecheck: tsc -p tsconfig.json --noEmit; documentation snippets: every ```ts block of
 *      README.md and docs/*.md type-checked on its own (tests/support/snippets.ts), one check each
 *   4. lint: deno lint
 *   5. build + Node smoke: tsc -p tsconfig.build.json, then node tests/runtime/node-smoke.mjs
 *   6. Deno: deno check mod.ts; deno run -A tests/runtime/deno-smoke.ts
 *   7. runtime matrix (tests/runtime/matrix/cases.mjs; on Bun it runs inside step 2):
 *      node tests/runtime/matrix/node.mjs (the built package), deno test tests/runtime/matrix/deno.ts
 *   8. Worker: bun test ./tests/runtime/worker.workerd.ts (examples/worker under workerd via Miniflare)
 *
 * Steps whose input files do not exist are skipped with a notice. Exit code: bun's when it failed,
 * else 1 when any check failed, else 0.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type PostgresServer, startPostgres } from "./postgres.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = (name: string): string => {
  const local = join(root, "node_modules", ".bin", name);
  return existsSync(local) ? local : name;
};
const bunBin = process.versions.bun ? process.execPath : bin("bun");
const junitFile = join(root, ".tmp", "junit.xml");
const color = process.stdout.isTTY === true && !process.env.NO_COLOR;

let passed = 0;
let failed = 0;
let bunExitCode = 0;
let server: PostgresServer | undefined;
let current: ChildProcess | undefined;
const env: Record<string, string | undefined> = { ...process.env, DENO_NO_UPDATE_CHECK: "1" };
if (color) env.FORCE_COLOR = "1";

const paint = (code: string, text: string): string => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const header = (title: string): void => console.log(`\n${paint("1;36", `=== ${title} ===`)}`);
const notice = (text: string): void => console.log(paint("33", `--- skipped: ${text}`));
const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)}s`;

function relative(path: string): string {
  return path.startsWith(root) ? path.slice(root.length) : path;
}

interface Ran {
  code: number;
  output: string;
}

/** Runs a command with the console attached; `capture` also tees its output for parsing. */
function run(cmd: string, args: string[], capture = false): Promise<Ran> {
  console.log(paint("2", `$ ${[relative(cmd), ...args].join(" ")}`));
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env,
      stdio: capture ? ["inherit", "pipe", "pipe"] : "inherit",
    });
    current = child;
    let output = "";
    if (capture) {
      const outDecoder = new TextDecoder();
      const errDecoder = new TextDecoder();
      child.stdout!.on("data", (chunk: Uint8Array) => {
        process.stdout.write(chunk);
        output += outDecoder.decode(chunk, { stream: true });
      });
      child.stderr!.on("data", (chunk: Uint8Array) => {
        process.stderr.write(chunk);
        output += errDecoder.decode(chunk, { stream: true });
      });
    }
    child.on("error", (error) => {
      console.error(`could not run ${cmd}: ${error.message}`);
    });
    child.on("close", (code, signal) => {
      current = undefined;
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

/** One command = one check. */
async function check(title: string, cmd: string, args: string[], started = performance.now()): Promise<boolean> {
  const { code } = await run(cmd, args);
  if (code === 0) {
    passed++;
    console.log(paint("32", `--- ok: ${title} (${seconds(started)})`));
    return true;
  }
  failed++;
  console.log(paint("31", `--- FAILED: ${title} (exit ${code}, ${seconds(started)})`));
  return false;
}

interface JunitCounts {
  passed: number;
  failed: number;
  skipped: number;
}

function readJunit(): JunitCounts | undefined {
  if (!existsSync(junitFile)) return undefined;
  const xml = readFileSync(junitFile, "utf8");
  const counts: JunitCounts = { passed: 0, failed: 0, skipped: 0 };
  for (const match of xml.matchAll(/<testcase\b[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = match[1] ?? "";
    if (/<(failure|error)\b/.test(body)) counts.failed++;
    else if (/<skipped\b/.test(body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

function summaryCount(output: string, word: string): number | undefined {
  // bun's closing lines: " 12 pass", " 1 fail", " 2 errors" (colours stripped).
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const match = new RegExp(`^\\s*(\\d+) ${word}\\s*$`, "m").exec(plain);
  return match ? Number(match[1]) : undefined;
}

async function bunTests(title = "bun test", files: string[] = []): Promise<void> {
  header(title);
  const started = performance.now();
  rmSync(junitFile, { force: true });
  mkdirSync(join(root, ".tmp"), { recursive: true });
  const { code, output } = await run(
    bunBin,
    ["test", "--timeout", "60000", "--reporter=junit", `--reporter-outfile=${relative(junitFile)}`, ...files],
    true,
  );
  if (bunExitCode === 0) bunExitCode = code;
  const junit = readJunit();
  const summaryPass = summaryCount(output, "pass");
  const summaryFail = summaryCount(output, "fail") ?? 0;
  // The JUnit file leaves out files that failed to load (bun counts them under "fail"), and is not
  // written at all when no test ran: take the larger failure count, and never report a failed
  // bun run as zero failures.
  const testsPassed = junit?.passed ?? summaryPass ?? 0;
  let testsFailed = Math.max(junit?.failed ?? 0, summaryFail);
  if (code !== 0 && testsFailed === 0) testsFailed = 1;
  if (!junit) console.log(paint("33", `--- note: no ${relative(junitFile)}; counted from bun's summary`));
  passed += testsPassed;
  failed += testsFailed;
  const verdict = testsFailed === 0 ? paint("32", "ok") : paint("31", "FAILED");
  console.log(`--- ${verdict}: ${title}: ${testsPassed} passed, ${testsFailed} failed (exit ${code}, ${seconds(started)})`);
}

/** One command that runs many tests: its "N passed … N failed" counts go into the totals. */
async function counted(title: string, cmd: string, args: string[]): Promise<void> {
  const started = performance.now();
  const { code, output } = await run(cmd, args, true);
  // deno-lint-ignore no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const matches = [...plain.matchAll(/(\d+) passed\W+(\d+) failed/g)];
  const last = matches.at(-1);
  const testsPassed = last ? Number(last[1]) : 0;
  let testsFailed = last ? Number(last[2]) : 0;
  if (code !== 0 && testsFailed === 0) testsFailed = 1;
  passed += testsPassed;
  failed += testsFailed;
  const verdict = testsFailed === 0 ? paint("32", "ok") : paint("31", "FAILED");
  console.log(`--- ${verdict}: ${title}: ${testsPassed} passed, ${testsFailed} failed (exit ${code}, ${seconds(started)})`);
}

function cleanupSync(): void {
  if (current?.pid && current.exitCode === null) {
    try {
      current.kill("SIGTERM");
    } catch {
      // already gone
    }
  }
  try {
    server?.destroySync();
  } catch (error) {
    console.error(`could not remove the test PostgreSQL: ${String(error)}`);
  }
}

const signalCodes = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
for (const signal of Object.keys(signalCodes) as (keyof typeof signalCodes)[]) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping`);
    cleanupSync();
    console.log(`${passed} passed, ${failed + 1} failed`);
    process.exit(signalCodes[signal]);
  });
}
process.on("exit", cleanupSync);

async function main(): Promise<void> {
  const has = (path: string): boolean => existsSync(join(root, path));

  header("PostgreSQL");
  let database = true;
  if (process.env.DATABASE_URL) {
    console.log(`using DATABASE_URL from the environment`);
  } else {
    const started = performance.now();
    try {
      server = await startPostgres({ name: "npm-test" });
      env.DATABASE_URL = server.url;
      console.log(`started ${server.url} (data in ${server.dataDir}, ${seconds(started)})`);
    } catch (error) {
      failed++;
      database = false;
      console.log(paint("31", `--- FAILED: could not start PostgreSQL: ${String(error)}`));
    }
  }

  if (database) await bunTests();
  else notice("bun test (no database)");

  header("typecheck");
  await check("tsc -p tsconfig.json --noEmit", bin("tsc"), ["-p", "tsconfig.json", "--noEmit"]);

  header("documentation snippets");
  if (!has("tests/support/snippets.ts")) notice("tests/support/snippets.ts does not exist");
  else await counted("README.md and docs/*.md snippets type-check", bunBin, ["tests/support/snippets.ts"]);

  header("lint");
  await check("deno lint", bin("deno"), ["lint"]);

  header("build + Node smoke test");
  if (!has("mod.ts")) notice("mod.ts does not exist yet");
  else {
    rmSync(join(root, "dist"), { recursive: true, force: true });
    const startedBuild = performance.now();
    const build = await run(bin("tsc"), ["-p", "tsconfig.build.json"]);
    if (build.code !== 0) {
      failed++;
      console.log(paint("31", `--- FAILED: build (exit ${build.code}, ${seconds(startedBuild)})`));
    } else if (!has("tests/runtime/node-smoke.mjs")) {
      passed++;
      console.log(paint("32", `--- ok: build (${seconds(startedBuild)})`));
      notice("tests/runtime/node-smoke.mjs does not exist yet (counted the build alone)");
    } else {
      await check("build + node tests/runtime/node-smoke.mjs", "node", ["tests/runtime/node-smoke.mjs"], startedBuild);
    }
  }

  header("Deno");
  if (!has("mod.ts")) notice("deno check: mod.ts does not exist yet");
  else await check("deno check mod.ts", bin("deno"), ["check", "mod.ts"]);
  if (!has("tests/runtime/deno-smoke.ts")) notice("tests/runtime/deno-smoke.ts does not exist yet");
  else await check("deno run -A tests/runtime/deno-smoke.ts", bin("deno"), ["run", "-A", "tests/runtime/deno-smoke.ts"]);

  header("runtime matrix on Node and Deno (Bun: in bun test)");
  if (!database) notice("runtime matrix (no database)");
  else if (!has("tests/runtime/matrix/cases.mjs")) notice("tests/runtime/matrix/cases.mjs does not exist yet");
  else {
    if (has("dist/mod.js")) await counted("Node matrix", "node", ["tests/runtime/matrix/node.mjs"]);
    else notice("Node matrix: no dist/ (the build failed)");
    await counted("Deno matrix", bin("deno"), ["test", "-A", "--no-check", "tests/runtime/matrix/deno.ts"]);
  }

  if (!database) notice("Worker on workerd (no database)");
  else if (!has("tests/runtime/worker.workerd.ts")) notice("tests/runtime/worker.workerd.ts does not exist yet");
  else await bunTests("Worker on workerd (Miniflare)", ["./tests/runtime/worker.workerd.ts"]);
}

try {
  await main();
} catch (error) {
  failed++;
  console.error(error);
} finally {
  if (server) {
    header("PostgreSQL");
    try {
      await server.destroy();
      console.log("stopped and removed");
    } catch (error) {
      console.error(`could not remove the test PostgreSQL: ${String(error)}`);
    }
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(bunExitCode !== 0 ? bunExitCode : failed > 0 ? 1 : 0);

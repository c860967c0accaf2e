/**
 * A real PgBouncer (from apt) in front of a test server, for lanes that go through a transaction
 * pooler. `startPgbouncer({ target })` writes a config into a temp dir, starts pgbouncer on
 * 127.0.0.1 and a free port (trust auth, `pool_mode = transaction` by default) and resolves once it
 * accepts connections. PgBouncer refuses to run as root: when this process is root it is started
 * with `-u postgres`, so the process it spawns is pgbouncer itself and `stop()` signals only it.
 *
 * Installing: when the binary is missing and this process is root, `ensurePgbouncer()` runs
 * `apt-get install -y pgbouncer`. Debian's package may start its own `pgbouncer` service on install
 * (where policy-rc.d allows it); if a pgbouncer process appears that was not running before the
 * install, that service — and only it — is stopped again.
 */
import process from "node:process";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./postgres.ts";

export interface PgbouncerOptions {
  /** The PostgreSQL server behind it. */
  target: { host: string; port: number };
  /** `transaction` (default), `session` or `statement`. */
  poolMode?: "transaction" | "session" | "statement";
  /** Server connections per database/user pair (`default_pool_size`). Default 10. */
  poolSize?: number;
}

export interface PgbouncerServer {
  host: string;
  port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  /** Stops pgbouncer (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Stops it and deletes its temp dir. Idempotent. */
  destroy(): Promise<void>;
}

const HOST = "127.0.0.1";
const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;
const OS_USER = "postgres";
const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];

let cachedBinary: string | null | undefined;
const running = new Set<ChildProcess>();
let hooked = false;

function findBinary(): string | undefined {
  for (const file of CANDIDATES) if (existsSync(file)) return file;
  try {
    const found = execFileSync("sh", ["-c", "command -v pgbouncer"], { encoding: "utf8" }).trim();
    return found || undefined;
  } catch {
    return undefined;
  }
}

function pgbouncerPids(): Set<number> {
  try {
    const out = execFileSync("pgrep", ["-x", "pgbouncer"], { encoding: "utf8" });
    return new Set(out.split("\n").filter(Boolean).map(Number));
  } catch {
    return new Set(); // pgrep exits 1 when nothing matches
  }
}

/**
 * The pgbouncer binary, installing it with apt-get when missing and this process is root.
 * Returns undefined (with the reason) when it is unavailable, so tests can skip saying why.
 */
export function ensurePgbouncer(): { binary: string } | { missing: string } {
  if (cachedBinary) return { binary: cachedBinary };
  if (cachedBinary === null) return { missing: "pgbouncer is not installed and could not be installed" };
  let binary = findBinary();
  if (binary === undefined && IS_ROOT) {
    const before = pgbouncerPids();
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    process.stderr.write("[pgbouncer] not found; installing pgbouncer with apt-get\n");
    const install = () =>
      execFileSync("apt-get", ["install", "-y", "-o", "DPkg::Lock::Timeout=600", "pgbouncer"], {
        env,
        stdio: ["ignore", "ignore", "inherit"],
      });
    try {
      try {
        install();
      } catch {
        execFileSync("apt-get", ["update"], { env, stdio: ["ignore", "ignore", "inherit"] });
        install();
      }
    } catch (error) {
      process.stderr.write(`[pgbouncer] apt-get install failed: ${String(error)}\n`);
    }
    stopPackageService(before);
    binary = findBinary();
  }
  cachedBinary = binary ?? null;
  return binary === undefined
    ? { missing: IS_ROOT ? "apt-get install pgbouncer failed" : "pgbouncer is not installed (and this process is not root)" }
    : { binary };
}

/** Stop the Debian package's own service if the install started it (and nothing else). */
function stopPackageService(before: Set<number>): void {
  const started = [...pgbouncerPids()].filter((pid) => !before.has(pid));
  if (started.length === 0) return;
  process.stderr.write(`[pgbouncer] the package started its service (pid ${started.join(", ")}); stopping it\n`);
  try {
    execFileSync("service", ["pgbouncer", "stop"], { stdio: "ignore" });
  } catch {
    for (const pid of started) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
  }
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const child of running) child.kill("SIGKILL");
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => (socket.destroy(), resolve(false)));
  });
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-20).join("\n");
  } catch {
    return "";
  }
}

/** Start pgbouncer in front of `target`. */
export async function startPgbouncer(options: PgbouncerOptions): Promise<PgbouncerServer> {
  const found = ensurePgbouncer();
  if ("missing" in found) throw new Error(found.missing);
  const dir = mkdtempSync(join(tmpdir(), "pgpilot-pgbouncer-"));
  chmodSync(dir, 0o700);
  if (IS_ROOT) execFileSync("chown", [`${OS_USER}:`, dir]);
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  const logFile = join(dir, "pgbouncer.log");
  writeFileSync(join(dir, "userlist.txt"), `"${OS_USER}" ""\n`);
  writeFileSync(
    ini,
    [
      "[databases]",
      `* = host=${options.target.host} port=${options.target.port}`,
      "[pgbouncer]",
      `listen_addr = ${HOST}`,
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      `pool_mode = ${options.poolMode ?? "transaction"}`,
      `default_pool_size = ${options.poolSize ?? 10}`,
      "max_client_conn = 1000",
      `logfile = ${logFile}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      // Sent by some drivers at startup; pgbouncer refuses startup parameters it does not know.
      "ignore_startup_parameters = extra_float_digits",
      "",
    ].join("\n"),
  );
  if (IS_ROOT) execFileSync("chown", ["-R", `${OS_USER}:`, dir]);

  hookProcess();
  const args = IS_ROOT ? ["-u", OS_USER, ini] : [ini];
  const child = spawn(found.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += String(chunk)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => (running.delete(child), resolve())));
  let alive = true;
  void exited.then(() => (alive = false));

  const stop = async (): Promise<void> => {
    if (!alive) return;
    child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    if (alive) {
      child.kill("SIGKILL");
      await exited;
    }
  };
  const destroy = async (): Promise<void> => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = performance.now() + 10_000;
  while (!(await canConnect(port))) {
    if (!alive || performance.now() > deadline) {
      const log = readLog(logFile);
      await destroy().catch(() => {});
      throw new Error(`pgbouncer did not start on port ${port}\n${stderr.trim()}\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { host: HOST, port, url: `postgres://${OS_USER}@${HOST}:${port}/postgres`, stop, destroy };
}

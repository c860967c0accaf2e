/**
 * Throwaway PostgreSQL servers for tests and benchmarks.
 *
 * `startPostgres()` runs initdb into a fresh temp dir and starts a server on 127.0.0.1 and a free
 * port (trust auth, user `postgres`). PostgreSQL refuses to run as root, so when this process is
 * root the server binaries run as the `postgres` OS user (`runuser -u postgres --`).
 *
 * Durability settings: `fsync=off` and `full_page_writes=off` (fast, and an immediate stop of the
 * server process still keeps everything: the OS page cache survives), but `synchronous_commit=on`,
 * so a commit the server acknowledged survives `stop("immediate")`.
 */
import process from "node:process";
import { execFile, execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface PostgresServer {
  host: string;
  port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  url: string;
  dataDir: string;
  /** `pg_ctl stop -m fast|immediate` (default fast). Resolves once the server is down. No-op if stopped. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts again on the same port and data dir; resolves once it accepts connections. No-op if running. */
  start(): Promise<void>;
  /** Stops (immediate) and deletes the temp dir. Idempotent. */
  destroy(): Promise<void>;
  /** Synchronous `destroy()` for process 'exit' handlers. Idempotent. */
  destroySync(): void;
  /** Runs SQL with psql (unaligned, tuples only, ON_ERROR_STOP) and returns stdout without the final newline. */
  psql(sql: string): Promise<string>;
}

export interface StartPostgresOptions {
  /** Extra postgresql.conf settings; they override the defaults. */
  settings?: Record<string, string | number>;
  /** Goes into the temp dir's name, to tell servers apart. */
  name?: string;
}

const HOST = "127.0.0.1";
const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;
const OS_USER = "postgres";

let cachedBindir: string | undefined;

/**
 * Every temp dir this process created and has not removed yet. When the process ends without the
 * tests' own cleanup (a crash, process.exit(), Ctrl-C, SIGTERM) an 'exit' handler stops their servers
 * and deletes them. Signals: SIGINT/SIGTERM/SIGHUP clean up, then exit with 128 + signal number unless
 * the process has other listeners for that signal (they decide).
 */
const liveDirs = new Map<string, () => void>();
let processHooked = false;

/** Stops (immediate) and deletes every server this process started and has not destroyed; returns how many. */
export function destroyAllServersSync(): number {
  const cleanups = [...liveDirs.values()];
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch (error) {
      process.stderr.write(`[postgres] cleanup failed: ${String(error)}\n`);
    }
  }
  return cleanups.length;
}

function hookProcess(): void {
  if (processHooked) return;
  processHooked = true;
  process.on("exit", () => destroyAllServersSync());
  const codes = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
  for (const signal of Object.keys(codes) as (keyof typeof codes)[]) {
    process.once(signal, () => {
      if (liveDirs.size > 0) process.stderr.write(`[postgres] ${signal}: removing ${liveDirs.size} test server dir(s)\n`);
      destroyAllServersSync();
      if (process.listenerCount(signal) === 0) process.exit(codes[signal]);
    });
  }
}

/** Stops whatever server runs in dataDir (if any) and deletes dir, synchronously. */
function removeClusterSync(bindir: string, dir: string, dataDir: string): void {
  if (existsSync(join(dataDir, "postmaster.pid"))) {
    try {
      runSync(join(bindir, "pg_ctl"), ["stop", "-w", "-t", "60", "-m", "immediate", "-D", dataDir], dir);
    } catch {
      // not running after all (stale pid file)
    }
  }
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  liveDirs.delete(dir);
}

function hasServerBinaries(dir: string): boolean {
  return existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl")) && existsSync(join(dir, "postgres"));
}

function findBindir(): string | undefined {
  try {
    const dir = execFileSync("pg_config", ["--bindir"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      .trim();
    if (dir && hasServerBinaries(dir)) return dir;
  } catch {
    // no pg_config on PATH
  }
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join(root, v, "bin");
      if (hasServerBinaries(dir)) return dir;
    }
  }
  return undefined;
}

/**
 * Returns the directory holding initdb, pg_ctl and postgres: `pg_config --bindir`, else the highest
 * `/usr/lib/postgresql/<version>/bin`, else installs `postgresql-15` with apt-get (root only) and looks again.
 */
export function ensurePostgresBinaries(): string {
  if (cachedBindir) return cachedBindir;
  let dir = findBindir();
  if (!dir) {
    if (!IS_ROOT) {
      throw new Error(
        "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin); " +
          "install postgresql-15 or set DATABASE_URL",
      );
    }
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    process.stderr.write("[postgres] server binaries not found; installing postgresql-15 with apt-get\n");
    execFileSync("apt-get", ["update"], { env, stdio: ["ignore", "ignore", "inherit"] });
    execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "postgresql-15"], {
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });
    dir = findBindir();
    if (!dir) throw new Error("installed postgresql-15 but still cannot find initdb/pg_ctl/postgres");
  }
  cachedBindir = dir;
  return dir;
}

/** Asks the OS for a free loopback port (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not get a free port"))));
    });
  });
}

interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a PostgreSQL binary, as the `postgres` OS user when we are root. */
function asServerUser(file: string, args: string[]): [string, string[]] {
  return IS_ROOT ? ["runuser", ["-u", OS_USER, "--", file, ...args]] : [file, args];
}

function run(file: string, args: string[], cwd: string, asUser = true): Promise<RunResult> {
  const [cmd, argv] = asUser ? asServerUser(file, args) : [file, args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const detail = (stderr || stdout || "").trim();
        reject(new Error(`${[file, ...args].join(" ")} failed: ${error.message}${detail ? `\n${detail}` : ""}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

function runSync(file: string, args: string[], cwd: string): void {
  const [cmd, argv] = asServerUser(file, args);
  execFileSync(cmd, argv, { cwd, stdio: "ignore" });
}

function makeTempDir(bindir: string, name: string): { dir: string; dataDir: string } {
  const dir = mkdtempSync(join(tmpdir(), `pgpilot-${name.replace(/[^a-zA-Z0-9_-]/g, "_")}-`));
  const dataDir = join(dir, "data");
  hookProcess();
  liveDirs.set(dir, () => removeClusterSync(bindir, dir, dataDir));
  chmodSync(dir, 0o700);
  if (IS_ROOT) execFileSync("chown", [`${OS_USER}:`, dir]);
  return { dir, dataDir };
}

function confValue(value: string | number): string {
  return typeof value === "number" ? String(value) : `'${value.replace(/'/g, "''")}'`;
}

function appendSettings(dataDir: string, settings: Record<string, string | number>): void {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`);
  // Later lines win in postgresql.conf; postgresql.auto.conf (pg_basebackup -R) is read after it.
  appendFileSync(join(dataDir, "postgresql.conf"), `\n# pgpilot test settings\n${lines.join("\n")}\n`);
}

interface ServerParts {
  bindir: string;
  dir: string;
  dataDir: string;
  port: number;
}

function tail(file: string): string {
  try {
    const text = execFileSync("tail", ["-n", "30", file], { encoding: "utf8" });
    return text.trim();
  } catch {
    return "";
  }
}

function makeServer({ bindir, dir, dataDir, port }: ServerParts): PostgresServer {
  const pgCtl = join(bindir, "pg_ctl");
  const logFile = join(dir, "postgres.log");
  let running = false;
  let destroyed = false;

  const server: PostgresServer = {
    host: HOST,
    port,
    url: `postgres://postgres@${HOST}:${port}/postgres`,
    dataDir,
    async start() {
      if (destroyed) throw new Error("server destroyed");
      if (running) return;
      try {
        await run(pgCtl, ["start", "-w", "-t", "60", "-D", dataDir, "-l", logFile], dir);
      } catch (error) {
        throw new Error(`${(error as Error).message}\n--- ${logFile} ---\n${tail(logFile)}`);
      }
      running = true;
    },
    async stop(mode = "fast") {
      if (!running) return;
      await run(pgCtl, ["stop", "-w", "-t", "60", "-m", mode, "-D", dataDir], dir);
      running = false;
    },
    async destroy() {
      if (destroyed) return;
      try {
        await server.stop("immediate");
      } catch {
        // already down, or the dir is gone; removing it is what matters
      }
      destroyed = true;
      removeClusterSync(bindir, dir, dataDir);
    },
    destroySync() {
      if (destroyed) return;
      destroyed = true;
      running = false;
      removeClusterSync(bindir, dir, dataDir);
    },
    async psql(sql: string) {
      const args = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", String(port), "-U", "postgres"];
      const { stdout } = await run(join(bindir, "psql"), [...args, "-d", "postgres", "-c", sql], dir, false);
      return stdout.replace(/\n$/, "");
    },
  };
  return server;
}

const BASE_SETTINGS: Record<string, string | number> = {
  listen_addresses: HOST,
  fsync: "off",
  full_page_writes: "off",
  synchronous_commit: "on",
  max_connections: 300,
  wal_level: "replica",
  max_wal_senders: 5,
  logging_collector: "off",
};

/** Tries to start; on failure (most likely a port taken between freePort() and listen) tries a new port. */
async function startOnFreePort(
  bindir: string,
  dir: string,
  dataDir: string,
  settings: Record<string, string | number>,
): Promise<PostgresServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    appendSettings(dataDir, { ...settings, port, unix_socket_directories: dir });
    const server = makeServer({ bindir, dir, dataDir, port });
    try {
      await server.start();
      return server;
    } catch (error) {
      lastError = error;
    }
  }
  removeClusterSync(bindir, dir, dataDir);
  throw lastError;
}

/** initdb into a temp dir and start a server on 127.0.0.1 and a free port. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bindir = ensurePostgresBinaries();
  const { dir, dataDir } = makeTempDir(bindir, options.name ?? "pg");
  try {
    await run(
      join(bindir, "initdb"),
      ["-D", dataDir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C", "--no-instructions"],
      dir,
    );
  } catch (error) {
    removeClusterSync(bindir, dir, dataDir);
    throw error;
  }
  return startOnFreePort(bindir, dir, dataDir, { ...BASE_SETTINGS, ...options.settings });
}

/**
 * A streaming replica of `primary` (`pg_basebackup -R -X stream`), started with `hot_standby=on`
 * on its own free port. Its stop/start/destroy work like the primary's.
 */
export async function startReplica(
  primary: PostgresServer,
  options: StartPostgresOptions = {},
): Promise<PostgresServer> {
  const bindir = ensurePostgresBinaries();
  const { dir, dataDir } = makeTempDir(bindir, options.name ?? "replica");
  try {
    await run(
      join(bindir, "pg_basebackup"),
      ["-R", "-X", "stream", "-h", primary.host, "-p", String(primary.port), "-U", "postgres", "-D", dataDir],
      dir,
    );
  } catch (error) {
    removeClusterSync(bindir, dir, dataDir);
    throw error;
  }
  return startOnFreePort(bindir, dir, dataDir, { hot_standby: "on", ...options.settings });
}

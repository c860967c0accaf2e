/**
 * bun test preload (bunfig.toml): one PostgreSQL for the whole run. Uses DATABASE_URL when set;
 * otherwise starts a throwaway server and exports its URL as DATABASE_URL.
 *
 * Cleanup: a global afterAll (runs once, after every file) destroys it, and any server a test file
 * started but did not destroy. If the run is cut short (process.exit(), Ctrl-C, SIGTERM), the
 * 'exit' and signal handlers in postgres.ts stop and delete every server synchronously (bun test
 * emits no 'exit' event on a normal finish, hence the afterAll).
 */
import process from "node:process";
import { afterAll } from "bun:test";
import { destroyAllServersSync, type PostgresServer, startPostgres } from "./postgres.ts";

let server: PostgresServer | undefined;

if (!process.env.DATABASE_URL) {
  server = await startPostgres({ name: "bun-test" });
  process.env.DATABASE_URL = server.url;
}

afterAll(async () => {
  await server?.destroy();
  const leaked = destroyAllServersSync();
  if (leaked > 0) {
    process.stderr.write(`[preload] destroyed ${leaked} PostgreSQL server(s) that tests left running\n`);
  }
});

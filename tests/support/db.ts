import process from "node:process";

/** The PostgreSQL every test shares: from DATABASE_URL, which the preload (or run-all) sets. */
export function testUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      "DATABASE_URL is not set: run tests with `bun test` (the preload in bunfig.toml starts a server) " +
        "or `npm test`, or set DATABASE_URL to a PostgreSQL you can use",
    );
  }
  return url;
}

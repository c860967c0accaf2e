/**
 * Quick start: wrap postgres.js with pgpilot and run a few queries.
 *
 *   DATABASE_URL=postgres://… bun examples/quickstart.ts
 *
 * Without DATABASE_URL it starts a throwaway PostgreSQL (the same one the tests use) and
 * removes it at the end.
 */
import postgres from "postgres";
import { type Interceptor, pilot } from "../mod.ts";
import { type PostgresServer, startPostgres } from "../tests/support/postgres.ts";

let server: PostgresServer | undefined;
let url = process.env.DATABASE_URL;
if (!url) {
  console.log("No DATABASE_URL: starting a throwaway PostgreSQL…");
  server = await startPostgres({ name: "quickstart" });
  url = server.url;
}

// The smallest interceptor: log each operation with its duration.
const log: Interceptor = {
  name: "log",
  async intercept(op, next) {
    try {
      return await next();
    } finally {
      const ms = (performance.now() - op.startedAt).toFixed(2);
      const where = op.parent ? `  (in ${op.parent.kind})` : "";
      console.log(`${op.kind.padEnd(11)} ${op.command.padEnd(7)} ${op.collection ?? ""} ${ms} ms${where}`);
    }
  },
};

const sql = pilot(postgres(url, { max: 5, onnotice: () => {} }), { name: "quickstart", interceptors: [log] });

try {
  await sql`create table if not exists quickstart_users (id serial primary key, name text not null)`;
  await sql`insert into quickstart_users ${sql([{ name: "Ada" }, { name: "Grace" }])}`;
  const users = await sql`select id, name from quickstart_users order by id limit ${10}`;
  console.log("users:", users.map((u) => u.name).join(", "));
  await sql.begin(async (tx) => {
    await tx`update quickstart_users set name = upper(name) where id = ${users[0]!.id}`;
    await tx`delete from quickstart_users where name = ${"nobody"}`;
  });
  console.log("stats:", JSON.stringify(sql.stats()));
  console.log("health:", JSON.stringify(sql.health()));
  await sql`drop table quickstart_users`;
} finally {
  await sql.close({ timeout: 2 });
  await server?.destroy();
}

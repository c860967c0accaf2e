/**
 * A schema change under a running app (ALTER … TYPE invalidates cached plans; postgres.js
 * re-prepares the statement by itself): with adaptive() at its defaults every caller settles
 * with its own rows. This is why pipelining is opt-in: with `pipelineDepth` > 0 the same run
 * left callers unsettled (docs/adaptive.md).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import postgres from "postgres";
import { adaptive } from "../../../lib/interceptors/adaptive/index.ts";
import { pilot } from "../../../lib/core/pilot.ts";
import { testUrl } from "../../support/db.ts";

const admin = postgres(testUrl(), { max: 1, onnotice: () => {} });
beforeAll(async () => {
  await admin`drop table if exists plan_change`;
  await admin`create table plan_change (id int primary key, v int not null)`;
  await admin`insert into plan_change select g, g * 10 from generate_series(1, 100) g`;
});
afterAll(async () => {
  await admin`drop table if exists plan_change`;
  await admin.end({ timeout: 1 });
});

test("a plan invalidated by ALTER … TYPE while 40 callers run: each gets its own rows", async () => {
  const sql = pilot(postgres(testUrl(), { max: 2, onnotice: () => {} }), { interceptors: [adaptive({ prewarm: false })] });
  try {
    const read = (id: number) => sql`select * from plan_change where id = ${id}`;
    const other = (i: number) => sql`select ${i}::int as i, 'other' as kind`;
    // Prepare both statements on every connection.
    await Promise.all(Array.from({ length: 16 }, (_, i) => Promise.all([read(i + 1), other(i)])));
    await admin`alter table plan_change alter column v type bigint`;
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0
        ? read(i + 1).then((rows) => ["read", rows[0]?.id, String(rows[0]?.v)])
        : other(i).then((rows) => ["other", rows[0]?.i, rows[0]?.kind])
    ));
    expect(outcomes.map((outcome) => outcome.status === "fulfilled" ? outcome.value : ["error", String(outcome.reason)]))
      .toEqual(Array.from({ length: 40 }, (_, i) => i % 2 === 0 ? ["read", i + 1, String((i + 1) * 10)] : ["other", i, "other"]));
  } finally {
    await sql.close({ timeout: 1 });
  }
}, 30_000);

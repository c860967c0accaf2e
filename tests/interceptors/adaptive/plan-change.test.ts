/**
 * A schema change under a running app (ALTER … TYPE invalidates cached plans; postgres.js
 * re-prepares the statement by itself): every caller settles with its own rows, at every
 * pipeline depth. Pipelined, postgres.js's own re-prepare used to leave callers unsettled; the
 * pipeline now re-describes the statement itself (lib/pipeline/connection.ts).
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

test.each([0, 1, 4, 16])("pipelineDepth %i: a plan invalidated by ALTER … TYPE while 40 callers run: each gets its own rows", async (pipelineDepth) => {
  // max: 4 so that depth > 0 reserves connections (a fifth of the pool stays free).
  const sql = pilot(postgres(testUrl(), { max: 4, onnotice: () => {} }), { interceptors: [adaptive({ prewarm: false, pipelineDepth })] });
  try {
    const read = (id: number) => sql`select * from plan_change where id = ${id}`;
    const other = (i: number) => sql`select ${i}::int as i, 'other' as kind`;
    // Prepare both statements on every connection.
    await Promise.all(Array.from({ length: 16 }, (_, i) => Promise.all([read(i + 1), other(i)])));
    const type = pipelineDepth % 2 === 0 ? admin`bigint` : admin`int`;
    await admin`alter table plan_change alter column v type ${type}`;
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

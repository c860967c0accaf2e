// The same checks on every runtime: pilot() against the real server, through the package's
// public entry point. Plain JavaScript so Node 20 runs it without a TypeScript loader.

/**
 * @param {{ pilot: Function, postgres: Function, url: string, runtime: string }} deps
 * @returns {Promise<string[]>} names of the checks that passed (throws on the first failure)
 */
export async function runChecks({ pilot, postgres, url, runtime }) {
  const passed = [];
  const seen = [];
  const recorder = {
    name: "recorder",
    async intercept(op, next) {
      seen.push(`${op.kind}:${op.command}${op.parent ? "<" + op.parent.kind : ""}`);
      return next();
    },
  };
  const sql = pilot(postgres(url, { max: 2, onnotice: () => {} }), { name: runtime, interceptors: [recorder] });
  const check = (name, ok, detail) => {
    if (!ok) throw new Error(`${runtime}: ${name} failed: ${detail}`);
    passed.push(name);
  };
  try {
    const [{ answer }] = await sql`select ${41}::int + 1 as answer`;
    check("tagged template", answer === 42, answer);

    const rows = await sql.unsafe("select generate_series(1, 3) as n");
    check("unsafe", rows.map((r) => r.n).join() === "1,2,3", JSON.stringify(rows));

    const inTx = await sql.begin(async (tx) => {
      const [{ n }] = await tx`select 1 as n`;
      return n;
    });
    check("transaction", inTx === 1, inTx);

    const error = await sql`select 1/0`.catch((e) => e);
    check("error passthrough", error && error.code === "22012", error && error.code);

    const expected = ["query:SELECT", "query:SELECT", "transaction:BEGIN", "query:SELECT<transaction", "query:SELECT"];
    check("one operation per query", seen.join() === expected.join(), seen.join());

    const stats = sql.stats();
    check("stats()", stats.name === runtime && stats.lanes.primary.max === 2, JSON.stringify(stats));
    check("health()", sql.health().status === "healthy", JSON.stringify(sql.health()));
  } finally {
    await sql.close({ timeout: 1 });
  }
  return passed;
}

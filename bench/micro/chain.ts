/**
 * Micro-benchmark (mitata): the CPU pgpilot adds per query on the hot path, without the
 * network. A query through pilot() costs: the wrapper call (creating postgres.js's Query and
 * swapping its handler), the cached SQL analysis lookup, one Operation, and the chain.
 * Each piece is measured next to its raw counterpart in the same run.
 *
 *   bun bench/micro/chain.ts        (or: npm run bench:micro)
 *
 * Nothing here connects: postgres.js creates queries lazily and connects only when one runs.
 */
import { bench, do_not_optimize, run, summary } from "mitata";
import postgres from "postgres";
import { compose } from "../../lib/core/compose.ts";
import type { Interceptor } from "../../lib/core/interceptor.ts";
import { Operation } from "../../lib/core/operation.ts";
import { pilot } from "../../lib/core/pilot.ts";
import { analyzeTemplate, analyzeUnsafe } from "../../lib/sql/cache.ts";

const raw = postgres("postgres://nobody@127.0.0.1:9/none", { max: 1 });
const wrapped = pilot(postgres("postgres://nobody@127.0.0.1:9/none", { max: 1 }), { interceptors: [] });
const passThrough: Interceptor = { name: "pass", intercept: (_op, next) => next() };
const done = Promise.resolve(1);
const terminal = () => done;
const chain0 = compose([], terminal);
const chain1 = compose([passThrough], terminal);
const chain5 = compose([passThrough, passThrough, passThrough, passThrough, passThrough], terminal);
const strings = ((s: TemplateStringsArray, ..._values: unknown[]) => s)`select * from users where id = ${0} and org = ${0}`;
analyzeTemplate(strings);
analyzeUnsafe("select * from users where id = 1");

summary(() => {
  bench("raw: sql`…` creates a query", () => do_not_optimize(raw`select * from users where id = ${1}`));
  bench("pilot: sql`…` creates a query", () => do_not_optimize(wrapped`select * from users where id = ${1}`));
});

bench("analysis: cached template lookup", () => do_not_optimize(analyzeTemplate(strings)));
bench("analysis: cached unsafe() lookup", () => do_not_optimize(analyzeUnsafe("select * from users where id = 1")));
bench("new Operation", () =>
  do_not_optimize(new Operation("query", analyzeTemplate(strings), "primary", undefined, undefined, undefined)));

summary(() => {
  const analysis = analyzeTemplate(strings);
  bench("chain: 0 interceptors", async () => {
    await chain0(new Operation("query", analysis, "primary", undefined, undefined, undefined));
  });
  bench("chain: 1 pass-through interceptor", async () => {
    await chain1(new Operation("query", analysis, "primary", undefined, undefined, undefined));
  });
  bench("chain: 5 pass-through interceptors", async () => {
    await chain5(new Operation("query", analysis, "primary", undefined, undefined, undefined));
  });
});

await run();
await Promise.all([raw.end({ timeout: 0 }), wrapped.end({ timeout: 0 })]);

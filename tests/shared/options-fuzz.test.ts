/**
 * Random options for every factory (and pilot's own): each is either refused with a ConfigError
 * whose every issue names a field of the input, or accepted — and then a sample of the accepted
 * interceptors is attached to a real pool, where `select 1` and `close()` must settle.
 *
 * Deterministic: a fixed seed (printed; override with FUZZ_SEED) drives fc.sample.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import postgres, { type Sql } from "postgres";
import { pilot, type PilotSql } from "../../lib/core/pilot.ts";
import type { Interceptor } from "../../lib/core/interceptor.ts";
import { adaptive } from "../../lib/interceptors/adaptive/index.ts";
import { affinity } from "../../lib/interceptors/affinity/index.ts";
import { breaker } from "../../lib/interceptors/breaker/index.ts";
import { deadline } from "../../lib/interceptors/deadline/index.ts";
import { monitor } from "../../lib/interceptors/monitor/index.ts";
import { retry } from "../../lib/interceptors/retry/index.ts";
import { tracing } from "../../lib/interceptors/tracing/index.ts";
import { CircuitOpenError, ConfigError, DeadlineExceededError } from "../../lib/shared/errors.ts";
import { testUrl } from "../support/db.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 1402);
/** Option objects generated per factory. */
const RUNS = 400;
/** Accepted option objects per factory that are attached to a pool and queried. */
const ATTACHED = 10;
/** Longest a `select 1` or a `close()` may take to settle. */
const SETTLE_MS = 5_000;

console.log(`options-fuzz: seed ${SEED} (FUZZ_SEED=${SEED} reproduces), ${RUNS} option objects per factory`);

/** Values that broke factories before: timer overflow, huge sizes, non-numbers, non-plain objects. */
const edge = fc.constantFrom<unknown>(
  0, -0, -1, 1, 2, 10, 16, 100, 0.5, 1.5, 2 ** 31 - 1, 2 ** 31, 1e12, 1e300, -1e300, NaN, Infinity, -Infinity,
  Number.MAX_SAFE_INTEGER, null, [], {}, new Date(0), Object.create({ inherited: 1 }), "primary", "gradient",
  "vegas", "aimd", "fixed", "nope", true, false,
);
/** Values most options accept (so that whole objects are often valid, not only refused). */
const plausible = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.double({ min: 0.05, max: 1, noNaN: true }), fc.boolean());
const scalar: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: plausible },
  { weight: 3, arbitrary: edge },
  { weight: 1, arbitrary: fc.integer({ min: -10, max: 100_000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);

/** An options object over `keys` (each present or not), sometimes with a stray key or not plain at all. */
function options(keys: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const record = fc.record(keys, { requiredKeys: [] });
  // One or two fields set: most are accepted, so edge values (2^31−1, Infinity) reach a pool.
  const sparse = fc.record(
    Object.fromEntries(Object.entries(keys).map(([k, value]) => [k, fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, value)])),
    { requiredKeys: [] },
  ).map((o) => Object.fromEntries(Object.entries(o).filter(([, value]) => value !== undefined)));
  return fc.oneof(
    { weight: 6, arbitrary: record },
    { weight: 6, arbitrary: sparse },
    { weight: 1, arbitrary: fc.tuple(record, fc.constantFrom("slowQueryMS", "timeout", "x")).map(([o, k]) => ({ ...o, [k]: 1 })) },
    { weight: 1, arbitrary: record.map((o) => Object.create(o)) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(undefined, null, 42, "x", [], [1], new Map()) },
  );
}

const nested = (keys: string[]): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 3, arbitrary: fc.record(Object.fromEntries(keys.map((k) => [k, scalar])), { requiredKeys: [] }) }, { weight: 1, arbitrary: scalar });
const flat = (keys: string[], extra: Record<string, fc.Arbitrary<unknown>> = {}): Record<string, fc.Arbitrary<unknown>> => ({
  ...Object.fromEntries(keys.map((k) => [k, scalar])),
  ...extra,
});

const FACTORIES: { name: string; create: (o: unknown) => Interceptor; keys: Record<string, fc.Arbitrary<unknown>> }[] = [
  {
    name: "monitor",
    create: (o) => monitor(o as never),
    keys: flat(["slowQueryMs", "maxPatterns", "topPatterns", "windowSeconds", "maxAttributeSets", "meterProvider", "metricProducer"], {
      health: nested(["latencyMs", "errorRateDegraded", "errorRateFailed", "utilizationDegraded", "minCalls", "failingStreak"]),
    }),
  },
  {
    name: "tracing",
    create: (o) => tracing(o as never),
    keys: flat(["tracerProvider", "requireParentSpan", "captureParameters", "sqlCommenter", "maxQueryTextLength", "maxParameterLength"]),
  },
  {
    name: "affinity",
    create: (o) => affinity(o as never),
    // `slow` mostly names the one lane, so learned affinity (an array of minSamples per pattern) runs.
    keys: flat(["reads", "slowMs", "recoverMs", "minSamples", "maxPatterns", "readYourWritesMs", "maxWrittenTables", "meterProvider"], {
      slow: fc.oneof({ weight: 3, arbitrary: fc.constant("primary") }, scalar),
    }),
  },
  { name: "deadline", create: (o) => deadline(o as never), keys: flat(["timeoutMs"]) },
  {
    name: "retry",
    create: (o) => retry(o as never),
    keys: flat(["maxAttempts", "baseDelayMs", "maxDelayMs", "transactions", "reads", "meterProvider"]),
  },
  {
    name: "breaker",
    create: (o) => breaker(o as never),
    keys: flat(
      ["windowMs", "failureRate", "minimumVolume", "recoveryMs", "maxRecoveryMs", "halfOpenRequests", "activeProbing", "probeTimeoutMs", "meterProvider"],
      {
        thresholds: nested(["connection", "timeout", "transaction", "resource"]),
        initialState: fc.oneof(scalar, fc.record({ primary: nested(["state", "category", "until", "opens"]) })),
      },
    ),
  },
  {
    name: "adaptive",
    create: (o) => adaptive(o as never),
    keys: flat(
      ["algorithm", "min", "max", "initial", "pipelineDepth", "queueTimeoutMs", "maxQueue", "windowMs", "intervalMs", "horizonMs", "targetUtilization", "prewarm", "meterProvider"],
      { forecast: nested(["alpha", "beta"]) },
    ),
  },
];

/** Every issue of `error` names a field of `input` (or says the options object itself is wrong). */
function namesAField(error: ConfigError, input: unknown): boolean {
  const given = typeof input === "object" && input !== null ? Object.keys(input) : [];
  return error.issues.length > 0 && error.issues.every(({ path, message }) => {
    if (path === "") return /^options must be/.test(message) || /^unknown option \S+/.test(message);
    return given.includes(path.split(".")[0]!) || path === "sql";
  });
}

/** What a call did: "threw ConfigError" (checked), "accepted", or a failure message. */
function classify(create: () => unknown, input: unknown): "refused" | "accepted" {
  try {
    create();
    return "accepted";
  } catch (error) {
    if (!(error instanceof ConfigError)) throw new Error(`threw ${String(error)} (not a ConfigError) for ${show(input)}`);
    if (!namesAField(error, input)) throw new Error(`ConfigError names no field: "${error.message}" for ${show(input)}`);
    return "refused";
  }
}

/** True when `value` holds a number ≥ 1e6 or Infinity (at any depth). */
function holdsHuge(value: unknown): boolean {
  if (typeof value === "number") return value >= 1e6;
  return typeof value === "object" && value !== null && Object.values(value).some(holdsHuge);
}

function show(value: unknown): string {
  return fc.stringify(value);
}

/** Resolve with the rejection of `promise` (undefined when it fulfilled); throw when it has not settled within `ms`. */
async function settles<T>(promise: Promise<T>, what: string, ms = SETTLE_MS): Promise<{ error?: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise.then(() => ({}), (error: unknown) => ({ error })), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A `select 1` through an accepted interceptor succeeds, unless the options ask for its failure:
 * a budget too short for a round trip, or a circuit restored open.
 */
function expectedFailure(input: unknown, error: unknown): boolean {
  const options = input as { timeoutMs?: number; initialState?: unknown } | undefined;
  if (error instanceof DeadlineExceededError) return (options?.timeoutMs ?? Infinity) < 1_000;
  if (error instanceof CircuitOpenError) return options?.initialState !== undefined;
  return false;
}

/** Attach `interceptors` through pilot on a fresh pool (max 2), run `select 1`, close: all must settle. */
async function exercise(interceptors: unknown[], input: unknown, pilotOptions: Record<string, unknown> = {}): Promise<string> {
  const raw = postgres(testUrl(), { max: 2, onnotice: () => {} });
  let sql: PilotSql<Sql> | undefined;
  try {
    try {
      sql = pilot(raw, { ...pilotOptions, interceptors } as never);
    } catch (error) {
      // Lane names are checked at attach (affinity's `slow: "nope"`): a ConfigError naming the field.
      if (error instanceof ConfigError && namesAField(error, input)) return "refused at attach";
      throw new Error(`attaching threw ${String(error)} for ${show(input)}`);
    }
    const query = sql`select 1 as one`;
    const { error } = await settles(query, `select 1 with ${show(input)}`);
    if (error === undefined) return "succeeded";
    if (!expectedFailure(input, error)) throw new Error(`select 1 failed with ${String(error)} for ${show(input)}`);
    return `failed as asked (${(error as Error).name})`;
  } finally {
    await settles(sql !== undefined ? sql.close({ timeout: 1 }) : raw.end({ timeout: 1 }), `close with ${show(input)}`);
  }
}

const totals: string[] = [];
afterAll(() => console.log(`options-fuzz (seed ${SEED}):\n  ${totals.join("\n  ")}`));

describe("random options: a ConfigError naming the field, or a working interceptor", () => {
  for (const factory of FACTORIES) {
    test(factory.name, async () => {
      const inputs = fc.sample(options(factory.keys), { seed: SEED, numRuns: RUNS });
      const accepted: { input: unknown; interceptor: Interceptor }[] = [];
      let refused = 0;
      for (const input of inputs) {
        let interceptor: Interceptor | undefined;
        const outcome = classify(() => (interceptor = factory.create(input)), input);
        if (outcome === "refused") refused++;
        else accepted.push({ input, interceptor: interceptor! });
      }
      expect(refused).toBeGreaterThan(0);
      expect(accepted.length).toBeGreaterThan(0);
      // Evenly spaced over the accepted ones, plus those holding a huge value (timer overflow,
      // arrays sized by an option), so the sample is not only the first few shapes.
      const step = Math.max(1, Math.floor(accepted.length / ATTACHED));
      const spaced = accepted.filter((_, index) => index % step === 0).slice(0, ATTACHED);
      const huge = accepted.filter(({ input }) => holdsHuge(input) && !spaced.some((s) => s.input === input)).slice(0, ATTACHED);
      const outcomes: Record<string, number> = {};
      for (const { input, interceptor } of [...spaced, ...huge]) {
        const outcome = await exercise([interceptor], input);
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
      totals.push(`${factory.name}: ${RUNS} generated, ${refused} refused, ${accepted.length} accepted, attached ${JSON.stringify(outcomes)}`);
    });
  }

  test("pilot options", async () => {
    const interceptors = fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom<unknown>([], undefined) },
      { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
      { weight: 1, arbitrary: scalar },
    );
    const inputs = fc.sample(options(flat(["name", "primary", "meterProvider", "tracerProvider"], { interceptors })), {
      seed: SEED,
      numRuns: RUNS,
    });
    let refused = 0;
    let queried = 0;
    for (const input of inputs) {
      const raw = postgres(testUrl(), { max: 2, onnotice: () => {} });
      let sql: PilotSql<Sql> | undefined;
      try {
        if (classify(() => (sql = pilot(raw, input as never)), input) === "refused") {
          refused++;
          continue;
        }
        // Every accepted pilot is queried while the sample is small; all of them settle.
        if (queried < ATTACHED) {
          const { error } = await settles(sql!`select 1`, `select 1 with ${show(input)}`);
          if (error !== undefined) throw new Error(`select 1 failed with ${String(error)} for ${show(input)}`);
          queried++;
        }
      } finally {
        await settles(sql !== undefined ? sql.close({ timeout: 1 }) : raw.end({ timeout: 1 }), `close with ${show(input)}`);
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(queried).toBeGreaterThan(0);
    totals.push(`pilot: ${RUNS} generated, ${refused} refused, ${RUNS - refused} accepted, queried ${queried}`);
  });

  test("the inputs fuzzing found (issue 14) are ConfigErrors naming the field", () => {
    const found: [string, () => unknown][] = [
      ["timeoutMs", () => deadline({ timeoutMs: 2 ** 31 })],
      ["probeTimeoutMs", () => breaker({ probeTimeoutMs: 2 ** 31 })],
      ["recoveryMs", () => breaker({ recoveryMs: 1e12 })],
      ["intervalMs", () => adaptive({ intervalMs: 1e12 })],
      ["queueTimeoutMs", () => adaptive({ queueTimeoutMs: 2 ** 31 })],
      ["minSamples", () => affinity({ slow: "primary", minSamples: 1e300 })],
      ["maxAttempts", () => retry({ maxAttempts: 1e300 })],
      ["options", () => monitor([] as never)],
      ["options", () => monitor(Object.create({ slowQueryMs: 1 }))],
      ["health", () => monitor({ health: Object.create({ minCalls: 1 }) })],
    ];
    for (const [field, create] of found) {
      let caught: unknown;
      try {
        create();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).message).toContain(field);
    }
    // Infinity stays a documented value of adaptive's queue options (no timer is armed for it).
    expect(() => adaptive({ queueTimeoutMs: Infinity, maxQueue: Infinity })).not.toThrow();
  });

  test("the first argument of pilot() must be a sql or an object of them", () => {
    for (const target of [null, undefined, 42, "postgres://", [], new Date(0)]) {
      let caught: unknown;
      try {
        pilot(target as never);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).message).toMatch(/^pilot: sql: the first argument must be/);
    }
  });
});

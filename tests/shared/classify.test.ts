import { describe, expect, test } from "bun:test";
import { classify, type FailureCategory } from "../../lib/shared/classify.ts";
import { CircuitOpenError, DeadlineExceededError, PoolSaturatedError, PoolTimeoutError } from "../../lib/shared/errors.ts";

const cases: [string, FailureCategory][] = [
  // postgres.js connection codes and socket errors
  ["CONNECTION_CLOSED", "connection"],
  ["CONNECTION_DESTROYED", "connection"],
  ["CONNECT_TIMEOUT", "connection"],
  ["ECONNREFUSED", "connection"],
  ["ECONNRESET", "connection"],
  ["EPIPE", "connection"],
  ["ETIMEDOUT", "connection"],
  ["ENOTFOUND", "connection"],
  // class 08 and the named 57P0x / 53300
  ["08000", "connection"],
  ["08003", "connection"],
  ["08006", "connection"],
  ["08001", "connection"],
  ["08004", "connection"],
  ["08P01", "connection"],
  ["57P01", "connection"],
  ["57P02", "connection"],
  ["57P03", "connection"],
  ["53300", "connection"],
  // timeouts
  ["57014", "timeout"],
  ["55P03", "timeout"],
  // transaction
  ["40001", "transaction"],
  ["40P01", "transaction"],
  ["40002", "transaction"],
  ["25000", "transaction"],
  ["25P02", "transaction"],
  ["25006", "transaction"],
  // resource
  ["53000", "resource"],
  ["53100", "resource"],
  ["53200", "resource"],
  ["53400", "resource"],
  ["58000", "resource"],
  ["58030", "resource"],
  ["XX000", "resource"],
  ["XX001", "resource"],
  // client: the caller's bug, never the database's health
  ["22001", "client"],
  ["22012", "client"],
  ["22P02", "client"],
  ["23505", "client"],
  ["23503", "client"],
  ["23514", "client"],
  ["23502", "client"],
  ["42601", "client"],
  ["42P01", "client"],
  ["42703", "client"],
  ["42501", "client"],
  ["0A000", "client"],
  ["P0001", "client"],
  ["P0002", "client"],
  ["CONNECTION_ENDED", "client"],
  ["MAX_PARAMETERS_EXCEEDED", "client"],
  ["UNDEFINED_VALUE", "client"],
];

describe("classify", () => {
  for (const [code, category] of cases) {
    test(`${code} → ${category}`, () => {
      expect(classify(Object.assign(new Error(code), { code }))).toBe(category);
    });
  }

  test("errors without a code are client errors", () => {
    expect(classify(new TypeError("boom"))).toBe("client");
    expect(classify("a string")).toBe("client");
    expect(classify(undefined)).toBe("client");
    expect(classify({ code: 42 })).toBe("client");
  });

  test("pgpilot's own rejections are client errors, a deadline is a timeout", () => {
    expect(classify(new CircuitOpenError("primary", "connection", 100))).toBe("client");
    expect(classify(new PoolTimeoutError("primary", 100, 1, 2))).toBe("client");
    expect(classify(new PoolSaturatedError("primary", 1, 2))).toBe("client");
    expect(classify(new DeadlineExceededError(200))).toBe("timeout");
  });
});

import { describe, expect, test } from "bun:test";
import postgres from "postgres";
import { ConfigError, isPilotError, pilot, PilotError } from "../../mod.ts";

describe("errors and config", () => {
  test("isPilotError recognises pgpilot errors only", () => {
    expect(isPilotError(new PilotError("CLOSED", "x"))).toBe(true);
    expect(isPilotError(new Error("x"))).toBe(false);
    expect(isPilotError({ code: "CIRCUIT_OPEN" })).toBe(false);
  });

  test("pilot() rejects bad options with a ConfigError naming each field", () => {
    const sql = postgres("postgres://u:secret-password@127.0.0.1:1/db", { max: 1 });
    let error: unknown;
    try {
      pilot(sql, { name: "", interceptors: [{} as never], extra: 1 } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain("name");
    expect(message).toContain("interceptors.0");
    expect(message).toContain("extra");
    expect(message).not.toContain("secret-password");
    expect((error as ConfigError).code).toBe("CONFIG_INVALID");
  });

  test("unknown primary lane and non-sql lanes are config errors", () => {
    const a = postgres("postgres://127.0.0.1:1/db", { max: 1 });
    expect(() => pilot({ a }, { primary: "b" })).toThrow(/no lane named "b"/);
    expect(() => pilot({ a, b: 42 as never })).toThrow(/lanes\.b/);
    expect(() => pilot({})).toThrow(/at least one lane/);
  });

  test("sql.lane() with an unknown lane is a config error", () => {
    const sql = pilot(postgres("postgres://127.0.0.1:1/db", { max: 1 }));
    expect(() => sql.lane("nope")).toThrow(/no lane named "nope"/);
    expect(() => sql.with({ timeoutMs: -1 })).toThrow(ConfigError);
  });
});

import { describe, expect, test } from "bun:test";
import { compose } from "../../lib/core/compose.ts";
import type { Interceptor } from "../../lib/core/interceptor.ts";
import { NO_SQL, Operation } from "../../lib/core/operation.ts";

const op = () => new Operation("query", NO_SQL("UNKNOWN"), "primary", undefined, undefined, undefined);

function tracer(name: string, log: string[]): Interceptor {
  return {
    name,
    async intercept(_op, next) {
      log.push(`${name}:before`);
      const result = await next();
      log.push(`${name}:after`);
      return result;
    },
  };
}

describe("compose", () => {
  test("the first interceptor is the outermost", async () => {
    const log: string[] = [];
    const run = compose([tracer("a", log), tracer("b", log)], async () => (log.push("query"), 42));
    expect(await run(op())).toBe(42);
    expect(log).toEqual(["a:before", "b:before", "query", "b:after", "a:after"]);
  });

  test("next() twice throws", async () => {
    const twice: Interceptor = {
      name: "twice",
      async intercept(_op, next) {
        await next();
        return next();
      },
    };
    let calls = 0;
    const run = compose([twice], async () => ++calls);
    const error: any = await run(op()).catch((e: any) => e);
    expect(error.code).toBe("NEXT_CALLED_TWICE");
    expect(error.message).toContain('"twice"');
    expect(calls).toBe(1);
  });

  test("next() twice at once throws, even for a retrying interceptor", async () => {
    const parallel: Interceptor & { retries: boolean } = {
      name: "parallel",
      retries: true,
      async intercept(_op, next) {
        return Promise.all([next(), next()]);
      },
    };
    const error: any = await compose([parallel], async () => 1)(op()).catch((e: any) => e);
    expect(error.code).toBe("NEXT_CALLED_TWICE");
  });

  test("a retrying interceptor may call next() again after a rejection only", async () => {
    let attempts = 0;
    const retrying: Interceptor & { retries: boolean } = {
      name: "retrying",
      retries: true,
      async intercept(_op, next) {
        try {
          return await next();
        } catch {
          return next();
        }
      },
    };
    const operation = op();
    const run = compose([retrying], async () => {
      if (++attempts === 1) throw new Error("first attempt fails");
      return "second";
    });
    expect(await run(operation)).toBe("second");
    expect(operation.attempt).toBe(2);
  });

  test("a throwing interceptor surfaces its error; a synchronous throw too", async () => {
    const failing: Interceptor = { name: "failing", intercept: () => { throw new Error("sync"); } };
    let reached = false;
    const error: any = await compose([failing], async () => (reached = true))(op()).catch((e: any) => e);
    expect(error.message).toBe("sync");
    expect(reached).toBe(false);
  });

  test("an interceptor may answer without calling next()", async () => {
    const cache: Interceptor = { name: "cache", intercept: async () => "cached" };
    expect(await compose([cache], async () => "db")(op())).toBe("cached");
  });

  test("without interceptors the terminal runs directly", async () => {
    const operation = op();
    expect(await compose([], async () => 7)(operation)).toBe(7);
    expect(operation.attempt).toBe(1);
  });
});

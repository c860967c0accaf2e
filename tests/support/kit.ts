/**
 * The test kit: what test files share instead of copying. Import from here only.
 *
 *   until(condition, { message, timeoutMs })  wait for a fact instead of sleeping a guessed time
 *   settled(promise)                          the error a promise rejected with, or undefined
 *   new Cleanup() / cleanupAfterEach()        close pools, pilots, providers, servers a test opened
 *   metricReader()                            a real OTel MeterProvider with a reader we collect() by hand
 *   histogramCount, tracesHarness, AsyncContextManager   (from ./otel.ts)
 */
import { afterEach } from "bun:test";

export { AsyncContextManager, histogramCount, type MetricReaderKit, metricReader, type MetricValue, tracesHarness, type TracesHarness } from "./otel.ts";

/** What `until` resolves with: the condition's first truthy value. */
export type Truthy<T> = Exclude<Awaited<T>, false | 0 | "" | null | undefined>;

export interface UntilOptions {
  /** What is awaited, for the timeout's error: "the circuit to open". */
  message: string;
  /** A liveness bound (a hang fails clearly), never an assertion about speed. Default 10 000 ms. */
  timeoutMs?: number;
}

/**
 * Wait for a condition instead of sleeping a guessed time: tests stay correct on a loaded
 * machine. Polls `condition` every 5 ms until it returns a truthy value, and resolves with that
 * value; throws `timed out after N ms waiting for <message>` after `timeoutMs`.
 */
export async function until<T>(condition: () => T | Promise<T>, options: UntilOptions): Promise<Truthy<T>> {
  const { message, timeoutMs = 10_000 } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Truthy<T>;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Settles with the error `promise` rejected with, or `undefined` when it fulfilled. Never rejects. */
export function settled(promise: PromiseLike<unknown>): Promise<any> {
  return Promise.resolve(promise).then(() => undefined, (error) => error);
}

/** Something a test opened: a pilot (`close`) or a postgres.js `sql` (`end`). */
export type Closable =
  | { close(options: { timeout: number }): Promise<unknown> }
  | { end(options: { timeout: number }): Promise<unknown> };

/**
 * What a test (or a file) opened, undone in reverse: `track(sql)` for pools and pilots, `defer(fn)`
 * for anything else (providers, servers, proxies, flags). `run()` runs every task, newest first,
 * each after the previous one settled, then throws the first failure, if any.
 */
export class Cleanup {
  #tasks: (() => unknown)[] = [];

  /** Run `task` at the next `run()`, before every task added earlier. */
  defer(task: () => unknown): void {
    this.#tasks.push(task);
  }

  /** Close `sql` at the next `run()`: `close({ timeout: 1 })` for a pilot, `end({ timeout: 1 })` for postgres.js. */
  track<T extends Closable>(sql: T): T {
    this.defer(() => ("close" in sql ? sql.close({ timeout: 1 }) : sql.end({ timeout: 1 })));
    return sql;
  }

  async run(): Promise<void> {
    const failures: unknown[] = [];
    for (const task of this.#tasks.splice(0).reverse()) {
      try {
        await task();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw failures[0];
  }
}

/** A `Cleanup` that runs after each test of the file (or of the `describe` it is called in). */
export function cleanupAfterEach(): Cleanup {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  return cleanup;
}

/**
 * Event listeners in cockatiel's style: `onX(listener)` returns `{ dispose() }`. A listener that
 * throws is reported through OTel `diag` and never reaches the operation that emitted the event.
 *
 * @module
 */
import { safely } from "./diag.ts";

/** What `onX(listener)` returns. */
export interface Subscription {
  dispose(): void;
}

/**
 * A set of listeners for one event.
 *
 * @example
 * ```ts
 * const changes = new Listeners<{ to: string }>("breaker.onStateChange");
 * const subscription = changes.add((event) => console.log(event.to));
 * changes.emit({ to: "open" });
 * subscription.dispose();
 * ```
 */
export class Listeners<T> {
  readonly #where: string;
  #listeners: ((event: T) => void)[] = [];

  constructor(where: string) {
    this.#where = where;
  }

  /** True when nobody listens (so the emitter can skip building the event). */
  get empty(): boolean {
    return this.#listeners.length === 0;
  }

  /** Subscribe; `dispose()` unsubscribes (idempotent). */
  add(listener: (event: T) => void): Subscription {
    // Copy on write: emitting while a listener disposes itself stays consistent.
    this.#listeners = [...this.#listeners, listener];
    return {
      dispose: () => {
        this.#listeners = this.#listeners.filter((candidate) => candidate !== listener);
      },
    };
  }

  /** Call every listener; what they throw is reported, never rethrown. */
  emit(event: T): void {
    for (const listener of this.#listeners) safely(this.#where, listener, event);
  }

  /** Drop every listener. */
  clear(): void {
    this.#listeners = [];
  }
}

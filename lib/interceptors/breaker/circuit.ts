/**
 * The circuit of one lane: a pure state machine (no timers, no I/O; the clock is injected),
 * so every transition can be unit-tested and the interceptor stays a thin shell around it.
 *
 *   closed ──(category threshold or failure rate in the window)──▶ open
 *   open ──(recovery time passed: a call or the active probe arrives)──▶ half-open
 *   half-open ──(halfOpenRequests successes)──▶ closed
 *   half-open ──(one counted failure)──▶ open, with a longer (exponential, jittered) recovery time
 *
 * @module
 */
import { type Backoff, exponentialBackoff } from "../../shared/backoff.ts";
import { type CountedCategory, FailureWindow } from "../../shared/failure-window.ts";

/** Where a circuit is. `half-open` is the breaker's "degraded", `open` its "failed". */
export type CircuitStateName = "closed" | "open" | "half-open";

/** The state of a circuit, a discriminated union on `name`. */
export type CircuitState =
  | { readonly name: "closed" }
  | {
    readonly name: "open";
    /** The category whose failures opened it. */
    readonly category: CountedCategory;
    /** When it lets a probe through (clock milliseconds). */
    readonly until: number;
    /** Consecutive opens without a close in between (1 the first time). */
    readonly opens: number;
    /** The failure that opened it, or the latest failed probe's (absent after a restore). */
    readonly cause?: unknown;
  }
  | { readonly name: "half-open"; readonly category: CountedCategory; readonly opens: number; readonly cause?: unknown };

/** A circuit's state as JSON, to persist and restore (`initialState`). Times are epoch ms. */
export type CircuitSnapshot =
  | { readonly state: "closed" }
  | { readonly state: "open"; readonly category: CountedCategory; readonly until: number; readonly opens: number }
  | { readonly state: "half-open"; readonly category: CountedCategory; readonly opens: number };

/** A change of state. */
export interface CircuitTransition {
  readonly lane: string;
  readonly from: CircuitStateName;
  readonly to: CircuitStateName;
  /** The category that opened the circuit (absent when it closes). */
  readonly category?: CountedCategory;
  /** Until the next probe, when it opened. */
  readonly retryAfterMs?: number;
  /** The failure that opened it (when it opened). */
  readonly cause?: unknown;
}

/** Tuning of a circuit (validated by `breaker()`). */
export interface CircuitOptions {
  /** Failures of a category within the window that open the circuit. */
  readonly thresholds: Readonly<Record<CountedCategory, number>>;
  readonly windowMs: number;
  /** Failures / calls within the window that open the circuit (0 … 1) … */
  readonly failureRate: number;
  /** … once the window holds at least this many calls. */
  readonly minimumVolume: number;
  /** Wait after the first open before probing. */
  readonly recoveryMs: number;
  /** Upper bound of the wait after repeated opens. */
  readonly maxRecoveryMs: number;
  /** Probes admitted at once while half-open; this many successes close the circuit. */
  readonly halfOpenRequests: number;
  /** Clock in milliseconds (default `Date.now`, so snapshots survive a restart). */
  readonly now?: () => number;
  /** Random source for the backoff jitter (default `Math.random`). */
  readonly random?: () => number;
}

/**
 * What `admit()` returns for a rejected call.
 *
 * @example
 * ```ts
 * if (circuit.admit() === REJECTED) throw new CircuitOpenError(circuit.lane, "connection", circuit.retryAfterMs());
 * ```
 */
export const REJECTED = -1;

/**
 * One lane's circuit. `admit()` hands out a ticket (the current epoch) that the caller returns
 * with the outcome; outcomes of tickets from an earlier epoch are stale and ignored, so calls
 * that were already running when the circuit opened cannot close or re-open it later.
 *
 * @example
 * ```ts
 * const circuit = new Circuit("primary", { thresholds: { connection: 5, timeout: 8, transaction: 7, resource: 15 },
 *   windowMs: 30_000, failureRate: 0.5, minimumVolume: 20, recoveryMs: 10_000, maxRecoveryMs: 120_000, halfOpenRequests: 2 });
 * const ticket = circuit.admit();
 * if (ticket === REJECTED) throw new Error("open");
 * circuit.failure(ticket, "connection");
 * ```
 */
export class Circuit {
  readonly lane: string;
  /** Called on every change of state (set by the interceptor; must not throw). */
  onTransition: ((transition: CircuitTransition) => void) | undefined = undefined;
  readonly #options: CircuitOptions;
  readonly #now: () => number;
  readonly #backoff: Backoff;
  readonly #window: FailureWindow;
  #state: CircuitState = { name: "closed" };
  #epoch = 0;
  /** Half-open: probes running and probes that succeeded in this epoch. */
  #probes = 0;
  #successes = 0;

  constructor(lane: string, options: CircuitOptions, initial?: CircuitSnapshot) {
    this.lane = lane;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#backoff = exponentialBackoff({
      baseMs: options.recoveryMs,
      maxMs: Math.max(options.recoveryMs, options.maxRecoveryMs),
      random: options.random,
      exactSteps: 1,
    });
    this.#window = new FailureWindow(options.windowMs);
    if (initial !== undefined) this.#state = restore(initial);
  }

  /** The current state (an open circuit whose recovery time passed stays open until polled or called). */
  get state(): CircuitState {
    return this.#state;
  }

  /** Increments on every transition; a ticket from an older epoch is stale. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Probes running now (half-open only). */
  get probes(): number {
    return this.#probes;
  }

  /**
   * Ask to run a call. Returns a ticket for `success`/`failure`/`release`, or `REJECTED`.
   * Closed: always admitted. Open: rejected until the recovery time has passed, then the
   * circuit turns half-open. Half-open: admitted while fewer than `halfOpenRequests` probes
   * are running or have succeeded.
   */
  admit(): number {
    const state = this.#state;
    if (state.name === "closed") return this.#epoch;
    if (state.name === "open") {
      if (this.#now() < state.until) return REJECTED;
      this.#halfOpen(state);
    }
    if (this.#probes + this.#successes >= this.#options.halfOpenRequests) return REJECTED;
    this.#probes++;
    return this.#epoch;
  }

  /** Whether `admit()` would admit a call now (without changing state). */
  available(): boolean {
    const state = this.#state;
    if (state.name === "closed") return true;
    if (state.name === "open") return this.#now() >= state.until;
    return this.#probes + this.#successes < this.#options.halfOpenRequests;
  }

  /** The call answered (a client error counts here too: the database is up). */
  success(ticket: number): void {
    if (ticket !== this.#epoch) return;
    if (this.#state.name === "closed") {
      this.#window.success(this.#now());
      return;
    }
    this.#probes--;
    if (++this.#successes >= this.#options.halfOpenRequests) this.#close();
  }

  /** The call failed with a counted category; `cause` is the error (kept while open). */
  failure(ticket: number, category: CountedCategory, cause?: unknown): void {
    if (ticket !== this.#epoch) return;
    const state = this.#state;
    if (state.name === "half-open") {
      this.#open(category, state.opens + 1, cause);
      return;
    }
    if (state.name !== "closed") return;
    const window = this.#window;
    window.failure(category, this.#now());
    const options = this.#options;
    if (
      window.count(category) >= options.thresholds[category] ||
      (window.calls >= options.minimumVolume && window.failureRate() >= options.failureRate)
    ) {
      this.#open(category, 1, cause);
    }
  }

  /**
   * A probe on a fresh connection (the breaker's own, not a user call) failed while half-open:
   * open again for the same wait as before instead of a longer one. Such a probe is one
   * connection attempt and costs the database nothing, so probing keeps its pace and a
   * database that comes back is seen within `recoveryMs`; the wait still grows for user calls
   * admitted as probes (without active probing).
   */
  probeFailure(ticket: number, category: CountedCategory, cause?: unknown): void {
    const state = this.#state;
    if (ticket !== this.#epoch || state.name !== "half-open") return;
    this.#open(category, state.opens, cause);
  }

  /** The call ended without a verdict (the caller cancelled it): give its probe slot back. */
  release(ticket: number): void {
    if (ticket === this.#epoch && this.#state.name === "half-open") this.#probes--;
  }

  /** Turn half-open if open and the recovery time has passed; true when a probe may run now. */
  poll(): boolean {
    const state = this.#state;
    if (state.name === "open" && this.#now() >= state.until) this.#halfOpen(state);
    return this.#state.name === "half-open" && this.#probes + this.#successes < this.#options.halfOpenRequests;
  }

  /** Milliseconds until a probe may run: 0 unless open. */
  retryAfterMs(): number {
    const state = this.#state;
    return state.name === "open" ? Math.max(0, state.until - this.#now()) : 0;
  }

  /** Calls and counted failures in the current window (closed state). */
  window(): { calls: number; failures: number; byCategory: Record<CountedCategory, number> } {
    const window = this.#window;
    window.slide(this.#now());
    return {
      calls: window.calls,
      failures: window.failures,
      byCategory: {
        connection: window.count("connection"),
        timeout: window.count("timeout"),
        transaction: window.count("transaction"),
        resource: window.count("resource"),
      },
    };
  }

  /** The state as JSON (epoch-ms times when the clock is `Date.now`). */
  toJSON(): CircuitSnapshot {
    const state = this.#state;
    if (state.name === "closed") return { state: "closed" };
    if (state.name === "open") return { state: "open", category: state.category, until: state.until, opens: state.opens };
    return { state: "half-open", category: state.category, opens: state.opens };
  }

  #open(category: CountedCategory, opens: number, cause: unknown): void {
    const wait = this.#backoff(opens);
    this.#move({ name: "open", category, until: this.#now() + wait, opens, ...(cause === undefined ? {} : { cause }) }, wait);
  }

  #halfOpen(state: { category: CountedCategory; opens: number; cause?: unknown }): void {
    this.#move(
      { name: "half-open", category: state.category, opens: state.opens, ...(state.cause === undefined ? {} : { cause: state.cause }) },
      undefined,
    );
  }

  #close(): void {
    this.#window.reset();
    this.#move({ name: "closed" }, undefined);
  }

  #move(next: CircuitState, retryAfterMs: number | undefined): void {
    const from = this.#state.name;
    this.#state = next;
    this.#epoch++;
    this.#probes = 0;
    this.#successes = 0;
    const listener = this.onTransition;
    if (listener === undefined) return;
    listener({
      lane: this.lane,
      from,
      to: next.name,
      ...(next.name === "closed" ? {} : { category: next.category }),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...(next.name !== "closed" && next.cause !== undefined ? { cause: next.cause } : {}),
    });
  }
}

function restore(snapshot: CircuitSnapshot): CircuitState {
  switch (snapshot.state) {
    case "open":
      return { name: "open", category: snapshot.category, until: snapshot.until, opens: snapshot.opens };
    case "half-open":
      return { name: "half-open", category: snapshot.category, opens: snapshot.opens };
    default:
      return { name: "closed" };
  }
}

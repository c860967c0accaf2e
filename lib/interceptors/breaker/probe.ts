/**
 * Active probing: while a lane's circuit is open, the breaker itself runs `select 1` once the
 * recovery time has passed, so no user call has to be the guinea pig. Probes run one at a time
 * and keep going while the circuit is half-open and wants more successes.
 *
 * With a fresh-connection probe (`LaneInfo.ping`, what `pilot()` lanes have) each probe opens a
 * connection of its own: it tests the database, not a pool connection that postgres.js left
 * unable to write or waiting out its reconnect backoff, and it does not feed that backoff. A
 * failed fresh probe re-opens the circuit for the same wait (`Circuit.probeFailure`), so the
 * lane is probed every `recoveryMs` for as long as the database is away.
 *
 * @module
 */
import { classify } from "../../shared/classify.ts";
import { MAX_TIMER_MS } from "../../shared/config.ts";
import { type Circuit, REJECTED } from "./circuit.ts";
import type { CountedCategory } from "../../shared/failure-window.ts";

/**
 * Drives the probes of one circuit. `schedule()` after every transition to open; `close()`
 * stops it (a probe already sent is left to finish, its verdict is dropped).
 *
 * @example
 * ```ts
 * const prober = new ActiveProbe(circuit, () => lane.probe(), 5_000);
 * circuit.onTransition = (t) => t.to === "open" && prober.schedule();
 * ```
 */
export class ActiveProbe {
  readonly #circuit: Circuit;
  readonly #probe: (timeoutMs: number) => Promise<void>;
  readonly #timeoutMs: number;
  /** Probes run on a fresh connection of their own (not through the lane's pool). */
  readonly fresh: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #running = false;
  #closed = false;
  /** Probes sent, and how many answered. */
  sent = 0;
  answered = 0;

  constructor(circuit: Circuit, probe: (timeoutMs: number) => Promise<void>, timeoutMs: number, fresh = false) {
    this.#circuit = circuit;
    this.#probe = probe;
    this.#timeoutMs = timeoutMs;
    this.fresh = fresh;
  }

  /** Arrange a probe for when the open circuit's recovery time has passed. */
  schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    // A restored `until` may lie further ahead than a timer can wait: wake at the cap, re-check.
    this.#timer = setTimeout(() => void this.#run(), Math.min(this.#circuit.retryAfterMs(), MAX_TIMER_MS));
    // A pending probe must not keep a process alive that has nothing else to do.
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** Stop probing. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #run(): Promise<void> {
    this.#timer = undefined;
    if (this.#running) return;
    this.#running = true;
    try {
      // Keep probing while half-open and short of successes; a failure re-opens the circuit,
      // whose transition schedules the next round.
      while (!this.#closed && this.#circuit.poll()) {
        const ticket = this.#circuit.admit();
        if (ticket === REJECTED) return;
        const { verdict, error } = await this.#once();
        if (verdict === "ok") this.#circuit.success(ticket);
        else if (this.fresh) this.#circuit.probeFailure(ticket, verdict, error);
        else this.#circuit.failure(ticket, verdict, error);
      }
      // Woken a little early (timer and clock disagree by a millisecond): try again.
      if (!this.#closed && this.#circuit.state.name === "open") this.schedule();
    } finally {
      this.#running = false;
    }
  }

  /** One `select 1`: "ok" when the server answered, else the failure category and the error. */
  #once(): Promise<{ verdict: "ok" | CountedCategory; error?: unknown }> {
    this.sent++;
    return new Promise((resolve) => {
      // A probe into a black hole never answers; after the timeout it counts as one.
      const timer = setTimeout(() => resolve({ verdict: "timeout", error: probeTimeout(this.#timeoutMs) }), this.#timeoutMs);
      (timer as { unref?: () => void }).unref?.();
      let probe: Promise<void>;
      try {
        probe = this.#probe(this.#timeoutMs);
      } catch (error) {
        probe = Promise.reject(error);
      }
      probe.then(
        () => {
          clearTimeout(timer);
          this.answered++;
          resolve({ verdict: "ok" });
        },
        (error) => {
          clearTimeout(timer);
          const category = classify(error);
          // A client error is still an answer: the server is there.
          if (category === "client") this.answered++;
          resolve(category === "client" ? { verdict: "ok" } : { verdict: category, error });
        },
      );
    });
  }
}

function probeTimeout(ms: number): Error {
  return Object.assign(new Error(`probe: no answer within ${ms} ms`), { code: "DEADLINE_EXCEEDED" });
}

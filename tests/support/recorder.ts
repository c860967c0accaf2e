/**
 * A no-op interceptor that records every operation it sees, for tests of the chain.
 */
import type { Interceptor } from "../../lib/core/interceptor.ts";
import type { Operation } from "../../lib/core/operation.ts";

export interface Seen {
  kind: Operation["kind"];
  command: string;
  collection: string | undefined;
  readOnly: boolean;
  lane: string;
  parentKind: Operation["kind"] | undefined;
  text: string;
  outcome?: "ok" | "error";
  op: Operation;
}

export interface Recorder extends Interceptor {
  seen: Seen[];
  /** Operations that have started but not settled. */
  open: number;
  clear(): void;
}

export function recorder(name = "recorder"): Recorder {
  const seen: Seen[] = [];
  const self: Recorder = {
    name,
    seen,
    open: 0,
    clear: () => void (seen.length = 0),
    async intercept(op, next) {
      const entry: Seen = {
        kind: op.kind,
        command: op.command,
        collection: op.collection,
        readOnly: op.readOnly,
        lane: op.lane,
        parentKind: op.parent?.kind,
        text: op.text,
        op,
      };
      seen.push(entry);
      self.open++;
      try {
        const result = await next();
        entry.outcome = "ok";
        return result;
      } catch (error) {
        entry.outcome = "error";
        throw error;
      } finally {
        self.open--;
      }
    },
  };
  return self;
}

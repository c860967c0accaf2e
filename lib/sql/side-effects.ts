/**
 * Functions whose call makes an otherwise read-only statement a write: they change state, take
 * locks, or assign a transaction id, so the statement must not be routed to a replica (where they
 * fail) nor retried blindly.
 *
 * @module
 */
import type { Token } from "./lexer.ts";

const SIDE_EFFECT_FUNCTIONS: ReadonlySet<string> = new Set([
  // Sequences advance even when the transaction rolls back.
  "nextval", "setval",
  "pg_notify",
  "set_config",
  // Both assign a transaction id, which a hot standby cannot do.
  "txid_current", "pg_current_xact_id",
  // Large objects.
  "lo_create", "lo_creat", "lo_import", "lo_unlink", "lo_from_bytea", "lo_put", "lo_truncate",
  "lowrite",
  // Server administration.
  "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
  "pg_switch_wal", "pg_create_restore_point", "pg_promote",
  "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
  "pg_drop_replication_slot",
  // Runs arbitrary SQL on another server.
  "dblink_exec",
]);

/**
 * Whether calling the function `name` (lower-case, unqualified) has side effects. Every
 * `pg_advisory_*` and `pg_try_advisory_*` function counts: lock and unlock alike are session
 * state that a replica or a retry would not reproduce.
 *
 * @example
 * ```ts
 * hasSideEffects("nextval"); // true
 * hasSideEffects("pg_try_advisory_xact_lock"); // true
 * hasSideEffects("lower"); // false
 * ```
 */
export function hasSideEffects(name: string): boolean {
  return SIDE_EFFECT_FUNCTIONS.has(name) || name.startsWith("pg_advisory_") ||
    name.startsWith("pg_try_advisory_");
}

/**
 * Whether `tokens[start, end)` calls a function with side effects: a name (possibly
 * schema-qualified, possibly quoted) from the list directly followed by `(`. A column that merely
 * shares the name (`select nextval from audit`) is not a call.
 *
 * @example
 * ```ts
 * const tokens = tokenize("select pg_catalog.nextval('ids')");
 * callsSideEffectFunction(tokens, 0, tokens.length); // true
 * ```
 */
export function callsSideEffectFunction(tokens: readonly Token[], start: number, end: number): boolean {
  for (let index = start; index + 1 < end; index += 1) {
    const token = tokens[index]!;
    if ((token.kind === "word" || token.kind === "quoted") && hasSideEffects(token.value)) {
      const next = tokens[index + 1]!;
      if (next.kind === "punctuation" && next.text === "(") return true;
    }
  }
  return false;
}

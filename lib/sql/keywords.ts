/**
 * Word lists the analyzer needs. Kept apart from the code that uses them so a reader can check them
 * against the PostgreSQL documentation ("SQL Key Words", Appendix C) in one place.
 *
 * @module
 */

/**
 * PostgreSQL's reserved key words plus the "reserved (can be function or type)" ones: none of them
 * can be an unquoted table name, so a word from this set after `FROM`, `JOIN`, … is never a table.
 *
 * @example
 * ```ts
 * RESERVED_WORDS.has("where"); // true
 * RESERVED_WORDS.has("users"); // false
 * ```
 */
export const RESERVED_WORDS: ReadonlySet<string> = new Set([
  "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization",
  "binary", "both", "case", "cast", "check", "collate", "collation", "column", "concurrently",
  "constraint", "create", "cross", "current_catalog", "current_date", "current_role",
  "current_schema", "current_time", "current_timestamp", "current_user", "default", "deferrable",
  "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "freeze",
  "from", "full", "grant", "group", "having", "ilike", "in", "initially", "inner", "intersect",
  "into", "is", "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime",
  "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or", "order",
  "outer", "overlaps", "placing", "primary", "references", "returning", "right", "select",
  "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample", "then",
  "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
  "where", "window", "with",
]);

/**
 * Words after which a value (not an operand of a binary operator) comes next: reserved words plus
 * the few unreserved ones that commonly precede a literal. The lexer uses it to tell the sign of
 * `WHERE a = -1` or `BETWEEN -5 AND 5` from the subtraction in `a -1`.
 *
 * @example
 * ```ts
 * VALUE_BEFORE_WORDS.has("between"); // true
 * ```
 */
export const VALUE_BEFORE_WORDS: ReadonlySet<string> = new Set([
  ...RESERVED_WORDS,
  "between", "by", "return", "set", "values",
]);

/**
 * The first key word of every PostgreSQL statement. `command` is reported only from this list
 * (else `"UNKNOWN"`): it becomes the `db.operation.name` metric attribute, and a typo in `unsafe()`
 * text must not create a new time series.
 *
 * @example
 * ```ts
 * COMMAND_WORDS.has("select"); // true
 * ```
 */
export const COMMAND_WORDS: ReadonlySet<string> = new Set([
  "abort", "alter", "analyse", "analyze", "begin", "call", "checkpoint", "close", "cluster",
  "comment", "commit", "copy", "create", "deallocate", "declare", "delete", "discard", "do", "drop",
  "end", "execute", "explain", "fetch", "grant", "import", "insert", "listen", "load", "lock",
  "merge", "move", "notify", "prepare", "reassign", "refresh", "reindex", "release", "reset",
  "revoke", "rollback", "savepoint", "security", "select", "set", "show", "start", "table",
  "truncate", "unlisten", "update", "vacuum", "values", "with",
]);

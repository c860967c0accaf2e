/**
 * Finding the tables a statement names: after FROM, JOIN, INTO, UPDATE, TABLE and USING, after
 * COPY, TRUNCATE and LOCK, and along comma lists (`FROM a, b`, `TRUNCATE a, b`).
 *
 * This is a token scan, not a parser: it knows just enough context to tell `FROM users` from
 * `EXTRACT(YEAR FROM ts)`, `a IS DISTINCT FROM b` or `REVOKE … FROM role`.
 *
 * @module
 */
import type { Token } from "./lexer.ts";
import { RESERVED_WORDS } from "./keywords.ts";
import { isPunctuation, isWord } from "./token-predicates.ts";

/**
 * The key word a table name was found after; `command` is the statement's own COPY, TRUNCATE or
 * LOCK.
 *
 * @example
 * ```ts
 * const tokens = tokenize("insert into t values (1)");
 * const clause: TableClause = findTableReferences(tokens, 0, tokens.length)[0]!.clause; // "into"
 * ```
 */
export type TableClause = "from" | "join" | "into" | "update" | "table" | "using" | "command";

/**
 * A table position found in a statement.
 *
 * @example
 * ```ts
 * const tokens = tokenize("select * from public.users");
 * findTableReferences(tokens, 0, tokens.length)[0]!.name; // "public.users"
 * ```
 */
export interface TableReference {
  /** As written, schema-qualified if it was, quotes removed; undefined for a subquery or function. */
  readonly name: string | undefined;
  /** How PostgreSQL resolves the name: unquoted parts folded to lower case. */
  readonly key: string | undefined;
  readonly qualified: boolean;
  readonly clause: TableClause;
  /** Index of the clause's key word. */
  readonly index: number;
  /** Bracket depth of the clause's key word within the statement. */
  readonly depth: number;
}

interface Frame {
  /** The data verb seen at this depth: FROM only names tables inside a statement. */
  verb: string | undefined;
  /** Set while a comma at this depth introduces another table (`FROM a, b`). */
  list: TableClause | undefined;
}

// Key words that end a table list: after them, commas separate something else.
const LIST_ENDS: ReadonlySet<string> = new Set([
  "where", "group", "having", "window", "order", "limit", "offset", "fetch", "for", "union",
  "intersect", "except", "returning", "set", "select", "values", "when", "then", "do", "with",
]);

const VERBS: ReadonlySet<string> = new Set(["select", "insert", "update", "delete", "merge"]);

// After these words a verb is an event or an action, not a statement: `ON DELETE CASCADE`,
// `BEFORE UPDATE ON t`, `INSERT OR UPDATE`, `INSTEAD OF DELETE`.
const NOT_A_STATEMENT_AFTER: ReadonlySet<string> = new Set(["on", "or", "before", "after", "of"]);

// Words after UPDATE that show it is not `UPDATE table`: `FOR UPDATE OF`, `DO UPDATE SET`,
// `ON UPDATE CASCADE`, `FOR NO KEY UPDATE NOWAIT`.
const NOT_A_TABLE_AFTER_UPDATE: ReadonlySet<string> = new Set([
  "set", "of", "on", "nowait", "skip", "cascade", "restrict", "no", "or",
]);

const SKIPPED_BEFORE_NAME: Record<TableClause, ReadonlySet<string>> = {
  from: new Set(["only", "lateral"]),
  join: new Set(["only", "lateral"]),
  using: new Set(["only", "lateral"]),
  into: new Set(["temp", "temporary", "unlogged", "table", "only"]),
  update: new Set(["only"]),
  table: new Set(["if", "not", "exists", "only"]),
  command: new Set(["only"]),
};

// Clauses whose item may be a subquery or a function call rather than a table.
const FROM_ITEM_CLAUSES: ReadonlySet<TableClause> = new Set(["from", "join", "using"]);

const SUBQUERY_WORDS: ReadonlySet<string> = new Set(["select", "values", "with", "table"]);

/**
 * Table positions of the statement `tokens[start, end)` (comments removed), in text order.
 * A FROM item that is a subquery or a function call is reported with `name: undefined`, so that the
 * caller can tell "the first FROM item is not a table" from "there is no FROM".
 *
 * @example
 * ```ts
 * const tokens = tokenize("update a set x = 1 from b, c where a.id = b.id");
 * findTableReferences(tokens, 0, tokens.length).map((r) => r.name);
 * // ["a", "b", "c"]
 * ```
 */
export function findTableReferences(
  tokens: readonly Token[],
  start: number,
  end: number,
): TableReference[] {
  const references: TableReference[] = [];
  const frames: Frame[] = [{ verb: undefined, list: undefined }];
  let privileges = false;

  let commandIndex = start;
  while (commandIndex < end && isPunctuation(tokens[commandIndex], "(")) commandIndex += 1;
  const command = tokens[commandIndex]?.kind === "word" ? tokens[commandIndex]!.value : "";
  const tableStartsList = command === "drop" || command === "truncate" || command === "lock";

  const read = (from: number, clause: TableClause, at: number): void => {
    const depth = frames.length - 1;
    const report = (name: string | undefined, key: string | undefined, qualified: boolean): void => {
      references.push({ name, key, qualified, clause, index: at, depth });
    };
    let index = from;
    const skipped = SKIPPED_BEFORE_NAME[clause];
    while (index < end && tokens[index]!.kind === "word" && skipped.has(tokens[index]!.value)) index += 1;
    if (FROM_ITEM_CLAUSES.has(clause)) {
      // `FROM (SELECT …)` is a subquery; `FROM (a JOIN b ON …)` a parenthesized join whose first
      // table is inside the brackets.
      let opened = 0;
      while (index < end && isPunctuation(tokens[index], "(")) {
        index += 1;
        opened += 1;
      }
      const inside = tokens[index];
      if (opened > 0 && (inside === undefined || index >= end || (inside.kind === "word" && SUBQUERY_WORDS.has(inside.value)))) {
        report(undefined, undefined, false);
        return;
      }
    }
    const first = tokens[index];
    if (first === undefined || index >= end) return;
    const nameLike = first.kind === "quoted" ||
      (first.kind === "word" && !RESERVED_WORDS.has(first.value) &&
        !(clause === "update" && NOT_A_TABLE_AFTER_UPDATE.has(first.value)));
    if (!nameLike) return;
    let name = first.kind === "quoted" ? first.value : first.text;
    let key = first.value;
    let qualified = false;
    index += 1;
    while (index + 1 < end && isPunctuation(tokens[index], ".")) {
      const part = tokens[index + 1]!;
      if (part.kind !== "word" && part.kind !== "quoted") break;
      name += "." + (part.kind === "quoted" ? part.value : part.text);
      key += "." + part.value;
      qualified = true;
      index += 2;
    }
    const functionCall = FROM_ITEM_CLAUSES.has(clause) &&
      (isPunctuation(tokens[index], "(") || (!qualified && key === "rows" && isWord(tokens[index], "from")));
    if (functionCall) report(undefined, undefined, false);
    else report(name, key, qualified);
  };

  for (let index = start; index < end; index += 1) {
    const token = tokens[index]!;
    const frame = frames[frames.length - 1]!;
    if (token.kind === "punctuation") {
      const text = token.text;
      if (text === "(" || text === "[") frames.push({ verb: undefined, list: undefined });
      else if ((text === ")" || text === "]") && frames.length > 1) frames.pop();
      else if (text === "," && frame.list !== undefined) read(index + 1, frame.list, index);
      continue;
    }
    if (token.kind !== "word") continue;
    const word = token.value;
    if (LIST_ENDS.has(word)) frame.list = undefined;
    if (word === "grant" || word === "revoke") privileges = true;
    if (VERBS.has(word) && !privileges) {
      const before = tokens[index - 1];
      if (!(before?.kind === "word" && NOT_A_STATEMENT_AFTER.has(before.value))) frame.verb = word;
    }
    switch (word) {
      case "from":
        if (frame.verb !== undefined && !privileges && !afterIsDistinct(tokens, index, start)) {
          frame.list = "from";
          read(index + 1, "from", index);
        }
        break;
      case "join":
        read(index + 1, "join", index);
        break;
      case "using":
        if (frame.verb === "delete" || frame.verb === "merge") {
          frame.list = "using";
          read(index + 1, "using", index);
        }
        break;
      case "into": {
        const before = tokens[index - 1];
        if (isWord(before, "insert") || isWord(before, "merge") || frame.verb === "select") read(index + 1, "into", index);
        break;
      }
      case "update":
        if (!privileges) read(index + 1, "update", index);
        break;
      case "table":
        read(index + 1, "table", index);
        if (tableStartsList) frame.list = "table";
        break;
      default:
        if (index === commandIndex && (word === "copy" || word === "truncate" || word === "lock")) {
          read(index + 1, "command", index);
          if (word !== "copy") frame.list = "command";
        }
    }
  }
  return references;
}

/** `a IS [NOT] DISTINCT FROM b` compares values; its FROM names no table. */
function afterIsDistinct(tokens: readonly Token[], fromIndex: number, start: number): boolean {
  if (fromIndex - 2 < start || !isWord(tokens[fromIndex - 1], "distinct")) return false;
  const before = tokens[fromIndex - 2];
  return isWord(before, "is") || isWord(before, "not");
}

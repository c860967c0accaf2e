/**
 * The normalized form of SQL text: what the fingerprint is computed from, so that executions of
 * one query shape with different values group together (like `pg_stat_statements`' queryid).
 *
 * @module
 */
import type { Token } from "./lexer.ts";
import { RESERVED_WORDS } from "./keywords.ts";
import { isPunctuation, isWord } from "./token-predicates.ts";

// List collapsing recurses into nested lists; past this depth lists are rendered as they are,
// so crafted text (`array[array[array[…`) cannot exhaust the stack.
const MAX_COLLAPSE_DEPTH = 32;

const NO_SPACE_BEFORE: ReadonlySet<string> = new Set([")", "]", ",", ".", "::", ";"]);
const NO_SPACE_AFTER: ReadonlySet<string> = new Set(["(", "[", ".", "::"]);
// Reserved words that read as calls (`any(…)`, `array[…]`) and unreserved ones that read as key
// words (`values (…)`, `on conflict (…)`): cosmetic only, the rule just has to be fixed.
const CALL_LIKE_RESERVED: ReadonlySet<string> = new Set(["any", "all", "some", "array", "cast"]);
const KEY_WORDS_BEFORE_BRACKET: ReadonlySet<string> = new Set([
  "values", "explain", "conflict", "insert", "over", "filter", "within", "exists", "returns", "vacuum", "analyze",
]);

/**
 * Normalizes a token list (comments removed): literals and `$n` parameters become `?`, unquoted
 * words are lower-cased, whitespace is a single space where one is needed, trailing `;` go, and
 * the element lists of `IN (…)` and `ARRAY[…]` and the row list of `VALUES (…), (…)` lose
 * consecutive duplicate entries, so that a list of 3 or 300 values normalizes alike.
 *
 * @example
 * ```ts
 * const tokens = tokenize("SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'x'");
 * normalizeTokens(tokens, matchBrackets(tokens)); // "select * from t where id in (?) and name = ?"
 * ```
 */
export function normalizeTokens(tokens: readonly Token[], match: Int32Array): string {
  let end = tokens.length;
  while (end > 0 && isPunctuation(tokens[end - 1], ";")) end -= 1;
  return render(tokens, match, 0, end, 0);
}

function render(tokens: readonly Token[], match: Int32Array, start: number, end: number, depth: number): string {
  let out = "";
  let previous: Token | undefined;
  let index = start;
  while (index < end) {
    const token = tokens[index]!;
    let piece: string;
    let last = index; // the last token the piece covers
    const collapsible = depth < MAX_COLLAPSE_DEPTH;
    if (collapsible && isPunctuation(token, "(") && isWord(previous, "in")) {
      const group = groupAt(tokens, match, index, end);
      piece = "(" + collapse(elements(tokens, match, index + 1, group.innerEnd, depth + 1)) + group.closer;
      last = group.last;
    } else if (collapsible && isPunctuation(token, "[") && isWord(previous, "array")) {
      const group = groupAt(tokens, match, index, end);
      piece = "[" + collapse(elements(tokens, match, index + 1, group.innerEnd, depth + 1)) + group.closer;
      last = group.last;
    } else if (collapsible && isPunctuation(token, "(") && isWord(previous, "values")) {
      const rows: string[] = [];
      let rowStart = index;
      for (;;) {
        const group = groupAt(tokens, match, rowStart, end);
        rows.push("(" + render(tokens, match, rowStart + 1, group.innerEnd, depth + 1) + group.closer);
        last = group.last;
        if (last + 2 < end && isPunctuation(tokens[last + 1], ",") && isPunctuation(tokens[last + 2], "(")) {
          rowStart = last + 2;
        } else {
          break;
        }
      }
      piece = collapse(rows);
    } else {
      piece = normalizedToken(token);
    }
    out += out === "" || !spaced(previous, token) ? piece : " " + piece;
    previous = tokens[last]!;
    index = last + 1;
  }
  return out;
}

/** The elements of a comma-separated list in `tokens[start, end)`, each rendered. */
function elements(tokens: readonly Token[], match: Int32Array, start: number, end: number, depth: number): string[] {
  const rendered: string[] = [];
  let elementStart = start;
  for (let index = start; index < end; index += 1) {
    const token = tokens[index]!;
    if (match[index]! >= 0) {
      index = match[index]!; // skip a nested group: its commas are not ours
    } else if (isPunctuation(token, ",")) {
      rendered.push(render(tokens, match, elementStart, index, depth));
      elementStart = index + 1;
    }
  }
  rendered.push(render(tokens, match, elementStart, end, depth));
  return rendered;
}

function collapse(items: readonly string[]): string {
  let out = "";
  for (let index = 0; index < items.length; index += 1) {
    if (index > 0 && items[index] === items[index - 1]) continue;
    out += out === "" ? items[index] : ", " + items[index];
  }
  return out;
}

interface Group {
  /** End of the group's content: its closer, or `end` if it is never closed. */
  readonly innerEnd: number;
  /** The last token the group covers. */
  readonly last: number;
  /** The closer's text, or "" (an unterminated group stays unterminated). */
  readonly closer: string;
}

function groupAt(tokens: readonly Token[], match: Int32Array, open: number, end: number): Group {
  const close = match[open]!;
  if (close < end) return { innerEnd: close, last: close, closer: tokens[close]!.text };
  return { innerEnd: end, last: end - 1, closer: "" };
}

function normalizedToken(token: Token): string {
  switch (token.kind) {
    case "string":
    case "number":
    case "parameter":
      return "?";
    case "word":
      return token.value;
    default:
      return token.text;
  }
}

/** Spacing depends only on the two tokens, so the same tokens always normalize alike. */
function spaced(previous: Token | undefined, token: Token): boolean {
  if (previous === undefined) return false;
  if (token.kind === "punctuation" && NO_SPACE_BEFORE.has(token.text)) return false;
  if (previous.kind === "punctuation" && NO_SPACE_AFTER.has(previous.text)) return false;
  // A call or subscript: `count(*)`, `tags[1]`, `"Users"(id)`; but `in (…)`, `values (…)`.
  if (token.kind === "punctuation" && (token.text === "(" || token.text === "[")) {
    if (previous.kind === "quoted") return false;
    if (previous.kind === "word") {
      const word = previous.value;
      const keyWord = RESERVED_WORDS.has(word) ? !CALL_LIKE_RESERVED.has(word) : KEY_WORDS_BEFORE_BRACKET.has(word);
      if (!keyWord) return false;
    }
  }
  return true;
}

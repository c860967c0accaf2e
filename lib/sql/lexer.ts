/**
 * A small PostgreSQL tokenizer: enough of the server's lexical rules (scan.l) to find statement
 * boundaries, key words, names and literals. It never throws: text the server would reject still
 * tokenizes (an unterminated string or comment simply ends the input), because analysis runs on
 * every query and must not fail one.
 *
 * @module
 */
import { VALUE_BEFORE_WORDS } from "./keywords.ts";

/**
 * What a token is. `string` covers every literal written with quotes (`'…'`, `E'…'`, `B'…'`,
 * `X'…'`, `N'…'`, `U&'…'`, `$tag$…$tag$`); `quoted` is a quoted identifier (`"…"`, `U&"…"`).
 *
 * @example
 * ```ts
 * const kind: TokenKind = tokenize("$1")[0]!.kind; // "parameter"
 * ```
 */
export type TokenKind =
  | "word"
  | "quoted"
  | "string"
  | "number"
  | "parameter"
  | "operator"
  | "punctuation"
  | "comment";

/**
 * One token of SQL text.
 *
 * @example
 * ```ts
 * const [token] = tokenize("SELECT");
 * token.kind; // "word"
 * token.value; // "select"
 * ```
 */
export interface Token {
  readonly kind: TokenKind;
  /** The exact source slice, `text.slice(start, end)`. */
  readonly text: string;
  /**
   * For a word, its ASCII lower case (how PostgreSQL folds unquoted names); for a quoted
   * identifier, the name without quotes; otherwise the same as `text`.
   */
  readonly value: string;
  readonly start: number;
  readonly end: number;
}

const QUOTE = 0x27; // '
const DOUBLE_QUOTE = 0x22; // "
const BACKSLASH = 0x5c;
const DOLLAR = 0x24;
const DOT = 0x2e;
const MINUS = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;
const AMPERSAND = 0x26;
const UNDERSCORE = 0x5f;

function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isLetter(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a);
}

// Like PostgreSQL, every non-ASCII character may appear in a name.
function isWordStart(code: number): boolean {
  return isLetter(code) || code === UNDERSCORE || code >= 0x80;
}

function isWordPart(code: number): boolean {
  return isWordStart(code) || isDigit(code) || code === DOLLAR;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 0x61 && code <= 0x66) || (code >= 0x41 && code <= 0x46);
}

// The characters PostgreSQL allows in operator names.
function isOperatorChar(code: number): boolean {
  switch (code) {
    case 0x2b: case 0x2d: case 0x2a: case 0x2f: case 0x3c: case 0x3e: case 0x3d: case 0x7e:
    case 0x21: case 0x40: case 0x23: case 0x25: case 0x5e: case 0x26: case 0x7c: case 0x60:
    case 0x3f:
      return true;
    default:
      return false;
  }
}

/** PostgreSQL folds only ASCII letters of unquoted names (in multi-byte encodings). */
function foldCase(text: string): string {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(text) ? text.toLowerCase() : text.replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
}

/**
 * Splits SQL text into tokens, comments included; whitespace is dropped. Literals keep their
 * source text (`E'it\'s'`, `$fn$ … $fn$`, `0x1F`); a sign directly before a number is part of the
 * number when a value is expected there (`a = -1`, but `a -1` is a subtraction), so that `-1` and
 * `1` normalize alike and redaction hides the sign with the digits.
 *
 * @example
 * ```ts
 * tokenize("select 'x' -- note").map((token) => token.kind); // ["word", "string", "comment"]
 * ```
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const length = text.length;
  let position = 0;
  let previous: Token | undefined; // the last token that is not a comment

  const push = (kind: TokenKind, start: number, end: number, value?: string): void => {
    const slice = text.slice(start, end);
    const token: Token = { kind, text: slice, value: value ?? slice, start, end };
    tokens.push(token);
    if (kind !== "comment") previous = token;
  };

  /** End of a quoted run starting after its opening quote; a doubled quote is an escaped one. */
  const skipQuoted = (from: number, quote: number, backslashEscapes: boolean): number => {
    let index = from;
    while (index < length) {
      const code = text.charCodeAt(index);
      if (backslashEscapes && code === BACKSLASH) {
        index += 2;
      } else if (code === quote) {
        if (text.charCodeAt(index + 1) === quote) index += 2;
        else return index + 1;
      } else {
        index += 1;
      }
    }
    return length;
  };

  /**
   * End of a string literal whose opening quote is at `quoteAt`, including the SQL-standard
   * continuation: two literals separated only by whitespace containing a newline are one.
   */
  const skipString = (quoteAt: number, backslashEscapes: boolean): number => {
    let end = skipQuoted(quoteAt + 1, QUOTE, backslashEscapes);
    for (;;) {
      let index = end;
      let newline = false;
      while (index < length && isSpace(text.charCodeAt(index))) {
        const code = text.charCodeAt(index);
        if (code === 0x0a || code === 0x0d) newline = true;
        index += 1;
      }
      if (!newline || text.charCodeAt(index) !== QUOTE) return end;
      end = skipQuoted(index + 1, QUOTE, backslashEscapes);
    }
  };

  const numberEnd = (from: number): number => {
    let index = from;
    const first = text.charCodeAt(index);
    const radix = first === 0x30 ? text.charCodeAt(index + 1) | 0x20 : 0; // lower-cased letter
    if (radix === 0x78 || radix === 0x6f || radix === 0x62) { // 0x, 0o, 0b
      const accepts = radix === 0x78 ? isHexDigit : isDigit;
      if (accepts(text.charCodeAt(index + 2))) {
        index += 2;
        while (index < length && (accepts(text.charCodeAt(index)) || text.charCodeAt(index) === UNDERSCORE)) index += 1;
        return index;
      }
    }
    const digits = (): void => {
      while (index < length) {
        const code = text.charCodeAt(index);
        if (isDigit(code) || (code === UNDERSCORE && isDigit(text.charCodeAt(index + 1)))) index += 1;
        else break;
      }
    };
    digits();
    // `1..10` is an integer followed by `..` (PL/pgSQL ranges), not `1.` and `.10`.
    if (text.charCodeAt(index) === DOT && text.charCodeAt(index + 1) !== DOT) {
      index += 1;
      digits();
    }
    const exponent = text.charCodeAt(index) | 0x20;
    if (exponent === 0x65) { // e
      const sign = text.charCodeAt(index + 1);
      const digitAt = sign === 0x2b || sign === MINUS ? index + 2 : index + 1;
      if (isDigit(text.charCodeAt(digitAt))) {
        index = digitAt;
        digits();
      }
    }
    return index;
  };

  const startsNumber = (at: number): boolean => {
    const code = text.charCodeAt(at);
    return isDigit(code) || (code === DOT && isDigit(text.charCodeAt(at + 1)));
  };

  const expectsValue = (): boolean => {
    if (previous === undefined) return true;
    switch (previous.kind) {
      case "operator":
        return true;
      case "punctuation":
        return previous.text !== ")" && previous.text !== "]";
      case "word":
        return VALUE_BEFORE_WORDS.has(previous.value);
      default:
        return false;
    }
  };

  while (position < length) {
    const start = position;
    const code = text.charCodeAt(position);
    const next = text.charCodeAt(position + 1);

    if (isSpace(code)) {
      position += 1;
      continue;
    }

    // Comments: `--` to the end of the line, `/* */` nesting as in PostgreSQL.
    if (code === MINUS && next === MINUS) {
      position += 2;
      while (position < length && text.charCodeAt(position) !== 0x0a && text.charCodeAt(position) !== 0x0d) position += 1;
      push("comment", start, position);
      continue;
    }
    if (code === SLASH && next === STAR) {
      let depth = 1;
      position += 2;
      while (position < length && depth > 0) {
        const current = text.charCodeAt(position);
        const following = text.charCodeAt(position + 1);
        if (current === SLASH && following === STAR) {
          depth += 1;
          position += 2;
        } else if (current === STAR && following === SLASH) {
          depth -= 1;
          position += 2;
        } else {
          position += 1;
        }
      }
      push("comment", start, position);
      continue;
    }

    if (code === QUOTE) {
      position = skipString(position, false);
      push("string", start, position);
      continue;
    }

    if (code === DOUBLE_QUOTE) {
      position = skipQuoted(position + 1, DOUBLE_QUOTE, false);
      push("quoted", start, position, unquote(text, start + 1, position));
      continue;
    }

    if (isWordStart(code)) {
      const lower = code | 0x20;
      // Prefixed literals: E'…' (backslash escapes), B'…' and X'…' (bit strings), N'…' (national).
      if (next === QUOTE && (lower === 0x65 || lower === 0x62 || lower === 0x78 || lower === 0x6e)) {
        position = skipString(position + 1, lower === 0x65);
        push("string", start, position);
        continue;
      }
      // Unicode escapes: U&'…' is a string, U&"…" a quoted identifier.
      if (lower === 0x75 && next === AMPERSAND) {
        const quote = text.charCodeAt(position + 2);
        if (quote === QUOTE) {
          position = skipString(position + 2, false);
          push("string", start, position);
          continue;
        }
        if (quote === DOUBLE_QUOTE) {
          position = skipQuoted(position + 3, DOUBLE_QUOTE, false);
          push("quoted", start, position, unquote(text, start + 3, position));
          continue;
        }
      }
      position += 1;
      while (position < length && isWordPart(text.charCodeAt(position))) position += 1;
      push("word", start, position, foldCase(text.slice(start, position)));
      continue;
    }

    if (code === DOLLAR) {
      if (isDigit(next)) {
        position += 1;
        while (position < length && isDigit(text.charCodeAt(position))) position += 1;
        push("parameter", start, position);
        continue;
      }
      // Dollar quoting: $$…$$ or $tag$…$tag$ (a tag cannot start with a digit, nor contain `$`).
      let tagEnd = position + 1;
      while (tagEnd < length && isWordPart(text.charCodeAt(tagEnd)) && text.charCodeAt(tagEnd) !== DOLLAR) tagEnd += 1;
      if (text.charCodeAt(tagEnd) === DOLLAR) {
        const tag = text.slice(position, tagEnd + 1);
        const close = text.indexOf(tag, tagEnd + 1);
        position = close === -1 ? length : close + tag.length;
        push("string", start, position);
        continue;
      }
      position += 1;
      push("punctuation", start, position);
      continue;
    }

    if (startsNumber(position)) {
      position = numberEnd(position);
      push("number", start, position);
      continue;
    }

    if (isOperatorChar(code)) {
      let end = position;
      while (end < length && isOperatorChar(text.charCodeAt(end))) {
        // `--` and `/*` start a comment even inside an operator.
        const current = text.charCodeAt(end);
        const following = text.charCodeAt(end + 1);
        if (end > position && ((current === MINUS && following === MINUS) || (current === SLASH && following === STAR))) break;
        end += 1;
      }
      // PostgreSQL: a multi-character operator cannot end in + or - unless it also contains one of
      // ~ ! @ # % ^ & | ` ?, so `=-1` is `=` then `-1`.
      if (end - position > 1 && !/[~!@#%^&|`?]/.test(text.slice(position, end))) {
        while (end - position > 1 && (text.charCodeAt(end - 1) === 0x2b || text.charCodeAt(end - 1) === MINUS)) end -= 1;
      }
      if (end - position === 1 && (code === 0x2b || code === MINUS) && startsNumber(end) && expectsValue()) {
        position = numberEnd(end);
        push("number", start, position);
        continue;
      }
      position = end;
      push("operator", start, position);
      continue;
    }

    // `::` and `..` (PL/pgSQL ranges) are one token; any other character (`(`, `,`, `;`, `.`, stray
    // bytes) stands alone.
    position += (code === 0x3a && next === 0x3a) || (code === DOT && next === DOT) ? 2 : 1;
    push("punctuation", start, position);
  }
  return tokens;
}

/** The name inside a quoted identifier: `""` stands for one `"`. */
function unquote(text: string, from: number, end: number): string {
  const inner = text.slice(from, text.charCodeAt(end - 1) === DOUBLE_QUOTE && end - 1 >= from ? end - 1 : end);
  return inner.includes('""') ? inner.replaceAll('""', '"') : inner;
}

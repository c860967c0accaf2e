import { expect, test } from "bun:test";
import { type Token, tokenize } from "../../lib/sql/mod.ts";

const shape = (sql: string): string[] => tokenize(sql).map((token: Token) => `${token.kind}:${token.text}`);

test("words keep their text and fold their value like PostgreSQL", () => {
  const [select, name, unicode] = tokenize("SELECT Users_2$x Ärger");
  expect(select).toMatchObject({ kind: "word", text: "SELECT", value: "select", start: 0, end: 6 });
  expect(name).toMatchObject({ kind: "word", text: "Users_2$x", value: "users_2$x" });
  // Only ASCII letters fold, as in a UTF-8 database.
  expect(unicode).toMatchObject({ kind: "word", text: "Ärger", value: "Ärger" });
});

test("quoted identifiers", () => {
  expect(tokenize('"My ""Table"""')[0]).toMatchObject({ kind: "quoted", value: 'My "Table"' });
  expect(tokenize('U&"d\\0061t"')[0]).toMatchObject({ kind: "quoted", text: 'U&"d\\0061t"' });
  expect(tokenize('"unterminated')[0]).toMatchObject({ kind: "quoted", value: "unterminated" });
});

test("string literals", () => {
  expect(shape("'it''s' x")).toEqual(["string:'it''s'", "word:x"]);
  // standard_conforming_strings: a backslash is an ordinary character.
  expect(shape("'a\\' b")).toEqual(["string:'a\\'", "word:b"]);
  expect(shape("E'it\\'s' x")).toEqual(["string:E'it\\'s'", "word:x"]);
  expect(shape("e'\\\\' x")).toEqual(["string:e'\\\\'", "word:x"]);
  expect(shape("B'0101' X'1F' N'n' U&'d\\0061t'")).toEqual([
    "string:B'0101'",
    "string:X'1F'",
    "string:N'n'",
    "string:U&'d\\0061t'",
  ]);
  // Literals separated by whitespace with a newline are one literal.
  expect(shape("'a'\n  'b' 'c'")).toEqual(["string:'a'\n  'b'", "string:'c'"]);
  expect(shape("'never closed")).toEqual(["string:'never closed"]);
});

test("dollar quoting and parameters", () => {
  expect(shape("$$ it's $x$ $$ $fn$ a $$ b $fn$ $1 $23")).toEqual([
    "string:$$ it's $x$ $$",
    "string:$fn$ a $$ b $fn$",
    "parameter:$1",
    "parameter:$23",
  ]);
  expect(shape("$tag$ unterminated")).toEqual(["string:$tag$ unterminated"]);
  expect(shape("a$b")).toEqual(["word:a$b"]);
  expect(shape("$ x")).toEqual(["punctuation:$", "word:x"]);
});

test("numbers", () => {
  expect(shape("1 12.5 .5 1. 1e10 2.5E-3 0x1F 0o17 0b101 1_000_000")).toEqual([
    "number:1",
    "number:12.5",
    "number:.5",
    "number:1.",
    "number:1e10",
    "number:2.5E-3",
    "number:0x1F",
    "number:0o17",
    "number:0b101",
    "number:1_000_000",
  ]);
  expect(shape("1..10")).toEqual(["number:1", "punctuation:..", "number:10"]);
});

test("a sign is part of a number only where a value is expected", () => {
  expect(shape("a = -1")).toEqual(["word:a", "operator:=", "number:-1"]);
  expect(shape("a=-1")).toEqual(["word:a", "operator:=", "number:-1"]);
  expect(shape("a -1")).toEqual(["word:a", "operator:-", "number:1"]);
  expect(shape("(a) - 1")).toEqual(["punctuation:(", "word:a", "punctuation:)", "operator:-", "number:1"]);
  expect(shape("select -1, +2")).toEqual(["word:select", "number:-1", "punctuation:,", "number:+2"]);
  expect(shape("between -5 and -4")).toEqual(["word:between", "number:-5", "word:and", "number:-4"]);
});

test("comments", () => {
  expect(shape("a -- x\nb")).toEqual(["word:a", "comment:-- x", "word:b"]);
  expect(shape("a /* x /* nested */ still */ b")).toEqual(["word:a", "comment:/* x /* nested */ still */", "word:b"]);
  expect(shape("a /* never closed")).toEqual(["word:a", "comment:/* never closed"]);
  // `--` inside an operator still starts a comment.
  expect(shape("a +-- x")).toEqual(["word:a", "operator:+", "comment:-- x"]);
});

test("operators and punctuation", () => {
  expect(shape("a::int <> b || c ->> 'k' @> d;")).toEqual([
    "word:a",
    "punctuation:::",
    "word:int",
    "operator:<>",
    "word:b",
    "operator:||",
    "word:c",
    "operator:->>",
    "string:'k'",
    "operator:@>",
    "word:d",
    "punctuation:;",
  ]);
  expect(shape("f(a, b[1])")).toEqual([
    "word:f",
    "punctuation:(",
    "word:a",
    "punctuation:,",
    "word:b",
    "punctuation:[",
    "number:1",
    "punctuation:]",
    "punctuation:)",
  ]);
});

test("token text is always the source slice", () => {
  const sql = "SELECT E'x' || $t$y$t$, \"Q\" -- c\nFROM t WHERE a = -1.5e3 /* d */;";
  for (const token of tokenize(sql)) expect(sql.slice(token.start, token.end)).toBe(token.text);
});

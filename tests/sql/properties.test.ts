import { expect, test } from "bun:test";
import fc from "fast-check";
import { analyzeSql, tokenize } from "../../lib/sql/mod.ts";

// ---- literal generators -------------------------------------------------------------------------

const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.constantFrom("'", "''", "\\", "$", "$$", "\n", "-- ", "/*", "*/", '"', "é", "😀") }),
);

/** A PostgreSQL string literal for `content`, in one of its quoting styles. */
const stringLiteral = (content: string, style: number): string => {
  if (style === 0) return `'${content.replaceAll("'", "''")}'`;
  if (style === 1) return `E'${content.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
  // Dollar quoting: a tag that neither occurs in the content nor forms across its end.
  for (let n = 0;; n += 1) {
    const tag = `$q${n}$`;
    if ((content + tag).indexOf(tag) === content.length) return `${tag}${content}${tag}`;
  }
};

const strings = fc.tuple(anyText, fc.integer({ min: 0, max: 2 })).map(([content, style]) => stringLiteral(content, style));
const integers = fc.oneof(fc.integer(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n })).map(String);
const decimals = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.tuple(fc.nat(), fc.nat()).map(([whole, fraction]) => `${whole}.${fraction}`),
  fc.nat().map((value) => `0x${value.toString(16)}`),
);
const literal = fc.oneof(strings, integers, decimals, fc.integer({ min: 1, max: 99 }).map((n) => `$${n}`));

// ---- statement shapes ---------------------------------------------------------------------------

type Fill = (literals: readonly string[], lists: readonly (readonly string[])[]) => string;

/** A statement with holes; `lists` fill the IN / VALUES / ARRAY holes of any length. */
interface Shape {
  readonly holes: number;
  readonly lists: number;
  readonly fill: Fill;
}

const joinList = (items: readonly string[]): string => items.join(", ");

const shapes: readonly Shape[] = [
  { holes: 1, lists: 0, fill: ([a]) => `SELECT * FROM users WHERE id = ${a}` },
  { holes: 1, lists: 0, fill: ([a]) => `SELECT * FROM users WHERE name = ${a}` },
  { holes: 3, lists: 0, fill: ([a, b, c]) => `select id, name from users where email = ${a} and age > ${b} limit ${c}` },
  { holes: 2, lists: 0, fill: ([a, b]) => `INSERT INTO events (kind, payload) VALUES (${a}, ${b})` },
  {
    holes: 0,
    lists: 1,
    fill: (_, [rows]) => `INSERT INTO events (kind, payload) VALUES ${rows!.map((row) => `(${row}, now())`).join(", ")}`,
  },
  { holes: 2, lists: 0, fill: ([a, b]) => `UPDATE accounts SET balance = balance + ${a} WHERE id = ${b}` },
  { holes: 1, lists: 0, fill: ([a]) => `DELETE FROM sessions WHERE expires_at < ${a}` },
  { holes: 0, lists: 1, fill: (_, [items]) => `SELECT * FROM orders WHERE status IN (${joinList(items!)})` },
  { holes: 0, lists: 1, fill: (_, [items]) => `SELECT * FROM orders WHERE status NOT IN (${joinList(items!)})` },
  {
    holes: 1,
    lists: 0,
    fill: ([a]) => `SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id WHERE u.region = ${a}`,
  },
  { holes: 1, lists: 0, fill: ([a]) => `WITH x AS (SELECT * FROM t WHERE a = ${a}) SELECT * FROM x` },
  { holes: 3, lists: 0, fill: ([a, b, c]) => `SELECT * FROM t WHERE a BETWEEN ${a} AND ${b} ORDER BY b OFFSET ${c}` },
  { holes: 3, lists: 0, fill: ([a, b, c]) => `SELECT CASE WHEN a = ${a} THEN ${b} ELSE ${c} END FROM t` },
  { holes: 0, lists: 1, fill: (_, [items]) => `SELECT * FROM t WHERE tags = ANY(ARRAY[${joinList(items!)}])` },
  { holes: 1, lists: 0, fill: ([a]) => `SELECT * FROM users WHERE id = ${a} FOR UPDATE` },
  { holes: 2, lists: 0, fill: ([a, b]) => `/* pgpilot:lane=x */ select ${a} as "label", f(${b}) from t -- ${"tail"}` },
  { holes: 1, lists: 0, fill: ([a]) => `SELECT * FROM users WHERE id = ${a}; SELECT 1` },
];

const filled = (shape: Shape): fc.Arbitrary<string> =>
  fc.tuple(
    fc.array(literal, { minLength: shape.holes, maxLength: shape.holes }),
    fc.array(fc.array(literal, { minLength: 1, maxLength: 40 }), { minLength: shape.lists, maxLength: shape.lists }),
  ).map(([literals, lists]) => shape.fill(literals, lists));

// ---- properties ---------------------------------------------------------------------------------

test("same shape, different literals: same fingerprint", () => {
  for (const shape of shapes) {
    fc.assert(
      fc.property(filled(shape), filled(shape), (first, second) => {
        const a = analyzeSql(first);
        const b = analyzeSql(second);
        expect(b.normalized).toBe(a.normalized);
        expect(b.fingerprint).toBe(a.fingerprint);
        expect(b.command).toBe(a.command);
        expect(b.tables).toEqual(a.tables);
        expect(b.readOnly).toBe(a.readOnly);
      }),
      { numRuns: 60 },
    );
  }
});

test("IN, VALUES and ARRAY lists of any length: same fingerprint as one element", () => {
  const listShapes = shapes.filter((shape) => shape.lists > 0);
  fc.assert(
    fc.property(
      fc.constantFrom(...listShapes),
      fc.integer({ min: 1, max: 200 }),
      literal,
      (shape, length, value) => {
        const one = analyzeSql(shape.fill([], [[value]]));
        const many = analyzeSql(shape.fill([], [Array.from({ length }, () => value)]));
        expect(many.fingerprint).toBe(one.fingerprint);
      },
    ),
  );
});

test("different shapes: different fingerprints", () => {
  fc.assert(
    fc.property(fc.tuple(...shapes.map(filled)), (texts) => {
      const fingerprints = new Set(texts.map((text) => analyzeSql(text).fingerprint));
      expect(fingerprints.size).toBe(shapes.length);
    }),
    { numRuns: 50 },
  );
});

test("redaction leaves no literal behind", () => {
  // Sentinels that cannot occur in the shapes' own text.
  const sentinelString = fc.tuple(anyText, fc.integer({ min: 0, max: 2 })).map(([content, style]) => ({
    secret: `zqx${content}`,
    literal: stringLiteral(`zqx${content}`, style),
  }));
  const sentinelNumber = fc.integer({ min: 1_000_003, max: 2_000_000_000 }).map((value) => ({
    secret: String(value),
    literal: String(value),
  }));
  const sentinel = fc.oneof(sentinelString, sentinelNumber);
  fc.assert(
    fc.property(
      fc.constantFrom(...shapes),
      sentinel,
      fc.array(literal, { minLength: 3, maxLength: 3 }),
      fc.nat(),
      (shape, { secret, literal: sentinelLiteral }, others, position) => {
        const literals = [...others];
        const lists = [[...others, sentinelLiteral]];
        if (shape.holes > 0) literals[position % shape.holes] = sentinelLiteral;
        const analysis = analyzeSql(shape.fill(literals, lists));
        expect(analysis.redacted.includes(secret)).toBe(false);
        expect(analysis.normalized.includes(secret)).toBe(false);
        expect(analysis.redacted).not.toContain("'");
        expect(analysis.redacted).not.toContain("$q");
      },
    ),
    { numRuns: 500 },
  );
});

test("every quoting style lexes as exactly one string literal", () => {
  fc.assert(
    fc.property(anyText, fc.integer({ min: 0, max: 2 }), (content, style) => {
      const text = stringLiteral(content, style);
      const tokens = tokenize(`select ${text} x`);
      expect(tokens.map((token) => token.kind)).toEqual(["word", "string", "word"]);
      expect(tokens[1]!.text).toBe(text);
    }),
    { numRuns: 500 },
  );
});

const sqlish = fc.string({
  unit: fc.constantFrom(
    "'", '"', "$", "$$", "$a$", "$1", "-", "--", "/*", "*/", "\n", " ", "e'", "E'", "u&'", 'U&"', "\\",
    "(", ")", "[", "]", ",", ";", ".", "..", "::", "0x", "1", "1e", "+", "=", "select", "from", "with",
    "as", "in", "values", "array", "explain", "analyze", "for", "update", "into", "t", "é", "😀", "\ud800",
  ),
  maxLength: 60,
});

test("the lexer and the analyzer never throw, and tokens cover the text", () => {
  fc.assert(
    fc.property(fc.oneof(anyText, sqlish, fc.string({ unit: "binary-ascii" })), (text) => {
      const tokens = tokenize(text);
      let covered = 0;
      for (const token of tokens) {
        expect(token.start).toBeGreaterThanOrEqual(covered);
        expect(token.end).toBeGreaterThan(token.start);
        expect(text.slice(covered, token.start).trim()).toBe("");
        expect(text.slice(token.start, token.end)).toBe(token.text);
        covered = token.end;
      }
      expect(text.slice(covered).trim()).toBe("");
      const analysis = analyzeSql(text);
      expect(analysis.fingerprint).toMatch(/^[0-9a-f]{16}$/);
      expect(typeof analysis.readOnly).toBe("boolean");
    }),
    { numRuns: 2000 },
  );
});

test("deeply nested text does not exhaust the stack", () => {
  const depth = 20_000;
  for (
    const text of [
      "(".repeat(depth),
      "with a as (".repeat(depth) + "select 1" + ")".repeat(depth) + " select 1",
      "select array[".repeat(depth) + "1" + "]".repeat(depth),
      "select * from t where a in (".repeat(depth) + "1" + ")".repeat(depth),
      "explain ".repeat(depth) + "select 1",
    ]
  ) {
    expect(() => analyzeSql(text)).not.toThrow();
  }
});

/**
 * Readable config issues: valibot says `Invalid key: Expected never but received "slowQueryMS"`;
 * pgpilot says `unknown option slowQueryMS — did you mean slowQueryMs?`.
 *
 * @module
 */
import type { BaseIssue } from "valibot";

/** One problem of a `ConfigError`: where (dotted path) and what. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** The parts of a valibot schema this module walks (object entries, wrappers, unions). */
interface SchemaShape {
  readonly entries?: Record<string, SchemaShape>;
  readonly wrapped?: SchemaShape;
  readonly options?: readonly SchemaShape[];
  readonly item?: SchemaShape;
}

/**
 * A valibot issue as `{ path, message }`: an unknown key names the key and the nearest valid
 * option (when `schema` is given), a missing one says so; others keep valibot's message. Never
 * the input itself, which may hold a password.
 *
 * @example
 * ```ts
 * describeIssue(issue, schema); // { path: "", message: "unknown option slowQueryMS — did you mean slowQueryMs?" }
 * ```
 */
export function describeIssue(issue: BaseIssue<unknown>, schema?: unknown): ConfigIssue {
  const keys = (issue.path ?? []).map((item) => String(item.key));
  const path = keys.join(".");
  const objectIssue = issue.type === "strict_object" || issue.type === "object" || issue.type === "loose_object";
  if (!objectIssue || keys.length === 0) return { path, message: issue.message };
  const key = keys[keys.length - 1]!;
  const parent = keys.slice(0, -1).join(".");
  if (issue.expected === "never") {
    const known = schema === undefined ? [] : optionsAt(schema as SchemaShape, keys.slice(0, -1));
    return { path: parent, message: `unknown option ${key}${suggestion(key, known)}` };
  }
  if (issue.received === "undefined") return { path: parent, message: `missing required option ${key}` };
  return { path, message: issue.message };
}

/** The option names of the object schema at `keys` inside `schema` (empty when not an object). */
function optionsAt(schema: SchemaShape, keys: readonly string[]): string[] {
  let shapes = [schema];
  for (const key of keys) {
    shapes = shapes.flatMap(unwrap).flatMap((shape) => {
      if (shape.entries?.[key] !== undefined) return [shape.entries[key]];
      // Array items: the key is an index.
      return shape.item !== undefined && /^\d+$/.test(key) ? [shape.item] : [];
    });
  }
  return [...new Set(shapes.flatMap(unwrap).flatMap((shape) => Object.keys(shape.entries ?? {})))];
}

/** An object schema behind optional/nullable wrappers and inside unions. */
function unwrap(shape: SchemaShape): SchemaShape[] {
  if (shape.wrapped !== undefined) return unwrap(shape.wrapped);
  if (shape.options !== undefined) return shape.options.flatMap(unwrap);
  return [shape];
}

/** ` — did you mean x?`, or the list of valid options when none is close. */
function suggestion(key: string, known: readonly string[]): string {
  if (known.length === 0) return "";
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3))) return ` — did you mean ${best}?`;
  return ` (valid options: ${[...known].sort().join(", ")})`;
}

/** Levenshtein distance (insertions, deletions, substitutions). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * `npm test` step "documentation snippets": every ```ts block of README.md and docs/*.md is
 * written to .tmp/snippets/ as a module of its own and type-checked with `tsc --noEmit` against
 * the sources (`pgpilot` → mod.ts, `pgpilot/prometheus` → lib/prometheus.ts).
 *
 * A snippet must compile as written: it imports what it uses. The only names it may take for
 * granted are the placeholders of PRELUDE below (a database URL, an id, an AbortSignal, …), which
 * stand for the reader's own values. A block fenced as ```ts ignore is left out (for fragments
 * that are not code on their own).
 *
 * Prints one line per failing snippet (`README.md:123: error TS2304: Cannot find name …`) and ends
 * with `N passed, N failed`; exit code 1 when any failed.
 *
 * Run: `bun tests/support/snippets.ts` (or `node --experimental-strip-types`).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const outDir = join(root, ".tmp", "snippets");

/** Placeholders a snippet may use without declaring them: the reader's own values. */
const PRELUDE = `// Placeholders for the reader's own values (tests/support/snippets.ts).
declare const url: string;
declare const dbUrl: string;
declare const PRIMARY_URL: string;
declare const REPLICA_URL: string;
declare const id: number;
declare const signal: AbortSignal;
declare const text: string;
declare function log(...values: unknown[]): void;
declare function maintenanceWindow(): boolean;
declare function retryLater(): void;
/** Your drizzle schema module and your kysely database interface. */
declare const schema: Record<string, never>;
interface Database {}
/** A key-value store (e.g. a Workers KV namespace). */
declare const kv: { get(key: string): Promise<string | null>; put(key: string, value: string): Promise<void> };
`;

/** One ```ts block: where it comes from and its code. */
export interface Snippet {
  /** `README.md` or `docs/x.md`. */
  readonly source: string;
  /** Line of the first code line in `source` (1-based). */
  readonly line: number;
  readonly code: string;
}

/**
 * The ```ts (and ```typescript) blocks of a Markdown text, skipping ```ts ignore.
 *
 * @example
 * ```ts ignore
 * extractSnippets("README.md", readFileSync("README.md", "utf8")).length; // 4
 * ```
 */
export function extractSnippets(source: string, markdown: string): Snippet[] {
  const snippets: Snippet[] = [];
  const lines = markdown.split("\n");
  for (let index = 0; index < lines.length; index++) {
    const open = /^\s*```(ts|typescript)(\s+\S.*)?\s*$/.exec(lines[index]!);
    if (open === null) continue;
    const skip = /\bignore\b/.test(open[2] ?? "");
    const start = index + 1;
    let end = start;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end]!)) end++;
    if (!skip) snippets.push({ source, line: start + 1, code: lines.slice(start, end).join("\n") });
    index = end;
  }
  return snippets;
}

function markdownFiles(): string[] {
  const docs = existsSync(join(root, "docs"))
    ? readdirSync(join(root, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`)
    : [];
  return ["README.md", ...docs];
}

function main(): number {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const snippets = markdownFiles().flatMap((file) => extractSnippets(file, readFileSync(join(root, file), "utf8")));
  const files = new Map<string, Snippet>();
  snippets.forEach((snippet, index) => {
    const name = `${String(index + 1).padStart(2, "0")}-${snippet.source.replace(/[^a-zA-Z0-9]+/g, "-")}-${snippet.line}.ts`;
    // One module per snippet (its own scope); the code keeps its line numbers after one header line.
    writeFileSync(join(outDir, name), `// ${snippet.source}:${snippet.line}\n${snippet.code}\nexport {};\n`);
    files.set(name, snippet);
  });
  writeFileSync(join(outDir, "prelude.d.ts"), PRELUDE);
  writeFileSync(
    join(outDir, "tsconfig.json"),
    JSON.stringify(
      {
        compilerOptions: {
          target: "ES2022",
          module: "ESNext",
          moduleResolution: "Bundler",
          lib: ["ES2022", "DOM"],
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          types: ["bun", "node"],
          typeRoots: [join(root, "node_modules", "@types")],
          paths: {
            "pgpilot": [join(root, "mod.ts")],
            "pgpilot/prometheus": [join(root, "lib", "prometheus.ts")],
          },
        },
        files: ["prelude.d.ts"],
      },
      null,
      2,
    ),
  );

  // tsc reports only syntax errors when there are any: check again without the snippets that
  // have them, so the others are still type-checked.
  const failures = new Map<string, string[]>();
  let unattributed = "";
  let checked = [...files.keys()];
  for (let round = 0; round < 2 && checked.length > 0; round++) {
    const outcome = typecheck(checked, files);
    for (const [name, messages] of outcome.failures) failures.set(name, messages);
    unattributed = outcome.unattributed;
    if (!outcome.syntax) break;
    checked = checked.filter((name) => !outcome.failures.has(name));
  }
  for (const messages of failures.values()) for (const message of messages) console.log(message);
  if (unattributed !== "") console.log(unattributed.trimEnd());
  // Errors outside the snippets (the sources themselves, tsc missing) fail the step as one more failure.
  const failed = failures.size + (unattributed !== "" ? 1 : 0);
  const passed = files.size - failures.size;
  console.log(`documentation snippets: ${passed} passed, ${failed} failed (${files.size} in README.md and docs/*.md)`);
  return failed === 0 ? 0 : 1;
}

/** Run tsc on `names` (files of outDir); the errors of each snippet, and whether any was a syntax error. */
function typecheck(
  names: readonly string[],
  files: ReadonlyMap<string, Snippet>,
): { failures: Map<string, string[]>; unattributed: string; syntax: boolean } {
  const config = JSON.parse(readFileSync(join(outDir, "tsconfig.json"), "utf8"));
  config.files = ["prelude.d.ts", ...names];
  writeFileSync(join(outDir, "tsconfig.check.json"), JSON.stringify(config, null, 2));
  const tsc = join(root, "node_modules", ".bin", "tsc");
  const result = spawnSync(existsSync(tsc) ? tsc : "tsc", ["-p", join(outDir, "tsconfig.check.json"), "--pretty", "false"], {
    cwd: root,
    encoding: "utf8",
  });
  const failures = new Map<string, string[]>();
  let unattributed = result.error === undefined ? "" : `could not run tsc: ${result.error.message}\n`;
  let syntax = false;
  for (const line of `${result.stdout}${result.stderr}`.split("\n")) {
    const match = /(?:^|[\\/])(\d\d-[^\\/(]+\.ts)\((\d+),\d+\): (error TS(\d+).*)$/.exec(line);
    const snippet = match === null ? undefined : files.get(match[1]!);
    if (match === null || snippet === undefined) {
      if (line.trim() !== "" && !line.startsWith(" ")) unattributed += `${line}\n`;
      continue;
    }
    if (match[4]!.startsWith("1")) syntax = true;
    const where = `${snippet.source}:${snippet.line + Number(match[2]) - 2}`;
    failures.set(match[1]!, [...(failures.get(match[1]!) ?? []), `${where}: ${match[3]}`]);
  }
  if (result.status !== 0 && failures.size === 0 && unattributed === "") unattributed = `tsc exited ${result.status}\n`;
  return { failures, unattributed, syntax };
}

if (import.meta.main) process.exit(main());

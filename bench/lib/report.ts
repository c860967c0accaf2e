/** Markdown rendering of benchmark reports (the terminal output and bench/results/latest-*.md). */
import type { ScenarioReport, Table } from "./scenario.ts";

export function renderTable(table: Table): string {
  const header = `| ${table.columns.join(" | ")} |`;
  const rule = `|${table.columns.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`;
  const rows = table.rows.map((row) => `| ${row.join(" | ")} |`);
  return [`**${table.title}**`, "", header, rule, ...rows, ...(table.note ? ["", table.note] : [])].join("\n");
}

export function renderMarkdown(
  scenarios: { name: string; title: string; report: ScenarioReport }[],
  options: { headings: boolean; charts?: Map<string, string> },
): string {
  return scenarios.map(({ name, title, report }) => {
    const parts: string[] = [];
    if (options.headings) parts.push(`## ${title} (\`${name}\`)`);
    for (const table of report.tables) parts.push(renderTable(table));
    for (const chart of report.charts ?? []) {
      const file = options.charts?.get(chart.title);
      if (file && options.headings) parts.push(`![${chart.title}](${file})`);
    }
    return parts.join("\n\n");
  }).join("\n\n");
}

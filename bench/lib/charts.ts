/**
 * SVG charts for bench/results/, rendered with Vega-Lite (headless: no canvas, no browser).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as vega from "vega";
import { compile } from "vega-lite";
import type { Chart, ScenarioReport } from "./scenario.ts";

/** Render every chart of every scenario to `<dir>/<tag>-<scenario>-<n>.svg`; returns chart title → file name. */
export async function renderCharts(
  results: { name: string; report?: ScenarioReport }[],
  dir: string,
  tag: string,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const jobs: Promise<void>[] = [];
  for (const result of results) {
    for (const [index, chart] of (result.report?.charts ?? []).entries()) {
      const file = `${tag}-${result.name}-${index + 1}.svg`;
      files.set(chart.title, file);
      jobs.push(chartToSvg(chart).then((svg) => writeFileSync(join(dir, file), svg)));
    }
  }
  await Promise.all(jobs);
  return files;
}

/** One line chart: a line per series. */
export async function chartToSvg(chart: Chart): Promise<string> {
  const values = chart.series.flatMap((series) => series.points.map(([x, y]) => ({ x, y, series: series.name })));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 640,
    height: 240,
    title: chart.title,
    background: "white",
    data: { values },
    mark: { type: "line", point: values.length < 80 },
    encoding: {
      x: { field: "x", type: "quantitative", title: chart.xLabel },
      y: { field: "y", type: "quantitative", title: chart.yLabel },
      color: { field: "series", type: "nominal", title: null },
    },
  };
  const view = new vega.View(vega.parse(compile(spec as never).spec), { renderer: "none" });
  return view.toSVG();
}

/**
 * What a benchmark scenario is. `bench/run.ts` loads every file in bench/scenarios/ and runs
 * the scenarios it exports as `scenario`.
 */
import type { PostgresServer } from "../../tests/support/postgres.ts";

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  /** One paragraph under the table: what it shows, measured how. */
  note?: string;
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
}

export interface ScenarioReport {
  tables: Table[];
  charts?: Chart[];
  /** Raw figures for the JSON file. */
  data?: unknown;
}

export interface BenchContext {
  /** Reduced set / shorter phases (CI smoke, under two minutes in all). */
  quick: boolean;
  /** The benchmark's own PostgreSQL (scenarios may stop and start it; they must leave it running). */
  server: PostgresServer;
  url: string;
  /** `bun 1.3.5`, `node 20.20.2`, … */
  runtime: string;
  log(message: string): void;
  /** Progress within the scenario, 0…1. */
  progress(fraction: number, label?: string): void;
}

export interface Scenario {
  name: string;
  title: string;
  /** Included in `--quick`. */
  quick: boolean;
  run(context: BenchContext): Promise<ScenarioReport>;
}

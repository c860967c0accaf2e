// Types of cases.mjs for the TypeScript adapters.
export interface MatrixDeps {
  /** The package's main module (mod.ts, or the built "pgpilot" on Node). */
  pgpilot: typeof import("../../../mod.ts");
  /** pgpilot/prometheus. */
  prometheus: typeof import("../../../lib/prometheus.ts");
  url: string;
  runtime: string;
}
export interface MatrixCase {
  name: string;
  run(deps: MatrixDeps): Promise<void>;
}
export declare const cases: MatrixCase[];

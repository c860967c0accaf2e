/**
 * `healthHandler()`: `sql.health()` as a web `Response` (Bun.serve, Deno.serve, Workers, Hono).
 *
 * @module
 */
import type { PilotHealth } from "../core/health.ts";
import { reportHookError } from "../shared/diag.ts";

/** Anything with `health()`: a pilot `sql`. */
export interface HealthSource {
  health(): PilotHealth;
}

/**
 * A request handler answering with the pilot's health as JSON: HTTP 200 when healthy or
 * degraded (still serving), 503 when failed, so load balancers take a failed instance out.
 *
 * @example
 * ```ts
 * const health = healthHandler(sql);
 * Bun.serve({ fetch: (request) => new URL(request.url).pathname === "/health/database" ? health() : app(request) });
 * ```
 */
export function healthHandler(source: HealthSource): (request?: Request) => Response {
  return () => {
    let body: PilotHealth;
    try {
      body = source.health();
    } catch (error) {
      reportHookError("healthHandler", error);
      body = { status: "failed", score: 0, reasons: ["health() threw"], checks: {} };
    }
    return new Response(JSON.stringify(body), {
      status: body.status === "failed" ? 503 : 200,
      headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
    });
  };
}

/**
 * Web `Response`s over node:http, for `pgpilot/prometheus` (typed structurally: the core
 * imports no Node module).
 *
 * @module
 */
import { reportHookError } from "../shared/diag.ts";

/**
 * Content type of the Prometheus text exposition format.
 *
 * @example
 * ```ts
 * new Response(text, { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A handler answering with the scraped metrics, or HTTP 500 when collecting them failed.
 *
 * @example
 * ```ts
 * const serve = metricsResponse(scrape);
 * const response = await serve();
 * ```
 */
export function metricsResponse(scrape: () => Promise<string>): () => Promise<Response> {
  return async () => {
    try {
      return new Response(await scrape(), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
    } catch (error) {
      reportHookError("prometheus.scrape", error);
      return new Response("# metrics collection failed\n", {
        status: 500,
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    }
  };
}

/** The parts of node:http's `ServerResponse` that `send()` uses. */
export interface NodeResponse {
  setHeader(name: string, value: string): unknown;
  writeHead(status: number): unknown;
  end(body: string): unknown;
}

/**
 * Write a web `Response` to a node:http response (no body for HEAD).
 *
 * @example
 * ```ts
 * createServer((request, response) => void send(new Response("ok"), request, response));
 * ```
 */
export async function send(reply: Response, request: { method?: string }, response: NodeResponse): Promise<void> {
  const body = request.method === "HEAD" ? "" : await reply.text();
  reply.headers.forEach((value, key) => response.setHeader(key, value));
  response.writeHead(reply.status);
  response.end(body);
}

/**
 * `GET /metrics`: the Prometheus text exposition, answered only to peers on this host unless the
 * node runs with `--metrics-public`. A request that came through a trusted proxy counts by the
 * client it names, so a TLS terminator on the same host does not open the metrics to everyone.
 * Peers on this host are not rate limited (a scraper there must never be refused).
 */
import type { Handler } from "hono";
import { LinksError } from "../../core/errors.ts";
import type { AppEnv } from "../context.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics-format.ts";
import { isLoopbackIp } from "../net.ts";
import type { RouteDeps } from "./deps.ts";

export function metricsRoutes(d: RouteDeps, opts: { public: boolean }): void {
  const path = d.routes.add("GET", "/metrics", {
    summary: "Metrics in the Prometheus text exposition format (0.0.4)",
    description: "Inbox decisions, HTTP requests and latency by route pattern, group commit, rate-limit refusals, villages, quarantine and process figures.",
    access: opts.public ? "public" : "loopback",
    answers: { 200: { description: "the exposition text", mediaType: EXPOSITION_CONTENT_TYPE } },
    errors: opts.public ? ["rate_limited"] : ["forbidden"],
  });
  const render: Handler<AppEnv> = (c) =>
    c.body(d.metrics.render(), 200, { "Content-Type": EXPOSITION_CONTENT_TYPE, "Cache-Control": "no-store" });
  if (opts.public) {
    // Open to everyone: limited per client address like the other routes without a token.
    d.app.get(path, d.publicLimit, render);
    return;
  }
  d.app.get(path, (c, next) => {
    if (!(isLoopbackIp(c.get("peerIp")) && isLoopbackIp(c.get("clientIp")))) {
      throw new LinksError("forbidden", "metrics are answered to this host only; start the node with --metrics-public to serve them to others");
    }
    return render(c, next);
  });
}

/**
 * `GET /metrics`: the Prometheus text exposition, answered only to peers on this host unless the
 * node runs with `--metrics-public`. A request that came through a trusted proxy counts by the
 * client it names, so a TLS terminator on the same host does not open the metrics to everyone.
 */
import { LinksError } from "../../core/errors.ts";
import { EXPOSITION_CONTENT_TYPE } from "../metrics-format.ts";
import { isLoopbackIp } from "../net.ts";
import type { RouteDeps } from "./deps.ts";

export function metricsRoutes(d: RouteDeps, opts: { public: boolean }): void {
  const path = d.routes.add("GET", "/metrics", {
    summary: "Metrics in the Prometheus text exposition format (0.0.4)",
    description: "Inbox decisions, HTTP requests and latency by route pattern, group commit, rate-limit refusals, villages, quarantine and process figures.",
    access: opts.public ? "public" : "loopback",
    answers: { 200: { description: "the exposition text", mediaType: EXPOSITION_CONTENT_TYPE } },
    errors: opts.public ? [] : ["forbidden"],
  });
  d.app.get(path, (c) => {
    if (!opts.public && !(isLoopbackIp(c.get("peerIp")) && isLoopbackIp(c.get("clientIp")))) {
      throw new LinksError("forbidden", "metrics are answered to this host only; start the node with --metrics-public to serve them to others");
    }
    return c.body(d.metrics.registry.render(), 200, { "Content-Type": EXPOSITION_CONTENT_TYPE, "Cache-Control": "no-store" });
  });
}

/**
 * Routes without a token: the health check, the newest public bundle and the public inbox.
 */
import { LinksError } from "../../core/errors.ts";
import { submitPublic } from "../../storage/inbox.ts";
import { latestBundle } from "../../storage/store.ts";
import { sendJson } from "../context.ts";
import type { RouteDeps } from "./deps.ts";

export function publicRoutes(d: RouteDeps): void {
  const { app, routes } = d;

  // Never rate limited: load balancers and supervisors poll it.
  app.get(routes.add("GET", "/healthz"), (c) => c.json({ status: "ok" }));

  app.get(routes.add("GET", "/.well-known/links/claims/latest"), d.publicLimit, (c) => {
    const bundle = latestBundle(d.paths, null, d.claimsDb);
    if (bundle === null) throw new LinksError("bundle_not_found", "this node holds no public bundle");
    return sendJson(c, bundle);
  });

  app.post(routes.add("POST", "/inbox"), d.publicLimit, d.jsonBody, (c) => {
    const result = submitPublic(d.paths, c.get("body"), `public@${c.get("clientIp")}`, d.claimsDb);
    return sendJson(c, { status: result.status, bundle_id: result.bundle_id });
  });
}

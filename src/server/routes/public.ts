/**
 * Routes without a token: the health check, the newest public bundle and the public inbox.
 *
 * The public inbox stores any validly signed bundle from anyone, so it runs under a storage
 * budget (public-inbox-budget.ts) and the operator can turn it off: then it answers
 * 403 `public_inbox_disabled`, a refusal that says what it is, not a 404 that reads like a
 * mistyped URL.
 */
import { BundleSchema } from "../../core/bundle.ts";
import { LinksError } from "../../core/errors.ts";
import { submitPublic } from "../../storage/inbox.ts";
import { latestBundle } from "../../storage/store.ts";
import { BundleAnswer, HealthAnswer, IngestAnswer } from "../answers.ts";
import { sendJson } from "../context.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export function publicRoutes(d: RouteDeps): void {
  const { app, routes } = d;

  app.get(routes.add("GET", "/healthz", {
    summary: "Health check",
    description: "Never rate limited: load balancers and supervisors poll it.",
    access: "public",
    answers: { 200: { description: "the node is up", schema: HealthAnswer } },
    errors: [],
  }), (c) => c.json({ status: "ok" }));

  app.get(routes.add("GET", "/.well-known/links/claims/latest", {
    summary: "The newest public bundle",
    access: "public",
    answers: { 200: { description: "the bundle, as stored", schema: BundleAnswer } },
    errors: [...ROUTE_ERRORS.publicLimit, "bundle_not_found"],
  }), d.publicLimit, (c) => {
    const bundle = latestBundle(d.paths, null, d.claimsDb);
    if (bundle === null) throw new LinksError("bundle_not_found", "this node holds no public bundle");
    return sendJson(c, bundle);
  });

  const budget = d.publicInbox;
  app.post(
    routes.add("POST", "/inbox", {
      summary: "Public ingest: any bundle with a valid signature is stored in the public store, within the node's storage budget",
      access: "public",
      body: BundleSchema,
      answers: { 200: { description: "stored, or already stored", schema: IngestAnswer } },
      errors: [
        ...ROUTE_ERRORS.publicLimit, ...ROUTE_ERRORS.jsonBody, ...ROUTE_ERRORS.signature, ...ROUTE_ERRORS.storage,
        "public_inbox_disabled", "public_inbox_quota_exceeded", "public_inbox_full",
      ],
    }),
    async (c, next) => {
      if (budget === null) {
        throw new LinksError("public_inbox_disabled", "this node takes no public bundles; push to a village inbox (POST /villages/<id>/inbox) with a member token");
      }
      await next();
    },
    d.publicLimit,
    d.jsonBody,
    (c) => {
      const body = c.get("body");
      const group = c.get("clientGroup");
      budget?.check(group, body.byteLength, (seconds) => c.header("Retry-After", String(seconds)));
      const result = submitPublic(d.paths, body, `public@${c.get("clientIp")}`, d.claimsDb);
      if (result.status === "accepted") budget?.record(group, body.byteLength);
      return sendJson(c, { status: result.status, bundle_id: result.bundle_id });
    },
  );
}

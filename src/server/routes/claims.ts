/**
 * Reading a village's claims: its newest bundle, and pages of its index rows.
 */
import { LinksError } from "../../core/errors.ts";
import { latestBundle } from "../../storage/store.ts";
import { CLAIMS_PAGE, claimsPage } from "../claims-query.ts";
import { sendJson } from "../context.ts";
import { parseLimit, single } from "../query-params.ts";
import type { RouteDeps } from "./deps.ts";

export function claimsRoutes(d: RouteDeps): void {
  d.app.get(d.routes.add("GET", "/villages/:id/claims/latest"), d.ids, d.auth("pull"), d.memberLimit, (c) => {
    const vid = c.get("villageId");
    const bundle = latestBundle(d.paths, vid, d.claimsDb);
    if (bundle === null) throw new LinksError("bundle_not_found", `village ${vid} holds no bundle yet`);
    return sendJson(c, bundle);
  });

  d.app.get(d.routes.add("GET", "/villages/:id/claims"), d.ids, d.auth("pull"), d.memberLimit, (c) => {
    const page = claimsPage(d.claimsDb, {
      villageId: c.get("villageId"),
      subject: single(c, "subject"),
      predicate: single(c, "predicate"),
      issuer: single(c, "issuer"),
      limit: parseLimit(single(c, "limit"), CLAIMS_PAGE),
      cursor: single(c, "cursor") ?? null,
    });
    return sendJson(c, page);
  });
}

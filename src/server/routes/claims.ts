/**
 * Reading a village's claims: its newest bundle, and pages of its index rows.
 */
import { LinksError } from "../../core/errors.ts";
import { latestBundle } from "../../storage/store.ts";
import { z } from "zod";
import { BundleAnswer, ClaimsPageAnswer } from "../answers.ts";
import { CLAIMS_PAGE, claimsPage } from "../claims-query.ts";
import { sendJson } from "../context.ts";
import { parseLimit, single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export function claimsRoutes(d: RouteDeps): void {
  d.app.get(d.routes.add("GET", "/villages/:id/claims/latest", {
    summary: "The village's newest bundle",
    access: "pull",
    answers: { 200: { description: "the bundle, as stored", schema: BundleAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "bundle_not_found"],
  }), d.ids, d.auth("pull"), d.memberLimit, (c) => {
    const vid = c.get("villageId");
    const bundle = latestBundle(d.paths, vid, d.claimsDb);
    if (bundle === null) throw new LinksError("bundle_not_found", `village ${vid} holds no bundle yet`);
    return sendJson(c, bundle);
  });

  d.app.get(d.routes.add("GET", "/villages/:id/claims", {
    summary: "A page of the village's claims (index rows), filtered",
    access: "pull",
    query: z.object({
      subject: z.string().optional(),
      predicate: z.string().optional(),
      issuer: z.string().optional(),
      limit: z.int().min(1).max(CLAIMS_PAGE.maxLimit).default(CLAIMS_PAGE.defaultLimit),
      cursor: z.string().optional().describe("next_cursor of the previous page"),
    }),
    answers: { 200: { description: "one page, oldest rows first", schema: ClaimsPageAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "invalid_cursor"],
  }), d.ids, d.auth("pull"), d.memberLimit, (c) => {
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

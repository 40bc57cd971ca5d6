/**
 * Reading a village's claims: its newest bundle, and pages of its index rows.
 */
import { LinksError } from "../../core/errors.ts";
import { latestBundle } from "../../storage/store.ts";
import { CLAIMS_PAGE, claimsPage } from "../claims-query.ts";
import { sendJson, type AppContext } from "../context.ts";
import type { RouteDeps } from "./deps.ts";

/** One query parameter: absent (or empty) -> undefined; given twice -> invalid_argument. */
function single(c: AppContext, name: string): string | undefined {
  const values = c.req.queries(name) ?? [];
  if (values.length > 1) throw new LinksError("invalid_argument", `query parameter ${name} is given ${values.length} times`);
  const value = values[0];
  return value === undefined || value === "" ? undefined : value;
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return CLAIMS_PAGE.defaultLimit;
  const n = /^[0-9]{1,7}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= 1 && n <= CLAIMS_PAGE.maxLimit)) {
    throw new LinksError("invalid_argument", `limit must be an integer from 1 to ${CLAIMS_PAGE.maxLimit}, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  return n;
}

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
      limit: parseLimit(single(c, "limit")),
      cursor: single(c, "cursor") ?? null,
    });
    return sendJson(c, page);
  });
}

/**
 * Quarantine review over HTTP (manage right): list, approve (re-checked against the current
 * policy; refused with the policy's reason while it still forbids the bundle), reject.
 */
import { zValidator } from "@hono/zod-validator";
import { z } from "zod";
import type { MiddlewareHandler } from "hono";
import { BUNDLE_ID_RE } from "../../core/bundle.ts";
import { parseJson } from "../../core/canonical.ts";
import { LinksError } from "../../core/errors.ts";
import { parseWith } from "../../core/schema.ts";
import { approveQuarantined, quarantinePage, rejectQuarantined } from "../../storage/quarantine.ts";
import { ApprovedAnswer, QuarantineListAnswer, RejectedAnswer } from "../answers.ts";
import { sendJson, type AppEnv } from "../context.ts";
import { quarantinePreview } from "../quarantine-preview.ts";
import { parseLimit, single } from "../query-params.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export const RejectBodySchema = z.object({
  reason: z.string().min(1, "must not be empty").max(2000, "must be at most 2000 characters"),
});

/** Each held bundle's preview reads its file: a page keeps that bounded however many are held. */
const QUARANTINE_PAGE = { defaultLimit: 100, maxLimit: 500 } as const;

const QuarantineQuery = z.object({
  limit: z.int().min(1).max(QUARANTINE_PAGE.maxLimit).default(QUARANTINE_PAGE.defaultLimit),
  cursor: z.string().optional().describe("the previous page's next_cursor"),
});

/** A schema failure becomes the usual 400 invalid_schema naming the field. */
const rejectBody = zValidator("json", RejectBodySchema, (result) => {
  if (!result.success) parseWith(RejectBodySchema, result.data, "request body");
});

/** Malformed JSON is 400 invalid_json (with where), as on every other route, before zod sees it. */
const wellFormedJson: MiddlewareHandler<AppEnv> = async (c, next) => {
  parseJson(c.get("body"));
  await next();
};

export function quarantineRoutes(d: RouteDeps): void {
  const { app, routes } = d;

  app.get(routes.add("GET", "/villages/:id/quarantine", {
    summary: "The bundles the village's policy held, with why, when, who and a preview of their claims",
    description: "In pages, in bundle id order: `limit` 1 to 500 (default 100), and `cursor` as the last page's `next_cursor`.",
    access: "manage",
    query: QuarantineQuery,
    answers: { 200: { description: "a page of the village's held bundles", schema: QuarantineListAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_argument", "invalid_cursor"],
  }), d.ids, d.auth("manage"), d.memberLimit, (c) => {
    const limit = parseLimit(single(c, "limit"), QUARANTINE_PAGE);
    const cursor = single(c, "cursor");
    if (cursor !== undefined && !BUNDLE_ID_RE.test(cursor)) throw new LinksError("invalid_cursor", "cursor must be the next_cursor of a page (a bundle id)");
    const page = quarantinePage(d.paths, c.get("villageId"), { after: cursor, limit });
    // Entries without `file`: a path on this host means nothing to the client.
    const entries = page.entries.map(({ file, ...meta }) => ({ ...meta, ...quarantinePreview(file) }));
    return sendJson(c, { entries, total: page.total, next_cursor: page.next });
  });

  const approve = routes.add("POST", "/villages/:id/quarantine/:bundle_id/approve", {
    summary: "Approve a held bundle: re-checked against the village's current policy, then stored",
    description: "While the current policy still forbids the bundle, the approval is refused with the policy's reason and the bundle stays held.",
    access: "manage",
    answers: { 200: { description: "stored (or already stored) and released from quarantine", schema: ApprovedAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.bundle, ...ROUTE_ERRORS.token, ...ROUTE_ERRORS.signature, ...ROUTE_ERRORS.policy, ...ROUTE_ERRORS.storage, "bundle_not_found"],
  });
  app.post(approve, d.ids, d.auth("manage"), d.memberLimit, (c) => {
    const bundleId = c.req.param("bundle_id");
    approveQuarantined(d.paths, c.get("villageId"), bundleId, c.get("member").memberId, d.claimsDb);
    return sendJson(c, { status: "approved", bundle_id: bundleId });
  });

  const reject = routes.add("POST", "/villages/:id/quarantine/:bundle_id/reject", {
    summary: "Reject a held bundle with a reason (moved to store/rejected/)",
    access: "manage",
    body: RejectBodySchema,
    answers: { 200: { description: "rejected", schema: RejectedAnswer } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.bundle, ...ROUTE_ERRORS.token, ...ROUTE_ERRORS.jsonBody, ...ROUTE_ERRORS.storage, "bundle_not_found"],
  });
  app.post(reject, d.ids, d.auth("manage"), d.memberLimit, d.jsonBody, wellFormedJson, rejectBody, (c) => {
    const bundleId = c.req.param("bundle_id");
    const { reason } = c.req.valid("json");
    rejectQuarantined(d.paths, c.get("villageId"), bundleId, c.get("member").memberId, reason);
    return sendJson(c, { status: "rejected", bundle_id: bundleId });
  });
}

/**
 * `POST /villages/:id/inbox`: the village pipeline in the design's order. Steps 1 to 4 are the
 * middleware chain (ids, token and right, rate limit, body); steps 4 to 8 run in storage's
 * `submitToVillage` (JSON, schema, signature, policy, duplicate, store).
 */
import { BundleSchema } from "../../core/bundle.ts";
import { submitToVillage } from "../../storage/inbox.ts";
import { IngestAnswer, QuarantinedAnswer } from "../answers.ts";
import { sendJson } from "../context.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

export function inboxRoutes(d: RouteDeps): void {
  const path = d.routes.add("POST", "/villages/:id/inbox", {
    summary: "Push a signed bundle into the village's pipeline",
    description: "Checked in order: village, token and right, rate limit, body, JSON and schema, bundle id and signature (audited, never stored), policy (a failure quarantines), already stored, stored.",
    access: "push",
    body: BundleSchema,
    answers: {
      200: { description: "accepted, or already stored (durable when answered)", schema: IngestAnswer },
      202: { description: "held in quarantine: the village's policy does not allow it", schema: QuarantinedAnswer },
    },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, ...ROUTE_ERRORS.jsonBody, ...ROUTE_ERRORS.signature, ...ROUTE_ERRORS.storage],
  });
  d.app.post(path, d.ids, d.auth("push"), d.memberLimit, d.jsonBody, async (c) => {
    const vid = c.get("villageId");
    const result = await d.metrics.inbox(vid, submitToVillage(d.paths, vid, c.get("body"), c.get("member").memberId, {
      commit: d.commit,
      checkSignature: d.verifyPool?.verify,
      village: c.get("village"),
      owners: d.claimsDb,
    }));
    if (result.status === "quarantined") {
      // `reason` repeats `code` for Python Links clients, which read that name.
      const { bundle_id, code, detail } = result;
      return sendJson(c, { status: "quarantined", bundle_id, code, reason: code, detail }, 202);
    }
    return sendJson(c, { status: result.status, bundle_id: result.bundle_id });
  });
}

/**
 * `POST /villages/:id/inbox`: the village pipeline in the design's order. Steps 1 to 4 are the
 * middleware chain (ids, token and right, rate limit, body); steps 4 to 8 run in storage's
 * `submitToVillage` (JSON, schema, signature, policy, duplicate, store).
 */
import { submitToVillage } from "../../storage/inbox.ts";
import { sendJson } from "../context.ts";
import type { RouteDeps } from "./deps.ts";

export function inboxRoutes(d: RouteDeps): void {
  const path = d.routes.add("POST", "/villages/:id/inbox");
  d.app.post(path, d.ids, d.auth("push"), d.memberLimit, d.jsonBody, async (c) => {
    const result = await submitToVillage(d.paths, c.get("villageId"), c.get("body"), c.get("member").memberId, {
      commit: d.commit,
      village: c.get("village"),
      owners: d.claimsDb,
    });
    if (result.status === "quarantined") {
      // `reason` repeats `code` for Python Links clients, which read that name.
      const { bundle_id, code, detail } = result;
      return sendJson(c, { status: "quarantined", bundle_id, code, reason: code, detail }, 202);
    }
    return sendJson(c, { status: result.status, bundle_id: result.bundle_id });
  });
}

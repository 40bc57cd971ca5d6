/**
 * `GET /villages/:id/peers` (manage right): where each peer of the village stands, exactly as
 * `links peers status --json` shows it, from what the sync passes recorded. Tokens never leave.
 */
import { z } from "zod";
import { listPeers } from "../../replication/peers.ts";
import { DRIFTS, peerStatuses } from "../../replication/state.ts";
import { sendJson } from "../context.ts";
import { ROUTE_ERRORS } from "../route-table.ts";
import type { RouteDeps } from "./deps.ts";

const PeerStatusAnswer = z.object({
  village: z.string(),
  url: z.string(),
  last_success: z.string().nullable(),
  last_error: z.object({ code: z.string(), detail: z.string(), at: z.string() }).nullable(),
  cursor: z.string().nullable().describe("how far this node has read the peer's bundle feed"),
  bundles_pulled: z.int(),
  bundles_accepted: z.int(),
  bundles_quarantined: z.int(),
  bundles_refused: z.int(),
  local_head: z.string().nullable().describe("the village's policy hash here"),
  remote_head: z.string().nullable().describe("the village's policy hash at the peer"),
  drift: z.enum(DRIFTS),
});

export function peersRoutes(d: RouteDeps): void {
  const path = d.routes.add("GET", "/villages/:id/peers", {
    summary: "Where each peer of the village stands, as the last sync with it recorded (links peers status --json)",
    access: "manage",
    answers: { 200: { description: "the village's peers", schema: z.object({ peers: z.array(PeerStatusAnswer) }) } },
    errors: [...ROUTE_ERRORS.village, ...ROUTE_ERRORS.token, "invalid_schema", "storage_error"],
  });
  d.app.get(path, d.ids, d.auth("manage"), d.memberLimit, (c) => {
    const vid = c.get("villageId");
    return sendJson(c, { peers: peerStatuses(d.paths, listPeers(d.paths, vid)) });
  });
}

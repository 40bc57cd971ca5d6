/**
 * `GET /villages/:id/peers` (manage right): where each peer of the village stands, exactly as
 * `links peers status --json` shows it, from what the sync passes recorded. Tokens never leave.
 */
import { listPeers } from "../../replication/peers.ts";
import { peerStatuses } from "../../replication/state.ts";
import { sendJson } from "../context.ts";
import type { RouteDeps } from "./deps.ts";

export function peersRoutes(d: RouteDeps): void {
  d.app.get(d.routes.add("GET", "/villages/:id/peers"), d.ids, d.auth("manage"), d.memberLimit, (c) => {
    const vid = c.get("villageId");
    return sendJson(c, { peers: peerStatuses(d.paths, listPeers(d.paths, vid)) });
  });
}

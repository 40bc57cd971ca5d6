/**
 * `GET /me/villages`: the villages a bearer token belongs to, with the rights it has in each under
 * the village's current policy (what the review page lists). The token is tried against every
 * village's member ledger (cached by MemberDirectory), so the cost grows with the villages on
 * disk and nothing else; the route is rate limited per client address, and a request without a
 * token, or with one that opens no village, counts as a failed authentication like anywhere else.
 */
import { readdirSync } from "node:fs";
import { LinksError } from "../../core/errors.ts";
import { RIGHTS, roleMay } from "../../core/village-policy.ts";
import { VILLAGE_ID_RE } from "../../storage/paths.ts";
import { readVillage, villagePolicy } from "../../storage/villages.ts";
import { MyVillagesAnswer } from "../answers.ts";
import { sendJson } from "../context.ts";
import { refuseToken, requireBearer } from "../middleware/auth/index.ts";
import type { RouteDeps } from "./deps.ts";

function villageDirs(d: RouteDeps): string[] {
  try {
    return readdirSync(d.paths.villagesDir()).filter((n) => VILLAGE_ID_RE.test(n)).sort();
  } catch {
    return [];
  }
}

export function myVillagesRoutes(d: RouteDeps): void {
  const path = d.routes.add("GET", "/me/villages", {
    summary: "The villages this token belongs to, and its rights in each",
    access: "member",
    answers: { 200: { description: "at least one village", schema: MyVillagesAnswer } },
    errors: ["missing_token", "invalid_token", "revoked_token", "tls_required", "rate_limited"],
  });
  d.app.get(path, d.publicLimit, (c) => {
    d.authFailures.check(c);
    const token = requireBearer(c, d.authFailures);
    const villages = [];
    let revoked = false;
    // A village whose members cannot be read (storage_error) is left out, so one damaged village
    // does not hide the others; it is the answer only when no village lists the token.
    let unreadable: LinksError | null = null;
    for (const vid of villageDirs(d)) {
      let member;
      try {
        member = d.members.authenticate(vid, token);
      } catch (e) {
        if (e instanceof LinksError && e.code === "revoked_token") revoked = true;
        else if (e instanceof LinksError && e.code === "storage_error") unreadable ??= e;
        else if (!(e instanceof LinksError && e.code === "invalid_token")) throw e;
        continue;
      }
      let village;
      try {
        village = readVillage(d.paths, vid);
      } catch (e) {
        if (e instanceof LinksError && e.code === "village_not_found") continue;
        throw e;
      }
      const policy = villagePolicy(village);
      const rights = RIGHTS.filter((r) => roleMay(policy, member.role, r));
      villages.push({ village_id: vid, name: village.name, member_id: member.memberId, role: member.role, rights });
    }
    if (villages.length === 0) {
      if (unreadable !== null) throw unreadable;
      if (revoked) refuseToken(c, d.authFailures, "revoked_token", "the bearer token has been revoked");
      refuseToken(c, d.authFailures, "invalid_token", "the bearer token is not valid for any village on this node");
    }
    return sendJson(c, { villages });
  });
}
